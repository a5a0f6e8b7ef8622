"""
PostgreSQL's staging path: each chunk `COPY`'d into a temporary table, then upserted from it.

`COPY ... FROM STDIN` (psycopg 3's `Cursor.copy`) streams the rows in the
text format, which the server parses column by column, as it would cast the
JSON chunk's text: the staging table's columns have the types the chunk
statement casts to (`cast_type`), and JSON values travel as JSON text into
`jsonb` columns. Then the same guarded upsert as the chunk statement's reads
the staging table, and `DELETE` empties it for the next chunk of the
transaction (`ON COMMIT DELETE ROWS` empties it at COMMIT too, and a rollback
takes the loaded rows with it).
https://www.postgresql.org/docs/current/sql-copy.html
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa

from dynastream._replication.chunks import JsonRows, scalar_text
from dynastream._replication.postgresql import cast_type, guarded_upsert
from dynastream._replication.stage import driver_error, ensure_stage, stage_name
from dynastream._replication.target import SQL_NULL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

    from dynastream._replication.target import Target, Upsert

__all__ = ["PostgreSQLStaging"]

# The connection's `info` entry: why it may not create temporary tables, or "" when it may.
_TEMPORARY = "dynastream_temporary"

# Types psycopg spells in COPY's text format as the chunk's JSON text would
# spell them, for the server to parse alike (binary as `\x` hex, times in ISO
# 8601, numbers and UUIDs as their text); None is NULL.
_AS_THEY_ARE = frozenset({str, int, float, Decimal, bytes, datetime, date, time, UUID, type(None)})


def _text(value: Any) -> Any:
    """
    Return a value of another type as the JSON chunk's text would give it: booleans as `true`/`false`.
    """
    if value is SQL_NULL:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    return scalar_text(value, binary_prefix="\\x")


class PostgreSQLStaging:
    """
    The staging path of one table's upserts on PostgreSQL.

    Args:
        target: The table written to.
    """

    driver = "psycopg"

    def __init__(self, target: Target) -> None:
        self.target = target
        self.rows = JsonRows(target, lambda value: scalar_text(value, binary_prefix="\\x"))
        dialect = target.dialect
        nested = self.rows.nested
        # JSON values are parsed as jsonb, as the chunk's are: a `json` column then
        # receives jsonb's text, as it does from a chunk.
        columns = [
            f"c{i} {'jsonb' if nested[i] else cast_type(c, dialect)}" for i, c in enumerate(target.columns)
        ]
        definition = f"({', '.join([*columns, 'item_key text'])}) ON COMMIT DELETE ROWS"
        # pg_temp named: the session's own temporary schema, whatever the search_path.
        self.name = f"pg_temp.{stage_name(definition)}"
        self.ddl = f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.name} {definition}"
        names = [f"c{i}" for i in range(len(target.columns))]
        self.copy_sql = f"COPY {self.name} ({', '.join([*names, 'item_key'])}) FROM STDIN"
        selected = ", ".join(
            f"CAST(v.c{i} AS {cast_type(c, dialect)})" if nested[i] else f"v.c{i}"
            for i, c in enumerate(target.columns)
        )
        self.upsert_sql = sa.text(
            guarded_upsert(
                target,
                selected=selected,
                source=f"{self.name} AS v",
                item_key="v.item_key",
                sequence=f"v.c{target.sequence_index}",
            )
        )
        self.clear_sql = f"DELETE FROM {self.name}"  # noqa: S608 - a name of our own

    def prepare(self, connection: Connection) -> str | None:
        """
        Create the staging table on `connection` if it lacks it; or say why staging cannot work there.

        Whether the user may create temporary tables (a database's
        `TEMPORARY` privilege, which PUBLIC has unless revoked) is asked
        once per connection, before the DDL: a refused statement would abort
        the batch's transaction.

        Returns:
            `None`, or why the staging path cannot work on `connection`.
        """
        if connection.dialect.driver != self.driver:
            return (
                f"it loads rows with psycopg 3's COPY, not with {connection.dialect.driver}:"
                " use a postgresql+psycopg:// URL"
            )
        info = connection.info
        reason = info.get(_TEMPORARY)
        if reason is None:
            allowed = connection.exec_driver_sql(
                "SELECT has_database_privilege(current_database(), 'TEMPORARY')"
            ).scalar()
            reason = info[_TEMPORARY] = (
                ""
                if allowed
                else "the user may not create temporary tables:"
                " GRANT TEMPORARY ON DATABASE <database> TO <user>"
            )
        if reason:
            return reason
        ensure_stage(connection, self.name, self.ddl, transactional=True)
        return None

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        """
        Load `rows` into the staging table, then write each where it is the newest change.

        Returns:
            The rows written, as the chunk statement counts them.
        """
        ensure_stage(connection, self.name, self.ddl, transactional=True)
        staged, as_they_are, text = self.rows.staged, _AS_THEY_ARE, _text
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(self.copy_sql) as copy:
                write = copy.write_row
                for row in rows:
                    write(
                        [
                            value if value.__class__ in as_they_are else text(value)
                            for value in staged(row, converted=converted)
                        ]
                    )
        except connection.dialect.loaded_dbapi.Error as error:
            raise driver_error(connection, error, self.copy_sql) from error
        finally:
            cursor.close()
        written = connection.execute(self.upsert_sql, {"table_name": self.target.table.fullname}).rowcount
        connection.exec_driver_sql(self.clear_sql)
        return written
