"""
`EventFactory`: DynamoDB Streams and Kinesis records exactly as Lambda delivers them.

Kinesis Data Streams for DynamoDB records are built in `_factory_kinesis`.

Record layout, view types and the TTL identity follow the AWS references:
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html and
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html.
"""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from dynastream._record_fields import TABLE_NAME_RULE, is_table_name

from ._factory_kinesis import (
    FIRST_KINESIS_SEQUENCE_NUMBER,
    KinesisBuilder,
    check_source,
    epoch_units,
    window_envelope,
)
from ._serialize import image_size, key_attribute_names, key_values, serialize_image

if TYPE_CHECKING:
    from ._records import RecordSource

__all__ = ["EventFactory"]

_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
# Which images a record carries, by view type and event name.
_IMAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "KEYS_ONLY": {"INSERT": (), "MODIFY": (), "REMOVE": ()},
    "NEW_IMAGE": {"INSERT": ("NewImage",), "MODIFY": ("NewImage",), "REMOVE": ()},
    "OLD_IMAGE": {"INSERT": (), "MODIFY": ("OldImage",), "REMOVE": ("OldImage",)},
    "NEW_AND_OLD_IMAGES": {
        "INSERT": ("NewImage",),
        "MODIFY": ("NewImage", "OldImage"),
        "REMOVE": ("OldImage",),
    },
}
_TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
# eventIDs are derived from the stream and the sequence number, so a record
# built twice (a redelivery) has the same eventID, as in a real stream.
_EVENT_ID_NAMESPACE = uuid.UUID("5f7d5d0e-4c36-4d0c-9d51-6f1f3c1b9a52")
_FIRST_SEQUENCE_NUMBER = 4_421_584_500_000_000_017_450_439_000  # as long as real ones

Record = dict[str, Any]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class EventFactory:
    """
    Builds DynamoDB Streams or Kinesis records and events the way Lambda delivers them.

    Each DynamoDB Streams record has an `eventID`, `eventVersion` "1.1",
    `eventSource` "aws:dynamodb", `awsRegion`, an `eventSourceARN` naming its
    table, and a `dynamodb` part with the item's `Keys`, the images its stream
    view type carries for its event name, a `SequenceNumber` (text; each record
    gets the next one, so they strictly increase), `ApproximateCreationDateTime`
    (whole epoch seconds), `SizeBytes` and `StreamViewType`. Values are
    serialized with `attribute_value`: numbers as exact text, binary as base64.

    With `source="kinesis"`, `insert`, `modify` and `remove` return the change
    record DynamoDB puts on a Kinesis data stream (`kinesis.data`, decoded):
    `tableName`, `recordFormat`, a UUID `eventID`, `userIdentity`, both images
    where they exist, no sequence number, and an `ApproximateCreationDateTime`
    (epoch ms or µs) greater than any built before, as KDS is ordered by it.
    `event` wraps them into Kinesis records with increasing 56-digit
    `sequenceNumber`s: a record wrapped again is a KDS duplicate.

    The factory remembers the last image it built for each item (by table and
    key), which `modify` uses as the old image when none is given.

    Args:
        keys: The key attribute names (partition key, then sort key) of every
            table, or a mapping of table name to its key attribute names.
        view_type: The stream view type: `"KEYS_ONLY"`, `"NEW_IMAGE"`,
            `"OLD_IMAGE"` or `"NEW_AND_OLD_IMAGES"` (or a
            `dynastream.StreamViewType`); only the last with Kinesis.
        region: The AWS region, in `awsRegion` and the ARNs.
        account_id: The AWS account, in the ARNs.
        first_sequence_number: The sequence number of the first record built
            (by default a 28-digit one, like real ones, which have 21 to 40),
            or with Kinesis of the first record wrapped (by default 56 digits).
        created_at: `ApproximateCreationDateTime` of every record (a datetime,
            or epoch seconds, with Kinesis epoch ms or µs as `precision`); by
            default the time each record is built.
        source: `"dynamodb"` or `"kinesis"` (Kinesis Data Streams for DynamoDB), or a `RecordSource`.
        precision: With Kinesis, the table's `ApproximateCreationDateTimePrecision`,
            `"MILLISECOND"` or `"MICROSECOND"`. AWS's API references name no
            default (the CDK's says µs; a real capture from a table that set
            none is in ms), so this factory takes ms: set the table's.
        stream_name: The Kinesis data stream, in `eventSourceARN`.

    Raises:
        ValueError: An unknown view type, source or precision, a table with no
            key attributes, or a setting the source does not have.
        TypeError: A setting of the wrong type.

    Examples:
        >>> from decimal import Decimal
        >>> import dynastream
        >>> events = EventFactory(keys={"Orders": ["orderId"]})
        >>> placed = {"orderId": "o-1", "total": Decimal("9.50"), "status": "PLACED"}
        >>> event = events.event(
        ...     events.insert("Orders", placed),
        ...     events.modify("Orders", {**placed, "status": "SHIPPED"}),
        ... )
        >>> [(r.event_name.value, r.new_image["status"], r.old_image and r.old_image["status"])
        ...  for r in dynastream.parse_event(event)]
        [('INSERT', 'PLACED', None), ('MODIFY', 'SHIPPED', 'PLACED')]

        Through Kinesis, timed to the microsecond:

        >>> events = EventFactory(keys=["orderId"], source="kinesis", precision="MICROSECOND")
        >>> placed = events.insert("Orders", {"orderId": "o-1", "status": "PLACED"})
        >>> placed["tableName"], placed["dynamodb"]["ApproximateCreationDateTimePrecision"]
        ('Orders', 'MICROSECOND')
        >>> events.event(placed)["Records"][0]["eventSource"]
        'aws:kinesis'
    """

    __slots__ = (
        "_created_at",
        "_images",
        "_keys",
        "_kinesis",
        "_sequence_numbers",
        "_stream_label",
        "account_id",
        "precision",
        "region",
        "source",
        "view_type",
    )

    def __init__(
        self,
        *,
        keys: Mapping[str, Sequence[str]] | Sequence[str] = ("id",),
        view_type: str = "NEW_AND_OLD_IMAGES",
        region: str = "eu-west-1",
        account_id: str = "123456789012",
        first_sequence_number: int | None = None,
        created_at: int | datetime | None = None,
        source: Literal["dynamodb", "kinesis"] | RecordSource = "dynamodb",
        precision: Literal["MILLISECOND", "MICROSECOND"] = "MILLISECOND",
        stream_name: str = "dynamodb-changes",
    ) -> None:
        if view_type not in _VIEW_TYPES:
            raise ValueError(
                f"unknown stream view type {view_type!r}; expected one of {', '.join(_VIEW_TYPES)}"
            )
        kinesis = check_source(source, precision, view_type)
        if first_sequence_number is None:
            first_sequence_number = FIRST_KINESIS_SEQUENCE_NUMBER if kinesis else _FIRST_SEQUENCE_NUMBER
        if not _is_int(first_sequence_number):
            raise TypeError("first_sequence_number must be an int")
        if first_sequence_number < 0:
            raise ValueError("first_sequence_number must not be negative")
        self._keys: dict[str, tuple[str, ...]] | tuple[str, ...]
        if isinstance(keys, Mapping):
            self._keys = {table: key_attribute_names(names, table) for table, names in keys.items()}
        else:
            self._keys = key_attribute_names(keys, None)
        self.view_type = str(view_type)  # a dynastream.StreamViewType is a str too
        self.region = region
        self.account_id = account_id
        self.source = str(source)  # a dynastream.RecordSource is a str too
        self.precision = precision
        self._kinesis: KinesisBuilder | None = None
        self._sequence_numbers = itertools.count(first_sequence_number)
        self._created_at = None
        if kinesis:
            self._kinesis = KinesisBuilder(
                name=stream_name,
                region=region,
                account_id=account_id,
                first_sequence_number=first_sequence_number,
                precision=precision,
                created_at=created_at,
            )
        elif created_at is not None:
            self._created_at = epoch_units(created_at, "SECOND", "created_at")
        stream_created = datetime.fromtimestamp(
            time.time() if self._created_at is None else self._created_at, UTC
        )
        self._stream_label = stream_created.strftime("%Y-%m-%dT%H:%M:%S.000")
        self._images: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}

    def __repr__(self) -> str:
        kinesis = f", source='kinesis', precision={self.precision!r}" if self._kinesis is not None else ""
        return (
            f"EventFactory(keys={self._keys!r}, view_type={self.view_type!r}, region={self.region!r},"
            f" account_id={self.account_id!r}{kinesis})"
        )

    def key_names(self, table: str) -> tuple[str, ...]:
        """
        Return the key attribute names of `table`.

        Raises:
            ValueError: `keys` was a mapping without `table`.
        """
        if isinstance(self._keys, tuple):
            return self._keys
        try:
            return self._keys[table]
        except KeyError:
            raise ValueError(
                f"no key attributes for table {table!r}: add it to EventFactory(keys={{...}})"
            ) from None

    def stream_arn(self, table: str) -> str:
        """
        Return the `eventSourceARN` of `table`'s stream (with Kinesis, of the data stream).

        Raises:
            ValueError: `table` is not a name DynamoDB gives a table (3 to 255
                characters among a-z, A-Z, 0-9, "_", "-" and "."): records
                naming it would be read as malformed.

        Examples:
            >>> EventFactory(created_at=0).stream_arn("Orders")
            'arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/1970-01-01T00:00:00.000'
        """
        if not is_table_name(table):
            raise ValueError(f"{table!r} is not a DynamoDB table name ({TABLE_NAME_RULE})")
        if self._kinesis is not None:
            return self._kinesis.arn
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{table}/stream/{self._stream_label}"

    def insert(
        self,
        table: str,
        item: Mapping[str, Any],
        *,
        sequence_number: int | None = None,
        created_at: int | datetime | None = None,
    ) -> Record:
        """
        Return the record of `item` being created in `table`.

        Args:
            table: The DynamoDB table.
            item: The new item, key attributes included.
            sequence_number: This record's sequence number, instead of the
                factory's next one (to build redelivered or out-of-order
                records); the factory's own numbering is not affected. Not
                with Kinesis: wrap a record again for a duplicate.
            created_at: This record's `ApproximateCreationDateTime` (as the
                factory's `created_at`; equal ones build KDS ties).

        Raises:
            ValueError: The item lacks a key attribute, or holds a value
                DynamoDB refuses (see `attribute_value`), `table` is not a
                DynamoDB table name (see `stream_arn`), or a bad
                `sequence_number` or `created_at`.
            TypeError: A key or value of a type DynamoDB cannot store, or a
                `sequence_number` or `created_at` of the wrong type.

        Examples:
            >>> record = EventFactory().insert("Orders", {"id": "o-1", "total": 12})
            >>> record["eventName"], record["dynamodb"]["NewImage"]
            ('INSERT', {'id': {'S': 'o-1'}, 'total': {'N': '12'}})
        """
        key = self._key(table, item, "item")
        self._images[key] = copy.deepcopy(dict(item))
        return self._record(
            "INSERT", table, item, new=item, old=None, sequence_number=sequence_number, created_at=created_at
        )

    def modify(
        self,
        table: str,
        new: Mapping[str, Any],
        old: Mapping[str, Any] | None = None,
        *,
        sequence_number: int | None = None,
        created_at: int | datetime | None = None,
    ) -> Record:
        """
        Return the record of an item in `table` being changed from `old` to `new`.

        Args:
            table: The DynamoDB table.
            new: The item after the change.
            old: The item before it. By default, the last image this factory
                built for the same item (by an `insert` or `modify`); if it
                built none, `new` itself. Pass it when a handler compares
                the images.
            sequence_number: As for `insert`.
            created_at: As for `insert`.

        Raises:
            ValueError: `new` lacks a key attribute, `old` has other key
                values than `new`, a value DynamoDB refuses, or `table` is
                not a DynamoDB table name.
            TypeError: A key or value of a type DynamoDB cannot store.

        Examples:
            >>> events = EventFactory(view_type="NEW_AND_OLD_IMAGES")
            >>> _ = events.insert("Orders", {"id": "o-1", "status": "PLACED"})
            >>> events.modify("Orders", {"id": "o-1", "status": "SHIPPED"})["dynamodb"]["OldImage"]
            {'id': {'S': 'o-1'}, 'status': {'S': 'PLACED'}}
        """
        key = self._key(table, new, "new")
        if old is None:
            old = self._images.get(key, new)
        elif self._key(table, old, "old") != key:
            raise ValueError("old and new are not the same item: their key attributes differ")
        record = self._record(
            "MODIFY", table, new, new=new, old=old, sequence_number=sequence_number, created_at=created_at
        )
        self._images[key] = copy.deepcopy(dict(new))
        return record

    def remove(
        self,
        table: str,
        old: Mapping[str, Any],
        *,
        ttl: bool = False,
        sequence_number: int | None = None,
        created_at: int | datetime | None = None,
    ) -> Record:
        """
        Return the record of an item being deleted from `table`.

        Args:
            table: The DynamoDB table.
            old: The item as it was (its key attributes are enough when the
                view type carries no old image).
            ttl: Whether the item expired through time to live: the record
                then carries the identity of the DynamoDB service
                (`userIdentity` type `Service`, principal
                `dynamodb.amazonaws.com`).
            sequence_number: As for `insert`.
            created_at: As for `insert`.

        Raises:
            ValueError: `old` lacks a key attribute, holds a value DynamoDB
                refuses, or `table` is not a DynamoDB table name.
            TypeError: A key or value of a type DynamoDB cannot store.

        Examples:
            >>> record = EventFactory().remove("Sessions", {"id": "s-1"}, ttl=True)
            >>> record["eventName"], record["userIdentity"]["principalId"]
            ('REMOVE', 'dynamodb.amazonaws.com')
        """
        key = self._key(table, old, "old")
        self._images.pop(key, None)
        record = self._record(
            "REMOVE", table, old, new=None, old=old, sequence_number=sequence_number, created_at=created_at
        )
        if ttl:
            record["userIdentity"] = dict(_TTL_IDENTITY)
        return record

    def event(self, *records: Mapping[str, Any] | bytes) -> dict[str, list[Any]]:
        """
        Return a Lambda event holding `records`, in that order.

        With Kinesis, each change record is wrapped with the next Kinesis
        `sequenceNumber` (wrapped again, it is a KDS duplicate); a Kinesis
        record is kept (a redelivery); bytes are another producer's data.

        Raises:
            TypeError: A record that is none of these (with Streams, not a mapping).

        Examples:
            >>> events = EventFactory()
            >>> event = events.event(events.insert("Orders", {"id": "o-1"}))
            >>> len(event["Records"])
            1
        """
        if self._kinesis is not None:
            return {"Records": [self._kinesis.wrap(record, index) for index, record in enumerate(records)]}
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise TypeError(f"records[{index}] must be a stream record, got {type(record).__name__}")
        return {"Records": [dict(record) for record in records if isinstance(record, Mapping)]}

    def window_event(
        self,
        *records: Mapping[str, Any] | bytes,
        start: datetime,
        end: datetime,
        state: Mapping[str, str] | None = None,
        final: bool = False,
        terminated_early: bool = False,
    ) -> dict[str, Any]:
        """
        Return `records` in a tumbling-window envelope (`TumblingWindowInSeconds`).

        `start` and `end` are the window's bounds, `state` what the function
        returned for it so far, `final` is `isFinalInvokeForWindow`,
        `terminated_early` `isWindowTerminatedEarly`; records as for `event`.

        Raises:
            TypeError: A bound not a datetime, or state not strings to strings.
            ValueError: `end` not after `start`; no record for a DynamoDB
                Streams window (its ARN names the stream).

        Examples:
            >>> events = EventFactory(source="kinesis")
            >>> window = events.window_event(start=datetime(2026, 1, 1), end=datetime(2026, 1, 1, 0, 5))
            >>> window["window"], window["shardId"]
            ({'start': '2026-01-01T00:00:00Z', 'end': '2026-01-01T00:05:00Z'}, 'shardId-000000000000')
        """
        arn = None if self._kinesis is None else self._kinesis.arn
        wrapped = self.event(*records)["Records"]
        return window_envelope(
            wrapped,
            kinesis_arn=arn,
            start=start,
            end=end,
            state=state,
            final=final,
            terminated_early=terminated_early,
        )

    def inserts(self, table: str, items: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """
        Return an event of one INSERT per item, in order.

        Examples:
            >>> event = EventFactory().inserts("Orders", [{"id": "o-1"}, {"id": "o-2"}])
            >>> [r["dynamodb"]["Keys"] for r in event["Records"]]
            [{'id': {'S': 'o-1'}}, {'id': {'S': 'o-2'}}]
        """
        return self.event(*(self.insert(table, item) for item in items))

    def _key(self, table: str, item: Mapping[str, Any], role: str) -> tuple[Any, ...]:
        return key_values(item, self.key_names(table), table, role)

    def _record(
        self,
        event_name: str,
        table: str,
        item: Mapping[str, Any],
        *,
        new: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
        sequence_number: int | None,
        created_at: int | datetime | None,
    ) -> Record:
        keys = serialize_image({name: item[name] for name in self.key_names(table)})
        size, images = image_size(keys), {}
        for name in _IMAGES[self.view_type][event_name]:
            image = new if name == "NewImage" else old
            assert image is not None  # noqa: S101 - every image a view type carries is given
            images[name] = serialize_image(image)
            size += image_size(images[name])
        if self._kinesis is not None:
            if sequence_number is not None:
                raise ValueError("sequence_number: Kinesis records have none; wrap a record again instead")
            self.stream_arn(table)  # checks the table name
            return self._kinesis.change(
                event_name, table, keys=keys, images=images, size=size, created_at=created_at
            )
        if sequence_number is None:
            sequence_number = next(self._sequence_numbers)
        elif not _is_int(sequence_number):
            raise TypeError("sequence_number must be an int")
        elif sequence_number < 0:
            raise ValueError("sequence_number must not be negative")
        if created_at is not None:
            created = epoch_units(created_at, "SECOND", "created_at")
        elif self._created_at is not None:
            created = self._created_at
        else:
            created = int(time.time())
        dynamodb: dict[str, Any] = {"ApproximateCreationDateTime": created, "Keys": keys, **images}
        arn = self.stream_arn(table)
        dynamodb.update(SequenceNumber=str(sequence_number), SizeBytes=size, StreamViewType=self.view_type)
        return {
            "eventID": uuid.uuid5(_EVENT_ID_NAMESPACE, f"{arn}#{sequence_number}").hex,
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": arn,
        }
