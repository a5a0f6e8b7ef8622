"""
Deserializing images: dynastream's `deserialize_image` against boto3's `TypeDeserializer`.

Both work on the same realistic order images (15 attributes: strings, numbers,
a string set, a binary, a nested map and a list of maps), each in the shape it
is given in practice: dynastream gets Lambda's JSON (binary as base64 text,
parsed as the Lambda runtime parses it); boto3 gets what botocore hands it
(binary as bytes).
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from dynastream._deserialize import deserialize_image

from . import best_times

__all__ = ["TARGET", "address", "order_item", "run"]

TARGET = 2.0  # dynastream / boto3, the hot-path issue's target

CITIES = ["Lyon", "Porto", "Gdańsk", "Zürich", "Dublin", "Valencia", "Tallinn"]
STATUSES = ["NEW", "PAID", "PACKED", "SHIPPED", "DELIVERED"]
TAGS = ["priority", "gift", "b2b", "fragile", "promo", "repeat", "international"]


def address(rng: random.Random) -> dict[str, Any]:
    """
    Return a nested address map (with a map of coordinates), typed as DynamoDB sends it.
    """
    return {
        "M": {
            "street": {"S": f"{rng.randint(1, 300)} Rue de la République"},
            "city": {"S": rng.choice(CITIES)},
            "postcode": {"S": f"{rng.randint(1000, 99999)}"},
            "location": {
                "M": {
                    "lat": {"N": f"{rng.randint(-89, 89)}.{rng.randint(0, 999_999):06d}"},
                    "lon": {"N": f"{rng.randint(-179, 179)}.{rng.randint(0, 999_999):06d}"},
                }
            },
        }
    }


def _money(rng: random.Random, low: int, high: int) -> str:
    cents = rng.randint(low * 100, high * 100)
    return f"{cents // 100}.{cents % 100:02d}"


def order_item(rng: random.Random) -> dict[str, Any]:
    """
    Return one order as a DynamoDB item in boto3's shape (binary as bytes).
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
    return {
        "id": {"S": f"{rng.getrandbits(128):032x}"},
        "customer_id": {"S": f"c-{rng.randint(1, 10**9)}"},
        "email": {"S": f"user{rng.randint(1, 10**6)}@example.com"},
        "status": {"S": rng.choice(STATUSES)},
        "created_at": {"S": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:34:56.789Z"},
        "total": {"N": _money(rng, 5, 5_000)},
        "quantity": {"N": str(rng.randint(1, 40))},
        "discount_rate": {"N": rng.choice(["0", "0.05", "0.10", "0.15", "0.125"])},
        "tags": {"SS": rng.sample(TAGS, rng.randint(1, 4))},
        "is_gift": {"BOOL": rng.random() < 0.2},
        "gift_message": {"NULL": True},
        "address": address(rng),
        "lines": {"L": lines},
        "signature": {"B": rng.randbytes(32)},
        "version": {"N": str(rng.randint(1, 50))},
    }


def _lambda_json(value: Any) -> Any:
    """The item as Lambda's JSON carries it: binary as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {name: _lambda_json(member) for name, member in value.items()}
    if isinstance(value, list):
        return [_lambda_json(member) for member in value]
    return value


def _plain(value: Any) -> Any:
    """boto3's result with its `Binary` wrappers unwrapped, to compare with dynastream's."""
    from boto3.dynamodb.types import Binary

    if isinstance(value, Binary):
        return value.value  # type: ignore[attr-defined]  # missing from boto3-stubs
    if isinstance(value, dict):
        return {name: _plain(member) for name, member in value.items()}
    if isinstance(value, list):
        return [_plain(member) for member in value]
    if isinstance(value, set):
        return {_plain(member) for member in value}
    return value


def run(*, quick: bool = False) -> None:
    """
    Measure images per second for both deserializers and print the ratio.
    """
    from boto3.dynamodb.types import TypeDeserializer

    count, repeat = (1_000, 3) if quick else (10_000, 9)
    rng = random.Random(20_260_101)
    boto3_images = [order_item(rng) for _ in range(count)]
    # Through JSON text, as the Lambda runtime hands the event over.
    lambda_images = json.loads(json.dumps(_lambda_json(boto3_images)))
    deserializer = TypeDeserializer()

    def with_dynastream() -> list[dict[str, Any]]:
        return [deserialize_image(image) for image in lambda_images]

    def with_boto3() -> list[dict[str, Any]]:
        return [
            {name: deserializer.deserialize(value) for name, value in image.items()} for image in boto3_images
        ]

    # Both must do the same work, or the ratio means nothing.
    if with_dynastream()[:50] != _plain(with_boto3()[:50]):
        raise RuntimeError("dynastream and boto3 disagree on the benchmark's images")

    best = best_times({"dynastream": with_dynastream, "boto3": with_boto3}, repeat=repeat)
    dynastream_rate = count / best["dynastream"]
    boto3_rate = count / best["boto3"]

    attributes = len(boto3_images[0])
    print(f"deserialize: {count:,} images of {attributes} attributes, best of {repeat} interleaved runs")
    print(f"  {'dynastream deserialize_image (Lambda JSON)':<44} {dynastream_rate:>10,.0f} images/s")
    print(f"  {'boto3 TypeDeserializer (bytes for B)':<44} {boto3_rate:>10,.0f} images/s")
    ratio = dynastream_rate / boto3_rate
    verdict = "met" if ratio >= TARGET else "not met"
    print(f"  {'ratio dynastream / boto3':<44} {ratio:>10.2f}x  (target >= {TARGET:.1f}x: {verdict})")
