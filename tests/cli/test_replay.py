"""
`dynastream replay` and `dynastream generate-event`.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream._cli import main
from tests.apps.runner_app import items, log, metadata

APP = """
import os

from tests.apps.runner_app import build_app

app = build_app(os.environ["RUNNER_TABLE"])
"""


@pytest.fixture
def replay_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An importable `replay_app:app` on a SQLite file, for the table `name`."""

    def make(name: str) -> sa.Engine:
        url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
        (tmp_path / "replay_app.py").write_text(APP)
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("RUNNER_TABLE", name)
        monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url)
        monkeypatch.delitem(__import__("sys").modules, "replay_app", raising=False)
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        dynastream.App(engine=engine).create_tables()
        return engine

    return make


def logged(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(sa.select(log.c.item_id).order_by(log.c.position)))


def test_generate_event_writes_what_lambda_would_deliver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "items.json"
    source.write_text(
        '[{"id": "o-1", "total": 12.50, "lines": [{"sku": "A", "qty": 2}]}, {"id": "o-2", "ok": true}]'
    )

    assert 0 == main(["generate-event", str(source), "--table", "Orders"])

    event = json.loads(capsys.readouterr().out)
    records = dynastream.parse_event(event)
    assert ["Orders", "Orders"] == [r.table_name for r in records]
    assert {"id": "o-1", "total": Decimal("12.50"), "lines": [{"sku": "A", "qty": 2}]} == records[0].new_image
    assert {"N": "12.50"} == event["Records"][0]["dynamodb"]["NewImage"]["total"]  # exact text, not a float
    assert int(records[0].sequence_number) < int(records[1].sequence_number)


def test_generate_event_reads_dynamodb_json_and_writes_ttl_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = {
        "Items": [{"pk": {"S": "s-1"}, "sk": {"N": "7"}, "blob": {"B": "AAEC"}, "tags": {"SS": ["b", "a"]}}]
    }
    (tmp_path / "scan.json").write_text(json.dumps(scan))
    out = tmp_path / "event.json"

    assert 0 == main(
        [
            "generate-event",
            str(tmp_path / "scan.json"),
            "--table",
            "Sessions",
            "--keys",
            "pk,sk",
            "--event-name",
            "REMOVE",
            "--ttl",
            "--output",
            str(out),
        ]
    )

    (record,) = dynastream.parse_event(dynastream.load_event(out))
    assert (True, {"pk": "s-1", "sk": 7}) == (record.is_ttl_delete, record.keys)
    assert {"pk": "s-1", "sk": 7, "blob": b"\x00\x01\x02", "tags": {"a", "b"}} == record.old_image


@pytest.mark.parametrize(
    ("content", "input_format", "message"),
    [
        ("[{", "auto", "not valid JSON"),
        ('{"x": 1}', "auto", "list of objects"),
        ('[{"total": 1}]', "auto", "item #0"),
        ('[{"id": {"S": "a", "N": "1"}}]', "dynamodb", "item #0: item.id"),
    ],
)
def test_generate_event_says_what_is_wrong_with_the_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, input_format: str, message: str
) -> None:
    source = tmp_path / "items.json"
    source.write_text(content)

    assert 2 == main(["generate-event", str(source), "--table", "Orders", "--input-format", input_format])
    assert message in capsys.readouterr().err


def test_generate_event_of_a_missing_file_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == main(["generate-event", "/no/such/items.json", "--table", "Orders"])
    assert "cannot read /no/such/items.json" in capsys.readouterr().err


def test_replay_applies_a_saved_event_and_names_a_failing_record(
    tmp_path: Path, replay_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = replay_app("Orders")
    events = dynastream.testing.EventFactory()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(events.inserts("Orders", [{"id": "a", "n": 1}, {"id": "b", "n": 2}])))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(events.inserts("Orders", [{"id": "c", "n": 3}, {"id": "d", "n": Decimal("1.5")}]))
    )

    assert 0 == main(["replay", str(good), "--app", "replay_app:app"])
    assert "2 of 2 record(s) applied" in capsys.readouterr().err
    assert 1 == main(["replay", str(bad), "--app", "replay_app:app"])
    err = capsys.readouterr().err
    assert "1 of 2 record(s) applied" in err
    assert "record #1" in err
    assert "MappingError" in err
    assert ["a", "b", "c"] == logged(engine)


def test_replay_of_an_unreadable_file_fails_clearly(
    replay_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    replay_app("Orders")

    assert 2 == main(["replay", "/no/such/event.json", "--app", "replay_app:app"])
    assert "cannot read /no/such/event.json" in capsys.readouterr().err


def destination_record(
    aws_clients: dynastream.AwsClients, table: str, first: int, last: int
) -> dict[str, Any]:
    """The on-failure destination record the event source mapping sends for records first..last."""
    streams = aws_clients.streams()
    arn = aws_clients.dynamodb().describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-29T10:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": records[first]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[last]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-11-29T09:59:00Z",
            "approximateArrivalOfLastRecord": "2026-11-29T09:59:01Z",
            "batchSize": last - first + 1,
            "streamArn": arn,
        },
    }


@pytest.mark.parametrize("wrapping", ["as-saved", "sqs-message"])
def test_replay_reads_a_failed_batch_again_from_the_stream(
    *,
    tmp_path: Path,
    replay_app: Any,
    aws_clients: dynastream.AwsClients,
    moto_endpoint: str,
    source_table: str,
    wrapping: str,
) -> None:
    dynamodb = aws_clients.dynamodb()
    for n in range(8):
        dynamodb.put_item(TableName=source_table, Item={"id": {"S": f"i-{n}"}, "n": {"N": str(n)}})
    engine = replay_app(source_table)
    record = destination_record(aws_clients, source_table, 2, 5)
    if wrapping == "sqs-message":
        record = {"Messages": [{"MessageId": "m-1", "Body": json.dumps(record)}]}
    (tmp_path / "failed.json").write_text(json.dumps(record))

    status = main(
        [
            "replay",
            str(tmp_path / "failed.json"),
            "--app",
            "replay_app:app",
            "--endpoint-url",
            moto_endpoint,
            "--region",
            "us-east-1",
        ]
    )

    assert 0 == status
    assert ["i-2", "i-3", "i-4", "i-5"] == logged(engine)
    with engine.connect() as connection:
        assert 4 == connection.execute(sa.select(sa.func.count()).select_from(items)).scalar()


def test_replay_of_a_range_the_stream_does_not_hold_fails_clearly(
    *,
    tmp_path: Path,
    replay_app: Any,
    aws_clients: dynastream.AwsClients,
    moto_endpoint: str,
    source_table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws_clients.dynamodb().put_item(TableName=source_table, Item={"id": {"S": "x"}, "n": {"N": "1"}})
    replay_app(source_table)
    record = destination_record(aws_clients, source_table, 0, 0)
    info = record["DDBStreamBatchInfo"]
    info["startSequenceNumber"] = info["endSequenceNumber"] = str(int(info["endSequenceNumber"]) + 50)
    (tmp_path / "failed.json").write_text(json.dumps(record))

    status = main(
        [
            "replay",
            str(tmp_path / "failed.json"),
            "--app",
            "replay_app:app",
            "--endpoint-url",
            moto_endpoint,
            "--region",
            "us-east-1",
        ]
    )

    assert 2 == status
    assert "holds no records" in capsys.readouterr().err
