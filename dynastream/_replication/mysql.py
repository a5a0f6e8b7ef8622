"""
MySQL / MariaDB: each chunk as one JSON array read by `JSON_TABLE`.

Binary travels as hex, and every update is guarded with the sequence column
assigned last (MySQL evaluates assignments left to right).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dynastream._replication.chunks import JsonRows, chunks, json_payloads, scalar_text
from dynastream._replication.target import is_binary, storage_type

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect

    from dynastream._replication.target import Deletion, Target, Upsert

__all__ = ["MySQLStatements", "chunk_scalar", "guarded_upsert", "records_passed", "stage_charset"]


def chunk_scalar(value: Any) -> Any:
    """
    Return a driver-level value as the JSON scalar a chunk carries it as, on MySQL.
    """
    # MySQL's DATETIME has no zone: send UTC wall time, as the driver would.
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return scalar_text(value, binary_prefix="")


def _text_column(name: str, i: int, charset: str = "utf8mb4") -> str:
    # The character set is stated: JSON_TABLE's text columns otherwise take
    # the database's, and a latin1 database would turn text into "?".
    return f"{name} LONGTEXT CHARACTER SET {charset} PATH '$[{i}]'"


def stage_charset(target: Target, column: sa.Column[Any]) -> str:
    """
    Return the character set a column's values are read as, as text, on MySQL.

    Hex (binary columns) and sequence numbers are ASCII, which compares with
    text of any collation (no "illegal mix of collations" against the
    tombstones'); the rest is utf8mb4, whatever the database's character set.
    """
    return "ascii" if is_binary(column, target.dialect) or column is target.sequence else "utf8mb4"


def guarded_upsert(target: Target, *, selected: str, source: str) -> str:
    """
    Return the guarded upsert of the rows `source` gives, on MySQL and MariaDB.

    `source` is a table `v` with a column `c<i>` per written column and an
    `item_key`. A row is inserted unless a tombstone at least as new holds its
    item back, and each column of an existing row updated only where the
    stored sequence number is smaller: the sequence column is assigned last,
    as MySQL evaluates assignments left to right and later ones would compare
    against the new value
    (https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html).

    Args:
        target: The table written to.
        selected: The row's values, in `target.columns` order.
        source: The table expression the rows come from, named `v`.
    """
    table, tomb = target.quoted_table, target.quoted_tombstones
    names, sequence = target.quoted_columns, target.quoted_sequence
    guard = f"{table}.{sequence} < VALUES({sequence})"
    updates = [
        f"{n} = IF({guard}, VALUES({n}), {table}.{n})"
        for n, c in zip(names, target.columns, strict=True)
        if not c.primary_key and c is not target.sequence
    ]
    updates.append(f"{sequence} = IF({guard}, VALUES({sequence}), {table}.{sequence})")
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {selected}"
        f" FROM {source}"
        f" WHERE NOT EXISTS (SELECT 1 FROM {tomb} AS tb WHERE tb.table_name = :table_name"
        f" AND tb.item_key = v.item_key AND tb.sequence_number >= v.c{target.sequence_index})"
        f" ON DUPLICATE KEY UPDATE {', '.join(updates)}"
    )


class _HexChunk:
    """
    A JSON chunk that PyMySQL sends as a hexadecimal literal (see `MySQLStatements.send`).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<chunk of {len(self.text)} characters>"


def _hex_literal(chunk: _HexChunk, _mapping: Any = None) -> str:
    return f"X'{chunk.text.encode().hex()}'"


class MySQLStatements:
    """
    The upsert, delete and tombstone statements of one table on MySQL and MariaDB.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.rows = JsonRows(target, chunk_scalar)
        self.upsert_sql = self._upsert_statement()
        self.delete_sql = self._delete_statement()
        tomb = target.quoted_tombstones
        newer = f"{tomb}.sequence_number < VALUES(sequence_number)"
        self.tombstones_sql = sa.text(
            f"INSERT INTO {tomb} (table_name, item_key, sequence_number, deleted_at)"
            " SELECT :table_name, v.item_key, v.sequence, :deleted_at FROM JSON_TABLE("
            "CONVERT(:rows USING utf8mb4), '$[*]' COLUMNS ("
            f"{_text_column('item_key', 0, 'ascii')}, {_text_column('sequence', 1, 'ascii')})) AS v"
            f" ON DUPLICATE KEY UPDATE deleted_at = IF({newer}, VALUES(deleted_at), {tomb}.deleted_at),"
            f" sequence_number = IF({newer}, VALUES(sequence_number), {tomb}.sequence_number)"
        )

    def _upsert_statement(self) -> sa.TextClause:
        target = self.target
        dialect = target.dialect
        nested = self.rows.nested
        # JSON column values travel nested in the chunk (JSON_TABLE's JSON columns
        # are utf8mb4 whatever the database's character set), which is why they nest
        # two levels less than MariaDB's 32 (see coerce).
        defined = [
            f"c{i} JSON PATH '$[{i}]'" if nested[i] else _text_column(f"c{i}", i, stage_charset(target, c))
            for i, c in enumerate(target.columns)
        ]
        defined.append(_text_column("item_key", len(target.columns), "ascii"))
        source = f"JSON_TABLE(CONVERT(:rows USING utf8mb4), '$[*]' COLUMNS ({', '.join(defined)})) AS v"

        def value(i: int, column: sa.Column[Any]) -> str:
            if nested[i]:  # JSON null is SQL NULL
                return f"IF(JSON_TYPE(v.c{i}) = 'NULL', NULL, v.c{i})"
            return f"UNHEX(v.c{i})" if is_binary(column, dialect) else f"v.c{i}"

        selected = ", ".join(value(i, c) for i, c in enumerate(target.columns))
        return sa.text(guarded_upsert(target, selected=selected, source=source))

    def _delete_statement(self) -> sa.TextClause:
        # Deletes find rows by key: each key compares exactly, as its column's own
        # type (a DECIMAL key compared with text would be compared as a double:
        # https://dev.mysql.com/doc/refman/8.0/en/type-conversion.html), text under
        # its column's own collation, which the replication has checked is exact.
        target = self.target
        dialect = target.dialect
        quote, table, sequence = target.quote, target.quoted_table, target.quoted_sequence
        keys = target.key_columns
        defined = [_key_column(i, k, dialect) for i, k in enumerate(keys)]
        defined += [
            _text_column("sequence", len(keys), "ascii"),
            _text_column("deleted_at", len(keys) + 1, "ascii"),
        ]
        source = f"JSON_TABLE(CONVERT(:rows USING utf8mb4), '$[*]' COLUMNS ({', '.join(defined)})) AS v"
        match = " AND ".join(
            f"{table}.{quote(k.name)} = {_key_value(i, k, dialect, target.collations)}"
            for i, k in enumerate(keys)
        )
        # The chunk is read first and each row looked up by key (STRAIGHT_JOIN reads its
        # left table first: https://dev.mysql.com/doc/refman/8.0/en/join.html): left to
        # itself, MariaDB scans a small table instead, and a scan waits for, and locks,
        # rows other batches are writing.
        if target.deleted is None:
            return sa.text(
                f"DELETE {table} FROM {source} STRAIGHT_JOIN {table} ON {match}"
                f" WHERE {table}.{sequence} < v.sequence"
            )
        deleted = quote(target.deleted.name)
        return sa.text(
            f"UPDATE {source} STRAIGHT_JOIN {table} ON {match}"
            f" SET {table}.{deleted} = v.deleted_at, {table}.{sequence} = v.sequence"
            f" WHERE {table}.{sequence} < v.sequence"
        )

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        """
        Write each row where it is the newest change; return the rows that passed the tombstone check.

        The affected-rows count of `INSERT ... ON DUPLICATE KEY UPDATE` is 1
        per row inserted, 2 per row updated, and 1 per row left unchanged
        (0 without CLIENT_FOUND_ROWS, which SQLAlchemy always sets): a row the
        guard kept reads like an insert. The OK packet's info line ("Records:
        R  Duplicates: D", D the rows updated) gives R, the rows the SELECT
        passed on, i.e. all but those a tombstone held back; without it (a
        driver that does not expose it) every row counts.
        https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html
        """
        # One chunk encoded, sent and released at a time: memory stays bounded.
        parameters = {"table_name": self.target.table.fullname}
        written = 0
        for chunk in chunks(rows):
            for payload, count in self.rows.upsert_payloads(chunk, converted=converted):
                self.send(connection, self.upsert_sql, payload, parameters)
                records = records_passed(connection)
                written += count if records is None else records
        return written

    def delete(self, connection: Connection, deletions: Sequence[Deletion]) -> int:
        """
        Delete (or mark) each row older than its deletion; return how many.
        """
        encoded = [
            [
                *self.rows.values(self.target.processed_key(d)),
                d.sequence,
                chunk_scalar(d.deleted_at),
            ]
            for d in deletions
        ]
        # DELETE ... JOIN counts the rows deleted; UPDATE ... JOIN, under
        # CLIENT_FOUND_ROWS (which SQLAlchemy always sets), the rows matched,
        # which the guard in its WHERE makes the rows marked.
        return sum(
            self.send(connection, self.delete_sql, payload, {}).rowcount for payload in json_payloads(encoded)
        )

    def send(
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

    def write_tombstones(self, connection: Connection, deletions: Sequence[Deletion], now: datetime) -> None:
        """
        Leave a tombstone per deletion, stamped `now`, whose sequence number only moves forward.

        One statement for the batch; the sequence number is assigned last, so
        that the guard of `deleted_at` reads the stored one.
        """
        # DATETIME has no zone: UTC wall time (see chunk_scalar).
        stamp = chunk_scalar(now)
        for payload in json_payloads([[d.item_key, d.sequence] for d in deletions]):
            self.send(
                connection,
                self.tombstones_sql,
                payload,
                {"table_name": self.target.table.fullname, "deleted_at": stamp},
            )


# Key types that JSON_TABLE converts from a JSON string exactly, so that the
# key compares as its column's own type: numbers by value, times as times.
_TYPED_KEYS = (sa.Integer, sa.Numeric, sa.DateTime, sa.Date, sa.Time)


def _key_column(i: int, column: sa.Column[Any], dialect: Dialect) -> str:
    """
    Return the JSON_TABLE column definition of key `i` for MySQL.
    """
    type_ = storage_type(column, dialect)
    if isinstance(type_, _TYPED_KEYS) and not isinstance(type_, sa.Boolean):
        return f"k{i} {column.type.compile(dialect=dialect)} PATH '$[{i}]'"
    charset = "ascii" if is_binary(column, dialect) else "utf8mb4"
    return f"k{i} LONGTEXT CHARACTER SET {charset} PATH '$[{i}]'"


def _key_value(i: int, column: sa.Column[Any], dialect: Dialect, collations: Mapping[str, str]) -> str:
    """
    Return the expression key `i` of a chunk row compares to its column with, on MySQL.
    """
    type_ = storage_type(column, dialect)
    if is_binary(column, dialect):
        return f"UNHEX(v.k{i})"
    collation = collations.get(column.name)
    if collation is not None and not isinstance(type_, _TYPED_KEYS):
        # The column's own collation (explicit, so it wins over the chunk's):
        # the comparison is the index's, and exact where the collation is.
        charset = collation.split("_", 1)[0]
        return f"CONVERT(v.k{i} USING {charset}) COLLATE {collation}"
    return f"v.k{i}"


_RECORDS = re.compile(rb"Records: (\d+)")


def records_passed(connection: Connection) -> int | None:
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
