"""
dynastream's own tables, and the columns it asks of a replicated table.

The bookkeeping tables (tombstones, the applied-events ledger, the
quarantine, the checkpoints, the item locks) live in `dynastream.schema.metadata`; create them with
`App.create_tables()` (or `dynastream create-tables`), or copy their DDL into a
migration (docs: "Schema and Alembic").
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, time
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "SEQUENCE_WIDTH",
    "ExactString",
    "applied_events",
    "checkpoints",
    "deleted_column",
    "encode_sequence_number",
    "fit_identifier",
    "item_key",
    "locks",
    "metadata",
    "quarantine",
    "sequence_column",
    "tombstones",
]

# Sequence numbers are 21 to 40 digits. Stored as zero-padded text of one fixed
# width they compare exactly on every engine, SQLite included (64-bit integers
# only), and never pass through a float. A Kinesis Data Streams record's
# ordering number (39 digits, see _kinesis.py) is stored after the letter K:
# equal-width digit runs compare as numbers under every collation, and a letter
# sorts after every digit, so a Kinesis change always wins over a stored
# DynamoDB Streams sequence number or a backfilled row, never the reverse.
SEQUENCE_WIDTH = 40
KINESIS_MARKER = "K"

metadata = sa.MetaData()


class ExactString(sa.String):
    """
    A `String` whose values compare byte for byte on every engine: for key columns.

    DynamoDB keys `abc`, `ABC` and `abc ` are three items. MySQL's and
    MariaDB's default collations ignore case, and their `*_bin` collations
    trailing spaces, so a key column of the built-in replication must declare
    a binary collation that does not pad: this type renders
    `VARCHAR(n) COLLATE utf8mb4_0900_bin` on MySQL 8.0 (Aurora MySQL 3) and
    `VARCHAR(n) COLLATE utf8mb4_nopad_bin` on MariaDB, which compare exactly
    (https://dev.mysql.com/doc/refman/8.0/en/charset-binary-collations.html).
    PostgreSQL's and SQLite's default collations already tell any two strings
    apart, and there it is a plain `VARCHAR(n)`.

    Examples:
        >>> import sqlalchemy as sa, dynastream
        >>> from sqlalchemy.dialects import mysql
        >>> column = sa.Column("order_id", dynastream.ExactString(64), primary_key=True)
        >>> str(column.type.compile(dialect=mysql.dialect()))
        'VARCHAR(64) COLLATE utf8mb4_0900_bin'
    """

    def __init__(self, length: int | None = None) -> None:
        super().__init__(length)


@compiles(ExactString, "mysql")
@compiles(ExactString, "mariadb")
def _compile_exact_string(type_: ExactString, compiler: Any, **options: Any) -> str:
    # A `mysql+pymysql://` engine on MariaDB is the "mysql" dialect, which knows
    # which server it met once connected (before any DDL runs).
    mariadb = getattr(compiler.dialect, "is_mariadb", False) or compiler.dialect.name == "mariadb"
    collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
    rendered: str = compiler.process(sa.VARCHAR(type_.length, collation=collation), **options)
    return rendered


def _exact_text(length: int) -> sa.String:
    """
    Return a `String(length)` compared byte for byte on MySQL and MariaDB too.

    Their default collations ignore case (`utf8mb4_general_ci`,
    `utf8mb4_0900_ai_ci`): table names, eventIDs and stream ARNs that differ
    only in case must stay apart. No value here ends in a space, so a PAD SPACE
    binary collation is exact for them.
    """
    exact = sa.String(length, collation="utf8mb4_bin")
    return sa.String(length).with_variant(exact, "mysql", "mariadb")


tombstones = sa.Table(
    "dynastream_tombstones",
    metadata,
    sa.Column("table_name", _exact_text(255), primary_key=True, comment="the replicated SQL table"),
    sa.Column("item_key", sa.String(64), primary_key=True, comment="SHA-256 of the row's primary key"),
    sa.Column("sequence_number", sa.String(SEQUENCE_WIDTH), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False, index=True),
    comment="REMOVEs kept for the stream's retention, so a late older change cannot resurrect a row",
)

applied_events = sa.Table(
    "dynastream_applied_events",
    metadata,
    sa.Column("handler", _exact_text(255), primary_key=True, comment="the handler's ledger name"),
    sa.Column("event_id", _exact_text(128), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, index=True),
    comment="eventIDs applied by exactly-once handlers, kept for the stream's retention",
)


quarantine = sa.Table(
    "dynastream_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", _exact_text(255), nullable=False, comment="the DynamoDB table"),
    sa.Column("event_id", _exact_text(128), nullable=False),
    sa.Column("sequence_number", sa.String(SEQUENCE_WIDTH), nullable=False),
    sa.Column("item_keys", sa.Text, nullable=False, comment="the item's key attributes, as JSON"),
    sa.Column("error_type", sa.String(255), nullable=False),
    sa.Column("error_message", sa.Text, nullable=False, comment="never an attribute value"),
    sa.Column(
        "raw",
        # A record (two 400 KB images) outgrows MySQL's TEXT (64 KB): TEXT(2^32-1) is LONGTEXT there.
        sa.Text().with_variant(sa.Text(2**32 - 1), "mysql", "mariadb"),
        nullable=True,
        comment="the record as received, only when kept on purpose",
    ),
    sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False, index=True),
    # A redelivered poison record is set aside once.
    sa.UniqueConstraint("table_name", "event_id", name="uq_dynastream_quarantine_event"),
    comment="records set aside by tables whose poison policy is quarantine",
)


checkpoints = sa.Table(
    "dynastream_checkpoints",
    metadata,
    sa.Column("stream_arn", _exact_text(255), primary_key=True),
    sa.Column("shard_id", _exact_text(65), primary_key=True),
    sa.Column(
        "sequence_number",
        sa.String(SEQUENCE_WIDTH),
        nullable=True,
        comment="the last record applied, zero-padded; NULL before the first",
    ),
    sa.Column("finished", sa.Boolean, nullable=False, comment="the shard is closed and fully applied"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    comment="where the stream runner is in each shard, written in the same transaction as the data",
)


locks = sa.Table(
    "dynastream_locks",
    metadata,
    sa.Column("lock_key", sa.BigInteger, primary_key=True, autoincrement=False),
    comment="items being written by a transaction in flight: rows never outlive the transaction",
)


# The lock rows never outlive their transaction: nothing in them is worth writing
# ahead to the log, so the table is UNLOGGED on PostgreSQL
# (https://www.postgresql.org/docs/current/sql-createtable.html#SQL-CREATETABLE-UNLOGGED).
UNLOGGED_LOCKS = "ALTER TABLE dynastream_locks SET UNLOGGED"
sa.event.listen(
    locks,
    "after_create",
    sa.DDL(UNLOGGED_LOCKS).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
)


def sequence_column(name: str = "dynastream_sequence") -> sa.Column[str]:
    """
    Return the column in which a replicated table keeps each row's sequence number.

    A change is applied to a row only when its sequence number is greater than
    the one stored here, which makes redelivered and out-of-order batches
    harmless.

    Examples:
        >>> import sqlalchemy as sa, dynastream
        >>> orders = sa.Table(
        ...     "orders", sa.MetaData(),
        ...     sa.Column("order_id", sa.String(64), primary_key=True),
        ...     dynastream.sequence_column(),
        ... )
        >>> orders.c.dynastream_sequence.type
        String(length=40)
    """
    return sa.Column(name, sa.String(SEQUENCE_WIDTH), nullable=False)


def deleted_column(name: str = "dynastream_deleted_at") -> sa.Column[datetime]:
    """
    Return the column a soft-deleting replicated table marks removed rows in.

    It holds `NULL` for a live row and the time of the REMOVE for a deleted
    one, to the microsecond on every engine (`DATETIME(6)` on MySQL and
    MariaDB, whose plain `DATETIME` keeps whole seconds).
    """
    # Imported here: the MySQL dialect costs tens of milliseconds of cold start,
    # and only soft-deleting applications call this.
    from sqlalchemy.dialects.mysql import DATETIME

    moment = sa.DateTime(timezone=True).with_variant(DATETIME(timezone=True, fsp=6), "mysql", "mariadb")
    return sa.Column(name, moment, nullable=True)


def encode_sequence_number(sequence_number: int, *, kinesis: bool = False) -> str:
    """
    Return a sequence number (`kinesis`: a Kinesis ordering number) as the fixed-width text stored.

    Raises:
        ValueError: It is negative or has more than 40 digits (39 for `kinesis`).
    """
    text = str(sequence_number)
    width = SEQUENCE_WIDTH - 1 if kinesis else SEQUENCE_WIDTH
    if sequence_number < 0 or len(text) > width:
        raise ValueError(f"a sequence number must be 0 to {width} digits")
    return KINESIS_MARKER + text.zfill(width) if kinesis else text.zfill(width)


# Enough precision that normalizing any DynamoDB number (38 digits, exponent
# -130 to +125) is exact: the default context's 28 digits would round.
_EXACT = Context(prec=1000, Emax=10_000, Emin=-10_000)


def fit_identifier(text: str, width: int) -> str:
    """
    Return an identifier (an eventID, a sequence number) as a column of `width` can keep it.

    Text that fits, and that every engine can store (no NUL, valid Unicode),
    is kept as it is; any other is replaced by a prefix and a digest of the
    whole, so that two different identifiers stay different and inserting
    one never fails.
    """
    if len(text) <= width and "\x00" not in text and (text.isascii() or _SURROGATE(text) is None):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = text.encode("ascii", "backslashreplace").decode("ascii").replace("\x00", "")
    return f"{prefix[: width - 17]}~{digest}"  # every width used here is well over 17


_SURROGATE = re.compile("[\ud800-\udfff]").search


def _canonical(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["b", bytes(value).hex()]
    if isinstance(value, bool):
        return ["t", value]
    if isinstance(value, (int, Decimal)):
        # 1, 1.0 and 1.00 are one DynamoDB key, and one value in the column;
        # any two different numbers give two texts.
        return ["n", str(Decimal(value).normalize(_EXACT)) if value else "0"]
    if isinstance(value, (datetime, date, time)):
        return ["d", value.isoformat()]
    return ["s", str(value)]


# The same text as json.dumps with these options, without building an encoder per call.
_encode_key = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def item_key(values: Iterable[Any]) -> str:
    """
    Return the fixed-width identity of a row's primary key values (in key order).

    Two keys give one identity exactly when they are one row: numbers by
    value (`1.50` is `1.5`, and 38-digit numbers that differ in their last
    digit differ), text and binary by every character and byte, each value
    tagged with its kind.
    """
    values = list(values)
    text = _plain_text_key(values) or _encode_key([_canonical(v) for v in values])
    return hashlib.sha256(text.encode()).hexdigest()


def _plain_text_key(values: list[Any]) -> str | None:
    """
    Return the JSON `item_key` hashes for keys of plain text only, else `None`.

    Text of printable ASCII without quotes or backslashes, which JSON spells
    as it is: the same text `_encode_key` gives, without its encoder (most
    keys are such text, and one is hashed per record).
    """
    parts = []
    for value in values:
        if value.__class__ is not str or not (value.isascii() and value.isprintable()):
            return None
        if '"' in value or "\\" in value:
            return None
        parts.append(f'["s","{value}"]')
    return f"[{','.join(parts)}]"
