"""
Run the fault-injection suite: `python -m reliability [--histories N] [--seed S] [--source kinesis]`.

For each history: random INSERT / MODIFY / REMOVE (some by time to live) over a
few keys, and poison records (a value that does not fit its column, or a
malformed one). From DynamoDB Streams (the default source, `streams`): records
with sequence numbers of 21 to 40 digits, in the order the changes were made.
From Kinesis Data Streams for DynamoDB (`--source kinesis`, `kinesis`): change
records timed in microseconds or milliseconds, some tying, wrapped in Kinesis
records, some of them late and some twice. Either is delivered in batches with
duplicates, whole-batch redelivery, redelivery from a reported record, halves
and late older batches (`delivery`); with the server killing the connection at
random statements and during COMMIT, and the worker process killed (SIGKILL) at
random statements or between COMMIT and its response (`faults`). A delivery
that fails is delivered again, as the event source mapping does; a poison record
reported again and again is skipped, as the event source mapping does once its
retries are spent. Half of the histories quarantine poison records instead.

Half of the histories (all with --concurrent-only) run --workers workers at
once on one table, each with its own keys and stream positions: on
disjoint keys (each worker a contiguous block, far from the others' in the
key order; even seeds) or on neighbouring ones (interleaved in the primary
key; odd seeds). The key pool grows with the workers: each owns KEYS_PER_WORKER.

Checked after every delivery: no item ever moves to an older version (its row
or its tombstone), and no row comes back older than the REMOVE that deleted it;
every reported record is a poison record (no false report), and each poison
record is reported (policy "report") or quarantined, exactly once (policy
"quarantine"). At the end: the table equals the reference model (every change
but the poison ones; from Kinesis, the greatest ordering number per item wins),
any item unlike the order the changes were made is one where two changes tie
(counted), and no transaction is left open on the server.
Exits 1 on any violation, printing the seed that reproduces it.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import time
from collections import Counter

from .replay import LAYOUTS, reproduce, run_one


def arguments_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--histories", type=int, default=30, help="histories per engine (default 30)")
    parser.add_argument("--engines", default="sqlite,postgresql,mysql", help="comma-separated")
    parser.add_argument(
        "--source",
        choices=("dynamodb", "kinesis"),
        default="dynamodb",
        help="DynamoDB Streams records, or Kinesis Data Streams for DynamoDB ones (default dynamodb)",
    )
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
    kinesis = parser.add_argument_group("Kinesis Data Streams histories (--source kinesis)")
    kinesis.add_argument(
        "--tie-rate",
        type=float,
        default=0.15,
        help="chance that a change is to the item of the change before, at its very microsecond"
        " (default 0.15)",
    )
    kinesis.add_argument(
        "--millisecond-share",
        type=float,
        default=0.2,
        help="share of the records that carry milliseconds, not microseconds (default 0.2)",
    )
    kinesis.add_argument(
        "--reorder-rate",
        type=float,
        default=0.3,
        help="chance that a change comes late in the stream: 1-3 places mostly, else up to 20 (default 0.3)",
    )
    kinesis.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.15,
        help="chance that a change is in the stream twice, the copy up to 25 places later (default 0.15)",
    )
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    parser.add_argument("--verbose", action="store_true", help="show dynastream's log of each failure")
    parser.add_argument("--write", metavar="PATH", help="also write the summary as Markdown to PATH")
    return parser


def engine_lines(
    name: str, histories: int, totals: Counter[str], violations: int, seconds: float
) -> list[str]:
    """
    Return the summary lines of one engine's run.
    """
    lines = [
        (
            f"  {name:10} histories {histories:5}  deliveries {totals['deliveries']:6}"
            f"  connections killed {totals['connection_kills']:5}  workers killed {totals['process_kills']:5}"
            f"  restarts {totals['restarts']:3}  read-only flips {totals['read_only_flips']:3}"
            f"  with concurrent workers {totals['concurrent']:4}"
            f" (disjoint {totals['disjoint']}, neighbouring {totals['neighbouring']})"
            f"  failed invocations {totals['failed']:5}  poison records {totals['poison']:4}"
            f" (reported {totals['reported']}, quarantined {totals['quarantined']})"
            f"  violations {violations}  ({seconds:.0f} s)"
        )
    ]
    if totals["changes"]:  # a Kinesis run
        lines.append(
            f"    kinesis: {totals['changes']} changes ({totals['millisecond']} in milliseconds),"
            f" {totals['late']} late, {totals['duplicates']} twice;"
            f" ties {totals['ties']} (on {totals['tied_items']} items),"
            f" items unlike the true order {totals['unlike_true_order']}"
            f" ({totals['unlike_true_order'] - totals['unlike_untied']} at a tie,"
            f" {totals['unlike_untied']} at none);"
            f" ties dynastream counted in its batch summaries {totals['tied_reported']}"
            f" (checked in {totals['tie_counts_checked']} batches)"
        )
    for layout, (label, kind) in itertools.product(
        ("single", *LAYOUTS), (("failed invocations by error", "failed"), ("errors met", "met"))
    ):
        prefix = f"{layout} {kind} "
        kinds = sorted((key[len(prefix) :], n) for key, n in totals.items() if key.startswith(prefix))
        if kinds:
            lines.append(f"    {layout}, {label}: " + ", ".join(f"{kind}: {n}" for kind, n in kinds))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = arguments_parser()
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
    kinesis = arguments.source == "kinesis"
    lines.append(
        f"reliability: {arguments.histories} histories per engine"
        + (
            f" from Kinesis Data Streams (tie rate {arguments.tie_rate}, millisecond share"
            f" {arguments.millisecond_share}, reorder rate {arguments.reorder_rate}, duplicate rate"
            f" {arguments.duplicate_rate})"
            if kinesis
            else ""
        )
        + f", connection kill rate {arguments.kill_rate}, process kill rate {arguments.process_kill_rate},"
        f" restart rate {arguments.restart_rate}, read-only rate {arguments.read_only_rate}, poison weight"
        f" {arguments.poison}, {arguments.workers} concurrent workers in"
        f" {'every history' if arguments.concurrent_only else 'half of the histories'}, seeds from {first}"
    )
    print(lines[-1])
    found = False
    unlike = 0
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
        seconds = time.monotonic() - started
        here = engine_lines(name, arguments.histories, totals, len(violations), seconds)
        here[1:1] = [f"    {line}" for line in [*violations, *again]]
        lines += here
        print("\n".join(here))
        found = found or bool(violations)
        unlike += totals["unlike_true_order"]
    final = (
        f"final states equal the greatest ordering number per item ({unlike} items unlike the true order"
        " over all engines, each at a tie)"
        if kinesis
        else "final states equal"
    )
    lines.append(
        "reliability: "
        + (
            "VIOLATIONS FOUND"
            if found
            else f"0 lost, 0 regressions, 0 false reports, {final}, no transaction left open"
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
