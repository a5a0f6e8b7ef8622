"""
Items files: a JSON list of items, or the output of `aws dynamodb scan`, in plain or DynamoDB JSON.
"""

from __future__ import annotations

from typing import Any

from dynastream.exceptions import MalformedEventError

__all__ = ["is_typed", "read_items"]


def is_typed(value: Any) -> bool:
    """
    Say whether `value` is an attribute value as DynamoDB JSON spells it (`{"N": "1"}`).
    """
    from dynastream._deserialize import FAST_DECODERS

    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FAST_DECODERS


def read_items(document: Any, input_format: str = "auto") -> list[dict[str, Any]]:
    """
    Return the items of an items file as Python values.

    A file is a JSON list of items, or the output of `aws dynamodb scan`
    (`{"Items": [...]}`). Items are plain JSON (numbers stay exact) or
    DynamoDB JSON (`{"total": {"N": "12.50"}}`, binary as base64).

    Args:
        document: The decoded file.
        input_format: `"plain"`, `"dynamodb"`, or `"auto"`: DynamoDB JSON when
            every value of every item is typed.

    Raises:
        MalformedEventError: Not a list of objects, or an item that is not
            valid DynamoDB JSON (named by its position and field).
    """
    from dynastream._deserialize import InvalidAttributeValue, deserialize_image

    items = document.get("Items") if isinstance(document, dict) else document
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedEventError('the items file must hold a JSON list of objects, or {"Items": [...]}')
    typed = input_format == "dynamodb" or (
        input_format == "auto"
        and bool(items)
        and all(item and all(is_typed(value) for value in item.values()) for item in items)
    )
    if not typed:
        return items
    converted = []
    for index, item in enumerate(items):
        try:
            converted.append(deserialize_image(item))
        except InvalidAttributeValue as error:
            raise MalformedEventError(f"item #{index}: {error.field('item')}: {error.reason}") from None
    return converted
