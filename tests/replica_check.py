"""
Is a replica equal to its items? Checked without the mapper: each value as an exact replica keeps it.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from dynastream._replication.columns import snake_case


def json_form(value: Any) -> Any:
    """A DynamoDB value as JSON keeps it: sets as sorted arrays, binary as base64, numbers as numbers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: json_form(member) for key, member in value.items()}
    if isinstance(value, list):
        return [json_form(member) for member in value]
    if isinstance(value, (set, frozenset)):
        return [json_form(member) for member in sorted(value)]
    return value


def same(item_value: Any, stored: Any, column_type: Any) -> bool:
    """Whether `stored` (as read back) is `item_value` exactly."""
    if item_value is None:
        return stored is None
    if isinstance(column_type, sa.JSON):
        return bool(json_form(item_value) == stored)
    if isinstance(stored, memoryview):
        stored = bytes(stored)
    if isinstance(item_value, Decimal):
        if isinstance(stored, str):  # a text column keeps a number as its text
            stored = Decimal(stored)
        return isinstance(stored, (int, Decimal)) and not isinstance(stored, bool) and stored == item_value
    return bool(type(item_value) is type(stored) and item_value == stored)


def _key(values: list[Any], numeric: list[bool]) -> tuple[Any, ...]:
    # A number key may be kept in a text column (as its text): compared as numbers.
    return tuple(
        Decimal(v) if number else bytes(v) if isinstance(v, memoryview) else v
        for v, number in zip(values, numeric, strict=True)
    )


def assert_replica_equals(
    engine: sa.Engine,
    table: sa.Table,
    items: list[dict[str, Any]],
    keys: list[str],
    renames: dict[str, str],
    *,
    naming: str = "snake_case",
) -> int:
    """
    Assert that `table` holds exactly one row per item (the last of each key), equal value by value.

    Attribute `a` is in column `renames.get(a, snake_case(a))`; a column no attribute fills is NULL.
    Returns how many values were compared.
    """

    def column_of(attribute: str) -> str:
        return renames.get(attribute, snake_case(attribute) if naming == "snake_case" else attribute)

    key_columns = [column_of(name) for name in keys]
    numeric = [isinstance(items[0][name], Decimal) for name in keys] if items else []
    with engine.connect() as connection:
        result = connection.execute(sa.select(table))
        rows = {_key([row._mapping[c] for c in key_columns], numeric): row._mapping for row in result}
    latest = {_key([item[name] for name in keys], numeric): item for item in items}
    assert set(latest) == set(rows)
    compared = 0
    for key, item in latest.items():
        row = rows[key]
        for attribute, value in item.items():
            column = column_of(attribute)
            column_type = table.c[column].type.dialect_impl(engine.dialect)
            assert same(value, row[column], column_type), (attribute, column, type(value).__name__)
            compared += 1
        filled = {column_of(attribute) for attribute in item}
        for column in set(table.c.keys()) - filled - {"dynastream_sequence"}:
            assert row[column] is None, column
    return compared
