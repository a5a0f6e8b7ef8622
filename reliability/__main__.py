"""
Run the fault-injection suite: `python -m reliability [--histories N] [--seed S]`.

For each history: random INSERT / MODIFY / REMOVE (some by time to live) over a
few keys, with sequence numbers of 21 to 40 digits, and poison records (a value
that does not fit its column, or a malformed one); delivered in batches with
duplicates, whole-batch redelivery, redelivery from a reported record, halves
and late older batches; with the server killing the connection at random
statements and during COMMIT, and the worker process killed (SIGKILL) at random
statements or between COMMIT and its response. A delivery that fails is
delivered again, as the event source mapping does; a poison record reported
again and again is skipped, as the event source mapping does once its retries
are spent. Half of the histories quarantine poison records instead.

Half of the histories (all with --concurrent-only) run --workers workers at
once on one table, each with its own keys and stream positions: on
disjoint keys (each worker a contiguous block, far from the others' in the
key order; even seeds) or on neighbouring ones (interleaved in the primary
key; odd seeds). The key pool grows with the workers: each owns KEYS_PER_WORKER.

Checked after every delivery: no row ever moves to an older version; every
reported record is a poison record (no false report), and each poison record
is reported (policy "report") or quarantined, exactly once (policy
"quarantine"). At the end: the table equals the reference model (every change
but the poison ones), and no transaction is left open on the server.
Exits 1 on any violation, printing the seed that reproduces it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import sqlalchemy as sa

import dynastream
from dynastream._engine import create_engine

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

T = TypeVar("T")

URLS = {
    "sqlite": None,
    "postgresql": os.environ.get(
        "DYNASTREAM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("DYNASTREAM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Items/stream/2026-11-01T00:00:00.000"
KEYS = [f"k{n}" for n in range(6)]  # a single worker's
KEYS_PER_WORKER = 4  # each concurrent worker's, however many workers there are
LAYOUTS = ("disjoint", "neighbouring")  # of concurrent workers' keys, chosen by the seed's parity
BLOCK = 10_000  # disjoint layout: worker i owns k{i * BLOCK} to k{i * BLOCK + KEYS_PER_WORKER - 1}


def worker_keys(layout: str, index: int, workers: int) -> list[str]:
    """
    Return the keys of worker `index` of `workers`, in primary-key order.

    Neighbouring: the pool of `workers * KEYS_PER_WORKER` keys dealt out in turn,
    so that each of a worker's keys sits between two of other workers'.
    Disjoint: a contiguous block per worker, BLOCK apart from the next worker's.
    Keys are zero-padded, so that their text order is their numeric order.
    """
    if workers == 1:
        return KEYS
    if layout == "neighbouring":
        numbers = [j * workers + index for j in range(KEYS_PER_WORKER)]
    else:
        numbers = [index * BLOCK + j for j in range(KEYS_PER_WORKER)]
    return [f"k{number:08d}" for number in numbers]


metadata = sa.MetaData()
items = sa.Table(
    "reliability_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    dynastream.sequence_column(),
)


def change(position: int, key: str, op: str, *, stride: int = 1) -> dict[str, Any]:
    # 21 digits, growing past 30 but not past 40 (DynamoDB's most): the growth slows with more than
    # three interleaved workers, whose positions reach 40 times their number; the sum still grows.
    growth = position * 3 // max(3, stride)
    sequence_number = 10**20 * (7**growth) // 5**growth + position
    keys = {"pk": {"S": key}}
    dynamodb: dict[str, Any] = {
        "Keys": keys,
        "SequenceNumber": str(sequence_number),
        "StreamViewType": "NEW_IMAGE",
    }
    record: dict[str, Any] = {
        "eventID": f"e-{position}",
        "eventName": "REMOVE" if op in ("remove", "ttl") else "MODIFY",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": ARN,
        "dynamodb": dynamodb,
    }
    if op == "put":
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": str(position)}}
    elif op == "poison":  # a fraction for an Integer column: a MappingError
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": f"{position}.5"}}
    elif op == "malformed":  # a JSON number where DynamoDB sends text: a MalformedRecordError
        dynamodb["NewImage"] = {"pk": {"S": key}, "version": {"N": position}}
    if op == "ttl":
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


POISON = ("poison", "malformed")


def history(
    rng: random.Random,
    length: int,
    *,
    poison: float,
    keys: list[str] = KEYS,
    stride: int = 1,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, int], set[int]]:
    """
    Return the records, the reference model's final rows, and the poison sequence numbers.

    Concurrent workers each take every `stride`-th position from `offset`, so
    that their sequence numbers never meet.
    """
    records, model, poisoned = [], {}, set()
    for step in range(length):
        position = step * stride + offset
        key = rng.choice(keys)
        op = rng.choices(["put", "remove", "ttl", *POISON], weights=[6, 2, 1, poison, poison])[0]
        records.append(change(position, key, op, stride=stride))
        if op == "put":
            model[key] = position
        elif op in POISON:  # never applied: the row keeps what it had
            poisoned.add(int(records[-1]["dynamodb"]["SequenceNumber"]))
        else:
            model.pop(key, None)
    return records, model, poisoned


def schedule(rng: random.Random, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches, start = [], 0
    while start < len(records):
        size = rng.randint(1, 8)
        batches.append(records[start : start + size])
        start += size
    plan: list[list[dict[str, Any]]] = []
    for index, batch in enumerate(batches):
        plan.append(batch)
        roll = rng.random()
        if roll < 0.15:
            plan.append(batch)
        elif roll < 0.3:
            plan.append(batch[rng.randrange(len(batch)) :])
        elif roll < 0.45:
            half = max(1, len(batch) // 2)
            plan += [batch[:half], batch[half:]]
        elif roll < 0.6 and index:
            plan.append(batches[rng.randrange(index)])
    return [batch for batch in plan if batch]


class Killer:
    """Kills the worker's server connection at random statements and COMMITs."""

    def __init__(self, engine: sa.Engine, admin: sa.Engine | None, rng: random.Random, rate: float) -> None:
        self.admin, self.rng, self.rate, self.kills = admin, rng, rate, 0
        if admin is None or rate <= 0:
            return
        sa.event.listen(engine, "before_cursor_execute", self.maybe_kill)
        sa.event.listen(engine, "commit", self.maybe_kill_connection)

    def maybe_kill(self, connection: sa.Connection, *_: Any) -> None:
        self.maybe_kill_connection(connection)

    def maybe_kill_connection(self, connection: sa.Connection) -> None:
        if self.admin is None or self.rng.random() >= self.rate:
            return
        raw = connection.connection.dbapi_connection
        if connection.dialect.name == "postgresql":
            pid = raw.info.backend_pid  # type: ignore[union-attr]
            statement = f"SELECT pg_terminate_backend({int(pid)})"
        else:
            statement = f"KILL {int(raw.thread_id())}"  # type: ignore[union-attr]
        try:
            with self.admin.connect() as admin:
                admin.exec_driver_sql(statement)
                admin.commit()
        except sa.exc.DBAPIError:  # the server is restarting (another worker's fault): no kill
            return
        self.kills += 1


class ProcessKiller:
    """
    Runs some deliveries in a forked worker that dies by SIGKILL at a random point.

    The point is the n-th statement the worker sends, or the moment after its
    COMMIT and before its response reaches the event source mapping. The
    parent sees a failed invocation, as Lambda would, and delivers the batch
    again.
    """

    def __init__(self, rng: random.Random, rate: float, tally: ErrorTally) -> None:
        self.rng, self.rate, self.kills, self.tally = rng, rate, 0, tally

    def deliver(self, app: dynastream.App, engine: sa.Engine, event: dict[str, Any]) -> dict[str, Any] | None:
        """Return the batch response, or None when the worker was killed."""
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return app.lambda_handler(event, None)
        after_commit = self.rng.random() < 0.3
        nth = self.rng.randint(1, 6)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read)
            inherited = engine.pool  # kept alive: the parent's connection is never closed from here
            code = 0
            before = Counter(self.tally.counts)
            answer: dict[str, Any] = {}
            try:
                engine.dispose(close=False)
                if not after_commit:
                    sent = [0]

                    def die_at_nth(*_: Any) -> None:
                        sent[0] += 1
                        if sent[0] == nth:
                            os.kill(os.getpid(), signal.SIGKILL)

                    sa.event.listen(engine, "before_cursor_execute", die_at_nth)
                answer["response"] = app.lambda_handler(event, None)
                if after_commit:
                    os.kill(os.getpid(), signal.SIGKILL)
            except BaseException as error:  # noqa: BLE001 - reported to the parent as a failed invocation
                answer["error"] = error_kind(error)
                code = 3
            finally:
                answer["errors"] = self.tally.counts - before
                with contextlib.suppress(OSError):  # a pipe holds a small answer whole
                    os.write(write, json.dumps(answer).encode())
                del inherited
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            self.kills += 1
            return None
        answer = json.loads(data) if data else {"error": "no answer"}
        self.tally.counts.update(answer.get("errors", {}))
        if os.WEXITSTATUS(status) != 0 or "response" not in answer:
            raise InvocationFailedError(answer.get("error", "no answer"))
        response: dict[str, Any] = answer["response"]
        return response


_PIDOF_MARIADB = ["/usr/bin/pidof", "mariadbd"]
# How .ci/run starts MariaDB when it is down.
_START_MARIADB = [
    "/usr/sbin/start-stop-daemon",
    "--start",
    "--oknodo",
    "--background",
    "--exec",
    "/usr/sbin/mariadbd",
]


class ServerFaults:
    """
    Restarts the database server, or makes it read-only, in the middle of a history.

    A restart happens inside a delivery, before a random statement of the
    worker (which then meets a dead connection); a read-only flip is a
    failover's: the server turns read-only and drops the worker's sessions for
    one delivery, then turns writable again. MariaDB's `read_only` does not
    bind privileged users, so the worker connects as an unprivileged one there.
    """

    WORKER = "dynastream_reliability"

    def __init__(self, name: str, url: str | None, admin: sa.Engine | None) -> None:
        self.name, self.admin = name, admin
        self.restarts = self.flips = 0
        self.parent = os.getpid()
        self.worker_url = url
        if admin is not None and name == "mysql" and url is not None:
            password = "reliability-only"  # noqa: S105 - a local test user
            database = sa.engine.make_url(url).database

            def create_user() -> None:
                with admin.begin() as connection:
                    connection.exec_driver_sql(
                        f"CREATE USER IF NOT EXISTS '{self.WORKER}'@'%%' IDENTIFIED BY '{password}'"
                    )
                    connection.exec_driver_sql(
                        f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{self.WORKER}'@'%%'"
                    )

            patiently(create_user)
            self.worker_url = (
                sa.engine.make_url(url)
                .set(username=self.WORKER, password=password)
                .render_as_string(hide_password=False)
            )

    def set_read_only(self, *, on: bool) -> None:
        patiently(lambda: self._set_read_only(on=on))
        self.flips += on

    def _set_read_only(self, *, on: bool) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as session:
            connection = session.execution_options(isolation_level="AUTOCOMMIT")
            if self.name == "postgresql":
                # A session opened while the database is read-only is read-only too.
                connection.exec_driver_sql("SET default_transaction_read_only = off")
                database = connection.exec_driver_sql("SELECT current_database()").scalar()
                connection.exec_driver_sql(
                    f'ALTER DATABASE "{database}" SET default_transaction_read_only = {"on" if on else "off"}'
                )
                if on:
                    connection.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
            else:
                connection.exec_driver_sql(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")
                if on:
                    ids = connection.exec_driver_sql(
                        f"SELECT id FROM information_schema.processlist WHERE user = '{self.WORKER}'"
                    ).scalars()
                    for thread in list(ids):
                        with contextlib.suppress(sa.exc.DBAPIError):  # it may have ended meanwhile
                            connection.exec_driver_sql(f"KILL {int(thread)}")

    def arm_restart(self, engine: sa.Engine, nth: int) -> None:
        """Restart the server before the worker's `nth` statement (in this process only)."""
        sent = [0]

        def restart_at_nth(*_: Any) -> None:
            if os.getpid() != self.parent:
                return
            sent[0] += 1
            if sent[0] == nth:
                self.restart()

        sa.event.listen(engine, "before_cursor_execute", restart_at_nth)

    def restart(self) -> None:
        if self.name == "postgresql":
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(  # noqa: S603 - a fixed command
                ["/usr/bin/pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
                capture_output=True,
            )
        else:
            assert self.admin is not None  # noqa: S101 - restarts are armed only on servers
            with contextlib.suppress(Exception), self.admin.connect() as connection:
                connection.exec_driver_sql("SHUTDOWN")
            deadline = time.monotonic() + 120
            while subprocess.run(_PIDOF_MARIADB, capture_output=True, check=False).returncode == 0:  # noqa: S603
                if time.monotonic() > deadline:
                    raise RuntimeError("MariaDB did not stop")
                time.sleep(0.1)
            subprocess.run(_START_MARIADB, check=True, capture_output=True)  # noqa: S603 - a fixed command
        self.wait_until_up()
        self.restarts += 1

    def wait_until_up(self) -> None:
        assert self.admin is not None  # noqa: S101
        admin = self.admin

        def ping() -> None:
            with admin.connect() as connection:
                connection.exec_driver_sql("SELECT 1")

        patiently(ping)


def patiently(work: Callable[[], T]) -> T:
    """
    Run the harness's own `work`, again while the server restarts (up to 120 s).
    """
    deadline = time.monotonic() + 120
    while True:
        try:
            return work()
        except sa.exc.DBAPIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def rows(reader: sa.Engine) -> dict[str, tuple[int, int]]:
    def read() -> dict[str, tuple[int, int]]:
        with reader.connect() as connection:
            selected = connection.execute(sa.select(items))
            return {r.pk: (int(r.dynastream_sequence), r.version) for r in selected}

    return patiently(read)


def quarantined(reader: sa.Engine) -> list[int]:
    table = dynastream.schema.quarantine

    def read() -> list[int]:
        with reader.connect() as connection:
            selected = sa.select(table.c.sequence_number).where(table.c.table_name == "Items")
            return [int(number) for number in connection.execute(selected).scalars()]

    return patiently(read)


def open_transactions(admin: sa.Engine | None) -> int:
    """
    Count the server's open transactions but the caller's, waiting up to 10 s for them to end.

    A killed worker's session ends when the server notices its socket closed.
    """
    if admin is None:
        return 0
    if admin.dialect.name == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
    else:
        # Only this database's sessions (and sessionless transactions): the server may be shared.
        query = (
            "SELECT count(*) FROM information_schema.innodb_trx t"
            " LEFT JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
            " WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND (p.id IS NULL OR p.db = DATABASE())"
        )
    deadline = time.monotonic() + 10
    while True:
        with admin.connect() as connection:
            count = int(connection.exec_driver_sql(query).scalar() or 0)
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def error_kind(error: BaseException) -> str:
    """
    Name a failure by its driver error class and code (MySQL error number, SQLSTATE), if any.
    """
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, InvocationFailedError):
            return seen.kind
        orig = seen.orig if isinstance(seen, sa.exc.DBAPIError) else seen
        if type(orig).__module__.split(".")[0] in ("psycopg", "pymysql", "sqlite3"):
            code = getattr(orig, "sqlstate", None)
            if orig.args and isinstance(orig.args[0], int):
                code = orig.args[0]  # a MySQL error number (PyMySQL has a SQLSTATE too, less precise)
            return f"{type(orig).__name__} {code}" if code is not None else type(orig).__name__
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


class InvocationFailedError(Exception):
    """A forked worker's invocation failed, with `kind` (from `error_kind`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"the worker's invocation failed: {kind}")
        self.kind = kind


class ErrorTally:
    """
    Counts the database errors an engine meets, by kind: those dynastream retried
    inside the invocation as well as those that failed it.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.counts: Counter[str] = Counter()
        sa.event.listen(engine, "handle_error", self.count)

    def count(self, context: sa.engine.ExceptionContext) -> None:
        self.counts["met " + error_kind(context.original_exception)] += 1


def deliver_until_done(
    batch: list[dict[str, Any]],
    deliver: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    poisoned: set[int],
    policy: str,
    reports: dict[int, int],
    counts: Counter[str],
    violations: list[str],
    seed: int,
) -> None:
    """
    Deliver `batch` as the event source mapping does, until it is through.

    A failed invocation delivers it again; a reported record, the records from it
    on; a record reported twice is skipped (its retries spent, the event source
    mapping sends it to the on-failure destination and goes on).
    """
    for _ in range(50):
        counts["deliveries"] += 1
        try:
            response = deliver({"Records": batch})
        except Exception as error:  # noqa: BLE001 - a failed invocation: the whole batch comes again
            counts["failed"] += 1
            counts["failed " + error_kind(error)] += 1
            continue
        if response is None:  # the worker was killed: the whole batch comes again
            continue
        failures = response["batchItemFailures"]
        if not failures:
            return
        reported = int(failures[0]["itemIdentifier"])
        if reported not in poisoned:
            violations.append(f"seed {seed}: record {reported} was reported, but it is not poison")
        elif policy == "quarantine":
            violations.append(f"seed {seed}: poison record {reported} was reported, not quarantined")
        reports[reported] = reports.get(reported, 0) + 1
        skip = reported if reports[reported] >= 2 else -1
        batch = [
            r
            for r in batch
            if int(r["dynamodb"]["SequenceNumber"]) >= reported
            and int(r["dynamodb"]["SequenceNumber"]) != skip
        ]
        if not batch:
            return
    violations.append(f"seed {seed}: a batch never got through")


def shape(seed: int, options: argparse.Namespace) -> tuple[int, str]:
    """
    Return how many workers run the history of `seed` at once, and the layout of their keys.
    """
    workers = random.Random(seed).choice([1, options.workers])
    if options.concurrent_only:
        workers = options.workers
    return workers, LAYOUTS[seed % len(LAYOUTS)] if workers > 1 else "single"


def run_one(name: str, seed: int, options: argparse.Namespace) -> tuple[Counter[str], list[str]]:
    """
    Run one history: one worker, or several at once on their own keys of one table.
    """
    url = URLS[name] or f"sqlite:////tmp/dynastream-reliability-{os.getpid()}.sqlite"
    admin = None if name == "sqlite" else sa.create_engine(url, poolclass=sa.pool.NullPool)
    setup = create_engine(dynastream.Settings(database_url=url))

    def fresh_tables() -> None:  # patiently: the server may be short of locks for others' sake
        metadata.drop_all(setup)
        dynastream.schema.metadata.drop_all(setup)
        metadata.create_all(setup)
        dynastream.schema.metadata.create_all(setup)

    patiently(fresh_tables)
    setup.dispose()
    workers, layout = shape(seed, options)
    if workers == 1:
        counts, violations = replay(name, url, seed, options, index=0, workers=1, layout=layout)
    else:
        counts, violations = Counter[str](), []
        shares = [
            functools.partial(replay, name, url, seed, options, index=i, workers=workers, layout=layout)
            for i in range(workers)
        ]
        for child_counts, child_violations in _in_processes(shares):
            counts.update(child_counts)
            violations += child_violations
        counts["concurrent"] = 1
        counts[layout] = 1
    for key in [key for key in counts if key.startswith(("met ", "failed "))]:
        counts[f"{layout} {key}"] = counts.pop(key)  # the errors by layout of the keys
    left_open = open_transactions(admin)
    if left_open:
        violations.append(f"seed {seed}: {left_open} transaction(s) left open on the server")
    if admin is not None:
        admin.dispose()
    return counts, violations


def _in_processes(
    works: Sequence[Callable[[], tuple[Counter[str], list[str]]]],
) -> list[tuple[Counter[str], list[str]]]:
    """
    Run each of `works` in its own forked process, all at once; return their results in order.
    """
    running = []
    for work in works:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            code = 0
            try:
                counts, violations = work()
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(json.dumps([counts, violations]).encode())
            except BaseException as error:  # noqa: BLE001 - reported by the parent
                code = 3
                with contextlib.suppress(OSError), os.fdopen(write, "wb") as pipe:
                    pipe.write(
                        json.dumps([{}, [f"a worker crashed: {type(error).__name__}: {error}"]]).encode()
                    )
            finally:
                os._exit(code)
        os.close(write)
        running.append((pid, read))
    results = []
    for pid, read in running:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
        counts, violations = json.loads(data) if data else ({}, ["a worker died without a word"])
        results.append((Counter[str](counts), violations))
    return results


def replay(
    name: str,
    url: str,
    seed: int,
    options: argparse.Namespace,
    *,
    index: int,
    workers: int,
    layout: str,
) -> tuple[Counter[str], list[str]]:
    """
    Deliver one worker's history with every fault, and check what it can see.

    With several workers, each owns its keys (`worker_keys`: neighbouring the
    others' in the primary key, or a disjoint block) and every `workers`-th
    position in the stream from `index`.
    """
    rng = random.Random(seed * 100 + index)
    admin = None if name == "sqlite" else sa.create_engine(url, poolclass=sa.pool.NullPool)
    faults = ServerFaults(name, URLS[name], admin)
    engine = create_engine(dynastream.Settings(database_url=faults.worker_url or url))
    reader = create_engine(dynastream.Settings(database_url=url))  # not killed: it checks
    killer = Killer(engine, admin, rng, options.kill_rate)
    tally = ErrorTally(engine)
    worker = ProcessKiller(rng, options.process_kill_rate, tally)
    policy: Literal["report", "quarantine"] = rng.choice(["report", "quarantine"])
    app = dynastream.App(engine=engine)
    app.replicate("Items", into=items, ttl=rng.choice(["delete", None]), on_poison=policy)
    own_keys = worker_keys(layout, index, workers)
    records, model, poisoned = history(
        rng, rng.randint(5, 40), poison=options.poison, keys=own_keys, stride=workers, offset=index
    )
    own = {int(r["dynamodb"]["SequenceNumber"]) for r in records}
    plan = schedule(rng, records)
    server = admin is not None
    flip_at = rng.randrange(len(plan)) if server and rng.random() < options.read_only_rate else -1
    if server and rng.random() < options.restart_rate:
        faults.arm_restart(engine, rng.randint(1, 3 * len(plan)))
    violations: list[str] = []
    seen: dict[str, int] = {}
    counts = Counter[str]()
    reports: dict[int, int] = {}
    for position, planned in enumerate(plan):
        flip = [position == flip_at]

        def deliver(event: dict[str, Any], flip: list[bool] = flip) -> dict[str, Any] | None:
            if not flip[0]:
                return worker.deliver(app, engine, event)
            flip[0] = False  # one delivery meets the read-only server; the next a writable one
            faults.set_read_only(on=True)
            try:
                return worker.deliver(app, engine, event)
            finally:
                faults.set_read_only(on=False)

        deliver_until_done(
            planned,
            deliver,
            poisoned=poisoned,
            policy=policy,
            reports=reports,
            counts=counts,
            violations=violations,
            seed=seed,
        )
        for key, (sequence, _) in rows(reader).items():
            if key in own_keys and sequence < seen.get(key, 0):
                violations.append(f"seed {seed}: {key} moved back to an older version")
            seen[key] = max(seen.get(key, 0), sequence)
    final = {key: version for key, (_, version) in rows(reader).items() if key in own_keys}
    if final != model:
        violations.append(f"seed {seed}: final state {final} != model {model}")
    set_aside = [number for number in quarantined(reader) if number in own]
    if len(set_aside) != len(set(set_aside)):
        violations.append(f"seed {seed}: a record was quarantined twice")
    if policy == "quarantine" and set(set_aside) != poisoned:
        violations.append(f"seed {seed}: quarantined {sorted(set_aside)} != poison {sorted(poisoned)}")
    if policy == "report" and (set_aside or set(reports) != poisoned):
        violations.append(f"seed {seed}: reported {sorted(reports)} != poison {sorted(poisoned)}")
    engine.dispose()
    reader.dispose()
    if admin is not None:
        admin.dispose()
    counts.update(
        restarts=faults.restarts,
        read_only_flips=faults.flips,
        connection_kills=killer.kills,
        process_kills=worker.kills,
        poison=len(poisoned),
        reported=len(reports),
        quarantined=len(set_aside),
    )
    counts.update(tally.counts)
    return counts, violations


def reproduce(name: str, seed: int, options: argparse.Namespace) -> str:
    """Return the command that runs the history of `seed` again, alone."""
    workers, layout = shape(seed, options)
    rates = ("kill_rate", "process_kill_rate", "restart_rate", "read_only_rate", "poison")
    return (
        f"seed {seed} ({workers} worker(s), {layout}) again: python -m reliability --engines {name}"
        f" --seed {seed} --histories 1 --workers {options.workers}"
        + (" --concurrent-only" if options.concurrent_only else "")
        + "".join(f" --{rate.replace('_', '-')} {getattr(options, rate)}" for rate in rates)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--histories", type=int, default=30, help="histories per engine (default 30)")
    parser.add_argument("--engines", default="sqlite,postgresql,mysql", help="comma-separated")
    parser.add_argument(
        "--kill-rate", type=float, default=0.03, help="chance of a connection kill per statement and COMMIT"
    )
    parser.add_argument(
        "--process-kill-rate",
        type=float,
        default=0.1,
        help="chance that a delivery's worker process is killed (SIGKILL) at a random point (default 0.1)",
    )
    parser.add_argument(
        "--restart-rate",
        type=float,
        default=0.0,
        help="chance per history that the server restarts mid-delivery (needs root; default 0)",
    )
    parser.add_argument(
        "--read-only-rate",
        type=float,
        default=0.1,
        help="chance per history of a failover to a read-only server for one delivery (default 0.1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=3,
        help=(
            "half of the histories run this many concurrent workers, on disjoint keys (even seeds)"
            " or neighbouring ones (odd seeds); each worker owns 4 keys (default 3)"
        ),
    )
    parser.add_argument(
        "--concurrent-only",
        action="store_true",
        help="every history runs --workers concurrent workers (layouts still alternate with the seed)",
    )
    parser.add_argument(
        "--poison", type=float, default=0.5, help="weight of poison records among changes (puts weigh 6)"
    )
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    parser.add_argument("--verbose", action="store_true", help="show dynastream's log of each failure")
    parser.add_argument("--write", metavar="PATH", help="also write the summary as Markdown to PATH")
    arguments = parser.parse_args(argv)
    if arguments.workers < 2 and arguments.concurrent_only:
        parser.error("--concurrent-only needs --workers 2 or more")
    # Every poison record and killed connection is logged as an error; the summary says it all.
    # dynastream logs each failure; psycopg each pipeline a kill cut short; SQLAlchemy's
    # pool each connection it could not reset. The summary says it all.
    for logger in ("dynastream", "psycopg", "sqlalchemy.pool"):
        logging.getLogger(logger).setLevel(logging.DEBUG if arguments.verbose else logging.CRITICAL)
    lines: list[str] = []
    first = arguments.seed if arguments.seed is not None else int(time.time())
    lines.append(
        f"reliability: {arguments.histories} histories per engine, connection kill rate"
        f" {arguments.kill_rate}, process kill rate {arguments.process_kill_rate}, restart rate"
        f" {arguments.restart_rate}, read-only rate {arguments.read_only_rate}, poison weight"
        f" {arguments.poison}, {arguments.workers} concurrent workers in"
        f" {'every history' if arguments.concurrent_only else 'half of the histories'}, seeds from {first}"
    )
    print(lines[-1])
    found = False
    for name in [n.strip() for n in arguments.engines.split(",") if n.strip()]:
        totals = Counter[str]()
        violations: list[str] = []
        again: list[str] = []
        started = time.monotonic()
        for seed in range(first, first + arguments.histories):
            counts, found_here = run_one(name, seed, arguments)
            totals.update(counts)
            if found_here:
                again.append(reproduce(name, seed, arguments))
            violations += found_here
        lines.append(
            f"  {name:10} histories {arguments.histories:5}  deliveries {totals['deliveries']:6}"
            f"  connections killed {totals['connection_kills']:5}  workers killed {totals['process_kills']:5}"
            f"  restarts {totals['restarts']:3}  read-only flips {totals['read_only_flips']:3}"
            f"  with concurrent workers {totals['concurrent']:4}"
            f" (disjoint {totals['disjoint']}, neighbouring {totals['neighbouring']})"
            f"  failed invocations {totals['failed']:5}  poison records {totals['poison']:4}"
            f" (reported {totals['reported']}, quarantined {totals['quarantined']})"
            f"  violations {len(violations)}  ({time.monotonic() - started:.0f} s)"
        )
        lines.extend(f"    {violation}" for violation in [*violations, *again])
        print("\n".join(lines[-1 - len(violations) - len(again) :]))
        for layout, (label, kind) in itertools.product(
            ("single", *LAYOUTS), (("failed invocations by error", "failed"), ("errors met", "met"))
        ):
            prefix = f"{layout} {kind} "
            kinds = sorted((key[len(prefix) :], n) for key, n in totals.items() if key.startswith(prefix))
            if kinds:
                lines.append(f"    {layout}, {label}: " + ", ".join(f"{kind}: {n}" for kind, n in kinds))
                print(lines[-1])
        found = found or bool(violations)
    lines.append(
        "reliability: "
        + (
            "VIOLATIONS FOUND"
            if found
            else "0 lost, 0 regressions, 0 false reports, final states equal, no transaction left open"
        )
    )
    print(lines[-1])
    if arguments.write:
        command = "python -m reliability " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(arguments.write, "w", encoding="utf-8") as file:
            file.write(
                "<!-- Written by `python -m reliability --write`; do not edit by hand. -->\n\n"
                f"- Run: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, `{command.strip()}`\n"
                f"- Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n\n"
                "```text\n" + "\n".join(lines) + "\n```\n"
            )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
