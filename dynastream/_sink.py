"""
Sinks: guarded bulk writes of replicated rows, one dialect at a time.

Every write is one conditional statement per chunk of rows, never a read
followed by a write:

- an upsert inserts a row unless a tombstone at least as new exists, and
  updates an existing row only when its stored sequence number is smaller;
- a delete removes (or marks) a row only when its stored sequence number is
  smaller, and records a tombstone whose sequence number only moves forward.

On PostgreSQL and MySQL/MariaDB a chunk travels as one JSON parameter
(`jsonb_array_elements` / `JSON_TABLE`) and the server casts each value to its
column type: one round trip per chunk whatever the number of columns, and
numbers arrive as their exact text. SQLite, embedded, takes the same statement
one row at a time through `executemany`.

Identifiers come only from the table definitions, quoted by the dialect.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import attrs
import sqlalchemy as sa

from . import _locks
from .schema import tombstones

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect

__all__ = ["CHUNK_ROWS", "Deletion", "TableWriter", "Upsert", "storage_type"]

# A chunk's JSON stays well under MySQL's default max_allowed_packet (16 MiB
# on MariaDB, 64 MiB on Aurora MySQL 3).
CHUNK_ROWS = 2_000
_CHUNK_BYTES = 8 * 1024 * 1024


@attrs.frozen
class Upsert:
    """
    One row to write.

    Its column values (in the writer's column order), its item key and its
    fixed-width sequence number.
    """

    values: Sequence[Any]
    item_key: str
    sequence: str


@attrs.frozen
class Deletion:
    """
    One row to delete.

    Its primary key values (in key order), its item key, its fixed-width
    sequence number and the time of the REMOVE (what a soft-delete column
    receives).
    """

    key: Sequence[Any]
    item_key: str
    sequence: str
    deleted_at: datetime


def _bind_processor(dialect: Dialect, column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    processor: Callable[[Any], Any] | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _is_plain_json(column: sa.Column[Any], dialect: Dialect) -> bool:
    """
    Whether a column is SQLAlchemy's own JSON type (JSONB included) here.

    Such values travel nested in the chunk's JSON; a TypeDecorator's values go
    through its own processing instead.
    """
    return isinstance(column.type.dialect_impl(dialect), sa.JSON) and not isinstance(
        column.type, sa.TypeDecorator
    )


def storage_type(column: sa.Column[Any], dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """
    Return the type a column's values reach the driver as on `dialect`.

    Variants resolved, type decorators unwrapped to the type they store.
    """
    type_: sa.types.TypeEngine[Any] = column.type.dialect_impl(dialect)
    while isinstance(type_, sa.TypeDecorator):
        type_ = type_.load_dialect_impl(dialect).dialect_impl(dialect)
    return type_


def _is_binary(column: sa.Column[Any], dialect: Dialect) -> bool:
    """
    Whether a column stores bytes: LargeBinary, BINARY, VARBINARY, BLOB, BYTEA...
    """
    return isinstance(storage_type(column, dialect), sa.types._Binary)


class TableWriter:
    """
    Writes upserts and deletions of one replicated table with the sequence guard.

    Args:
        table: The replicated table.
        columns: The columns an upsert writes, in the order of `Upsert.values`;
            they must include the primary key and the sequence column.
        sequence_column: The column holding each row's sequence number.
        deleted_column: The soft-delete column, or `None` to delete rows.
        dialect: The dialect of the database written to.
        collations: The collation of each text column, as MySQL reports it:
            keys are matched under their column's own collation.
    """

    def __init__(
        self,
        table: sa.Table,
        *,
        columns: Sequence[str],
        sequence_column: str,
        deleted_column: str | None,
        dialect: Dialect,
        collations: Mapping[str, str] | None = None,
    ) -> None:
        self.table = table
        self.dialect = dialect
        self.collations = dict(collations or {})
        by_name = {column.name: column for column in table.columns}  # table.c is keyed by key, not name
        self.columns = [by_name[name] for name in columns]
        self.key_columns = list(table.primary_key.columns)
        self.sequence = by_name[sequence_column]
        self.deleted = None if deleted_column is None else by_name[deleted_column]
        self._sequence_index = list(columns).index(sequence_column)
        self._processors = [_bind_processor(dialect, column) for column in self.columns]
        self._key_processors = [_bind_processor(dialect, column) for column in self.key_columns]
        self._dialect = _DIALECTS.get(dialect.name, _SQLite)(self)

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool = False) -> int:
        """
        Write `rows` (one per key), each only where it is the newest change.

        A row is written only if it is newer than the row and the tombstone it
        would replace. `converted` says the values come from `RowMapper`'s
        converters, whose types are known (JSON column values hold only what
        JSON takes), so that they are encoded with fewer checks.

        Returns:
            How many rows were written, as the database reports it without an
            extra round trip: exact on PostgreSQL and SQLite; on MySQL and
            MariaDB, rows inserted, updated *or left unchanged by the guard*
            (the server reports those alike), only rows held back by a
            tombstone being told apart.
        """
        if not rows:
            return 0
        return self._dialect.upsert(connection, rows, converted=converted)

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
        self._write_tombstones(connection, deletions, now)
        return self._dialect.delete(connection, deletions)

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
        table_name = self.table.fullname
        return _locks.hold(connection, [_locks.lock_key(table_name, key) for key in item_keys])

    def unlock(self, connection: Connection, held: Sequence[int]) -> None:
        """
        Release (before COMMIT) what `lock` took; waiters still wait for COMMIT.
        """
        _locks.release(connection, held)

    def _write_tombstones(self, connection: Connection, deletions: Sequence[Deletion], now: datetime) -> None:
        table_name = self.table.fullname
        parameters = [
            {
                "table_name": table_name,
                "item_key": d.item_key,
                "sequence_number": d.sequence,
                "deleted_at": now,
            }
            for d in deletions
        ]
        connection.execute(self._dialect.tombstone_statement(), parameters)

    def processed(self, row: Upsert) -> list[Any]:
        """
        Return a row's values as the driver takes them.

        That is SQLAlchemy's bind processing of each column type, user type
        decorators included.
        """
        return [
            None if value is None or value is _SQL_NULL else value if processor is None else processor(value)
            for processor, value in zip(self._processors, row.values, strict=True)
        ]

    def processed_key(self, deletion: Deletion) -> list[Any]:
        """
        Return a deletion's key values as the driver takes them.
        """
        return [
            value if processor is None or value is None else processor(value)
            for processor, value in zip(self._key_processors, deletion.key, strict=True)
        ]


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[start : start + CHUNK_ROWS] for start in range(0, len(items), CHUNK_ROWS)]


# Rows hold what the mappers give: plain, acyclic values, so the encoder skips
# its circular-reference bookkeeping. One encoder, not one per call.
_encode_rows = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
).encode


def _json_payloads(rows: Sequence[list[Any]], encode: Callable[[Any], str] = _encode_rows) -> list[str]:
    """
    Serialize rows as JSON arrays, split so that no payload is too large.
    """
    return [text for text, _ in _counted_payloads(rows, encode)]


def _counted_payloads(
    rows: Sequence[list[Any]], encode: Callable[[Any], str] = _encode_rows
) -> list[tuple[str, int]]:
    """
    `_json_payloads`, each payload with the number of rows it holds.
    """
    payloads = []
    for chunk in _chunks(rows):
        text = encode(chunk)
        if len(text) > _CHUNK_BYTES and len(chunk) > 1:
            middle = len(chunk) // 2
            payloads.extend(_counted_payloads(chunk[:middle], encode))
            payloads.extend(_counted_payloads(chunk[middle:], encode))
        else:
            payloads.append((text, len(chunk)))
    return payloads


def _scalar_text(value: Any, *, binary_prefix: str) -> Any:  # noqa: PLR0911 - one return per type
    """
    Return a driver-level value as a JSON scalar the server casts back exactly.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return binary_prefix + bytes(value).hex()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time, UUID)):
        return str(value)
    wrapped = getattr(value, "obj", _MISSING)  # psycopg's Json / Jsonb / Binary wrappers
    if wrapped is not _MISSING:
        if isinstance(wrapped, (bytes, bytearray, memoryview)):
            return binary_prefix + bytes(wrapped).hex()
        return json.dumps(wrapped, ensure_ascii=False, separators=(",", ":"))
    raise TypeError(f"cannot send a {type(value).__name__} value through the bulk writer")


_MISSING = object()


class _HexChunk:
    """
    A JSON chunk that PyMySQL sends as a hexadecimal literal (see `_MySQL._send`).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<chunk of {len(self.text)} characters>"


def _hex_literal(chunk: _HexChunk, _mapping: Any = None) -> str:
    return f"X'{chunk.text.encode().hex()}'"


_SQL_NULL = sa.null()  # a singleton: what a mapper gives for SQL NULL in a JSON column
_JSON_SCALARS = frozenset({str, int, float, bool})
_NESTED = object()  # a JSON column's value: sent as it is, nested
_PLAIN = object()  # a column without bind processing


def _kinds(nested: Sequence[bool], processors: Sequence[Callable[[Any], Any] | None]) -> list[Any]:
    """
    Return, per column, how its values are encoded.

    `_NESTED` (as they are), `_PLAIN` (no bind processing), or the bind
    processor to run first.
    """
    return [
        _NESTED if is_nested else _PLAIN if processor is None else processor
        for is_nested, processor in zip(nested, processors, strict=True)
    ]


def _tombstone_upsert(insert: Callable[[sa.Table], Any]) -> sa.Executable:
    """
    Return the upsert of a tombstone whose sequence number only moves forward.

    `INSERT ... ON CONFLICT DO UPDATE ... WHERE`, spelled alike by PostgreSQL
    and SQLite.
    """
    statement = insert(tombstones)
    upsert: sa.Executable = statement.on_conflict_do_update(
        index_elements=[tombstones.c.table_name, tombstones.c.item_key],
        set_={
            "sequence_number": statement.excluded.sequence_number,
            "deleted_at": statement.excluded.deleted_at,
        },
        where=tombstones.c.sequence_number < statement.excluded.sequence_number,
    )
    return upsert


def _postgresql_cast_type(column: sa.Column[Any], dialect: Dialect) -> str:
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


class _SQLite:
    """
    SQLite: the guarded statement once per row, through `executemany`.
    """

    def __init__(self, writer: TableWriter) -> None:
        self.writer = writer
        quote = writer.dialect.identifier_preparer.quote
        table = writer.dialect.identifier_preparer.format_table(writer.table)
        tomb = writer.dialect.identifier_preparer.format_table(tombstones)
        names = [quote(c.name) for c in writer.columns]
        keys = [quote(c.name) for c in writer.key_columns]
        sequence = quote(writer.sequence.name)
        updates = ", ".join(
            f"{n} = excluded.{n}" for n, c in zip(names, writer.columns, strict=True) if not c.primary_key
        )
        self.upsert_sql = (
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join('?' for _ in names)}"
            f" WHERE NOT EXISTS (SELECT 1 FROM {tomb} WHERE table_name = ? AND item_key = ?"
            f" AND sequence_number >= ?)"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
            f" WHERE {table}.{sequence} < excluded.{sequence}"
        )
        match = " AND ".join(f"{k} = ?" for k in keys)
        if writer.deleted is None:
            self.delete_sql = f"DELETE FROM {table} WHERE {match} AND {sequence} < ?"
        else:
            deleted = quote(writer.deleted.name)
            self.delete_sql = (
                f"UPDATE {table} SET {deleted} = ?, {sequence} = ? WHERE {match} AND {sequence} < ?"
            )
        self._deleted_processor = (
            None if writer.deleted is None else _bind_processor(writer.dialect, writer.deleted)
        )

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        table_name = self.writer.table.fullname
        parameters = [(*self.writer.processed(r), table_name, r.item_key, r.sequence) for r in rows]
        # sqlite3 sums the rows each execution changed; a row held back by the
        # tombstone or the guard changes none.
        return connection.exec_driver_sql(self.upsert_sql, parameters).rowcount

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int:
        if self.writer.deleted is None:
            parameters = [(*self.writer.processed_key(d), d.sequence) for d in deletions]
        else:
            process = self._deleted_processor or (lambda value: value)
            parameters = [
                (process(d.deleted_at), d.sequence, *self.writer.processed_key(d), d.sequence)
                for d in deletions
            ]
        return connection.exec_driver_sql(self.delete_sql, parameters).rowcount

    def tombstone_statement(self) -> sa.Executable:
        from sqlalchemy.dialects import sqlite

        return _tombstone_upsert(sqlite.insert)


class _PostgreSQL:
    """
    PostgreSQL: each chunk as one JSON array, cast server-side column by column.
    """

    # Statements as `_send` takes them: SQLAlchemy text here, driver SQL for MySQL.
    upsert_sql: Any
    delete_sql: Any

    binary_prefix = "\\x"

    def _prepare(self, writer: TableWriter) -> tuple[Dialect, Callable[[str], str], str, str, list[str]]:
        """
        Set up what both JSON-chunk dialects share.

        Returns the dialect, its quoting function, the quoted table and
        tombstone table, and the quoted column names.
        """
        self.writer = writer
        dialect = writer.dialect
        self._nested = [_is_plain_json(c, dialect) for c in writer.columns]
        self._kinds = _kinds(self._nested, writer._processors)
        # For converted rows: the bind processing that scalars need, and an
        # encoder that turns the other scalar types (Decimal, bytes, datetime)
        # into their exact text as it meets them.
        self._processed = [
            (i, processor)
            for i, (nested, processor) in enumerate(zip(self._nested, writer._processors, strict=True))
            if not nested and processor is not None
        ]
        self._encode_converted = json.JSONEncoder(
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
            check_circular=False,
            default=self._converted_scalar,
        ).encode
        preparer = dialect.identifier_preparer
        names = [preparer.quote(c.name) for c in writer.columns]
        return (
            dialect,
            preparer.quote,
            preparer.format_table(writer.table),
            preparer.format_table(tombstones),
            names,
        )

    def __init__(self, writer: TableWriter) -> None:
        dialect, quote, table, tomb, names = self._prepare(writer)
        count = len(writer.columns)

        def cast(i: int, column: sa.Column[Any]) -> str:
            type_sql = _postgresql_cast_type(column, dialect)
            if self._nested[i]:  # the value itself, not its text; JSON null is SQL NULL
                return f"CAST(NULLIF(r.v->{i}, CAST('null' AS jsonb)) AS {type_sql})"
            return f"CAST(r.v->>{i} AS {type_sql})"

        casts = ", ".join(cast(i, c) for i, c in enumerate(writer.columns))
        keys = [quote(c.name) for c in writer.key_columns]
        sequence = quote(writer.sequence.name)
        updates = ", ".join(
            f"{n} = EXCLUDED.{n}" for n, c in zip(names, writer.columns, strict=True) if not c.primary_key
        )
        self.upsert_sql = sa.text(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {casts}"
            " FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)"
            f" WHERE NOT EXISTS (SELECT 1 FROM {tomb} AS tb WHERE tb.table_name = :table_name"
            f" AND tb.item_key = r.v->>{count} AND tb.sequence_number >= r.v->>{writer._sequence_index})"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
            f" WHERE {table}.{sequence} < EXCLUDED.{sequence}"
        )
        match = " AND ".join(
            f"{table}.{k} = CAST(r.v->>{i} AS {_postgresql_cast_type(c, dialect)})"
            for i, (k, c) in enumerate(zip(keys, writer.key_columns, strict=True))
        )
        position = len(keys)
        if writer.deleted is None:
            self.delete_sql = sa.text(
                f"DELETE FROM {table} USING jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)"
                f" WHERE {match} AND {table}.{sequence} < r.v->>{position}"
            )
        else:
            deleted = quote(writer.deleted.name)
            deleted_type = _postgresql_cast_type(writer.deleted, dialect)
            self.delete_sql = sa.text(
                f"UPDATE {table} SET {deleted} = CAST(r.v->>{position + 1} AS {deleted_type}),"
                f" {sequence} = r.v->>{position}"
                f" FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r(v)"
                f" WHERE {match} AND {table}.{sequence} < r.v->>{position}"
            )

    def _scalar(self, value: Any) -> Any:
        return _scalar_text(value, binary_prefix=self.binary_prefix)

    def _encode(self, values: Sequence[Any]) -> list[Any]:
        return [self._scalar(v) for v in values]

    def _encode_row(self, row: Upsert) -> list[Any]:
        """
        Return a row as the JSON array the statement reads.

        Scalars travel as exact text (after SQLAlchemy's bind processing), JSON
        column values nested.
        """
        scalar = self._scalar
        as_is = _JSON_SCALARS
        return [
            None
            if value is None or value is _SQL_NULL
            else value
            if kind is _NESTED or (kind is _PLAIN and value.__class__ in as_is)
            else scalar(value if kind is _PLAIN else kind(value))
            for kind, value in zip(self._kinds, row.values, strict=True)
        ]

    def _converted_row(self, row: Upsert) -> list[Any]:
        """
        `_encode_row` for converted rows: only bind processing runs here.
        """
        values = [*row.values, row.item_key]
        for i, process in self._processed:
            value = values[i]
            if value is not None and value is not _SQL_NULL:
                values[i] = process(value)
        return values

    def _converted_scalar(self, value: Any) -> Any:
        if value.__class__ is Decimal:  # the most common by far: Numeric columns
            return str(value)
        return None if value is _SQL_NULL else self._scalar(value)

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        # One chunk encoded, sent and released at a time: memory stays bounded.
        table_name = self.writer.table.fullname
        written = 0
        for chunk in _chunks(rows):
            if converted:
                payloads = _counted_payloads([self._converted_row(r) for r in chunk], self._encode_converted)
            else:
                payloads = _counted_payloads([[*self._encode_row(r), r.item_key] for r in chunk])
            for payload, count in payloads:
                result = self._send(connection, self.upsert_sql, payload, {"table_name": table_name})
                written += self._upserted(result, connection, count)
        return written

    def _upserted(self, result: sa.CursorResult[Any], connection: Connection, count: int) -> int:
        """
        Return how many rows of a payload its upsert wrote.

        PostgreSQL counts the rows inserted and those updated where the guard
        let it: exactly the rows written.
        """
        return result.rowcount

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int:
        encoded = [
            [*self._encode(self.writer.processed_key(d)), d.sequence, d.deleted_at.isoformat(sep=" ")]
            for d in deletions
        ]
        return sum(
            self._send(connection, self.delete_sql, payload, {}).rowcount
            for payload in _json_payloads(encoded)
        )

    def _send(
        self, connection: Connection, statement: Any, payload: str, parameters: dict[str, Any]
    ) -> sa.CursorResult[Any]:
        return connection.execute(statement, {"rows": payload, **parameters})

    def tombstone_statement(self) -> sa.Executable:
        from sqlalchemy.dialects import postgresql

        return _tombstone_upsert(postgresql.insert)


class _MySQL(_PostgreSQL):
    """
    MySQL / MariaDB: each chunk as one JSON array read by `JSON_TABLE`.

    Binary travels as hex, and every update is guarded with the sequence
    column assigned last (MySQL evaluates assignments left to right).
    """

    binary_prefix = ""

    def __init__(self, writer: TableWriter) -> None:  # the shared setup is _prepare's, not super's
        dialect, quote, table, tomb, names = self._prepare(writer)
        sequence = quote(writer.sequence.name)

        def text_column(name: str, i: int, charset: str = "utf8mb4") -> str:
            # The character set is stated: JSON_TABLE's text columns otherwise take
            # the database's, and a latin1 database would turn text into "?".
            return f"{name} LONGTEXT CHARACTER SET {charset} PATH '$[{i}]'"

        def upsert_source(columns: Sequence[sa.Column[Any]]) -> str:
            # JSON column values travel nested in the chunk (JSON_TABLE's JSON columns
            # are utf8mb4 whatever the database's character set), which is why they nest
            # two levels less than MariaDB's 32 (see _coerce). Hex and sequence numbers
            # are ASCII, which compares with text of any collation (no "illegal mix of
            # collations" against the tombstones').
            defined = [
                f"c{i} JSON PATH '$[{i}]'"
                if self._nested[i]
                else text_column(
                    f"c{i}", i, "ascii" if _is_binary(c, dialect) or c is writer.sequence else "utf8mb4"
                )
                for i, c in enumerate(columns)
            ]
            defined.append(text_column("item_key", len(columns), "ascii"))
            return f"JSON_TABLE(CONVERT(:rows USING utf8mb4), '$[*]' COLUMNS ({', '.join(defined)})) AS v"

        def value(i: int, column: sa.Column[Any]) -> str:
            if self._nested[i]:  # JSON null is SQL NULL
                return f"IF(JSON_TYPE(v.c{i}) = 'NULL', NULL, v.c{i})"
            return f"UNHEX(v.c{i})" if _is_binary(column, dialect) else f"v.c{i}"

        selected = ", ".join(value(i, c) for i, c in enumerate(writer.columns))
        guard = f"{table}.{sequence} < VALUES({sequence})"
        updates = [
            f"{n} = IF({guard}, VALUES({n}), {table}.{n})"
            for n, c in zip(names, writer.columns, strict=True)
            if not c.primary_key and c is not writer.sequence
        ]
        updates.append(f"{sequence} = IF({guard}, VALUES({sequence}), {table}.{sequence})")
        self.upsert_sql = sa.text(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {selected}"
            f" FROM {upsert_source(writer.columns)}"
            f" WHERE NOT EXISTS (SELECT 1 FROM {tomb} AS tb WHERE tb.table_name = :table_name"
            f" AND tb.item_key = v.item_key AND tb.sequence_number >= v.c{writer._sequence_index})"
            f" ON DUPLICATE KEY UPDATE {', '.join(updates)}"
        )

        # Deletes find rows by key: each key compares exactly, as its column's own
        # type (a DECIMAL key compared with text would be compared as a double:
        # https://dev.mysql.com/doc/refman/8.0/en/type-conversion.html), text under
        # its column's own collation, which the replication has checked is exact.
        keys = writer.key_columns
        defined = [_mysql_key_column(i, k, dialect) for i, k in enumerate(keys)]
        defined += [
            text_column("sequence", len(keys), "ascii"),
            text_column("deleted_at", len(keys) + 1, "ascii"),
        ]
        source = f"JSON_TABLE(CONVERT(:rows USING utf8mb4), '$[*]' COLUMNS ({', '.join(defined)})) AS v"
        match = " AND ".join(
            f"{table}.{quote(k.name)} = {_mysql_key_value(i, k, dialect, writer.collations)}"
            for i, k in enumerate(keys)
        )
        # The chunk is read first and each row looked up by key (STRAIGHT_JOIN reads its
        # left table first: https://dev.mysql.com/doc/refman/8.0/en/join.html): left to
        # itself, MariaDB scans a small table instead, and a scan waits for, and locks,
        # rows other batches are writing.
        if writer.deleted is None:
            self.delete_sql = sa.text(
                f"DELETE {table} FROM {source} STRAIGHT_JOIN {table} ON {match}"
                f" WHERE {table}.{sequence} < v.sequence"
            )
        else:
            deleted = quote(writer.deleted.name)
            self.delete_sql = sa.text(
                f"UPDATE {source} STRAIGHT_JOIN {table} ON {match}"
                f" SET {table}.{deleted} = v.deleted_at, {table}.{sequence} = v.sequence"
                f" WHERE {table}.{sequence} < v.sequence"
            )

    def _scalar(self, value: Any) -> Any:
        # MySQL's DATETIME has no zone: send UTC wall time, as the driver would.
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return _scalar_text(value, binary_prefix="")

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int:
        encoded = [
            [
                *self._encode(self.writer.processed_key(d)),
                d.sequence,
                d.deleted_at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "),
            ]
            for d in deletions
        ]
        # DELETE ... JOIN counts the rows deleted; UPDATE ... JOIN, under
        # CLIENT_FOUND_ROWS (which SQLAlchemy always sets), the rows matched,
        # which the guard in its WHERE makes the rows marked.
        return sum(
            self._send(connection, self.delete_sql, payload, {}).rowcount
            for payload in _json_payloads(encoded)
        )

    def _upserted(self, result: sa.CursorResult[Any], connection: Connection, count: int) -> int:
        """
        Return the rows of a payload that passed the tombstone check.

        The affected-rows count of `INSERT ... ON DUPLICATE KEY UPDATE` is 1
        per row inserted, 2 per row updated, and 1 per row left unchanged
        (0 without CLIENT_FOUND_ROWS, which SQLAlchemy always sets): a row the
        guard kept reads like an insert. The OK packet's info line ("Records:
        R  Duplicates: D", D the rows updated) gives R, the rows the SELECT
        passed on, i.e. all but those a tombstone held back; without it (a
        driver that does not expose it) every row counts.
        https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html
        """
        records = _mysql_records(connection)
        return count if records is None else records

    def _send(
        self, connection: Connection, statement: Any, payload: str, parameters: dict[str, Any]
    ) -> sa.CursorResult[Any]:
        """
        Run `statement` with the chunk as its `rows` parameter.

        PyMySQL would escape a string parameter character by character in
        Python, about half of the statement's time on a large chunk; the chunk
        goes as a hexadecimal literal instead, which needs no escaping under
        any `sql_mode`. It is still a parameter: never part of the statement
        text that SQLAlchemy logs or puts in errors, and hidden or shown as
        `<chunk of N characters>` where parameters are.
        """
        rows: Any = payload
        encoders = getattr(connection.connection.dbapi_connection, "encoders", None)
        if connection.dialect.driver == "pymysql" and isinstance(encoders, dict):
            encoders[_HexChunk] = _hex_literal
            rows = _HexChunk(payload)
        return connection.execute(statement, {"rows": rows, **parameters})

    def tombstone_statement(self) -> sa.Executable:
        from sqlalchemy.dialects.mysql import insert

        statement = insert(tombstones)
        newer = tombstones.c.sequence_number < statement.inserted.sequence_number
        return statement.on_duplicate_key_update(
            [
                (
                    "deleted_at",
                    sa.case((newer, statement.inserted.deleted_at), else_=tombstones.c.deleted_at),
                ),
                (
                    "sequence_number",
                    sa.case((newer, statement.inserted.sequence_number), else_=tombstones.c.sequence_number),
                ),
            ]
        )


# Key types that JSON_TABLE converts from a JSON string exactly, so that the
# key compares as its column's own type: numbers by value, times as times.
_MYSQL_TYPED_KEYS = (sa.Integer, sa.Numeric, sa.DateTime, sa.Date, sa.Time)


def _mysql_key_column(i: int, column: sa.Column[Any], dialect: Dialect) -> str:
    """
    Return the JSON_TABLE column definition of key `i` for MySQL.
    """
    type_ = storage_type(column, dialect)
    if isinstance(type_, _MYSQL_TYPED_KEYS) and not isinstance(type_, sa.Boolean):
        return f"k{i} {column.type.compile(dialect=dialect)} PATH '$[{i}]'"
    charset = "ascii" if isinstance(type_, sa.types._Binary) else "utf8mb4"
    return f"k{i} LONGTEXT CHARACTER SET {charset} PATH '$[{i}]'"


def _mysql_key_value(i: int, column: sa.Column[Any], dialect: Dialect, collations: Mapping[str, str]) -> str:
    """
    Return the expression key `i` of a chunk row compares to its column with, on MySQL.
    """
    type_ = storage_type(column, dialect)
    if isinstance(type_, sa.types._Binary):
        return f"UNHEX(v.k{i})"
    collation = collations.get(column.name)
    if collation is not None and not isinstance(type_, _MYSQL_TYPED_KEYS):
        # The column's own collation (explicit, so it wins over the chunk's):
        # the comparison is the index's, and exact where the collation is.
        charset = collation.split("_", 1)[0]
        return f"CONVERT(v.k{i} USING {charset}) COLLATE {collation}"
    return f"v.k{i}"


_RECORDS = re.compile(rb"Records: (\d+)")


def _mysql_records(connection: Connection) -> int | None:
    """
    Return "Records: N" from the last statement's info line, if the driver keeps it.

    PyMySQL keeps the last result (with its `message`) on the connection;
    mysqlclient exposes `info()`.
    """
    dbapi = connection.connection.dbapi_connection
    info: Any = getattr(getattr(dbapi, "_result", None), "message", None)
    if info is None and callable(getattr(dbapi, "info", None)):
        info = dbapi.info()  # type: ignore[union-attr]  # mysqlclient's mysql_info()
    if isinstance(info, str):
        info = info.encode()
    match = _RECORDS.search(info) if isinstance(info, bytes) else None
    return None if match is None else int(match.group(1))


_DIALECTS: dict[str, type[_SQLite] | type[_PostgreSQL]] = {
    "postgresql": _PostgreSQL,
    "mysql": _MySQL,
    "mariadb": _MySQL,
    "sqlite": _SQLite,
}
