"""
A history: the changes one worker makes, as the stream holds them, and what the replica must end as.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

POISON = ("poison", "malformed")


def pick_operation(rng: random.Random, poison: float) -> str:
    """
    Return a change's kind: a put, a REMOVE, a REMOVE by time to live, or a poison record.
    """
    return rng.choices(["put", "remove", "ttl", *POISON], weights=[6, 2, 1, poison, poison])[0]


@dataclasses.dataclass
class History:
    """
    One worker's history.

    Attributes:
        records: The Lambda records, in stream order (a change may be there twice).
        model: The rows the replica must end with: the version of each item left.
        true_model: The rows the changes leave, applied in the order they were
            made; the replica may end unlike it only at `tied_keys`.
        poisoned: The item identifiers (what `batchItemFailures` names) of the
            poison records, as integers.
        poison_events: The eventIDs of the poison changes.
        event_ids: The eventIDs of all the worker's changes.
        tied_keys: The items two of whose changes tie (their times cannot order them).
        counts: What the history holds, for the summary.
    """

    records: list[dict[str, Any]]
    model: dict[str, int]
    true_model: dict[str, int]
    poisoned: set[int]
    poison_events: set[str]
    event_ids: set[str]
    tied_keys: set[str] = dataclasses.field(default_factory=set)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)


def identifier(record: dict[str, Any]) -> int:
    """
    Return what `batchItemFailures` names a Lambda record by: its (Kinesis) sequence number.
    """
    if "kinesis" in record:
        return int(record["kinesis"]["sequenceNumber"])
    return int(record["dynamodb"]["SequenceNumber"])


def final_rows(changes: list[tuple[str, str, int]]) -> dict[str, int]:
    """
    Return the rows `(key, operation, version)` changes leave, applied in the order given.
    """
    rows: dict[str, int] = {}
    for key, operation, version in changes:
        if operation == "put":
            rows[key] = version
        elif operation not in POISON:  # a poison record is never applied: the row keeps what it had
            rows.pop(key, None)
    return rows
