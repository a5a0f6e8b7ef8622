"""
The table writer: guarded bulk writes of replicated rows, one dialect at a time.

Every write is one conditional statement per chunk of rows, never a read
followed by a write:

- an upsert inserts a row unless a tombstone at least as new exists, and
  updates an existing row only when its stored sequence number is smaller;
- a delete removes (or marks) a row only when its stored sequence number is
  smaller, and records a tombstone whose sequence number only moves forward.

On PostgreSQL and MySQL/MariaDB upserts take one of two bulk paths, chosen
per batch (`TableWriter.bulk_path`):

- statements: a chunk travels as one JSON parameter (`jsonb_array_elements` /
  `JSON_TABLE`) and the server casts each value to its column type: one round
  trip per chunk whatever the number of columns, and numbers arrive as their
  exact text;
- staging: a chunk is loaded into a temporary table (`COPY` / `LOAD DATA LOCAL
  INFILE`), which the same guarded upsert then reads: no JSON for the server
  to take apart, which is what a wide table's chunk statement spends its time
  on.

Deletes and tombstones take statements on both. SQLite, embedded, takes the
same statement one row at a time through `executemany`.

Each dialect's statements live in a module of their own (`postgresql`,
`mysql`, `sqlite`), its staging path in another (`staging_postgresql`,
`staging_mysql`). Identifiers come only from the table definitions, quoted
by the dialect.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from dynastream import _locks
from dynastream._replication.mysql import MySQLStatements
from dynastream._replication.postgresql import PostgreSQLStatements
from dynastream._replication.sqlite import SQLiteStatements
from dynastream._replication.staging_mysql import MySQLStaging
from dynastream._replication.staging_postgresql import PostgreSQLStaging
from dynastream.exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from sqlalchemy import Connection

    from dynastream._replication.target import Deletion, Target, Upsert
    from dynastream._settings import BulkPath

__all__ = ["AUTO_STAGING", "TableWriter"]

Chosen = Literal["statements", "staging"]


class _Statements(Protocol):
    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int: ...

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int: ...

    def write_tombstones(
        self, connection: Connection, deletions: Sequence[Deletion], now: datetime
    ) -> None: ...


class _Staging(Protocol):
    def prepare(self, connection: Connection) -> str | None: ...

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int: ...


_DIALECTS: dict[str, Callable[[Target], _Statements]] = {
    "postgresql": PostgreSQLStatements,
    "mysql": MySQLStatements,
    "mariadb": MySQLStatements,
    "sqlite": SQLiteStatements,
}
_STAGING: dict[str, Callable[[Target], _Staging]] = {
    "postgresql": PostgreSQLStaging,
    "mysql": MySQLStaging,
    "mariadb": MySQLStaging,
}

# Where `auto` stages, by dialect: where staging measured faster than statements on the
# replication benchmark (`python -m benchmarks replication growth`, which reports the full
# path on both; docs/performance.md has the run). On the 2026-12-07 run, 1,000 and 10,000
# records: PostgreSQL 1.11-1.12x, MariaDB 1.06-1.12x the statement path; wide items
# (100 columns) on MariaDB about 2.3x, as JSON_TABLE spends microseconds on every value
# it extracts. At 100 records the two are within a few percent of each other.
AUTO_STAGING: dict[str, bool] = {
    "postgresql": True,
    "mysql": True,
    "mariadb": True,
}


class TableWriter:
    """
    Writes upserts and deletions of one replicated table with the sequence guard.

    Args:
        target: The table, as this dialect's writer sees it.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self._statements = _DIALECTS.get(target.dialect.name, SQLiteStatements)(target)
        staging = _STAGING.get(target.dialect.name)
        self._staging = None if staging is None else staging(target)

    def bulk_path(self, connection: Connection, requested: BulkPath) -> Chosen:
        """
        Return the bulk path this batch's upserts take on `connection`.

        `"statements"` and `"staging"` are taken as asked, but that SQLite
        (which has no bulk protocol) takes statements; `"auto"` stages where
        it measured faster (`AUTO_STAGING`) and staging can work here, but
        not on a connection that is not kept (`NullPool`, RDS Proxy's
        setting): a temporary table would pin the proxy's session to the
        client and be created again for every batch.

        Where staging is taken, its temporary table is created here if the
        connection lacks it.

        Raises:
            ConfigurationError: Staging is asked for where it cannot work (MySQL
                or MariaDB without `LOAD DATA LOCAL INFILE` on the client or the
                server, a user who may not create temporary tables, a driver
                other than PyMySQL or psycopg 3); raised before anything is
                written.
        """
        staging = self._staging
        if staging is None or requested == "statements":
            return "statements"
        if requested == "auto":
            from sqlalchemy.pool import NullPool

            if not AUTO_STAGING.get(connection.dialect.name) or isinstance(connection.engine.pool, NullPool):
                return "statements"
        reason = staging.prepare(connection)
        if reason is None:
            return "staging"
        if requested == "staging":
            raise ConfigurationError(
                f"DYNASTREAM_BULK_PATH=staging cannot work on this {connection.dialect.name} connection:"
                f" {reason}; or set DYNASTREAM_BULK_PATH=auto, which takes statements where staging"
                " cannot work"
            )
        return "statements"

    def upsert(
        self, connection: Connection, rows: Sequence[Upsert], *, converted: bool = False, staged: bool = False
    ) -> int:
        """
        Write `rows` (one per key), each only where it is the newest change.

        A row is written only if it is newer than the row and the tombstone it
        would replace. `converted` says the values come from `RowMapper`'s
        converters, whose types are known (JSON column values hold only what
        JSON takes), so that they are encoded with fewer checks. `staged`
        takes the staging path (see `bulk_path`) where the dialect has one.

        Returns:
            How many rows were written, as the database reports it without an
            extra round trip: exact on PostgreSQL and SQLite; on MySQL and
            MariaDB, rows inserted, updated *or left unchanged by the guard*
            (the server reports those alike), only rows held back by a
            tombstone being told apart.
        """
        if not rows:
            return 0
        if staged and self._staging is not None:
            return self._staging.upsert(connection, rows, converted=converted)
        return self._statements.upsert(connection, rows, converted=converted)

    def delete(self, connection: Connection, deletions: Sequence[Deletion], *, now: datetime) -> int:
        """
        Delete (or mark deleted) each row older than its deletion.

        Each deletion also leaves a tombstone that only moves forward, stamped
        `now`: tombstones are pruned by when they were written, so a replayed
        old batch meets them for the whole retention period.

        Returns:
            How many rows were deleted (or marked), on every engine.
        """
        if not deletions:
            return 0
        # Tombstones first: the upsert reads them before it writes rows, so both
        # paths take their locks in the same order.
        self._statements.write_tombstones(connection, deletions, now)
        return self._statements.delete(connection, deletions)

    def lock(self, connection: Connection, item_keys: Sequence[str]) -> Sequence[int]:
        """
        Serialize this transaction with any other writing the same items.

        Call it once per batch, before any upsert or delete, and `unlock` with
        what it returns after them. Without it, under READ COMMITTED, an upsert
        could miss a tombstone that a concurrent REMOVE has written but not yet
        committed, and resurrect the row; with it, each statement that reads
        tombstones or rows of an item reads what every earlier writer of that
        item committed. See `_locks` (SQLite, a single writer, needs none).
        """
        table_name = self.target.table.fullname
        return _locks.hold(connection, [_locks.lock_key(table_name, key) for key in item_keys])

    def unlock(self, connection: Connection, held: Sequence[int]) -> None:
        """
        Release (before COMMIT) what `lock` took; waiters still wait for COMMIT.
        """
        _locks.release(connection, held)
