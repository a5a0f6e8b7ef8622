"""
The dispatcher: one invocation, one transaction, the first failure isolated.

Per invocation it reads the event, routes each record to its table's handlers,
maps images, opens one transaction, runs the handlers in stream order, commits,
and builds the Lambda response. When a handler raises, it rolls back to a
savepoint and bisects the batch to find the first failing record without
per-record round trips on the happy path: the records before it are applied
exactly once and committed, nothing after it is applied, and exactly its
sequence number is reported (the event source mapping resumes from it).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from ._engine import bound_connects, deadline
from ._events import TumblingWindow, read_event
from ._failures import ConnectionLostError, is_read_only, is_transient, retry_transient
from ._logging import exception_fields
from ._registry import Registration, build_handler, build_mapper
from ._summary import BatchSummary, BatchTally, Outcomes, log_summary
from ._uow import UnitOfWork
from .exceptions import (
    CommitOutcomeUnknownError,
    ConfigurationError,
    DynastreamError,
    MappingError,
    NoHandlerError,
    TimeBudgetError,
    UnitOfWorkError,
    describe_error,
)

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterator, Sequence

    from dependency_injector import containers
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session, sessionmaker

    from ._records import StreamRecord
    from ._registry import Registry
    from ._settings import Settings
    from .typing import Mapper, MetricsSink, StreamEventHandler

__all__ = ["BatchResult", "Dispatcher", "RecordFailure"]

Item = dict[str, Any]


@attrs.frozen
class RecordFailure:
    """
    The first record of a batch that could not be applied.

    Attributes:
        index: Its position in the batch (0-based).
        item_identifier: Its sequence number as sent: what `batchItemFailures`
            reports.
        event_id: Its `eventID`, when it could be read.
        error: Why it failed: a `MalformedRecordError`, `NoHandlerError`,
            `MappingError`, or the exception a handler raised.
    """

    index: int
    item_identifier: str
    event_id: str | None
    error: BaseException = attrs.field(eq=False)


@attrs.frozen
class BatchResult:
    """
    What one invocation did.

    Attributes:
        total: Records in the event.
        applied: Records applied and committed (those before `failure`).
        failure: The first record that could not be applied, or `None`.
        window: The tumbling-window envelope, when the event had one.
        quarantined: Records set aside in `dynastream_quarantine` (tables whose
            poison policy is quarantine); the records after them were applied.
        summary: The counts by outcome, duration and lag that were logged and
            published as metrics.
    """

    total: int
    applied: int
    failure: RecordFailure | None = None
    window: TumblingWindow | None = None
    quarantined: tuple[RecordFailure, ...] = ()
    summary: BatchSummary | None = attrs.field(default=None, eq=False, repr=False)

    def response(self) -> dict[str, Any]:
        """
        Return the Lambda response for this batch.

        `{"batchItemFailures": [...]}` names the failed record's sequence
        number (an empty list when every record was applied); tumbling-window
        invocations also pass their `state` through.
        """
        failures = []
        if self.failure is not None:
            failures.append({"itemIdentifier": self.failure.item_identifier})
        response: dict[str, Any] = {"batchItemFailures": failures}
        if self.window is not None:
            response["state"] = dict(self.window.state)
        return response


@attrs.define
class _Lane:
    """
    One registration's share of a batch.

    Its handler, and its records (mapped) with their positions in the batch.
    """

    registration: Registration
    handler: StreamEventHandler[Any]
    mapper: Mapper[Any] | None
    positions: list[int]
    records: list[StreamRecord[Any]] = attrs.Factory(list)

    def between(self, start: int, end: int) -> Sequence[StreamRecord[Any]]:
        low = bisect.bisect_left(self.positions, start)
        high = bisect.bisect_left(self.positions, end)
        return self.records[low:high]


def _quarantine(
    connection: Connection, record: StreamRecord[Item], error: BaseException, *, keep_raw: bool, now: datetime
) -> None:
    """
    Set `record` aside in the quarantine table, in the batch's transaction.

    Whatever the record holds, the insert cannot fail on it: identifiers that
    do not fit their columns (or hold NUL or a lone surrogate) are kept as a
    prefix and a digest, JSON is written in ASCII, and only a duplicate (the
    record redelivered) is ignored, never a value the database would truncate.
    """
    import json

    from .schema import SEQUENCE_WIDTH, fit_identifier, quarantine

    name = connection.dialect.name
    if name in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        statement: Any = (postgresql.insert if name == "postgresql" else sqlite.insert)(quarantine)
        statement = statement.on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects import mysql

        # Not INSERT IGNORE: that would also turn a too-long value into a truncated one.
        statement = mysql.insert(quarantine)
        statement = statement.on_duplicate_key_update(id=quarantine.c.id)
    sequence = record.item_identifier
    connection.execute(
        statement,
        {
            "table_name": fit_identifier(record.table_name, 255),
            "event_id": fit_identifier(record.event_id, 128),
            "sequence_number": fit_identifier(
                sequence.zfill(SEQUENCE_WIDTH) if len(sequence) <= SEQUENCE_WIDTH else sequence,
                SEQUENCE_WIDTH,
            ),
            "item_keys": json.dumps(record.keys, default=_raw_json, sort_keys=True),
            "error_type": fit_identifier(f"{type(error).__module__}.{type(error).__qualname__}", 255),
            "error_message": _plain_text(describe_error(error)),
            "raw": json.dumps(record.raw, default=_raw_json) if keep_raw else None,
            "quarantined_at": now,
        },
    )


def _plain_text(text: str) -> str:
    """
    Return text every engine stores as it is: no NUL, no lone surrogate.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _raw_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class _OutOfTime(Exception):  # noqa: N818 - internal signal, carries the error to report
    def __init__(self, error: TimeBudgetError) -> None:
        super().__init__(str(error))
        self.error = error


def _time_left(context: Any) -> Callable[[], float | None]:
    """
    Return a function giving the seconds left in the Lambda invocation.

    It gives `None` when there is no Lambda context to ask.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return lambda: None
    return lambda: float(remaining()) / 1000


@contextlib.contextmanager
def _deadline(left: float | None, margin: float) -> Iterator[None]:
    """
    Set the `deadline` connects and reads keep to (see `bound_connects`).

    Connects must end when the time left less the margin is spent; a read or
    write of a statement may take half the margin more, so that the server's
    own bound on the statement (`_limit_statements`) ends it first and the
    connection survives.
    """
    token = deadline.set(None if left is None else (time.monotonic() + left - margin, margin / 2))
    try:
        yield
    finally:
        deadline.reset(token)


@contextlib.contextmanager
def _within_budget(out_of_time: Callable[[], TimeBudgetError | None]) -> Iterator[None]:
    """
    Turn a failure once the time budget is spent into that budget's error.

    A connect, read or write that the deadline cut short (see
    `bound_connects`) is the invocation's time running out, reported as a
    `TimeBudgetError` for the records not applied, not a database failure.
    """
    try:
        yield
    except (_OutOfTime, CommitOutcomeUnknownError):
        raise
    except Exception as error:
        budget = out_of_time()
        if budget is not None:
            raise _OutOfTime(budget) from error
        raise


def _read_committed(connection: Connection) -> None:
    """
    Run the batch's transaction at READ COMMITTED on MySQL and MariaDB.

    PostgreSQL's default. At InnoDB's default, REPEATABLE READ, the reads of
    `INSERT ... SELECT` and of deletes take next-key locks, gaps included, on
    the shared bookkeeping tables and the data table: batches writing
    neighbouring keys then block, and deadlock, on each other's gaps. At READ
    COMMITTED they lock only the rows they write; item locks (`_locks`) keep two
    writers of one item apart. `SET TRANSACTION` applies to the next
    transaction only, and is allowed before its first statement:
    https://dev.mysql.com/doc/refman/8.0/en/set-transaction.html
    """
    if connection.dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


def _limit_statements(connection: Connection, seconds: float) -> None:
    """
    Bound each statement and lock wait of this transaction by the time left.

    So that a slow statement fails (and the dispatcher stops in time) rather
    than Lambda's timeout cutting the transaction short. PostgreSQL scopes the
    settings to the transaction; MariaDB's are per session and undone after.
    """
    milliseconds = max(1, int(seconds * 1000))
    dialect = connection.dialect
    if dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
    elif dialect.name in ("mysql", "mariadb"):  # a mariadb+pymysql URL's dialect is "mariadb"
        connection.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(seconds))}")
        if getattr(dialect, "is_mariadb", False):
            connection.exec_driver_sql(f"SET SESSION max_statement_time = {milliseconds / 1000:.3f}")


def _unlimit_statements(connection: Connection) -> None:
    dialect = connection.dialect
    if dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = DEFAULT")
        if getattr(dialect, "is_mariadb", False):
            connection.exec_driver_sql("SET SESSION max_statement_time = DEFAULT")


class Dispatcher:
    """
    Applies events to the database through the registered handlers.

    Args:
        registry: The application's registrations.
        container: Supplies the engine, session factory, logger and the
            handlers' dependencies.
    """

    def __init__(self, registry: Registry, container: containers.Container) -> None:
        self._registry = registry
        self._container = container

    def dispatch(
        self,
        event: Any,
        context: Any = None,
        *,
        table_name: str | None = None,
        before_commit: Callable[[Connection, int], None] | None = None,
    ) -> BatchResult:
        """
        Apply one event in one transaction.

        `before_commit(connection, settled)` runs in the batch's transaction
        just before COMMIT, when `settled` records (applied or quarantined,
        from the first) are done: the stream runner writes its checkpoint
        there, so that the data and the checkpoint commit together. When it
        raises, the transaction is rolled back and the error propagates.

        Returns:
            How many records were applied, and the first failure if any.

        Raises:
            MalformedEventError: The event cannot be read as a whole, or a
                malformed record carries no readable sequence number (nothing
                is applied; the whole batch is retried).
            ConfigurationError: A handler or mapper cannot be built.
            UnitOfWorkError: A handler committed or closed the session.
            CommitOutcomeUnknownError: The connection failed during COMMIT:
                the batch is not known to be committed, so the invocation fails
                and the batch is delivered again.
            sqlalchemy.exc.DBAPIError: A transient error (deadlock, lost
                connection, read-only server) persisted through every retry.
        """
        # The cyclic garbage collector would walk the whole event (tens of MB on a
        # large batch) for nothing: everything a batch allocates is freed by
        # reference counting. It is paused while the batch is applied.
        collecting = gc.isenabled()
        gc.disable()
        function_name = getattr(context, "function_name", None)
        tally = BatchTally(self._container.clock(), function_name if isinstance(function_name, str) else None)
        try:
            result = self._dispatch(event, table_name, _time_left(context), before_commit, tally)
        except Exception as error:
            self._observe(tally.summarize(error))
            raise
        finally:
            if collecting:
                gc.enable()
        summary = tally.summarize()
        self._observe(summary)
        return attrs.evolve(result, summary=summary)

    def _observe(self, summary: BatchSummary) -> None:
        """
        Log the batch's summary line and publish its metrics.
        """
        log_summary(self._container.logger(), summary)
        sink: MetricsSink | None = self._container.metrics()
        if sink is not None:
            sink.publish(summary)

    def _dispatch(
        self,
        event: Any,
        table_name: str | None,
        time_left: Callable[[], float | None],
        before_commit: Callable[[Connection, int], None] | None,
        tally: BatchTally,
    ) -> BatchResult:
        registry = self._registry
        batch = read_event(
            event,
            table_name=table_name,
            old_images=registry.uses_old_images,
            new_images=registry.uses_new_images,
        )
        records = batch.records
        total = batch.total
        tally.records, tally.total = records, total
        limit = len(records)
        failure: RecordFailure | None = None
        if batch.error is not None:
            if batch.error.sequence_number is None:
                raise batch.error
            failure = RecordFailure(
                len(records), batch.error.sequence_number, batch.error.event_id, batch.error
            )

        positions_by_table: dict[str, list[int]] = {}
        routed = self._registry.table_names
        for position, record in enumerate(records):
            if record.table_name not in routed:
                limit = position
                failure = RecordFailure(
                    position, record.item_identifier, record.event_id, NoHandlerError(record.table_name)
                )
                break
            positions_by_table.setdefault(record.table_name, []).append(position)

        lanes = [
            _Lane(
                registration,
                build_handler(registration, self._container),
                build_mapper(registration, self._container),
                positions_by_table[registration.table_name],
            )
            for registration in self._registry.registrations
            if registration.table_name in positions_by_table
        ]
        for lane in lanes:
            mapping_failure = _map_lane(lane, records, limit)
            if mapping_failure is not None and mapping_failure.index < limit:
                limit, failure = mapping_failure.index, mapping_failure

        applied = 0
        quarantined: tuple[RecordFailure, ...] = ()
        if limit > 0:
            applied, handler_failure, quarantined = self._apply(
                lanes, limit, records, time_left, before_commit, outcomes=tally.outcomes
            )
            if handler_failure is not None:
                failure = handler_failure
        for set_aside in quarantined:
            tally.quarantined.append(records[set_aside.index].table_name)
            self._log_failure(set_aside, "quarantined in dynastream_quarantine")
        if failure is not None:
            failed_table = records[failure.index].table_name if failure.index < len(records) else None
            tally.failure = (failed_table, failure.item_identifier, failure.event_id, failure.error)
            self._log_failure(failure, "reported in batchItemFailures")
        return BatchResult(
            total=total, applied=applied, failure=failure, window=batch.window, quarantined=quarantined
        )

    def _apply(
        self,
        lanes: list[_Lane],
        limit: int,
        records: Sequence[StreamRecord[Item]],
        time_left: Callable[[], float | None],
        before_commit: Callable[[Connection, int], None] | None,
        *,
        outcomes: dict[str, Outcomes],
    ) -> tuple[int, RecordFailure | None, tuple[RecordFailure, ...]]:
        engine = self._container.engine()
        session_factory: sessionmaker[Session] = self._container.session_factory()
        settings: Settings = self._container.settings()
        clock: Callable[[], datetime] = self._container.clock()
        margin = settings.time_margin_seconds
        quarantined: list[RecordFailure] = []  # of the last transaction attempted

        last_seen: list[float | None] = [None]  # the time left at the last check

        def out_of_time() -> TimeBudgetError | None:
            left = last_seen[0] = time_left()
            return None if left is None or left >= margin else TimeBudgetError(remaining=left, margin=margin)

        def transaction() -> tuple[int, BaseException | None]:
            budget = out_of_time()
            if budget is not None:
                raise _OutOfTime(budget)
            with _deadline(last_seen[0], margin), _within_budget(out_of_time), engine.connect() as connection:
                left = time_left()
                try:
                    return run_transaction(connection, left)
                finally:
                    if left is not None and not connection.invalidated:
                        _unlimit_statements(connection)

        bound_connects(engine)

        def run_transaction(connection: Connection, left: float | None) -> tuple[int, BaseException | None]:
            transaction = connection.begin()
            _read_committed(connection)
            if left is not None:
                _limit_statements(connection, left - margin)
            quarantined.clear()
            outcomes.clear()  # of an earlier attempt of the transaction, rolled back
            try:
                outcome = _apply_runs(
                    lambda first, last: _attempt(
                        session_factory, connection, lanes, first, last, outcomes=outcomes
                    ),
                    limit,
                    proceed=out_of_time,
                    quarantine=lambda position, error: self._set_aside(
                        connection, records, position, error, quarantined=quarantined, clock=clock
                    ),
                )
                settled = limit if outcome[1] is None else outcome[0]
                if before_commit is not None and settled > 0:
                    before_commit(connection, settled)
            except BaseException as error:
                # Before COMMIT: nothing of this transaction can have been kept,
                # so a lost connection here is safe to retry (see _failures).
                if isinstance(error, Exception) and is_read_only(error):
                    connection.invalidate()  # a writer turned reader: get a new connection
                elif transaction.is_active and not connection.invalidated:
                    try:
                        transaction.rollback()
                    except Exception as broken:
                        connection.invalidate()
                        raise ConnectionLostError("the connection broke during ROLLBACK") from broken
                raise
            try:
                transaction.commit()
            except Exception as error:
                connection.invalidate()  # its state is unknown: never hand it out again
                # The outcome of COMMIT is unknown: never retried, never reported as
                # applied. The batch is delivered again, which replication and
                # exactly-once handlers make harmless.
                raise CommitOutcomeUnknownError(
                    "the connection failed during COMMIT; the batch may or may not have been applied"
                ) from error
            return outcome

        try:
            position, error = retry_transient(transaction)
        except _OutOfTime as stop:
            quarantined.clear()
            outcomes.clear()
            position, error = 0, stop.error
        applied = (limit if error is None else position) - len(quarantined)
        if error is None:
            return applied, None, tuple(quarantined)
        record = records[position]
        return (
            applied,
            RecordFailure(position, record.item_identifier, record.event_id, error),
            tuple(quarantined),
        )

    def _set_aside(
        self,
        connection: Connection,
        records: Sequence[StreamRecord[Item]],
        position: int,
        error: BaseException,
        *,
        quarantined: list[RecordFailure],
        clock: Callable[[], datetime],
    ) -> bool:
        """
        Quarantine record `position` if its table's policy says so.

        Returns whether it was set aside (the batch then goes on after it).
        """
        record = records[position]
        if isinstance(error, ConfigurationError):
            return False  # the application's mistake, not the record's: never set records aside for it
        settings: Settings = self._container.settings()
        quarantines, keep_raw = self._registry.quarantines(record.table_name, settings.on_poison)
        if not quarantines:
            return False
        _quarantine(connection, record, error, keep_raw=keep_raw, now=clock())
        quarantined.append(RecordFailure(position, record.item_identifier, record.event_id, error))
        return True

    def _log_failure(self, failure: RecordFailure, outcome: str) -> None:
        """
        Log a record's failure without a word of its data, whatever the formatter.

        The exception is not attached as `exc_info`: a standard formatter would
        print its message, and a driver's message can quote a row ("Key
        (email)=(...) already exists"). The line names the error's class,
        SQLSTATE and error number, and where it was raised; the chain of
        exception types and the stack go in fields of their own (`exception`,
        `stack`), which `JsonFormatter` and Powertools' Logger write out.
        """
        logger: logging.Logger = self._container.logger()
        error = failure.error
        logger.error(
            "record #%d (eventID=%s, SequenceNumber=%s) failed: %s%s; %s",
            failure.index,
            failure.event_id,
            failure.item_identifier,
            describe_error(error),
            "" if isinstance(error, DynastreamError) else _raised_at(error),
            outcome,
            extra=exception_fields(error),
        )


def _raised_at(error: BaseException) -> str:
    """
    Return where `error` was raised (file, line, function): code, never data.
    """
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (raised at {frame.filename}:{frame.lineno} in {frame.name})"


def _map_lane(lane: _Lane, records: Sequence[StreamRecord[Item]], limit: int) -> RecordFailure | None:
    mapper = lane.mapper
    for position in lane.positions:
        if position >= limit:
            break
        record = records[position]
        if mapper is None:
            lane.records.append(record)
            continue
        images: list[Any] = []
        for label, image in (("NewImage", record.new_image), ("OldImage", record.old_image)):
            try:
                images.append(None if image is None else mapper(image))
            except Exception as cause:  # noqa: BLE001 - any mapper error fails its record
                error = MappingError(
                    index=position,
                    event_id=record.event_id,
                    sequence_number=record.item_identifier,
                    image=label,
                    mapper=f"mapper of {lane.registration.name}",
                    cause=cause,
                )
                error.__cause__ = cause
                return RecordFailure(position, record.item_identifier, record.event_id, error)
        lane.records.append(record.with_images(images[0], images[1]))
    return None


def _apply_runs(
    attempt: Any,
    limit: int,
    *,
    proceed: Callable[[], BaseException | None],
    quarantine: Callable[[int, BaseException], bool],
) -> tuple[int, BaseException | None]:
    """
    Bisect records `[0, limit)`, going on after each record set aside.

    `quarantine(position, error)` returns whether it set the failing record
    aside; when it did, bisection goes on after it.

    Returns:
        `(position, error)`, as `_bisect` does for the first failure that is
        not set aside.
    """
    position, error = 0, None
    while True:
        position, error = _bisect(attempt, limit, start=position, proceed=proceed)
        if error is None or isinstance(error, TimeBudgetError) or not quarantine(position, error):
            return position, error
        position += 1
        if position < limit and (stop := proceed()) is not None:
            return position, stop


def _bisect(
    attempt: Any, limit: int, *, start: int = 0, proceed: Callable[[], BaseException | None] = lambda: None
) -> tuple[int, BaseException | None]:
    """
    Apply records `[start, limit)`, finding the first failing record by bisection.

    `attempt(start, end)` applies a run of records and returns `None`, or
    rolls the run back and returns the error.

    Runs that succeed stay applied, so the happy path is one attempt and a
    failure costs O(log n) attempts over at most about 2n records. A record is
    reported only when a run of that record alone failed; if it then succeeds
    (the failure was transient), the rest of the batch is attempted again.

    Before every attempt after the first, `proceed()` may return an error
    (too little time left) to stop there: the records applied so far stay
    applied, and that error is reported for the next one.

    Returns:
        `(applied, error)`: records `[start, applied)` are applied; `error` is
        the failure of record `applied`, or `None` when all were applied.
    """
    applied = start
    failing_end: int | None = None
    end = limit
    first = True
    while applied < limit:
        if not first:
            stop = proceed()
            if stop is not None:
                return applied, stop
        first = False
        error = attempt(applied, end)
        if error is None:
            applied = end
            if failing_end is None or applied >= failing_end:
                failing_end, end = None, limit
            else:
                end = applied + max(1, (failing_end - applied) // 2)
        else:
            if end - applied == 1:
                return applied, error
            failing_end = end
            end = applied + max(1, (end - applied) // 2)
    return applied, None


def _attempt(
    session_factory: sessionmaker[Session],
    connection: Connection,
    lanes: list[_Lane],
    start: int,
    end: int,
    *,
    outcomes: dict[str, Outcomes],
) -> BaseException | None:
    """
    Apply records `[start, end)` in a savepoint; see `_bisect`.

    When the run is applied, what its handlers reported is added to
    `outcomes` (by table): per table, the counts of the first handler that
    reports them (built-in replication, exactly-once handlers); otherwise
    every record counts as applied.
    """
    from sqlalchemy.exc import DBAPIError

    session = session_factory(bind=connection, join_transaction_mode="create_savepoint")
    whole_transaction_lost: BaseException | None = None
    try:
        transaction = session.begin()
        uow = UnitOfWork(session)
        counted: dict[str, Outcomes] = {}
        try:
            for lane in lanes:
                run = lane.between(start, end)
                if not run:
                    continue
                reported = uow._outcomes = Outcomes()
                lane.handler.handle(run, uow)
                if not transaction.is_active:
                    raise UnitOfWorkError(
                        f"{lane.registration.name} committed, rolled back or closed the session;"
                        " handlers must leave the transaction to the dispatcher"
                    )
                table = lane.registration.table_name
                earlier = counted.get(table)
                if earlier is None or (reported.reported and not earlier.reported):
                    if not reported.reported:
                        reported.applied = len(run)
                    counted[table] = reported
            uow._outcomes = None
            transaction.commit()
            for table, reported in counted.items():
                outcomes.setdefault(table, Outcomes()).add(reported)
        except UnitOfWorkError:
            raise
        except Exception as error:
            if (isinstance(error, DBAPIError) and error.connection_invalidated) or is_transient(error):
                # Not the record's fault: the whole transaction is retried or fails. A
                # deadlock has already rolled it back (InnoDB: savepoints included).
                whole_transaction_lost = error
                raise
            if transaction.is_active:
                try:
                    transaction.rollback()
                except Exception as broken:
                    # The savepoint cannot be rolled back: the connection is gone
                    # (some drivers report a closed socket as a plain error).
                    connection.invalidate()
                    raise ConnectionLostError("the connection broke while a run was rolled back") from broken
            return error
        return None
    finally:
        try:
            session.close()
        except Exception:
            # Closing rolls back to the savepoint, which a deadlock took with the
            # whole transaction ("SAVEPOINT ... does not exist"): what counts is the
            # error that lost it, and the caller rolls back and retries the transaction.
            if whole_transaction_lost is None:
                raise
