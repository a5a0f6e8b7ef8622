"""
The stream runner: DynamoDB Streams → the database, outside Lambda.

moto's server plays DynamoDB and its stream (one shard); an in-memory fake of
the Streams API plays a stream whose shards split, close and appear.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream import RecordFailedError, SourceError, StreamRunner
from dynastream.schema import checkpoints
from tests.apps.runner_app import build_app, items, log, metadata

ROOT = Path(__file__).resolve().parents[2]


def write_history(dynamodb: Any, table: str, *, count: int, rng: random.Random) -> None:
    """Puts, updates and deletes of `count` changes over a few dozen items."""
    for _ in range(count):
        key = f"item-{rng.randrange(40)}"
        if rng.random() < 0.15:
            dynamodb.delete_item(TableName=table, Key={"id": {"S": key}})
        else:
            dynamodb.put_item(
                TableName=table,
                Item={
                    "id": {"S": key},
                    "n": {"N": str(rng.randrange(10**6))},
                    "note": {"S": f"v{rng.random()}"},
                },
            )


def source_rows(dynamodb: Any, table: str) -> dict[str, tuple[int, str]]:
    rows = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            rows[item["id"]["S"]] = (int(item["n"]["N"]), item["note"]["S"])
    return rows


def replica_rows(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as connection:
        return {row.id: (row.n, row.note) for row in connection.execute(sa.select(items))}


def stream_sequence_numbers(clients: dynastream.AwsClients, table: str) -> list[str]:
    """Every record of the table's stream, read directly."""
    streams = clients.streams()
    arn = clients.dynamodb().describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    numbers: list[str] = []
    iterator = iterator["ShardIterator"]
    while True:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        if not page["Records"]:
            return numbers
        numbers.extend(r["dynamodb"]["SequenceNumber"] for r in page["Records"])
        iterator = page["NextShardIterator"]


def logged(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(sa.select(log.c.sequence_number).order_by(log.c.position)))


@pytest.fixture
def app_for(engine: sa.Engine) -> Any:
    def build(table: str, **options: Any) -> dynastream.App:
        return build_app(table, engine=engine, **options)

    metadata.create_all(engine)
    dynastream.App(engine=engine).create_tables()
    return build


def test_the_runner_makes_the_replica_equal_to_the_source(
    engine: sa.Engine, app_for: Any, aws_clients: dynastream.AwsClients, source_table: str
) -> None:
    dynamodb = aws_clients.dynamodb()
    write_history(dynamodb, source_table, count=600, rng=random.Random(1))

    progress = StreamRunner(app_for(source_table), source_table, clients=aws_clients, batch_size=97).run(
        until_caught_up=True
    )

    assert source_rows(dynamodb, source_table) == replica_rows(engine)
    assert stream_sequence_numbers(aws_clients, source_table) == logged(engine)  # each once, in order
    applied = len(stream_sequence_numbers(aws_clients, source_table))
    assert (applied, True, 0.0) == (progress.applied, progress.caught_up, progress.lag_seconds)


def test_a_second_run_resumes_from_the_checkpoint_and_applies_only_what_is_new(
    engine: sa.Engine, app_for: Any, aws_clients: dynastream.AwsClients, source_table: str
) -> None:
    dynamodb = aws_clients.dynamodb()
    app = app_for(source_table)
    write_history(dynamodb, source_table, count=150, rng=random.Random(2))
    StreamRunner(app, source_table, clients=aws_clients).run(until_caught_up=True)
    first = len(stream_sequence_numbers(aws_clients, source_table))

    again = StreamRunner(app, source_table, clients=aws_clients).run(until_caught_up=True)
    write_history(dynamodb, source_table, count=70, rng=random.Random(3))
    more = StreamRunner(app, source_table, clients=aws_clients).run(until_caught_up=True)

    assert (0, len(stream_sequence_numbers(aws_clients, source_table)) - first) == (
        again.applied,
        more.applied,
    )
    assert more.applied > 50
    assert stream_sequence_numbers(aws_clients, source_table) == logged(engine)
    assert source_rows(dynamodb, source_table) == replica_rows(engine)


def test_latest_skips_what_was_in_the_stream_before_the_run(
    engine: sa.Engine, app_for: Any, aws_clients: dynastream.AwsClients, source_table: str
) -> None:
    dynamodb = aws_clients.dynamodb()
    app = app_for(source_table)
    write_history(dynamodb, source_table, count=30, rng=random.Random(4))
    stop = threading.Event()
    idle = threading.Event()
    runner = StreamRunner(
        app,
        source_table,
        clients=aws_clients,
        start_at="latest",
        poll_interval=0.05,
        on_progress=lambda progress: progress.caught_up and idle.set(),
    )
    thread = threading.Thread(target=runner.run, kwargs={"stop": stop})
    thread.start()
    try:
        assert idle.wait(30)  # a round of reads is done: the runner holds its LATEST iterator
        dynamodb.put_item(
            TableName=source_table, Item={"id": {"S": "new"}, "n": {"N": "1"}, "note": {"S": "x"}}
        )
        deadline = time.monotonic() + 10
        while len(logged(engine)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()

    assert [stream_sequence_numbers(aws_clients, source_table)[-1]] == logged(engine)


def test_a_failing_record_stops_the_run_after_applying_and_checkpointing_the_records_before_it(
    engine: sa.Engine, aws_clients: dynastream.AwsClients, source_table: str
) -> None:
    dynamodb = aws_clients.dynamodb()
    for n in range(5):
        dynamodb.put_item(
            TableName=source_table, Item={"id": {"S": f"i-{n}"}, "n": {"N": str(n)}, "note": {"S": "x"}}
        )
    dynamodb.put_item(
        TableName=source_table, Item={"id": {"S": "big"}, "n": {"N": "1.5"}, "note": {"S": "x"}}
    )
    dynamodb.put_item(
        TableName=source_table, Item={"id": {"S": "after"}, "n": {"N": "1"}, "note": {"S": "x"}}
    )
    metadata.create_all(engine)
    app = build_app(source_table, engine=engine)
    app.create_tables()

    with pytest.raises(RecordFailedError) as raised:
        StreamRunner(app, source_table, clients=aws_clients).run(until_caught_up=True)
    numbers = stream_sequence_numbers(aws_clients, source_table)
    assert numbers[5] == raised.value.failure.item_identifier
    assert numbers[:5] == logged(engine)
    with pytest.raises(RecordFailedError):  # a second run starts again from it, and stops again
        StreamRunner(app, source_table, clients=aws_clients).run(until_caught_up=True)
    assert numbers[:5] == logged(engine)

    quarantining = build_app(source_table, engine=engine, on_poison="quarantine")
    progress = StreamRunner(quarantining, source_table, clients=aws_clients).run(until_caught_up=True)

    assert (2, 1) == (progress.applied, progress.quarantined)
    assert {f"i-{n}" for n in range(5)} | {"after"} == set(replica_rows(engine))


def test_a_moved_checkpoint_means_another_runner_and_rolls_the_batch_back(
    engine: sa.Engine, app_for: Any, aws_clients: dynastream.AwsClients, source_table: str
) -> None:
    dynamodb = aws_clients.dynamodb()
    app = app_for(source_table)
    write_history(dynamodb, source_table, count=10, rng=random.Random(5))
    StreamRunner(app, source_table, clients=aws_clients).run(until_caught_up=True)
    before = logged(engine)
    write_history(dynamodb, source_table, count=10, rng=random.Random(6))
    runner = StreamRunner(app, source_table, clients=aws_clients, poll_interval=0.01)

    def other_runner_moves_it(progress: dynastream.RunnerProgress) -> None:
        with engine.begin() as connection:
            connection.execute(checkpoints.update().values(sequence_number="9" * 40))

    runner._on_progress = other_runner_moves_it  # after the first look at the shards

    with pytest.raises(dynastream.CheckpointConflictError, match="another runner"):
        runner.run(until_caught_up=True)
    assert before == logged(engine)  # the second batch was rolled back


def test_a_commit_whose_outcome_is_unknown_resumes_from_the_database_without_applying_twice(
    engine: sa.Engine,
    app_for: Any,
    aws_clients: dynastream.AwsClients,
    source_table: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dynamodb = aws_clients.dynamodb()
    app = app_for(source_table)
    write_history(dynamodb, source_table, count=300, rng=random.Random(7))
    dispatch = app.dispatch
    calls = iter(range(1000))

    def commit_then_lose_the_answer(*args: Any, **kwargs: Any) -> dynastream.BatchResult:
        result = dispatch(*args, **kwargs)
        if next(calls) % 2 == 0:  # committed, but the runner cannot know
            raise dynastream.CommitOutcomeUnknownError("lost during COMMIT")
        return result

    monkeypatch.setattr(app, "dispatch", commit_then_lose_the_answer)

    StreamRunner(app, source_table, clients=aws_clients, batch_size=40).run(until_caught_up=True)

    assert stream_sequence_numbers(aws_clients, source_table) == logged(engine)
    assert source_rows(dynamodb, source_table) == replica_rows(engine)


@pytest.mark.usefixtures("no_retry_waits")
def test_a_missing_table_a_table_without_a_stream_and_a_wrong_endpoint_are_source_errors(
    aws_clients: dynastream.AwsClients,
) -> None:
    app = dynastream.App(database_url="sqlite://")
    aws_clients.dynamodb().create_table(
        TableName="NoStream",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    nowhere = dynastream.AwsClients(endpoint_url="http://127.0.0.1:9", region_name="us-east-1")

    with pytest.raises(SourceError, match=r"'Missing'.*not found"):
        StreamRunner(app, "Missing", clients=aws_clients).run()
    with pytest.raises(SourceError, match="no stream enabled"):
        StreamRunner(app, "NoStream", clients=aws_clients).run()
    with pytest.raises(SourceError, match="cannot reach the endpoint"):
        StreamRunner(app, "Orders", clients=nowhere).run()


# Split shards, through an in-memory Streams API


class FakeStreams:
    """
    The DynamoDB Streams API over shards held in memory, in GetRecords' shape.

    `describe_stream` pages two shards at a time.
    """

    def __init__(self) -> None:
        self.shards: dict[str, dict[str, Any]] = {}
        self.sequence = 4_000_000_000_000_000_000_000
        self.reads: list[str] = []

    def add_shard(self, shard_id: str, parent: str | None = None) -> None:
        self.shards[shard_id] = {"parent": parent, "records": [], "closed": False}

    def put(self, shard_id: str, key: str, n: int, event_name: str = "INSERT") -> str:
        self.sequence += 1000
        number = str(self.sequence)
        image = {"id": {"S": key}, "n": {"N": str(n)}, "note": {"S": shard_id}}
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": datetime.now(UTC),
            "Keys": {"id": {"S": key}},
            "SequenceNumber": number,
            "SizeBytes": 10,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if event_name != "REMOVE":
            dynamodb["NewImage"] = image
        self.shards[shard_id]["records"].append(
            {
                "eventID": f"e{number}",
                "eventName": event_name,
                "eventSource": "aws:dynamodb",
                "dynamodb": dynamodb,
            }
        )
        return number

    def close(self, shard_id: str) -> None:
        self.shards[shard_id]["closed"] = True

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:  # noqa: N803
        ids = list(self.shards)
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = ids[start : start + 2]
        shards = []
        for shard_id in page:
            shard = self.shards[shard_id]
            numbers: dict[str, str] = {"StartingSequenceNumber": "1"}
            if shard["closed"]:
                numbers["EndingSequenceNumber"] = str(self.sequence)
            described = {"ShardId": shard_id, "SequenceNumberRange": numbers}
            if shard["parent"]:
                described["ParentShardId"] = shard["parent"]
            shards.append(described)
        description: dict[str, Any] = {"StreamArn": StreamArn, "StreamStatus": "ENABLED", "Shards": shards}
        if start + 2 < len(ids):
            description["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": description}

    def get_shard_iterator(self, **request: str) -> dict[str, Any]:
        shard_id, kind = request["ShardId"], request["ShardIteratorType"]
        records = self.shards[shard_id]["records"]
        if kind == "TRIM_HORIZON":
            index = 0
        elif kind == "LATEST":
            index = len(records)
        else:
            assert kind in ("AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER")
            number = request["SequenceNumber"]
            index = next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == number)
            index += kind == "AFTER_SEQUENCE_NUMBER"
        return {"ShardIterator": f"{shard_id}|{index}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        shard_id, index = ShardIterator.split("|")
        shard = self.shards[shard_id]
        page = shard["records"][int(index) : int(index) + Limit]
        self.reads.append(shard_id)
        end = int(index) + len(page)
        response: dict[str, Any] = {"Records": page}
        if not (shard["closed"] and end == len(shard["records"])):
            response["NextShardIterator"] = f"{shard_id}|{end}"
        return response


class FakeClients:
    def __init__(self, streams: FakeStreams) -> None:
        self._streams = streams

    def streams(self) -> FakeStreams:
        return self._streams


ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Split/stream/2026-11-29T00:00:00.000"


def test_a_split_shard_is_applied_parent_first_and_children_are_followed_as_they_appear(
    engine: sa.Engine, app_for: Any
) -> None:
    fake = FakeStreams()
    # Children are listed before their parent, as describe_stream may: order is by lineage, not listing.
    fake.add_shard("shard-c1", parent="shard-p")
    fake.add_shard("shard-c2", parent="shard-p")
    fake.add_shard("shard-p", parent="shard-gone")  # its own parent is past retention
    parent = [fake.put("shard-p", f"k{n % 7}", n) for n in range(25)]
    children = [fake.put(f"shard-c{1 + n % 2}", f"k{n % 7}", 100 + n) for n in range(30)]
    fake.close("shard-p")
    app = app_for("Split")
    stop = threading.Event()
    runner = StreamRunner(
        app,
        "Split",
        stream_arn=ARN,
        clients=FakeClients(fake),
        batch_size=10,
        poll_interval=0.01,  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=runner.run, kwargs={"stop": stop})
    thread.start()
    try:
        wait_for(lambda: len(logged(engine)) == 55)
        # The children close and split again while the runner runs.
        fake.add_shard("shard-g1", parent="shard-c1")
        fake.close("shard-c1")
        late = [fake.put("shard-g1", "k1", 999), fake.put("shard-c2", "k2", 998)]
        wait_for(lambda: len(logged(engine)) == 57)
    finally:
        stop.set()
        thread.join()

    order = logged(engine)
    assert parent == order[:25]  # the whole parent first, in order
    assert sorted(children) == sorted(order[25:55])
    for shard in ("shard-c1", "shard-c2"):  # each child in its own order
        own = [
            n for n in order if n in {r["dynamodb"]["SequenceNumber"] for r in fake.shards[shard]["records"]}
        ]
        assert own == sorted(own, key=int)
    assert sorted(late) == sorted(order[55:])
    with engine.connect() as connection:
        finished = dict(connection.execute(sa.select(checkpoints.c.shard_id, checkpoints.c.finished)).all())
    assert {"shard-p": True, "shard-c1": True, "shard-c2": False, "shard-g1": False} == finished
    assert "shard-c1" not in fake.reads[: fake.reads.index("shard-p")]


def test_a_child_is_not_read_while_its_parent_is_not_finished(engine: sa.Engine, app_for: Any) -> None:
    fake = FakeStreams()
    fake.add_shard("shard-p")
    fake.add_shard("shard-c", parent="shard-p")
    fake.put("shard-p", "k", 1)
    fake.put("shard-c", "k", 2)

    progress = StreamRunner(
        app_for("Split"),
        "Split",
        stream_arn=ARN,
        clients=FakeClients(fake),  # type: ignore[arg-type]
    ).run(until_caught_up=True)

    assert (1, 1, 1) == (progress.applied, progress.shards_reading, progress.shards_waiting)
    assert "shard-c" not in fake.reads


def wait_for(condition: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


# Killed at random points

BATCH_SIZE = 25


def start_runner(
    database_url: str, table: str, endpoint: str, *, hang_at_batch: int | None = None
) -> subprocess.Popen[bytes]:
    environment = dict(os.environ, DYNASTREAM_DATABASE_URL=database_url, RUNNER_TABLE=table)
    environment.pop("RUNNER_HANG_AT_BATCH", None)
    if hang_at_batch is not None:
        environment["RUNNER_HANG_AT_BATCH"] = str(hang_at_batch)
    return subprocess.Popen(  # noqa: S603 - this interpreter, this project's module
        [
            sys.executable,
            "-m",
            "dynastream",
            "run",
            "--app",
            "tests.apps.runner_app:app",
            "--table",
            table,
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
            "--batch-size",
            str(BATCH_SIZE),
            "--until-caught-up",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_applying(engine: sa.Engine, process: subprocess.Popen[bytes], applied: int) -> None:
    """Wait until the runner has committed a batch (its log grew past `applied`), or ended."""
    wait_for(lambda: len(logged(engine)) > applied or process.poll() is not None, timeout=120)


def test_a_runner_killed_at_random_points_and_restarted_ends_with_the_source(
    engine: sa.Engine,
    database_url: str,
    moto_endpoint: str,
    aws_clients: dynastream.AwsClients,
    source_table: str,
) -> None:
    dynamodb = aws_clients.dynamodb()
    metadata.create_all(engine)
    dynastream.App(engine=engine).create_tables()
    rng = random.Random(20261129)
    for _ in range(6):
        write_history(dynamodb, source_table, count=250, rng=rng)
        applied = len(logged(engine))
        pending_batches = (len(stream_sequence_numbers(aws_clients, source_table)) - applied) // BATCH_SIZE
        # The runner stops for good inside a random one of the batches this round holds, so
        # it is still running when it is killed, on any machine; the kill lands at a random
        # point between its first commit of the round and that stop.
        process = start_runner(
            database_url, source_table, moto_endpoint, hang_at_batch=rng.randint(2, pending_batches)
        )
        wait_until_applying(engine, process, applied)
        time.sleep(rng.uniform(0, 0.5))
        if process.poll() is not None:
            raise AssertionError(
                f"the runner ended before it was killed: {process.communicate()[1].decode()}"
            )
        process.send_signal(signal.SIGKILL)
        process.communicate()
    process = start_runner(database_url, source_table, moto_endpoint)
    _, errors = process.communicate(timeout=120)

    assert 0 == process.returncode, errors.decode()
    assert source_rows(dynamodb, source_table) == replica_rows(engine)
    assert stream_sequence_numbers(aws_clients, source_table) == logged(engine)  # nothing twice, nothing lost


def test_a_lost_first_batch_of_a_latest_shard_is_read_again_from_where_reading_began(
    engine: sa.Engine, app_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any checkpoint, an unknown outcome must not take a new LATEST (skipping what was read)."""
    fake = FakeStreams()
    fake.add_shard("shard-a")
    fake.put("shard-a", "old", 1)  # before the run: skipped by LATEST
    app = app_for("Split")
    dispatch = app.dispatch
    lost = iter([True])

    def lose_the_first(*args: Any, **kwargs: Any) -> dynastream.BatchResult:
        if next(lost, False):
            raise dynastream.CommitOutcomeUnknownError("lost before COMMIT answered")
        return dispatch(*args, **kwargs)

    monkeypatch.setattr(app, "dispatch", lose_the_first)
    idle = threading.Event()
    stop = threading.Event()
    runner = StreamRunner(
        app,
        "Split",
        stream_arn=ARN,
        clients=FakeClients(fake),  # type: ignore[arg-type]
        start_at="latest",
        poll_interval=0.01,
        on_progress=lambda progress: progress.caught_up and idle.set(),
    )
    thread = threading.Thread(target=runner.run, kwargs={"stop": stop})
    thread.start()
    try:
        assert idle.wait(30)  # it holds its LATEST iterator
        new = [fake.put("shard-a", f"k{n}", n) for n in range(3)]
        wait_for(lambda: len(logged(engine)) == 3)
    finally:
        stop.set()
        thread.join()

    assert new == logged(engine)


def test_throttling_outlasting_botocore_retries_is_waited_out_and_a_missing_stream_is_not(
    engine: sa.Engine, app_for: Any
) -> None:
    from botocore.exceptions import ClientError

    fake = FakeStreams()
    fake.add_shard("shard-a")
    numbers = [fake.put("shard-a", f"k{n}", n) for n in range(3)]
    read = fake.get_records
    refusals = iter([ClientError({"Error": {"Code": "LimitExceededException"}}, "GetRecords")] * 2)

    def throttled(**request: Any) -> dict[str, Any]:
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal
        return read(**request)

    fake.get_records = throttled  # type: ignore[method-assign]
    runner = StreamRunner(app_for("Split"), "Split", stream_arn=ARN, clients=FakeClients(fake))  # type: ignore[arg-type]

    assert 3 == runner.run(until_caught_up=True).applied
    assert numbers == logged(engine)

    def gone(**request: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "GetRecords")

    fake.get_records = gone  # type: ignore[method-assign]
    with pytest.raises(SourceError, match="not found"):
        StreamRunner(app_for("Split"), "Split", stream_arn=ARN, clients=FakeClients(fake)).run()  # type: ignore[arg-type]
