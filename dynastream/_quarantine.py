"""
The quarantine: poison records set aside in `dynastream_quarantine`, in the batch's transaction.

A record is quarantined when its table's poison policy says so; the batch then
goes on after it. Nothing here can fail on what the record holds.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from dynastream._sql import insert_ignoring_duplicates
from dynastream.exceptions import describe_error

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from dynastream._records import Item, StreamRecord

__all__ = ["quarantine_record"]


def quarantine_record(
    connection: Connection, record: StreamRecord[Item], error: BaseException, *, keep_raw: bool, now: datetime
) -> None:
    """
    Set `record` aside in the quarantine table, in the batch's transaction.

    Whatever the record holds, the insert cannot fail on it: identifiers that
    do not fit their columns (or hold NUL or a lone surrogate) are kept as a
    prefix and a digest, JSON is written in ASCII, and only a duplicate (the
    record redelivered) is ignored, never a value the database would truncate.
    """
    import json

    from dynastream._records import RecordSource
    from dynastream.schema import SEQUENCE_WIDTH, encode_sequence_number, fit_identifier, quarantine

    statement = insert_ignoring_duplicates(connection.dialect.name, quarantine)
    try:
        sequence_number = encode_sequence_number(
            record.sequence_number, kinesis=record.source is RecordSource.KINESIS
        )
    except ValueError:  # longer than any real one: kept as sent, fitted
        sequence_number = fit_identifier(record.item_identifier, SEQUENCE_WIDTH)
    connection.execute(
        statement,
        {
            "table_name": fit_identifier(record.table_name, 255),
            "event_id": fit_identifier(record.event_id, 128),
            "sequence_number": sequence_number,
            "item_keys": json.dumps(record.keys, default=_raw_json, sort_keys=True),
            "error_type": fit_identifier(f"{type(error).__module__}.{type(error).__qualname__}", 255),
            "error_message": _plain_text(describe_error(error)),
            "raw": json.dumps(record.raw, default=_raw_json) if keep_raw else None,
            "quarantined_at": now,
        },
    )


def _plain_text(text: str) -> str:
    """
    Return text every engine stores as it is: no NUL, no lone surrogate.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _raw_json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
