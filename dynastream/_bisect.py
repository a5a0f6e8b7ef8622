"""
Bisection: the first failing record of a batch, without per-record round trips.

Runs of records are applied in savepoints. The happy path is one attempt; a
failure costs O(log n) attempts over at most about 2n records, and the records
before the first failing one stay applied, exactly once.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

import attrs

from dynastream._retry import ConnectionLostError, is_transient
from dynastream._summary import Outcomes
from dynastream._uow import UnitOfWork
from dynastream.exceptions import TimeBudgetError, UnitOfWorkError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection
    from sqlalchemy.orm import Session, sessionmaker

    from dynastream._records import StreamRecord
    from dynastream._registry import Registration
    from dynastream.typing import Mapper, StreamEventHandler

__all__ = ["Lane", "apply_runs", "attempt", "bisect_runs"]


@attrs.define
class Lane:
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
        low = bisect_left(self.positions, start)
        high = bisect_left(self.positions, end)
        return self.records[low:high]


def apply_runs(
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
        `(position, error)`, as `bisect_runs` does for the first failure that is
        not set aside.
    """
    position, error = 0, None
    while True:
        position, error = bisect_runs(attempt, limit, start=position, proceed=proceed)
        if error is None or isinstance(error, TimeBudgetError) or not quarantine(position, error):
            return position, error
        position += 1
        if position < limit and (stop := proceed()) is not None:
            return position, stop


def bisect_runs(
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


def attempt(
    session_factory: sessionmaker[Session],
    connection: Connection,
    lanes: list[Lane],
    start: int,
    end: int,
    *,
    outcomes: dict[str, Outcomes],
) -> BaseException | None:
    """
    Apply records `[start, end)` in a savepoint; see `bisect_runs`.

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
        counted: dict[str, Outcomes] = {}
        try:
            for lane in lanes:
                run = lane.between(start, end)
                if not run:
                    continue
                reported = Outcomes()
                lane.handler.handle(run, UnitOfWork(session, outcomes=reported))
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
