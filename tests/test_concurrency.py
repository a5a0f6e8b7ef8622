"""
The sequence guard holds under concurrent transactions on the same keys.

On the database servers only: SQLite has a single writer.
"""

from __future__ import annotations

import random
import threading
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
