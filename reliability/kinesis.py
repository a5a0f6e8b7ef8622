"""
Kinesis Data Streams for DynamoDB histories (`python -m reliability --source kinesis`).

Each change is a change record in the Kinesis Data Streams format (`tableName`,
`recordFormat`, `userIdentity`, `dynamodb.ApproximateCreationDateTime`, no
`SequenceNumber`), compact JSON in base64 as the `data` of a Lambda Kinesis
record. Most records carry microseconds (with
`"ApproximateCreationDateTimePrecision": "MICROSECOND"`), some milliseconds (no
precision field): a table's precision can be changed at any time. A share of the
changes (`--tie-rate`) change the item of the change before at the very same
microsecond, a deliberate tie; two changes of an item in one millisecond tie too
when either record carries milliseconds.

Kinesis Data Streams may deliver a change more than once and out of order
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/kds.html), so
the stream holds some changes late (`--reorder-rate`: a few places, mostly within
a batch, or up to 20, across batches) and some twice (`--duplicate-rate`: the
same change record put again later, under a new, higher Kinesis
`sequenceNumber`, which is what `batchItemFailures` names).

Two models of the final state. The one dynastream promises: per item, the change
with the greatest ordering number wins (the number `dynastream.read_event` gives
the record: its time at its precision, then a digest of its `eventID`). And the
true order, the order the changes were made. The replica must equal the first;
an item may end unlike the second only where two of its changes tie, and every
such item is counted. Before any delivery, the ordering numbers are checked
against the true order: of two changes of an item that do not tie, the one made
later must have the greater number, and no two changes may have the same one.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import uuid
from typing import TYPE_CHECKING, Any

import dynastream

from .database import TABLE
from .history import POISON, History, final_rows, identifier, pick_operation

if TYPE_CHECKING:
    import argparse
    import random
    from collections.abc import Iterable

START = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z, in microseconds since the epoch
STEP = 2_500  # the most microseconds between two changes (the least is 1)
LATE_MOST = 20  # a late change comes up to this many places late
DUPLICATE_LATE_MOST = 25  # and its second copy up to this many places after the first
# A real Kinesis sequence number has 56 digits: far past 64-bit integers.
FIRST_SEQUENCE = 49657828409187701520019995242508390119953358325192589314
SEQUENCE_GAP = 10**20
STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/Items-changes"
ROLE_ARN = "arn:aws:iam::123456789012:role/reliability-replicator"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclasses.dataclass(frozen=True)
class Change:
    """
    One change of an item, as made.

    Attributes:
        position: Its place in the order the changes were made (every worker's
            positions apart); the version its row holds.
        key: The item's key.
        operation: `put`, `remove`, `ttl`, or a poison kind (`history.POISON`).
        micros: When it was made, in microseconds since the epoch.
        millisecond: Its record carries milliseconds, not microseconds.
        event_id: Its record's `eventID` (a UUID), the same in every copy.
        number: dynastream's ordering number of its record (0 for a malformed
            record, which has none).
    """

    position: int
    key: str
    operation: str
    micros: int
    millisecond: bool
    event_id: str
    number: int

    @property
    def applied(self) -> bool:
        """Whether the change can be applied (it is not poison)."""
        return self.operation not in POISON

    def ties(self, other: Change) -> bool:
        """
        Return whether two different changes have a time that cannot order them.

        Their times are equal at the coarser of their precisions: the same
        microsecond when both carry microseconds, else the same millisecond.
        """
        if self.event_id == other.event_id:
            return False
        if self.millisecond or other.millisecond:
            return self.micros // 1000 == other.micros // 1000
        return self.micros == other.micros


@dataclasses.dataclass
class KinesisHistory(History):
    """
    A history of Kinesis Data Streams records.

    Attributes:
        changes: Each record's change, by Kinesis sequence number (a duplicate's
            two records share one change).
        made: The changes in the order they were made.
    """

    changes: dict[int, Change] = dataclasses.field(default_factory=dict)
    made: list[Change] = dataclasses.field(default_factory=list)


def change_record(change: Change, old_image: dict[str, Any] | None) -> dict[str, Any]:
    """
    Return the change record Kinesis Data Streams carries for `change`, in the order AWS writes it.
    """
    key, position, op = change.key, change.position, change.operation
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": change.micros // 1000 if change.millisecond else change.micros,
        "Keys": {"pk": {"S": key}},
    }
    if op == "put":
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": str(position)}}
    elif op == "poison":  # a fraction for an Integer column: a MappingError
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": f"{position}.5"}}
    elif op == "malformed":  # a JSON number where DynamoDB sends text: a MalformedRecordError
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": position}}
    if old_image is not None:  # Kinesis Data Streams sends both images
        dynamodb["OldImage"] = old_image
    dynamodb["SizeBytes"] = 20 + 10 * len(dynamodb)
    if not change.millisecond:
        dynamodb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    removes = op in ("remove", "ttl")
    return {
        "awsRegion": "eu-west-1",
        "eventID": change.event_id,
        "eventName": "REMOVE" if removes else "MODIFY" if old_image is not None else "INSERT",
        "userIdentity": TTL_IDENTITY if op == "ttl" else None,
        "recordFormat": "application/json",
        "tableName": TABLE,
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }


def kinesis_record(data: str, sequence: int, change: Change) -> dict[str, Any]:
    """
    Return a Lambda Kinesis record carrying `data` (base64) under the Kinesis `sequence` number.
    """
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": hashlib.md5(change.key.encode(), usedforsecurity=False).hexdigest().upper(),
            "sequenceNumber": str(sequence),
            "data": data,
            "approximateArrivalTimestamp": round(change.micros / 1e6 + 0.5, 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": ROLE_ARN,
        "awsRegion": "eu-west-1",
        "eventSourceARN": STREAM_ARN,
    }


def ordering_number(record: dict[str, Any]) -> int:
    """
    Return dynastream's ordering number of a change record, or 0 when it cannot read it.
    """
    batch = dynastream.read_event(record)
    return batch.records[0].sequence_number if batch.records else 0


def make_changes(
    rng: random.Random,
    length: int,
    *,
    poison: float,
    keys: list[str],
    stride: int,
    offset: int,
    ties: float,
    ms: float,
) -> list[tuple[Change, str]]:
    """
    Return `length` changes in the order they were made, each with its record's `data`.
    """
    made: list[tuple[Change, str]] = []
    micros = START + rng.randrange(10**9)
    images: dict[str, dict[str, Any]] = {}  # each item as the table holds it, change after change
    for step in range(length):
        if made and rng.random() < ties:
            key = made[-1][0].key  # the item of the change before, at its very microsecond: a tie
        else:
            key = rng.choice(keys)
            micros += rng.randint(1, STEP)
        op = pick_operation(rng, poison)
        change = Change(
            position=step * stride + offset,
            key=key,
            operation=op,
            micros=micros,
            millisecond=rng.random() < ms,
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            number=0,
        )
        record = change_record(change, images.get(key))
        if op in ("remove", "ttl"):
            images.pop(key, None)
        elif op == "put":
            images[key] = record["dynamodb"]["NewImage"]
        if op != "malformed":
            change = dataclasses.replace(change, number=ordering_number(record))
        data = base64.b64encode(json.dumps(record, separators=(",", ":")).encode()).decode()
        made.append((change, data))
    return made


def stream_order(
    rng: random.Random, made: list[tuple[Change, str]], *, late: float, twice: float
) -> tuple[list[tuple[Change, str]], int, int]:
    """
    Return the records as the stream holds them, and how many are late and how many twice.
    """
    slots: list[tuple[int, tuple[Change, str]]] = []
    held = repeated = 0
    for place, entry in enumerate(made):
        delay = 0
        if rng.random() < late:
            delay = rng.randint(1, 3) if rng.random() < 0.6 else rng.randint(4, LATE_MOST)
            held += 1
        slots.append((place + delay, entry))
        if rng.random() < twice:  # put again, later: the second copy comes after the first
            slots.append((place + delay + rng.randint(0, DUPLICATE_LATE_MOST), entry))
            repeated += 1
    slots.sort(key=lambda slot: slot[0])  # stable: a copy never passes the first
    return [entry for _, entry in slots], held, repeated


def history(
    rng: random.Random,
    length: int,
    *,
    poison: float,
    keys: list[str],
    stride: int = 1,
    offset: int = 0,
    options: argparse.Namespace,
) -> KinesisHistory:
    """
    Return a history of `length` changes to `keys`, as a Kinesis stream holds them.

    Concurrent workers each take every `stride`-th position and Kinesis
    sequence number from `offset`, so that theirs never meet.
    """
    made = make_changes(
        rng,
        length,
        poison=poison,
        keys=keys,
        stride=stride,
        offset=offset,
        ties=options.tie_rate,
        ms=options.millisecond_share,
    )
    stream, held, repeated = stream_order(rng, made, late=options.reorder_rate, twice=options.duplicate_rate)
    records, changes = [], {}
    for place, (change, data) in enumerate(stream):
        sequence = FIRST_SEQUENCE + (place * stride + offset) * SEQUENCE_GAP
        records.append(kinesis_record(data, sequence, change))
        changes[sequence] = change
    in_order = [change for change, _ in made]
    applied = [change for change in in_order if change.applied]
    tied_pairs = [(a, b) for a, b in same_item_pairs(applied) if a.ties(b)]
    poisons = [change for change in in_order if not change.applied]
    return KinesisHistory(
        records=records,
        model=final_rows([(c.key, c.operation, c.position) for c in sorted(applied, key=lambda c: c.number)]),
        true_model=final_rows([(c.key, c.operation, c.position) for c in applied]),
        poisoned={sequence for sequence, change in changes.items() if not change.applied},
        poison_events={change.event_id for change in poisons},
        event_ids={change.event_id for change in in_order},
        tied_keys={a.key for a, _ in tied_pairs},
        counts={
            "changes": len(in_order),
            "millisecond": sum(change.millisecond for change in in_order),
            "late": held,
            "duplicates": repeated,
            "ties": len(tied_pairs),
            "tied_items": len({a.key for a, _ in tied_pairs}),
        },
        changes=changes,
        made=in_order,
    )


def same_item_pairs(changes: Iterable[Change]) -> list[tuple[Change, Change]]:
    """
    Return every pair of changes of one item, the earlier made first.
    """
    by_item: dict[str, list[Change]] = {}
    for change in changes:
        by_item.setdefault(change.key, []).append(change)
    return [pair for item in by_item.values() for pair in itertools.combinations(item, 2)]


def check_order(made: KinesisHistory, seed: int) -> list[str]:
    """
    Check the ordering numbers against the true order: later wins, unless the two tie; never equal.
    """
    problems = []
    applied = [change for change in made.made if change.applied]
    numbers = [change.number for change in applied]
    if len(set(numbers)) != len(numbers):
        problems.append(f"seed {seed}: two different changes have one ordering number")
    for earlier, later in same_item_pairs(applied):
        if not earlier.ties(later) and earlier.number >= later.number:
            problems.append(
                f"seed {seed}: change {later.event_id} of {later.key} (at {later.micros} us,"
                f" {'ms' if later.millisecond else 'us'} record) was made after {earlier.event_id}"
                f" (at {earlier.micros} us, {'ms' if earlier.millisecond else 'us'} record), they do"
                f" not tie, but its ordering number is not greater"
            )
    return problems


def batch_items(made: KinesisHistory, batch: list[dict[str, Any]]) -> int:
    """
    Return how many items a batch's records change.
    """
    return len({made.changes[identifier(record)].key for record in batch})


def in_batch_ties(made: KinesisHistory, batch: list[dict[str, Any]]) -> int | None:
    """
    Return how many of a batch's records tie with the newest change of their item before them.

    dynastream counts those as `tied` in its batch summary, plus each item whose
    newest change in the batch ties with the change already stored; `None` when
    the batch holds a poison record (then the count depends on where it stopped).
    """
    changes = [made.changes[identifier(record)] for record in batch]
    if not all(change.applied for change in changes):
        return None
    newest: dict[str, Change] = {}
    tied = 0
    for change in changes:
        current = newest.get(change.key)
        if current is not None:
            tied += change.ties(current)
        if current is None or change.number > current.number:
            newest[change.key] = change
    return tied
