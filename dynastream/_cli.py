"""
The `dynastream` command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

_DIALECTS = ("postgresql", "mysql", "sqlite")


def _ddl(dialect_name: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateIndex, CreateTable

    from .schema import metadata

    dialect = sa.create_mock_engine(f"{dialect_name}://", executor=lambda *_: None).dialect
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        statements.extend(
            str(CreateIndex(index).compile(dialect=dialect)).strip() + ";" for index in table.indexes
        )
    return "\n\n".join(statements) + "\n"


def _create_tables(database_url: str | None) -> int:
    from ._app import App
    from .exceptions import ConfigurationError

    try:
        App(database_url=database_url).create_tables()
    except ConfigurationError as error:
        print(f"dynastream: {error}", file=sys.stderr)
        return 2
    print("dynastream: bookkeeping tables are in place", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the `dynastream` command and return its exit status.
    """
    parser = argparse.ArgumentParser(
        prog="dynastream",
        description="Replicate DynamoDB Streams into relational databases.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser(
        "create-tables",
        help="create dynastream's own tables (tombstones, applied-events ledger) if missing",
        description="Create dynastream's bookkeeping tables in the target database, if missing.",
    )
    create.add_argument(
        "--database-url",
        help="SQLAlchemy URL of the target database (default: $DYNASTREAM_DATABASE_URL)",
    )
    ddl = commands.add_parser(
        "ddl",
        help="print the DDL of dynastream's own tables, for schema migrations",
        description="Print the CREATE statements of dynastream's bookkeeping tables.",
    )
    ddl.add_argument(
        "--dialect", choices=_DIALECTS, default="postgresql", help="SQL dialect (default: postgresql)"
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "ddl":
        sys.stdout.write(_ddl(arguments.dialect))
        return 0
    return _create_tables(arguments.database_url)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
