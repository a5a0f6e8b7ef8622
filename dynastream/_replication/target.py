"""
What a table writer writes: rows, deletions, and the table they go to, resolved for one dialect.

Shared by the writer and by each dialect's statements (`postgresql`, `mysql`,
`sqlite`), which depend on this module and never on each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import sqlalchemy as sa

from dynastream.schema import tombstones

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.engine import Dialect

__all__ = [
    "SQL_NULL",
    "Deletion",
    "Target",
    "Upsert",
    "bind_processor",
    "is_binary",
    "is_plain_json",
    "storage_type",
    "tombstone_upsert",
]

SQL_NULL = sa.null()  # a singleton: what a mapper gives for SQL NULL in a JSON column


class Upsert(NamedTuple):
    """
    One row to write.

    Its column values (in the writer's column order), its item key and its
    fixed-width sequence number. A named tuple: one is made per row of every
    batch, and a tuple is made several times quicker than a frozen class.
    """

    values: Sequence[Any]
    item_key: str
    sequence: str


@attrs.frozen
class Deletion:
    """
    One row to delete.

    Its primary key values (in key order), its item key, its fixed-width
    sequence number and the time of the REMOVE (what a soft-delete column
    receives).
    """

    key: Sequence[Any]
    item_key: str
    sequence: str
    deleted_at: datetime


def bind_processor(dialect: Dialect, column: sa.Column[Any]) -> Callable[[Any], Any] | None:
    """
    Return SQLAlchemy's bind processing of a column's type on `dialect`, if it has any.
    """
    processor: Callable[[Any], Any] | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def is_plain_json(column: sa.Column[Any], dialect: Dialect) -> bool:
    """
    Whether a column is SQLAlchemy's own JSON type (JSONB included) here.

    Such values travel nested in the chunk's JSON; a TypeDecorator's values go
    through its own processing instead.
    """
    return isinstance(column.type.dialect_impl(dialect), sa.JSON) and not isinstance(
        column.type, sa.TypeDecorator
    )


def storage_type(column: sa.Column[Any], dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """
    Return the type a column's values reach the driver as on `dialect`.

    Variants resolved, type decorators unwrapped to the type they store.
    """
    type_: sa.types.TypeEngine[Any] = column.type.dialect_impl(dialect)
    while isinstance(type_, sa.TypeDecorator):
        type_ = type_.load_dialect_impl(dialect).dialect_impl(dialect)
    return type_


def is_binary(column: sa.Column[Any], dialect: Dialect) -> bool:
    """
    Whether a column stores bytes: LargeBinary, BINARY, VARBINARY, BLOB, BYTEA...
    """
    return isinstance(storage_type(column, dialect), sa.types._Binary)


class Target:
    """
    A replicated table as its writer sees it on one dialect.

    Args:
        table: The replicated table.
        columns: The columns an upsert writes, in the order of `Upsert.values`;
            they must include the primary key and the sequence column.
        sequence_column: The column holding each row's sequence number.
        deleted_column: The soft-delete column, or `None` to delete rows.
        dialect: The dialect of the database written to.
        collations: The collation of each text column, as MySQL reports it:
            keys are matched under their column's own collation.
    """

    def __init__(
        self,
        table: sa.Table,
        *,
        columns: Sequence[str],
        sequence_column: str,
        deleted_column: str | None,
        dialect: Dialect,
        collations: Mapping[str, str] | None = None,
    ) -> None:
        self.table = table
        self.dialect = dialect
        self.collations = dict(collations or {})
        by_name = {column.name: column for column in table.columns}  # table.c is keyed by key, not name
        self.columns = [by_name[name] for name in columns]
        self.key_columns = list(table.primary_key.columns)
        self.sequence = by_name[sequence_column]
        self.deleted = None if deleted_column is None else by_name[deleted_column]
        self.sequence_index = list(columns).index(sequence_column)
        self.processors = [bind_processor(dialect, column) for column in self.columns]
        self.key_processors = [bind_processor(dialect, column) for column in self.key_columns]
        # Identifiers as the dialect quotes them: statements are built from these only.
        preparer = dialect.identifier_preparer
        self.quote = preparer.quote
        self.quoted_table = preparer.format_table(table)
        self.quoted_tombstones = preparer.format_table(tombstones)
        self.quoted_columns = [preparer.quote(c.name) for c in self.columns]
        self.quoted_keys = [preparer.quote(c.name) for c in self.key_columns]
        self.quoted_sequence = preparer.quote(self.sequence.name)

    def processed(self, row: Upsert) -> list[Any]:
        """
        Return a row's values as the driver takes them.

        That is SQLAlchemy's bind processing of each column type, user type
        decorators included.
        """
        return [
            None if value is None or value is SQL_NULL else value if processor is None else processor(value)
            for processor, value in zip(self.processors, row.values, strict=True)
        ]

    def processed_key(self, deletion: Deletion) -> list[Any]:
        """
        Return a deletion's key values as the driver takes them.
        """
        return [
            value if processor is None or value is None else processor(value)
            for processor, value in zip(self.key_processors, deletion.key, strict=True)
        ]


def tombstone_upsert(insert: Callable[[sa.Table], Any]) -> sa.Executable:
    """
    Return the upsert of a tombstone whose sequence number only moves forward.

    `INSERT ... ON CONFLICT DO UPDATE ... WHERE`, spelled alike by PostgreSQL
    and SQLite.
    """
    statement = insert(tombstones)
    upsert: sa.Executable = statement.on_conflict_do_update(
        index_elements=[tombstones.c.table_name, tombstones.c.item_key],
        set_={
            "sequence_number": statement.excluded.sequence_number,
            "deleted_at": statement.excluded.deleted_at,
        },
        where=tombstones.c.sequence_number < statement.excluded.sequence_number,
    )
    return upsert
