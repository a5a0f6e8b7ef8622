"""
SQL that dynastream's own tables share across dialects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["insert_ignoring_duplicates"]


def insert_ignoring_duplicates(dialect_name: str, table: sa.Table) -> Any:
    """
    Return an INSERT into `table` that skips rows whose key is already there.

    `ON CONFLICT DO NOTHING` on PostgreSQL and SQLite; on MySQL and MariaDB
    `ON DUPLICATE KEY UPDATE` of the first primary key column to itself, not
    `INSERT IGNORE`, which would also turn a value too long for its column
    into a truncated one. PostgreSQL and SQLite can add `RETURNING`.
    """
    if dialect_name in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(table)
        first = next(iter(table.primary_key.columns))
        return statement.on_duplicate_key_update({first.name: first})
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()
