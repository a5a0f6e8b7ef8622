"""
SQLite: the guarded statement once per row, through `executemany`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dynastream._replication.target import bind_processor, tombstone_upsert

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Connection

    from dynastream._replication.target import Deletion, Target, Upsert

__all__ = ["SQLiteStatements"]


class SQLiteStatements:
    """
    The upsert, delete and tombstone statements of one table on SQLite.
    """

    def __init__(self, target: Target) -> None:
        from sqlalchemy.dialects import sqlite

        self.target = target
        self._tombstone_upsert = tombstone_upsert(sqlite.insert)
        quote, table, tomb = target.quote, target.quoted_table, target.quoted_tombstones
        names, keys, sequence = target.quoted_columns, target.quoted_keys, target.quoted_sequence
        updates = ", ".join(
            f"{n} = excluded.{n}" for n, c in zip(names, target.columns, strict=True) if not c.primary_key
        )
        self.upsert_sql = (
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join('?' for _ in names)}"
            f" WHERE NOT EXISTS (SELECT 1 FROM {tomb} WHERE table_name = ? AND item_key = ?"
            f" AND sequence_number >= ?)"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
            f" WHERE {table}.{sequence} < excluded.{sequence}"
        )
        match = " AND ".join(f"{k} = ?" for k in keys)
        if target.deleted is None:
            self.delete_sql = f"DELETE FROM {table} WHERE {match} AND {sequence} < ?"
        else:
            deleted = quote(target.deleted.name)
            self.delete_sql = (
                f"UPDATE {table} SET {deleted} = ?, {sequence} = ? WHERE {match} AND {sequence} < ?"
            )
        self._deleted_processor = (
            None if target.deleted is None else bind_processor(target.dialect, target.deleted)
        )

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        """
        Write each row where it is the newest change; return the rows written.
        """
        table_name = self.target.table.fullname
        parameters = [(*self.target.processed(r), table_name, r.item_key, r.sequence) for r in rows]
        # sqlite3 sums the rows each execution changed; a row held back by the
        # tombstone or the guard changes none.
        return connection.exec_driver_sql(self.upsert_sql, parameters).rowcount

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int:
        """
        Delete (or mark) each row older than its deletion; return how many.
        """
        if self.target.deleted is None:
            parameters = [(*self.target.processed_key(d), d.sequence) for d in deletions]
        else:
            process = self._deleted_processor or (lambda value: value)
            parameters = [
                (process(d.deleted_at), d.sequence, *self.target.processed_key(d), d.sequence)
                for d in deletions
            ]
        return connection.exec_driver_sql(self.delete_sql, parameters).rowcount

    def write_tombstones(self, connection: Connection, deletions: Sequence[Deletion], now: datetime) -> None:
        """
        Leave a tombstone per deletion, stamped `now`, whose sequence number only moves forward.
        """
        table_name = self.target.table.fullname
        connection.execute(
            self._tombstone_upsert,
            [
                {
                    "table_name": table_name,
                    "item_key": d.item_key,
                    "sequence_number": d.sequence,
                    "deleted_at": now,
                }
                for d in deletions
            ],
        )
