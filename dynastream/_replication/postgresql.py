"""
PostgreSQL: each chunk as one JSON array, cast server-side column by column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dynastream._replication.chunks import JsonRows, chunks, json_payloads, scalar_text
from dynastream._replication.target import storage_type

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect

    from dynastream._replication.target import Deletion, Target, Upsert

__all__ = ["PostgreSQLStatements", "cast_type", "guarded_upsert"]


def cast_type(column: sa.Column[Any], dialect: Dialect) -> str:
    """
    Return the type a chunk's text is cast to for `column` on PostgreSQL.

    The column's own type, except that text and numbers are cast to `text`
    and `numeric` without a length or scale: an explicit cast to
    `varchar(5)` truncates and one to `numeric(10, 2)` rounds without a word,
    where storing (an assignment cast) refuses a string that is too long.
    The mapper has already refused what does not fit; this keeps any value
    that slipped past from being changed on the way, and keeps comparisons
    exact (a key is never cut down to match another row).
    """
    type_ = storage_type(column, dialect)
    own_type = isinstance(type_, sa.Enum) or type_.__visit_name__ in ("CHAR", "NCHAR", "CITEXT")
    if isinstance(type_, sa.String) and not own_type:
        return "text"
    if isinstance(type_, sa.Numeric) and not isinstance(type_, (sa.Float, sa.Integer)):
        return "numeric"
    compiled: str = column.type.compile(dialect=dialect)
    return compiled


def guarded_upsert(target: Target, *, selected: str, source: str, item_key: str, sequence: str) -> str:
    """
    Return the guarded upsert of the rows `source` gives, on PostgreSQL.

    A row is inserted unless a tombstone at least as new holds its item back,
    and an existing row updated only where its stored sequence number is
    smaller (`ON CONFLICT DO UPDATE ... WHERE`).

    Args:
        target: The table written to.
        selected: The row's values, in `target.columns` order.
        source: The `FROM` item the rows come from.
        item_key: The row's item key (text), as an expression over `source`.
        sequence: The row's sequence number (text), likewise.
    """
    table, tomb = target.quoted_table, target.quoted_tombstones
    names, keys, stored = target.quoted_columns, target.quoted_keys, target.quoted_sequence
    updates = ", ".join(
        f"{n} = EXCLUDED.{n}" for n, c in zip(names, target.columns, strict=True) if not c.primary_key
    )
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {selected} FROM {source}"
        f" WHERE NOT EXISTS (SELECT 1 FROM {tomb} AS tb WHERE tb.table_name = :table_name"
        f" AND tb.item_key = {item_key} AND tb.sequence_number >= {sequence})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        f" WHERE {table}.{stored} < EXCLUDED.{stored}"
    )


def _scalar(value: Any) -> Any:
    return scalar_text(value, binary_prefix="\\x")


class PostgreSQLStatements:
    """
    The upsert, delete and tombstone statements of one table on PostgreSQL.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.rows = JsonRows(target, _scalar)
        dialect = target.dialect
        quote, table = target.quote, target.quoted_table
        keys, sequence = target.quoted_keys, target.quoted_sequence
        count = len(target.columns)
        nested = self.rows.nested

        def cast(i: int, column: sa.Column[Any]) -> str:
            type_sql = cast_type(column, dialect)
            if nested[i]:  # the value itself, not its text; JSON null is SQL NULL
                return f"CAST(NULLIF(r.v->{i}, CAST('null' AS jsonb)) AS {type_sql})"
            return f"CAST(r.v->>{i} AS {type_sql})"

        casts = ", ".join(cast(i, c) for i, c in enumerate(target.columns))
        self.upsert_sql = sa.text(
            guarded_upsert(
                target,
                selected=casts,
                source="jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)",
                item_key=f"r.v->>{count}",
                sequence=f"r.v->>{target.sequence_index}",
            )
        )
        self.tombstones_sql = sa.text(
            f"INSERT INTO {target.quoted_tombstones} AS tb"
            " (table_name, item_key, sequence_number, deleted_at)"
            " SELECT :table_name, r.v->>0, r.v->>1, :deleted_at"
            " FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)"
            " ON CONFLICT (table_name, item_key) DO UPDATE"
            " SET sequence_number = EXCLUDED.sequence_number, deleted_at = EXCLUDED.deleted_at"
            " WHERE tb.sequence_number < EXCLUDED.sequence_number"
        ).bindparams(sa.bindparam("deleted_at", type_=sa.DateTime(timezone=True)))
        match = " AND ".join(
            f"{table}.{k} = CAST(r.v->>{i} AS {cast_type(c, dialect)})"
            for i, (k, c) in enumerate(zip(keys, target.key_columns, strict=True))
        )
        position = len(keys)
        if target.deleted is None:
            self.delete_sql = sa.text(
                f"DELETE FROM {table} USING jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)"
                f" WHERE {match} AND {table}.{sequence} < r.v->>{position}"
            )
        else:
            deleted = quote(target.deleted.name)
            deleted_type = cast_type(target.deleted, dialect)
            self.delete_sql = sa.text(
                f"UPDATE {table} SET {deleted} = CAST(r.v->>{position + 1} AS {deleted_type}),"
                f" {sequence} = r.v->>{position}"
                f" FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)"
                f" WHERE {match} AND {table}.{sequence} < r.v->>{position}"
            )

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        """
        Write each row where it is the newest change; return the rows written.

        PostgreSQL counts the rows inserted and those updated where the guard
        let it: exactly the rows written.
        """
        # One chunk encoded, sent and released at a time: memory stays bounded.
        parameters = {"table_name": self.target.table.fullname}
        written = 0
        for chunk in chunks(rows):
            for payload, _ in self.rows.upsert_payloads(chunk, converted=converted):
                written += connection.execute(self.upsert_sql, {"rows": payload, **parameters}).rowcount
        return written

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int:
        """
        Delete (or mark) each row older than its deletion; return how many.
        """
        encoded = [
            [*self.rows.values(self.target.processed_key(d)), d.sequence, d.deleted_at.isoformat(sep=" ")]
            for d in deletions
        ]
        return sum(
            connection.execute(self.delete_sql, {"rows": payload}).rowcount
            for payload in json_payloads(encoded)
        )

    def write_tombstones(self, connection: Connection, deletions: Sequence[Deletion], now: datetime) -> None:
        """
        Leave a tombstone per deletion, stamped `now`, whose sequence number only moves forward.

        One statement for the batch: the deletions are one per item, so no
        row is affected twice (which `ON CONFLICT DO UPDATE` refuses).
        """
        for payload in json_payloads([[d.item_key, d.sequence] for d in deletions]):
            connection.execute(
                self.tombstones_sql,
                {"rows": payload, "table_name": self.target.table.fullname, "deleted_at": now},
            )
