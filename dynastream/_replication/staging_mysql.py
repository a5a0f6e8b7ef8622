"""
MySQL and MariaDB's staging path: each chunk loaded from a file into a temporary table, then upserted from it.

`LOAD DATA LOCAL INFILE` reads the chunk from a tab-separated file that the
driver sends: the server parses no JSON, which on a wide table costs far more
than the load (MariaDB's `JSON_TABLE` spends microseconds on every value it
extracts). The staging table has the columns `JSON_TABLE` defines in the chunk
statement (text, ASCII for hex and sequence numbers), and the same guarded
upsert reads it (`UNHEX` for binary, JSON text for JSON columns); `DELETE`
empties it for the next chunk of the transaction, and a rollback takes the
loaded rows with it (the table is InnoDB).

`LOCAL` needs the client's consent (PyMySQL's `local_infile=True`, which
dynastream never turns on by itself: a client that allows it lets the server
ask for any file the client can read) and the server's (`local_infile`).
https://dev.mysql.com/doc/refman/8.0/en/load-data-local-security.html
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dynastream._replication.chunks import JsonRows
from dynastream._replication.mysql import chunk_scalar, guarded_upsert, records_passed, stage_charset
from dynastream._replication.stage import ensure_stage, stage_name
from dynastream._replication.target import SQL_NULL, is_binary

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

    from dynastream._replication.target import Target, Upsert

__all__ = ["MySQLStaging"]

# The connection's `info` entry: why the staging path cannot work on it (LOAD DATA LOCAL
# refused, no CREATE TEMPORARY TABLES privilege), or "" when it can.
_REFUSED = "dynastream_staging_refused"

# LOAD DATA's default format: fields terminated by a tab, lines by a newline,
# escaped by a backslash, `\N` for NULL; a backslash, tab, newline, carriage
# return and NUL in text are escaped, so that they are read back as themselves.
# https://dev.mysql.com/doc/refman/8.0/en/load-data.html
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"})
_NULL = "\\N"

# The client capability that allows LOAD DATA LOCAL (pymysql.constants.CLIENT.LOCAL_FILES):
# https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
_CLIENT_LOCAL_FILES = 128
# ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR: no CREATE TEMPORARY TABLES privilege.
_ACCESS_DENIED = (1044, 1142)


def tsv_field(value: Any) -> str:
    """
    Return a staged value as a field of LOAD DATA's default format.

    Spelled as `JSON_TABLE` gives the chunk's JSON scalar as text: the
    server converts it to the column's type alike.
    """
    kind = value.__class__
    if kind is str:
        text: str = value
        # Nothing to escape in most text: tab, newline, carriage return and NUL are not printable.
        return text if text.isprintable() and "\\" not in text else text.translate(_ESCAPES)
    if value is None or value is SQL_NULL:
        return _NULL
    if kind is int or kind is Decimal:
        return str(value)
    if kind is float:
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    return tsv_field(chunk_scalar(value))


class MySQLStaging:
    """
    The staging path of one table's upserts on MySQL and MariaDB.

    Args:
        target: The table written to.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.rows = JsonRows(target, chunk_scalar)
        dialect = target.dialect
        nested = self.rows.nested
        columns = [
            f"c{i} LONGTEXT CHARACTER SET {'utf8mb4' if nested[i] else stage_charset(target, c)}"
            for i, c in enumerate(target.columns)
        ]
        # InnoDB, whatever default_tmp_storage_engine says: its rows are rolled back.
        definition = f"({', '.join([*columns, 'item_key LONGTEXT CHARACTER SET ascii'])}) ENGINE=InnoDB"
        self.name = stage_name(definition)
        # CREATE TEMPORARY TABLE does not commit the transaction, and ROLLBACK does not drop it:
        # https://dev.mysql.com/doc/refman/8.0/en/implicit-commit.html
        self.ddl = f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.name} {definition}"
        names = [f"c{i}" for i in range(len(target.columns))]
        # The driver takes the file's name as a parameter (`%s`): no other `%` may appear.
        self.load_sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.name} CHARACTER SET utf8mb4"
            f" ({', '.join([*names, 'item_key'])})"
        )
        selected = ", ".join(
            f"UNHEX(v.c{i})" if is_binary(c, dialect) else f"v.c{i}" for i, c in enumerate(target.columns)
        )
        self.upsert_sql = sa.text(guarded_upsert(target, selected=selected, source=f"{self.name} AS v"))
        self.clear_sql = f"DELETE FROM {self.name}"  # noqa: S608 - a name of our own

    def prepare(self, connection: Connection) -> str | None:
        """
        Create the staging table on `connection` if it lacks it; or say why staging cannot work there.

        Whether LOAD DATA LOCAL works is asked once per connection (the
        server's setting is one round trip), then remembered in its `info`;
        so is a refused CREATE TEMPORARY TABLE (the user lacks the `CREATE
        TEMPORARY TABLES` privilege), which leaves the transaction as it was.

        Returns:
            `None`, or why the staging path cannot work on `connection`.
        """
        info = connection.info
        reason = info.get(_REFUSED)
        if reason is None:
            reason = info[_REFUSED] = _local_infile_refusal(connection)
        if reason:
            return reason
        try:
            ensure_stage(connection, self.name, self.ddl, transactional=False)
        except sa.exc.DBAPIError as error:
            if _error_code(error) not in _ACCESS_DENIED:
                raise
            info[_REFUSED] = reason = (
                "the user may not create temporary tables:"
                " GRANT CREATE TEMPORARY TABLES ON <database>.* TO <user>"
            )
            return reason
        return None

    def upsert(self, connection: Connection, rows: Sequence[Upsert], *, converted: bool) -> int:
        """
        Load `rows` into the staging table, then write each where it is the newest change.

        Returns:
            The rows that passed the tombstone check, as the chunk statement
            counts them (see `MySQLStatements.upsert`).
        """
        ensure_stage(connection, self.name, self.ddl, transactional=False)
        staged, field = self.rows.staged, tsv_field
        # tsv_field inlined for the most common value, text with nothing to escape.
        text = "".join(
            "\t".join(
                [
                    value
                    if value.__class__ is str and value.isprintable() and "\\" not in value
                    else field(value)
                    for value in staged(row, converted=converted)
                ]
            )
            + "\n"
            for row in rows
        )
        # Readable by this user only (mkstemp), and removed whatever happens.
        descriptor, path = tempfile.mkstemp(prefix="dynastream-", suffix=".tsv")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(text.encode())
            del text
            connection.exec_driver_sql(self.load_sql, (path,))
            connection.execute(self.upsert_sql, {"table_name": self.target.table.fullname})
            records = records_passed(connection)
            connection.exec_driver_sql(self.clear_sql)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return len(rows) if records is None else records


def _error_code(error: sa.exc.DBAPIError) -> object:
    arguments: tuple[object, ...] = getattr(error.orig, "args", ())
    return arguments[0] if arguments else None


def _local_infile_refusal(connection: Connection) -> str:
    """
    Return why LOAD DATA LOCAL cannot work on `connection`, or "" when it can.
    """
    driver = connection.dialect.driver
    if driver != "pymysql":
        return (
            f"it loads rows with PyMySQL's LOAD DATA LOCAL INFILE, not with {driver}:"
            " use a mysql+pymysql:// URL"
        )
    # The capability flags PyMySQL connected with: local_infile=True sets CLIENT_LOCAL_FILES.
    flags: int = getattr(connection.connection.dbapi_connection, "client_flag", 0)
    if not flags & _CLIENT_LOCAL_FILES:
        return (
            "the client does not allow LOAD DATA LOCAL INFILE: add local_infile=1 to the query of"
            " DYNASTREAM_DATABASE_URL (or connect_args={'local_infile': True} to an engine of your own);"
            " it lets the server read files the client can read, so allow it only for a server you trust"
        )
    if not connection.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar():
        return (
            "the server refuses LOAD DATA LOCAL INFILE: set its local_infile variable to ON"
            " (Aurora MySQL: in the DB cluster parameter group)"
        )
    return ""
