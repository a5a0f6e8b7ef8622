"""
Concurrent batches on one database: dynastream against the hand-written guarded Core upsert.

N worker processes (`--workers`, default 50), each standing in for one Lambda
environment with its own engine and connection, apply 1,000-record batches
(see `benchmarks._concurrency_worker`) to one shared table for a bounded time
(`--duration`), through

- **dynastream**: `App(engine=...)`, `app.replicate("Orders", into=table)`,
  `app.lambda_handler(event, context)`;
- **baseline**: the guarded SQLAlchemy Core upsert a competent engineer writes
  in an afternoon (`replication.CoreUpsert`, strategy (b) of the replication
  benchmark, retried by `_concurrency_worker.RetriedCoreUpsert`), into its own
  table of the same shape;

with **disjoint** keys (each worker owns its keys, hashed, so that they are
neighbours of other workers' keys in the index) and with **overlapping** keys
(every batch draws its keys from one pool shared by all workers). Each
strategy and key mode also runs with one worker, for the latency under no
concurrency.

Each run starts from empty tables in the benchmark's own database
(`bench_concurrency`, created if missing), measures records/s, batch latency,
failed invocations, driver errors by SQLSTATE / error number, deadlocks
counted by the server, and the server's lock usage at peak (sampled every
100 ms), and ends with the model check: the table must hold, for each key, the
newest change among all the batches the workers applied (none after a REMOVE).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from ._concurrency_worker import (
    BATCH_SIZE,
    BUDGET_SECONDS,
    MAX_WORKERS,
    OVERLAPPING_POOL,
    REMOVED,
    Change,
    Spec,
    WorkerResult,
    describe,
    newest,
    templates,
    work,
)
from .replication import (
    COLUMNS,
    ENGINES,
    JSON_COLUMNS,
    SEQUENCE,
    engine_url,
    order_table,
    plain_row,
    read_rows,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MODES", "WORKERS", "run"]

DATABASE = "bench_concurrency"
MODES = ("disjoint", "overlapping")
STRATEGIES = ("dynastream", "baseline")
WORKERS = 50
DURATION = 30.0
QUICK_DURATION = 10.0
# The single-worker runs: long enough for a stable median, short beside the others.
SINGLE_DURATION = 10.0
QUICK_SINGLE_DURATION = 5.0
SAMPLE_SECONDS = 0.1
# Connections the parent holds besides the workers': the lock sampler and one for set-up.
PARENT_CONNECTIONS = 2
# Targets from issue 13, for the runs with many workers.
TARGET_OF_BASELINE = 0.8
TARGET_LATENCY = 3.0
LOCK_TABLE_ERRORS = frozenset({"53200", "1206"})
RESURRECTED = "rows resurrected after their REMOVE"

TABLES = {strategy: f"bench_concurrency_{strategy}" for strategy in STRATEGIES}


# --- the database -------------------------------------------------------------------------------


def database_url(name: str) -> sa.URL:
    """
    Return the URL of the benchmark's own database on engine `name`.
    """
    return engine_url(name).set(database=DATABASE)


def ensure_database(name: str) -> None:
    """
    Create the benchmark's database if missing (PostgreSQL from `postgres`, the maintenance database).
    """
    base = engine_url(name)
    if name == "postgresql":
        admin = sa.create_engine(
            base.set(database="postgres"), poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
        )
    else:
        admin = sa.create_engine(base.set(database=None), poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            if name == "postgresql":
                found = connection.exec_driver_sql(
                    "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": DATABASE}
                ).first()
                if found is None:
                    connection.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
            else:
                connection.exec_driver_sql(
                    f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` CHARACTER SET utf8mb4"
                )
    except sa.exc.OperationalError as error:
        raise SystemExit(
            f"concurrency: cannot reach {name} at {base.render_as_string(hide_password=True)}"
            f" ({type(error.orig).__name__}); set {ENGINES[name][0]} or choose engines with --engines"
        ) from None
    finally:
        admin.dispose()


def server_facts(engine: sa.Engine) -> str:
    """
    Return the server's version and the settings that bound concurrent locking.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            settings = {
                name: connection.exec_driver_sql(f"SHOW {name}").scalar()
                for name in ("server_version", "max_connections", "max_locks_per_transaction")
            }
            return (
                f"PostgreSQL {settings['server_version']}; max_connections {settings['max_connections']},"
                f" max_locks_per_transaction {settings['max_locks_per_transaction']}"
            )
        version, connections, wait, isolation = connection.exec_driver_sql(
            "SELECT VERSION(), @@max_connections, @@innodb_lock_wait_timeout, @@tx_isolation"
        ).one()
        server = version if "MariaDB" in version else f"MySQL {version}"
        return f"{server}; max_connections {connections}, innodb_lock_wait_timeout {wait} s, {isolation}"


def check_connections(engine: sa.Engine, workers: int) -> None:
    """
    Refuse to start unless the server has a connection free for each worker and the parent.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            free = connection.exec_driver_sql(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).scalar_one()
        else:
            free = connection.exec_driver_sql(
                "SELECT @@max_connections - (SELECT COUNT(*) FROM information_schema.PROCESSLIST)"
            ).scalar_one()
    # This connection is counted as in use, and is given back before the workers start.
    if workers + PARENT_CONNECTIONS > int(free) + 1:
        raise SystemExit(
            f"concurrency: {workers} workers need {workers + PARENT_CONNECTIONS} connections,"
            f" {engine.dialect.name} has {int(free) + 1} free; use fewer --workers"
        )


def reset_tables(engine: sa.Engine) -> None:
    """
    Drop every table of the benchmark's database, then create both strategies' and dynastream's own.
    """
    import dynastream

    existing = sa.MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    metadata = sa.MetaData()
    app = dynastream.App(engine=engine)
    for strategy, name in TABLES.items():
        table = order_table(name, metadata)
        if strategy == "dynastream":
            app.replicate("Orders", into=table)
    metadata.create_all(engine)
    app.create_tables()


def server_deadlocks(engine: sa.Engine) -> int | None:
    """
    Return the server's deadlock counter: the database's on PostgreSQL, InnoDB's (server-wide) on MariaDB.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return int(
                connection.exec_driver_sql(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                ).scalar_one()
            )
        row = connection.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'").first()
        return None if row is None else int(row[1])


_LOCK_QUERIES = {
    # Locks held or awaited by the workers' sessions (this database, the sampler excluded).
    "postgresql": (
        "SELECT count(*), count(*) FILTER (WHERE l.locktype = 'advisory')"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
    ),
    # InnoDB's estimate of the rows and lock structures of the workers' transactions.
    "mysql": (
        "SELECT COALESCE(SUM(t.trx_rows_locked), 0), COALESCE(SUM(t.trx_lock_structs), 0)"
        " FROM information_schema.INNODB_TRX t"
        " JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id"
        " WHERE p.DB = DATABASE()"
    ),
}
LOCK_LABELS = {"postgresql": "peak pg_locks (advisory)", "mysql": "peak rows locked (lock structs)"}


class LockSampler(threading.Thread):
    """
    Samples the server's lock usage every 100 ms on a connection of its own, and keeps the peak.
    """

    def __init__(self, url: sa.URL) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.query = _LOCK_QUERIES[self.engine.dialect.name]
        self.peak = (0, 0)
        self.samples = 0
        self.failed = 0
        self.error: str | None = None
        self._finish = threading.Event()

    def run(self) -> None:
        try:
            while not self._finish.is_set():
                try:
                    self._sample()
                except sa.exc.DBAPIError as error:  # sampled again on a new connection
                    self.failed += 1
                    self.error = f"{type(error.orig).__name__}: {' '.join(str(error.orig).split())[:120]}"
        finally:
            self.engine.dispose()

    def _sample(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not self._finish.wait(SAMPLE_SECONDS):
                total, part = connection.exec_driver_sql(self.query).one()
                if int(total) > self.peak[0]:
                    self.peak = (int(total), int(part))
                self.samples += 1

    def stop(self) -> None:
        self._finish.set()
        self.join()


# --- the model check ------------------------------------------------------------------------------


@attrs.frozen
class Verdict:
    """
    The model check of one run: `problems` counts the keys whose row differs from the model, by kind.
    """

    rows: int
    keys: int
    problems: Counter[str]
    uncertain: int

    @property
    def passed(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.passed:
            return "PASS"
        return "FAIL: " + ", ".join(f"{count:,} {kind}" for kind, count in self.problems.most_common())


def _normalized(value: Any) -> Any:
    # What a JSON column reads back as in `read_rows`: exact numbers as Decimal.
    return json.loads(json.dumps(value), parse_float=Decimal)


class ExpectedRows:
    """
    The row each change leaves, built the plain way from its image template.
    """

    def __init__(self, images: list[dict[str, Any]]) -> None:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        self.rows = []
        for image in images:
            row = plain_row(image, "0", deserializer)
            for name in JSON_COLUMNS:
                row[name] = _normalized(row[name])
            self.rows.append(tuple(row[name] for name in COLUMNS))
        self.key = COLUMNS.index("id")
        self.sequence = COLUMNS.index(SEQUENCE)

    def row(self, key: str, change: Change) -> tuple[Any, ...] | None:
        """
        Return the row `change` leaves for `key`, or None when it is a REMOVE.
        """
        sequence_number, template = change
        if template == REMOVED:
            return None
        values = list(self.rows[template])
        values[self.key] = key
        values[self.sequence] = str(sequence_number).zfill(40)
        return tuple(values)


def check_model(
    actual: dict[str, tuple[Any, ...]],
    model: dict[str, Change],
    uncertain: dict[str, Change],
    expected: ExpectedRows,
) -> Verdict:
    """
    Compare the table's rows with the model: per key, the newest applied change (no row after a REMOVE).

    A change in `uncertain` (its batch's last delivery raised when the run
    ended) may or may not have been applied: either outcome passes.
    """
    problems: Counter[str] = Counter()
    for key in model.keys() | uncertain.keys() | actual.keys():
        known = model.get(key)
        candidates = [known]
        maybe = uncertain.get(key)
        if maybe is not None and (known is None or known[0] < maybe[0]):
            candidates.append(maybe)
        row = actual.get(key)
        wanted = [None if change is None else expected.row(key, change) for change in candidates]
        if row in wanted:
            continue
        if known is None:
            problems["rows no batch wrote"] += 1
            continue
        if row is None:
            problems["rows missing"] += 1
            continue
        stored = int(row[expected.sequence])
        if known[1] == REMOVED:
            kind = RESURRECTED if stored < known[0] else "rows left after a REMOVE"
        elif stored < known[0]:
            kind = "rows left at an older change"
        elif stored > known[0]:
            kind = "rows at a change newer than the model's"
        else:
            kind = "rows with other values"
        problems[kind] += 1
    return Verdict(len(actual), len(model), problems, len(uncertain))


# --- one run --------------------------------------------------------------------------------------


@attrs.frozen
class RunResult:
    """
    One strategy, key mode and number of workers on one engine.
    """

    engine: str
    strategy: str
    mode: str
    workers: int
    seconds: float
    records: int
    latencies: list[float] = attrs.field(repr=False)
    cpu_per_batch: float
    invocations: int
    failed_invocations: int
    max_invocation: float
    retries: int
    errors: Counter[str]
    failures: Counter[str]
    deadlocks: int | None
    peak_locks: tuple[int, int]
    sampler_failures: int
    sampler_error: str | None
    verdict: Verdict

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def latency(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    @property
    def deadlocks_seen(self) -> int:
        return self.errors["40P01"] + self.errors["1213"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """
    Return the nearest-rank percentile of `values` (`fraction` 0.95 for p95), or NaN if there are none.
    """
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def run_once(
    name: str,
    url: sa.URL,
    images: list[dict[str, Any]],
    expected: ExpectedRows,
    *,
    strategy: str,
    mode: str,
    workers: int,
    duration: float,
) -> RunResult:
    """
    Run `workers` processes of `strategy` with `mode` keys for `duration` seconds, and check the model.
    """
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        reset_tables(admin)
        deadlocks_before = server_deadlocks(admin)
        spec = Spec(
            url.render_as_string(hide_password=False), strategy, mode, workers, duration, TABLES[strategy]
        )
        # fork: the workers start at once, with the templates and the imports already in memory.
        context = multiprocessing.get_context("fork")
        barrier = context.Barrier(workers + 1)
        results: Any = context.Queue()
        processes = [
            context.Process(target=work, args=(spec, worker, images, barrier, results), daemon=True)
            for worker in range(workers)
        ]
        for process in processes:
            process.start()
        sampler = LockSampler(url)
        try:
            barrier.wait(timeout=300)
        except threading.BrokenBarrierError:
            _fail(name, processes, results)
        sampler.start()
        outcomes = _collect(name, processes, results, timeout=duration + 2 * BUDGET_SECONDS + 120)
        sampler.stop()
        for process in processes:
            process.join()
        time.sleep(1.0)  # the server counts the deadlocks of a session when it ends
        deadlocks_after = server_deadlocks(admin)
        table = order_table(TABLES[strategy], sa.MetaData())
        actual = {row[0]: row for row in read_rows(admin, table)}
    finally:
        admin.dispose()
    verdict = check_model(
        actual,
        newest(outcome.model for outcome in outcomes),
        newest(outcome.uncertain for outcome in outcomes),
        expected,
    )
    deadlocks = None
    if deadlocks_before is not None and deadlocks_after is not None:
        deadlocks = deadlocks_after - deadlocks_before
    latencies = [latency for outcome in outcomes for latency in outcome.latencies]
    return RunResult(
        engine=name,
        strategy=strategy,
        mode=mode,
        workers=workers,
        seconds=max(o.finished for o in outcomes) - min(o.started for o in outcomes),
        records=sum(o.records for o in outcomes),
        latencies=latencies,
        cpu_per_batch=sum(o.cpu_seconds for o in outcomes) / max(1, len(latencies)),
        invocations=sum(o.invocations for o in outcomes),
        failed_invocations=sum(o.failed_invocations for o in outcomes),
        max_invocation=max(o.max_invocation for o in outcomes),
        retries=sum(o.retries for o in outcomes),
        errors=sum((o.errors for o in outcomes), Counter()),
        failures=sum((o.failures for o in outcomes), Counter()),
        deadlocks=deadlocks,
        peak_locks=sampler.peak,
        sampler_failures=sampler.failed,
        sampler_error=sampler.error,
        verdict=verdict,
    )


def _collect(
    name: str, processes: Sequence[multiprocessing.process.BaseProcess], results: Any, *, timeout: float
) -> list[WorkerResult]:
    outcomes: list[WorkerResult] = []
    end = time.monotonic() + timeout
    while len(outcomes) < len(processes):
        try:
            outcome = results.get(timeout=max(0.1, end - time.monotonic()))
        except queue.Empty:
            _stop(processes)
            raise SystemExit(f"concurrency: {name}: workers did not finish within {timeout:.0f} s") from None
        if not isinstance(outcome, WorkerResult):
            _stop(processes)
            worker, trace = outcome
            raise SystemExit(f"concurrency: {name}: worker {worker} failed:\n{trace}")
        outcomes.append(outcome)
    return outcomes


def _fail(name: str, processes: Sequence[multiprocessing.process.BaseProcess], results: Any) -> None:
    with contextlib.suppress(queue.Empty):
        worker, trace = results.get(timeout=10)
        _stop(processes)
        raise SystemExit(f"concurrency: {name}: worker {worker} failed before the run:\n{trace}")
    _stop(processes)
    raise SystemExit(f"concurrency: {name}: the workers were not ready in time")


def _stop(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def measure_engine(
    name: str, *, workers: int, duration: float, single_duration: float, modes: Sequence[str]
) -> tuple[str, list[RunResult]]:
    """
    Run every strategy and key mode on one engine: with `workers` workers, then with one.
    """
    ensure_database(name)
    url = database_url(name)
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        facts = server_facts(admin)
        check_connections(admin, workers)
    finally:
        admin.dispose()
    images = templates()
    expected = ExpectedRows(images)
    plan = [(mode, strategy, workers, duration) for mode in modes for strategy in STRATEGIES]
    if workers > 1:
        plan += [(mode, strategy, 1, single_duration) for mode in modes for strategy in STRATEGIES]
    results = []
    for mode, strategy, count, seconds in plan:
        result = run_once(
            name, url, images, expected, strategy=strategy, mode=mode, workers=count, duration=seconds
        )
        print(
            f"  ({name}: {strategy}, {mode} keys, {count} workers:"
            f" {result.rate:,.0f} rec/s, {result.verdict})",
            file=sys.stderr,  # progress, not part of the report
        )
        results.append(result)
    return facts, results


# --- the report -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def _verdict(value: float, target: float, *, at_most: bool = False) -> str:
    if math.isnan(value):
        return "not measured"
    met = value <= target if at_most else value >= target
    return f"{'met' if met else 'NOT met'} ({value:.2f}x)"


def report_engine(name: str, facts: str, results: list[RunResult]) -> None:
    print(f"  {name}: {facts}")
    print(
        f"    {'strategy':<10} {'keys':<11} {'workers':>7} {'rec/s':>7} {'p50 s':>6} {'p95 s':>6}"
        f" {'max s':>6} {'CPU/b s':>7} {'batches':>7} {'failed':>6} {'retries':>7} {'deadlocks':>9}"
        f" {LOCK_LABELS[name]:>31}  model"
    )
    for r in results:
        deadlocks = "?" if r.deadlocks is None else f"{r.deadlocks:,}"
        peak = f"{r.peak_locks[0]:,} ({r.peak_locks[1]:,})"
        print(
            f"    {r.strategy:<10} {r.mode:<11} {r.workers:>7} {r.rate:>7,.0f} {_seconds(r.latency(0.5)):>6}"
            f" {_seconds(r.latency(0.95)):>6} {_seconds(r.latency(1.0)):>6} {r.cpu_per_batch:>7.2f}"
            f" {len(r.latencies):>7,} {r.failed_invocations:>6,} {r.retries:>7,}"
            f" {deadlocks + f' ({r.deadlocks_seen:,})':>9} {peak:>31}  {r.verdict}"
        )
    troubled = [r for r in results if r.errors or r.failures or r.verdict.uncertain or r.sampler_failures]
    if troubled:
        print("    errors the driver raised (by SQLSTATE / error number), failed invocations (by outcome):")
    for r in troubled:
        errors = (
            ", ".join(f"{describe(kind)} x {count:,}" for kind, count in r.errors.most_common()) or "none"
        )
        failures = ", ".join(f"{describe(kind)} x {count:,}" for kind, count in r.failures.most_common())
        line = f"      {r.strategy} {r.mode} {r.workers}: errors {errors}"
        line += f"; failed invocations {failures}" if failures else ""
        line += (
            f"; {r.verdict.uncertain:,} changes of unfinished batches uncertain"
            if r.verdict.uncertain
            else ""
        )
        if r.sampler_failures:
            # The sampler is a client like any other: when the lock table is full it cannot connect either.
            line += f"; the lock sampler failed {r.sampler_failures:,} times (last: {r.sampler_error})"
        print(line)
    report_targets(results)


def report_targets(results: list[RunResult]) -> None:
    runs = {(r.strategy, r.mode, r.workers): r for r in results}
    workers = max(r.workers for r in results)
    if workers == 1:
        return
    cores = os.cpu_count() or 1
    print(f"    targets ({workers} workers):")
    for mode in MODES:
        ours, theirs = runs.get(("dynastream", mode, workers)), runs.get(("baseline", mode, workers))
        if ours is None or theirs is None:
            continue
        alone, theirs_alone = runs.get(("dynastream", mode, 1)), runs.get(("baseline", mode, 1))
        single = math.nan if alone is None else alone.latency(0.5)
        lock_table = sum(ours.errors[kind] for kind in LOCK_TABLE_ERRORS)
        ratio = ours.rate / theirs.rate if theirs.rate else math.nan
        note = "" if mode == "disjoint" else " (the target is for disjoint keys)"
        print(
            f"      {mode} keys: dynastream/baseline throughput >= {TARGET_OF_BASELINE:g}x"
            f" {_verdict(ratio, TARGET_OF_BASELINE)}{note}"
        )
        latency = ours.latency(0.95) / single if single else math.nan
        baseline_latency = (
            math.nan if theirs_alone is None else theirs.latency(0.95) / theirs_alone.latency(0.5)
        )
        print(
            f"        p95 batch latency / single-worker median <= {TARGET_LATENCY:g}x"
            f" {_verdict(latency, TARGET_LATENCY, at_most=True)}; baseline {baseline_latency:.2f}x;"
            f" {workers} workers sharing {cores} CPUs alone make about {max(1.0, workers / cores):.0f}x"
        )
        print(
            f"        lock-table errors: {lock_table:,}; failed invocations: {ours.failed_invocations:,};"
            f" longest invocation {ours.max_invocation:.1f} s of a {BUDGET_SECONDS:.0f} s budget;"
            f" lock errors retried within invocations: {ours.retries:,}"
        )
    failed = [r for r in results if not r.verdict.passed]
    print(
        "      model check: "
        + (
            "PASS in every run"
            if not failed
            else "FAIL in " + ", ".join(f"{r.strategy} {r.mode} {r.workers}" for r in failed)
        )
    )
    if any(r.strategy == "baseline" and set(r.verdict.problems) == {RESURRECTED} for r in failed):
        print(
            "      (the baseline keeps no tombstones: an older upsert that commits after a newer REMOVE"
            " of its key brings the row back)"
        )


def run(
    *,
    quick: bool = False,
    engines: Sequence[str] = tuple(ENGINES),
    workers: int = WORKERS,
    duration: float | None = None,
    modes: Sequence[str] = MODES,
) -> None:
    """
    Measure both strategies with every key mode on every engine, and print the report.
    """
    if not 1 <= workers <= MAX_WORKERS + 1:
        raise SystemExit(f"concurrency: from 1 to {MAX_WORKERS + 1} workers")
    seconds = duration if duration is not None else QUICK_DURATION if quick else DURATION
    single = min(seconds, QUICK_SINGLE_DURATION if quick else SINGLE_DURATION)
    print(
        f"concurrency: {workers} worker processes, each its own engine and connection, apply"
        f" {BATCH_SIZE:,}-record batches (60% INSERT, 30% MODIFY, 10% REMOVE; order items of 15-18"
        f" attributes) to one table for {seconds:g} s, then 1 worker for {single:g} s; Lambda context"
        f" budget {BUDGET_SECONDS:g} s; a failed batch is delivered again from its first reported record"
    )
    print(
        "  keys: disjoint = each worker's own hashed keys, neighbours of other workers' keys in the index;"
        f" overlapping = one pool of {OVERLAPPING_POOL:,} keys shared by all workers"
    )
    print(
        "  baseline: hand-written guarded Core upsert (TypeDeserializer, last change per key, sorted;"
        " executemany of ON CONFLICT ... WHERE / ON DUPLICATE KEY UPDATE IF(...); guarded DELETE; one"
        " transaction; deadlocks and lock wait timeouts retried with jittered backoff; no tombstones)"
    )
    print(
        "  latency: first delivery to applied, per batch; CPU/b: the worker's CPU per applied batch;"
        " failed: failed invocations; retries: lock errors met inside invocations that succeeded;"
        " deadlocks: the server's counter (PostgreSQL: this database's; MariaDB: server-wide, other"
        " clients' included), in parentheses those the workers saw"
    )
    for name in engines:
        facts, results = measure_engine(
            name, workers=workers, duration=seconds, single_duration=single, modes=modes
        )
        report_engine(name, facts, results)
