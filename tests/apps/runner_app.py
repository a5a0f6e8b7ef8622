"""
An application the runner tests start in a subprocess (and use in-process).

It replicates `$RUNNER_TABLE` into `runner_items`, and a plain, non-idempotent
handler logs every record it is given into `runner_log`: a record applied twice
shows up twice, and the log's order is the order of application.

With `$RUNNER_HANG_AT_BATCH` set to k, the log handler stops for good inside the
process's k-th batch, in the middle of its transaction: a runner then cannot
finish before a test kills it, however fast or slow the machine is.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa

import dynastream

metadata = sa.MetaData()

items = sa.Table(
    "runner_items",
    metadata,
    sa.Column("id", dynastream.ExactString(64), primary_key=True),
    sa.Column("n", sa.Integer),
    sa.Column("note", sa.String(200)),
    dynastream.sequence_column(),
)

log = sa.Table(
    "runner_log",
    metadata,
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sequence_number", sa.String(40), nullable=False),
    sa.Column("item_id", sa.String(64), nullable=False),
)


def build_app(
    table_name: str,
    *,
    database_url: str | None = None,
    engine: sa.Engine | None = None,
    on_poison: Literal["report", "quarantine"] = "report",
    hang_at_batch: int | None = None,
) -> dynastream.App:
    """The application for `table_name`."""
    app = dynastream.App(database_url=database_url, engine=engine)
    app.replicate(table_name, into=items, on_poison=on_poison)
    batches = itertools.count(1)

    @app.handler(table_name, on_poison=on_poison)
    def log_each(records: Sequence[dynastream.StreamRecord[Any]], uow: dynastream.UnitOfWork) -> None:
        uow.connection().execute(
            log.insert(),
            [{"sequence_number": r.item_identifier, "item_id": str(r.keys["id"])} for r in records],
        )
        if next(batches) == hang_at_batch:
            time.sleep(600)  # until killed

    return app


def _hang_at_batch() -> int | None:
    text = os.environ.get("RUNNER_HANG_AT_BATCH")
    return int(text) if text else None


app = (
    build_app(os.environ["RUNNER_TABLE"], hang_at_batch=_hang_at_batch())
    if "RUNNER_TABLE" in os.environ
    else None
)
