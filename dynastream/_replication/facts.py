"""
What the database says about a replicated table, beyond its SQLAlchemy definition.

The built-in replication asks once per process and table, on the first batch:

- the character set of each text column (MySQL, MariaDB) or the database's
  encoding (PostgreSQL), so that text a column cannot hold is refused with an
  error naming the record and the column, rather than replaced by `?`;
- the collation of each text key column, which must compare byte for byte:
  DynamoDB keys `abc`, `ABC` and `abc ` are three items, and a collation that
  ignores case or trailing spaces would make them one row.

SQLite has no server to ask: its key columns are checked as declared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from dynastream.exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import sqlalchemy as sa
    from sqlalchemy import Connection

__all__ = ["TableFacts", "check_key_collations", "read_table_facts"]

# Collations under which equal means the same bytes: binary ones that do not
# pad with spaces. MySQL 8.0's `utf8mb4_bin` is PAD SPACE ("abc" = "abc ");
# `utf8mb4_0900_bin` is NO PAD
# (https://dev.mysql.com/doc/refman/8.0/en/charset-binary-collations.html);
# MariaDB's are the `*_nopad_bin` ones
# (https://mariadb.com/kb/en/supported-character-sets-and-collations/).
_MYSQL_EXACT_SUFFIXES = ("_nopad_bin", "_0900_bin")


@attrs.frozen
class TableFacts:
    """
    The character sets and collations of a table's columns, as the database reports them.

    Attributes:
        charsets: Column name to the character set its text is stored in
            (MySQL's `CHARACTER_SET_NAME`; on PostgreSQL the server encoding,
            for every column). Columns that hold no text are absent.
        collations: Column name to its collation (MySQL; PostgreSQL when it
            is nondeterministic, with `nondeterministic` set).
        nondeterministic: Columns whose PostgreSQL collation is not
            deterministic (distinct strings may compare equal).
        found: Whether the table was found at all.
    """

    charsets: Mapping[str, str] = attrs.field(factory=dict)
    collations: Mapping[str, str] = attrs.field(factory=dict)
    nondeterministic: frozenset[str] = frozenset()
    found: bool = False


def read_table_facts(connection: Connection, table: sa.Table) -> TableFacts:
    """
    Ask the database about `table`'s columns (one or two small queries).

    Returns empty facts on SQLite, and on a table the database does not have
    (its first write fails anyway, and the facts are asked again next time).
    """
    dialect = connection.dialect
    if dialect.name in ("mysql", "mariadb"):
        return _mysql_facts(connection, table)
    if dialect.name == "postgresql":
        return _postgresql_facts(connection, table)
    return TableFacts()


def _mysql_facts(connection: Connection, table: sa.Table) -> TableFacts:
    import sqlalchemy as sa

    rows = connection.execute(
        sa.text(
            "SELECT COLUMN_NAME, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :name"
        ),
        {"schema": table.schema, "name": table.name},
    ).all()
    return TableFacts(
        charsets={name: charset for name, charset, _ in rows if charset},
        collations={name: collation for name, _, collation in rows if collation},
        found=bool(rows),
    )


def _postgresql_facts(connection: Connection, table: sa.Table) -> TableFacts:
    import sqlalchemy as sa

    qualified = connection.dialect.identifier_preparer.format_table(table)
    encoding = connection.scalar(sa.text("SELECT current_setting('server_encoding')"))
    found = connection.scalar(sa.text("SELECT to_regclass(:name) IS NOT NULL"), {"name": qualified})
    nondeterministic: list[str] = []
    if found and (connection.dialect.server_version_info or (0,)) >= (12,):  # collisdeterministic: 12+
        nondeterministic = list(
            connection.scalars(
                sa.text(
                    "SELECT a.attname FROM pg_attribute AS a JOIN pg_collation AS c ON c.oid = a.attcollation"
                    " WHERE a.attrelid = to_regclass(:name) AND a.attnum > 0 AND NOT a.attisdropped"
                    " AND NOT c.collisdeterministic"
                ),
                {"name": qualified},
            )
        )
    text_encoding = (
        str(encoding).lower() if encoding and str(encoding).upper() not in ("UTF8", "SQL_ASCII") else None
    )
    return TableFacts(
        charsets={} if text_encoding is None else {c.name: text_encoding for c in table.columns},
        nondeterministic=frozenset(nondeterministic),
        found=bool(found),
    )


def check_key_collations(table: sa.Table, facts: TableFacts, dialect: Any) -> None:
    """
    Refuse a table whose text key columns do not compare byte for byte.

    Raises:
        ConfigurationError: A key column's collation ignores case, accents or
            trailing spaces (MySQL, MariaDB, SQLite's NOCASE and RTRIM) or is
            nondeterministic (PostgreSQL). The message says what to declare.
    """
    for column in table.primary_key.columns:
        problem = _key_problem(column, facts, dialect)
        if problem is not None:
            raise ConfigurationError(
                f"key column {table.fullname}.{column.name} {problem}. DynamoDB keys differ in any"
                " character: 'abc', 'ABC' and 'abc ' are three items, and here they would be one row"
                f" (and a REMOVE of one would delete another). {_remedy(column, dialect)}"
            )


def _key_problem(column: sa.Column[Any], facts: TableFacts, dialect: Any) -> str | None:
    if dialect.name in ("mysql", "mariadb"):
        return _mysql_key_problem(column, facts, dialect)
    if dialect.name == "postgresql":
        if column.name in facts.nondeterministic:
            return "has a nondeterministic collation, under which different strings can compare equal"
        if getattr(column.type, "__visit_name__", "").upper() == "CITEXT":
            return "is CITEXT, which compares text ignoring case"
        return None
    declared = str(getattr(column.type, "collation", None) or "").upper()
    if dialect.name == "sqlite" and declared in ("NOCASE", "RTRIM"):
        return f"is declared with the collation {declared}, which ignores case or trailing spaces"
    return None


def _mysql_key_problem(column: sa.Column[Any], facts: TableFacts, dialect: Any) -> str | None:
    import sqlalchemy as sa

    from dynastream._replication.target import storage_type

    collation = facts.collations.get(column.name)
    if (
        collation is None
        or not isinstance(storage_type(column, dialect), sa.String)  # a UUID's hex digits, say
        or collation == "binary"
        or collation.endswith(_MYSQL_EXACT_SUFFIXES)
    ):
        return None
    return f"compares text under the collation {collation}, which ignores case or trailing spaces"


def _remedy(column: sa.Column[Any], dialect: Any) -> str:
    length = getattr(column.type, "length", None)
    size = "n" if length is None else str(length)
    if dialect.name in ("mysql", "mariadb"):
        collation = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_0900_bin"
        return (
            f"Declare it dynastream.ExactString({size}) (VARCHAR({size}) COLLATE {collation} here), or"
            f" ALTER TABLE ... MODIFY {column.name} VARCHAR({size}) COLLATE {collation}."
        )
    if dialect.name == "postgresql":
        return 'Declare it TEXT or VARCHAR with a deterministic collation (the database default, or "C").'
    return "Declare it without a collation (SQLite's BINARY compares byte for byte)."
