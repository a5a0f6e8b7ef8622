"""
Reading events: every shape a DynamoDB stream record arrives in, to records.

Shapes read (DESIGN §2.1):

- a Lambda DynamoDB Streams event, `{"Records": [...]}`;
- a Lambda Kinesis event of Kinesis Data Streams for DynamoDB, or one bare change record;
- a DynamoDB Streams `GetRecords` response, as boto3 returns it (datetimes and
  bytes already decoded) or as raw JSON (epoch seconds, base64 binary);
- a single record (`{"eventID": ..., "dynamodb": {...}}`) or an array of them;
- a tumbling-window envelope (`{"Records": [...], "window": {...}, "state": ...}`);
- any of these as JSON text or bytes.

Reading stops at the first record that cannot be read: the records before it
are returned with the error, so the dispatcher can apply them and report it.

An image (`NewImage`, `OldImage`) that is absent, `null` or `{}` is no image
(`None`); where the view type says a record carries it, any of the three is
malformed. `Keys` must be present and non-empty.

Text the record carries that is kept (`eventID`, `eventSourceARN`, `awsRegion`, and
every string and name of `Keys` and the images) must be valid Unicode: a lone
surrogate, which JSON can escape but UTF-8 cannot hold, makes the record malformed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from ._deserialize import LONE_SURROGATE, is_unicode, type_name
from ._kinesis import read_change_record, read_kinesis_record
from ._record_fields import (
    EPOCH,
    NO_IMAGE,
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
from ._records import EventBatch, EventName, Item, StreamRecord, StreamViewType, TumblingWindow
from .exceptions import MalformedEventError, MalformedRecordError

if TYPE_CHECKING:
    import os

__all__ = ["EventBatch", "TumblingWindow", "load_event", "parse_event", "read_event"]


# Epoch values this large cannot be seconds (1e11 s is the year 5138), so they
# are milliseconds (moto, some SDKs) or, larger still, microseconds.
_MILLISECONDS_FROM = Decimal(10) ** 11
_SECONDS_BELOW = 10**11
_MICROSECONDS_FROM = Decimal(10) ** 14
_MICROSECOND = Decimal("0.000001")

# Which images a record must carry, by view type and event name
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html).
_REQUIRED_IMAGES: dict[StreamViewType, dict[EventName, tuple[str, ...]]] = {
    StreamViewType.KEYS_ONLY: {},
    StreamViewType.NEW_IMAGE: {EventName.INSERT: ("NewImage",), EventName.MODIFY: ("NewImage",)},
    StreamViewType.OLD_IMAGE: {EventName.MODIFY: ("OldImage",), EventName.REMOVE: ("OldImage",)},
    StreamViewType.NEW_AND_OLD_IMAGES: {
        EventName.INSERT: ("NewImage",),
        EventName.MODIFY: ("NewImage", "OldImage"),
        EventName.REMOVE: ("OldImage",),
    },
}
_VIEW_TYPES = {view.value: view for view in StreamViewType}


def load_event(path: str | os.PathLike[str]) -> Any:
    """
    Read a saved event from a JSON file, keeping every number exact.

    Examples:
        >>> records = parse_event(load_event("event.json"))  # doctest: +SKIP

    Raises:
        MalformedEventError: The file is not valid JSON (for example truncated);
            the message gives line and column.
        OSError: The file cannot be read.
    """
    with open(path, "rb") as file:
        return decode_json(file.read())


def parse_event(event: Any, *, table_name: str | None = None) -> list[StreamRecord[Item]]:
    """
    Read every record of an event, in stream order.

    Args:
        event: A Lambda DynamoDB Streams event, a `GetRecords` response, a
            tumbling-window envelope, one record, an array of records, or any of
            these as JSON text or bytes.
        table_name: The table the records belong to. Needed when the records do
            not carry `eventSourceARN` (a `GetRecords` response); when given, it
            wins over the ARN.

    Returns:
        The records, with images deserialized (numbers as `Decimal`, binary as
        `bytes`).

    Raises:
        MalformedEventError: The event, or one of its records, cannot be read.
            A `MalformedRecordError` names the record and the field.

    Examples:
        >>> event = {"Records": [{"eventID": "1", "eventName": "INSERT",
        ...     "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/Orders/stream/x",
        ...     "dynamodb": {"Keys": {"id": {"S": "o-1"}}, "SequenceNumber": "111",
        ...                  "NewImage": {"id": {"S": "o-1"}, "total": {"N": "9.50"}}}}]}
        >>> [record] = parse_event(event)
        >>> record.new_image
        {'id': 'o-1', 'total': Decimal('9.50')}
    """
    batch = read_event(event, table_name=table_name)
    if batch.error is not None:
        raise batch.error
    return list(batch.records)


def read_event(
    event: Any, *, table_name: str | None = None, old_images: bool = True, new_images: bool = True
) -> EventBatch:
    """
    Read an event's records up to the first malformed one.

    Args:
        event: Any shape `parse_event` reads.
        table_name: As for `parse_event`.
        old_images: `False` leaves every `OldImage` unread (`old_image` is
            `None`): the dispatcher passes it when no handler uses old images,
            which saves a third of the reading on `NEW_AND_OLD_IMAGES` streams.
        new_images: `False` leaves every `NewImage` unread too (`new_image` is
            `None`); a handler that reads images from `raw` itself, such as
            the built-in replication, checks them as it reads them.

    Raises:
        MalformedEventError: The event as a whole cannot be read (not JSON, no
            `Records` array, not an object).
    """
    if isinstance(event, (str, bytes, bytearray)):
        event = decode_json(event)
    window = None
    envelope_arn = None
    if isinstance(event, Mapping):
        if "Records" in event:
            raw_records = event["Records"]
            if not isinstance(raw_records, list):
                raise MalformedEventError(
                    f"must be an array of records, got {type_name(raw_records)}", field="Records"
                )
            envelope_arn = event.get("eventSourceARN")
            if "window" in event:
                window = _read_window(event)
        elif "dynamodb" in event or "eventName" in event or "kinesis" in event:
            raw_records = [event]
        else:
            raise MalformedEventError(
                "no 'Records' array: expected a Lambda DynamoDB Streams or Kinesis event, a"
                " GetRecords response, a tumbling-window envelope or a single record",
                field="Records",
            )
    elif isinstance(event, list):
        raw_records = event
    else:
        raise MalformedEventError(f"must be an object or an array, got {type_name(event)}")

    records: list[StreamRecord[Item]] = []
    for index, raw in enumerate(raw_records):
        try:
            records.append(
                _read_any_record(
                    raw, index, envelope_arn, table_name, old_images=old_images, new_images=new_images
                )
            )
        except MalformedRecordError as error:
            return EventBatch(tuple(records), error, window, len(raw_records))
    return EventBatch(tuple(records), None, window, len(raw_records))


def _read_any_record(
    raw: Any,
    index: int,
    envelope_arn: Any,
    table_name: str | None,
    *,
    old_images: bool = True,
    new_images: bool = True,
) -> StreamRecord[Item]:
    """
    Read one record of an event, whichever source it comes from.
    """
    if is_mapping(raw):
        if "kinesis" in raw:
            return read_kinesis_record(raw, index, table_name, old_images=old_images, new_images=new_images)
        if "tableName" in raw:
            return read_change_record(
                raw, RecordReader(index), table_name, None, old_images=old_images, new_images=new_images
            )
    return _read_record(raw, index, envelope_arn, table_name, old_images=old_images, new_images=new_images)


def _read_window(event: Mapping[str, Any]) -> TumblingWindow:
    window = event["window"]
    if not isinstance(window, Mapping):
        raise MalformedEventError(f"must be an object, got {type_name(window)}", field="window")
    state = event.get("state") or {}
    if not isinstance(state, Mapping):
        raise MalformedEventError(f"must be an object, got {type_name(state)}", field="state")
    bounds = []
    for name in ("start", "end"):
        value = window.get(name)
        try:
            bounds.append(None if value is None else _to_datetime(value))
        except ValueError as error:
            raise MalformedEventError(str(error), field=f"window.{name}") from None
    shard_id = event.get("shardId")
    return TumblingWindow(
        start=bounds[0],
        end=bounds[1],
        state=dict(state),
        shard_id=shard_id if isinstance(shard_id, str) else None,
        is_final_invoke=event.get("isFinalInvokeForWindow") is True,
        is_terminated_early=event.get("isWindowTerminatedEarly") is True,
    )


def _read_record(
    raw: Any,
    index: int,
    envelope_arn: Any,
    table_name: str | None,
    *,
    old_images: bool = True,
    new_images: bool = True,
) -> StreamRecord[Item]:
    reader = RecordReader(index)
    if not is_mapping(raw):
        raise reader.error("", f"record must be an object, got {type_name(raw)}")

    # Identify the record first, so every later error can name it.
    event_id = raw.get("eventID")
    if isinstance(event_id, str) and event_id and is_unicode(event_id):
        reader.event_id = event_id
    dynamodb = raw.get("dynamodb")
    if is_mapping(dynamodb):
        sequence_number = _read_sequence_number(dynamodb.get("SequenceNumber"))
        if sequence_number is not None:
            reader.sequence_number = sequence_number

    # Before the fields below: a record from another service (SQS, Kinesis) lacks them too.
    event_source = raw.get("eventSource")
    if event_source is not None and event_source != "aws:dynamodb":
        if event_source == "aws:kinesis":  # a Kinesis record carries its change in "kinesis"
            raise reader.error("eventSource", "a Kinesis record without its 'kinesis' object")
        raise reader.error("eventSource", "not a DynamoDB stream record (expected 'aws:dynamodb')")

    if reader.event_id is None:
        problem = LONE_SURROGATE if isinstance(event_id, str) and event_id else None
        raise reader.error("eventID", problem or missing_or_wrong(raw, "eventID", "a non-empty string"))
    if not is_mapping(dynamodb):
        raise reader.error("dynamodb", missing_or_wrong(raw, "dynamodb", "an object"))
    if reader.sequence_number is None:
        raise reader.error(
            "dynamodb.SequenceNumber",
            missing_or_wrong(dynamodb, "SequenceNumber", "a string of decimal digits"),
        )

    event_name = read_event_name(raw, reader)

    arn = kept_text(raw.get("eventSourceARN", envelope_arn), "eventSourceARN", reader)
    table = _table_from_arn(arn, reader) if table_name is None else table_name

    view_text = dynamodb.get("StreamViewType")
    view_type = None
    if view_text is not None:
        view_type = _VIEW_TYPES.get(view_text) if isinstance(view_text, str) else None
        if view_type is None:
            raise reader.error("dynamodb.StreamViewType", "unknown stream view type")

    keys = read_keys(dynamodb, reader)
    new_sent = dynamodb.get("NewImage")
    old_sent = dynamodb.get("OldImage")
    new_image = read_image(dynamodb, "NewImage", reader) if new_images and is_image(new_sent) else None
    old_image = read_image(dynamodb, "OldImage", reader) if old_images and is_image(old_sent) else None
    if view_type is not None:
        _check_required_images(dynamodb, view_type, event_name, reader)

    try:
        created = dynamodb.get("ApproximateCreationDateTime")
        creation_time = None if created is None else _to_datetime(created)
    except ValueError as error:
        raise reader.error("dynamodb.ApproximateCreationDateTime", str(error)) from None

    size = read_size(dynamodb, reader)

    region = kept_text(raw.get("awsRegion"), "awsRegion", reader)
    return StreamRecord(
        event_id=reader.event_id,
        event_name=event_name,
        table_name=table,
        sequence_number=int(reader.sequence_number),
        item_identifier=reader.sequence_number,
        keys=keys,
        new_image=new_image,
        old_image=old_image,
        approximate_creation_time=creation_time,
        stream_view_type=view_type,
        is_ttl_delete=event_name is EventName.REMOVE and is_ttl_identity(raw.get("userIdentity")),
        event_source_arn=arn if isinstance(arn, str) else None,
        aws_region=region if isinstance(region, str) else None,
        size_bytes=size,
        raw=raw,
    )


def _check_required_images(
    dynamodb: Mapping[str, Any], view_type: StreamViewType, event_name: EventName, reader: RecordReader
) -> None:
    for required in _REQUIRED_IMAGES[view_type].get(event_name, ()):
        sent = dynamodb.get(required)
        if not is_image(sent):
            state = "missing" if required not in dynamodb else NO_IMAGE[type(sent)]
            raise reader.error(
                f"dynamodb.{required}",
                f"{state}: a {event_name.value} record of a {view_type.value} stream carries it",
            )


def _read_sequence_number(value: Any) -> str | None:
    # Sequence numbers are 21 to 40 digits: kept as text for the response and
    # as an int for comparisons, never as a float.
    if type(value) is str and value.isascii() and value.isdigit():
        return value
    if type(value) is int and value >= 0:
        return str(value)
    return None


def _table_from_arn(arn: Any, reader: RecordReader) -> str:
    # arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2015-06-27T00:48:05.899
    if arn is None:
        raise reader.error(
            "eventSourceARN",
            "missing, so the table is unknown (pass table_name= for GetRecords responses)",
        )
    if not isinstance(arn, str):
        raise reader.error("eventSourceARN", f"must be a string, got {type_name(arn)}")
    table = arn_table(arn)
    if table is None:
        if _arn_resource(arn) is None:
            raise reader.error("eventSourceARN", "not a DynamoDB table or stream ARN")
        # For example an unrendered template placeholder, "table/{{{table}}}/stream/...".
        raise reader.error(
            "eventSourceARN", f"its table name is not a DynamoDB table name ({TABLE_NAME_RULE})"
        )
    return table


@functools.lru_cache(maxsize=64)  # every record of a batch names the same stream
def arn_table(arn: str) -> str | None:
    name = _arn_resource(arn)
    return name if name is not None and is_table_name(name) else None


def _arn_resource(arn: str) -> str | None:
    # The name after "table/", whatever it is, or None when the ARN names no DynamoDB table.
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[2] == "dynamodb":
        resource = parts[5].split("/")
        if len(resource) >= 2 and resource[0] == "table" and resource[1]:
            return resource[1]
    return None


def _to_datetime(value: Any) -> datetime:
    """
    Return an aware UTC datetime for a creation time in any unit it arrives in.

    Epoch seconds, milliseconds or microseconds (int, float, Decimal or
    numeric text, scientific notation included), an ISO-8601 string, or a
    datetime (naive ones are taken as UTC).
    """
    if type(value) is int and 0 <= value < _SECONDS_BELOW:  # what Lambda sends: whole seconds
        return EPOCH + timedelta(seconds=value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if type(value) is bool:
        raise ValueError("must be a number of epoch seconds or a date-time, got boolean")
    if isinstance(value, float):
        # repr gives the shortest text that round-trips: no binary noise.
        value = repr(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            try:
                return _to_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                raise ValueError("not a number of epoch seconds nor an ISO-8601 date-time") from None
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    else:
        raise ValueError(f"must be a number of epoch seconds or a date-time, got {type_name(value)}")
    if not number.is_finite():
        raise ValueError("must be a finite number")
    try:
        magnitude = abs(number)
        if magnitude >= _MICROSECONDS_FROM:
            number = number / 1_000_000
        elif magnitude >= _MILLISECONDS_FROM:
            number = number / 1_000
        microseconds = int((number / _MICROSECOND).to_integral_value())
        return EPOCH + timedelta(microseconds=microseconds)
    except ArithmeticError:  # OverflowError past year 9999, decimal.Overflow past 1E+999999
        raise ValueError("out of the range of dates") from None
