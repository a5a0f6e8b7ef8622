"""
DynamoDB attribute values (`{"N": "1.50"}`) to Python values, exactly and fast.

This runs on every attribute of every image of every record, so there are two
paths. The fast path is a flat table of decoders keyed by type tag, walked by
comprehensions, with one Python call per value and the shape checks left to
the exceptions that a malformed value raises anyway (a missing or extra tag, an
unknown tag, a payload of the wrong type). When anything goes wrong there, the
checked path walks the image again, value by value, to raise an error that
names the offending attribute; it is the reference for what is valid, and the
fast path accepts nothing the checked path refuses.

| DynamoDB | Python                                   |
| -------- | ---------------------------------------- |
| S        | `str`                                    |
| N        | `decimal.Decimal`, exact (never a float) |
| B        | `bytes` (base64 text decoded once)       |
| BOOL     | `bool`                                   |
| NULL     | `None`                                   |
| M        | `dict[str, Any]`                         |
| L        | `list[Any]`                              |
| SS       | `set[str]`                               |
| NS       | `set[Decimal]`                           |
| BS       | `set[bytes]`                             |

A set must have at least one member, each once (NS members compare as numbers):
DynamoDB stores nothing else, so an empty set or a repeated member is malformed.
DynamoDB strings are UTF-8, so a string or a name holding a lone surrogate (which
JSON's "\ud800" escape produces) is malformed too.
"""

from __future__ import annotations

import binascii
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._records import Item


__all__ = [
    "FAST_DECODERS",
    "InvalidAttributeValue",
    "deserialize_image",
    "deserialize_value",
    "fast_number",
    "type_name",
]


# The text DynamoDB sends for a number: optional sign, digits with an optional
# point, optional exponent. Decimal() alone would also take "NaN", "Infinity",
# "1_000" and surrounding white space, none of which DynamoDB can store;
# ASCII only, since \d and Decimal() also take other scripts' digits ("١٢").
_is_number_text = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII).fullmatch
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*").fullmatch
# JSON's "\ud800" escape gives a str holding half of a surrogate pair, which no
# UTF-8 text can hold (DynamoDB strings are UTF-8): left in, it fails much later,
# in a driver or a log line, as a bare UnicodeEncodeError. Each string is tested
# at C speed: str.isascii() clears most, str.isprintable() most others (a
# surrogate is not printable), and only what is left (text with line breaks,
# say) is searched.
_lone_surrogate = re.compile("[\ud800-\udfff]").search
LONE_SURROGATE = "not valid Unicode: a lone surrogate"


class InvalidAttributeValue(Exception):  # noqa: N818 - internal signal, wrapped before it escapes
    """
    An attribute value is malformed; `path` is filled in on the way out.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        # From the bad value out: "[2]" for a list or set position, a
        # (name, position) pair for a member of a map or an attribute of an image.
        self.path: list[str | tuple[str, int]] = []

    def field(self, prefix: str) -> str:
        """
        Return the path of the bad value below `prefix`.

        An image's attribute is named (`.lines`); a map's members, whose names
        are often data (an e-mail address as a key), by position from 1
        (`.prefs.#2`), as list members are (`[0]`).
        """
        labels = []
        for depth, step in enumerate(reversed(self.path)):
            if isinstance(step, str):
                labels.append(step)
            elif depth == 0:
                labels.append(_member_label(step[0]))
            else:
                labels.append(f".#{step[1] + 1}")
        return prefix + "".join(labels)


_JSON_TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "number",
    float: "number",
    Decimal: "number",
    str: "string",
    dict: "object",
    list: "array",
    type(None): "null",
    bytes: "bytes",
}


def type_name(value: object) -> str:
    """
    Name a value's type as the event's author would: JSON names where they fit.
    """
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def is_unicode(text: str) -> bool:
    """
    Return whether `text` is valid Unicode, so can be encoded as UTF-8: it holds no lone surrogate.
    """
    return text.isascii() or text.isprintable() or not _lone_surrogate(text)


def _string(value: Any) -> str:
    if isinstance(value, str):
        if value.isascii() or value.isprintable() or not _lone_surrogate(value):
            return str(value)
        raise InvalidAttributeValue(LONE_SURROGATE)
    raise InvalidAttributeValue(f"'S' value must be a string, got {type_name(value)}")


def _number(value: Any) -> Decimal:
    if type(value) is str and _is_number_text(value):
        return Decimal(value)
    if type(value) is str:
        raise InvalidAttributeValue("'N' value is not a decimal number")
    raise InvalidAttributeValue(
        f"'N' value must be a string of digits, got {type_name(value)}"
        " (DynamoDB sends numbers as text so that they stay exact)"
    )


def _binary(value: Any) -> bytes:
    # Lambda events carry base64 text; boto3 and GetRecords via botocore have
    # already decoded it to bytes. Decoding by type means exactly once.
    if type(value) is str:
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise InvalidAttributeValue("'B' value is not valid base64") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidAttributeValue(f"'B' value must be base64 text or bytes, got {type_name(value)}")


def _boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise InvalidAttributeValue(f"'BOOL' value must be true or false, got {type_name(value)}")


def _null(value: Any) -> None:
    if value is True:
        return
    raise InvalidAttributeValue("'NULL' value must be true")


def _member_label(name: str) -> str:
    # repr() escapes a lone surrogate in the name: the path stays valid text.
    if _IDENTIFIER(name):
        return "." + name
    return f"[{name!r}]"


def _map(value: Any) -> Item:
    if not isinstance(value, dict):
        raise InvalidAttributeValue(f"'M' value must be an object, got {type_name(value)}")
    return _members(value)


def _members(value: dict[Any, Any]) -> Item:
    # The members of a map, or the attributes of an image: each name, then its value.
    try:
        return {_name(name): deserialize_value(member) for name, member in value.items()}
    except InvalidAttributeValue as error:
        _locate_in_map(value, error)
        raise


def _name(name: Any) -> Any:
    if name.__class__ is str and not is_unicode(name):
        raise InvalidAttributeValue(LONE_SURROGATE)
    return name


def _locate_in_map(value: dict[Any, Any], error: InvalidAttributeValue) -> None:
    for position, (name, member) in enumerate(value.items()):
        try:
            _name(name)
            deserialize_value(member)
        except InvalidAttributeValue:
            error.path.append((str(name), position))
            return


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidAttributeValue(f"'L' value must be an array, got {type_name(value)}")
    try:
        return [deserialize_value(member) for member in value]
    except InvalidAttributeValue as error:
        for position, member in enumerate(value):
            try:
                deserialize_value(member)
            except InvalidAttributeValue:
                error.path.append(f"[{position}]")
                break
        raise


def _set_of(tag: str, convert: Callable[[Any], Any]) -> Callable[[Any], set[Any]]:
    # DynamoDB sets hold at least one member, each once: it refuses to store an
    # empty set or repeated members (numbers compare by value, so "1.5" and
    # "1.50" are the same member), so a record carrying either is malformed
    # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.SetTypes).
    def decode(value: Any) -> set[Any]:
        if not isinstance(value, list):
            raise InvalidAttributeValue(f"'{tag}' value must be an array, got {type_name(value)}")
        try:
            members = {convert(member) for member in value}
        except InvalidAttributeValue as error:
            for position, member in enumerate(value):
                try:
                    convert(member)
                except InvalidAttributeValue:
                    error.reason = f"'{tag}' member: {error.reason}"
                    error.path.append(f"[{position}]")
                    break
            raise
        if len(members) != len(value) or not members:
            raise _set_problem(tag, value, convert)
        return members

    return decode


def _set_problem(tag: str, value: list[Any], convert: Callable[[Any], Any]) -> InvalidAttributeValue:
    if not value:
        reason = f"'{tag}' value is an empty set (a DynamoDB set has at least one member)"
        return InvalidAttributeValue(reason)
    seen: set[Any] = set()
    error = InvalidAttributeValue(f"'{tag}' member: repeats an earlier member (set members are unique)")
    for position, member in enumerate(value):
        converted = convert(member)
        if converted in seen:
            error.path.append(f"[{position}]")
            break
        seen.add(converted)
    return error


def _set_string(value: Any) -> str:
    if type(value) is str:
        if value.isascii() or value.isprintable() or not _lone_surrogate(value):
            return value
        raise InvalidAttributeValue(LONE_SURROGATE)
    raise InvalidAttributeValue(f"must be a string, got {type_name(value)}")


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "S": _string,
    "N": _number,
    "B": _binary,
    "BOOL": _boolean,
    "NULL": _null,
    "M": _map,
    "L": _list,
    "SS": _set_of("SS", _set_string),
    "NS": _set_of("NS", _number),
    "BS": _set_of("BS", _binary),
}


def deserialize_value(attribute_value: Any) -> Any:
    """
    Return the Python value of one DynamoDB attribute value.

    Raises:
        InvalidAttributeValue: The value has no type tag, several, an unknown
            one, or a payload that does not fit its tag.
    """
    if isinstance(attribute_value, dict) and len(attribute_value) == 1:
        for tag, payload in attribute_value.items():
            decoder = _DECODERS.get(tag)
            if decoder is not None:
                return decoder(payload)
            raise InvalidAttributeValue(f"unknown type tag {str(tag)[:20]!r}")
    raise InvalidAttributeValue(_shape_problem(attribute_value))


def _shape_problem(attribute_value: Any) -> str:
    if not isinstance(attribute_value, dict):
        return f"attribute value must be an object with one type tag, got {type_name(attribute_value)}"
    if not attribute_value:
        return "attribute value has no type tag"
    tags = ", ".join(repr(str(tag)[:20]) for tag in list(attribute_value)[:4])
    return f"attribute value must have exactly one type tag, found {len(attribute_value)}: {tags}"


def fast_number(value: Any) -> Decimal:
    """
    Return an `N` payload as a `Decimal`, or raise (any exception) when it is not one.
    """
    # The same language as _is_number_text: Decimal() also takes white space
    # around the number, "_" between digits, other scripts' digits, NaN and
    # Infinity, and each of those is excluded here. White space is what
    # Decimal() and str.strip() both strip; strip() returns the very same str
    # when there is none, so one call and no copy tell (elsewhere than CPython
    # it may copy, and every number then takes the checked path: slower, as correct).
    if type(value) is str and value.isascii() and "_" not in value and value.strip() is value:
        number = Decimal(value)  # InvalidOperation for "" and any other text
        if number.is_finite():
            return number
    raise InvalidAttributeValue("'N' value is not a decimal number")


# `(tag,) = member` takes each attribute value's single type tag, raising
# ValueError when it has none or several; it is quicker than unpacking items().


def _fast_map(value: dict[str, Any]) -> Item:
    # S, N and M, most of every image, are decoded inline: a loop that saves a
    # call per value beats a comprehension that makes one.
    # Names and S values are tested for lone surrogates inline, as is_unicode does.
    out: Item = {}
    for name, member in value.items():
        if not (name.isascii() or name.isprintable()) and _lone_surrogate(name):
            raise InvalidAttributeValue(LONE_SURROGATE)
        (tag,) = member
        payload = member[tag]
        if tag == "S" and payload.__class__ is str:
            if not (payload.isascii() or payload.isprintable()) and _lone_surrogate(payload):
                raise InvalidAttributeValue(LONE_SURROGATE)
            out[name] = payload
        elif (
            tag == "N"
            and payload.__class__ is str
            and payload.isascii()
            and "_" not in payload
            and payload.strip() is payload  # as in fast_number
        ):
            number = Decimal(payload)
            if not number.is_finite():
                raise InvalidAttributeValue("'N' value is not a decimal number")
            out[name] = number
        elif tag == "M":
            out[name] = _fast_map(payload)
        else:
            out[name] = FAST_DECODERS[tag](payload)
    return out


def _fast_string(value: Any) -> str:
    if value.__class__ is str and (value.isascii() or value.isprintable() or not _lone_surrogate(value)):
        return value
    return _string(value)


def _fast_list(value: list[Any]) -> list[Any]:
    if type(value) is not list:
        raise InvalidAttributeValue("'L' value must be an array")
    return [FAST_DECODERS[tag](member[tag]) for member in value for (tag,) in (member,)]


FAST_DECODERS: dict[str, Callable[[Any], Any]] = {
    **_DECODERS,
    "S": _fast_string,
    "N": fast_number,
    "M": _fast_map,
    "L": _fast_list,
}


def deserialize_image(image: Any) -> Item:
    """
    Return an item (`Keys`, `NewImage` or `OldImage`) as a dict of Python values.

    Raises:
        InvalidAttributeValue: The image is not an object, or one of its values
            is malformed; `path` names the attribute.
    """
    if type(image) is dict:
        try:
            return _fast_map(image)
        except Exception:  # noqa: BLE001, S110 - any failure is diagnosed by the checked path below
            pass
    return _checked_image(image)


def _checked_image(image: Any) -> Item:
    if not isinstance(image, dict):
        raise InvalidAttributeValue(f"image must be an object, got {type_name(image)}")
    return _members(image)
