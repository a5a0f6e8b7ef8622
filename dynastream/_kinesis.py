"""
Reading Kinesis Data Streams for DynamoDB: Lambda Kinesis events and bare change records.

A table streamed through Kinesis Data Streams delivers each change as one Kinesis
record whose `data` is base64 text of a DynamoDB change record in the Kinesis
format: `tableName`, `recordFormat`, `userIdentity`, and a `dynamodb` part with
`ApproximateCreationDateTime` in epoch milliseconds (microseconds when the table's
`ApproximateCreationDateTimePrecision` is `MICROSECOND`), `Keys`, the images and
`SizeBytes`, but no `SequenceNumber`, `StreamViewType` or `eventSourceARN`
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html).

Kinesis Data Streams can deliver a change more than once and out of order, so the
order of changes to an item comes from the change itself. Each record gets a
39-digit ordering number: the creation time in microseconds since the epoch
(18 digits; `000` below the millisecond for a millisecond record), one digit for
the precision (0 milliseconds, 1 microseconds), then 20 digits of a SHA-256
digest of the record's `eventID`. A later change wins over an earlier one; a
redelivered change carries the same `eventID`, so the same number, and is stale;
two different changes with the same time (a tie: the time cannot order them)
are ordered by the digest, the same way in every delivery order, so every
replica converges, possibly to the earlier of the two. `is_tie` tells ties.

The dispatcher reports the Kinesis record's `sequenceNumber` in
`batchItemFailures`, as the Kinesis event source mapping expects.
"""

from __future__ import annotations

import binascii
import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ._deserialize import LONE_SURROGATE, is_unicode, type_name
from ._record_fields import (
    EPOCH,
    TABLE_NAME_RULE,
    RecordReader,
    decode_json,
    is_image,
    is_mapping,
    is_table_name,
    is_ttl_identity,
    kept_text,
    missing_or_wrong,
    read_event_name,
    read_image,
    read_keys,
    read_size,
)
from ._records import EventName, Item, RecordSource, StreamRecord
from .exceptions import MalformedEventError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "is_change_record",
    "is_tie",
    "ordering_number",
    "read_change_record",
    "read_kinesis_record",
]

# Epoch milliseconds from 1973 (1e11) to 5138 (1e14); microseconds from 1973 (1e14) to 5138.
_MILLISECONDS = range(10**11, 10**14)
_MICROSECONDS = range(10**14, 10**17)
_PRECISIONS = {"MILLISECOND": 0, "MICROSECOND": 1}
_DIGEST = 10**20  # the digest's share of the ordering number
_MAX_KINESIS_SEQUENCE_DIGITS = 129  # "0|([1-9]\d{0,128})" in the Kinesis API reference
_WHAT_KINESIS_CARRIES = "a DynamoDB change record (is another producer writing to this stream?)"
_IMAGES_NEEDED = {EventName.INSERT: ("NewImage",), EventName.MODIFY: ("NewImage",)}


def is_change_record(raw: Any) -> bool:
    """
    Return whether `raw` looks like a Kinesis Data Streams change record (it names its table).
    """
    return is_mapping(raw) and "tableName" in raw


def read_kinesis_record(
    raw: Any,
    index: int,
    table_name: str | None,
    *,
    old_images: bool = True,
    new_images: bool = True,
) -> StreamRecord[Item]:
    """
    Read one record of a Lambda Kinesis event: its `data` decoded, then read as a change record.
    """
    reader = RecordReader(index)
    # Identify the record first (the Kinesis sequence number is what
    # batchItemFailures reports), so every later error can name it.
    event_id = raw.get("eventID")
    if isinstance(event_id, str) and event_id and is_unicode(event_id):
        reader.event_id = event_id
    kinesis: Any = raw.get("kinesis")
    if not is_mapping(kinesis):
        raise reader.error("kinesis", missing_or_wrong(raw, "kinesis", "an object"))
    sequence_number = kinesis.get("sequenceNumber")
    if not (
        type(sequence_number) is str
        and sequence_number.isascii()
        and sequence_number.isdigit()
        and len(sequence_number) <= _MAX_KINESIS_SEQUENCE_DIGITS
    ):
        raise reader.error(
            "kinesis.sequenceNumber",
            missing_or_wrong(kinesis, "sequenceNumber", "a string of decimal digits")
            if type(sequence_number) is not str
            else "not a Kinesis sequence number (1 to 129 decimal digits)",
        )
    reader.sequence_number = sequence_number
    data = kinesis.get("data")
    if type(data) is not str:
        raise reader.error("kinesis.data", missing_or_wrong(kinesis, "data", "base64 text"))
    try:
        decoded = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise reader.error("kinesis.data", f"not base64 text, so not {_WHAT_KINESIS_CARRIES}") from None
    try:
        change = decode_json(decoded)
    except MalformedEventError:
        raise reader.error("kinesis.data", f"not JSON, so not {_WHAT_KINESIS_CARRIES}") from None
    if not is_change_record(change) or "dynamodb" not in change:
        raise reader.error(
            "kinesis.data", f"not {_WHAT_KINESIS_CARRIES}: it has no 'tableName' and 'dynamodb'"
        )
    return read_change_record(
        change, reader, table_name, sequence_number, old_images=old_images, new_images=new_images
    )


def read_change_record(
    raw: Any,
    reader: RecordReader,
    table_name: str | None,
    identifier: str | None,
    *,
    old_images: bool = True,
    new_images: bool = True,
) -> StreamRecord[Item]:
    """
    Read a Kinesis Data Streams change record (decoded `data`, or a bare one).

    `identifier` is the Kinesis `sequenceNumber` of the envelope; a bare record
    has none, and is identified by its `eventID`.
    """
    event_source = raw.get("eventSource")
    if event_source is not None and event_source != "aws:dynamodb":
        raise reader.error("eventSource", "not a DynamoDB change record (expected 'aws:dynamodb')")
    event_id = raw.get("eventID")
    if not (isinstance(event_id, str) and event_id and is_unicode(event_id)):
        problem = LONE_SURROGATE if isinstance(event_id, str) and event_id else None
        raise reader.error("eventID", problem or missing_or_wrong(raw, "eventID", "a non-empty string"))
    reader.event_id = event_id
    if identifier is None:
        identifier = reader.sequence_number = event_id
    dynamodb: Any = raw.get("dynamodb")
    if not is_mapping(dynamodb):
        raise reader.error("dynamodb", missing_or_wrong(raw, "dynamodb", "an object"))

    event_name = read_event_name(raw, reader)

    table = raw.get("tableName")
    if not (isinstance(table, str) and is_table_name(table)):
        raise reader.error(
            "tableName",
            f"must be a string, got {type_name(table)}"
            if not isinstance(table, str)
            else f"not a DynamoDB table name ({TABLE_NAME_RULE})",
        )
    record_format = raw.get("recordFormat")
    if record_format is not None and record_format != "application/json":
        raise reader.error("recordFormat", "unknown record format (expected 'application/json')")

    keys = read_keys(dynamodb, reader)
    new_sent = dynamodb.get("NewImage")
    old_sent = dynamodb.get("OldImage")
    for required in _IMAGES_NEEDED.get(event_name, ()):
        if not is_image(dynamodb.get(required)):
            raise reader.error(
                f"dynamodb.{required}",
                f"missing: a Kinesis Data Streams {event_name.value} record carries the changed item",
            )
    new_image = read_image(dynamodb, "NewImage", reader) if new_images and is_image(new_sent) else None
    old_image = read_image(dynamodb, "OldImage", reader) if old_images and is_image(old_sent) else None

    number, created = ordering_number(dynamodb, event_id, reader)
    size = read_size(dynamodb, reader)
    region = kept_text(raw.get("awsRegion"), "awsRegion", reader)
    return StreamRecord(
        event_id=event_id,
        event_name=event_name,
        table_name=table if table_name is None else table_name,
        sequence_number=number,
        item_identifier=identifier,
        keys=keys,
        new_image=new_image,
        old_image=old_image,
        approximate_creation_time=created,
        is_ttl_delete=event_name is EventName.REMOVE and is_ttl_identity(raw.get("userIdentity")),
        aws_region=region if isinstance(region, str) else None,
        size_bytes=size,
        raw=raw,
        source=RecordSource.KINESIS,
    )


def ordering_number(
    dynamodb: Mapping[str, Any], event_id: str, reader: RecordReader
) -> tuple[int, datetime | None]:
    """
    Return a change record's ordering number and its creation time.

    The unit of `ApproximateCreationDateTime` is the one
    `ApproximateCreationDateTimePrecision` names, or, when the record does not
    say, the one its size shows (a millisecond and a microsecond count of any
    date from 1973 to 5138 differ by three digits). A record without a creation
    time orders before every record with one.
    """
    field = "dynamodb.ApproximateCreationDateTime"
    created = dynamodb.get("ApproximateCreationDateTime")
    stated = dynamodb.get("ApproximateCreationDateTimePrecision")
    if stated is not None and stated not in _PRECISIONS:
        raise reader.error(
            "dynamodb.ApproximateCreationDateTimePrecision",
            "unknown precision (expected MILLISECOND or MICROSECOND)",
        )
    digest = int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big")  # < 10**20
    if created is None:
        return digest, None
    if type(created) is not int:
        raise reader.error(
            field, f"must be an integer of epoch milliseconds or microseconds, got {type_name(created)}"
        )
    if created in _MICROSECONDS and stated != "MILLISECOND":
        microseconds, precision = created, 1
    elif created in _MILLISECONDS and stated != "MICROSECOND":
        microseconds, precision = created * 1000, 0
    else:
        unit = {"MILLISECOND": "milliseconds", "MICROSECOND": "microseconds"}.get(stated or "")
        raise reader.error(
            field,
            f"not epoch {unit} of a date from 1973 to 5138"
            if unit
            else "not epoch milliseconds or microseconds of a date from 1973 to 5138",
        )
    number = (microseconds * 10 + precision) * _DIGEST + digest
    return number, EPOCH + timedelta(microseconds=microseconds)


def is_tie(first: int, second: int) -> bool:
    """
    Return whether two different changes' ordering numbers have a time that cannot order them.

    Both in microseconds: the same microsecond. Either in milliseconds: the
    same millisecond.
    """
    if first == second:
        return False
    first_time, first_precision = divmod(first // _DIGEST, 10)
    second_time, second_precision = divmod(second // _DIGEST, 10)
    if first_precision and second_precision:
        return first_time == second_time
    return first_time // 1000 == second_time // 1000
