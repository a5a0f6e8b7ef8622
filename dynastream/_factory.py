"""
`EventFactory`: DynamoDB Streams records exactly as Lambda delivers them.

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
from decimal import Decimal
from typing import Any

from dynastream._record_fields import TABLE_NAME_RULE, is_table_name

from ._serialize import image_size, serialize_image

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

Record = dict[str, Any]


def _epoch_seconds(value: int | datetime, name: str) -> int:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(aware.timestamp())
    if not _is_int(value):
        raise TypeError(f"{name} must be a datetime or a number of epoch seconds")
    if value < 0:
        raise ValueError(f"{name} must not be before 1970")
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class EventFactory:
    """
    Builds DynamoDB Streams records and events the way Lambda delivers them.

    Each record has an `eventID`, `eventVersion` "1.1", `eventSource`
    "aws:dynamodb", `awsRegion`, an `eventSourceARN` naming its table, and a
    `dynamodb` part with the item's `Keys`, the images its stream view type
    carries for its event name, a `SequenceNumber` (text; each record gets the
    next one, so they strictly increase), `ApproximateCreationDateTime` (whole
    epoch seconds), `SizeBytes` and `StreamViewType`. Values are serialized
    with `attribute_value`: numbers as exact text, binary as base64.

    The factory remembers the last image it built for each item (by table and
    key), which `modify` uses as the old image when none is given.

    Args:
        keys: The key attribute names (partition key, then sort key) of every
            table, or a mapping of table name to its key attribute names.
        view_type: The stream view type: `"KEYS_ONLY"`, `"NEW_IMAGE"`,
            `"OLD_IMAGE"` or `"NEW_AND_OLD_IMAGES"` (or a
            `dynastream.StreamViewType`).
        region: The AWS region, in `awsRegion` and the ARNs.
        account_id: The AWS account, in the ARNs.
        first_sequence_number: The sequence number of the first record built
            (by default a 28-digit one, like real ones, which have 21 to 40).
        created_at: `ApproximateCreationDateTime` of every record (a datetime
            or epoch seconds); by default the time each record is built.

    Raises:
        ValueError: An unknown view type, or a table with no key attributes.

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
    """

    __slots__ = (
        "_created_at",
        "_images",
        "_keys",
        "_sequence_numbers",
        "_stream_label",
        "account_id",
        "region",
        "view_type",
    )

    def __init__(
        self,
        *,
        keys: Mapping[str, Sequence[str]] | Sequence[str] = ("id",),
        view_type: str = "NEW_AND_OLD_IMAGES",
        region: str = "eu-west-1",
        account_id: str = "123456789012",
        first_sequence_number: int = 4_421_584_500_000_000_017_450_439_000,  # as long as real ones
        created_at: int | datetime | None = None,
    ) -> None:
        if view_type not in _VIEW_TYPES:
            raise ValueError(
                f"unknown stream view type {view_type!r}; expected one of {', '.join(_VIEW_TYPES)}"
            )
        if not _is_int(first_sequence_number):
            raise TypeError("first_sequence_number must be an int")
        if first_sequence_number < 0:
            raise ValueError("first_sequence_number must not be negative")
        self._keys: dict[str, tuple[str, ...]] | tuple[str, ...]
        if isinstance(keys, Mapping):
            self._keys = {table: _key_names(names, table) for table, names in keys.items()}
        else:
            self._keys = _key_names(keys, None)
        self.view_type = str(view_type)  # a dynastream.StreamViewType is a str too
        self.region = region
        self.account_id = account_id
        self._sequence_numbers = itertools.count(first_sequence_number)
        self._created_at = None if created_at is None else _epoch_seconds(created_at, "created_at")
        stream_created = datetime.fromtimestamp(
            time.time() if self._created_at is None else self._created_at, UTC
        )
        self._stream_label = stream_created.strftime("%Y-%m-%dT%H:%M:%S.000")
        self._images: dict[tuple[str, tuple[Any, ...]], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return (
            f"EventFactory(keys={self._keys!r}, view_type={self.view_type!r}, region={self.region!r},"
            f" account_id={self.account_id!r})"
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
        Return the `eventSourceARN` of `table`'s stream.

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
                records); the factory's own numbering is not affected.
            created_at: This record's `ApproximateCreationDateTime`.

        Raises:
            ValueError: The item lacks a key attribute, or holds a value
                DynamoDB refuses (see `attribute_value`), or `table` is not
                a DynamoDB table name (see `stream_arn`).
            TypeError: A key or value of a type DynamoDB cannot store.

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

    def event(self, *records: Mapping[str, Any]) -> dict[str, list[Any]]:
        """
        Return a Lambda DynamoDB Streams event holding `records`, in that order.

        Examples:
            >>> events = EventFactory()
            >>> event = events.event(events.insert("Orders", {"id": "o-1"}))
            >>> len(event["Records"])
            1
        """
        return {"Records": [dict(record) for record in records]}

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
        if not isinstance(item, Mapping):
            raise TypeError(
                f"{role} must be a mapping of attribute names to values, got {type(item).__name__}"
            )
        values = []
        for name in self.key_names(table):
            if name not in item:
                raise ValueError(f"{role} has no key attribute {name!r} (the keys of table {table!r})")
            value = item[name]
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value)
            elif isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
                raise TypeError(
                    f"key attribute {name!r} must be a string, a number or bytes, got {type(value).__name__}"
                )
            values.append(value)
        return tuple(values)

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
        if sequence_number is None:
            sequence_number = next(self._sequence_numbers)
        elif not _is_int(sequence_number):
            raise TypeError("sequence_number must be an int")
        elif sequence_number < 0:
            raise ValueError("sequence_number must not be negative")
        if created_at is not None:
            created = _epoch_seconds(created_at, "created_at")
        elif self._created_at is not None:
            created = self._created_at
        else:
            created = int(time.time())
        images = {"NewImage": new, "OldImage": old}
        keys = serialize_image({name: item[name] for name in self.key_names(table)})
        dynamodb: dict[str, Any] = {"ApproximateCreationDateTime": created, "Keys": keys}
        size = image_size(keys)
        for name in _IMAGES[self.view_type][event_name]:
            image = images[name]
            assert image is not None  # noqa: S101 - every image a view type carries is given above
            dynamodb[name] = serialize_image(image)
            size += image_size(dynamodb[name])
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


def _key_names(names: Sequence[str], table: str | None) -> tuple[str, ...]:
    key_names = (names,) if isinstance(names, str) else tuple(names)
    given: tuple[object, ...] = key_names
    if not given or len(given) > 2 or not all(isinstance(name, str) and name for name in given):
        where = f" of table {table!r}" if table is not None else ""
        raise ValueError(f"the keys{where} must be one or two attribute names (partition key, sort key)")
    return key_names
