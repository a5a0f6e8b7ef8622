"""
Build Lambda DynamoDB Streams events the way Lambda delivers them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/{table}/stream/2026-11-01T00:00:00.000"
FIRST_SEQUENCE_NUMBER = 4_421_584_500_000_000_017_450_439_000


def attribute_value(value: Any) -> dict[str, Any]:
    """Serialize a Python value as Lambda's JSON does (numbers as text, binary as base64)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, Decimal)):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {"M": {k: attribute_value(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [attribute_value(v) for v in value]}
    raise TypeError(type(value))


def image(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attribute_value(value) for name, value in item.items()}


def record(
    event_name: str,
    keys: Mapping[str, Any],
    new: Mapping[str, Any] | None = None,
    old: Mapping[str, Any] | None = None,
    *,
    table: str = "Orders",
    sequence_number: int,
    view_type: str = "NEW_AND_OLD_IMAGES",
) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1_790_000_000,
        "Keys": image(keys),
        "SequenceNumber": str(sequence_number),
        "SizeBytes": 100,
        "StreamViewType": view_type,
    }
    if new is not None:
        dynamodb["NewImage"] = image(new)
    if old is not None:
        dynamodb["OldImage"] = image(old)
    return {
        "eventID": f"event-{sequence_number}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": dynamodb,
        "eventSourceARN": ARN.format(table=table),
    }


def insert_event(count: int, *, table: str = "Orders", start: int = 0) -> dict[str, Any]:
    """A Lambda event of `count` INSERTs of items `{"id": "i-<n>", "n": <n>}`."""
    return {
        "Records": [
            record(
                "INSERT",
                {"id": f"i-{n}"},
                {"id": f"i-{n}", "n": n},
                table=table,
                sequence_number=FIRST_SEQUENCE_NUMBER + n,
            )
            for n in range(start, start + count)
        ]
    }
