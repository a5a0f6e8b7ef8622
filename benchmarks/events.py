"""
Mixed stream batches for the replication benchmark, as Lambda hands them over.

A batch of `size` records changes an `Orders` table: about 60% INSERTs of new
keys, 30% MODIFYs and 10% REMOVEs of keys that exist before the batch (the
*pre-state*), each key touched once, in shuffled stream order. The stream's
view type is `NEW_AND_OLD_IMAGES`, so MODIFYs carry both images and REMOVEs
their old image, as on a table replicated with full history.

Each item has 15 to 18 attributes: strings, exact decimals (money with two
places, a rate with ten), integers, a string set, a boolean, a NULL or absent
gift message, a binary signature, a nested map (an address holding a map of
coordinates) and a list of maps (order lines).

The event goes through JSON text and back, as the Lambda runtime parses it:
numbers are strings inside `{"N": ...}`, binary is base64 text.
"""

from __future__ import annotations

import base64
import json
import random
from typing import TYPE_CHECKING, Any

import attrs

from .deserialize import STATUSES, TAGS, address

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ARN", "Batch", "make_batch", "mixed_batch", "order_image", "stream_record"]

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-11-01T00:00:00.000"
# Sequence numbers of real streams: 21 to 40 digits, increasing within a shard.
FIRST_SEQUENCE_NUMBER = 4_421_584_500_000_000_017_450_439_000
FIRST_CREATION_TIME = 1_790_000_000

COUPONS = ["WELCOME10", "SPRING-24", "VIP", "FREESHIP"]


@attrs.frozen
class Batch:
    """
    One benchmark batch and the table state it applies to.

    Attributes:
        event: The Lambda event, as parsed from JSON text by the Lambda runtime.
        json_bytes: The size of the event's JSON text, in bytes.
        pre_state: `(old image, sequence number)` of every item that exists
            before the batch (the keys its MODIFYs and REMOVEs touch), images in
            Lambda's JSON shape.
        counts: Records per event name.
    """

    event: dict[str, Any] = attrs.field(repr=False)
    json_bytes: int
    pre_state: list[tuple[dict[str, Any], int]] = attrs.field(repr=False)
    counts: dict[str, int]

    @property
    def size(self) -> int:
        """
        The number of records.
        """
        return len(self.event["Records"])


def _money(rng: random.Random, low: int, high: int) -> str:
    cents = rng.randint(low * 100, high * 100)
    return f"{cents // 100}.{cents % 100:02d}"


def order_image(rng: random.Random, order_id: str) -> dict[str, Any]:
    """
    Return one order as a DynamoDB image in Lambda's JSON shape (binary as base64).
    """
    lines = [
        {
            "M": {
                "sku": {"S": f"SKU-{rng.randint(10_000, 99_999)}"},
                "quantity": {"N": str(rng.randint(1, 12))},
                "unit_price": {"N": _money(rng, 1, 400)},
            }
        }
        for _ in range(rng.randint(1, 5))
    ]
    is_gift = rng.random() < 0.2
    image: dict[str, Any] = {
        "id": {"S": order_id},
        "customer_id": {"S": f"c-{rng.randint(1, 10**9)}"},
        "email": {"S": f"user{rng.randint(1, 10**6)}@example.com"},
        "status": {"S": rng.choice(STATUSES)},
        "created_at": {"S": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:34:56.789Z"},
        "total": {"N": _money(rng, 5, 5_000)},
        "exchange_rate": {"N": f"{rng.randint(0, 3)}.{rng.randint(0, 10**10 - 1):010d}"},
        "quantity": {"N": str(rng.randint(1, 40))},
        "discount_rate": {"N": rng.choice(["0", "0.05", "0.10", "0.15", "0.125"])},
        "tags": {"SS": rng.sample(TAGS, rng.randint(1, 4))},
        "is_gift": {"BOOL": is_gift},
        "address": address(rng),
        "lines": {"L": lines},
        "signature": {"B": base64.b64encode(rng.randbytes(32)).decode("ascii")},
        "version": {"N": str(rng.randint(1, 50))},
    }
    # Optional attributes: 15 to 18 per item, as real items vary.
    if is_gift:
        image["gift_message"] = {"S": "Joyeux anniversaire !\nWith love"}
    elif rng.random() < 0.5:
        image["gift_message"] = {"NULL": True}
    if rng.random() < 0.3:
        image["coupon"] = {"S": rng.choice(COUPONS)}
    if rng.random() < 0.5:
        image["loyalty_points"] = {"N": str(rng.randint(0, 10**12))}
    return image


def stream_record(
    rng: random.Random,
    event_name: str,
    order_id: str,
    sequence_number: int,
    creation_time: int,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None,
    *,
    arn: str = ARN,
    size_bytes: int | None = None,
) -> dict[str, Any]:
    """
    Return one Lambda stream record of a table keyed by `id` (view type `NEW_AND_OLD_IMAGES`).

    The table is the `Orders` table unless `arn` names another stream;
    `SizeBytes` is drawn at random unless `size_bytes` is given.
    """
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": creation_time,
        "Keys": {"id": {"S": order_id}},
    }
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    dynamodb["SequenceNumber"] = str(sequence_number)
    dynamodb["SizeBytes"] = 300 + rng.randint(0, 900) if size_bytes is None else size_bytes
    dynamodb["StreamViewType"] = "NEW_AND_OLD_IMAGES"
    return {
        "eventID": f"{rng.getrandbits(128):032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": dynamodb,
        "eventSourceARN": arn,
    }


def _approximate_size(new: dict[str, Any] | None, old: dict[str, Any] | None) -> int:
    """
    Return a record's `SizeBytes` as the images' compact JSON length (DynamoDB counts names and values).
    """
    images = [image for image in (new, old) if image is not None]
    return sum(len(json.dumps(image, ensure_ascii=False, separators=(",", ":")).encode()) for image in images)


def make_batch(size: int, *, seed: int = 20_260_101) -> Batch:
    """
    Return a mixed batch of `size` records and its pre-state, the same for every call.
    """
    return mixed_batch(size, random.Random(seed + size), order_image, prefix="o")


def mixed_batch(
    size: int,
    rng: random.Random,
    image: Callable[[random.Random, str], dict[str, Any]],
    *,
    prefix: str,
    arn: str = ARN,
    measured_sizes: bool = False,
) -> Batch:
    """
    Return a mixed batch of `size` records of items that `image` makes, and its pre-state.

    About 60% INSERTs, 30% MODIFYs and 10% REMOVEs, each key once, shuffled;
    keys start with `prefix`. The records name the stream `arn`; with
    `measured_sizes`, their `SizeBytes` is the images' JSON length rather than
    a small random number (for items far larger than an order).
    """
    removes = size // 10
    modifies = size * 3 // 10
    inserts = size - modifies - removes
    kinds = ["INSERT"] * inserts + ["MODIFY"] * modifies + ["REMOVE"] * removes
    rng.shuffle(kinds)

    existing = [f"{prefix}-{size}-{n:06d}-{rng.getrandbits(48):012x}" for n in range(modifies + removes)]
    # Older than anything in the batch, as the changes that wrote the pre-state were.
    pre_state = [
        (image(rng, item_id), FIRST_SEQUENCE_NUMBER - 1_000_000 + n) for n, item_id in enumerate(existing)
    ]
    untouched = iter(pre_state)
    records = []
    for position, kind in enumerate(kinds):
        sequence_number = FIRST_SEQUENCE_NUMBER + position * 100
        creation_time = FIRST_CREATION_TIME + position // 50
        new: dict[str, Any] | None
        if kind == "INSERT":
            item_id = f"{prefix}-{size}-{position:06d}-{rng.getrandbits(48):012x}"
            new, old = image(rng, item_id), None
        else:
            old, _ = next(untouched)
            item_id = old["id"]["S"]
            new = image(rng, item_id) if kind == "MODIFY" else None
        size_bytes = _approximate_size(new, old) if measured_sizes else None
        records.append(
            stream_record(
                rng, kind, item_id, sequence_number, creation_time, new, old, arn=arn, size_bytes=size_bytes
            )
        )

    # Compact, as the Lambda service sends it.
    text = json.dumps({"Records": records}, ensure_ascii=False, separators=(",", ":"))
    counts = {"INSERT": inserts, "MODIFY": modifies, "REMOVE": removes}
    # What the Lambda runtime hands the handler: a fresh parse of the JSON text.
    return Batch(json.loads(text), len(text.encode()), pre_state, counts)
