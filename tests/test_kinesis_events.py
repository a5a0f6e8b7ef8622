"""
Reading Kinesis Data Streams for DynamoDB: real captured events, every malformed shape, the ordering number.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynastream import (
    EventName,
    MalformedRecordError,
    RecordSource,
    StreamRecord,
    load_event,
    parse_event,
    read_event,
)
from dynastream._kinesis import is_tie

KDS = Path(__file__).parent / "fixtures" / "events" / "kds"
POWERTOOLS = KDS / "powertools_typescript_kinesis_dynamodb_stream.json"
RUST_BARE = KDS / "rust_runtime_kds_record_with_optional_fields.json"
GO_WINDOW = KDS / "go_kinesis_time_window_event.json"
KINESIS_SEQUENCE = "49657828409187701520019995242508390119953358325192589314"
DIGEST = 10**20


def digest(event_id: str) -> int:
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big")


def change(
    *,
    event_id: str = "5c1f5d47-0c6a-4b5e-9f0e-1d2c3b4a5f60",
    event_name: str = "MODIFY",
    created: Any = 1_790_000_000_123_456,
    precision: str | None = "MICROSECOND",
) -> dict[str, Any]:
    """A KDS change record as AWS puts it in `kinesis.data` (decoded)."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": created,
        "Keys": {"id": {"S": "o-1"}},
        "NewImage": {"id": {"S": "o-1"}, "total": {"N": "9.50"}},
        "OldImage": {"id": {"S": "o-1"}, "total": {"N": "7.25"}},
        "SizeBytes": 64,
    }
    if precision is not None:
        dynamodb["ApproximateCreationDateTimePrecision"] = precision
    return {
        "awsRegion": "eu-west-1",
        "eventID": event_id,
        "eventName": event_name,
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": "Orders",
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }


def kinesis_record(data: Any, sequence_number: str = KINESIS_SEQUENCE) -> dict[str, Any]:
    """A Lambda Kinesis record; `data` a change record (encoded here), or text put as is."""
    text = data if isinstance(data, str) else base64.b64encode(json.dumps(data).encode()).decode()
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "859F7C064A4818874FA67ABEC9BF2AF1",
            "sequenceNumber": sequence_number,
            "data": text,
            "approximateArrivalTimestamp": 1790000000.5,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
    }


def read_one(raw: Any) -> StreamRecord[Any]:
    [record] = parse_event({"Records": [raw]})
    return record


def refused(raw: Any) -> MalformedRecordError:
    batch = read_event({"Records": [raw]})
    assert batch.error is not None
    assert batch.records == ()
    return batch.error


# --- real captured events ----------------------------------------------------------------


def test_the_powertools_kinesis_event_is_read_field_by_field() -> None:
    first, second = parse_event(load_event(POWERTOOLS))

    assert (first.event_id, second.event_id) == (
        "d9428029-0f63-4056-86da-ce10d545b1b9",
        "aa56cad4-311a-46c8-ab5f-c7a13a7a6298",
    )
    assert first.item_identifier == KINESIS_SEQUENCE
    assert second.item_identifier == "49657828409187701520019995242509599045772972954367295490"
    assert first.table_name == "PowertoolsEventsStack-DynamoDBTable59784FC0-8NKAMTERTAXY"
    assert first.event_name is EventName.INSERT
    assert first.keys == {"id": "record-1qit2y819gi"}
    assert first.new_image == {"id": "record-1qit2y819gi", "data": "data-x6aq7ckdpgk"}
    assert first.old_image is None
    assert first.approximate_creation_time == datetime(2024, 11, 18, 10, 9, 15, 370_000, tzinfo=UTC)
    assert (first.source, first.stream_view_type, first.event_source_arn) == (
        RecordSource.KINESIS,
        None,
        None,
    )
    assert (first.aws_region, first.size_bytes, first.is_ttl_delete) == ("eu-west-1", 60, False)
    # Milliseconds, precision digit 0, then the digest of the change's own eventID.
    assert first.sequence_number == (1_731_924_555_370_000 * 10) * DIGEST + digest(first.event_id)
    assert first.raw["tableName"] == first.table_name  # the decoded change record, not the envelope


def test_the_bare_change_record_without_a_creation_time_is_read() -> None:
    [record] = parse_event(load_event(RUST_BARE))

    assert record.event_id == record.item_identifier == "00000000-0000-0000-0000-000000000000"
    assert (record.table_name, record.source) == ("examples", RecordSource.KINESIS)
    assert record.new_image == {
        "id": "00000000-0000-0000-0000-000000000000",
        "created": "2022-02-16T15:12:00.14Z",
    }
    assert record.approximate_creation_time is None
    assert record.sequence_number == digest(record.event_id)  # before every change that has a time


def test_a_kinesis_record_of_another_producer_is_refused_naming_it_and_the_window_is_read() -> None:
    batch = read_event(load_event(GO_WINDOW))

    assert batch.records == ()
    assert batch.error is not None
    assert batch.error.field == "kinesis.data"
    assert batch.error.sequence_number == "49590338271490256608559692538361571095921575989136588898"
    assert "not JSON, so not a DynamoDB change record" in str(batch.error)
    assert batch.window is not None
    assert batch.window.shard_id == "shardId-000000000006"


def test_the_table_name_given_wins_over_the_record_s() -> None:
    [first, _] = parse_event(load_event(POWERTOOLS), table_name="Orders")

    assert first.table_name == "Orders"


def test_a_bare_kinesis_record_and_a_tumbling_window_envelope_are_read() -> None:
    assert read_one(kinesis_record(change())).event_id == parse_event(kinesis_record(change()))[0].event_id
    window = {
        "Records": [kinesis_record(change())],
        "window": {"start": "2026-09-21T14:00:00Z", "end": "2026-09-21T14:05:00Z"},
        "state": {"n": 1},
        "shardId": "shardId-000000000000",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
        "isFinalInvokeForWindow": False,
        "isWindowTerminatedEarly": False,
    }
    batch = read_event(window)
    assert batch.error is None
    assert len(batch.records) == 1
    assert batch.window is not None
    assert batch.window.state == {"n": 1}


def test_a_ttl_removal_is_a_ttl_delete() -> None:
    removed = change(event_name="REMOVE")
    del removed["dynamodb"]["NewImage"]
    removed["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

    record = read_one(kinesis_record(removed))

    assert (record.event_name, record.is_ttl_delete) == (EventName.REMOVE, True)


def test_a_binary_attribute_inside_the_data_is_decoded_once() -> None:
    with_binary = change()
    with_binary["dynamodb"]["NewImage"]["signature"] = {"B": base64.b64encode(b"\x00\xff").decode()}

    assert read_one(kinesis_record(with_binary)).new_image["signature"] == b"\x00\xff"


def test_numbers_stay_exact() -> None:
    assert read_one(kinesis_record(change())).new_image == {"id": "o-1", "total": Decimal("9.50")}


# --- malformed shapes, each naming the record and the field -------------------------------------


def _without(path: str) -> dict[str, Any]:
    raw = change()
    *parents, last = path.split("/")
    target = raw
    for part in parents:
        target = target[part]
    del target[last]
    return raw


def _with(path: str, value: Any) -> dict[str, Any]:
    raw = change()
    *parents, last = path.split("/")
    target = raw
    for part in parents:
        target = target[part]
    target[last] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        ({"eventSource": "aws:kinesis", "eventID": "x"}, "eventSource", "without its 'kinesis' object"),
        ({**kinesis_record(change()), "kinesis": {"data": "e30="}}, "kinesis.sequenceNumber", "missing"),
        (
            {**kinesis_record(change()), "kinesis": {"sequenceNumber": "12a", "data": "e30="}},
            "kinesis.sequenceNumber",
            "not a Kinesis sequence number",
        ),
        (kinesis_record("not base64!"), "kinesis.data", "not base64"),
        (kinesis_record(base64.b64encode(b'{"hello": 1}').decode()), "kinesis.data", "no 'tableName'"),
    ],
    ids=["no-kinesis", "no-sequence-number", "bad-sequence-number", "not-base64", "not-a-change-record"],
)
def test_a_malformed_kinesis_envelope_names_the_record(raw: dict[str, Any], field: str, reason: str) -> None:
    error = refused(raw)

    assert error.field == field
    assert error.index == 0
    assert reason in error.reason
    if field not in {"eventSource", "kinesis.sequenceNumber"}:
        assert error.sequence_number == KINESIS_SEQUENCE


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (_with("eventSource", "aws:sqs"), "eventSource", "not a DynamoDB change record"),
        (_without("eventID"), "eventID", "missing"),
        (_with("eventID", "\ud800"), "eventID", "lone surrogate"),
        (_with("eventName", "UPSERT"), "eventName", "unknown event name"),
        (_with("tableName", "x"), "tableName", "not a DynamoDB table name"),
        (_with("tableName", 7), "tableName", "must be a string"),
        (_with("recordFormat", "application/x-protobuf"), "recordFormat", "unknown record format"),
        (_without("dynamodb/Keys"), "dynamodb.Keys", "missing"),
        (_with("dynamodb/Keys", {}), "dynamodb.Keys", "empty"),
        (_without("dynamodb/NewImage"), "dynamodb.NewImage", "missing"),
        (_with("dynamodb/NewImage", {"total": {"N": "1e"}}), "dynamodb.NewImage.total", "not a decimal"),
        (
            _with("dynamodb/ApproximateCreationDateTime", 1.5),
            "dynamodb.ApproximateCreationDateTime",
            "integer",
        ),
        (
            _with("dynamodb/ApproximateCreationDateTime", "1790000000123"),
            "dynamodb.ApproximateCreationDateTime",
            "integer",
        ),
        (
            _with("dynamodb/ApproximateCreationDateTime", True),
            "dynamodb.ApproximateCreationDateTime",
            "integer",
        ),
        (
            _with("dynamodb/ApproximateCreationDateTime", 1_790_000_000),
            "dynamodb.ApproximateCreationDateTime",
            "1973",
        ),
        (
            _with("dynamodb/ApproximateCreationDateTime", 1_790_000_000_123),
            "dynamodb.ApproximateCreationDateTime",
            "not epoch microseconds",
        ),
        (
            _with("dynamodb/ApproximateCreationDateTimePrecision", "NANOSECOND"),
            "dynamodb.ApproximateCreationDateTimePrecision",
            "unknown precision",
        ),
        (_with("dynamodb/SizeBytes", -1), "dynamodb.SizeBytes", "non-negative"),
        (_with("awsRegion", "\udc00"), "awsRegion", "lone surrogate"),
    ],
    ids=lambda value: value if isinstance(value, str) and "." not in value and " " not in value else None,
)
def test_a_malformed_change_record_names_the_record_and_the_field(
    raw: dict[str, Any], field: str, reason: str
) -> None:
    for shape in (kinesis_record(raw), raw):  # inside a Kinesis record, and bare
        error = refused(shape)
        assert error.field == field
        assert reason in error.reason
        if shape is not raw:
            assert error.sequence_number == KINESIS_SEQUENCE


def test_milliseconds_stated_on_a_microsecond_value_are_refused() -> None:
    raw = change(created=1_790_000_000_123_456, precision="MILLISECOND")

    error = refused(kinesis_record(raw))

    assert (error.field, "not epoch milliseconds" in error.reason) == (
        "dynamodb.ApproximateCreationDateTime",
        True,
    )


def test_every_record_before_a_malformed_one_is_read() -> None:
    good = kinesis_record(change(), "1001")
    bad = kinesis_record("%%%", "1002")

    batch = read_event({"Records": [good, bad, good]})

    assert [record.item_identifier for record in batch.records] == ["1001"]
    assert batch.error is not None
    assert (batch.error.index, batch.error.sequence_number) == (1, "1002")


def test_the_error_message_never_holds_item_values() -> None:
    raw = change()
    raw["dynamodb"]["NewImage"]["email"] = {"S": 5}
    raw["dynamodb"]["NewImage"]["id"] = {"S": "canary-4f1e@example.com"}

    error = refused(kinesis_record(raw))

    assert "canary" not in str(error)
    assert error.field == "dynamodb.NewImage.email"


# --- the ordering number ---------------------------------------------------------------------


def _number(**options: Any) -> int:
    return read_one(kinesis_record(change(**options))).sequence_number


def test_the_unit_follows_the_stated_precision_or_else_the_size() -> None:
    assert _number(created=1_790_000_000_123_456, precision="MICROSECOND") == _number(
        created=1_790_000_000_123_456, precision=None
    )
    assert _number(created=1_790_000_000_123, precision="MILLISECOND") == _number(
        created=1_790_000_000_123, precision=None
    )
    record = read_one(kinesis_record(change(created=1_790_000_000_123_456)))
    assert record.approximate_creation_time == datetime(2026, 9, 21, 14, 13, 20, 123_456, tzinfo=UTC)


def test_a_later_change_orders_after_an_earlier_one_whatever_their_event_ids() -> None:
    earlier = _number(created=1_790_000_000_123_456, event_id="ffff")
    later = _number(created=1_790_000_000_123_457, event_id="0000")

    assert later > earlier
    assert not is_tie(earlier, later)


def test_a_redelivered_change_has_the_same_number_and_is_no_tie() -> None:
    assert _number() == _number()
    assert not is_tie(_number(), _number())


def test_two_changes_in_one_microsecond_tie_and_are_ordered_the_same_way_every_time() -> None:
    first = _number(event_id="a")
    second = _number(event_id="b")

    assert first != second
    assert is_tie(first, second)
    assert is_tie(second, first)


def test_a_millisecond_change_ties_with_any_change_in_its_millisecond() -> None:
    millisecond = _number(created=1_790_000_000_123, precision="MILLISECOND", event_id="a")
    inside = _number(created=1_790_000_000_123_999, event_id="b")
    after = _number(created=1_790_000_000_124_000, event_id="c")

    assert is_tie(millisecond, inside)
    assert not is_tie(millisecond, after)
    assert after > inside > millisecond


@given(
    st.lists(
        st.tuples(
            st.integers(10**14, 10**17 - 1),
            st.booleans(),
            st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
        ),
        min_size=2,
        max_size=6,
    )
)
def test_the_number_orders_by_time_and_ties_are_exactly_the_unorderable_pairs(
    changes: list[tuple[int, bool, str]],
) -> None:
    numbers = []
    for microseconds, in_milliseconds, event_id in changes:
        created = microseconds // 1000 if in_milliseconds else microseconds
        precision = "MILLISECOND" if in_milliseconds else "MICROSECOND"
        number = _number(created=created, precision=precision, event_id=event_id)
        numbers.append((created * 1000 if in_milliseconds else created, in_milliseconds, number))
    for time_a, ms_a, a in numbers:
        for time_b, ms_b, b in numbers:
            if a == b:
                continue
            same = time_a // 1000 == time_b // 1000 if (ms_a or ms_b) else time_a == time_b
            assert is_tie(a, b) is same
            if time_a < time_b and not same:
                assert a < b
