"""
Growth: the full path and strategy (b) as batches grow longer and items wider or larger.

Records per second of dynastream's full path (`App.lambda_handler`) and of
strategy (b), hand-written SQLAlchemy Core (`replication.CoreUpsert`), from
the parsed event dict to COMMIT, for three variants of the replication
benchmark's mixed batches (about 60% INSERTs, 30% MODIFYs, 10% REMOVEs,
`NEW_AND_OLD_IMAGES`, through JSON text and back):

- **standard**: the replication benchmark's `Orders` batches (15-18
  attributes) at its sizes (`--sizes`), 100, 1,000 and 10,000 records by
  default. When the replication benchmark runs in the same command
  (`python -m benchmarks replication growth`, or all benchmarks), its
  results are reused, not measured again; alone (`python -m benchmarks
  growth`), the full path and (b) are measured here, with `--quick` only up
  to 1,000 records;
- **wide**: items of 100 attributes (`benchmarks.wide_events`: strings,
  integers, exact decimals in `Numeric(p, s)` columns, booleans and four
  JSON maps and lists) in batches of 100 and 1,000 records;
- **large**: items of about 100 KB (a text of about 60,000 characters in a
  `Text` column, `MEDIUMTEXT` on MySQL, and a JSON list of about 40 KB) in
  batches of 10 and 40 records. Lambda hands one invocation at most 6 MB of
  event: 40 such records are about 5.5 MB (a MODIFY carries both images);
  1,000 would be some 130 MB, which no Lambda invocation receives.

Each variant has its own table schema, one table per strategy, both holding
the same pre-state before every run; after timing, both must hold exactly the
same rows, or the benchmark fails. The report gives the bytes of event JSON
per record, both rates, their ratio and the full path's MB/s of event JSON,
then, per engine and variant, whether the time per record grows more than
linearly with the batch: the largest batch's time per record over the
smallest's, "no quadratic step" up to 2x.
"""

from __future__ import annotations

import base64
import contextlib
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

import dynastream

from .events import make_batch
from .replication import (
    CORE_TABLE,
    ENGINES,
    FULL_TABLE,
    SEQUENCE,
    SIZES,
    Base,
    CoreUpsert,
    Strategy,
    _jsonable,
    _recreate_bench_schema,
    bench_engine,
    check_same,
    plain_row,
    pre_state_rows,
    reset,
    server_version,
    time_runs,
)
from .wide_events import (
    WIDE_BIG_INTEGERS,
    WIDE_BOOLEANS,
    WIDE_DECIMALS,
    WIDE_INTEGERS,
    WIDE_JSON,
    WIDE_OPTIONAL_INTEGERS,
    WIDE_OPTIONAL_STRINGS,
    WIDE_STRING_LENGTH,
    WIDE_STRINGS,
    make_large_batch,
    make_wide_batch,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .events import Batch
    from .replication import Result, RowBuilder

__all__ = ["LARGE_SIZES", "WIDE_SIZES", "Point", "large_table", "measure", "report", "run", "wide_table"]

WIDE_SIZES = (100, 1_000)
LARGE_SIZES = (10, 40)
# Lambda's invocation payload limit, 6 MB, taken as 6,000,000 bytes of event JSON.
LAMBDA_PAYLOAD_BYTES = 6_000_000
# Per-record time of the largest batch over the smallest's, up to which growth is not quadratic.
QUADRATIC_STEP = 2.0
WARM_SIZE = 10
# With --quick, the standard batches measured here (not reused) go up to this many records.
QUICK_STANDARD_LIMIT = 1_000

METADATA = sa.MetaData()
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# MySQL's TEXT holds 65,535 bytes; MEDIUMTEXT 16 MiB.
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


# --- the schemas --------------------------------------------------------------------------------


def wide_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """
    Return the wide items' table: a column per attribute (100) and the sequence column.
    """
    columns: list[sa.Column[Any]] = [sa.Column("id", dynastream.ExactString(40), primary_key=True)]
    columns += [
        sa.Column(column, sa.String(WIDE_STRING_LENGTH), nullable=column in WIDE_OPTIONAL_STRINGS)
        for column in WIDE_STRINGS
    ]
    columns += [
        sa.Column(
            column,
            sa.BigInteger if column in WIDE_BIG_INTEGERS else sa.Integer,
            nullable=column in WIDE_OPTIONAL_INTEGERS,
        )
        for column in WIDE_INTEGERS
    ]
    columns += [
        sa.Column(column, sa.Numeric(precision, scale), nullable=False)
        for column, precision, scale in WIDE_DECIMALS
    ]
    columns += [sa.Column(column, sa.Boolean, nullable=False) for column in WIDE_BOOLEANS]
    columns += [sa.Column(column, JSON_TYPE, nullable=False) for column in WIDE_JSON]
    return sa.Table(name, metadata, *columns, dynastream.sequence_column())


def large_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """
    Return the large items' table: a long text column, a JSON column and a few small ones.
    """
    return sa.Table(
        name,
        metadata,
        sa.Column("id", dynastream.ExactString(40), primary_key=True),
        sa.Column("customer_id", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("total", sa.Numeric(12, 2), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", LONG_TEXT, nullable=False),
        sa.Column("history", JSON_TYPE, nullable=False),
        dynastream.sequence_column(),
    )


def plain_row_of(table: sa.Table) -> RowBuilder:
    """
    Return strategy (b)'s mapping of an image to a row of `table`, written once for any table.

    As `replication.plain_row`: boto3's `TypeDeserializer` (binary decoded
    from base64 first), then `int` for integer columns and plain JSON values
    for JSON columns; a missing attribute is NULL.
    """
    integers = {column.name for column in table.columns if isinstance(column.type, sa.Integer)}
    json_columns = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    names = [column.name for column in table.columns if column.name != SEQUENCE]

    def row(image: dict[str, Any], sequence_number: str, deserializer: Any) -> dict[str, Any]:
        item = {
            name: base64.b64decode(value["B"]) if "B" in value else deserializer.deserialize(value)
            for name, value in image.items()
        }
        values: dict[str, Any] = {}
        for name in names:
            value = item.get(name)
            if value is not None and name in integers:
                value = int(value)
            elif value is not None and name in json_columns:
                value = _jsonable(value)
            values[name] = value
        values[SEQUENCE] = sequence_number.zfill(40)
        return values

    return row


@attrs.frozen
class Variant:
    """
    One kind of batch: its source table, its generator, and a target table per strategy.
    """

    name: str
    source: str  # the DynamoDB table, as the stream ARN names it
    make: Callable[[int], Batch]
    full_table: sa.Table
    core_table: sa.Table
    row: RowBuilder  # (b)'s image to row; the pre-state's rows too


STANDARD = Variant("standard", "Orders", make_batch, FULL_TABLE, CORE_TABLE, plain_row)
_WIDE_CORE = wide_table("bench_wide_core", METADATA)
WIDE = Variant(
    "wide",
    "WideItems",
    make_wide_batch,
    wide_table("bench_wide_full", METADATA),
    _WIDE_CORE,
    plain_row_of(_WIDE_CORE),
)
_LARGE_CORE = large_table("bench_large_core", METADATA)
LARGE = Variant(
    "large",
    "LargeItems",
    make_large_batch,
    large_table("bench_large_full", METADATA),
    _LARGE_CORE,
    plain_row_of(_LARGE_CORE),
)
VARIANTS = (STANDARD, WIDE, LARGE)


# --- measuring ------------------------------------------------------------------------------------


@attrs.frozen
class Point:
    """
    Records per second of the full path and of (b) for one engine, variant and batch size.
    """

    engine: str
    variant: str
    size: int
    json_bytes: int
    full: float
    core: float
    reused: bool = False  # taken from the replication benchmark's results

    @property
    def bytes_per_record(self) -> float:
        return self.json_bytes / self.size

    @property
    def full_mb_per_second(self) -> float:
        return self.full * self.bytes_per_record / 1e6


def measure(
    engine: sa.Engine, label: str, plan: Sequence[tuple[Variant, Sequence[Batch]]], repeat: int
) -> list[Point]:
    """
    Measure the full path and (b) on `engine` for each variant's batches, checking their tables agree.

    Creates the variants' tables and dynastream's on `engine`; `label` names the engine in the points.
    """
    plan = [(variant, batches) for variant, batches in plan if batches]
    app = dynastream.App(engine=engine)
    for variant, _ in plan:
        app.replicate(variant.source, into=variant.full_table)
    tables = [table for variant, _ in plan for table in (variant.full_table, variant.core_table)]
    for metadata in (Base.metadata, METADATA):
        metadata.create_all(engine, tables=[table for table in tables if table.metadata is metadata])
    app.create_tables()

    def full(event: dict[str, Any]) -> None:
        response = app.lambda_handler(event, None)
        if response != {"batchItemFailures": []}:
            raise SystemExit(f"replication: growth: the full path reported failures: {response}")

    points = []
    for variant, batches in plan:
        strategies = [
            Strategy("full", variant.full_table, full),
            Strategy(
                "core", variant.core_table, CoreUpsert(engine, variant.core_table, variant.row).apply_event
            ),
        ]
        # Warm both paths once: a warm Lambda has built its mappers and statements.
        warm = variant.make(WARM_SIZE)
        warm_rows = pre_state_rows(warm, variant.row)
        for strategy in strategies:
            reset(engine, strategy.table, warm_rows)
            strategy.apply(warm.event)
        for batch in batches:
            best = time_runs(strategies, engine, batch, pre_state_rows(batch, variant.row), repeat)
            check_same(strategies, engine, batch, what=variant.name)
            points.append(
                Point(
                    label,
                    variant.name,
                    batch.size,
                    batch.json_bytes,
                    batch.size / best["full"],
                    batch.size / best["core"],
                )
            )
    return points


def run(
    *,
    quick: bool = False,
    engines: Sequence[str] = tuple(ENGINES),
    sizes: Sequence[int] = SIZES,
    measured: Sequence[Result] = (),
) -> list[Point]:
    """
    Measure every variant on every engine, print the growth report and return its points.

    The standard batches of `sizes` reuse the replication benchmark's
    `measured` results where they hold the engine and size; the others are
    measured here, the full path and (b) only (with `quick`, those of at most
    `QUICK_STANDARD_LIMIT` records).
    """
    repeat = 1 if quick else 3
    reused = {
        (result.engine, result.size): result
        for result in measured
        if result.engine in engines and result.size in sizes
    }
    standard = {
        name: [
            size
            for size in sorted(sizes)
            if (name, size) not in reused and not (quick and size > QUICK_STANDARD_LIMIT)
        ]
        for name in engines
    }
    left_out = sorted(
        {
            size
            for name in engines
            for size in sizes
            if (name, size) not in reused and size not in standard[name]
        }
    )
    # Made once, for every engine.
    made = {
        size: make_batch(size) for size in sorted({size for wanted in standard.values() for size in wanted})
    }
    wide = [make_wide_batch(size) for size in WIDE_SIZES]
    large = [make_large_batch(size) for size in LARGE_SIZES]
    points: list[Point] = []
    versions: dict[str, str] = {}
    for name in engines:
        points.extend(
            Point(name, STANDARD.name, result.size, result.json_bytes, result.full, result.core, reused=True)
            for (engine_name, _), result in sorted(reused.items())
            if engine_name == name
        )
        plan = [(STANDARD, [made[size] for size in standard[name]]), (WIDE, wide), (LARGE, large)]
        engine = bench_engine(name)
        try:
            versions[name] = server_version(engine)
            points.extend(measure(engine, name, plan, repeat))
        finally:
            engine.dispose()
            with contextlib.suppress(sa.exc.DBAPIError):
                _recreate_bench_schema(name, create=False)
    notes = []
    if left_out:
        notes.append(
            f"standard batches of {', '.join(f'{size:,}' for size in left_out)} records left out with"
            f" --quick (measured here only up to {QUICK_STANDARD_LIMIT:,}; run the replication benchmark"
            " in the same command to reuse its results)"
        )
    report(points, repeat, versions, notes=notes)
    return points


# --- the report ------------------------------------------------------------------------------------


def _ordered(points: Sequence[Point]) -> list[Point]:
    variants = [variant.name for variant in VARIANTS]
    engines = list(dict.fromkeys(point.engine for point in points))
    return sorted(
        points,
        key=lambda p: (
            engines.index(p.engine),
            variants.index(p.variant) if p.variant in variants else len(variants),
            p.size,
        ),
    )


def _growth(smaller: float, larger: float) -> str:
    """
    Return the per-record time ratio of two rates (smaller batch's, larger batch's) and its verdict.
    """
    ratio = smaller / larger
    verdict = "no quadratic step" if ratio <= QUADRATIC_STEP else "GROWS more than linearly"
    return f"{ratio:.2f}x ({verdict})"


def report(
    points: Sequence[Point], repeat: int, versions: dict[str, str], *, notes: Sequence[str] = ()
) -> None:
    """
    Print the growth table and, per engine and variant, whether time per record grows more than linearly.

    `notes` are printed after the variants' descriptions.
    """
    points = _ordered(points)
    print(
        "replication growth: the full path and (b) hand-written Core as batches grow longer and items"
        f" wider or larger; event dict to COMMIT, best of {repeat}"
    )
    for name, version in versions.items():
        print(f"  {name}: {version}")
    standard = "  standard: the replication batches of Orders items (15-18 attributes)"
    if any(point.reused for point in points):
        standard += "; results of the replication benchmark in this run, not measured twice"
    print(standard)
    print(
        "  wide: 100 attributes per item (40 strings, 25 integers, 20 Numeric(p, s), 10 booleans,"
        " 4 JSON maps and lists)"
    )
    large = [p for p in points if p.variant == LARGE.name]
    largest = max(large, key=lambda p: p.json_bytes, default=None)
    print(
        "  large: about 100 KB per item (about 60,000 characters of Text, a JSON list of about 40 KB);"
        " a MODIFY carries both images"
        + (
            ""
            if largest is None
            else f"; {largest.size:,} records are {largest.json_bytes / 1e6:.1f} MB of event JSON"
            f" ({'under' if largest.json_bytes <= LAMBDA_PAYLOAD_BYTES else 'OVER'} Lambda's 6 MB"
            " invocation payload)"
        )
    )
    for note in notes:
        print(f"  {note}")
    print(
        f"  {'engine':<10} {'variant':<8} {'records':>8} {'bytes/rec':>10} {'full rec/s':>11}"
        f" {'(b) rec/s':>10} {'full/(b)':>9} {'full MB/s':>10}"
    )
    for p in points:
        over = "*" if p.json_bytes > LAMBDA_PAYLOAD_BYTES else " "
        print(
            f"  {p.engine:<10} {p.variant:<8} {p.size:>7,}{over} {p.bytes_per_record:>10,.0f}"
            f" {p.full:>11,.0f} {p.core:>10,.0f} {p.full / p.core:>8.2f}x {p.full_mb_per_second:>10.1f}"
        )
    if any(p.json_bytes > LAMBDA_PAYLOAD_BYTES for p in points):
        print(
            "  * over 6 MB of event JSON, more than one Lambda invocation receives (measured to see the"
            " growth); the other batches fit in one"
        )
    else:
        print("  every batch fits in one Lambda invocation (at most 6 MB of event JSON)")
    print(f"  time per record, largest batch against smallest (no quadratic step up to {QUADRATIC_STEP:g}x):")
    for engine in dict.fromkeys(p.engine for p in points):
        for variant in dict.fromkeys(p.variant for p in points if p.engine == engine):
            mine = [p for p in points if p.engine == engine and p.variant == variant]
            smallest, largest = mine[0], mine[-1]
            where = f"    {engine:<10} {variant:<8}"
            if len(mine) < 2:
                print(f"{where} one batch size ({smallest.size:,} records): not judged")
                continue
            print(
                f"{where} {largest.size:>6,} vs {smallest.size:,} records:"
                f" full {_growth(smallest.full, largest.full)},"
                f" (b) {_growth(smallest.core, largest.core)}"
            )
