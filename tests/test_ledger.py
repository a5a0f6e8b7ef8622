"""
Exactly-once custom handlers: the ledger of applied eventIDs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import dynastream
from dynastream import StreamRecord, UnitOfWork
from tests.builders import FIRST_SEQUENCE_NUMBER, event_ids, insert_event

metadata = sa.MetaData()
effects = sa.Table(
    "ledger_effects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(128), nullable=False),
)


def counting_app(engine: sa.Engine, *, fail_on: int | None = None) -> dynastream.App:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()

    @app.handler("Orders", exactly_once="payments-ledger")
    def count(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        uow.connection().execute(effects.insert(), [{"event_id": r.event_id} for r in records])
        if fail_on is not None and any(r.sequence_number == FIRST_SEQUENCE_NUMBER + fail_on for r in records):
            raise RuntimeError("refused")

    return app


def applied(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.scalars(sa.select(effects.c.event_id)))


def test_redelivered_records_reach_the_handler_once(engine: sa.Engine) -> None:
    app = counting_app(engine)

    app.lambda_handler(insert_event(20), None)
    app.lambda_handler(insert_event(30), None)  # the first 20 again, then 10 new

    assert sorted(event_ids(30)) == applied(engine)


def test_records_of_a_failed_run_are_not_marked_applied(engine: sa.Engine) -> None:
    failing = counting_app(engine, fail_on=12)

    response = failing.lambda_handler(insert_event(20), None)
    assert [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER + 12)}] == response["batchItemFailures"]

    healed = dynastream.App(engine=engine)

    @healed.handler("Orders", exactly_once="payments-ledger")
    def count(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        uow.connection().execute(effects.insert(), [{"event_id": r.event_id} for r in records])

    healed.lambda_handler({"Records": insert_event(20)["Records"][12:]}, None)

    assert sorted(event_ids(20)) == applied(engine)


def test_ledgers_of_different_handlers_are_separate(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    seen: dict[str, int] = {"first": 0, "second": 0}

    @app.handler("Orders", exactly_once=True)
    def first(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        seen["first"] += len(records)

    @app.handler("Orders", exactly_once=True)
    def second(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        seen["second"] += len(records)

    app.lambda_handler(insert_event(5), None)
    app.lambda_handler(insert_event(5), None)

    assert {"first": 5, "second": 5} == seen


def test_ledger_rows_are_pruned_after_their_retention(engine: sa.Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from dependency_injector import providers

    app = counting_app(engine)
    now = [datetime(2026, 11, 1, tzinfo=UTC)]
    app.container.clock.override(providers.Object(lambda: now[0]))
    ledger = dynastream.schema.applied_events

    def kept() -> int:
        with engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.count()).select_from(ledger)) or 0

    app.lambda_handler(insert_event(3), None)
    now[0] += timedelta(hours=47)
    app.lambda_handler(insert_event(2, start=3), None)
    assert 5 == kept()

    now[0] += timedelta(hours=2)
    app.lambda_handler(insert_event(1, start=5), None)
    assert 3 == kept()  # the first three, 49 hours old, are gone


def test_a_change_kinesis_delivers_again_reaches_the_handler_once(engine: sa.Engine) -> None:
    from dynastream.testing import EventFactory

    app = counting_app(engine)
    events = EventFactory(keys=["orderId"], source="kinesis", precision="MICROSECOND")
    changes = [events.insert("Orders", {"orderId": f"o-{n}"}) for n in range(3)]

    app.lambda_handler(events.event(changes[0], changes[1]), None)
    app.lambda_handler(events.event(changes[1], changes[2], changes[0]), None)  # new Kinesis sequence numbers

    assert sorted(change["eventID"] for change in changes) == applied(engine)
