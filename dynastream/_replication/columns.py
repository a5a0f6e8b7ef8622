"""
A mapper's configuration: the table it fills, the columns it may use, and attribute names as column names.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from dynastream.exceptions import ConfigurationError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["check_columns", "snake_case", "table_of"]


# --- configuration -----------------------------------------------------------


def table_of(target: Any) -> sa.Table:
    import sqlalchemy as sa

    if isinstance(target, sa.Table):
        return target
    mapper = sa.inspect(target, raiseerr=False) if isinstance(target, type) else None
    table = getattr(mapper, "local_table", None)
    if isinstance(table, sa.Table):
        return table
    raise ConfigurationError(
        f"a RowMapper needs a sqlalchemy.Table or a declarative model class, got {type(target).__name__}"
    )


def check_columns(table: sa.Table, excluded: set[str], renames: dict[str, str], extra: str | None) -> None:
    names = {c.name for c in table.columns}
    where = f"table {table.fullname!r}"
    unknown = sorted(excluded - names)
    if unknown:
        raise ConfigurationError(f"exclude names columns that {where} does not have: {', '.join(unknown)}")
    for column in table.primary_key.columns:
        if column.name in excluded:
            raise ConfigurationError(f"primary key column {column.name!r} cannot be excluded")
    seen: dict[str, str] = {}
    for attribute, column_name in renames.items():
        if column_name not in names:
            raise ConfigurationError(
                f"attribute {attribute!r} is renamed to column {column_name!r}, which {where} does not have"
            )
        if column_name in excluded or column_name == extra:
            raise ConfigurationError(
                f"attribute {attribute!r} is renamed to column {column_name!r}, which the mapper does not"
                " fill (it is excluded or keeps the extra attributes)"
            )
        if column_name in seen:
            raise ConfigurationError(
                f"attributes {seen[column_name]!r} and {attribute!r} are both renamed"
                f" to column {column_name!r}"
            )
        seen[column_name] = attribute
    if extra is not None:
        if extra not in names:
            raise ConfigurationError(f"extra names column {extra!r}, which {where} does not have")
        if extra in excluded or {c.name: c for c in table.columns}[extra].primary_key:
            raise ConfigurationError(f"extra column {extra!r} cannot be excluded or part of the primary key")


# --- names -----------------------------------------------------------------------

_ACRONYM_END = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD_START = re.compile(r"([a-z0-9])([A-Z])")
_SEPARATORS = re.compile(r"\W+")


@functools.lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """
    Return `name` in snake case: `orderId` and `OrderID` give `order_id`.
    """
    name = _ACRONYM_END.sub(r"\1_\2", name)
    name = _WORD_START.sub(r"\1_\2", name)
    return _SEPARATORS.sub("_", name).lower()
