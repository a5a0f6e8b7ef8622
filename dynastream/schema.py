"""
dynastream's own tables, and the columns it asks of a replicated table.

The bookkeeping tables (tombstones, the applied-events ledger, the
quarantine) live in `dynastream.schema.metadata`; create them with
`App.create_tables()` (or `dynastream create-tables`), or copy their DDL into a
migration (docs: "Schema and Alembic").
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "SEQUENCE_WIDTH",
    "applied_events",
    "checkpoints",
    "deleted_column",
    "encode_sequence_number",
    "item_key",
    "metadata",
    "quarantine",
    "sequence_column",
    "tombstones",
]

# Sequence numbers are 21 to 40 digits. Stored as zero-padded text of one fixed
# width they compare exactly on every engine, SQLite included (64-bit integers
# only), and never pass through a float.
SEQUENCE_WIDTH = 40

metadata = sa.MetaData()

tombstones = sa.Table(
    "dynastream_tombstones",
    metadata,
    sa.Column("table_name", sa.String(255), primary_key=True, comment="the replicated SQL table"),
    sa.Column("item_key", sa.String(64), primary_key=True, comment="SHA-256 of the row's primary key"),
    sa.Column("sequence_number", sa.String(SEQUENCE_WIDTH), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False, index=True),
    comment="REMOVEs kept for the stream's retention, so a late older change cannot resurrect a row",
)

applied_events = sa.Table(
    "dynastream_applied_events",
    metadata,
    sa.Column("handler", sa.String(255), primary_key=True, comment="the handler's ledger name"),
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, index=True),
    comment="eventIDs applied by exactly-once handlers, kept for the stream's retention",
)


quarantine = sa.Table(
    "dynastream_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("table_name", sa.String(255), nullable=False, comment="the DynamoDB table"),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("sequence_number", sa.String(SEQUENCE_WIDTH), nullable=False),
    sa.Column("item_keys", sa.Text, nullable=False, comment="the item's key attributes, as JSON"),
    sa.Column("error_type", sa.String(255), nullable=False),
    sa.Column("error_message", sa.Text, nullable=False, comment="never an attribute value"),
    sa.Column("raw", sa.Text, nullable=True, comment="the record as received, only when kept on purpose"),
    sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False, index=True),
    # A redelivered poison record is set aside once.
    sa.UniqueConstraint("table_name", "event_id", name="uq_dynastream_quarantine_event"),
    comment="records set aside by tables whose poison policy is quarantine",
)


checkpoints = sa.Table(
    "dynastream_checkpoints",
    metadata,
    sa.Column("stream_arn", sa.String(255), primary_key=True),
    sa.Column("shard_id", sa.String(65), primary_key=True),
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
    one.
    """
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def encode_sequence_number(sequence_number: int) -> str:
    """
    Return a sequence number as the fixed-width text stored in the database.

    Raises:
        ValueError: It is negative or has more than 40 digits.
    """
    text = str(sequence_number)
    if sequence_number < 0 or len(text) > SEQUENCE_WIDTH:
        raise ValueError(f"a sequence number must be 0 to {SEQUENCE_WIDTH} digits")
    return text.zfill(SEQUENCE_WIDTH)


def _canonical(value: Any) -> Any:
    if isinstance(value, bytes):
        return ["b", value.hex()]
    if isinstance(value, bool):
        return ["t", value]
    if isinstance(value, (int, Decimal)):
        # 1, 1.0 and 1.00 are one DynamoDB key.
        return ["n", str(Decimal(value).normalize()) if value else "0"]
    if isinstance(value, (datetime, date, time)):
        return ["d", value.isoformat()]
    return ["s", str(value)]


# The same text as json.dumps with these options, without building an encoder per call.
_encode_key = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def item_key(values: Iterable[Any]) -> str:
    """
    Return the fixed-width identity of a row's primary key values (in key order).
    """
    text = _encode_key([_canonical(v) for v in values])
    return hashlib.sha256(text.encode()).hexdigest()
