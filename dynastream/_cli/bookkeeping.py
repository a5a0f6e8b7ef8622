"""
`dynastream create-tables`, `ddl` and `quarantine`: dynastream's own tables.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dynastream._cli.common import load_app
from dynastream.exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DIALECTS", "create_tables", "ddl", "quarantine_list", "quarantine_replay"]

DIALECTS = ("postgresql", "mysql", "sqlite")


def ddl(dialect_name: str) -> str:
    import sqlalchemy as sa
    from sqlalchemy.schema import CreateIndex, CreateTable

    from dynastream.schema import UNLOGGED_LOCKS, locks, metadata

    dialect = sa.create_mock_engine(f"{dialect_name}://", executor=lambda *_: None).dialect
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        statements.extend(
            str(CreateIndex(index).compile(dialect=dialect)).strip() + ";" for index in table.indexes
        )
        if table is locks and dialect.name == "postgresql":
            statements.append(UNLOGGED_LOCKS + ";")
    return "\n\n".join(statements) + "\n"


def create_tables(database_url: str | None) -> int:
    from dynastream._app import App

    try:
        App(database_url=database_url).create_tables()
    except ConfigurationError as error:
        print(f"dynastream: {error}", file=sys.stderr)
        return 2
    print("dynastream: bookkeeping tables are in place", file=sys.stderr)
    return 0


def quarantine_list(database_url: str | None, table: str | None) -> int:
    import sqlalchemy as sa

    from dynastream._app import App
    from dynastream.schema import quarantine

    query = sa.select(quarantine).order_by(quarantine.c.id)
    if table is not None:
        query = query.where(quarantine.c.table_name == table)
    with App(database_url=database_url).container.engine().connect() as connection:
        rows = connection.execute(query).all()
    for row in rows:
        print(
            f"{row.id}\t{row.table_name}\t{row.sequence_number.lstrip('0') or '0'}\t{row.event_id}"
            f"\t{row.quarantined_at:%Y-%m-%d %H:%M:%S}\t{'raw' if row.raw else '-'}\t{row.error_message}"
        )
    print(f"dynastream: {len(rows)} quarantined record(s)", file=sys.stderr)
    return 0


def quarantine_replay(app_spec: str, ids: Sequence[int]) -> int:
    import json

    import sqlalchemy as sa

    from dynastream.schema import quarantine

    app = load_app(app_spec)
    engine = app.container.engine()
    query = sa.select(quarantine).order_by(quarantine.c.id)
    if ids:
        query = query.where(quarantine.c.id.in_(ids))
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    failed = 0
    for row in rows:
        if row.raw is None:
            print(
                f"dynastream: {row.id}: no raw record kept (keep_raw=True keeps it); skipped", file=sys.stderr
            )
            failed += 1
            continue
        result = app.dispatch(json.loads(row.raw))
        if result.failure is None and not result.quarantined:
            # Applied: only now is it taken out (one that fails again stays, once).
            with engine.begin() as connection:
                connection.execute(quarantine.delete().where(quarantine.c.id == row.id))
            print(f"dynastream: {row.id}: applied", file=sys.stderr)
            continue
        failed += 1
        reason = result.failure.error if result.failure is not None else result.quarantined[0].error
        print(f"dynastream: {row.id}: failed again: {type(reason).__name__}", file=sys.stderr)
    return 1 if failed else 0
