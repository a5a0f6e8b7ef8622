"""
Item locks: held until the holder's transaction ends, even after it deleted its rows.

The whole locking design rests on what these tests pin on both servers: a
transaction that inserts a lock key waits for any transaction in flight that
inserted it, released (deleted) it or not, and takes it once that one ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import dynastream
from dynastream import _locks
from dynastream.exceptions import ConfigurationError


@pytest.fixture
def lock_engine(server_engine: sa.Engine) -> Iterator[sa.Engine]:
    dynastream.schema.locks.create(server_engine, checkfirst=True)
    engine = sa.create_engine(server_engine.url, poolclass=sa.pool.NullPool)  # two connections at once
    yield engine
    engine.dispose()


def _begin(connection: sa.Connection) -> sa.RootTransaction:
    transaction = connection.begin()
    if connection.dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return transaction


def _waits_for(first: sa.Connection, second: sa.Connection, keys: list[int], *, end: str) -> float:
    """Return how long `second` waited to hold `keys` while `first` held them, then ended."""
    waited: list[float] = []

    def take() -> None:
        with second.begin():
            started = time.monotonic()
            held = _locks.hold(second, keys)
            waited.append(time.monotonic() - started)
            _locks.release(second, held)

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.5)
    assert not waited, "the second transaction took the lock while the first held it"
    getattr(first.get_transaction(), end)()
    thread.join(10)
    assert waited, "the second transaction never got the lock"
    return waited[0]


@pytest.mark.parametrize("end", ["commit", "rollback"])
@pytest.mark.parametrize("released", [True, False], ids=["released", "kept"])
def test_a_lock_is_held_until_its_transaction_ends(lock_engine: sa.Engine, end: str, released: bool) -> None:
    keys = [_locks.lock_key("t", f"item-{n}") for n in range(50)]
    with lock_engine.connect() as first, lock_engine.connect() as second:
        _begin(first)
        held = _locks.hold(first, keys[10:30])
        if released:
            _locks.release(first, held)
        waited = _waits_for(first, second, keys[::-1], end=end)
        assert waited >= 0.4
    with lock_engine.connect() as connection:
        assert 0 == connection.scalar(sa.select(sa.func.count()).select_from(dynastream.schema.locks))


def test_disjoint_keys_never_wait(lock_engine: sa.Engine) -> None:
    with lock_engine.connect() as first, lock_engine.connect() as second:
        _begin(first)
        _locks.hold(first, [_locks.lock_key("t", f"a{n}") for n in range(1000)])
        with second.begin():
            started = time.monotonic()
            _locks.hold(second, [_locks.lock_key("t", f"b{n}") for n in range(1000)])
            assert time.monotonic() - started < 2
        first.rollback()


def test_a_lock_row_left_behind_is_taken_all_the_same(lock_engine: sa.Engine) -> None:
    key = _locks.lock_key("t", "left behind")
    with lock_engine.begin() as connection:
        connection.execute(dynastream.schema.locks.insert(), {"lock_key": key})
    with lock_engine.connect() as first, lock_engine.connect() as second:
        _begin(first)
        held = _locks.hold(first, [key])
        _locks.release(first, held)
        _waits_for(first, second, [key], end="commit")


def test_lock_keys_are_64_bit_and_namespaced() -> None:
    key = _locks.lock_key("orders", "abc")
    assert -(2**63) <= key < 2**63
    assert key == _locks.lock_key("orders", "abc")
    assert key != _locks.lock_key("order", "sabc")
    assert key != _locks.lock_key("payments", "abc")


def test_sqlite_needs_no_locks() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        assert () == _locks.hold(connection, [1, 2, 3])


def test_a_missing_lock_table_is_a_configuration_error(server_engine: sa.Engine) -> None:
    with server_engine.connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL search_path = pg_temp")
        else:  # a database without dynastream's tables
            empty = f"{connection.exec_driver_sql('SELECT DATABASE()').scalar()}_empty"
            connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {empty}")
            connection.exec_driver_sql(f"USE {empty}")
        try:
            with pytest.raises(ConfigurationError, match="dynastream create-tables"):
                _locks.hold(connection, [1])
        finally:
            if connection.dialect.name != "postgresql":
                connection.exec_driver_sql(f"DROP DATABASE {empty}")


def test_the_lock_table_keeps_nothing_it_need_not(server_engine: sa.Engine) -> None:
    """UNLOGGED on PostgreSQL; InnoDB on MySQL and MariaDB, whose other engines lock whole tables."""
    dynastream.schema.metadata.create_all(server_engine)
    with server_engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            query = "SELECT relpersistence FROM pg_class WHERE oid = CAST('dynastream_locks' AS regclass)"
            expected = "u"
        else:
            query = (
                "SELECT engine FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name = 'dynastream_locks'"
            )
            expected = "InnoDB"
        assert expected == connection.exec_driver_sql(query).scalar()
