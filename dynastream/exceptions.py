"""
Exceptions raised by dynastream.

Every exception dynastream raises on purpose derives from `DynastreamError`:

```
DynastreamError
├── ConfigurationError        the application is wired wrongly (fix the code)
│   └── NoHandlerError        a record's table has no registered handler
├── MalformedEventError       the event as a whole cannot be read
│   └── MalformedRecordError  one record cannot be read; names record and field
├── MappingError              a mapper could not turn a record's image into T
├── ColumnValueError          an attribute's value does not fit its column exactly
├── TimeBudgetError           too little of the invocation's time is left to go on
├── UnitOfWorkError           a handler broke the unit of work (committed, closed)
├── CommitOutcomeUnknownError the connection failed during COMMIT
├── SourceError               DynamoDB or its stream cannot be read as asked
├── CheckpointConflictError   another runner moved a shard's checkpoint
├── RecordFailedError         the runner stopped at a record it cannot apply
└── BackfillError             a backfill stopped at an item it cannot apply
```

Errors about a record name it by its position in the batch, its `eventID` and
its sequence number, and name the offending field by path (for example
`dynamodb.NewImage.lines[2].quantity`). They never include attribute values:
items may hold personal data.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "BackfillError",
    "CheckpointConflictError",
    "ColumnValueError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "DynastreamError",
    "MalformedEventError",
    "MalformedRecordError",
    "MappingError",
    "NoHandlerError",
    "RecordFailedError",
    "SourceError",
    "TimeBudgetError",
    "UnitOfWorkError",
]


class DynastreamError(Exception):
    """
    Base class of every error dynastream raises on purpose.
    """


def describe_error(error: BaseException) -> str:
    """
    Name an error for a log line, a message or the quarantine, quoting no value.

    dynastream's own messages never quote attribute values; other exceptions'
    messages may (a driver error can quote a row, or a key in its DETAIL), so
    only their type is given, with the driver's error class, SQLSTATE and
    MySQL error number when there are some: `IntegrityError (UniqueViolation,
    SQLSTATE 23505)`.
    """
    if isinstance(error, DynastreamError):
        return f"{type(error).__name__}: {error}"
    details = []
    original = getattr(error, "orig", None)  # the driver's error, which SQLAlchemy wraps
    if isinstance(original, BaseException):
        if type(original).__name__ != type(error).__name__:
            details.append(type(original).__name__)
    else:
        original = error
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)  # psycopg 3, 2
    if isinstance(sqlstate, str):
        details.append(f"SQLSTATE {sqlstate}")
    arguments = getattr(original, "args", ())
    if (
        type(original).__module__.startswith(("pymysql", "MySQLdb"))
        and arguments
        and type(arguments[0]) is int
    ):
        details.append(f"MySQL error {arguments[0]}")
    return type(error).__name__ + (f" ({', '.join(details)})" if details else "")


class ConfigurationError(DynastreamError):
    """
    The application is wired wrongly.

    A handler's dependency has no provider, a registration is invalid, or no
    database is configured.
    """


class MalformedEventError(DynastreamError):
    """
    The event cannot be read as a whole.

    It is not JSON, not an object, or has no `Records` list.

    Attributes:
        field: Path of the offending field inside the event, `""` for the
            event itself.
        reason: What is wrong, without any value from the event.
    """

    field: str
    reason: str

    def __init__(self, reason: str, *, field: str = "") -> None:
        self.field = field
        self.reason = reason
        where = f"{field}: " if field else ""
        super().__init__(f"malformed event: {where}{reason}")


def describe_record(index: int | None, event_id: str | None, sequence_number: str | None) -> str:
    """
    Return the words that name a record in an error message.
    """
    parts = []
    if index is not None:
        parts.append(f"#{index}")
    if event_id is not None:
        parts.append(f"eventID={event_id!r}")
    if sequence_number is not None:
        parts.append(f"SequenceNumber={sequence_number!r}")
    return "record " + (" ".join(parts) if parts else "(unidentified)")


class _RecordError(DynastreamError):
    """
    An error about one record of a batch, which it names by identity, never by data.
    """

    index: int | None
    event_id: str | None
    sequence_number: str | None

    def _identify(self, index: int | None, event_id: str | None, sequence_number: str | None) -> str:
        """
        Keep the record's identity; return the words that name it in a message.
        """
        self.index = index
        self.event_id = event_id
        self.sequence_number = sequence_number
        return describe_record(index, event_id, sequence_number)


class MalformedRecordError(MalformedEventError, _RecordError):
    """
    One record of the event cannot be read.

    Attributes:
        index: Position of the record in the batch (0-based), when known.
        event_id: The record's `eventID`, when it could be read.
        sequence_number: The record's `dynamodb.SequenceNumber` as sent, when it
            could be read. The dispatcher reports it in `batchItemFailures`.
        field: Path of the offending field inside the record, for example
            `dynamodb.NewImage.lines[2].quantity`.
        reason: What is wrong, without any attribute value.
    """

    index: int | None
    event_id: str | None
    sequence_number: str | None

    def __init__(
        self,
        reason: str,
        *,
        field: str,
        index: int | None = None,
        event_id: str | None = None,
        sequence_number: str | None = None,
    ) -> None:
        self.field = field
        self.reason = reason
        who = self._identify(index, event_id, sequence_number)
        Exception.__init__(self, f"malformed {who}: {field}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_malformed_record,
            (self.reason, self.field, self.index, self.event_id, self.sequence_number),
        )


def _rebuild_malformed_record(
    reason: str,
    field: str,
    index: int | None,
    event_id: str | None,
    sequence_number: str | None,
) -> MalformedRecordError:
    return MalformedRecordError(
        reason, field=field, index=index, event_id=event_id, sequence_number=sequence_number
    )


class NoHandlerError(ConfigurationError):
    """
    A record belongs to a table for which no handler is registered.

    dynastream never skips such a record silently: it is reported as failed.

    Attributes:
        table_name: The table named by the record's `eventSourceARN`.
    """

    table_name: str

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        super().__init__(f"no handler is registered for table {table_name!r}")


class ColumnValueError(DynastreamError):
    """
    An attribute's value cannot be stored in its column exactly.

    Raised by row mappers (a 40-digit number for an INTEGER column, a string
    longer than `String(20)`, text for a `Numeric` column, a NOT NULL column
    with no attribute); the dispatcher wraps it in a `MappingError` that also
    names the record. Never includes the value.

    Attributes:
        attribute: The DynamoDB attribute, or `None` when it is missing.
        column: The column it was meant for.
        reason: What does not fit.
    """

    attribute: str | None
    column: str
    reason: str

    def __init__(self, reason: str, *, column: str, attribute: str | None) -> None:
        self.attribute = attribute
        self.column = column
        self.reason = reason
        source = "missing attribute" if attribute is None else f"attribute {attribute!r}"
        super().__init__(f"{source} -> column {column!r}: {reason}")


class MappingError(_RecordError):
    """
    A mapper raised while turning a record's image into the handler's type.

    The original exception is chained as `__cause__`. When it is a
    `ColumnValueError`, its attribute, column and reason are copied here and
    appear in the message.

    Attributes:
        index: Position of the record in the batch, when known.
        event_id: The record's `eventID`.
        sequence_number: The record's sequence number as sent.
        image: Which image failed: `"NewImage"` or `"OldImage"`.
        mapper: A description of the mapper.
        attribute: The attribute that did not fit, when known.
        column: The column it was meant for, when known.
    """

    index: int | None
    event_id: str
    sequence_number: str
    image: str
    mapper: str
    attribute: str | None
    column: str | None

    def __init__(
        self,
        *,
        index: int | None,
        event_id: str,
        sequence_number: str,
        image: str,
        mapper: str,
        cause: BaseException,
    ) -> None:
        who = self._identify(index, event_id, sequence_number)
        self.image = image
        self.mapper = mapper
        self.attribute = None
        self.column = None
        if isinstance(cause, ColumnValueError):
            self.attribute = cause.attribute
            self.column = cause.column
            detail = str(cause)
        else:
            detail = (
                f"{type(cause).__name__} (the original exception is chained; its message may quote item data)"
            )
        super().__init__(f"{mapper} failed on {who}: dynamodb.{image}: {detail}")


class UnitOfWorkError(DynastreamError):
    """
    A handler committed, rolled back or closed the session it was given.

    The dispatcher owns the transaction; the whole batch is rolled back and the
    invocation fails, so nothing is half-written.
    """


class CommitOutcomeUnknownError(DynastreamError):
    """
    The connection failed while the batch's COMMIT was under way.

    The database may or may not have applied the batch, so the invocation
    fails rather than report success or retry: the event source mapping
    delivers the batch again. Built-in replication and `exactly_once` handlers
    make that redelivery harmless; other handlers must be idempotent. The
    driver's error is chained as `__cause__`.
    """


class TimeBudgetError(DynastreamError):
    """
    Too little of the invocation's time is left to start (or go on with) work.

    Never raised: it is the error of the record reported in
    `batchItemFailures` when the dispatcher stops early, so that Lambda's
    timeout never cuts a transaction short. The records before it are
    committed; the event source mapping delivers the rest again.

    Attributes:
        remaining: Seconds left in the invocation.
        margin: The safety margin, in seconds (`DYNASTREAM_TIME_MARGIN_SECONDS`).
    """

    remaining: float
    margin: float

    def __init__(self, *, remaining: float, margin: float) -> None:
        self.remaining = remaining
        self.margin = margin
        super().__init__(
            f"{remaining:.1f} s of the invocation left, less than the {margin:.1f} s safety margin:"
            " stopping here, the rest is delivered again"
        )


class SourceError(DynastreamError):
    """
    DynamoDB or its stream cannot be read as asked.

    The table does not exist or has no stream, the endpoint cannot be reached,
    credentials are refused, or the records to read have already been trimmed
    from the stream (older than its 24-hour retention).
    """


class CheckpointConflictError(DynastreamError):
    """
    A shard's checkpoint is not where this runner left it.

    Another runner is applying the same stream to the same database. The
    batch that found out was rolled back, so nothing was applied twice.
    """


class _Failure(Protocol):
    """
    What these errors keep of a failed record: a `dynastream.RecordFailure`.

    Spelled out here so that this module depends on nothing of the package.
    """

    @property
    def item_identifier(self) -> str: ...

    @property
    def event_id(self) -> str | None: ...

    @property
    def error(self) -> BaseException: ...


class RecordFailedError(DynastreamError):
    """
    The stream runner stopped at a record it cannot apply.

    The records before it are applied and checkpointed; running again starts
    from it. Quarantine the table's poison records (`on_poison="quarantine"`)
    to go on past such records instead.

    Attributes:
        shard_id: The shard the record is in.
        failure: The record and its error (`dynastream.RecordFailure`).
    """

    def __init__(self, shard_id: str, failure: _Failure) -> None:
        reason = describe_error(failure.error)
        super().__init__(
            f"shard {shard_id}: record SequenceNumber={failure.item_identifier}"
            f" (eventID={failure.event_id}) cannot be applied: {reason}"
        )
        self.shard_id = shard_id
        self.failure = failure


class BackfillError(DynastreamError):
    """
    A backfill stopped at a scanned item it cannot apply.

    The item is named by its Scan segment and its position in that segment
    (and the `eventID` the backfill gave it), never by its key or values.
    The pages applied before it, and the items before it in its page, stay
    applied; running the backfill again is safe.

    Attributes:
        table_name: The DynamoDB table being loaded.
        segment: The Scan segment the item was read in.
        position: The item's position in its segment (0-based).
        failure: The record and its error (`dynastream.RecordFailure`).
    """

    def __init__(self, table_name: str, *, segment: int, position: int, failure: _Failure) -> None:
        reason = describe_error(failure.error)
        super().__init__(
            f"backfill of {table_name!r} stopped at item #{position} of segment {segment}"
            f" (eventID={failure.event_id}): it cannot be applied: {reason}"
        )
        self.table_name = table_name
        self.segment = segment
        self.position = position
        self.failure = failure
