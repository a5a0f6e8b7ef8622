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

import gc
from typing import TYPE_CHECKING, Any

import attrs

from ._autowire import build_handler, build_mapper
from ._bisect import Lane, apply_runs, attempt
from ._engine import bound_connects, deadline_for, limit_statements, read_committed, unlimit_statements
from ._events import read_event
from ._logging import exception_fields
from ._quarantine import quarantine_record
from ._results import BatchResult, RecordFailure
from ._retry import (
    ConnectionLostError,
    OutOfTime,
    is_read_only,
    remaining_time,
    retry_transient,
    within_budget,
)
from ._summary import BatchSummary, BatchTally, FailedRecord, Outcomes, log_summary
from .exceptions import (
    CommitOutcomeUnknownError,
    ConfigurationError,
    DynastreamError,
    MappingError,
    NoHandlerError,
    TimeBudgetError,
    describe_error,
)

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from dependency_injector import containers
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session, sessionmaker

    from ._records import Item, StreamRecord
    from ._registry import Registry
    from ._settings import Settings
    from .typing import MetricsSink

__all__ = ["Dispatcher"]


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

        `App.dispatch` documents the arguments, the result and the errors.
        """
        # The cyclic garbage collector would walk the whole event (tens of MB on a
        # large batch) for nothing: everything a batch allocates is freed by
        # reference counting. It is paused while the batch is applied.
        collecting = gc.isenabled()
        gc.disable()
        function_name = getattr(context, "function_name", None)
        tally = BatchTally(self._container.clock(), function_name if isinstance(function_name, str) else None)
        try:
            result = self._dispatch(event, table_name, remaining_time(context), before_commit, tally)
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
            Lane(
                registration,
                build_handler(registration, self._container),
                build_mapper(registration),
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
            tally.failure = FailedRecord(
                failed_table, failure.item_identifier, failure.event_id, failure.error
            )
            self._log_failure(failure, "reported in batchItemFailures")
        return BatchResult(
            total=total, applied=applied, failure=failure, window=batch.window, quarantined=quarantined
        )

    def _apply(
        self,
        lanes: list[Lane],
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
                raise OutOfTime(budget)
            with (
                deadline_for(last_seen[0], margin),
                within_budget(out_of_time),
                engine.connect() as connection,
            ):
                left = time_left()
                try:
                    return run_transaction(connection, left)
                finally:
                    if left is not None and not connection.invalidated:
                        unlimit_statements(connection)

        bound_connects(engine)

        def run_transaction(connection: Connection, left: float | None) -> tuple[int, BaseException | None]:
            transaction = connection.begin()
            read_committed(connection)
            if left is not None:
                limit_statements(connection, left - margin)
            quarantined.clear()
            outcomes.clear()  # of an earlier attempt of the transaction, rolled back
            try:
                outcome = apply_runs(
                    lambda first, last: attempt(
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
                # so a lost connection here is safe to retry (see _retry).
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
        except OutOfTime as stop:
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
        quarantine_record(connection, record, error, keep_raw=keep_raw, now=clock())
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


def _map_lane(lane: Lane, records: Sequence[StreamRecord[Item]], limit: int) -> RecordFailure | None:
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
