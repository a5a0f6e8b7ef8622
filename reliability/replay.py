"""
One history, replayed: by one worker, or by several at once, each on its own keys of one table.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

import dynastream
from dynastream._engine import create_engine

from . import kinesis, streams
from .checks import Progress, check_final, check_poison
from .database import TABLE, URLS, items, metadata, open_transactions, quarantined, rows
from .delivery import deliver_until_done, schedule
from .faults import ErrorTally, Killer, ProcessKiller, ServerFaults, patiently

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from .history import History

KEYS = [f"k{n}" for n in range(6)]  # a single worker's
KEYS_PER_WORKER = 4  # each concurrent worker's, however many workers there are
LAYOUTS = ("disjoint", "neighbouring")  # of concurrent workers' keys, chosen by the seed's parity
BLOCK = 10_000  # disjoint layout: worker i owns k{i * BLOCK} to k{i * BLOCK + KEYS_PER_WORKER - 1}
HISTORIES = {"dynamodb": streams.history, "kinesis": kinesis.history}
# The options of each source's histories, and the command-line flags that set them.
SOURCE_RATES = {
    "dynamodb": (),
    "kinesis": ("tie_rate", "millisecond_share", "reorder_rate", "duplicate_rate"),
}


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


class Invoker:
    """
    Delivers a worker's events: through the process killer, once to a read-only server when armed.

    For a Kinesis history, it also checks the ties dynastream counted in each
    batch applied whole against the ties the batch holds.
    """

    def __init__(
        self,
        app: dynastream.App,
        *,
        engine: sa.Engine,
        worker: ProcessKiller,
        faults: ServerFaults,
        made: History,
        counts: Counter[str],
        violations: list[str],
        seed: int,
    ) -> None:
        self.app, self.engine, self.worker, self.faults, self.made = app, engine, worker, faults, made
        self.counts, self.violations, self.seed = counts, violations, seed
        self.read_only_next = False

    def __call__(self, event: dict[str, Any]) -> dict[str, Any] | None:
        if not self.read_only_next:
            invocation = self.worker.deliver(self.app, self.engine, event)
        else:
            self.read_only_next = False  # one delivery meets the read-only server; the next a writable one
            self.faults.set_read_only(on=True)
            try:
                invocation = self.worker.deliver(self.app, self.engine, event)
            finally:
                self.faults.set_read_only(on=False)
        if invocation is not None:
            self.counts["tied_reported"] += invocation["tied"]
            if isinstance(self.made, kinesis.KinesisHistory):
                self.check_ties(self.made, event, invocation)
        return invocation

    def check_ties(
        self, made: kinesis.KinesisHistory, event: dict[str, Any], invocation: dict[str, Any]
    ) -> None:
        if invocation["response"]["batchItemFailures"]:
            return  # stopped at a record: the count is of the records before it
        expected = kinesis.in_batch_ties(made, event["Records"])
        if expected is None:
            return
        self.counts["tie_counts_checked"] += 1
        # Every tie inside the batch is counted; so is, at most once per item, a
        # tie of the item's newest change with the change already stored.
        items = kinesis.batch_items(made, event["Records"])
        if not expected <= invocation["tied"] <= expected + items:
            self.violations.append(
                f"seed {self.seed}: dynastream counted {invocation['tied']} tie(s) in a batch of"
                f" {len(event['Records'])} records holding {expected}, on {items} items"
            )


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
    ttl: Literal["delete"] | None = rng.choice(["delete", None])
    app.replicate(TABLE, into=items, ttl=ttl, on_poison=policy, source=options.source)
    own_keys = worker_keys(layout, index, workers)
    made = HISTORIES[options.source](
        rng,
        rng.randint(5, 40),
        poison=options.poison,
        keys=own_keys,
        stride=workers,
        offset=index,
        options=options,
    )
    violations = kinesis.check_order(made, seed) if isinstance(made, kinesis.KinesisHistory) else []
    plan = schedule(rng, made.records)
    server = admin is not None
    flip_at = rng.randrange(len(plan)) if server and rng.random() < options.read_only_rate else -1
    if server and rng.random() < options.restart_rate:
        faults.arm_restart(engine, rng.randint(1, 3 * len(plan)))
    counts = Counter[str](made.counts)
    reports: dict[int, int] = {}
    progress = Progress(own_keys, options.source, seed)
    invoker = Invoker(
        app,
        engine=engine,
        worker=worker,
        faults=faults,
        made=made,
        counts=counts,
        violations=violations,
        seed=seed,
    )
    for position, planned in enumerate(plan):
        invoker.read_only_next = position == flip_at
        deliver_until_done(
            planned,
            invoker,
            poisoned=made.poisoned,
            policy=policy,
            reports=reports,
            counts=counts,
            violations=violations,
            seed=seed,
        )
        violations += progress.check(reader)
    final = {key: version for key, (_, version) in rows(reader).items() if key in own_keys}
    problems, unlike, untied = check_final(made, final, seed)
    violations += problems
    set_aside = [event_id for event_id in quarantined(reader) if event_id in made.event_ids]
    violations += check_poison(made, policy, reports, set_aside, seed)
    engine.dispose()
    reader.dispose()
    if admin is not None:
        admin.dispose()
    counts.update(
        restarts=faults.restarts,
        read_only_flips=faults.flips,
        connection_kills=killer.kills,
        process_kills=worker.kills,
        poison=len(made.poisoned),
        reported=len(reports),
        quarantined=len(set_aside),
        unlike_true_order=len(unlike),
        unlike_untied=len(untied),
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
        + (f" --source {options.source}" if options.source != "dynamodb" else "")
        + "".join(
            f" --{rate.replace('_', '-')} {getattr(options, rate)}"
            for rate in (*rates, *SOURCE_RATES[options.source])
        )
    )
