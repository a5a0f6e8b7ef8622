"""
Cold start: importing the Orders example's handler and its first invocation, in fresh interpreters.

The baseline is what any Lambda function built on the same stack pays anyway:
importing the example's mandatory dependencies alone (SQLAlchemy with its ORM,
attrs, dependency-injector and the database driver), then a short hand-written
SQLAlchemy Core handler applying the same event. The candidate imports
`examples.orders.handler` (dynastream, the example's ORM model, the `App`) and
calls its `lambda_handler` once.

Every sample is a new interpreter (`benchmarks._cold_start_child`), timed inside
the child around the import and around the call, so interpreter start-up is left
out on both sides. Baseline and candidate samples alternate, each side going first
in every other pair, so drift on the machine reaches both alike; the medians are
compared. Databases: a SQLite file (always) and the servers of `--engines` that
answer, each reset before every sample.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa

from ._cold_start_child import DEPENDENCIES
from .replication import ENGINES, engine_url

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = ["SAMPLES", "TARGET", "run"]

SAMPLES = 21
"""Fresh interpreters per side and database (`--samples`)."""

QUICK_SAMPLES = 7

TARGET = 1.25
"""Importing the example handler costs at most this many times its dependencies alone."""

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "examples" / "orders" / "events" / "orders.json"
SCHEMA = "dynastream_cold_start"
DRIVERS = {"sqlite": "sqlite3", "postgresql": "psycopg", "mysql": "pymysql"}


class Sample(NamedTuple):
    """One fresh interpreter's timings, in seconds."""

    imported: float
    invoked: float
    imported_cpu: float
    invoked_cpu: float


class Target(NamedTuple):
    """A database the samples write to: its name, the URL a child uses, and how to reset it."""

    name: str
    url: str
    reset: Callable[[], None]


def _child(side: str, target: Target) -> Sample:
    environment = dict(os.environ, DYNASTREAM_DATABASE_URL=target.url)
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "benchmarks._cold_start_child",
            side,
            DRIVERS[target.name],
            target.url,
            str(EVENT),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode:
        raise SystemExit(f"cold-start: a {side} sample on {target.name} failed:\n{completed.stderr.strip()}")
    # The last line: the handler's logs and metrics come before it.
    return Sample(*(float(seconds) for seconds in completed.stdout.splitlines()[-1].split()))


def _tables() -> sa.MetaData:
    """Return the example's table, the plain handler's table and dynastream's own, in one MetaData."""
    import dynastream.schema
    from examples.orders.models import Base

    metadata = sa.MetaData()
    for table in (*Base.metadata.tables.values(), *dynastream.schema.metadata.tables.values()):
        table.to_metadata(metadata)
    plain = metadata.tables["orders"].to_metadata(metadata, name="orders_plain")
    plain.c.dynastream_sequence.nullable = True
    return metadata


@contextlib.contextmanager
def _sqlite() -> Iterator[Target | None]:
    with tempfile.TemporaryDirectory(prefix="dynastream-cold-start-") as directory:
        template = Path(directory) / "template.sqlite"
        live = Path(directory) / "orders.sqlite"
        engine = sa.create_engine(f"sqlite:///{template}")
        _tables().create_all(engine)
        engine.dispose()

        def reset() -> None:
            shutil.copyfile(template, live)

        yield Target("sqlite", f"sqlite:///{live}", reset)


@contextlib.contextmanager
def _server(name: str) -> Iterator[Target | None]:
    base = engine_url(name)
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)

    def recreate(*, create: bool) -> None:
        with admin.begin() as connection:
            if name == "postgresql":
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
                if create:
                    connection.exec_driver_sql(f'CREATE SCHEMA "{SCHEMA}"')
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{SCHEMA}`")
                if create:
                    connection.exec_driver_sql(f"CREATE DATABASE `{SCHEMA}` CHARACTER SET utf8mb4")

    try:
        recreate(create=True)
    except sa.exc.OperationalError as error:
        print(
            f"  {name}: skipped, cannot reach {base.render_as_string(hide_password=True)}"
            f" ({type(error.orig).__name__}: {error.orig})"
        )
        admin.dispose()
        yield None
        return
    if name == "postgresql":
        url = base.update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    else:
        url = base.set(database=SCHEMA)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    metadata = _tables()
    metadata.create_all(engine)

    def reset() -> None:
        with engine.begin() as connection:
            for table in metadata.sorted_tables:
                connection.execute(table.delete())

    try:
        yield Target(name, url.render_as_string(hide_password=False), reset)
    finally:
        engine.dispose()
        with contextlib.suppress(sa.exc.DBAPIError):
            recreate(create=False)
        admin.dispose()


def _measure(target: Target, samples: int) -> dict[str, list[Sample]]:
    """Return `samples` timings per side, the sides alternating which goes first."""
    results: dict[str, list[Sample]] = {"deps": [], "handler": []}
    for side in results:  # compile bytecode and warm the file cache; not counted
        target.reset()
        _child(side, target)
    for index in range(samples):
        for side in ("deps", "handler") if index % 2 == 0 else ("handler", "deps"):
            target.reset()
            results[side].append(_child(side, target))
    return results


def _import_times(code: str, repeat: int) -> dict[str, float]:
    """Return the median self time of each module imported by `code`, in seconds (`-X importtime`)."""
    times: dict[str, list[float]] = {}
    for _ in range(repeat):
        completed = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        for line in completed.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            own, _cumulative, module = line.removeprefix("import time:").split("|")
            if own.strip().isdigit():  # not the header line
                times.setdefault(module.strip(), []).append(int(own) / 1e6)
    return {module: statistics.median(values) for module, values in times.items()}


def _median(samples: Sequence[Sample], field: Callable[[Sample], float]) -> float:
    return statistics.median(field(sample) for sample in samples)


def _report_target(name: str, results: dict[str, list[Sample]]) -> tuple[float, float]:
    """Print the medians and ratios of one database; return the import ratios by the clock and in CPU time."""
    deps, handler = results["deps"], results["handler"]
    rows: list[tuple[str, Callable[[Sample], float]]] = [
        ("import", lambda s: s.imported),
        ("import, CPU time", lambda s: s.imported_cpu),
        ("first invocation", lambda s: s.invoked),
        ("first invocation, CPU time", lambda s: s.invoked_cpu),
        ("import + first invocation", lambda s: s.imported + s.invoked),
    ]
    print(f"  {name} (driver {DRIVERS[name]}):")
    print(f"    {'median, ms':<27} {'dependencies alone':>18} {'example handler':>16} {'ratio':>7}")
    ratios: dict[str, float] = {}
    for label, field in rows:
        base, candidate = _median(deps, field), _median(handler, field)
        ratios[label] = candidate / base
        print(f"    {label:<27} {base * 1e3:>18.1f} {candidate * 1e3:>16.1f} {candidate / base:>6.2f}x")
    return ratios["import"], ratios["import, CPU time"]


def _report_breakdown(repeat: int) -> None:
    baseline = _import_times(f"import {', '.join(DEPENDENCIES)}, sqlite3", repeat)
    handler = _import_times("import examples.orders.handler", repeat)
    added = {module: own for module, own in handler.items() if module not in baseline}
    total = sum(added.values())
    print(
        f"  what the example handler imports beyond its dependencies (-X importtime self times,"
        f" median of {repeat}): {len(added)} modules, {total * 1e3:.1f} ms"
    )
    for module, own in sorted(added.items(), key=lambda item: -item[1])[:10]:
        print(f"    {own * 1e3:>6.1f} ms  {module}")


def run(*, quick: bool = False, engines: Sequence[str] = tuple(ENGINES), samples: int | None = None) -> None:
    """
    Measure the cold start on SQLite and on each engine of `engines` that answers; print the report.
    """
    count = samples or (QUICK_SAMPLES if quick else SAMPLES)
    print(
        f"cold-start: examples.orders.handler against importing {', '.join(DEPENDENCIES)}"
        " and the driver alone;"
        f" a fresh interpreter per sample, median of {count} per side, sides interleaved"
    )
    with EVENT.open(encoding="utf-8") as file:
        records = len(json.load(file)["Records"])
    print(
        f"  first invocation: the example's {EVENT.name} ({records} records) on an empty database;"
        " the baseline applies it with a hand-written SQLAlchemy Core handler (no checks, no guard)"
    )
    verdicts: list[tuple[str, tuple[float, float]]] = []
    for name in ("sqlite", *engines):
        with _sqlite() if name == "sqlite" else _server(name) as target:
            if target is not None:
                verdicts.append((name, _report_target(name, _measure(target, count))))
    _report_breakdown(min(count, 5))
    for name, (wall, cpu) in verdicts:
        print(
            f"  target, {name}: import <= {TARGET:g}x the dependencies alone {_verdict(wall)} by the clock,"
            f" {_verdict(cpu)} in CPU time"
        )


def _verdict(ratio: float) -> str:
    return f"{'met' if ratio <= TARGET else 'NOT met'} ({ratio:.2f}x)"
