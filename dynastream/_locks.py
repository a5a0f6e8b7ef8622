"""
Item locks: one writer per item at a time, without the server's lock table.

Two transactions that write one item (a REMOVE and an older INSERT, say)
must not both decide from what they read before the other committed: under
READ COMMITTED, an upsert could miss a tombstone written by a REMOVE still in
flight and bring the row back. So before a batch writes, it takes a lock per
item, held until COMMIT or ROLLBACK.

Each lock is a row of `dynastream_locks`, keyed by a 64-bit digest of what is
locked. Taking it inserts the row; a transaction that inserts the same key
waits, by the unique index, until the holder ends. The holder deletes its rows
before it commits, so they never outlive it, yet a waiter still waits for the
holder's COMMIT: an index entry inserted by a transaction in flight blocks an
insert of the same key whatever that transaction did to it since (PostgreSQL
and InnoDB alike; `tests/replication/test_locks.py` pins it on both servers).

Unlike PostgreSQL's advisory locks, which take one entry each in the server's
shared lock table (`max_locks_per_transaction` times `max_connections`, about
6,400 by default, for every client of the server), row locks live with the rows
(PostgreSQL) or in InnoDB's lock system, page by page: a thousand items per
batch times fifty concurrent batches costs no shared memory. Keys are taken in
ascending order in one statement, so two batches never wait for each other in a
cycle. SQLite has a single writer and needs none of this.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy import Connection

__all__ = ["hold", "lock_key", "release"]


def lock_key(namespace: str, identity: str) -> int:
    """
    Return the 64-bit lock key of `identity` (an item key, an eventID) in `namespace`.

    Two different items share a key with a chance of 2^-64: they would then
    wait for each other, which is slower, never wrong.
    """
    digest = hashlib.blake2b(f"{namespace}\x00{identity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_POSTGRESQL_HOLD = sa.text(
    "INSERT INTO dynastream_locks (lock_key)"
    " SELECT CAST(k AS bigint)"
    " FROM jsonb_array_elements_text(CAST(:keys AS jsonb)) WITH ORDINALITY AS a(k, n) ORDER BY n"
    # A row left by a transaction that never deleted it (none should) is locked all the same.
    " ON CONFLICT (lock_key) DO UPDATE SET lock_key = EXCLUDED.lock_key"
)
# Released by primary key, never by a scan of the table: a scan would wait for
# (and, on InnoDB, lock) other transactions' lock rows. MariaDB scans a small
# table rather than look up an IN list, so there the keys are read first and
# each looked up (STRAIGHT_JOIN reads its left table first:
# https://dev.mysql.com/doc/refman/8.0/en/join.html).
_POSTGRESQL_RELEASE = sa.text("DELETE FROM dynastream_locks WHERE lock_key = ANY(CAST(:keys AS bigint[]))")
_MYSQL_KEYS = "JSON_TABLE(:keys, '$[*]' COLUMNS (n FOR ORDINALITY, k BIGINT PATH '$')) AS j"
_MYSQL_HOLD = sa.text(
    f"INSERT INTO dynastream_locks (lock_key) SELECT j.k FROM {_MYSQL_KEYS}"  # noqa: S608 - constants
    " ORDER BY j.n ON DUPLICATE KEY UPDATE lock_key = dynastream_locks.lock_key"
)
_MYSQL_RELEASE = sa.text(
    f"DELETE l FROM {_MYSQL_KEYS} STRAIGHT_JOIN dynastream_locks AS l ON l.lock_key = j.k"
)


# The table is missing (tables created by an earlier version): PostgreSQL's
# undefined_table, MySQL's ER_NO_SUCH_TABLE.
_MISSING_TABLE_SQLSTATE = "42P01"
_MISSING_TABLE_MYSQL = 1146


def _statements(connection: Connection) -> tuple[sa.TextClause, sa.TextClause] | None:
    name = connection.dialect.name
    if name == "postgresql":
        return _POSTGRESQL_HOLD, _POSTGRESQL_RELEASE
    if name in ("mysql", "mariadb"):
        return _MYSQL_HOLD, _MYSQL_RELEASE
    return None


def hold(connection: Connection, keys: Iterable[int]) -> Sequence[int]:
    """
    Lock `keys` until the transaction ends, waiting for any other holder.

    Call `release` with what it returns once the transaction's writes are
    done, before COMMIT.

    Returns:
        The keys locked, ascending.

    Raises:
        ConfigurationError: `dynastream_locks` does not exist (`dynastream
            create-tables` creates it).
    """
    statements = _statements(connection)
    if statements is None:
        return ()
    held = sorted(set(keys))
    if held:
        try:
            connection.execute(statements[0], {"keys": json.dumps(held)})
        except sa.exc.DBAPIError as error:
            if _missing_table(error):
                raise ConfigurationError(
                    "the table dynastream_locks is missing: run `dynastream create-tables` (or"
                    " app.create_tables()) to add it; it holds the item locks of batches in flight"
                ) from error
            raise
    return held


def release(connection: Connection, held: Sequence[int]) -> None:
    """
    Delete the lock rows of `held` (they stay locked until the transaction ends).
    """
    statements = _statements(connection)
    if statements is None or not held:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(statements[1], {"keys": "{" + ",".join(map(str, held)) + "}"})
    else:
        connection.execute(statements[1], {"keys": json.dumps(list(held))})


def _missing_table(error: sa.exc.DBAPIError) -> bool:
    original = error.orig
    if getattr(original, "sqlstate", None) == _MISSING_TABLE_SQLSTATE:
        return True
    arguments: tuple[object, ...] = getattr(original, "args", ())
    return bool(arguments) and arguments[0] == _MISSING_TABLE_MYSQL
