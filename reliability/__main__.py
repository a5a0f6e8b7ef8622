"""
Run the fault-injection suite: `python -m reliability [--histories N] [--seed S]`.

For each history: random INSERT / MODIFY / REMOVE (some by time to live) over a
few keys, with sequence numbers of 21 to 40 digits; delivered in batches with
duplicates, whole-batch redelivery, redelivery from a reported record, halves
and late older batches; with the server killing the connection at random
statements and during COMMIT. A delivery that fails is delivered again, as the
event source mapping does. Checked after every delivery: no row ever moves to
an older version; and at the end: the table equals the reference model.
Exits 1 on any violation, printing the seed that reproduces it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

import sqlalchemy as sa

import dynastream
from dynastream._engine import create_engine

URLS = {
    "sqlite": None,
    "postgresql": os.environ.get(
        "DYNASTREAM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("DYNASTREAM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Items/stream/2026-11-01T00:00:00.000"
KEYS = [f"k{n}" for n in range(6)]

metadata = sa.MetaData()
items = sa.Table(
    "reliability_items",
    metadata,
    sa.Column("pk", sa.String(20), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    dynastream.sequence_column(),
)


def change(position: int, key: str, op: str) -> dict[str, Any]:
    sequence_number = 10**20 * (7**position) // 5**position + position  # 21 digits, growing past 30
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
    if op == "ttl":
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def history(rng: random.Random, length: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    records, model = [], {}
    for position in range(length):
        key = rng.choice(KEYS)
        op = rng.choices(["put", "remove", "ttl"], weights=[6, 2, 1])[0]
        records.append(change(position, key, op))
        if op == "put":
            model[key] = position
        else:
            model.pop(key, None)
    return records, model


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
        with self.admin.connect() as admin:
            admin.exec_driver_sql(statement)
            admin.commit()
        self.kills += 1


def rows(reader: sa.Engine) -> dict[str, tuple[int, int]]:
    with reader.connect() as connection:
        return {r.pk: (int(r.dynastream_sequence), r.version) for r in connection.execute(sa.select(items))}


def run_one(name: str, seed: int, rate: float) -> tuple[int, int, int, list[str]]:
    rng = random.Random(seed)
    url = URLS[name] or f"sqlite:////tmp/dynastream-reliability-{os.getpid()}.sqlite"
    engine = create_engine(dynastream.Settings(database_url=url))
    metadata.drop_all(engine)
    dynastream.schema.metadata.drop_all(engine)
    metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    admin = None if name == "sqlite" else sa.create_engine(url, poolclass=sa.pool.NullPool)
    reader = create_engine(dynastream.Settings(database_url=url))  # not killed: it checks
    killer = Killer(engine, admin, rng, rate)
    app = dynastream.App(engine=engine)
    app.replicate("Items", into=items, ttl=rng.choice(["delete", None]))
    records, model = history(rng, rng.randint(5, 40))
    violations: list[str] = []
    seen: dict[str, int] = {}
    deliveries = 0
    failed_invocations: list[str] = []
    for planned in schedule(rng, records):
        batch = planned
        for _ in range(50):  # the event source mapping delivers a failed batch again
            deliveries += 1
            try:
                response = app.lambda_handler({"Records": batch}, None)
            except Exception as error:  # noqa: BLE001 - a failed invocation: the whole batch comes again
                failed_invocations.append(type(error).__name__)
                continue
            failures = response["batchItemFailures"]
            if not failures:
                break
            reported = failures[0]["itemIdentifier"]
            batch = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= int(reported)]
        else:
            violations.append(f"seed {seed}: a batch never got through")
        for key, (sequence, _) in rows(reader).items():
            if sequence < seen.get(key, 0):
                violations.append(f"seed {seed}: {key} moved back to an older version")
            seen[key] = max(seen.get(key, 0), sequence)
    final = {key: version for key, (_, version) in rows(reader).items()}
    if final != model:
        violations.append(f"seed {seed}: final state {final} != model {model}")
    engine.dispose()
    reader.dispose()
    if admin is not None:
        admin.dispose()
    return deliveries, killer.kills, len(failed_invocations), violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability", description=__doc__)
    parser.add_argument("--histories", type=int, default=30, help="histories per engine (default 30)")
    parser.add_argument("--engines", default="sqlite,postgresql,mysql", help="comma-separated")
    parser.add_argument(
        "--kill-rate", type=float, default=0.03, help="chance of a kill per statement and COMMIT"
    )
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    parser.add_argument("--write", metavar="PATH", help="also write the summary as Markdown to PATH")
    arguments = parser.parse_args(argv)
    lines: list[str] = []
    first = arguments.seed if arguments.seed is not None else int(time.time())
    lines.append(
        f"reliability: {arguments.histories} histories per engine, kill rate {arguments.kill_rate},"
        f" seeds from {first}"
    )
    print(lines[-1])
    found = False
    for name in [n.strip() for n in arguments.engines.split(",") if n.strip()]:
        deliveries = kills = failed = 0
        violations: list[str] = []
        for seed in range(first, first + arguments.histories):
            d, k, f, v = run_one(name, seed, arguments.kill_rate)
            deliveries, kills, failed, violations = deliveries + d, kills + k, failed + f, violations + v
        lines.append(
            f"  {name:10} histories {arguments.histories:5}  deliveries {deliveries:6}  connections killed"
            f" {kills:5}  failed invocations {failed:5}  violations {len(violations)}"
        )
        lines.extend(f"    {violation}" for violation in violations)
        print("\n".join(lines[-1 - len(violations) :]))
        found = found or bool(violations)
    lines.append(
        "reliability: " + ("VIOLATIONS FOUND" if found else "0 lost, 0 regressions, final states equal")
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
