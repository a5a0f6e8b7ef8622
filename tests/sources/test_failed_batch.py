"""
`dynastream replay` of an on-failure destination record: the failed batch read again from its stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream._cli import main
from tests.apps.runner_app import items
from tests.cli.test_replay import logged


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
