"""
Observability: one summary log line and one metrics document per batch.

The dispatcher counts what each batch did (records applied, skipped as stale,
deleted, quarantined, failed), how long it took and how far behind the stream
it was, into a `BatchSummary`. It logs the summary at INFO on the `dynastream`
logger, with every field also attached to the log record (what `extra=` does),
and hands it to the metrics sink, by default `EmfMetrics`: a CloudWatch
Embedded Metric Format document printed to standard output, which Lambda sends
to CloudWatch Logs and CloudWatch turns into metrics.

Nothing here holds item images or key values: only table names, counts,
durations, sequence numbers, eventIDs and error type names.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._records import StreamRecord
    from ._settings import Settings
    from .typing import MetricsSink

__all__ = [
    "BatchSummary",
    "EmfMetrics",
    "JsonFormatter",
    "Outcomes",
    "TableSummary",
    "configure_logging",
    "exception_fields",
    "report_outcomes",
]

LOGGER_NAME = "dynastream"


@attrs.define(slots=True)
class Outcomes:
    """
    What a handler did with the records it was given (internal tally).

    Built-in replication and exactly-once handlers report into the one the
    dispatcher puts on the unit of work; records of a handler that reports
    nothing count as applied.
    """

    applied: int = 0
    stale_skipped: int = 0
    deleted: int = 0
    reported: bool = False

    def add(self, other: Outcomes) -> None:
        """
        Add `other`'s counts to these.
        """
        self.applied += other.applied
        self.stale_skipped += other.stale_skipped
        self.deleted += other.deleted


def report_outcomes(uow: Any, *, applied: int = 0, stale_skipped: int = 0, deleted: int = 0) -> None:
    """
    Report a handler's counts to the dispatcher, through its unit of work.

    A unit of work made outside the dispatcher (a test's) carries no tally:
    then nothing happens.
    """
    outcomes: Outcomes | None = getattr(uow, "_outcomes", None)
    if outcomes is None:
        return
    outcomes.applied += applied
    outcomes.stale_skipped += stale_skipped
    outcomes.deleted += deleted
    outcomes.reported = True


@attrs.frozen
class TableSummary:
    """
    What one batch did to the records of one table.

    Every record of the table in the batch has one outcome, so the counts add
    up to `records`.

    Attributes:
        table_name: The DynamoDB table, or `None` for a failure that could not
            be traced to a table (an unreadable record in a batch of several
            tables).
        records: The table's records in the batch.
        applied: Records whose change was written (for custom handlers: passed
            to the handler and committed).
        stale_skipped: Records that wrote nothing because the target already
            held the same or a newer change of the item: redelivered, older
            than the row or its tombstone, superseded by a later change of the
            item in the same batch, or (exactly-once handlers) already in the
            ledger. See the observability guide for what each engine reports.
        deleted: REMOVE records that deleted (or soft-deleted) a row.
        quarantined: Records set aside in `dynastream_quarantine`.
        failed: Records that failed: the one reported in `batchItemFailures`,
            or every record of a batch whose invocation raised.
        unprocessed: Records after a failure, left for the event source
            mapping to deliver again.
        max_lag_ms: Milliseconds from the oldest `ApproximateCreationDateTime`
            of the table's records to the end of the batch, or `None` when no
            record carries one.
    """

    table_name: str | None
    records: int = 0
    applied: int = 0
    stale_skipped: int = 0
    deleted: int = 0
    quarantined: int = 0
    failed: int = 0
    unprocessed: int = 0
    max_lag_ms: float | None = None


@attrs.frozen
class BatchSummary:
    """
    What one batch did: the counts by outcome, duration and replication lag.

    Attributes:
        tables: One summary per table in the batch (usually one: an event
            source mapping reads one stream).
        records: Records in the event.
        duration_ms: Milliseconds from receiving the event to the response.
        max_lag_ms: The greatest of the tables' `max_lag_ms`, or `None`.
        function_name: The Lambda function's name, when there is a context.
        failed_sequence_number: The failing record's sequence number, if any.
        failed_event_id: The failing record's `eventID`, if known.
        error_type: The failure's exception type name, if any.

    Examples:
        >>> import dynastream
        >>> app = dynastream.App(database_url="sqlite://")
        >>> app.dispatch({"Records": []}).summary.records
        0
    """

    tables: tuple[TableSummary, ...]
    records: int
    duration_ms: float
    max_lag_ms: float | None = None
    function_name: str | None = None
    failed_sequence_number: str | None = None
    failed_event_id: str | None = None
    error_type: str | None = None

    def total(self, outcome: str) -> int:
        """
        Return the sum over tables of a count (`"applied"`, `"deleted"`, ...).
        """
        return sum(int(getattr(table, outcome)) for table in self.tables)

    def fields(self) -> dict[str, Any]:
        """
        Return the summary as the log line's structured fields.

        Examples:
            >>> summary = BatchSummary(tables=(TableSummary("Orders", records=2, applied=2),),
            ...                        records=2, duration_ms=12.5)
            >>> summary.fields()["applied"], summary.fields()["tables"]
            (2, ['Orders'])
        """
        fields: dict[str, Any] = {
            "tables": [table.table_name for table in self.tables if table.table_name is not None],
            "records": self.records,
        }
        for outcome in _OUTCOMES:
            fields[outcome] = self.total(outcome)
        fields["duration_ms"] = round(self.duration_ms, 3)
        fields["max_lag_ms"] = None if self.max_lag_ms is None else round(self.max_lag_ms, 3)
        if self.function_name is not None:
            fields["function_name"] = self.function_name
        if self.failed_sequence_number is not None:
            fields["failed_sequence_number"] = self.failed_sequence_number
            fields["failed_event_id"] = self.failed_event_id
        if self.error_type is not None:
            fields["error_type"] = self.error_type
        return fields

    def message(self) -> str:
        """
        Return the log line's message: the summary for people.
        """
        tables = ", ".join(t.table_name for t in self.tables if t.table_name is not None) or "no table"
        counts = ", ".join(f"{self.total(outcome)} {outcome.replace('_', '-')}" for outcome in _OUTCOMES)
        lag = "" if self.max_lag_ms is None else f", max lag {self.max_lag_ms:.0f} ms"
        return f"batch of {self.records} records from {tables}: {counts} in {self.duration_ms:.1f} ms{lag}"


_OUTCOMES = ("applied", "stale_skipped", "deleted", "quarantined", "failed", "unprocessed")


class BatchTally:
    """
    Collects what the dispatcher learns about one batch, then summarizes it.

    Args:
        clock: Returns the current aware UTC time (the lag's "now").
        function_name: The Lambda function's name, when known.
    """

    def __init__(self, clock: Any, function_name: str | None) -> None:
        self.started = time.perf_counter()
        self.clock = clock
        self.function_name = function_name
        self.total: int | None = None
        self.records: Sequence[StreamRecord[Any]] = ()
        self.outcomes: dict[str, Outcomes] = {}  # of the committed transaction, by table
        self.quarantined: list[str] = []  # their tables
        self.failure: tuple[str | None, str, str | None, BaseException] | None = None

    def summarize(self, error: BaseException | None = None) -> BatchSummary:
        """
        Return the summary of the batch, or of its failed invocation (`error`).
        """
        duration = (time.perf_counter() - self.started) * 1000
        now = self.clock()
        counts: dict[str | None, dict[str, Any]] = {}
        for record in self.records:  # one pass: records and oldest creation time per table
            entry = counts.get(record.table_name)
            if entry is None:
                entry = counts[record.table_name] = {"records": 0, "oldest": None}
            entry["records"] += 1
            created = record.approximate_creation_time
            if created is not None and (entry["oldest"] is None or created < entry["oldest"]):
                entry["oldest"] = created
        failed_table: str | None = None
        failure = self.failure
        if error is None and failure is not None:
            failed_table = failure[0]
            if failed_table is None and len(counts) == 1:
                failed_table = next(iter(counts))
            if failed_table not in counts:
                counts[failed_table] = {"records": 0, "oldest": None}
            if failure[0] is None:  # an unreadable record: not among the records read
                counts[failed_table]["records"] += 1
        tables = []
        for name, entry in counts.items():
            oldest = entry["oldest"]
            lag = None if oldest is None else max(0.0, (now - oldest).total_seconds() * 1000)
            if error is not None:
                tables.append(TableSummary(name, entry["records"], failed=entry["records"], max_lag_ms=lag))
                continue
            done = self.outcomes.get(name) if name is not None else None
            done = done or Outcomes()
            quarantined = self.quarantined.count(name) if name is not None else 0
            failed = 1 if failure is not None and name == failed_table else 0
            settled = done.applied + done.stale_skipped + done.deleted + quarantined + failed
            tables.append(
                TableSummary(
                    name,
                    entry["records"],
                    applied=done.applied,
                    stale_skipped=done.stale_skipped,
                    deleted=done.deleted,
                    quarantined=quarantined,
                    failed=failed,
                    unprocessed=max(0, entry["records"] - settled),
                    max_lag_ms=lag,
                )
            )
        total = self.total if self.total is not None else sum(t.records for t in tables)
        if error is not None and not tables:
            tables.append(TableSummary(None, total, failed=max(total, 1)))
        lags = [t.max_lag_ms for t in tables if t.max_lag_ms is not None]
        failing = failure if error is None else None
        return BatchSummary(
            tables=tuple(tables),
            records=total,
            duration_ms=duration,
            max_lag_ms=max(lags) if lags else None,
            function_name=self.function_name,
            failed_sequence_number=None if failing is None else failing[1],
            failed_event_id=None if failing is None else failing[2],
            error_type=(
                type(error).__name__
                if error is not None
                else None
                if failing is None
                else type(failing[3]).__name__
            ),
        )


def log_summary(logger: logging.Logger, summary: BatchSummary) -> None:
    """
    Log the batch's summary line at INFO, its fields attached to the record.
    """
    if logger.isEnabledFor(logging.INFO):
        logger.info(summary.message(), extra=summary.fields())


# CloudWatch's units: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
_METRICS = (
    ("RecordsApplied", "Count", "applied"),
    ("RecordsStaleSkipped", "Count", "stale_skipped"),
    ("RecordsDeleted", "Count", "deleted"),
    ("RecordsQuarantined", "Count", "quarantined"),
    ("RecordsFailed", "Count", "failed"),
)


class EmfMetrics:
    """
    Publishes each batch's metrics as CloudWatch Embedded Metric Format.

    One JSON document per table of the batch (one per batch for an event
    source mapping, which reads one table's stream), printed on one line to
    standard output: Lambda sends it to CloudWatch Logs, which extracts the
    metrics. Metrics: `RecordsApplied`, `RecordsStaleSkipped`,
    `RecordsDeleted`, `RecordsQuarantined`, `RecordsFailed` (Count),
    `BatchDuration` and `ReplicationLag` (Milliseconds); dimensions
    `TableName`, and `FunctionName` when the Lambda context gives it.

    Args:
        namespace: The CloudWatch namespace.
        stream: Where to write; standard output (looked up at each batch)
            when omitted.

    Examples:
        >>> import dynastream
        >>> summary = dynastream.BatchSummary(
        ...     tables=(dynastream.TableSummary("Orders", records=3, applied=3),), records=3, duration_ms=8.0)
        >>> document = dynastream.EmfMetrics("shop").documents(summary, timestamp=0)[0]
        >>> document["RecordsApplied"], document["TableName"]
        (3, 'Orders')
    """

    def __init__(self, namespace: str = "dynastream", *, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.stream = stream

    def __repr__(self) -> str:
        return f"EmfMetrics(namespace={self.namespace!r})"

    def documents(self, summary: BatchSummary, *, timestamp: int | None = None) -> list[dict[str, Any]]:
        """
        Return the EMF documents for a batch, one per table.

        Args:
            summary: The batch.
            timestamp: Milliseconds since the epoch; now when omitted.
        """
        stamp = int(time.time() * 1000) if timestamp is None else timestamp
        documents = []
        for table in summary.tables:
            dimensions: dict[str, str] = {}
            if summary.function_name is not None:
                dimensions["FunctionName"] = summary.function_name
            if table.table_name is not None:
                dimensions["TableName"] = table.table_name
            metrics: list[dict[str, str]] = [{"Name": name, "Unit": unit} for name, unit, _ in _METRICS]
            values: dict[str, Any] = {name: getattr(table, outcome) for name, _, outcome in _METRICS}
            metrics.append({"Name": "BatchDuration", "Unit": "Milliseconds"})
            values["BatchDuration"] = round(summary.duration_ms, 3)
            if table.max_lag_ms is not None:
                metrics.append({"Name": "ReplicationLag", "Unit": "Milliseconds"})
                values["ReplicationLag"] = round(table.max_lag_ms, 3)
            documents.append(
                {
                    "_aws": {
                        "Timestamp": stamp,
                        "CloudWatchMetrics": [
                            {
                                "Namespace": self.namespace,
                                "Dimensions": [list(dimensions)],
                                "Metrics": metrics,
                            }
                        ],
                    },
                    **dimensions,
                    **values,
                }
            )
        return documents

    def publish(self, summary: BatchSummary) -> None:
        """
        Print the batch's documents, one line each.
        """
        stream = sys.stdout if self.stream is None else self.stream
        for document in self.documents(summary):
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()


def metrics_sink(settings: Settings, environ: Mapping[str, str] | None = None) -> MetricsSink | None:
    """
    Return the default metrics sink: `EmfMetrics` inside AWS Lambda, else `None`.

    Outside Lambda (no `AWS_LAMBDA_FUNCTION_NAME`: the stream runner, a test)
    nothing would turn the documents into metrics, and they would clutter the
    terminal; `Settings.metrics` false switches them off inside Lambda too.
    """
    import os

    env = os.environ if environ is None else environ
    if not settings.metrics or not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    return EmfMetrics(settings.metrics_namespace)


def dynastream_logger(settings: Settings) -> logging.Logger:
    """
    Return the `dynastream` logger, at the level the settings give.

    A level the application set on the logger itself wins: the settings'
    level applies only to a logger nobody configured.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if logger.level == logging.NOTSET:
        logger.setLevel(settings.log_level)
    return logger


# What every LogRecord has: anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """
    Formats log records as one JSON object per line.

    Keys: `timestamp` (ISO 8601, UTC), `level`, `logger`, `message`, then
    every field passed with `extra=` (dynastream's summary line passes its
    counts this way). An exception is given by its type name and stack; its
    message only when it is one of dynastream's (which never quote values),
    since other exceptions' messages may hold item values.

    Examples:
        >>> import logging, dynastream
        >>> handler = logging.StreamHandler()
        >>> handler.setFormatter(dynastream.JsonFormatter())
    """

    def format(self, record: logging.LogRecord) -> str:
        """
        Return `record` as a JSON line.
        """
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in document:
                document[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            document.update(exception_fields(record.exc_info[1]))
        return json.dumps(document, default=str, ensure_ascii=False)


def exception_fields(error: BaseException) -> dict[str, Any]:
    """
    Return an exception as log fields that hold no data: its chain of types and its stack.

    A message is kept only for dynastream's own errors, which never quote
    values; the stack is file, line, function and source line, code only.
    """
    import traceback

    from .exceptions import DynastreamError

    chain: list[str] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        described = type(current).__name__
        if isinstance(current, DynastreamError):
            described += f": {current}"
        chain.append(described)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    stack = traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__), capture_locals=False)
    return {"exception": " <- ".join(chain), "stack": "".join(stack.format())}


def _is_powertools(handler: logging.Handler) -> bool:
    # Without importing Powertools: its formatters derive from BasePowertoolsFormatter.
    formatter = handler.formatter
    return formatter is not None and any(
        cls.__name__ == "BasePowertoolsFormatter" for cls in type(formatter).__mro__
    )


def configure_logging(
    level: int | str | None = None, *, stream: TextIO | None = None, force: bool = False
) -> logging.Logger:
    """
    Send dynastream's logs out as JSON lines, or into Powertools Logger.

    Call it once, in `handler.py`. It sets the `dynastream` logger's level,
    then:

    - if the `dynastream` logger already has handlers (for example from
      Powertools' `copy_config_to_registered_loggers`), it leaves them;
    - if the root logger has a Powertools handler, dynastream's records
      propagate to it, and Powertools prints the summary's fields as its own
      keys;
    - otherwise it adds a handler writing `JsonFormatter` lines to `stream`
      and stops propagation, so that Lambda's own handler on the root logger
      does not print each line a second time.

    Calling it again replaces the handler it added rather than adding another.

    Args:
        level: The level, for example `"INFO"` or `logging.DEBUG`;
            `DYNASTREAM_LOG_LEVEL` (default INFO) when omitted.
        stream: Where the JSON lines go; standard output when omitted.
        force: Add the JSON handler even if the logger has handlers or the
            root logger is Powertools'.

    Returns:
        The `dynastream` logger.

    Examples:
        >>> import dynastream
        >>> logger = dynastream.configure_logging("INFO")
    """
    import os

    logger = logging.getLogger(LOGGER_NAME)
    chosen = level if level is not None else os.environ.get("DYNASTREAM_LOG_LEVEL", "").strip() or "INFO"
    logger.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    for handler in list(logger.handlers):
        if getattr(handler, "_dynastream_json", False):
            logger.removeHandler(handler)
    if not force and (logger.handlers or any(_is_powertools(h) for h in logging.getLogger().handlers)):
        return logger
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    handler._dynastream_json = True  # type: ignore[attr-defined]  # marks the handler this function owns
    logger.addHandler(handler)
    logger.propagate = False
    return logger
