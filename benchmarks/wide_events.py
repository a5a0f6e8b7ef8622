"""
Wide and large items for the growth part of the replication benchmark, as Lambda hands them over.

Both come in the mixed batches of `benchmarks.events` (about 60% INSERTs, 30%
MODIFYs, 10% REMOVEs of keys that exist before the batch, each key once,
view type `NEW_AND_OLD_IMAGES`, through JSON text and back), from streams of
their own tables:

- a **wide** item (`WideItems`) has 100 attributes: the key, 40 strings
  (the last 8 NULL half the time), 25 integers (the last 5 NULL half the
  time), 20 exact decimals for `Numeric(p, s)` columns of five shapes, 10
  booleans and 4 JSON values (a nested map, a list of maps, a string set and
  a list of numbers); about 3.6 KB of event JSON per image;
- a **large** item (`LargeItems`) is about 100 KB of event JSON: seven
  small attributes, a text of about 60,000 characters (words, line breaks,
  some non-ASCII letters) and a list of about 40 KB: maps holding numbers,
  booleans, a list of strings and a nested map.

A DynamoDB item holds at most 400 KB, and a Lambda invocation's event at most
6 MB: with MODIFYs carrying two images, 40 large records are about 5.5 MB.
"""

from __future__ import annotations

import random
from typing import Any

from .deserialize import STATUSES, TAGS, address
from .events import Batch, mixed_batch

__all__ = [
    "LARGE_ARN",
    "LARGE_HISTORY",
    "WIDE_ARN",
    "WIDE_BOOLEANS",
    "WIDE_DECIMALS",
    "WIDE_INTEGERS",
    "WIDE_JSON",
    "WIDE_STRINGS",
    "large_image",
    "make_large_batch",
    "make_wide_batch",
    "wide_image",
]

WIDE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/WideItems/stream/2026-11-01T00:00:00.000"
LARGE_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/LargeItems/stream/2026-11-01T00:00:00.000"

# The wide item's attributes besides `id`: 40 + 25 + 20 + 10 + 4 = 99.
WIDE_STRINGS = tuple(f"s{n:02d}" for n in range(40))
WIDE_OPTIONAL_STRINGS = WIDE_STRINGS[32:]
WIDE_INTEGERS = tuple(f"n{n:02d}" for n in range(25))
WIDE_BIG_INTEGERS = WIDE_INTEGERS[15:]  # BigInteger columns; the others Integer
WIDE_OPTIONAL_INTEGERS = WIDE_INTEGERS[20:]
# (name, precision, scale): at most 15 significant digits, which SQLite's float keeps too.
_SHAPES = ((12, 2), (18, 6), (10, 4), (15, 10), (9, 0))
WIDE_DECIMALS = tuple((f"d{n:02d}", *_SHAPES[n % len(_SHAPES)]) for n in range(20))
WIDE_BOOLEANS = tuple(f"b{n:02d}" for n in range(10))
WIDE_JSON = ("profile", "items", "labels", "scores")
WIDE_STRING_LENGTH = 64

WORDS = [
    *("order", "parcel", "délivré", "Zürich", "Gdańsk", "invoice", "payment", "refund", "customer"),
    *("warehouse", "shelf", "courier", "signature", "returned", "fragile", "express", "standard"),
    *("morning", "evening", "priority", "déjà", "naïve", "façade", "tracking", "update", "address"),
    *("confirmed", "pending", "cancelled", "Ærøskøbing", "Łódź", "São", "Paulo", "København"),
]
LARGE_TEXT_CHARACTERS = 60_000
LARGE_HISTORY = 165  # entries of the large item's list, about 40 KB of event JSON


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choices(WORDS, k=count))


def _decimal(rng: random.Random, precision: int, scale: int) -> str:
    """
    Return a number for `Numeric(precision, scale)`, with at most 15 significant digits.
    """
    digits = min(precision, 15)
    units = rng.randint(0, 10**digits - 1) // 10 ** rng.randint(0, digits - 1)
    sign = "-" if units and rng.random() < 0.2 else ""
    if scale == 0:
        return f"{sign}{units}"
    return f"{sign}{units // 10**scale}.{units % 10**scale:0{scale}d}"


def _money(rng: random.Random, low: int, high: int) -> str:
    cents = rng.randint(low * 100, high * 100)
    return f"{cents // 100}.{cents % 100:02d}"


def _optional(rng: random.Random, value: dict[str, Any]) -> dict[str, Any]:
    """
    Return `value` or `{"NULL": true}`, half the time each.
    """
    return {"NULL": True} if rng.random() < 0.5 else value


def wide_image(rng: random.Random, item_id: str) -> dict[str, Any]:
    """
    Return one wide item (100 attributes) as a DynamoDB image in Lambda's JSON shape.
    """
    image: dict[str, Any] = {"id": {"S": item_id}}
    for name in WIDE_STRINGS:
        value = {"S": _words(rng, rng.randint(1, 6))[:WIDE_STRING_LENGTH].rstrip()}
        image[name] = _optional(rng, value) if name in WIDE_OPTIONAL_STRINGS else value
    for name in WIDE_INTEGERS:
        high = 10**15 if name in WIDE_BIG_INTEGERS else 2_000_000_000
        value = {"N": str(rng.randint(-high, high))}
        image[name] = _optional(rng, value) if name in WIDE_OPTIONAL_INTEGERS else value
    for name, precision, scale in WIDE_DECIMALS:
        image[name] = {"N": _decimal(rng, precision, scale)}
    for name in WIDE_BOOLEANS:
        image[name] = {"BOOL": rng.random() < 0.5}
    image["profile"] = {
        "M": {
            "name": {"S": _words(rng, 2)},
            "level": {"N": str(rng.randint(1, 99))},
            "score": {"N": _money(rng, 0, 1_000)},
            "verified": {"BOOL": rng.random() < 0.7},
            "address": address(rng),
        }
    }
    image["items"] = {
        "L": [
            {
                "M": {
                    "sku": {"S": f"SKU-{rng.randint(10_000, 99_999)}"},
                    "quantity": {"N": str(rng.randint(1, 12))},
                    "unit_price": {"N": _money(rng, 1, 400)},
                }
            }
            for _ in range(rng.randint(1, 4))
        ]
    }
    image["labels"] = {"SS": rng.sample(TAGS, rng.randint(1, 4))}
    image["scores"] = {"L": [{"N": _money(rng, 0, 100)} for _ in range(rng.randint(3, 8))]}
    return image


def _timestamp(rng: random.Random) -> str:
    return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"


def _long_text(rng: random.Random) -> str:
    """
    Return about `LARGE_TEXT_CHARACTERS` characters of words in lines.
    """
    target = LARGE_TEXT_CHARACTERS + rng.randint(-2_000, 2_000)
    lines = []
    length = 0
    while length < target:
        line = _words(rng, rng.randint(5, 20))
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines)[:target].rstrip()


def large_image(rng: random.Random, item_id: str) -> dict[str, Any]:
    """
    Return one large item (about 100 KB) as a DynamoDB image in Lambda's JSON shape.
    """
    history = [
        {
            "M": {
                "at": {"S": _timestamp(rng)},
                "kind": {"S": rng.choice(STATUSES)},
                "amount": {"N": _money(rng, 0, 10_000)},
                "quantity": {"N": str(rng.randint(1, 500))},
                "ok": {"BOOL": rng.random() < 0.9},
                "tags": {"L": [{"S": tag} for tag in rng.sample(TAGS, 2)]},
                "detail": {"M": {"code": {"N": str(rng.randint(100, 999))}, "note": {"S": _words(rng, 2)}}},
            }
        }
        for _ in range(LARGE_HISTORY)
    ]
    return {
        "id": {"S": item_id},
        "customer_id": {"S": f"c-{rng.randint(1, 10**9)}"},
        "status": {"S": rng.choice(STATUSES)},
        "created_at": {"S": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:34:56.789Z"},
        "title": {"S": _words(rng, rng.randint(3, 10))},
        "total": {"N": _money(rng, 5, 50_000)},
        "version": {"N": str(rng.randint(1, 50))},
        "body": {"S": _long_text(rng)},
        "history": {"L": history},
    }


def make_wide_batch(size: int, *, seed: int = 20_260_202) -> Batch:
    """
    Return a mixed batch of `size` wide records and its pre-state, the same for every call.
    """
    return mixed_batch(
        size, random.Random(seed + size), wide_image, prefix="w", arn=WIDE_ARN, measured_sizes=True
    )


def make_large_batch(size: int, *, seed: int = 20_260_303) -> Batch:
    """
    Return a mixed batch of `size` large records and its pre-state, the same for every call.
    """
    return mixed_batch(
        size, random.Random(seed + size), large_image, prefix="l", arn=LARGE_ARN, measured_sizes=True
    )
