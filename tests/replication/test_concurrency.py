"""
The sequence guard holds under concurrent transactions on the same keys.

On the database servers only: SQLite has a single writer.
"""

from __future__ import annotations

import random
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream.testing import EventFactory

metadata = sa.MetaData()
counters = sa.Table(
    "concurrent_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("amount", sa.Numeric(20, 0)),
    dynastream.sequence_column(),
)


effects = sa.Table(
    "concurrent_effects", metadata, sa.Column("n", sa.Integer, primary_key=True, autoincrement=False)
)

EVENTS = EventFactory(keys=["pk"], view_type="NEW_IMAGE", created_at=1_790_000_000)


def put(pk: str, sequence_number: int) -> dict[str, Any]:
    item = {"pk": pk, "amount": Decimal(sequence_number % 10**9)}
    return EVENTS.modify("Items", item, sequence_number=sequence_number)


def remove(pk: str, sequence_number: int) -> dict[str, Any]:
    return EVENTS.remove("Items", {"pk": pk}, sequence_number=sequence_number)


def run_concurrently(engine: sa.Engine, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """Apply each batch through its own App (own connection), all at once."""
    apps = []
    for _ in batches:
        app = dynastream.App(engine=sa.create_engine(engine.url, poolclass=sa.pool.NullPool))
        app.replicate("Items", into=counters)
        apps.append(app)
    barrier = threading.Barrier(len(batches))
    results: list[Any] = [None] * len(batches)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = apps[index].lambda_handler({"Records": batches[index]}, None)
        except Exception as error:  # reported to the test below
            results[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture
def tables(server_engine: sa.Engine) -> sa.Engine:
    metadata.create_all(server_engine)
    dynastream.schema.metadata.create_all(server_engine)
    return server_engine


def test_concurrent_versions_of_the_same_keys_end_at_the_newest(tables: sa.Engine) -> None:
    server_engine = tables
    keys = [f"k{n}" for n in range(50)]
    rng = random.Random(7)
    base = 10**25
    newest: dict[str, int] = {}
    batches = []
    for worker in range(4):
        batch = []
        for key in rng.sample(keys, 40):
            sequence_number = base + rng.randrange(10**6) * 10 + worker
            newest[key] = max(newest.get(key, 0), sequence_number)
            batch.append(put(key, sequence_number))
        batches.append(batch)

    results = run_concurrently(server_engine, batches)

    assert [{"batchItemFailures": []}] * 4 == results
    with server_engine.connect() as connection:
        stored = dict(connection.execute(sa.select(counters.c.pk, counters.c.dynastream_sequence)).all())
    assert {key: str(value).zfill(40) for key, value in newest.items()} == stored


def test_concurrent_remove_and_older_insert_never_resurrect(tables: sa.Engine) -> None:
    server_engine = tables
    keys = [f"k{n}" for n in range(60)]
    base = 10**30
    inserts = [put(key, base + 1) for key in keys]
    removes = [remove(key, base + 2) for key in keys]

    for _ in range(3):
        results = run_concurrently(server_engine, [inserts, removes, list(reversed(inserts))])
        assert [{"batchItemFailures": []}] * 3 == results
        with server_engine.connect() as connection:
            assert 0 == connection.scalar(sa.select(sa.func.count()).select_from(counters))


def kill_own_connection(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
    else:
        connection.exec_driver_sql("KILL CONNECTION_ID()")


def test_a_connection_lost_before_commit_is_replaced_and_the_batch_applied_once(tables: sa.Engine) -> None:
    app = dynastream.App(engine=tables)
    killed: list[bool] = []

    @app.handler("Items")
    def write_then_die_once(records: Any, uow: dynastream.UnitOfWork) -> None:
        connection = uow.connection()
        connection.execute(effects.insert(), [{"n": n} for n in range(1, len(records) + 1)])
        if not killed:
            killed.append(True)
            kill_own_connection(connection)

    response = app.lambda_handler({"Records": [put(f"k{n}", 10**25 + n) for n in range(5)]}, None)

    assert {"batchItemFailures": []} == response
    assert [True] == killed
    with tables.connect() as connection:
        assert [1, 2, 3, 4, 5] == sorted(connection.scalars(sa.select(effects.c.n)))


hits = sa.Table(
    "concurrent_hits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("hits", sa.Integer, nullable=False),
)


def test_a_deadlock_retries_the_whole_transaction_and_applies_each_batch_once(
    tables: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A real deadlock: the server rolls back its victim (InnoDB: the whole transaction,
    savepoints included) and the victim's batch is applied again, not failed.

    What is retried is the deadlock itself, not the "SAVEPOINT ... does not exist" of
    a rollback to a savepoint the deadlock took away.
    """
    from dynastream import _retry as _failures

    retried: list[BaseException] = []
    is_transient = _failures.is_transient

    def recording(error: BaseException) -> bool:
        retried.append(error)
        return is_transient(error)

    monkeypatch.setattr(_failures, "is_transient", recording)
    with tables.begin() as connection:
        connection.execute(hits.insert(), [{"id": 1, "hits": 0}, {"id": 2, "hits": 0}])
    barrier = threading.Barrier(2, timeout=5)
    attempts: list[str] = []
    apps = []
    for name, order in (("first", (1, 2)), ("second", (2, 1))):
        app = dynastream.App(engine=sa.create_engine(tables.url, poolclass=sa.pool.NullPool))

        def touch(
            records: Any, uow: dynastream.UnitOfWork, name: str = name, order: tuple[int, int] = order
        ) -> None:
            connection = uow.connection()
            attempts.append(name)
            for step, row in enumerate(order):
                connection.execute(hits.update().where(hits.c.id == row).values(hits=hits.c.hits + 1))
                if step == 0 and attempts.count(name) == 1:
                    barrier.wait()  # both hold their first row: each now waits for the other's

        app.handler("Items")(touch)
        apps.append(app)
    results: list[Any] = [None, None]

    def work(index: int) -> None:
        try:
            results[index] = apps[index].lambda_handler({"Records": [put(f"k{index}", 10**25 + index)]}, None)
        except Exception as error:  # reported below
            results[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [{"batchItemFailures": []}] * 2 == results
    assert 3 == len(attempts)  # the victim ran twice
    assert 1 == len(retried)
    assert "SAVEPOINT" not in str(retried[0])
    assert getattr(retried[0], "orig", None).__class__.__name__ in ("OperationalError", "DeadlockDetected")
    with tables.connect() as connection:
        assert [(1, 2), (2, 2)] == connection.execute(sa.select(hits).order_by(hits.c.id)).all()


def test_concurrent_deliveries_of_one_batch_reach_an_exactly_once_handler_once(tables: sa.Engine) -> None:
    records = [put(f"k{n}", 10**25 + n) for n in range(30)]
    apps = []
    for _ in range(4):
        app = dynastream.App(engine=sa.create_engine(tables.url, poolclass=sa.pool.NullPool))

        @app.handler("Items", exactly_once=True)
        def count(batch: Any, uow: dynastream.UnitOfWork) -> None:
            uow.connection().execute(
                effects.insert(), [{"n": int(record.sequence_number) - 10**25} for record in batch]
            )

        apps.append(app)
    apps[0].create_tables()
    barrier = threading.Barrier(len(apps))
    results: list[Any] = [None] * len(apps)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = apps[index].lambda_handler({"Records": records}, None)
        except Exception as error:  # reported below
            results[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [{"batchItemFailures": []}] * len(apps) == results
    with tables.connect() as connection:
        assert list(range(30)) == sorted(connection.scalars(sa.select(effects.c.n)))


soft_counters = sa.Table(
    "concurrent_soft_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("amount", sa.Numeric(20, 0)),
    dynastream.sequence_column(),
    dynastream.deleted_column(),
)


@pytest.mark.parametrize("deletes", ["delete", "soft_delete"])
@pytest.mark.parametrize("existing", [False, True], ids=["new-item", "existing-row"])
def test_an_older_insert_never_resurrects_what_a_remove_in_flight_deleted(
    tables: sa.Engine, existing: bool, deletes: str
) -> None:
    """
    The READ COMMITTED race the item locks close, made deterministic: the REMOVE has
    written its tombstone and deleted (or marked) the row, and waits before COMMIT
    while an older INSERT of the same items runs. Without the locks the INSERT sees
    neither the uncommitted tombstone nor the deletion, writes the row, and brings it
    back.
    """
    table = counters if deletes == "delete" else soft_counters
    options: dict[str, Any] = {"into": table, "deletes": deletes}
    keys = [f"k{n}" for n in range(20)]
    base = 10**30
    if existing:
        dynastream_app = dynastream.App(engine=tables)
        dynastream_app.replicate("Items", **options)
        assert {"batchItemFailures": []} == dynastream_app.lambda_handler(
            {"Records": [put(key, base) for key in keys]}, None
        )
    remover_engine = sa.create_engine(tables.url, poolclass=sa.pool.NullPool)
    deleted = threading.Event()
    verb = "DELETE" if deletes == "delete" else "UPDATE"

    @sa.event.listens_for(remover_engine, "after_cursor_execute")
    def linger_before_commit(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "dynastream_sequence" in statement and statement.lstrip().upper().startswith(verb):
            deleted.set()
            time.sleep(1.0)  # the REMOVE's transaction stays open: tombstones and deletion uncommitted

    remover = dynastream.App(engine=remover_engine)
    remover.replicate("Items", **options)
    inserter = dynastream.App(engine=sa.create_engine(tables.url, poolclass=sa.pool.NullPool))
    inserter.replicate("Items", **options)
    results: list[Any] = [None, None]

    def remove_all() -> None:
        results[0] = remover.lambda_handler({"Records": [remove(key, base + 2) for key in keys]}, None)

    thread = threading.Thread(target=remove_all)
    thread.start()
    assert deleted.wait(10)
    results[1] = inserter.lambda_handler({"Records": [put(key, base + 1) for key in keys]}, None)
    thread.join()

    assert [{"batchItemFailures": []}] * 2 == results
    live = sa.select(sa.func.count()).select_from(table)
    if deletes == "soft_delete":
        live = live.where(table.c.dynastream_deleted_at.is_(None))
    with tables.connect() as connection:
        assert 0 == connection.scalar(live)
