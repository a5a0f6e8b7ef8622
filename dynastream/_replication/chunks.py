"""
Rows as JSON chunks: how PostgreSQL and MySQL/MariaDB receive a batch's rows.

A chunk of up to `CHUNK_ROWS` rows travels as one JSON array parameter, which
the server reads (`jsonb_array_elements` / `JSON_TABLE`) and casts column by
column: one round trip per chunk whatever the number of columns, and numbers
arrive as their exact text.

With the `speedups` extra installed, chunks are encoded by orjson, several
times quicker than the standard library; any chunk orjson refuses (an
integer beyond 64 bits, text that is not valid Unicode, nesting deeper than
254 levels) is encoded by the standard library instead, which gives the same
text or the same error as without orjson.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from dynastream._replication.target import SQL_NULL, is_plain_json

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

    from dynastream._replication.target import Target, Upsert

__all__ = [
    "CHUNK_ROWS",
    "JsonRows",
    "chunks",
    "counted_payloads",
    "json_encoder",
    "json_payloads",
    "scalar_text",
]

# A chunk's JSON stays well under MySQL's default max_allowed_packet (16 MiB
# on MariaDB, 64 MiB on Aurora MySQL 3).
CHUNK_ROWS = 2_000
_CHUNK_BYTES = 8 * 1024 * 1024


def chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    """
    Split `items` into chunks of at most `CHUNK_ROWS`.
    """
    return [items[start : start + CHUNK_ROWS] for start in range(0, len(items), CHUNK_ROWS)]


def _load_orjson() -> ModuleType | None:
    try:
        import orjson
    except ImportError:
        return None
    return orjson


# The `speedups` extra; None encodes every chunk with the standard library.
orjson: ModuleType | None = _load_orjson()


def json_encoder(default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """
    Return the encoder of chunks: orjson where it is installed, else the standard library.

    Both give JSON that the servers read as the same values: compact, text
    as it is (not escaped to ASCII), `default` called for any other type
    (orjson's own spellings of dates and times are turned off, so that
    `default` spells them). A chunk orjson refuses goes to the standard
    library, which encodes it or raises as it would alone.
    """
    # Rows hold what the mappers give: plain, acyclic values, so the encoder
    # skips its circular-reference bookkeeping.
    stdlib = json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False, default=default
    ).encode
    module = orjson
    if module is None:
        return stdlib
    dumps, refused = module.dumps, module.JSONEncodeError
    option = module.OPT_PASSTHROUGH_DATETIME | module.OPT_PASSTHROUGH_DATACLASS

    def encode(value: Any) -> str:
        try:
            text: str = dumps(value, default=default, option=option).decode()
        except refused:
            return stdlib(value)
        return text

    return encode


def json_payloads(rows: Sequence[list[Any]], encode: Callable[[Any], str] | None = None) -> list[str]:
    """
    Serialize rows as JSON arrays, split so that no payload is too large.
    """
    return [text for text, _ in counted_payloads(rows, encode)]


def counted_payloads(
    rows: Sequence[list[Any]], encode: Callable[[Any], str] | None = None
) -> list[tuple[str, int]]:
    """
    `json_payloads`, each payload with the number of rows it holds.
    """
    if encode is None:
        encode = json_encoder()
    payloads = []
    for chunk in chunks(rows):
        text = encode(chunk)
        if len(text) > _CHUNK_BYTES and len(chunk) > 1:
            middle = len(chunk) // 2
            payloads.extend(counted_payloads(chunk[:middle], encode))
            payloads.extend(counted_payloads(chunk[middle:], encode))
        else:
            payloads.append((text, len(chunk)))
    return payloads


_MISSING = object()


def scalar_text(value: Any, *, binary_prefix: str) -> Any:  # noqa: PLR0911 - one return per type
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


_JSON_SCALARS = frozenset({str, int, float, bool})
_NESTED = object()  # a JSON column's value: sent as it is, nested
_PLAIN = object()  # a column without bind processing


class JsonRows:
    """
    Encodes a target's rows as the JSON arrays a chunk statement reads.

    Args:
        target: The table written to.
        scalar: Turns one driver-level value into the JSON scalar the server
            casts back exactly (the dialect's spelling of binary and times).
    """

    def __init__(self, target: Target, scalar: Callable[[Any], Any]) -> None:
        self.scalar = scalar
        dialect = target.dialect
        self.nested = [is_plain_json(c, dialect) for c in target.columns]
        # Per column, how its values are encoded: _NESTED (as they are), _PLAIN
        # (no bind processing), or the bind processor to run first.
        self._kinds: list[Any] = [
            _NESTED if is_nested else _PLAIN if processor is None else processor
            for is_nested, processor in zip(self.nested, target.processors, strict=True)
        ]
        # For converted rows: the bind processing that scalars need, and an
        # encoder that turns the other scalar types (Decimal, bytes, datetime)
        # into their exact text as it meets them.
        self._processed = [
            (i, processor)
            for i, (nested, processor) in enumerate(zip(self.nested, target.processors, strict=True))
            if not nested and processor is not None
        ]
        self._nested_indexes = [i for i, nested in enumerate(self.nested) if nested]
        self._encode = json_encoder()
        self._encode_converted = json_encoder(default=self._converted_scalar)

    def values(self, values: Sequence[Any]) -> list[Any]:
        """
        Return driver-level values as JSON scalars.
        """
        return [self.scalar(v) for v in values]

    def row(self, row: Upsert) -> list[Any]:
        """
        Return a row as the JSON array the statement reads.

        Scalars travel as exact text (after SQLAlchemy's bind processing), JSON
        column values nested.
        """
        scalar = self.scalar
        as_is = _JSON_SCALARS
        return [
            None
            if value is None or value is SQL_NULL
            else value
            if kind is _NESTED or (kind is _PLAIN and value.__class__ in as_is)
            else scalar(value if kind is _PLAIN else kind(value))
            for kind, value in zip(self._kinds, row.values, strict=True)
        ]

    def upsert_payloads(self, rows: Sequence[Upsert], *, converted: bool) -> list[tuple[str, int]]:
        """
        Return the payloads of one chunk of upserts, each row followed by its item key.

        `converted` rows come from `RowMapper`'s converters, whose types are
        known, so that only bind processing runs here.
        """
        if converted:
            return counted_payloads([self._converted_row(r) for r in rows], self._encode_converted)
        return counted_payloads([[*self.row(r), r.item_key] for r in rows], self._encode)

    def staged(self, row: Upsert, *, converted: bool) -> list[Any]:
        """
        Return a row, then its item key, as a staging table receives them.

        Each JSON column's value as the JSON text a chunk would carry (`None`
        for SQL NULL and for JSON null, both SQL NULL in a chunk statement
        too); the other values after the same bind processing as in a chunk,
        for the dialect to spell as text (`SQL_NULL` among them means NULL).
        """
        values = [*row.values, row.item_key]
        encode = self._encode_converted if converted else self._encode
        for i in self._nested_indexes:
            value = values[i]
            values[i] = None if value is None or value is SQL_NULL else encode(value)
        for i, process in self._processed:
            value = values[i]
            if value is not None and value is not SQL_NULL:
                values[i] = process(value)
        return values

    def _converted_row(self, row: Upsert) -> list[Any]:
        values = [*row.values, row.item_key]
        for i, process in self._processed:
            value = values[i]
            if value is not None and value is not SQL_NULL:
                values[i] = process(value)
        return values

    def _converted_scalar(self, value: Any) -> Any:
        if value.__class__ is Decimal:  # the most common by far: Numeric columns
            return str(value)
        return None if value is SQL_NULL else self.scalar(value)
