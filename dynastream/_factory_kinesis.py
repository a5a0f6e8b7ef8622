"""
Kinesis Data Streams for DynamoDB records and Lambda Kinesis events, for `EventFactory`.

`EventFactory(source="kinesis")` builds change records as DynamoDB puts them on a
Kinesis data stream, and the Lambda Kinesis events that carry them.

The shapes follow the AWS references and a real capture (the Kinesis fixture of
Powertools for AWS Lambda, in tests/fixtures/events/kds/):
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html,
https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html and, for tumbling
windows, https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-windows.html.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "FIRST_KINESIS_SEQUENCE_NUMBER",
    "PRECISIONS",
    "SOURCES",
    "KinesisBuilder",
    "change_record",
    "check_source",
    "epoch_units",
    "window_envelope",
]

SOURCES = ("dynamodb", "kinesis")
PRECISIONS = ("MILLISECOND", "MICROSECOND")
_PER_SECOND = {"SECOND": 1, "MILLISECOND": 1_000, "MICROSECOND": 1_000_000}
_UNIT_NAMES = {"SECOND": "seconds", "MILLISECOND": "milliseconds", "MICROSECOND": "microseconds"}
# The values a reader takes for each KDS unit (from 1973 to the year 5138): below them a
# millisecond value reads as seconds, above them as microseconds. Streams has whole seconds.
_RANGES = {"SECOND": (0, 10**17), "MILLISECOND": (10**11, 10**14), "MICROSECOND": (10**14, 10**17)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# As long as real ones (56 digits), like those of the Powertools capture.
FIRST_KINESIS_SEQUENCE_NUMBER = 49_657_828_409_187_701_520_019_995_242_508_390_119_953_358_325_192_589_314
_SHARD_ID = "shardId-000000000000"
# KDS eventIDs are UUIDs; the factory derives them, so a factory built alike gives the same.
_EVENT_ID_NAMESPACE = uuid.UUID("0b1e4a52-8a0f-4d55-b0f3-5a6c1d9e2f47")
_STREAMS_SHARD_ID = "shardId-00000001700000000000-00000000"

Record = dict[str, Any]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_source(source: object, precision: object, view_type: object) -> bool:
    """
    Return whether `source` is Kinesis, once the settings are checked against it.

    Raises:
        ValueError: An unknown source or precision, or one the source has not.
    """
    for name, value, choices in (("source", source, SOURCES), ("precision", precision, PRECISIONS)):
        if value not in choices:
            raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")
    if source == "kinesis" and view_type != "NEW_AND_OLD_IMAGES":
        raise ValueError("view_type: Kinesis Data Streams records always carry both images")
    if source == "dynamodb" and precision != "MILLISECOND":
        raise ValueError("precision: DynamoDB Streams records carry whole seconds; it is for Kinesis")
    return source == "kinesis"


def epoch_units(value: int | datetime, precision: str, name: str) -> int:
    """
    Return `value` as an `ApproximateCreationDateTime` in the unit of `precision`.

    That is epoch seconds (DynamoDB Streams), milliseconds or microseconds; a
    datetime is kept to the microsecond, then cut to the unit.

    Raises:
        TypeError: `value` is neither a datetime nor an int.
        ValueError: `value` is before 1970, or, for KDS, before 1973 or after
            5138 in its unit: a reader would take it for another unit.
    """
    unit = _UNIT_NAMES[precision]
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        micros = (aware - _EPOCH) // timedelta(microseconds=1)
        units = micros // (1_000_000 // _PER_SECOND[precision])
    elif _is_int(value):
        units = value
    else:
        raise TypeError(f"{name} must be a datetime or an int of epoch {unit}, got {type(value).__name__}")
    low, high = _RANGES[precision]
    if units < 0:
        raise ValueError(f"{name} must not be before 1970")
    if not low <= units < high:
        raise ValueError(
            f"{name} must be epoch {unit} from {low} to {high - 1} (1973 to 5138), got {units}:"
            " a reader would take it for another unit"
        )
    return units


class KinesisClock:
    """
    Hands out the creation times of KDS records.

    A given one as it is; otherwise now, or one unit after the latest handed out
    when now is not later (KDS is ordered by these times).
    """

    __slots__ = ("_latest", "fixed", "precision")

    def __init__(self, precision: str, fixed: int | datetime | None) -> None:
        self.precision = precision
        self.fixed = None if fixed is None else epoch_units(fixed, precision, "created_at")
        self._latest: int | None = None

    def next(self, given: int | datetime | None) -> int:
        if given is not None:
            created = epoch_units(given, self.precision, "created_at")
        elif self.fixed is not None:
            created = self.fixed
        else:
            now = time.time_ns() // (1_000_000_000 // _PER_SECOND[self.precision])
            created = now if self._latest is None or now > self._latest else self._latest + 1
        self._latest = created if self._latest is None else max(self._latest, created)
        return created


def change_record(
    *,
    event_id: str,
    event_name: str,
    table: str,
    region: str,
    created: int,
    precision: str,
    keys: Mapping[str, Any],
    images: Mapping[str, Any],
    size: int,
) -> Record:
    """
    Return a KDS change record, its keys in the order DynamoDB writes them.

    Unlike a DynamoDB Streams record it has `tableName`, `recordFormat` and a
    `userIdentity` (null but for TTL deletes), and no `SequenceNumber`,
    `StreamViewType`, `eventVersion` or `eventSourceARN`. A microsecond timestamp
    is flagged inside `dynamodb`; a millisecond one is not.
    """
    dynamodb: dict[str, Any] = {"ApproximateCreationDateTime": created, "Keys": dict(keys)}
    dynamodb.update(images)
    dynamodb["SizeBytes"] = size
    if precision == "MICROSECOND":
        dynamodb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    return {
        "awsRegion": region,
        "eventID": event_id,
        "eventName": event_name,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": table,
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }


class KinesisBuilder:
    """
    Builds the change records of one Kinesis data stream, and wraps them as Lambda does.

    Each wrap gets the next Kinesis sequence number, so a record wrapped twice is
    a KDS duplicate (new sequence number, same eventID).
    """

    __slots__ = ("_arrival", "_changes", "_sequence_numbers", "arn", "clock", "region", "role_arn")

    def __init__(
        self,
        *,
        name: object,
        region: str,
        account_id: str,
        first_sequence_number: int,
        precision: str,
        created_at: int | datetime | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("stream_name must be the name of a Kinesis data stream")
        self.clock = KinesisClock(precision, created_at)
        self.arn = f"arn:aws:kinesis:{region}:{account_id}:stream/{name}"
        self.region = region
        self.role_arn = f"arn:aws:iam::{account_id}:role/dynastream-replication"
        self._changes = itertools.count()
        self._sequence_numbers = itertools.count(first_sequence_number)
        self._arrival = 0.0

    def change(
        self,
        event_name: str,
        table: str,
        keys: Mapping[str, Any],
        images: Mapping[str, Any],
        *,
        size: int,
        created_at: int | datetime | None,
    ) -> Record:
        """
        Return the next change record.

        Its eventID derives from the stream, the table and the change's number,
        so a factory built alike gives the same ones.
        """
        number = next(self._changes)
        event_id = str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{self.arn}#{table}#{number}"))
        return change_record(
            event_id=event_id,
            event_name=event_name,
            table=table,
            region=self.region,
            created=self.clock.next(created_at),
            precision=self.clock.precision,
            keys=keys,
            images=images,
            size=size,
        )

    def wrap(self, record: object, index: int) -> Record:
        """
        Return `record` as the Kinesis record Lambda delivers.

        A change record is wrapped, a Kinesis record kept as it is, bytes
        (another producer's data on the same stream) wrapped as they are.

        Raises:
            TypeError: `record` is none of these.
        """
        seconds = 0.0
        if isinstance(record, (bytes, bytearray)):
            data = partition = bytes(record)
        elif isinstance(record, Mapping) and record.get("eventSource") == "aws:kinesis":
            return dict(record)
        elif isinstance(record, Mapping) and isinstance(record.get("dynamodb"), Mapping):
            # DynamoDB writes JSON without spaces; the partition key is a hash of the item's key.
            data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
            partition = json.dumps([record.get("tableName"), record["dynamodb"].get("Keys")]).encode()
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            if _is_int(created):
                seconds = created / _PER_SECOND[self.clock.precision]
        else:
            raise TypeError(
                f"records[{index}] must be a change record, a Kinesis record or bytes,"
                f" got {type(record).__name__}"
            )
        sequence_number = str(next(self._sequence_numbers))
        # Arrival follows creation and strictly increases, as the sequence numbers do.
        self._arrival = max(time.time(), seconds, self._arrival + 0.001)
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": hashlib.md5(partition, usedforsecurity=False).hexdigest().upper(),
                "sequenceNumber": sequence_number,
                "data": base64.b64encode(data).decode("ascii"),
                "approximateArrivalTimestamp": round(self._arrival, 3),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{_SHARD_ID}:{sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self.role_arn,
            "awsRegion": self.region,
            "eventSourceARN": self.arn,
        }


def window_envelope(
    records: Sequence[Mapping[str, Any]],
    kinesis_arn: str | None,
    *,
    start: object,
    end: object,
    state: object,
    final: bool,
    terminated_early: bool,
) -> dict[str, Any]:
    """
    Return the tumbling-window envelope of `records`.

    A Kinesis one when `kinesis_arn` is given, else a DynamoDB Streams one (its
    ARN is the first record's).

    Raises:
        TypeError: `start` or `end` is not a datetime, or `state` not a mapping
            of strings.
        ValueError: `end` is not after `start`, or a DynamoDB Streams window
            has no record to name its stream.
    """
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        wrong, value = ("start", start) if not isinstance(start, datetime) else ("end", end)
        raise TypeError(f"{wrong} must be a datetime, got {type(value).__name__}")
    if not _utc(start) < _utc(end):
        raise ValueError("end must be after start")
    if state is None:
        state = {}
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in state.items()
    ):
        raise TypeError("state must be a mapping of strings to strings, as Lambda keeps it")
    if kinesis_arn is not None:
        arn, shard_id = kinesis_arn, _SHARD_ID
    elif records:
        arn, shard_id = str(records[0].get("eventSourceARN")), _STREAMS_SHARD_ID
    else:
        raise ValueError("records: a DynamoDB Streams window needs a record to name its stream")
    return {
        "Records": [dict(record) for record in records],
        "window": {"start": _iso(start), "end": _iso(end)},
        "state": dict(state),
        "shardId": shard_id,
        "eventSourceARN": arn,
        "isFinalInvokeForWindow": bool(final),
        "isWindowTerminatedEarly": bool(terminated_early),
    }


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
