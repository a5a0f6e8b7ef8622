"""
The batch summary: what one batch did, counted once and logged as one line.

The dispatcher counts what each batch did (records applied, skipped as stale,
deleted, quarantined, failed), how long it took and how far behind the stream
it was, into a `BatchSummary`. It logs the summary at INFO on the `dynastream`
logger, with every field also attached to the log record (what `extra=` does),
and hands it to the metrics sink (`_metrics`).

Nothing here holds item images or key values: only table names, counts,
durations, sequence numbers, eventIDs, error type names, and the names of
attributes that have no column.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from dynastream._records import StreamRecord

__all__ = [
    "BatchSummary",
    "BatchTally",
    "FailedRecord",
    "Outcomes",
    "TableSummary",
    "log_summary",
    "rank_unmapped",
    "shown_name",
]

# The summary line lists this many attribute names without a column at most, each
# cut at this many characters: a table whose items carry names made from data
# (one per customer, per day...) must not blow the line up.
_LISTED_NAMES = 20
_NAME_CHARACTERS = 100


@attrs.define(slots=True)
class Outcomes:
    """
    What a handler did with the records it was given (internal tally).

    Handlers report into the one the dispatcher gives their unit of work
    (`UnitOfWork.report_outcomes`); records of a handler that reports nothing
    count as applied.
    """

    applied: int = 0
    stale_skipped: int = 0
    deleted: int = 0
    reported: bool = False
    tied: int = 0
    unmapped: dict[str, int] = attrs.field(factory=dict)

    def add(self, other: Outcomes) -> None:
        """
        Add `other`'s counts to these.
        """
        self.applied += other.applied
        self.stale_skipped += other.stale_skipped
        self.deleted += other.deleted
        self.tied += other.tied
        unmapped = self.unmapped
        for name, count in other.unmapped.items():
            unmapped[name] = unmapped.get(name, 0) + count


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
        tied: Kinesis Data Streams records whose creation time could not order
            them against another change of their item (the same millisecond,
            or microsecond when both carry microseconds): one before them in
            the batch, or the one already stored (row or tombstone). The
            `eventID` ordered them instead. Not an outcome: each is also
            counted as applied, stale-skipped or deleted.
        unmapped: Built-in replication without an `extra=` column or a custom
            `mapper=`: the name of each attribute that has no column in the
            target table, with the number of the table's INSERT and MODIFY
            records (superseded ones included) whose new image carried it.
            Those attributes were ignored. Names and counts only, never
            values; empty when there were none.
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
    tied: int = 0
    unmapped: Mapping[str, int] = attrs.field(factory=dict, hash=False)


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

        The tables' `unmapped` attributes, added up by name, are the field
        `unmapped_attributes` (when there are any): the 20 most frequent
        names, each with its count, and `unmapped_attributes_omitted`, how many
        names more, when there are more. Names are shown printable
        (control characters escaped) and cut at 100 characters and `…`.

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
        tied = self.total("tied")
        if tied:
            fields["tied"] = tied
        fields["duration_ms"] = round(self.duration_ms, 3)
        fields["max_lag_ms"] = None if self.max_lag_ms is None else round(self.max_lag_ms, 3)
        if self.function_name is not None:
            fields["function_name"] = self.function_name
        if self.failed_sequence_number is not None:
            fields["failed_sequence_number"] = self.failed_sequence_number
            fields["failed_event_id"] = self.failed_event_id
        if self.error_type is not None:
            fields["error_type"] = self.error_type
        listed, more = rank_unmapped(_merged_unmapped(self.tables), _LISTED_NAMES)
        if listed:
            fields["unmapped_attributes"] = dict(listed)
        if more:
            fields["unmapped_attributes_omitted"] = more
        return fields

    def message(self) -> str:
        """
        Return the log line's message: the summary for people.

        Attributes without a column end it, as the fields list them:
        `; attributes without a column: discount (3), giftNote (1)`, then
        `and N more` past 20 names.
        """
        tables = ", ".join(t.table_name for t in self.tables if t.table_name is not None) or "no table"
        counts = ", ".join(f"{self.total(outcome)} {outcome.replace('_', '-')}" for outcome in _OUTCOMES)
        lag = "" if self.max_lag_ms is None else f", max lag {self.max_lag_ms:.0f} ms"
        tied = self.total("tied")
        if tied:
            counts += f" ({tied} tied)"
        listed, more = rank_unmapped(_merged_unmapped(self.tables), _LISTED_NAMES)
        unmapped = ", ".join(f"{name} ({count})" for name, count in listed)
        if more:
            unmapped += f" and {more} more"
        if unmapped:
            unmapped = f"; attributes without a column: {unmapped}"
        return (
            f"batch of {self.records} records from {tables}: {counts} in {self.duration_ms:.1f} ms{lag}"
            f"{unmapped}"
        )


_OUTCOMES = ("applied", "stale_skipped", "deleted", "quarantined", "failed", "unprocessed")


def _merged_unmapped(tables: Iterable[TableSummary]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for table in tables:
        for name, count in table.unmapped.items():
            merged[name] = merged.get(name, 0) + count
    return merged


def shown_name(name: str) -> str:
    """
    Return an attribute name as the summary shows it: printable, and at most 100 characters and `…`.

    A name with a character that is not printable (a control character, a
    lone surrogate) is written escaped, as Python's `repr` writes it.
    """
    if not name.isprintable():
        name = repr(name)[1:-1]
    return name if len(name) <= _NAME_CHARACTERS else f"{name[:_NAME_CHARACTERS]}…"


def rank_unmapped(unmapped: Mapping[str, int], limit: int) -> tuple[list[tuple[str, int]], int]:
    """
    Return the `limit` most frequent attribute names, as shown, and how many more there are.

    The names come as `shown_name` writes them, with their counts, the
    greatest count first, then by name; names shown alike add up.

    Examples:
        >>> rank_unmapped({"giftNote": 1, "discount": 3, "coupon": 1}, 2)
        ([('discount', 3), ('coupon', 1)], 1)
    """
    shown: dict[str, int] = {}
    for name, count in unmapped.items():
        key = shown_name(name)
        shown[key] = shown.get(key, 0) + count
    ranked = sorted(shown.items(), key=lambda entry: (-entry[1], entry[0]))
    return ranked[:limit], max(0, len(ranked) - limit)


@attrs.frozen
class FailedRecord:
    """
    The record a batch reported in `batchItemFailures`, as the summary names it.

    Attributes:
        table_name: Its table, or `None` when the record could not be read.
        sequence_number: Its sequence number as sent.
        event_id: Its `eventID`, when it could be read.
        error: Why it failed.
    """

    table_name: str | None
    sequence_number: str
    event_id: str | None
    error: BaseException = attrs.field(eq=False)


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
        self.failure: FailedRecord | None = None

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
            failed_table = failure.table_name
            if failed_table is None and len(counts) == 1:
                failed_table = next(iter(counts))
            if failed_table not in counts:
                counts[failed_table] = {"records": 0, "oldest": None}
            if failure.table_name is None:  # an unreadable record: not among the records read
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
                    tied=done.tied,
                    unmapped=dict(done.unmapped),
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
            failed_sequence_number=None if failing is None else failing.sequence_number,
            failed_event_id=None if failing is None else failing.event_id,
            error_type=(
                type(error).__name__
                if error is not None
                else None
                if failing is None
                else type(failing.error).__name__
            ),
        )


def log_summary(logger: logging.Logger, summary: BatchSummary) -> None:
    """
    Log the batch's summary line at INFO, its fields attached to the record.
    """
    if logger.isEnabledFor(logging.INFO):
        logger.info(summary.message(), extra=summary.fields())
