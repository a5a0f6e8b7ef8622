"""
The mapper's hot loops: each slot's converter run on its attribute's value.

A slot is one column as `RowMapper` fills it: `(attribute, column,
converter, what a missing or NULL attribute gives, the JSON column's
converter of attribute values or None, the converter of N payloads)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dynastream._deserialize import FAST_DECODERS
from dynastream.exceptions import ColumnValueError

from .coerce import REQUIRED, Unfit, check_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dynastream._records import Item

__all__ = ["Slot", "convert_event_image", "convert_slots", "extras", "member_name", "missing"]

Slot = tuple[str, str, "Callable[[Any], Any]", Any, "Callable[[Any], Any] | None", "Callable[[str], Any]"]


def convert_slots(item: Item, slots: tuple[Slot, ...]) -> dict[str, Any]:
    """
    Run each slot's converter on its attribute's value: the mapper's hot loop.
    """
    row: dict[str, Any] = {}
    get = item.get
    attribute = column = ""
    try:
        for attribute, column, convert, fill, _, _ in slots:
            value = get(attribute)
            if value is not None:
                row[column] = convert(value)
            elif fill is not REQUIRED:
                row[column] = fill
            else:
                raise missing(item, attribute, column)
    except Unfit as unfit:
        raise ColumnValueError(unfit.reason, column=column, attribute=attribute) from None
    return row


def convert_event_image(image: Item, slots: tuple[Slot, ...]) -> dict[str, Any]:
    """
    `convert_slots` of an image as an event carries it; raises anything on any problem.
    """
    row: dict[str, Any] = {}
    get = image.get
    for attribute, column, convert, fill, typed, number in slots:
        value = get(attribute)
        if value is not None:
            (tag,) = value
            payload = value[tag]
            if tag == "S" and payload.__class__ is str:
                row[column] = convert(payload)
                continue
            if tag == "N" and payload.__class__ is str:
                row[column] = number(payload)
                continue
            if tag != "NULL":
                row[column] = convert(FAST_DECODERS[tag](payload)) if typed is None else typed(value)
                continue
            if payload is not True:
                raise Unfit("malformed NULL")
        if fill is REQUIRED:
            raise Unfit("missing")
        row[column] = fill
    return row


def extras(
    item: Item, names: Sequence[str], column: str, convert: Callable[[Any], Any], *, no_nul: bool
) -> dict[str, Any]:
    """
    Return the attributes `names` of `item` as the extra column's JSON object.
    """
    extras: dict[str, Any] = {}
    name = ""
    try:
        for name in names:
            extras[member_name(name, no_nul=no_nul)] = convert(item[name])
    except Unfit as unfit:
        raise ColumnValueError(unfit.reason, column=column, attribute=name) from None
    return extras


def member_name(name: str, *, no_nul: bool) -> str:
    """
    Return an attribute name that becomes a member name of the extra column.

    Like any text it must be valid Unicode, and on PostgreSQL hold no NUL
    (JSONB cannot).
    """
    if name.isascii() and not (no_nul and "\x00" in name):
        return name
    if no_nul and "\x00" in name:
        raise Unfit("an attribute name containing a NUL character, which PostgreSQL's JSONB cannot keep")
    return check_text(name)


def missing(item: Item, attribute: str, column: str) -> ColumnValueError:
    if attribute in item:
        return ColumnValueError("NULL for a column that needs a value", column=column, attribute=attribute)
    return ColumnValueError("no attribute for a column that needs a value", column=column, attribute=None)
