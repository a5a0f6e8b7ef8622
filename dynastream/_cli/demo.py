"""
The demo: a DynamoDB table replicated into SQLite, with no servers and no AWS account.

moto plays DynamoDB and its stream in this process. The demo writes items of
every attribute type, then updates and deletes some, applies the stream through
the stream runner into a SQLite file, and checks row by row that the replica
equals a consistent scan of the table.
"""

from __future__ import annotations

import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dynastream._app import App
from dynastream._sources.aws import AwsClients
from dynastream._sources.runner import RunnerProgress, StreamRunner
from dynastream.schema import ExactString, sequence_column

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["DemoReport", "orders", "run_demo"]

TABLE = "DemoOrders"
REGION = "us-east-1"

metadata = sa.MetaData()

# One column per DynamoDB attribute type: S, N (exact decimal and integer), B,
# BOOL, NULL, M, L, SS, NS, BS.
orders = sa.Table(
    "demo_orders",
    metadata,
    sa.Column("customer", ExactString(64), primary_key=True),
    sa.Column("order_no", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total", sa.Numeric(12, 2), nullable=False),
    sa.Column("receipt", sa.LargeBinary),
    sa.Column("gift", sa.Boolean),
    sa.Column("coupon", sa.String(32)),
    sa.Column("address", sa.JSON),
    sa.Column("lines", sa.JSON),
    sa.Column("tags", sa.JSON),
    sa.Column("ratings", sa.JSON),
    sa.Column("attachments", sa.JSON),
    sa.Column("placed_at", sa.DateTime(timezone=True)),
    sequence_column(),
)


class DemoReport:
    """
    What the demo did.

    Attributes:
        written: Changes made to the source table (puts, updates, deletes).
        applied: Stream records the runner applied.
        seconds: How long the run took, reading the stream from moto included.
        apply_seconds: How much of it went to applying (mapping, writing,
            committing); the rest is moto serving the stream.
        lag_seconds: The largest replication lag seen (the first pages are
            as old as the time it took to write the source).
        rows: Rows in the replica.
        differences: Items whose row differs from the source (empty when equal).
        database_url: Where the replica is.
    """

    def __init__(
        self,
        *,
        written: int,
        progress: RunnerProgress,
        lag_seconds: float | None,
        seconds: float,
        rows: int,
        differences: list[str],
        database_url: str,
    ) -> None:
        self.written = written
        self.applied = progress.applied
        self.lag_seconds = lag_seconds
        self.seconds = seconds
        self.apply_seconds = progress.apply_seconds
        self.rows = rows
        self.differences = differences
        self.database_url = database_url


def _item(rng: random.Random, customer: str, order_no: int) -> dict[str, Any]:
    """A source item with every attribute type, as a low-level DynamoDB item."""
    lines = [
        {"M": {"sku": {"S": f"SKU-{rng.randrange(1000):03d}"}, "quantity": {"N": str(rng.randrange(1, 9))}}}
        for _ in range(rng.randrange(1, 4))
    ]
    item: dict[str, Any] = {
        "customer": {"S": customer},
        "order_no": {"N": str(order_no)},
        "status": {"S": rng.choice(["NEW", "PAID", "SHIPPED"])},
        "total": {"N": f"{rng.randrange(100, 10**7) / 100:.2f}"},
        "receipt": {"B": rng.randbytes(rng.randrange(1, 24))},
        "gift": {"BOOL": rng.random() < 0.3},
        "coupon": {"NULL": True} if rng.random() < 0.5 else {"S": f"SAVE{rng.randrange(5, 50)}"},
        "address": {"M": {"city": {"S": rng.choice(["Lyon", "Kraków", "São Paulo"])}, "zip": {"S": "69001"}}},
        "lines": {"L": lines},
        "tags": {"SS": sorted(rng.sample(["new", "vip", "b2b", "promo", "eu"], rng.randrange(1, 4)))},
        "ratings": {"NS": sorted({str(rng.randrange(1, 6)) for _ in range(3)})},
        "attachments": {"BS": [bytes([n]) * 3 for n in rng.sample(range(256), 2)]},
        "placed_at": {"N": str(1_790_000_000 + order_no)},
    }
    return item


def _write_source(dynamodb: Any, count: int, rng: random.Random) -> int:
    """Put `count` items, update about a third and delete about a tenth; return the changes made."""
    keys = [(f"customer-{n % 97:02d}", n) for n in range(count)]
    changes = 0
    for start in range(0, count, 25):
        batch = [
            {"PutRequest": {"Item": _item(rng, customer, order_no)}}
            for customer, order_no in keys[start : start + 25]
        ]
        requests: dict[str, Any] = {TABLE: batch}
        while requests:
            requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
        changes += len(batch)
    for customer, order_no in rng.sample(keys, count // 3):
        dynamodb.update_item(
            TableName=TABLE,
            Key={"customer": {"S": customer}, "order_no": {"N": str(order_no)}},
            UpdateExpression="SET #s = :s, #t = #t + :d REMOVE coupon",
            ExpressionAttributeNames={"#s": "status", "#t": "total"},
            ExpressionAttributeValues={":s": {"S": "SHIPPED"}, ":d": {"N": "0.01"}},
        )
        changes += 1
    for customer, order_no in rng.sample(keys, count // 10):
        dynamodb.delete_item(
            TableName=TABLE, Key={"customer": {"S": customer}, "order_no": {"N": str(order_no)}}
        )
        changes += 1
    return changes


def _expected_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """
    The row the replica must hold for a scanned item.

    Written out type by type, independently of dynastream's mapper.
    """
    from datetime import UTC, datetime

    def text(name: str) -> Any:
        value = item.get(name)
        return None if value is None or "NULL" in value else value["S"]

    return {
        "customer": item["customer"]["S"],
        "order_no": int(item["order_no"]["N"]),
        "status": item["status"]["S"],
        "total": Decimal(item["total"]["N"]),
        "receipt": bytes(item["receipt"]["B"]),
        "gift": item["gift"]["BOOL"],
        "coupon": text("coupon"),
        "address": {name: value["S"] for name, value in item["address"]["M"].items()},
        "lines": [
            {"sku": line["M"]["sku"]["S"], "quantity": int(line["M"]["quantity"]["N"])}
            for line in item["lines"]["L"]
        ],
        "tags": sorted(item["tags"]["SS"]),
        "ratings": sorted(int(n) for n in item["ratings"]["NS"]),
        "attachments": sorted(_base64(b) for b in item["attachments"]["BS"]),
        "placed_at": datetime.fromtimestamp(int(item["placed_at"]["N"]), UTC),
    }


def _base64(value: bytes) -> str:
    import base64

    return base64.b64encode(value).decode("ascii")


def _actual_row(row: sa.Row[Any]) -> dict[str, Any]:
    from datetime import UTC

    actual = dict(row._mapping)
    actual.pop("dynastream_sequence")
    placed = actual["placed_at"]
    if placed is not None and placed.tzinfo is None:  # SQLite keeps no time zone
        actual["placed_at"] = placed.replace(tzinfo=UTC)
    actual["attachments"] = sorted(actual["attachments"])
    return actual


def _compare(dynamodb: Any, engine: sa.Engine) -> tuple[int, list[str]]:
    """Compare the replica with a consistent scan of the source, row by row."""
    expected: dict[tuple[str, int], dict[str, Any]] = {}
    for item in _scan(dynamodb):
        row = _expected_row(item)
        expected[(row["customer"], row["order_no"])] = row
    with engine.connect() as connection:
        actual = {
            (row.customer, row.order_no): _actual_row(row) for row in connection.execute(sa.select(orders))
        }
    differences = []
    for key in sorted(expected.keys() | actual.keys()):
        if key not in actual:
            differences.append(f"{key}: missing from the replica")
        elif key not in expected:
            differences.append(f"{key}: in the replica but not in the source")
        else:
            columns = [name for name in expected[key] if expected[key][name] != actual[key][name]]
            if columns:
                differences.append(f"{key}: {', '.join(columns)} differ")
    return len(actual), differences


def _scan(dynamodb: Any) -> Iterator[dict[str, Any]]:
    arguments: dict[str, Any] = {"TableName": TABLE, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**arguments)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _create_source(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "customer", "KeyType": "HASH"},
            {"AttributeName": "order_no", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "customer", "AttributeType": "S"},
            {"AttributeName": "order_no", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def run_demo(
    database_url: str,
    *,
    items: int = 2000,
    seed: int = 20261129,
    on_progress: Callable[[RunnerProgress], None] | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> DemoReport:
    """
    Run the demo into `database_url` and return what it found.

    The replica's tables are dropped and created again first.
    """
    try:
        from moto import mock_aws
    except ImportError:
        from dynastream.exceptions import ConfigurationError

        raise ConfigurationError(
            'the demo needs moto: pip install "dynastream[local]" (or run it with `nox -s demo`)'
        ) from None
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, "demo")
    with mock_aws():
        clients = AwsClients(region_name=REGION)
        dynamodb = clients.dynamodb()
        _create_source(dynamodb)
        say(f"moto: created table {TABLE} with a NEW_AND_OLD_IMAGES stream")
        written = _write_source(dynamodb, items, random.Random(seed))  # noqa: S311 - demo data
        say(f"moto: wrote {written:,} changes: {items:,} puts of every attribute type, updates, deletes")
        app = App(database_url=database_url)
        app.replicate(TABLE, into=orders)
        engine = app.container.engine()
        metadata.drop_all(engine)
        from dynastream.schema import metadata as bookkeeping

        bookkeeping.drop_all(engine)
        metadata.create_all(engine)
        app.create_tables()
        lags: list[float] = []

        def observe(progress: RunnerProgress) -> None:
            if progress.lag_seconds is not None:
                lags.append(progress.lag_seconds)
            if on_progress is not None:
                on_progress(progress)

        started = time.perf_counter()
        progress = StreamRunner(app, TABLE, clients=clients, on_progress=observe).run(until_caught_up=True)
        seconds = time.perf_counter() - started
        rows, differences = _compare(dynamodb, engine)
        engine.dispose()
    return DemoReport(
        written=written,
        progress=progress,
        lag_seconds=max(lags, default=None),
        seconds=seconds,
        rows=rows,
        differences=differences,
        database_url=database_url,
    )


def demo_command(database_path: str, items: int) -> int:
    """The `dynastream demo` command: run the demo and print a summary."""
    from .console import StatusLine

    path = Path(database_path).resolve()
    url = f"sqlite:///{path}"
    line = StatusLine()
    started = time.monotonic()

    def show(progress: RunnerProgress) -> None:
        line.show(f"applying the stream: {progress.applied:,} records, {time.monotonic() - started:,.1f} s")

    report = run_demo(url, items=items, on_progress=show, say=lambda text: print(text, file=sys.stderr))
    line.close()
    rate = report.applied / report.apply_seconds if report.apply_seconds else 0.0
    lag = "-" if report.lag_seconds is None else f"{report.lag_seconds:.1f} s"
    print(
        f"\nReplicated {report.applied:,} stream records into {path}\n"
        f"  throughput  {rate:,.0f} records/s applying, one transaction per page of 1,000"
        f" ({report.apply_seconds:.2f} s; reading the stream from moto took the other"
        f" {report.seconds - report.apply_seconds:.1f} s)\n"
        f"  lag         {lag} at most (the oldest change's age when applied), 0 once caught up\n"
        f"  rows        {report.rows:,} in demo_orders\n"
    )
    if report.differences:
        print(f"The replica differs from the source in {len(report.differences)} item(s):")
        for difference in report.differences[:20]:
            print(f"  {difference}")
        return 1
    query = "select status, count(*), sum(total) from demo_orders group by status"
    print(
        "The replica equals the source: every item checked row by row against a consistent scan.\n\n"  # noqa: S608 - a query for the reader to run
        "Look at it:\n"
        f"  python -c \"import sqlite3; print(sqlite3.connect('{path}').execute("
        "'select customer, order_no, status, total, tags from demo_orders limit 5').fetchall())\"\n"
        f"  sqlite3 {path} '{query}'"
    )
    return 0
