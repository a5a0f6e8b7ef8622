"""
The dispatcher: one transaction per batch, the first failing record isolated.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import dynastream
from dynastream import StreamRecord, UnitOfWork
from dynastream._bisect import bisect_runs as _bisect
from dynastream.exceptions import (
    ConfigurationError,
    MalformedRecordError,
    MappingError,
    NoHandlerError,
    UnitOfWorkError,
)
from dynastream.testing import EventFactory
from tests.builders import FIRST_SEQUENCE_NUMBER, event_ids, insert_event

metadata = sa.MetaData()
rows = sa.Table(
    "dispatch_rows",
    metadata,
    sa.Column("id", dynastream.ExactString(40), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "dispatch_orm_rows"
    id: Mapped[str] = mapped_column(dynastream.ExactString(40), primary_key=True)
    n: Mapped[int]


class Boom(Exception):
    pass


class RowWriter:
    """Writes every record of a run in one multi-row INSERT, then fails if told to."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.fail_on = fail_on or set()
        self.calls: list[tuple[int, int]] = []

    def handle(self, records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        numbers = [int(r.new_image["n"]) for r in records if r.new_image is not None]
        self.calls.append((numbers[0], numbers[-1] + 1))
        uow.connection().execute(rows.insert(), [{"id": f"i-{n}", "n": n} for n in numbers])
        failing = self.fail_on.intersection(numbers)
        if failing:
            raise Boom(f"record {min(failing)}")


def make_app(engine: sa.Engine, writer: RowWriter, table: str = "Orders") -> dynastream.App:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.register(table, writer.handle)
    return app


def stored(engine: sa.Engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.scalars(sa.select(rows.c.n)))


def failures(sequence_number: int) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": str(sequence_number)}]}


@pytest.mark.parametrize("k", [0, 1, 500, 999])
def test_failure_at_record_k_commits_the_records_before_it_and_reports_exactly_k(
    engine: sa.Engine, k: int
) -> None:
    writer = RowWriter(fail_on={k})
    app = make_app(engine, writer)

    response = app.lambda_handler(insert_event(1000), None)

    assert failures(FIRST_SEQUENCE_NUMBER + k) == response
    assert list(range(k)) == stored(engine)


def test_batch_without_failure_commits_everything_and_reports_nothing(engine: sa.Engine) -> None:
    writer = RowWriter()
    app = make_app(engine, writer)

    response = app.lambda_handler(insert_event(1000), None)

    assert {"batchItemFailures": []} == response
    assert list(range(1000)) == stored(engine)
    assert [(0, 1000)] == writer.calls


def test_only_the_first_of_several_failing_records_is_reported(engine: sa.Engine) -> None:
    writer = RowWriter(fail_on={700, 300, 301})
    app = make_app(engine, writer)

    response = app.lambda_handler(insert_event(1000), None)

    assert failures(FIRST_SEQUENCE_NUMBER + 300) == response
    assert list(range(300)) == stored(engine)


def test_a_failure_costs_logarithmic_attempts(engine: sa.Engine) -> None:
    writer = RowWriter(fail_on={613})
    app = make_app(engine, writer)

    app.lambda_handler(insert_event(1000), None)

    assert len(writer.calls) <= 2 * 11
    assert sum(end - start for start, end in writer.calls) <= 2 * 1000 + 11


def test_no_connection_is_left_checked_out_after_an_invocation(engine: sa.Engine) -> None:
    app = make_app(engine, RowWriter(fail_on={5}))

    app.lambda_handler(insert_event(10), None)
    app.lambda_handler(insert_event(10, start=10), None)

    assert 0 == engine.pool.checkedout()  # type: ignore[attr-defined]


def test_malformed_record_is_reported_and_the_records_before_it_applied(engine: sa.Engine) -> None:
    writer = RowWriter()
    app = make_app(engine, writer)
    event = insert_event(10)
    event["Records"][6]["dynamodb"]["NewImage"]["n"] = {"N": 6}

    result = app.dispatch(event)

    assert failures(FIRST_SEQUENCE_NUMBER + 6) == result.response()
    assert list(range(6)) == stored(engine)
    assert isinstance(result.failure and result.failure.error, MalformedRecordError)
    assert [(0, 6)] == writer.calls


def test_malformed_record_without_a_sequence_number_fails_the_invocation_before_any_write(
    engine: sa.Engine,
) -> None:
    app = make_app(engine, RowWriter())
    event = insert_event(10)
    del event["Records"][3]["dynamodb"]["SequenceNumber"]

    with pytest.raises(MalformedRecordError) as raised:
        app.lambda_handler(event, None)

    assert "dynamodb.SequenceNumber" == raised.value.field
    assert 3 == raised.value.index
    assert [] == stored(engine)


def test_record_of_a_table_without_handler_is_reported_not_skipped(engine: sa.Engine) -> None:
    app = make_app(engine, RowWriter())
    event = insert_event(5)
    event["Records"].append(EventFactory().insert("Other", {"id": "x", "n": 9}, sequence_number=7))
    event["Records"].extend(insert_event(2, start=5)["Records"])

    result = app.dispatch(event)

    assert failures(7) == result.response()
    assert isinstance(result.failure and result.failure.error, NoHandlerError)
    assert list(range(5)) == stored(engine)


def test_mapping_error_is_reported_with_the_record_and_image(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    seen: list[int] = []

    def to_number(item: dynastream.Item) -> int:
        if item["n"] == 4:
            raise ValueError("four is not allowed")
        return int(item["n"])

    @app.handler("Orders", mapper=to_number)
    def collect(records: Sequence[StreamRecord[int]], uow: UnitOfWork) -> None:
        seen.extend(r.new_image for r in records if r.new_image is not None)

    result = app.dispatch(insert_event(8))

    assert failures(FIRST_SEQUENCE_NUMBER + 4) == result.response()
    assert [0, 1, 2, 3] == seen
    error = result.failure and result.failure.error
    assert isinstance(error, MappingError)
    assert "NewImage" == error.image
    assert isinstance(error.__cause__, ValueError)


def test_handler_that_commits_fails_the_invocation_and_nothing_is_written(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)

    @app.handler("Orders")
    def committing(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        uow.connection().execute(rows.insert(), [{"id": "a", "n": 1}])
        uow.session.commit()

    with pytest.raises(UnitOfWorkError):
        app.lambda_handler(insert_event(3), None)

    assert [] == stored(engine)


def test_transient_failure_is_retried_by_bisection_and_everything_applied(engine: sa.Engine) -> None:
    attempts: list[int] = []
    writer = RowWriter()
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)

    @app.handler("Orders")
    def flaky(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        attempts.append(len(records))
        writer.handle(records, uow)
        if len(attempts) == 1:
            raise Boom("transient")

    response = app.lambda_handler(insert_event(50), None)

    assert {"batchItemFailures": []} == response
    assert list(range(50)) == stored(engine)


def test_orm_flush_error_isolates_the_record_that_caused_it(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    app = dynastream.App(engine=engine)

    @app.handler("Orders")
    def add_rows(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        for r in records:
            assert r.new_image is not None
            n = int(r.new_image["n"])
            # record 30 reuses record 10's key: a duplicate primary key at flush time
            uow.session.add(Row(id=f"i-{10 if n == 30 else n}", n=n))

    response = app.lambda_handler(insert_event(40), None)

    assert failures(FIRST_SEQUENCE_NUMBER + 30) == response
    with engine.connect() as connection:
        assert list(range(30)) == sorted(connection.scalars(sa.select(Row.n)))


def test_handlers_of_one_table_run_in_registration_order_each_with_all_records() -> None:
    app = dynastream.App(database_url="sqlite://")
    calls: list[tuple[str, list[int]]] = []

    def recorder(name: str) -> Any:
        def handle(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
            calls.append((name, [r.sequence_number - FIRST_SEQUENCE_NUMBER for r in records]))

        return handle

    app.register("Orders", recorder("first"))
    app.register("Other", recorder("other"))
    app.register("Orders", recorder("second"))
    event = insert_event(3)
    event["Records"].insert(1, insert_event(1, table="Other", start=7)["Records"][0])

    app.lambda_handler(event, None)

    assert [("first", [0, 1, 2]), ("other", [7]), ("second", [0, 1, 2])] == calls


def test_empty_batch_touches_no_database() -> None:
    app = dynastream.App()
    app.container.engine.override(providers.Callable(lambda: pytest.fail("engine built")))
    app.register("Orders", lambda records, uow: None)

    assert {"batchItemFailures": []} == app.lambda_handler({"Records": []}, None)


def test_engine_is_built_once_and_reused_across_invocations(tmp_path: Any) -> None:
    app = dynastream.App(database_url=f"sqlite:///{tmp_path / 'reuse.sqlite'}")
    engines: list[sa.Engine] = []

    @app.handler("Orders")
    def note_engine(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        engines.append(uow.connection().engine)

    app.lambda_handler(insert_event(1), None)
    app.lambda_handler(insert_event(1, start=1), None)

    assert 2 == len(engines)
    assert engines[0] is engines[1]


def test_tumbling_window_state_is_passed_through() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.register("Orders", lambda records, uow: None)
    event = copy.deepcopy(insert_event(2))
    event.update(
        window={"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:05:00Z"},
        state={"count": 3},
        shardId="shardId-1",
        isFinalInvokeForWindow=False,
        isWindowTerminatedEarly=False,
    )

    assert {"batchItemFailures": [], "state": {"count": 3}} == app.lambda_handler(event, None)


class Ledger:
    def __init__(self) -> None:
        self.seen: list[str] = []


class LedgerHandler(dynastream.StreamEventHandler[dynastream.Item]):
    def __init__(self, ledger: Ledger, clock: Any) -> None:
        self.ledger = ledger
        self.clock = clock

    def handle(self, records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        self.ledger.seen.extend(r.event_id for r in records)


def test_handler_dependencies_are_resolved_by_name_from_the_container() -> None:
    app = dynastream.App(database_url="sqlite://")
    ledger = Ledger()
    app.container.ledger = providers.Object(ledger)
    app.handler("Orders")(LedgerHandler)

    app.lambda_handler(insert_event(2), None)

    assert event_ids(2) == ledger.seen


def test_overriding_a_provider_replaces_the_dependency() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.container.ledger = providers.Singleton(Ledger)
    app.handler("Orders")(LedgerHandler)
    fake = Ledger()

    with app.container.ledger.override(providers.Object(fake)):
        app.lambda_handler(insert_event(1), None)

    assert 1 == len(fake.seen)


def test_missing_dependency_is_a_configuration_error_naming_the_parameter() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.handler("Orders")(LedgerHandler)

    with pytest.raises(ConfigurationError, match="'ledger'"):
        app.check()


def test_check_names_every_missing_dependency_with_its_handler_or_mapper() -> None:
    app = dynastream.App(database_url="sqlite://")

    class NeedsRates:
        def __init__(self, rates: Any) -> None:
            self.rates = rates

        def __call__(self, item: dynastream.Item) -> dynastream.Item:
            return item

    app.handler("Orders")(LedgerHandler)
    app.handler("Payments", mapper=NeedsRates)(lambda records, uow: None)

    with pytest.raises(ConfigurationError) as raised:
        app.check()

    message = str(raised.value)
    assert "LedgerHandler" in message
    assert "'ledger'" in message
    assert "NeedsRates" in message
    assert "'rates'" in message


def test_a_handler_is_a_provider_a_test_overrides() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.handler("Orders")(LedgerHandler)  # its dependencies are not even there
    fake = Ledger()

    class Fake:
        def handle(self, records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
            fake.seen.extend(r.event_id for r in records)

    (registration,) = app.registrations
    with registration.handler_provider.override(providers.Object(Fake())):
        app.check()
        response = app.lambda_handler(insert_event(2), None)

    assert {"batchItemFailures": []} == response
    assert event_ids(2) == fake.seen
    with pytest.raises(ConfigurationError, match="'ledger'"):
        app.check()  # the override is gone


def test_a_mapper_is_a_provider_a_test_overrides() -> None:
    app = dynastream.App(database_url="sqlite://")
    got: list[Any] = []

    @app.handler("Orders", mapper=lambda item: "real")
    def collect(records: Sequence[StreamRecord[Any]], uow: UnitOfWork) -> None:
        got.extend(r.new_image for r in records)

    (registration,) = app.registrations
    with registration.mapper_provider.override(providers.Object(lambda item: "fake")):
        app.lambda_handler(insert_event(2), None)
    app.lambda_handler(insert_event(1), None)

    assert ["fake", "fake", "real"] == got


def test_an_overridden_exactly_once_handler_still_sees_each_record_once(engine: sa.Engine) -> None:
    app = dynastream.App(engine=engine)
    app.create_tables()
    seen: list[str] = []

    class Fake:
        def handle(self, records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
            seen.extend(r.event_id for r in records)

    app.handler("Orders", exactly_once="orders")(LedgerHandler)
    (registration,) = app.registrations
    with registration.handler_provider.override(providers.Object(Fake())):
        app.lambda_handler(insert_event(2), None)
        app.lambda_handler(insert_event(2), None)  # delivered again

    assert event_ids(2) == seen


def test_mapper_class_is_built_by_the_container_with_its_dependencies() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.container.scale = providers.Object(10)
    got: list[int] = []

    class Scaled:
        def __init__(self, scale: int) -> None:
            self.scale = scale

        def __call__(self, item: dynastream.Item) -> int:
            return int(item["n"]) * self.scale

    @app.handler("Orders", mapper=Scaled)
    def collect(records: Sequence[StreamRecord[int]], uow: UnitOfWork) -> None:
        got.extend(r.new_image for r in records if r.new_image is not None)

    app.lambda_handler(insert_event(3), None)

    assert [0, 10, 20] == got


def test_a_class_whose_instances_are_not_callable_is_refused_as_mapper() -> None:
    app = dynastream.App(database_url="sqlite://")

    class Payment:
        pass

    with pytest.raises(ConfigurationError, match="not callable"):
        app.register("Orders", lambda records, uow: None, mapper=Payment)


def test_handler_class_without_handle_is_refused() -> None:
    app = dynastream.App(database_url="sqlite://")

    class NotAHandler:
        pass

    with pytest.raises(ConfigurationError, match="handle"):
        app.register("Orders", NotAHandler)  # type: ignore[arg-type]


def test_no_database_configured_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNASTREAM_DATABASE_URL", raising=False)
    app = dynastream.App()
    app.register("Orders", lambda records, uow: None)

    with pytest.raises(ConfigurationError, match="DYNASTREAM_DATABASE_URL"):
        app.lambda_handler(insert_event(1), None)


def test_database_url_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url)
    app = dynastream.App()

    assert url == str(app.container.engine().url)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ("", (0, None)),
        ("ok", (10, None)),
        ("fail", (0, "f")),
    ],
)
def test_bisect_edge_cases(outcomes: str, expected: tuple[int, Any]) -> None:
    limit = {"": 0, "ok": 10, "fail": 1}[outcomes]
    applied, error = _bisect(lambda start, end: "f" if outcomes == "fail" else None, limit)

    assert expected == (applied, error)


def test_failure_log_names_the_record_but_never_its_data(caplog: pytest.LogCaptureFixture) -> None:
    canary = "canary-4f1e@example.com"
    app = dynastream.App(database_url="sqlite://")

    @app.handler("Orders")
    def refuse(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        raise Boom("refused")

    events = EventFactory()
    event = events.event(events.insert("Orders", {"id": canary, "n": 1}, sequence_number=42))
    with caplog.at_level("DEBUG", logger="dynastream"):
        app.lambda_handler(event, None)

    assert "SequenceNumber=42" in caplog.text
    assert canary not in caplog.text


def test_result_counts_every_record_of_the_event() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.register("Orders", lambda records, uow: None)
    event = insert_event(10)
    event["Records"][4]["eventName"] = "UPSERT"

    result = app.dispatch(event)

    assert (10, 4, 4) == (result.total, result.applied, result.failure and result.failure.index)


def test_a_failure_during_commit_is_neither_retried_nor_reported_as_applied(engine: sa.Engine) -> None:
    import pymysql.err

    writer = RowWriter()
    app = make_app(engine, writer)

    def lose_the_connection(connection: sa.Connection) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, pymysql.err.OperationalError(2013, "Lost connection"))

    sa.event.listen(engine, "commit", lose_the_connection)
    try:
        with pytest.raises(dynastream.CommitOutcomeUnknownError) as raised:
            app.lambda_handler(insert_event(5), None)
    finally:
        sa.event.remove(engine, "commit", lose_the_connection)

    assert isinstance(raised.value.__cause__, sa.exc.OperationalError)
    assert [(0, 5)] == writer.calls  # attempted once, not retried


class FakeContext:
    """A Lambda context whose remaining time is read from a list, one value per call."""

    def __init__(self, *remaining_ms: int) -> None:
        self.remaining = list(remaining_ms)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]


def test_no_work_starts_when_less_than_the_margin_is_left(engine: sa.Engine) -> None:
    writer = RowWriter()
    app = make_app(engine, writer)

    result = app.dispatch(insert_event(10), FakeContext(9_000))  # the default margin is 10 s

    assert failures(FIRST_SEQUENCE_NUMBER) == result.response()
    assert isinstance(result.failure and result.failure.error, dynastream.exceptions.TimeBudgetError)
    assert ([], []) == (writer.calls, stored(engine))


def test_bisection_stops_when_time_runs_short_and_commits_what_it_applied(engine: sa.Engine) -> None:
    writer = RowWriter(fail_on={700})
    app = make_app(engine, writer)
    # Plenty of time for the first two attempts ([0, 1000) fails, [0, 500) succeeds), then 5 s.
    context = FakeContext(60_000, 60_000, 60_000, 5_000)

    result = app.dispatch(insert_event(1000), context)

    assert failures(FIRST_SEQUENCE_NUMBER + 500) == result.response()
    assert isinstance(result.failure and result.failure.error, dynastream.exceptions.TimeBudgetError)
    assert list(range(500)) == stored(engine)


def test_time_margin_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNASTREAM_TIME_MARGIN_SECONDS", "2.5")
    assert 2.5 == dynastream.Settings.from_env().time_margin_seconds

    monkeypatch.setenv("DYNASTREAM_TIME_MARGIN_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="TIME_MARGIN_SECONDS"):
        dynastream.Settings.from_env()
