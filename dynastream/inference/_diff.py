"""
A model against a fresh sample: attributes with no column, columns too narrow for what arrives.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from dynastream._replication.coerce import REQUIRED, Unfit

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    import sqlalchemy as sa

    from dynastream._replication.mapping import RowMapper

    from ._sample import Sample

__all__ = ["Difference", "diff_table"]

Kind = Literal["missing", "narrow", "unfilled"]
_DIALECTS: Final = ("sqlite", "postgresql", "mysql", "mariadb")
_LABELS: Final = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB"}


@attrs.frozen
class Difference:
    """
    One way a table and a sample disagree (names, counts and reasons: never a value).

    Attributes:
        kind: `"missing"`: sampled items carry an attribute that has no column
            (and there is no `extra=` column to keep it): the replication
            drops it. `"narrow"`: values the replication would refuse in
            their column, failing their batch. `"unfilled"`: a column that no
            sampled item fills (a renamed or retired attribute, or a rare one).
        attribute: The attribute, when there is one.
        column: The column, when there is one.
        items: Sampled items concerned.
        reason: What does not fit (`"40 characters do not fit String(32)"`),
            for `"narrow"`.
        dialects: The databases it holds on (`"sqlite"`, `"postgresql"`,
            `"mysql"`, `"mariadb"`), for `"narrow"`.
    """

    kind: Kind
    attribute: str | None
    column: str | None
    items: int
    reason: str = ""
    dialects: tuple[str, ...] = ()

    def describe(self) -> str:
        """
        Return one line for people.
        """
        if self.kind == "missing":
            return (
                f"missing: attribute {self.attribute!r} has no column ({self.items:,} sampled items carry it)"
            )
        if self.kind == "unfilled":
            return f"unfilled: column {self.column!r} is filled by no sampled item"
        where = ", ".join(_LABELS[dialect] for dialect in self.dialects)
        return (
            f"narrow: column {self.column!r} (attribute {self.attribute!r}) on {where}: {self.reason}"
            f" ({self.items:,} sampled items)"
        )


def diff_table(
    target: sa.Table | type[Any],
    sample: Sample,
    *,
    naming: Literal["exact", "snake_case"] = "exact",
    renames: Mapping[str, str] | None = None,
    extra: str | None = None,
    exclude: Collection[str] | None = None,
    dialects: Sequence[str] = _DIALECTS,
    row_mapper_for: Callable[[str], RowMapper] | None = None,
) -> list[Difference]:
    """
    Compare a replication target with a sample of its DynamoDB table.

    Each sampled item is mapped as the built-in replication would map it
    (the same `RowMapper`, on each of `dialects`): attributes that would be
    dropped, and values that would be refused, are what it reports.

    Args:
        target: The `sqlalchemy.Table` or declarative model.
        sample: Fresh items (`sample_table` or `read_sample`).
        naming: As `App.replicate` takes it.
        renames: As `App.replicate` takes it.
        extra: As `App.replicate` takes it: attributes with no column are kept
            there, and not reported missing.
        exclude: Columns the replication does not fill (by default
            `dynastream_sequence` and `dynastream_deleted_at` where the table
            has them).
        dialects: The databases to check the types for.
        row_mapper_for: Builds the mapper for a dialect name, instead of the
            arguments above (how an application's registration is checked).

    Returns:
        Missing attributes (most items first), then narrow columns, then
        unfilled columns.

    Raises:
        ConfigurationError: The mapping arguments do not fit the table.
        ValueError: An unknown dialect.
    """
    from dynastream._replication.columns import table_of
    from dynastream._replication.mapping import RowMapper

    unknown = sorted(set(dialects) - set(_DIALECTS))
    if unknown:
        raise ValueError(f"unknown dialect {', '.join(unknown)}: choose from {', '.join(_DIALECTS)}")
    table = table_of(target)
    if exclude is None:
        exclude = [
            c.name for c in table.columns if c.name in ("dynastream_sequence", "dynastream_deleted_at")
        ]

    def build(dialect: str) -> RowMapper:
        if row_mapper_for is not None:
            return row_mapper_for(dialect)
        return RowMapper(
            target, naming=naming, renames=renames, extra=extra, exclude=exclude, dialect=dialect
        )

    missing: Counter[str] = Counter()
    narrow: dict[tuple[str, str, str], Counter[str]] = {}  # what, to items by dialect
    filled: set[str] = set()
    for position, dialect in enumerate(dialects):
        mapper = build(dialect)
        for item in sample.items:
            slots, unmapped = _resolve(mapper, item)
            if position == 0 and mapper.extra is None:
                missing.update(unmapped)
            for attribute, column, convert, fill, *_ in slots:
                value = item.get(attribute) if attribute else None
                if value is None:
                    if fill is REQUIRED:
                        found = (attribute or column, column, "no value for a column that needs one")
                        narrow.setdefault(found, Counter())[dialect] += 1
                    continue
                filled.add(column)
                try:
                    convert(value)
                except Unfit as unfit:
                    found = (attribute, column, unfit.reason)
                    narrow.setdefault(found, Counter())[dialect] += 1
    differences = [Difference("missing", name, None, count) for name, count in _ranked(missing)]
    for (attribute, column, reason), where in sorted(narrow.items(), key=lambda entry: entry[0]):
        ordered = tuple(d for d in dialects if d in where)
        differences.append(Difference("narrow", attribute, column, max(where.values()), reason, ordered))
    skipped = set(exclude) | ({extra} if extra else set())
    differences += [
        Difference("unfilled", None, c.name, 0)
        for c in table.columns
        if c.name not in filled and c.name not in skipped and c.computed is None and not c.primary_key
    ]
    return differences


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


def _resolve(mapper: RowMapper, item: dict[str, Any]) -> tuple[Sequence[Any], Sequence[str]]:
    """
    Return the mapper's slots for `item` (attribute, column, converter, fill...) and its unmapped names.
    """
    slots = mapper._shape(item)[0] if mapper.snake_case else mapper._slots  # the mapper's own resolution
    return slots, mapper.unmapped_attributes(item)
