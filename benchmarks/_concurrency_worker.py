"""
One worker of the concurrency benchmark: a process standing in for one Lambda environment.

A worker builds its own engine (one pooled connection, as dynastream's
default) and its own handler, applies two small warm-up batches, waits at a
barrier for every other worker, then applies 1,000-record batches until the
run's time is up. A batch that fails (an exception, or a non-empty
`batchItemFailures`) is delivered again from the first reported record on,
as the event source mapping does, until it is applied or the run ends.

The worker keeps the model of what it applied: per key, the newest change
(sequence number, and the image template it carried, or `REMOVED`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from .events import FIRST_SEQUENCE_NUMBER, order_image, stream_record
from .replication import CoreUpsert, order_table

if TYPE_CHECKING:
    from collections.abc import Iterable
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

__all__ = [
    "BATCH_SIZE",
    "BUDGET_SECONDS",
    "OVERLAPPING_POOL",
    "REMOVED",
    "RetriedCoreUpsert",
    "Source",
    "Spec",
    "WorkerResult",
    "error_kind",
    "newest",
    "templates",
    "work",
]

BATCH_SIZE = 1_000
# The Lambda context's time per invocation (the function's timeout).
BUDGET_SECONDS = 60.0
# Overlapping keys: every worker draws each batch's keys from this one pool.
OVERLAPPING_POOL = 20_000
TEMPLATE_COUNT = 1_000
TEMPLATE_SEED = 20_261_301
# The worker's number is the last three digits of each of its sequence numbers.
MAX_WORKERS = 999
BARRIER_SECONDS = 300.0
REMOVED = -1

# What a newest change is, per key: (sequence number, image template or REMOVED).
Change = tuple[int, int]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

# Errors a batch transaction may meet because of other transactions, not its records:
# https://www.postgresql.org/docs/current/errcodes-appendix.html and
# https://mariadb.com/kb/en/mariadb-error-code-reference/
LOCK_ERRORS = {
    "40P01": "deadlock detected",
    "40001": "serialization failure",
    "55P03": "lock not available",
    "53200": "out of shared memory",
    "1205": "lock wait timeout",
    "1206": "lock table full",
    "1213": "deadlock",
}
ERROR_NAMES = {
    **LOCK_ERRORS,
    "57014": "statement timeout",
    "1305": "savepoint does not exist",
    "3024": "max statement time",
    "1969": "max statement time",
}
# What the baseline retries: the whole transaction is gone, another try may succeed.
BASELINE_RETRIES = frozenset({"40P01", "40001", "1213", "1205"})
BASELINE_ATTEMPTS = 10
BASELINE_MARGIN_SECONDS = 5.0


def error_kind(error: BaseException) -> str:
    """
    Return the SQLSTATE or MySQL error number of `error` (or of the driver error it wraps), else its class.
    """
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not other for other in seen):
        seen.append(current)
        # PyMySQL's errors carry an SQLSTATE too, shared by many errors (40001 for a deadlock):
        # the error number says more.
        arguments = getattr(current, "args", ())
        if type(current).__module__.startswith("pymysql") and arguments and isinstance(arguments[0], int):
            return str(arguments[0])
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
    return type(error).__name__


def describe(kind: str) -> str:
    """
    Return `kind` with its name when known: `40P01 deadlock detected`.
    """
    name = ERROR_NAMES.get(kind)
    return kind if name is None else f"{kind} {name}"


def newest(models: Iterable[dict[str, Change]]) -> dict[str, Change]:
    """
    Merge models: per key, the change with the greatest sequence number.
    """
    merged: dict[str, Change] = {}
    for model in models:
        for key, change in model.items():
            known = merged.get(key)
            if known is None or known[0] < change[0]:
                merged[key] = change
    return merged


def templates() -> list[dict[str, Any]]:
    """
    Return the order images the batches are made of (the same for every call), in Lambda's JSON shape.

    Each record carries one of them with its own key: building 1,000 fresh
    images per batch would cost the workers as much CPU as applying it.
    """
    rng = random.Random(TEMPLATE_SEED)
    return [order_image(rng, f"template-{n}") for n in range(TEMPLATE_COUNT)]


def _hashed(text: str) -> str:
    return "o-" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@attrs.define
class Source:
    """
    The stream one worker reads: its batches, their sequence numbers and the keys they touch.

    Sequence numbers are unique and increasing across workers: the microseconds
    of the wall clock (never repeating within a worker), then the worker's
    number in the last three digits. With `disjoint` keys each worker owns its
    keys (hashed, so that they sit between other workers' keys in the index, as
    a DynamoDB shard's do); with `overlapping` keys every batch draws its keys
    from one pool shared by all workers.
    """

    worker: int
    mode: str
    images: list[dict[str, Any]] = attrs.field(repr=False)
    rng: random.Random = attrs.field(init=False, repr=False)
    last_micros: int = attrs.field(init=False, default=0)
    live: list[str] = attrs.field(init=False, factory=list, repr=False)
    inserted: int = attrs.field(init=False, default=0)
    clock: Callable[[], int] = attrs.field(default=time.time_ns, repr=False)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.worker <= MAX_WORKERS:
            raise ValueError(f"worker numbers run from 0 to {MAX_WORKERS}")
        self.rng = random.Random(self.worker)

    def sequence_number(self) -> int:
        """
        Return the next sequence number of this worker's stream.
        """
        self.last_micros = max(self.last_micros + 1, self.clock() // 1_000)
        return FIRST_SEQUENCE_NUMBER + self.last_micros * 1_000 + self.worker

    def _record(self, kind: str, key: str, template: int) -> tuple[dict[str, Any], Change]:
        sequence_number = self.sequence_number()
        new = None if kind == "REMOVE" else {**self.images[template], "id": {"S": key}}
        old = None
        if kind != "INSERT":
            old = {**self.images[self.rng.randrange(len(self.images))], "id": {"S": key}}
        record = stream_record(self.rng, kind, key, sequence_number, self.clock() // 10**9, new, old)
        return record, (sequence_number, REMOVED if kind == "REMOVE" else template)

    def batch(self, size: int = BATCH_SIZE) -> tuple[list[dict[str, Any]], list[tuple[str, Change]]]:
        """
        Return the next batch's records and its changes, in stream order.

        About 60% INSERTs, 30% MODIFYs and 10% REMOVEs, each key once, as
        `benchmarks.events` builds them. With disjoint keys the MODIFYs and
        REMOVEs touch keys this worker's earlier batches left in the table (an
        INSERT stands in while there are too few).
        """
        removes = size // 10
        modifies = size * 3 // 10
        kinds = ["INSERT"] * (size - modifies - removes) + ["MODIFY"] * modifies + ["REMOVE"] * removes
        self.rng.shuffle(kinds)
        if self.mode == "overlapping":
            keys = [_hashed(f"pool:{n}") for n in self.rng.sample(range(OVERLAPPING_POOL), size)]
        else:
            keys = self._own_keys(kinds)
        records = []
        changes = []
        for kind, key in zip(kinds, keys, strict=True):
            record, change = self._record(kind, key, self.rng.randrange(len(self.images)))
            records.append(record)
            changes.append((key, change))
        return records, changes

    def _own_keys(self, kinds: list[str]) -> list[str]:
        """
        Choose this worker's keys for `kinds` (changed in place where too few keys exist).
        """
        keys = []
        for position, kind in enumerate(kinds):
            if kind == "INSERT" or not self.live:
                kinds[position] = "INSERT"
                key = _hashed(f"{self.worker}:{self.inserted}")
                self.inserted += 1
                keys.append(key)
                continue
            # Taken out of the live keys while the batch is built: each key once per batch.
            index = self.rng.randrange(len(self.live))
            self.live[index], self.live[-1] = self.live[-1], self.live[index]
            keys.append(self.live.pop())
        # What the table holds once the batch is applied (the next batch is only built then).
        self.live.extend(key for kind, key in zip(kinds, keys, strict=True) if kind != "REMOVE")
        return keys

    def warm_up(self) -> list[tuple[list[dict[str, Any]], list[tuple[str, Change]]]]:
        """
        Return two small batches on keys of this worker alone: inserts, then a change and a remove.
        """
        first, second = (_hashed(f"warm:{self.worker}:{n}") for n in range(2))
        batches = []
        for plan in ((("INSERT", first), ("INSERT", second)), (("MODIFY", first), ("REMOVE", second))):
            built = [self._record(kind, key, self.rng.randrange(len(self.images))) for kind, key in plan]
            batches.append(
                (
                    [record for record, _ in built],
                    [(key, change) for (_, key), (_, change) in zip(plan, built, strict=True)],
                )
            )
        return batches


# --- the baseline ---------------------------------------------------------------------------------


class RetriedCoreUpsert(CoreUpsert):
    """
    The baseline: strategy (b) of the replication benchmark, retried as a careful engineer retries it.

    `CoreUpsert`'s guarded upsert and delete in one transaction (no
    tombstones); a deadlock, lock wait timeout or serialization failure retries
    the whole transaction after a jittered backoff, while the invocation has
    time left.
    """

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        upserts, deletes = self.changes(event)
        for attempt in itertools.count():
            try:
                self.apply(upserts, deletes)
            except sa.exc.DBAPIError as error:
                delay = random.uniform(0, min(2.0, 0.05 * 2**attempt))
                left = context.get_remaining_time_in_millis() / 1000
                retried = error.connection_invalidated or error_kind(error) in BASELINE_RETRIES
                if not retried or attempt + 1 >= BASELINE_ATTEMPTS or left < delay + BASELINE_MARGIN_SECONDS:
                    raise
                time.sleep(delay)
            else:
                return {"batchItemFailures": []}
        raise AssertionError("unreachable")


def dynastream_handler(engine: sa.Engine, table: sa.Table) -> Handler:
    """
    Return dynastream's `lambda_handler`, replicating `Orders` into `table`.
    """
    import dynastream

    app = dynastream.App(engine=engine)
    app.replicate("Orders", into=table)
    return app.lambda_handler


# --- the worker -----------------------------------------------------------------------------------


@attrs.frozen
class Spec:
    """
    What every worker of one run does.
    """

    url: str = attrs.field(repr=False)  # may hold a password
    strategy: str
    mode: str
    workers: int
    duration: float
    table: str


@attrs.define
class WorkerResult:
    """
    What one worker did during the measured part of a run.

    Attributes:
        latencies: Per applied batch, the seconds from its first delivery to
            the invocation that applied it (the time of every invocation of
            it, added up).
        cpu_seconds: The process's CPU time inside invocations.
        retries: Lock errors (deadlocks, lock wait timeouts, ...) the driver
            met inside invocations that then succeeded: each one a transaction
            tried again within the invocation.
        errors: Every error the driver raised, by SQLSTATE or error number.
        failures: Failed invocations, by outcome: what was raised, or
            `batchItemFailures`.
        model: Per key, the newest change this worker applied.
        uncertain: Changes of a batch whose last delivery raised when the run
            ended: applied or not, nobody knows.
    """

    worker: int
    started: float = 0.0
    finished: float = 0.0
    records: int = 0
    latencies: list[float] = attrs.field(factory=list, repr=False)
    cpu_seconds: float = 0.0
    invocations: int = 0
    failed_invocations: int = 0
    max_invocation: float = 0.0
    retries: int = 0
    errors: Counter[str] = attrs.field(factory=Counter)
    failures: Counter[str] = attrs.field(factory=Counter)
    model: dict[str, Change] = attrs.field(factory=dict, repr=False)
    uncertain: dict[str, Change] = attrs.field(factory=dict, repr=False)


class _ErrorLog:
    """
    Every error the engine's driver raises, dynastream's own retries included (SQLAlchemy's `handle_error`).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[str] = []
        sa.event.listen(engine, "handle_error", self._on_error)

    def _on_error(self, context: sa.engine.ExceptionContext) -> None:
        self.seen.append(error_kind(context.original_exception))

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


@attrs.define
class _Deliveries:
    handler: Handler
    log: _ErrorLog
    result: WorkerResult

    def _applied(self, changes: list[tuple[str, Change]]) -> None:
        model = self.result.model
        for key, change in changes:
            known = model.get(key)
            if known is None or known[0] < change[0]:
                model[key] = change

    def deliver(
        self, records: list[dict[str, Any]], changes: list[tuple[str, Change]], deadline: float
    ) -> None:
        """
        Deliver one batch until it is applied, or until the run's `deadline` (monotonic) has passed.
        """
        from dynastream.testing import LambdaContext

        result = self.result
        position = 0  # the first record not known to be applied
        seconds = 0.0
        while True:
            pending = records[position:]
            context = LambdaContext(remaining_seconds=BUDGET_SECONDS)
            raised: str | None = None
            response: dict[str, Any] | None = None
            started, started_cpu = time.perf_counter(), time.process_time()
            try:
                response = self.handler({"Records": pending}, context)
            except Exception as error:  # noqa: BLE001 - whatever a handler raises fails the invocation
                raised = error_kind(error)
            elapsed = time.perf_counter() - started
            result.cpu_seconds += time.process_time() - started_cpu
            seconds += elapsed
            result.invocations += 1
            result.max_invocation = max(result.max_invocation, elapsed)
            seen = self.log.take()
            result.errors.update(seen)
            failed = None if response is None else response["batchItemFailures"]
            if failed == []:
                result.retries += sum(kind in LOCK_ERRORS for kind in seen)
                self._applied(changes[position:])
                result.records += len(pending)
                result.latencies.append(seconds)
                return
            result.failed_invocations += 1
            if failed is None:
                result.failures[raised or "?"] += 1
                if time.monotonic() >= deadline:
                    for key, change in changes[position:]:
                        result.uncertain[key] = change
                    return
                continue
            result.failures["batchItemFailures"] += 1
            # The records before the first one reported were applied; the rest come again.
            reported = {failure["itemIdentifier"] for failure in failed}
            first = next(
                (n for n, record in enumerate(pending) if record["dynamodb"]["SequenceNumber"] in reported), 0
            )
            self._applied(changes[position : position + first])
            result.records += first
            position += first
            if time.monotonic() >= deadline:
                return


def _quiet_dynastream() -> None:
    # Failed batches are counted here; dynastream's log lines would flood the report.
    logger = logging.getLogger("dynastream")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


def _work(spec: Spec, worker: int, images: list[dict[str, Any]], barrier: Barrier) -> WorkerResult:
    _quiet_dynastream()
    engine = sa.create_engine(
        spec.url, pool_size=1, max_overflow=0, pool_pre_ping=True, pool_recycle=600, hide_parameters=True
    )
    try:
        table = order_table(spec.table, sa.MetaData())
        handler = (
            dynastream_handler(engine, table)
            if spec.strategy == "dynastream"
            else RetriedCoreUpsert(engine, table)
        )
        source = Source(worker, spec.mode, images)
        log = _ErrorLog(engine)
        # Warm-up, not measured: a warm Lambda environment has connected and built its statements.
        warm = _Deliveries(handler, log, WorkerResult(worker))
        for records, changes in source.warm_up():
            warm.deliver(records, changes, deadline=time.monotonic() + BUDGET_SECONDS)
        # Its changes are part of the model; its failures, if any, are not counted.
        result = WorkerResult(worker, model=warm.result.model, uncertain=warm.result.uncertain)
        deliveries = _Deliveries(handler, log, result)
        barrier.wait(timeout=BARRIER_SECONDS)
        result.started = time.monotonic()
        deadline = result.started + spec.duration
        while time.monotonic() < deadline:
            records, changes = source.batch()
            deliveries.deliver(records, changes, deadline)
        result.finished = time.monotonic()
        return result
    finally:
        engine.dispose()  # closed connections: the server counts their deadlocks now


def work(
    spec: Spec,
    worker: int,
    images: list[dict[str, Any]],
    barrier: Barrier,
    results: Queue[WorkerResult | tuple[int, str]],
) -> None:
    """
    Run one worker (the target of its process) and put its result, or its traceback, on `results`.
    """
    try:
        outcome: WorkerResult | tuple[int, str] = _work(spec, worker, images, barrier)
    except BaseException:  # noqa: BLE001 - reported to the parent, which stops the run
        barrier.abort()
        outcome = (worker, traceback.format_exc())
    results.put(outcome)
