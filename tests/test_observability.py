"""
Observability: the per-batch summary line, its counts by outcome, and EMF metrics.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from dynastream import StreamRecord, UnitOfWork
from dynastream.testing import EventFactory, LambdaContext

metadata = sa.MetaData()
orders = sa.Table(
    "observed_orders",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("total", sa.Numeric(12, 2)),
    dynastream.sequence_column(),
)
soft_orders = sa.Table(
    "observed_soft_orders",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("total", sa.Numeric(12, 2)),
    dynastream.sequence_column(),
    dynastream.deleted_column(),
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Collected:
    """A metrics sink that keeps what it is given."""

    def __init__(self) -> None:
        self.summaries: list[dynastream.BatchSummary] = []

    def publish(self, summary: dynastream.BatchSummary) -> None:
        self.summaries.append(summary)


@pytest.fixture(autouse=True)
def _restore_dynastream_logger() -> Iterator[None]:
    logger = logging.getLogger("dynastream")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    logger.handlers[:] = []  # whatever an earlier test left, these start from a plain logger
    logger.propagate = True
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


def make_app(engine: sa.Engine, into: sa.Table = orders, **options: Any) -> tuple[dynastream.App, Collected]:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.container.clock.override(providers.Object(lambda: NOW))
    sink = Collected()
    app.container.metrics.override(providers.Object(sink))
    app.replicate("Orders", into=into, **options)
    return app, sink


def counts(summary: dynastream.BatchSummary | None) -> dict[str, int]:
    assert summary is not None
    return {
        outcome: summary.total(outcome)
        for outcome in ("applied", "stale_skipped", "deleted", "quarantined", "failed", "unprocessed")
    }


def expect(
    *,
    applied: int = 0,
    stale_skipped: int = 0,
    deleted: int = 0,
    quarantined: int = 0,
    failed: int = 0,
    unprocessed: int = 0,
) -> dict[str, int]:
    return {
        "applied": applied,
        "stale_skipped": stale_skipped,
        "deleted": deleted,
        "quarantined": quarantined,
        "failed": failed,
        "unprocessed": unprocessed,
    }


def test_replication_counts_applied_stale_and_deleted_records(engine: sa.Engine) -> None:
    """
    PostgreSQL and SQLite tell a row the guard kept from a row written;
    MySQL/MariaDB report both alike, so there a redelivered change that found
    its row counts as applied (only superseded, tombstoned and no-op deletes
    count as stale).
    """
    app, sink = make_app(engine)
    events = EventFactory(keys=["pk"], view_type="NEW_IMAGE", first_sequence_number=10**24)
    first = events.event(
        events.insert("Orders", {"pk": "a", "total": Decimal(1)}),
        events.insert("Orders", {"pk": "b", "total": Decimal(2)}),
        events.modify("Orders", {"pk": "a", "total": Decimal(3)}),  # supersedes a's insert
    )
    second = events.event(
        events.remove("Orders", {"pk": "b"}),
        events.insert("Orders", {"pk": "c", "total": Decimal(4)}),
    )
    mysql = engine.dialect.name in ("mysql", "mariadb")

    assert expect(applied=2, stale_skipped=1) == counts(app.dispatch(first).summary)
    assert expect(applied=1, deleted=1) == counts(app.dispatch(second).summary)
    # Delivered again: a's row is as new as the change (kept by the guard), b's
    # insert meets b's tombstone, a's insert is superseded.
    assert (expect(applied=1, stale_skipped=2) if mysql else expect(stale_skipped=3)) == counts(
        app.dispatch(first).summary
    )
    # b is gone already; c's row is as new.
    assert (expect(applied=1, stale_skipped=1) if mysql else expect(stale_skipped=2)) == counts(
        app.dispatch(second).summary
    )
    assert 4 == len(sink.summaries)


def test_soft_deletes_count_as_deleted(engine: sa.Engine) -> None:
    app, _ = make_app(engine, into=soft_orders, deletes="soft_delete")
    events = EventFactory(keys=["pk"], view_type="NEW_AND_OLD_IMAGES", first_sequence_number=10**24)
    inserted = events.event(
        events.insert("Orders", {"pk": "a", "total": Decimal(1)}),
        events.insert("Orders", {"pk": "b", "total": Decimal(2)}),
    )
    removed = events.event(events.remove("Orders", {"pk": "a"}), events.remove("Orders", {"pk": "b"}))

    assert expect(applied=2) == counts(app.dispatch(inserted).summary)
    assert expect(deleted=2) == counts(app.dispatch(removed).summary)
    # Delivered again: the tombstones hold the rows' last images back, on every engine.
    assert expect(stale_skipped=2) == counts(app.dispatch(removed).summary)


def test_ttl_deletes_ignored_by_policy_count_as_applied(engine: sa.Engine) -> None:
    app, _ = make_app(engine, ttl="ignore")
    events = EventFactory(keys=["pk"], view_type="NEW_IMAGE", first_sequence_number=10**24)
    app.dispatch(events.event(events.insert("Orders", {"pk": "a", "total": Decimal(1)})))

    summary = app.dispatch(events.event(events.remove("Orders", {"pk": "a"}, ttl=True))).summary

    assert expect(applied=1) == counts(summary)


def test_exactly_once_handler_counts_redelivered_records_as_stale(engine: sa.Engine) -> None:
    app, _ = make_app(engine)
    seen: list[str] = []

    @app.handler("Payments", exactly_once=True)
    def record(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        seen.extend(r.event_id for r in records)

    events = EventFactory(keys=["pk"], view_type="NEW_IMAGE")
    event = events.event(events.insert("Payments", {"pk": "p1"}), events.insert("Payments", {"pk": "p2"}))

    assert expect(applied=2) == counts(app.dispatch(event).summary)
    assert expect(stale_skipped=2) == counts(app.dispatch(event).summary)
    assert 2 == len(seen)


def test_failure_quarantine_and_unprocessed_records_are_counted(engine: sa.Engine) -> None:
    app, _ = make_app(engine, on_poison="quarantine")

    @app.handler("Payments")
    def refuse(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        if any(r.keys["pk"] == "bad" for r in records):
            raise ValueError("refused")

    events = EventFactory(keys=["pk"], view_type="NEW_IMAGE", first_sequence_number=10**24)
    event = events.event(
        events.insert("Orders", {"pk": "a", "total": Decimal(1)}),
        events.insert("Orders", {"pk": "b", "total": "not a number"}),  # quarantined
        events.insert("Payments", {"pk": "ok"}),
        events.insert("Payments", {"pk": "bad"}),  # reported
        events.insert("Payments", {"pk": "later"}),
        events.insert("Orders", {"pk": "c", "total": Decimal(3)}),
    )

    result = app.dispatch(event)
    summary = result.summary

    assert summary is not None
    assert result.failure is not None
    assert expect(applied=2, quarantined=1, failed=1, unprocessed=2) == counts(summary)
    by_table = {t.table_name: t for t in summary.tables}
    assert (1, 1, 0, 1) == (
        by_table["Orders"].applied,
        by_table["Orders"].quarantined,
        by_table["Orders"].failed,
        by_table["Orders"].unprocessed,
    )
    assert (1, 1, 1) == (
        by_table["Payments"].applied,
        by_table["Payments"].failed,
        by_table["Payments"].unprocessed,
    )
    assert result.failure.item_identifier == summary.failed_sequence_number
    assert result.failure.event_id == summary.failed_event_id
    assert "ValueError" == summary.error_type


def test_lag_is_now_minus_the_oldest_creation_time() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.container.clock.override(providers.Object(lambda: NOW))
    app.container.metrics.override(providers.Object(None))

    @app.handler("Orders")
    def ignore(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        pass

    events = EventFactory(keys=["pk"])
    event = events.event(
        events.insert("Orders", {"pk": "a"}, created_at=NOW - timedelta(seconds=30)),
        events.insert("Orders", {"pk": "b"}, created_at=NOW - timedelta(seconds=90)),
        events.insert("Orders", {"pk": "c"}, created_at=NOW - timedelta(seconds=5)),
    )

    summary = app.dispatch(event).summary

    assert summary is not None
    assert 90_000 == summary.max_lag_ms
    assert 90_000 == summary.tables[0].max_lag_ms


def test_summary_line_is_logged_at_info_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    app = dynastream.App(database_url="sqlite://")
    app.container.metrics.override(providers.Object(None))

    @app.handler("Orders")
    def ignore(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        pass

    events = EventFactory(keys=["pk"])
    with caplog.at_level(logging.INFO, logger="dynastream"):
        app.lambda_handler(
            events.event(events.insert("Orders", {"pk": "a"})), LambdaContext(function_name="fn")
        )

    [line] = [r for r in caplog.records if r.message.startswith("batch of")]
    assert logging.INFO == line.levelno
    assert "dynastream" == line.name
    fields = line.__dict__
    assert (["Orders"], 1, 1, 0, 0, 0, 0, "fn") == (
        fields["tables"],
        fields["records"],
        fields["applied"],
        fields["stale_skipped"],
        fields["deleted"],
        fields["quarantined"],
        fields["failed"],
        fields["function_name"],
    )
    assert isinstance(fields["duration_ms"], float)
    assert "failed_sequence_number" not in fields


def test_an_invocation_that_raises_counts_its_records_as_failed() -> None:
    app = dynastream.App(database_url="sqlite://")
    sink = Collected()
    app.container.metrics.override(providers.Object(sink))

    with pytest.raises(dynastream.MalformedEventError):
        app.dispatch({"Records": "not a list"})

    [summary] = sink.summaries
    assert "MalformedEventError" == summary.error_type
    assert summary.total("failed") >= 1


def test_json_formatter_writes_one_object_per_line_without_exception_messages() -> None:
    stream = io.StringIO()
    logger = dynastream.configure_logging("DEBUG", stream=stream, force=True)
    value = "-".join(["canary", "value"])  # an item's value: never in the source line of the stack
    try:
        raise ValueError(value)
    except ValueError:
        logger.exception("record failed", extra={"sequence_number": "123"})
    logger.info("batch", extra={"applied": 3})

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert ("ERROR", "dynastream", "record failed", "123", "ValueError") == (
        first["level"],
        first["logger"],
        first["message"],
        first["sequence_number"],
        first["exception"],
    )
    assert "canary-value" not in stream.getvalue()
    assert "test_observability.py" in first["stack"]
    assert 3 == second["applied"]
    assert second["timestamp"].endswith("+00:00")


def test_configure_logging_twice_keeps_one_handler() -> None:
    dynastream.configure_logging("INFO", stream=io.StringIO(), force=True)
    logger = dynastream.configure_logging("INFO", stream=io.StringIO(), force=True)

    assert 1 == len(logger.handlers)
    assert not logger.propagate


# EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
EMF_UNITS = {"Count", "Milliseconds", "Seconds", "Percent", "None", "Bytes", "Count/Second"}


def validate_emf(document: dict[str, Any]) -> None:
    """Check a document against the EMF specification's structure."""
    metadata = document["_aws"]
    assert isinstance(metadata["Timestamp"], int)
    assert metadata["Timestamp"] > 1_500_000_000_000  # milliseconds since the epoch
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list)
    assert 1 <= len(directives)
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str)
        assert 1 <= len(directive["Namespace"]) <= 1024
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(document[name], str)  # each dimension is a top-level string
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert metric["Unit"] in EMF_UNITS
            value = document[metric["Name"]]  # each metric's value (or array of values) is at the top level
            for number in value if isinstance(value, list) else [value]:
                assert isinstance(number, (int, float))
                assert not isinstance(number, bool)


def test_emf_document_per_batch_follows_the_specification(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-replica")
    monkeypatch.setenv("DYNASTREAM_METRICS_NAMESPACE", "shop")
    app = dynastream.App(database_url="sqlite://")
    app.container.clock.override(providers.Object(lambda: NOW))

    @app.handler("Orders")
    def ignore(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        pass

    events = EventFactory(keys=["pk"], created_at=NOW - timedelta(seconds=2))
    event = events.event(events.insert("Orders", {"pk": "a"}), events.insert("Orders", {"pk": "b"}))
    app.lambda_handler(event, LambdaContext(function_name="orders-replica"))

    [line] = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    validate_emf(document)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert "shop" == directive["Namespace"]
    assert [["FunctionName", "TableName"]] == directive["Dimensions"]
    assert {
        "RecordsApplied": "Count",
        "RecordsStaleSkipped": "Count",
        "RecordsDeleted": "Count",
        "RecordsQuarantined": "Count",
        "RecordsFailed": "Count",
        "BatchDuration": "Milliseconds",
        "ReplicationLag": "Milliseconds",
    } == {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert ("orders-replica", "Orders", 2, 0, 2000) == (
        document["FunctionName"],
        document["TableName"],
        document["RecordsApplied"],
        document["RecordsFailed"],
        document["ReplicationLag"],
    )


@pytest.mark.parametrize(
    ("environment", "printed"),
    [
        ({"AWS_LAMBDA_FUNCTION_NAME": "fn"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "fn", "DYNASTREAM_METRICS": "false"}, False),
        ({}, False),  # outside Lambda: nothing would read them
    ],
)
def test_emf_is_printed_in_lambda_unless_switched_off(
    environment: dict[str, str],
    printed: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = dynastream.App(database_url="sqlite://")

    app.lambda_handler(ignore_orders(app), LambdaContext())

    assert printed == ('"_aws"' in capsys.readouterr().out)


def test_emf_without_records_or_context_still_validates() -> None:
    summary = dynastream.BatchSummary(
        tables=(dynastream.TableSummary(None, failed=1),), records=1, duration_ms=1.0, error_type="X"
    )

    [document] = dynastream.EmfMetrics().documents(summary)

    validate_emf(document)
    assert [[]] == document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert "ReplicationLag" not in document


def ignore_orders(app: dynastream.App) -> dict[str, Any]:
    @app.handler("Orders")
    def ignore(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        pass

    events = EventFactory(keys=["pk"])
    return events.event(events.insert("Orders", {"pk": "a"}))


def test_powertools_logger_on_the_root_receives_the_fields_once(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("aws_lambda_powertools")
    from aws_lambda_powertools import Logger

    stream = io.StringIO()
    root = logging.getLogger()
    # Powertools keeps one logger per service name, with the handler of its first creation:
    # a name of this test's own, so that the handler is this test's stream.
    powertools = Logger(service=f"orders-{uuid.uuid4().hex}", logger_handler=logging.StreamHandler(stream))
    handler = powertools.handlers[0] if powertools.handlers else powertools.registered_handler
    root.addHandler(handler)
    try:
        dynastream.configure_logging("INFO")
        app = dynastream.App(database_url="sqlite://")
        app.container.metrics.override(providers.Object(None))
        app.lambda_handler(ignore_orders(app), LambdaContext())
    finally:
        root.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [summary] = [line for line in lines if line["message"].startswith("batch of")]
    assert ("INFO", ["Orders"], 1, 0) == (
        summary["level"],
        summary["tables"],
        summary["applied"],
        summary["failed"],
    )
    assert "batch of" not in capsys.readouterr().out  # dynastream added no handler of its own


def test_powertools_copied_config_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("aws_lambda_powertools")
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    stream = io.StringIO()
    service = f"payments-{uuid.uuid4().hex}"  # Powertools keeps a service's first handler: a new name
    powertools = Logger(service=service, logger_handler=logging.StreamHandler(stream))
    copy_config_to_registered_loggers(source_logger=powertools, include={"dynastream"})
    dynastream.configure_logging()
    app = dynastream.App(database_url="sqlite://")
    app.container.metrics.override(providers.Object(None))
    app.lambda_handler(ignore_orders(app), LambdaContext())

    [summary] = [json.loads(line) for line in stream.getvalue().splitlines() if "batch of" in line]
    assert (1, service) == (summary["applied"], summary["service"])
    assert "batch of" not in capsys.readouterr().out


def test_powertools_metrics_and_emf_flush_separately(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("aws_lambda_powertools")
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    metrics = Metrics(namespace="Shop", service="orders")
    app = dynastream.App(database_url="sqlite://")
    event = ignore_orders(app)

    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="OrdersSeen", unit=MetricUnit.Count, value=1)
        return app.lambda_handler(event, context)

    lambda_handler(event, LambdaContext())

    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    namespaces = sorted(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents)
    assert ["Shop", "dynastream"] == namespaces
    for document in documents:
        validate_emf(document)


def test_a_level_the_application_set_on_the_logger_wins_over_the_settings() -> None:
    logger = logging.getLogger("dynastream")
    logger.setLevel(logging.CRITICAL)
    app = dynastream.App(database_url="sqlite://")

    app.lambda_handler(ignore_orders(app), LambdaContext())

    assert logging.CRITICAL == logger.level
