"""
Stream records: what one DynamoDB change looks like once it has been read.

A `StreamRecord` is the same whichever shape it arrived in (a Lambda event, a
DynamoDB Streams `GetRecords` response, one record, a tumbling-window envelope);
`_events.py` does the reading.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from .exceptions import MalformedRecordError

__all__ = [
    "EventBatch",
    "EventName",
    "Item",
    "RecordSource",
    "StreamRecord",
    "StreamViewType",
    "TumblingWindow",
]

T_co = TypeVar("T_co", covariant=True)
U = TypeVar("U")

Item = dict[str, Any]
"""A deserialized DynamoDB item: attribute names to Python values."""


class EventName(enum.StrEnum):
    """
    The kind of change a record carries.
    """

    INSERT = "INSERT"
    MODIFY = "MODIFY"
    REMOVE = "REMOVE"


class StreamViewType(enum.StrEnum):
    """
    Which images the stream writes into each record.
    """

    KEYS_ONLY = "KEYS_ONLY"
    NEW_IMAGE = "NEW_IMAGE"
    OLD_IMAGE = "OLD_IMAGE"
    NEW_AND_OLD_IMAGES = "NEW_AND_OLD_IMAGES"


class RecordSource(enum.StrEnum):
    """
    Where a change record comes from: DynamoDB Streams or Kinesis Data Streams for DynamoDB.

    The two order changes differently (a sequence number per item against an
    approximate creation time), so one table is replicated from one of them.
    """

    DYNAMODB_STREAMS = "dynamodb"
    KINESIS = "kinesis"


def _short_repr(self: StreamRecord[Any]) -> str:
    # Keys and images may hold personal data: a record's repr names it only.
    return (
        f"StreamRecord(table_name={self.table_name!r}, event_name={self.event_name.value}, "
        f"sequence_number={self.item_identifier}, event_id={self.event_id!r})"
    )


@attrs.frozen(repr=False)
class StreamRecord(Generic[T_co]):
    """
    One item-level change, read from a stream record.

    `new_image` and `old_image` are deserialized items (`dict[str, Any]`) as
    read; a handler registered with a mapper receives records whose images have
    been mapped to its type `T`. Which images are present depends on the
    stream's view type and the event name: a REMOVE under `NEW_IMAGE`, and
    every record under `KEYS_ONLY`, carry keys only.

    Attributes:
        event_id: The record's `eventID`, unique per record.
        event_name: INSERT, MODIFY or REMOVE.
        table_name: The DynamoDB table, from `eventSourceARN` (`tableName` for
            a Kinesis Data Streams record).
        sequence_number: The number that orders the changes to one item, as
            an integer: the record's `SequenceNumber` for DynamoDB Streams (up
            to 40 digits); for Kinesis Data Streams, which has none, a number
            of 39 digits built from `ApproximateCreationDateTime` at the
            precision the record carries, then a digest of its `eventID`
            (see "Kinesis Data Streams" in the replication guide). Compare
            them as integers, never as text or floats, and only between
            records of one `source`.
        item_identifier: What the dispatcher reports in `batchItemFailures`:
            `SequenceNumber` exactly as sent, or the Kinesis record's
            `sequenceNumber` (a bare Kinesis Data Streams change record, with
            no Kinesis envelope, has its `eventID` here).
        keys: The item's primary key attributes.
        new_image: The item after the change, when the view type carries it.
        old_image: The item before the change, when the view type carries it.
        approximate_creation_time: When the change was made, as an aware UTC
            datetime, or `None` when the record does not say.
        stream_view_type: The stream's view type, when the record says.
        is_ttl_delete: True for a REMOVE made by DynamoDB's time-to-live process.
        event_source_arn: The stream ARN, when the record carries it.
        aws_region: The record's region, when it says.
        size_bytes: `SizeBytes` as reported, when present.
        raw: The record as received (never printed in a repr); for a Kinesis
            record, the DynamoDB change record its `data` decodes to.
        source: `RecordSource.DYNAMODB_STREAMS` or `RecordSource.KINESIS`.
    """

    event_id: str
    event_name: EventName
    table_name: str
    sequence_number: int
    item_identifier: str
    keys: Item = attrs.field(eq=False)
    new_image: T_co | None = attrs.field(eq=False)
    old_image: T_co | None = attrs.field(eq=False)
    approximate_creation_time: datetime | None = None
    stream_view_type: StreamViewType | None = None
    is_ttl_delete: bool = False
    event_source_arn: str | None = None
    aws_region: str | None = None
    size_bytes: int | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
    source: RecordSource = RecordSource.DYNAMODB_STREAMS

    __repr__ = _short_repr

    @property
    def image(self) -> T_co | None:
        """
        The item as the change left it: the new image, or `None` for a REMOVE.
        """
        if self.event_name is EventName.REMOVE:
            return None
        return self.new_image

    def with_images(self, new_image: U | None, old_image: U | None) -> StreamRecord[U]:
        """
        Return this record carrying other images (for example, mapped ones).

        Keys and metadata are unchanged.
        """
        return StreamRecord(
            event_id=self.event_id,
            event_name=self.event_name,
            table_name=self.table_name,
            sequence_number=self.sequence_number,
            item_identifier=self.item_identifier,
            keys=self.keys,
            new_image=new_image,
            old_image=old_image,
            approximate_creation_time=self.approximate_creation_time,
            stream_view_type=self.stream_view_type,
            is_ttl_delete=self.is_ttl_delete,
            event_source_arn=self.event_source_arn,
            aws_region=self.aws_region,
            size_bytes=self.size_bytes,
            raw=self.raw,
            source=self.source,
        )


@attrs.frozen
class TumblingWindow:
    """
    The envelope of a tumbling-window invocation.

    Attributes:
        start: Start of the window (UTC).
        end: End of the window (UTC).
        state: The state the previous invocation of this window returned.
        shard_id: The shard the records come from.
        is_final_invoke: True for the last invocation of the window.
        is_terminated_early: True when the window ended before its end time.
    """

    start: datetime | None
    end: datetime | None
    state: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    shard_id: str | None = None
    is_final_invoke: bool = False
    is_terminated_early: bool = False


@attrs.frozen
class EventBatch:
    """
    The records read from one event, in stream order.

    Attributes:
        records: The records that could be read, in order, up to the first
            malformed one.
        error: The first malformed record's error, or `None` when every record
            was read. Records after it were not read.
        window: The tumbling-window envelope, when the event had one.
        total: How many records the event holds, read or not.
    """

    records: tuple[StreamRecord[Item], ...]
    error: MalformedRecordError | None = None
    window: TumblingWindow | None = None
    total: int = 0
