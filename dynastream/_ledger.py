"""
The ledger: exactly-once effects for custom handlers.

A handler registered with `exactly_once=True` receives only records whose
`eventID` it has not applied before. The ledger row of each record is written
in the same savepoint as the handler's own writes, so either both commit or
neither does; a redelivered record then finds its row and is skipped.

Claiming is one conditional statement per chunk where the database can say
which rows it inserted (`INSERT ... ON CONFLICT DO NOTHING RETURNING` on
PostgreSQL and SQLite); MySQL has no RETURNING, so there the eventIDs are
first locked (`_locks`: a concurrent claimer of the same ids waits for this
transaction to end), then the ledger rows read and the missing ones inserted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import _locks
from ._sql import insert_ignoring_duplicates
from .schema import applied_events, fit_identifier

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection

    from ._records import StreamRecord
    from ._uow import UnitOfWork
    from .typing import StreamEventHandler

__all__ = ["ExactlyOnceHandler", "claim_events"]

DEFAULT_LEDGER_RETENTION = timedelta(hours=48)
_PRUNE_EVERY = timedelta(hours=1)
_CHUNK = 1_000
_PRUNED_AT: dict[str, datetime] = {}


def claim_events(connection: Connection, handler: str, event_ids: Sequence[str], now: datetime) -> set[str]:
    """
    Record `event_ids` as applied by `handler` and return those that were new.
    """
    fresh: set[str] = set()
    handler = fit_identifier(handler, 255)
    for start in range(0, len(event_ids), _CHUNK):
        # eventIDs as the ledger's column keeps them: one too long for it (from a
        # hand-made event) is kept as a prefix and digest, never truncated into
        # another eventID.
        stored = {fit_identifier(event_id, 128): event_id for event_id in event_ids[start : start + _CHUNK]}
        chunk = list(stored)
        if connection.dialect.name in ("postgresql", "sqlite"):
            claimed = _claim_returning(connection, handler, chunk, now)
        else:
            claimed = _claim_locking(connection, handler, chunk, now)
        fresh.update(stored[event_id] for event_id in claimed)
    return fresh


def _claim_returning(connection: Connection, handler: str, event_ids: list[str], now: datetime) -> set[str]:
    statement = insert_ignoring_duplicates(connection.dialect.name, applied_events)
    statement = statement.returning(applied_events.c.event_id)
    rows = [{"handler": handler, "event_id": event_id, "applied_at": now} for event_id in event_ids]
    return set(connection.execute(statement, rows).scalars())


def _claim_locking(connection: Connection, handler: str, event_ids: list[str], now: datetime) -> set[str]:
    import sqlalchemy as sa

    # One claimer per eventID at a time (see _locks): the read then sees what
    # every earlier claimer committed, without the gap locks of a locking read.
    held = _locks.hold(connection, [_locks.lock_key(f"ledger\x00{handler}", e) for e in event_ids])
    seen = set(
        connection.scalars(
            sa.select(applied_events.c.event_id).where(
                applied_events.c.handler == handler, applied_events.c.event_id.in_(event_ids)
            )
        )
    )
    fresh = [event_id for event_id in event_ids if event_id not in seen]
    if fresh:
        connection.execute(
            applied_events.insert(),
            [{"handler": handler, "event_id": event_id, "applied_at": now} for event_id in fresh],
        )
    _locks.release(connection, held)
    return set(fresh)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ExactlyOnceHandler:
    """
    Wraps a handler so that each record reaches it once, whatever the redelivery.

    Args:
        handler: The wrapped handler.
        ledger_name: The name its applied eventIDs are kept under.
        retention: How long ledger rows are kept (at least the stream's 24 hours).
        clock: Returns the current aware UTC time.
    """

    def __init__(
        self,
        handler: StreamEventHandler[Any],
        ledger_name: str,
        *,
        retention: timedelta = DEFAULT_LEDGER_RETENTION,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.handler = handler
        self.ledger_name = ledger_name
        self.retention = retention
        self.clock = clock

    def handle(self, records: Sequence[StreamRecord[Any]], uow: UnitOfWork, /) -> None:
        """
        Pass on the records not applied before, and record them as applied.
        """
        now = self.clock()
        connection = uow.connection()
        fresh = claim_events(connection, self.ledger_name, [r.event_id for r in records], now)
        unseen = []
        for record in records:
            if record.event_id in fresh:
                fresh.discard(record.event_id)  # an eventID repeated within the batch is applied once
                unseen.append(record)
        if unseen:
            self.handler.handle(unseen, uow)
        uow.report_outcomes(applied=len(unseen), stale_skipped=len(records) - len(unseen))
        # A handler is built per invocation; when its ledger was last pruned is
        # kept per process, so the prune runs at most hourly, not every batch.
        pruned_at = _PRUNED_AT.get(self.ledger_name)
        if pruned_at is None or not timedelta(0) <= now - pruned_at < _PRUNE_EVERY:
            _PRUNED_AT[self.ledger_name] = now
            connection.execute(
                applied_events.delete().where(
                    applied_events.c.handler == self.ledger_name,
                    applied_events.c.applied_at < now - self.retention,
                )
            )
