"""
DynamoDB Streams histories (`python -m reliability`, the default source).

Random INSERT / MODIFY / REMOVE (some by time to live) over a few keys, with
sequence numbers of 21 to 40 digits, in stream order: DynamoDB Streams delivers
each item's changes once each, in the order they were made (the delivery faults
come on top, see `delivery`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .history import POISON, History, final_rows, pick_operation

if TYPE_CHECKING:
    import argparse
    import random

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Items/stream/2026-11-01T00:00:00.000"


def change(position: int, key: str, op: str, *, stride: int = 1) -> dict[str, Any]:
    # 21 digits, growing past 30 but not past 40 (DynamoDB's most): the growth slows with more than
    # three interleaved workers, whose positions reach 40 times their number; the sum still grows.
    growth = position * 3 // max(3, stride)
    sequence_number = 10**20 * (7**growth) // 5**growth + position
    keys = {"pk": {"S": key}}
    dynamodb: dict[str, Any] = {
        "Keys": keys,
        "SequenceNumber": str(sequence_number),
        "StreamViewType": "NEW_IMAGE",
    }
    record: dict[str, Any] = {
        "eventID": f"e-{position}",
        "eventName": "REMOVE" if op in ("remove", "ttl") else "MODIFY",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": ARN,
        "dynamodb": dynamodb,
    }
    if op == "put":
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": str(position)}}
    elif op == "poison":  # a fraction for an Integer column: a MappingError
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": f"{position}.5"}}
    elif op == "malformed":  # a JSON number where DynamoDB sends text: a MalformedRecordError
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": position}}
    if op == "ttl":
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def history(
    rng: random.Random,
    length: int,
    *,
    poison: float,
    keys: list[str],
    stride: int = 1,
    offset: int = 0,
    options: argparse.Namespace | None = None,  # the sources' histories take the same arguments
) -> History:
    """
    Return a history of `length` changes to `keys`, in stream order.

    Concurrent workers each take every `stride`-th position from `offset`, so
    that their sequence numbers never meet.
    """
    records, made = [], []
    for step in range(length):
        position = step * stride + offset
        key = rng.choice(keys)
        op = pick_operation(rng, poison)
        records.append(change(position, key, op, stride=stride))
        made.append((key, op, position))
    model = final_rows(made)
    poison_records = [record for record, (_, op, _) in zip(records, made, strict=True) if op in POISON]
    return History(
        records=records,
        model=model,
        true_model=model,
        poisoned={int(record["dynamodb"]["SequenceNumber"]) for record in poison_records},
        poison_events={record["eventID"] for record in poison_records},
        event_ids={record["eventID"] for record in records},
    )
