"""
Python values to DynamoDB attribute values, as Lambda's JSON carries them.

The reverse of `dynastream._deserialize`: numbers become their exact text
(`{"N": "12.50"}`), binary becomes base64 text, sets become SS, NS or BS. What
DynamoDB would refuse (floats, empty sets, numbers beyond 38 digits or its
exponent range) is refused here too, so a test never feeds the library an
event DynamoDB could not have sent.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["attribute_value", "image_size", "key_attribute_names", "key_values", "serialize_image"]

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number
_MAX_DIGITS = 38
_MIN_EXPONENT = -130
_MAX_EXPONENT = 125


def attribute_value(value: Any) -> dict[str, Any]:
    """
    Return the DynamoDB attribute value of `value`, as Lambda's JSON has it.

    | Python                                   | DynamoDB                       |
    | ---------------------------------------- | ------------------------------ |
    | `str`                                    | `{"S": ...}`                   |
    | `int`, `decimal.Decimal`                 | `{"N": "<exact text>"}`        |
    | `bytes`, `bytearray`                     | `{"B": "<base64 text>"}`       |
    | `bool`                                   | `{"BOOL": ...}`                |
    | `None`                                   | `{"NULL": true}`               |
    | a mapping with string keys               | `{"M": {...}}`                 |
    | `list`, `tuple`                          | `{"L": [...]}`                 |
    | `set`/`frozenset` of `str`               | `{"SS": [...]}` (sorted)       |
    | `set`/`frozenset` of `int` or `Decimal`  | `{"NS": [...]}` (sorted)       |
    | `set`/`frozenset` of `bytes`             | `{"BS": [...]}` (sorted)       |

    Args:
        value: The Python value.

    Returns:
        A one-key dict: the type tag and its payload.

    Raises:
        TypeError: A value of a type DynamoDB has no attribute type for (a
            `float`: use `decimal.Decimal`), or a set mixing types.
        ValueError: A value DynamoDB refuses: an empty set, a number that is
            not finite, has more than 38 significant digits, or lies outside
            1E-130 to 9.99...E+125.

    Examples:
        >>> from decimal import Decimal
        >>> attribute_value(Decimal("12.50"))
        {'N': '12.50'}
        >>> attribute_value({"tags": {"b", "a"}, "raw": bytes([0, 1])})
        {'M': {'tags': {'SS': ['a', 'b']}, 'raw': {'B': 'AAE='}}}
    """
    return _serialize(value, "")


def serialize_image(item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """
    Return an item as a DynamoDB image: each attribute as `attribute_value` has it.

    Args:
        item: Attribute name to Python value.

    Returns:
        Attribute name to attribute value, as in a record's `NewImage`.

    Raises:
        TypeError: An attribute name is not a string, or a value has no
            DynamoDB type; the message names the attribute's path.
        ValueError: A value DynamoDB refuses; the message names its path.

    Examples:
        >>> serialize_image({"id": "o-1", "total": 9, "paid": True})
        {'id': {'S': 'o-1'}, 'total': {'N': '9'}, 'paid': {'BOOL': True}}
    """
    if not isinstance(item, Mapping):
        raise TypeError(f"an item must be a mapping of attribute names to values, got {type(item).__name__}")
    return {_name(name, ""): _serialize(value, name) for name, value in item.items()}


def _name(name: Any, path: str) -> str:
    if not isinstance(name, str):
        where = f"{path}: " if path else ""
        raise TypeError(f"{where}attribute names must be strings, got {type(name).__name__}")
    return name


def _serialize(value: Any, path: str) -> dict[str, Any]:  # noqa: PLR0911 - one return per attribute type
    # bool before int: True is an int too.
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, Decimal)):
        return {"N": _number_text(value, path)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": _base64(value)}
    if isinstance(value, Mapping):
        return {
            "M": {
                _name(name, path): _serialize(member, f"{path}.{name}" if path else str(name))
                for name, member in value.items()
            }
        }
    if isinstance(value, (list, tuple)):
        return {"L": [_serialize(member, f"{path}[{index}]") for index, member in enumerate(value)]}
    if isinstance(value, (set, frozenset)):
        return _serialize_set(value, path)
    raise TypeError(f"{_where(path)}{_unsupported(value)}")


def _where(path: str) -> str:
    return f"attribute {path!r}: " if path else ""


def _unsupported(value: Any) -> str:
    if isinstance(value, float):
        return "float is not a DynamoDB number type (it is not exact): use decimal.Decimal"
    return f"{type(value).__name__} has no DynamoDB attribute type"


def _serialize_set(members: set[Any] | frozenset[Any], path: str) -> dict[str, Any]:
    if not members:
        raise ValueError(f"{_where(path)}DynamoDB does not store empty sets (leave the attribute out)")
    if all(isinstance(member, str) for member in members):
        return {"SS": sorted(members)}
    if all(isinstance(member, (int, Decimal)) and not isinstance(member, bool) for member in members):
        return {"NS": [_number_text(member, path) for member in sorted(members)]}
    if all(isinstance(member, (bytes, bytearray)) for member in members):
        return {"BS": [_base64(member) for member in sorted(bytes(member) for member in members)]}
    kinds = ", ".join(sorted({type(member).__name__ for member in members}))
    raise TypeError(
        f"{_where(path)}a set must hold only strings, only numbers (int or Decimal) or only bytes;"
        f" this one holds {kinds}"
    )


def _number_text(value: int | Decimal, path: str) -> str:
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{_where(path)}DynamoDB numbers are finite (no NaN or Infinity)")
    significant = "".join(map(str, number.as_tuple().digits)).strip("0")
    if significant:
        if len(significant) > _MAX_DIGITS:
            raise ValueError(f"{_where(path)}DynamoDB numbers have at most {_MAX_DIGITS} significant digits")
        if not _MIN_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
            raise ValueError(
                f"{_where(path)}DynamoDB numbers lie between 1E-130 and 9.99...E+125 in magnitude"
            )
    # int() text is exact and has no exponent; Decimal text keeps trailing zeros ("12.50").
    return str(value)


def _base64(value: bytes | bytearray) -> str:
    return base64.b64encode(value).decode("ascii")


def image_size(image: Mapping[str, Any]) -> int:
    """
    Return the approximate size in bytes of a serialized image, as DynamoDB counts it.

    Attribute names and strings count their UTF-8 bytes, binary its bytes,
    numbers about one byte per two significant digits plus one, booleans and
    nulls one byte, and maps and lists three bytes plus one per member
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
    """
    return sum(len(name.encode()) + _value_size(value) for name, value in image.items())


def _value_size(value: Mapping[str, Any]) -> int:  # noqa: PLR0911 - one return per attribute type
    [(tag, payload)] = value.items()
    if tag == "S":
        return len(payload.encode())
    if tag == "N":
        return _number_size(payload)
    if tag == "B":
        return len(base64.b64decode(payload))
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "M":
        return 3 + sum(len(name.encode()) + _value_size(member) + 1 for name, member in payload.items())
    if tag == "L":
        return 3 + sum(_value_size(member) + 1 for member in payload)
    if tag == "SS":
        return sum(len(member.encode()) for member in payload)
    if tag == "NS":
        return sum(_number_size(member) for member in payload)
    return sum(len(base64.b64decode(member)) for member in payload)  # BS


def _number_size(text: str) -> int:
    digits = "".join(map(str, Decimal(text).as_tuple().digits)).strip("0")
    return (len(digits) + 1) // 2 + 1


def key_attribute_names(names: Sequence[str], table: str | None) -> tuple[str, ...]:
    """
    Return a table's key attribute names (partition key, then sort key) as a tuple.

    Raises:
        ValueError: Not one or two non-empty strings.
    """
    key_names = (names,) if isinstance(names, str) else tuple(names)
    given: tuple[object, ...] = key_names
    if not given or len(given) > 2 or not all(isinstance(name, str) and name for name in given):
        where = f" of table {table!r}" if table is not None else ""
        raise ValueError(f"the keys{where} must be one or two attribute names (partition key, sort key)")
    return key_names


def key_values(item: Mapping[str, Any], names: Sequence[str], table: str, role: str) -> tuple[Any, ...]:
    """
    Return the values of `item`'s key attributes `names`, as DynamoDB takes them.

    Raises:
        TypeError: `item` is not a mapping, or a key value is not a string, a
            number or bytes (the only key types DynamoDB has); `role` names it.
        ValueError: `item` lacks a key attribute.
    """
    if not isinstance(item, Mapping):
        raise TypeError(f"{role} must be a mapping of attribute names to values, got {type(item).__name__}")
    values = []
    for name in names:
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
