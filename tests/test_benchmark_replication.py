"""
The replication benchmark on tiny batches: strategy (b) leaves the full path's rows, guarded; the growth part.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

import dynastream
from benchmarks import __main__ as cli
from benchmarks import growth, replication
from benchmarks.events import make_batch
from benchmarks.replication import (
    CORE_TABLE,
    FULL_TABLE,
    FULL_VARIANTS,
    VARIANT_TABLES,
    Base,
    CoreUpsert,
    Result,
    Strategy,
    check_same,
    full_path,
    pre_state_rows,
    read_rows,
    taken_path,
)
from benchmarks.wide_events import LARGE_HISTORY, make_large_batch, make_wide_batch

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.events import Batch

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


def test_the_full_path_otherwise_configured_leaves_the_same_rows(engine: sa.Engine) -> None:
    app = prepare(engine)
    assert {"batchItemFailures": []} == app.lambda_handler(BATCH.event, None)
    tables = list(VARIANT_TABLES.values())
    Base.metadata.create_all(engine, tables=tables)
    rows = pre_state_rows(BATCH)
    with engine.begin() as connection:
        for table in tables:
            connection.execute(table.insert(), rows)
    for label, (bulk_path, orjson) in FULL_VARIANTS.items():
        full_path(engine, VARIANT_TABLES[label], bulk_path, orjson=orjson)(BATCH.event)

    expected = read_rows(engine, FULL_TABLE)
    assert all(read_rows(engine, table) == expected for table in tables)


def test_the_report_names_the_bulk_path_the_full_path_took(engine: sa.Engine) -> None:
    prepare(engine)
    statements = full_path(engine, FULL_TABLE, "statements")
    staging = full_path(engine, FULL_TABLE, "staging")

    assert taken_path(engine, statements, BATCH) == "statements"
    mysql = engine.dialect.name in ("mysql", "mariadb")
    if mysql and "local_infile" not in engine.url.query:
        with pytest.raises(SystemExit, match="reported failures"):  # staging asked for, and impossible
            taken_path(engine, staging, BATCH)
        return
    expected = {"postgresql": "staging (COPY)"}.get(engine.dialect.name, "statements")
    assert taken_path(engine, staging, BATCH) == ("staging (LOAD DATA LOCAL INFILE)" if mysql else expected)


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


# --- the growth part: the standard, wide and large batches, the full path against (b) ----------


def test_wide_and_large_batches_are_what_the_report_says() -> None:
    wide, large = make_wide_batch(20), make_large_batch(10)
    assert {"INSERT": 12, "MODIFY": 6, "REMOVE": 2} == wide.counts
    assert {"INSERT": 6, "MODIFY": 3, "REMOVE": 1} == large.counts
    wide_images = [image for image, _ in wide.pre_state]
    for record in wide.event["Records"]:
        assert "table/WideItems/stream/" in record["eventSourceARN"]
        change = record["dynamodb"]
        wide_images += [change[name] for name in ("NewImage", "OldImage") if name in change]
    assert {100} == {len(image) for image in wide_images}
    for record in large.event["Records"]:
        assert "table/LargeItems/stream/" in record["eventSourceARN"]
    for image, _ in large.pre_state:
        assert 90_000 < len(json.dumps(image, separators=(",", ":"), ensure_ascii=False).encode()) < 120_000
        assert 55_000 < len(image["body"]["S"]) < 65_000
    # The largest large batch is one Lambda invocation's event.
    assert make_large_batch(growth.LARGE_SIZES[-1]).json_bytes < growth.LAMBDA_PAYLOAD_BYTES


def tiny_plan() -> list[tuple[growth.Variant, list[Batch]]]:
    return [
        (growth.STANDARD, [make_batch(20, seed=3)]),
        (growth.WIDE, [make_wide_batch(10), make_wide_batch(20)]),
        (growth.LARGE, [make_large_batch(10)]),
    ]


def test_growth_variants_leave_the_same_rows_on_both_paths(engine: sa.Engine) -> None:
    plan = tiny_plan()
    points = growth.measure(engine, "here", plan, 1)
    measured = [(variant.name, batch.size) for variant, batches in plan for batch in batches]
    assert measured == [(point.variant, point.size) for point in points]
    assert all(point.full > 0 and point.core > 0 and not point.reused for point in points)
    for variant, batches in plan:
        batch = batches[-1]  # the tables hold what the last batch left
        expected = read_rows(engine, variant.full_table)
        assert len(batch.pre_state) + batch.counts["INSERT"] - batch.counts["REMOVE"] == len(expected)
        assert expected == read_rows(engine, variant.core_table)
    wide = read_rows(engine, growth.WIDE.full_table)
    assert {101} == {len(row) for row in wide}  # 100 attributes and the sequence number
    assert any(row[33] is None for row in wide)  # s32, NULL half the time
    for row in read_rows(engine, growth.LARGE.full_table):
        assert len(row[7]) > 55_000  # body
        assert LARGE_HISTORY == len(row[8])  # history, read back as JSON


def test_the_growth_check_names_a_difference(engine: sa.Engine) -> None:
    batch = make_wide_batch(10)
    growth.measure(engine, "here", [(growth.WIDE, [batch])], 1)
    table = growth.WIDE.core_table
    with engine.begin() as connection:
        key = connection.execute(sa.select(sa.func.min(table.c.id))).scalar_one()
        connection.execute(table.update().where(table.c.id == key).values(d03=Decimal("-1.2345")))
    strategies = [
        Strategy("full", growth.WIDE.full_table, lambda event: None),
        Strategy("core", table, lambda event: None),
    ]
    message = (
        f"wide 10: 'core' left other rows than the full path .first difference at id '{key}', column 'd03'"
    )
    with pytest.raises(SystemExit, match=message):
        check_same(strategies, engine, batch, what="wide")


def point(variant: str, size: int, full: float, core: float, **changes: Any) -> growth.Point:
    values = {"engine": "postgresql", "json_bytes": size * 1_000, "reused": False, **changes}
    return growth.Point(variant=variant, size=size, full=full, core=core, **values)


def test_the_growth_report_prints_a_line_per_batch_and_a_verdict_per_variant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    points = [
        point("large", 40, 160, 200, json_bytes=5_400_000),
        point("standard", 10_000, 8_000, 10_000, json_bytes=16_800_000, reused=True),
        point("standard", 100, 4_000, 5_000, json_bytes=167_000, reused=True),
        point("wide", 100, 3_000, 2_000),
        point("wide", 1_000, 1_000, 2_000),  # three times the time per record: quadratic
        point("large", 10, 160, 200, json_bytes=1_300_000),
        point("wide", 100, 900, 1_000, engine="mysql"),
    ]
    growth.report(points, 3, {"postgresql": "PostgreSQL 15"}, notes=["a note"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("replication growth: ")
    assert lines[0].endswith("best of 3")
    text = "\n".join(lines)
    assert "results of the replication benchmark in this run, not measured twice" in text
    assert "40 records are 5.4 MB of event JSON (under Lambda's 6 MB invocation payload)" in text
    assert "  a note" in lines
    table = lines[lines.index(next(line for line in lines if line.lstrip().startswith("engine"))) :]
    assert (
        "engine     variant   records  bytes/rec  full rec/s  (b) rec/s  full/(b)  full MB/s"
        == table[0].strip()
    )
    rows = [line.split() for line in table[1:8]]
    assert [row[:3] for row in rows] == [
        ["postgresql", "standard", "100"],
        ["postgresql", "standard", "10,000*"],
        ["postgresql", "wide", "100"],
        ["postgresql", "wide", "1,000"],
        ["postgresql", "large", "10"],
        ["postgresql", "large", "40"],
        ["mysql", "wide", "100"],
    ]
    # bytes per record, both rates, their ratio and the full path's MB/s of event JSON
    assert ["1,680", "8,000", "10,000", "0.80x", "13.4"] == rows[1][3:]
    assert ["135,000", "160", "200", "0.80x", "21.6"] == rows[5][3:]
    assert any(line.startswith("  * over 6 MB of event JSON") for line in lines)
    verdicts = lines[lines.index(next(line for line in lines if "time per record" in line)) + 1 :]
    assert [line.split(":")[0].split() for line in verdicts] == [
        ["postgresql", "standard", "10,000", "vs", "100", "records"],
        ["postgresql", "wide", "1,000", "vs", "100", "records"],
        ["postgresql", "large", "40", "vs", "10", "records"],
        ["mysql", "wide", "one", "batch", "size", "(100", "records)"],
    ]
    assert verdicts[0].endswith("full 0.50x (no quadratic step), (b) 0.50x (no quadratic step)")
    assert verdicts[1].endswith("full 3.00x (GROWS more than linearly), (b) 1.00x (no quadratic step)")
    assert verdicts[3].endswith("not judged")


def test_growth_reuses_the_replication_results_and_measures_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """
    On SQLite, at tiny sizes: a standard size the replication benchmark measured is taken from
    its results, another is measured, and with --quick one above 1,000 records is left out.
    """
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'growth.sqlite'}")
    monkeypatch.setattr(growth, "bench_engine", lambda name: engine)
    monkeypatch.setattr(growth, "server_version", lambda engine: "SQLite")
    monkeypatch.setattr(growth, "_recreate_bench_schema", lambda name, *, create: None)
    monkeypatch.setattr(growth, "WIDE_SIZES", (10, 20))
    monkeypatch.setattr(growth, "LARGE_SIZES", (10,))
    replicated = Result("sqlite", 20, 1_000.0, 50.0, 900.0, 2_000.0, "COPY", {"COPY": 2_000.0}, 33_500)
    other_engine = Result("mysql", 20, 1.0, 1.0, 1.0, 1.0, "COPY", {}, 1)
    points = growth.run(
        quick=True, engines=["sqlite"], sizes=[20, 30, 2_000], measured=[replicated, other_engine]
    )
    assert [("standard", 20), ("standard", 30), ("wide", 10), ("wide", 20), ("large", 10)] == [
        (p.variant, p.size) for p in points
    ]
    assert growth.Point("sqlite", "standard", 20, 33_500, 1_000.0, 900.0, reused=True) == points[0]
    assert not any(p.reused for p in points[1:])
    out = capsys.readouterr().out
    assert "not measured twice" in out
    assert "standard batches of 2,000 records left out with --quick" in out
    assert "    sqlite     standard     30 vs 20 records: full " in out
    assert "    sqlite     large    one batch size (10 records): not judged" in out


def test_the_command_runs_growth_after_replication_with_its_results(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    results = [Result("mysql", 100, 1.0, 1.0, 1.0, 1.0, "COPY", {}, 1)]

    def replicate(**options: Any) -> list[Result]:
        calls.append(("replication", options))
        return results

    monkeypatch.setattr(replication, "run", replicate)
    monkeypatch.setattr(growth, "run", lambda **options: calls.append(("growth", options)))
    cli.main(["growth", "replication", "--quick", "--engines", "mysql", "--sizes", "100"])
    assert ["replication", "growth"] == [name for name, _ in calls]
    assert {"quick": True, "engines": ["mysql"], "sizes": [100], "measured": results} == calls[1][1]
    calls.clear()
    cli.main(["growth"])
    assert [] == calls[0][1]["measured"]
