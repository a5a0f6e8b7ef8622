"""
The replication benchmark's hand-written Core strategy (b), on a tiny batch: the full path's rows, guarded.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import dynastream
from benchmarks.events import make_batch
from benchmarks.replication import CORE_TABLE, FULL_TABLE, Base, CoreUpsert, pre_state_rows, read_rows

pytestmark = pytest.mark.database

BATCH = make_batch(40, seed=15)


def prepare(engine: sa.Engine) -> dynastream.App:
    """
    Create the full path's and (b)'s tables on `engine`, each holding the batch's pre-state.
    """
    app = dynastream.App(engine=engine)
    app.replicate("Orders", into=FULL_TABLE)
    Base.metadata.create_all(engine, tables=[FULL_TABLE, CORE_TABLE])
    app.create_tables()
    rows = pre_state_rows(BATCH)
    with engine.begin() as connection:
        for table in (FULL_TABLE, CORE_TABLE):
            connection.execute(table.insert(), rows)
    return app


def test_hand_written_core_leaves_the_full_paths_rows(engine: sa.Engine) -> None:
    app = prepare(engine)
    assert {"batchItemFailures": []} == app.lambda_handler(BATCH.event, None)
    CoreUpsert(engine, CORE_TABLE).apply_event(BATCH.event)
    expected = read_rows(engine, FULL_TABLE)
    assert len(BATCH.pre_state) + BATCH.counts["INSERT"] - BATCH.counts["REMOVE"] == len(expected)
    assert expected == read_rows(engine, CORE_TABLE)


def test_hand_written_core_leaves_newer_rows_to_older_changes(engine: sa.Engine) -> None:
    """
    The pre-state's images of the keys the batch modified, upserted or removed again
    with their older sequence numbers, change nothing (keys the batch removed would
    come back: (b) keeps no tombstones).
    """
    prepare(engine)
    core = CoreUpsert(engine, CORE_TABLE)
    core.apply_event(BATCH.event)
    applied = read_rows(engine, CORE_TABLE)
    kept = {row[0] for row in applied}
    older = [(image, str(n)) for image, n in BATCH.pre_state if image["id"]["S"] in kept]
    modified = [
        {
            "eventName": "MODIFY",
            "dynamodb": {"Keys": {"id": image["id"]}, "NewImage": image, "SequenceNumber": n},
        }
        for image, n in older
    ]
    removed = [
        {"eventName": "REMOVE", "dynamodb": {"Keys": {"id": image["id"]}, "SequenceNumber": n}}
        for image, n in older
    ]
    assert BATCH.counts["MODIFY"] == len(older)
    core.apply_event({"Records": modified})
    core.apply_event({"Records": removed})
    assert applied == read_rows(engine, CORE_TABLE)
