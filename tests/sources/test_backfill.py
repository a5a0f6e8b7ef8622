"""
The backfill: a table loaded while its stream is applied ends equal to the source.
"""

from __future__ import annotations

import base64
import random
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream._sources import backfill as _backfill
from dynastream._sources.backfill import ReadBudget
from dynastream.exceptions import BackfillError, ConfigurationError, SourceError

metadata = sa.MetaData()
everything = sa.Table(
    "backfilled_everything",
    metadata,
    sa.Column("id", dynastream.ExactString(64), primary_key=True),
    sa.Column("s", sa.String(200)),
    sa.Column("n", sa.Numeric(20, 4)),
    sa.Column("b", sa.LargeBinary),
    sa.Column("flag", sa.Boolean),
    sa.Column("nil", sa.String(10)),
    sa.Column("m", sa.JSON),
    sa.Column("l", sa.JSON),
    sa.Column("ss", sa.JSON),
    sa.Column("ns", sa.JSON),
    sa.Column("bs", sa.JSON),
    dynastream.sequence_column(),
)
mirror = sa.Table(
    "backfilled_mirror",
    metadata,
    sa.Column("id", dynastream.ExactString(64), primary_key=True),
    sa.Column("s", sa.String(64), nullable=False),
    sa.Column("n", sa.Numeric(20, 4), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    dynastream.sequence_column(),
)

Row = tuple[str, Decimal, int]


@pytest.fixture
def make_app(engine: sa.Engine, database_url: str) -> Iterator[Callable[..., dynastream.App]]:
    """
    Build `App`s on the test database, each with its own engine (as separate processes would have).
    """
    metadata.create_all(engine)
    dynastream.App(engine=engine).create_tables()
    apps: list[dynastream.App] = []

    def make(table_name: str | None = None, into: sa.Table = mirror) -> dynastream.App:
        app = dynastream.App(database_url=database_url)
        if table_name is not None:
            app.replicate(table_name, into=into)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.container.engine().dispose()


def put_items(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        )


def mirror_item(key: int, version: int, rng: random.Random | None = None) -> dict[str, Any]:
    amount = Decimal(rng.randrange(10**8)) / 100 if rng else Decimal(key)
    return {
        "id": {"S": f"item-{key:04d}"},
        "s": {"S": f"v{version}-{key}"},
        "n": {"N": str(amount)},
        "version": {"N": str(version)},
    }


def source_rows(dynamodb: Any, table: str) -> dict[str, Row]:
    """Every item of the source, by a consistent full Scan."""
    rows: dict[str, Row] = {}
    arguments: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**arguments)
        for item in page["Items"]:
            rows[item["id"]["S"]] = (item["s"]["S"], Decimal(item["n"]["N"]), int(item["version"]["N"]))
        if "LastEvaluatedKey" not in page:
            return rows
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def target_rows(engine: sa.Engine) -> dict[str, Row]:
    with engine.connect() as connection:
        result = connection.execute(sa.select(mirror.c.id, mirror.c.s, mirror.c.n, mirror.c.version))
        return {row.id: (row.s, Decimal(row.n), row.version) for row in result}


# A plain load


def test_loads_every_item_with_every_attribute_type_exactly(
    make_app: Callable[..., dynastream.App], engine: sa.Engine, aws_clients: Any, source_table: str
) -> None:
    items = [
        {
            "id": {"S": f"item-{key:04d}"},
            "s": {"S": f"ünïcode ✓ {key}"},
            "n": {"N": f"{key}.1250"},
            "b": {"B": bytes([key % 256, 0, 255])},
            "flag": {"BOOL": key % 2 == 0},
            "nil": {"NULL": True},
            "m": {"M": {"a": {"N": "1"}, "nested": {"L": [{"S": "x"}, {"N": "2.5"}, {"NULL": True}]}}},
            "l": {"L": [{"BOOL": False}, {"M": {"k": {"S": "v"}}}, {"N": "-7"}]},
            "ss": {"SS": ["b", "a", "c"]},
            "ns": {"NS": ["10", "2", "-1.5"]},
            "bs": {"BS": [b"\x02", b"\x01"]},
        }
        for key in range(123)
    ]
    put_items(aws_clients.dynamodb(), source_table, items)
    seen: list[dynastream.BackfillProgress] = []
    backfill = dynastream.Backfill(
        make_app(source_table, into=everything),
        source_table,
        clients=aws_clients,
        segments=3,
        page_size=7,
        on_progress=seen.append,
    )

    progress = backfill.run()

    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(sa.select(everything))}
    assert {f"item-{key:04d}" for key in range(123)} == set(rows)
    for key in range(123):
        row = rows[f"item-{key:04d}"]
        assert (
            f"ünïcode ✓ {key}",
            Decimal(f"{key}.1250"),
            bytes([key % 256, 0, 255]),
            key % 2 == 0,
            None,
            {"a": 1, "nested": ["x", 2.5, None]},
            [False, {"k": "v"}, -7],
            ["a", "b", "c"],
            [-1.5, 2, 10],
            [base64.b64encode(b"\x01").decode(), base64.b64encode(b"\x02").decode()],
            "0" * 40,
        ) == (
            row.s,
            row.n,
            bytes(row.b),
            row.flag,
            row.nil,
            row.m,
            row.l,
            row.ss,
            row.ns,
            row.bs,
            row.dynastream_sequence,
        )
    assert (True, 123, 123, 3) == (progress.done, progress.scanned, progress.written, progress.segments_done)
    assert progress.pages >= 123 // 7
    assert progress.consumed_capacity > 0
    assert seen[-1] == progress
    assert [p.scanned for p in seen] == sorted(p.scanned for p in seen)


def test_an_empty_table_is_done_at_once(
    make_app: Callable[..., dynastream.App], aws_clients: Any, source_table: str
) -> None:
    progress = dynastream.Backfill(make_app(source_table), source_table, clients=aws_clients).run()

    assert (True, 0, 0, 4) == (progress.done, progress.scanned, progress.written, progress.segments_done)


# Racing the stream


class _ScanHook:
    """
    DynamoDB clients whose Scan runs `after_scan` once a page is read, before the backfill writes it.
    """

    def __init__(self, clients: dynastream.AwsClients, after_scan: Callable[[], None]) -> None:
        self._clients = clients
        self._after_scan = after_scan

    def dynamodb(self) -> Any:
        client = self._clients.dynamodb()
        after_scan = self._after_scan

        class Proxy:
            def __getattr__(self, name: str) -> Any:
                return getattr(client, name)

            def scan(self, **arguments: Any) -> Any:
                page = client.scan(**arguments)
                after_scan()
                return page

        return Proxy()


def _interleaved(
    make_app: Callable[..., dynastream.App], engine: sa.Engine, aws_clients: Any, source_table: str
) -> tuple[dict[str, Row], dict[str, Row]]:
    """
    Scan every item, then change, delete and re-create some and apply the stream, then write the page.
    """
    dynamodb = aws_clients.dynamodb()
    put_items(dynamodb, source_table, [mirror_item(key, 1) for key in range(10)])
    runner = dynastream.StreamRunner(make_app(source_table), source_table, clients=aws_clients)
    runner.run(until_caught_up=True)  # the stream is applied up to the scan

    def change_after_the_scan() -> None:
        for key in (0, 1, 2):
            dynamodb.put_item(TableName=source_table, Item=mirror_item(key, 2))
        for key in (3, 4, 5):
            dynamodb.delete_item(TableName=source_table, Key={"id": {"S": f"item-{key:04d}"}})
        dynamodb.put_item(TableName=source_table, Item=mirror_item(5, 3))  # re-created
        runner.run(until_caught_up=True)

    backfill = dynastream.Backfill(
        make_app(source_table),
        source_table,
        clients=_ScanHook(aws_clients, change_after_the_scan),  # type: ignore[arg-type]
        segments=1,
    )
    with engine.begin() as connection:  # the target starts empty: only the backfill loads items 6 to 9
        connection.execute(mirror.delete())
    runner.run(until_caught_up=True)

    assert backfill.run().done
    return source_rows(dynamodb, source_table), target_rows(engine)


def test_a_scanned_value_never_overwrites_or_resurrects_what_the_stream_applied_after_the_scan(
    make_app: Callable[..., dynastream.App], engine: sa.Engine, aws_clients: Any, source_table: str
) -> None:
    source, target = _interleaved(make_app, engine, aws_clients, source_table)

    assert source == target
    assert ("v2-0", 2) == (target["item-0000"][0], target["item-0000"][2])  # not the scanned v1
    assert "item-0003" not in target  # the tombstone kept the scanned item out
    assert 3 == target["item-0005"][2]


def test_the_interleaving_test_fails_when_backfilled_records_outrank_the_stream(
    make_app: Callable[..., dynastream.App],
    engine: sa.Engine,
    aws_clients: Any,
    source_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_backfill, "BACKFILL_SEQUENCE_NUMBER", "9" * 40)

    source, target = _interleaved(make_app, engine, aws_clients, source_table)

    assert source != target
    assert 1 == target["item-0000"][2]  # the stale scanned value won
    assert "item-0003" in target  # resurrected


class _Race:
    """
    Writers change the source while a backfill loads it and a runner applies its stream.
    """

    def __init__(
        self, make_app: Callable[..., dynastream.App], aws_clients: Any, table: str, *, items: int
    ) -> None:
        self.make_app = make_app
        self.clients = aws_clients
        self.table = table
        self.keys = items + items // 5  # some keys are created during the race
        self.operations = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        put_items(aws_clients.dynamodb(), table, [mirror_item(key, 1) for key in range(items)])

    def _write(self, seed: int, stop: threading.Event) -> None:
        dynamodb = self.clients.dynamodb()
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                self.change(dynamodb, rng, rng.randrange(self.keys))
        except BaseException as error:
            self.errors.append(error)

    def change(self, dynamodb: Any, rng: random.Random, key: int) -> None:
        roll = rng.random()
        if roll < 0.45:
            dynamodb.put_item(TableName=self.table, Item=mirror_item(key, rng.randrange(2, 10**6), rng))
        elif roll < 0.75:
            try:
                dynamodb.update_item(
                    TableName=self.table,
                    Key={"id": {"S": f"item-{key:04d}"}},
                    UpdateExpression="SET s = :s, n = :n ADD version :one",
                    ConditionExpression="attribute_exists(id)",
                    ExpressionAttributeValues={
                        ":s": {"S": f"u{rng.randrange(10**6)}"},
                        ":n": {"N": str(Decimal(rng.randrange(10**6)) / 100)},
                        ":one": {"N": "1"},
                    },
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                return  # a deleted item stays deleted
        else:
            dynamodb.delete_item(TableName=self.table, Key={"id": {"S": f"item-{key:04d}"}})
        with self._lock:
            self.operations += 1

    def run(self, *, segments: int, page_size: int) -> tuple[dynastream.BackfillProgress, int]:
        """
        Race, then let the stream catch up; return the backfill's progress and the changes made meanwhile.
        """
        reading = threading.Event()
        runner_stop = threading.Event()
        writers_stop = threading.Event()

        def seen(progress: dynastream.RunnerProgress) -> None:
            if progress.caught_up:
                reading.set()

        runner = dynastream.StreamRunner(
            self.make_app(self.table),
            self.table,
            clients=self.clients,
            start_at="latest",
            poll_interval=0.02,
            on_progress=seen,
        )

        def apply_stream() -> None:
            try:
                runner.run(stop=runner_stop)
            except BaseException as error:
                self.errors.append(error)
                reading.set()

        threads = [threading.Thread(target=apply_stream)]
        threads[0].start()
        assert reading.wait(30), "the runner never read its shard"
        # The stream is applied from here ("latest"); items written before are loaded by the backfill only.
        threads += [threading.Thread(target=self._write, args=(seed, writers_stop)) for seed in range(3)]
        for thread in threads[1:]:
            thread.start()
        try:
            before = self.operations
            progress = dynastream.Backfill(
                self.make_app(self.table),
                self.table,
                clients=self.clients,
                segments=segments,
                page_size=page_size,
            ).run()
            during = self.operations - before
        finally:
            writers_stop.set()
            for thread in threads[1:]:
                thread.join()
        # Changes after the backfill wrote every row: the stream must win over each of them.
        dynamodb = self.clients.dynamodb()
        rng = random.Random(99)
        for key in range(0, self.keys, 7):
            self.change(dynamodb, rng, key)
        runner_stop.set()
        threads[0].join()
        assert [] == self.errors
        runner.run(until_caught_up=True)
        return progress, during


@pytest.mark.parametrize("seed", [1])
def test_a_backfill_racing_writers_and_the_stream_ends_equal_to_the_source(
    make_app: Callable[..., dynastream.App],
    engine: sa.Engine,
    aws_clients: Any,
    source_table: str,
    seed: int,
) -> None:
    race = _Race(make_app, aws_clients, source_table, items=300)

    progress, changes_during_backfill = race.run(segments=4, page_size=5)

    assert progress.done
    assert changes_during_backfill > 20, "the writers did not race the backfill"
    assert source_rows(aws_clients.dynamodb(), source_table) == target_rows(engine)


def test_the_race_test_fails_when_backfilled_records_outrank_the_stream(
    make_app: Callable[..., dynastream.App],
    engine: sa.Engine,
    aws_clients: Any,
    source_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_backfill, "BACKFILL_SEQUENCE_NUMBER", "9" * 40)
    race = _Race(make_app, aws_clients, source_table, items=300)

    progress, _ = race.run(segments=4, page_size=5)

    assert progress.done
    source, target = source_rows(aws_clients.dynamodb(), source_table), target_rows(engine)
    assert source != target
    stale = {key for key in source.keys() & target.keys() if source[key] != target[key]}
    resurrected = target.keys() - source.keys()
    assert stale or resurrected


# Refusals and errors


def replicating(table_name: str) -> dynastream.App:
    """An application replicating `table_name`, on an in-memory database (for errors that come first)."""
    app = dynastream.App(database_url="sqlite://")
    app.replicate(table_name, into=mirror)
    return app


def test_a_table_without_handlers_is_refused(aws_clients: Any, source_table: str) -> None:
    app = replicating("SomeOtherTable")

    with pytest.raises(ConfigurationError, match=r"no handler is registered for table 'Source-.*replicate"):
        dynastream.Backfill(app, source_table, clients=aws_clients).run()


def test_a_table_with_a_custom_handler_is_refused(aws_clients: Any, source_table: str) -> None:
    app = replicating(source_table)

    @app.handler(source_table)
    def audit(records: Any, uow: Any) -> None: ...

    with pytest.raises(ConfigurationError, match=r"other than app\.replicate .*audit.*no such guard"):
        dynastream.Backfill(app, source_table, clients=aws_clients).run()


def test_a_missing_table_is_a_source_error(aws_clients: Any) -> None:
    app = replicating("NoSuchTable")

    with pytest.raises(SourceError, match=r"describe table 'NoSuchTable': not found"):
        dynastream.Backfill(app, "NoSuchTable", clients=aws_clients).run()


@pytest.mark.usefixtures("no_retry_waits")
def test_an_unreachable_endpoint_is_a_source_error() -> None:
    app = replicating("Orders")
    clients = dynastream.AwsClients(endpoint_url="http://127.0.0.1:9", region_name="us-east-1")

    with pytest.raises(SourceError, match=r"cannot reach the endpoint 'http://127\.0\.0\.1:9/?'"):
        dynastream.Backfill(app, "Orders", clients=clients).run()


def test_an_item_that_cannot_be_applied_stops_the_backfill_naming_its_position_not_its_values(
    make_app: Callable[..., dynastream.App], engine: sa.Engine, aws_clients: Any, source_table: str
) -> None:
    items = [mirror_item(key, 1) for key in range(6)]
    items[4]["s"] = {"S": "secret-" + "x" * 100}  # longer than String(64)
    put_items(aws_clients.dynamodb(), source_table, items)
    backfill = dynastream.Backfill(make_app(source_table), source_table, clients=aws_clients, segments=1)

    with pytest.raises(BackfillError, match=r"item #\d of segment 0 \(eventID=backfill-0-\d\)") as raised:
        backfill.run()

    assert "secret" not in str(raised.value)
    assert "item-0004" not in str(raised.value)
    assert 0 == raised.value.segment
    assert raised.value.failure.event_id == f"backfill-0-{raised.value.position}"
    assert len(target_rows(engine)) == raised.value.position  # the items before it are applied


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"segments": 0}, "segments must be 1"),
        ({"max_rcu": 0}, "max_rcu must be positive"),
        ({"page_size": 0}, "page_size must be at least 1"),
    ],
)
def test_options_out_of_range_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dynastream.Backfill(dynastream.App(database_url="sqlite://"), "Orders", **options)


# The read-rate limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def test_the_read_budget_waits_out_the_capacity_consumed() -> None:
    clock = FakeClock()
    budget = ReadBudget(10.0, clock=clock, sleep=clock.sleep)
    halt = threading.Event()

    for _ in range(5):  # 5 reads of 8 units at 10 units per second
        assert budget.acquire(halt)
        budget.charge(8.0)

    # The first read spends the initial second's worth; the others wait for what they overspent.
    assert 2.2 == pytest.approx(clock.now, abs=0.01)
    assert 40.0 == budget.consumed


def test_an_unlimited_read_budget_never_waits() -> None:
    clock = FakeClock()
    budget = ReadBudget(None, clock=clock, sleep=clock.sleep)

    for _ in range(100):
        assert budget.acquire(threading.Event())
        budget.charge(1000.0)

    assert 0.0 == clock.now


def test_a_halt_stops_a_read_waiting_for_capacity() -> None:
    halt = threading.Event()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        halt.set()

    budget = ReadBudget(1.0, clock=clock, sleep=sleep)
    budget.charge(100.0)

    assert not budget.acquire(halt)


def test_a_backfill_reads_no_faster_than_max_rcu(
    make_app: Callable[..., dynastream.App],
    aws_clients: Any,
    source_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put_items(aws_clients.dynamodb(), source_table, [mirror_item(key, 1) for key in range(40)])
    clock = FakeClock()
    monkeypatch.setattr(_backfill, "_monotonic", clock)
    monkeypatch.setattr(_backfill, "_sleep", clock.sleep)
    backfill = dynastream.Backfill(
        make_app(source_table), source_table, clients=aws_clients, segments=2, page_size=2, max_rcu=4.0
    )

    progress = backfill.run()

    assert progress.done
    assert progress.pages >= 20
    # moto charges 1 unit per Scan call. A read starts only when the bucket is not in debt,
    # so all but the first second's worth (4 units) and the reads in flight (one per
    # segment) must have been waited for.
    assert progress.pages == progress.consumed_capacity
    assert clock.now >= (progress.consumed_capacity - 4.0 - 2 * 1.0) / 4.0
    assert progress.elapsed_seconds == pytest.approx(clock.now)
