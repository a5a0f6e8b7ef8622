"""
The testing kit's Kinesis side: KDS change records and Lambda Kinesis events shaped as AWS sends them.

The reference shape is a real capture: the Kinesis fixture of Powertools for AWS
Lambda (tests/fixtures/events/kds/), and the tumbling-window envelope of aws-lambda-go.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream import RecordSource
from dynastream.testing import EventFactory

FIXTURES = Path(__file__).parent / "fixtures" / "events" / "kds"
POWERTOOLS = json.loads((FIXTURES / "powertools_typescript_kinesis_dynamodb_stream.json").read_text())
WINDOW = json.loads((FIXTURES / "go_kinesis_time_window_event.json").read_text())
CREATED = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC)
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def kinesis(**options: Any) -> EventFactory:
    return EventFactory(source="kinesis", **options)


def decoded(kinesis_record: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(kinesis_record["kinesis"]["data"], validate=True))
    return data


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what two records of the same shape share."""
    if isinstance(value, dict):
        return {key: shape(inner) for key, inner in value.items()}
    return type(value).__name__


def timestamps(records: list[dict[str, Any]]) -> list[int]:
    return [record["dynamodb"]["ApproximateCreationDateTime"] for record in records]


# The shape ----------------------------------------------------------------------------


def test_a_wrapped_insert_has_the_shape_of_the_powertools_capture_field_by_field() -> None:
    events = kinesis()
    [real] = POWERTOOLS["Records"][:1]

    [built] = events.event(events.insert("Orders", {"id": "record-1", "data": "data-1"}))["Records"]

    # Same keys, in the same order, with values of the same types, outside and inside `data`.
    assert list(real) == list(built)
    assert list(real["kinesis"]) == list(built["kinesis"])
    assert shape({**real, "kinesis": None}) == shape({**built, "kinesis": None})
    assert shape(real["kinesis"]) == shape(built["kinesis"])
    assert list(decoded(real)) == list(decoded(built))
    assert list(decoded(real)["dynamodb"]) == list(decoded(built)["dynamodb"])
    assert shape(decoded(real)) == shape(decoded(built))


def test_a_wrapped_record_carries_the_values_lambda_sends() -> None:
    events = kinesis(region="us-west-2", account_id="210987654321", stream_name="orders-changes")

    [built] = events.event(events.insert("Orders", {"id": "o-1"}))["Records"]

    sequence_number = built["kinesis"]["sequenceNumber"]
    assert re.fullmatch(r"[0-9]{56}", sequence_number)
    assert re.fullmatch(r"[0-9A-F]{32}", built["kinesis"]["partitionKey"])
    assert "1.0" == built["kinesis"]["kinesisSchemaVersion"]
    assert f"shardId-000000000000:{sequence_number}" == built["eventID"]
    assert ("aws:kinesis", "1.0", "aws:kinesis:record", "us-west-2") == (
        built["eventSource"],
        built["eventVersion"],
        built["eventName"],
        built["awsRegion"],
    )
    assert "arn:aws:kinesis:us-west-2:210987654321:stream/orders-changes" == built["eventSourceARN"]
    assert built["invokeIdentityArn"].startswith("arn:aws:iam::210987654321:role/")
    assert built["eventSourceARN"] == events.stream_arn("Orders")


def test_data_is_base64_of_the_change_record_as_compact_json() -> None:
    events = kinesis()
    record = events.insert("Orders", {"id": "o-1", "note": "café", "raw": b"\x00\x01"})

    [built] = events.event(record)["Records"]

    raw = base64.b64decode(built["kinesis"]["data"], validate=True)
    assert json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() == raw
    assert record == json.loads(raw)
    assert {"S": "café"} == record["dynamodb"]["NewImage"]["note"]
    assert {"B": "AAE="} == record["dynamodb"]["NewImage"]["raw"]  # binary stays base64 inside


def test_a_change_record_has_the_kds_fields_and_none_of_the_streams_ones() -> None:
    events = kinesis(region="ap-south-1")

    record = events.insert("Orders", {"id": "o-1"})

    assert [
        "awsRegion",
        "eventID",
        "eventName",
        "userIdentity",
        "recordFormat",
        "tableName",
        "dynamodb",
        "eventSource",
    ] == list(record)
    assert ("ap-south-1", "INSERT", None, "application/json", "Orders", "aws:dynamodb") == (
        record["awsRegion"],
        record["eventName"],
        record["userIdentity"],
        record["recordFormat"],
        record["tableName"],
        record["eventSource"],
    )
    assert str(uuid.UUID(record["eventID"])) == record["eventID"]
    assert not {"SequenceNumber", "StreamViewType"} & set(record["dynamodb"])
    assert not {"eventVersion", "eventSourceARN"} & set(record)


@pytest.mark.parametrize(
    ("event_name", "images"),
    [("INSERT", ["NewImage"]), ("MODIFY", ["NewImage", "OldImage"]), ("REMOVE", ["OldImage"])],
)
def test_both_images_are_sent_where_they_exist(event_name: str, images: list[str]) -> None:
    events = kinesis()
    events.insert("Orders", {"id": "o-1", "v": 1})

    record = {
        "INSERT": lambda: events.insert("Orders", {"id": "o-2", "v": 1}),
        "MODIFY": lambda: events.modify("Orders", {"id": "o-1", "v": 2}),
        "REMOVE": lambda: events.remove("Orders", {"id": "o-1", "v": 2}),
    }[event_name]()

    assert ["ApproximateCreationDateTime", "Keys", *images, "SizeBytes"] == list(record["dynamodb"])
    assert event_name == record["eventName"]
    if event_name == "MODIFY":
        assert {"N": "1"} == record["dynamodb"]["OldImage"]["v"]


def test_ttl_deletes_carry_the_dynamodb_service_identity_and_others_null() -> None:
    events = kinesis()

    ttl = events.remove("Sessions", {"id": "s-1"}, ttl=True)
    user = events.remove("Sessions", {"id": "s-2"})

    assert (TTL_IDENTITY, None) == (ttl["userIdentity"], user["userIdentity"])
    assert list(ttl) == list(user)  # the identity stays in its place


def test_event_ids_are_uuids_stable_per_change_and_distinct_across_changes() -> None:
    first, again = kinesis(), kinesis()

    ids = [first.insert("Orders", {"id": str(n)})["eventID"] for n in range(3)]
    ids_again = [again.insert("Orders", {"id": str(n)})["eventID"] for n in range(3)]

    assert ids == ids_again
    assert 3 == len(set(ids))


# Timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(("precision", "digits"), [("MILLISECOND", 13), ("MICROSECOND", 16)])
def test_each_record_is_timed_after_the_last_even_within_one_unit(precision: str, digits: int) -> None:
    events = kinesis(precision=precision)

    records = [events.insert("Orders", {"id": str(n)}) for n in range(200)]  # far faster than 1 per ms

    times = timestamps(records)
    assert all(isinstance(value, int) and len(str(value)) == digits for value in times)
    assert all(earlier < later for earlier, later in itertools.pairwise(times))


def test_records_are_timed_now_when_the_clock_moves_on(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_790_000_000_000_000_000]  # nanoseconds
    monkeypatch.setattr("time.time_ns", lambda: now[0])
    events = kinesis(precision="MICROSECOND")

    first, second = events.insert("Things", {"id": "a"}), events.insert("Things", {"id": "b"})
    now[0] += 5_000_000  # 5 ms later
    third = events.insert("Things", {"id": "c"})

    assert [1_790_000_000_000_000, 1_790_000_000_000_001, 1_790_000_000_005_000] == timestamps(
        [first, second, third]
    )


def test_milliseconds_carry_no_precision_field_and_microseconds_do() -> None:
    millis = kinesis(created_at=CREATED).insert("Orders", {"id": "o-1"})["dynamodb"]
    micros = kinesis(created_at=CREATED, precision="MICROSECOND").insert("Orders", {"id": "o-1"})["dynamodb"]

    assert 1_793_527_200_123 == millis["ApproximateCreationDateTime"]
    assert "ApproximateCreationDateTimePrecision" not in millis
    assert (1_793_527_200_123_456, "MICROSECOND") == (
        micros["ApproximateCreationDateTime"],
        micros["ApproximateCreationDateTimePrecision"],
    )
    assert "ApproximateCreationDateTimePrecision" == list(micros)[-1]  # after SizeBytes, as captured


def test_a_given_time_builds_deliberate_ties_and_later_records_still_come_after() -> None:
    events = kinesis(precision="MICROSECOND")
    tie = 1_893_456_000_000_000  # 2030, after now

    a = events.insert("Orders", {"id": "o-1"}, created_at=tie)
    b = events.modify("Orders", {"id": "o-1", "v": 2}, created_at=tie)
    c = events.modify("Orders", {"id": "o-1", "v": 3})

    assert [tie, tie, tie + 1] == timestamps([a, b, c])
    assert a["eventID"] != b["eventID"]


def test_a_factory_time_is_every_records_time() -> None:
    events = kinesis(created_at=1_790_000_000_000)

    records = [events.insert("Orders", {"id": str(n)}) for n in range(3)]

    assert [1_790_000_000_000] * 3 == timestamps(records)


def test_a_naive_datetime_is_utc_and_kept_to_the_microsecond() -> None:
    events = kinesis(precision="MICROSECOND")

    record = events.insert("Orders", {"id": "o-1"}, created_at=CREATED.replace(tzinfo=None))

    assert 1_793_527_200_123_456 == record["dynamodb"]["ApproximateCreationDateTime"]


# Wrapping: sequence numbers, duplicates, redeliveries ---------------------------------


def test_kinesis_sequence_numbers_are_56_digits_and_strictly_increase_per_wrap() -> None:
    events = kinesis()
    records = [events.insert("Orders", {"id": str(n)}) for n in range(5)]

    first = events.event(*records)["Records"]
    second = events.event(*records[:2])["Records"]

    numbers = [r["kinesis"]["sequenceNumber"] for r in [*first, *second]]
    assert all(len(number) == 56 for number in numbers)
    assert sorted(numbers, key=int) == numbers
    assert len(set(numbers)) == len(numbers)
    arrivals = [r["kinesis"]["approximateArrivalTimestamp"] for r in [*first, *second]]
    assert sorted(set(arrivals)) == arrivals


def test_a_record_wrapped_twice_is_a_duplicate_same_change_new_sequence_number() -> None:
    events = kinesis()
    record = events.insert("Orders", {"id": "o-1"})

    original, duplicate = events.event(record, record)["Records"]

    assert int(duplicate["kinesis"]["sequenceNumber"]) > int(original["kinesis"]["sequenceNumber"])
    assert original["kinesis"]["data"] == duplicate["kinesis"]["data"]
    assert decoded(original)["eventID"] == decoded(duplicate)["eventID"]
    assert original["kinesis"]["partitionKey"] == duplicate["kinesis"]["partitionKey"]


def test_a_kinesis_record_given_again_is_kept_as_a_redelivery() -> None:
    events = kinesis()
    first = events.event(events.insert("Orders", {"id": "o-1"}))

    again = events.event(*first["Records"], events.insert("Orders", {"id": "o-2"}))

    assert first["Records"][0] == again["Records"][0]
    assert int(again["Records"][1]["kinesis"]["sequenceNumber"]) > int(
        first["Records"][0]["kinesis"]["sequenceNumber"]
    )


def test_partition_keys_follow_the_item_key() -> None:
    events = kinesis(keys=["pk", "sk"])

    one, same, other = events.event(
        events.insert("Orders", {"pk": "a", "sk": 1, "v": 1}),
        events.modify("Orders", {"pk": "a", "sk": 1, "v": 2}),
        events.insert("Orders", {"pk": "a", "sk": 2}),
    )["Records"]

    assert one["kinesis"]["partitionKey"] == same["kinesis"]["partitionKey"]
    assert one["kinesis"]["partitionKey"] != other["kinesis"]["partitionKey"]


def test_bytes_are_wrapped_as_another_producers_data() -> None:
    [record] = kinesis().event(b"Hello, this is a test.")["Records"]

    assert b"Hello, this is a test." == base64.b64decode(record["kinesis"]["data"])
    assert list(WINDOW["Records"][0]) == list(record)


def test_the_first_sequence_number_can_be_chosen() -> None:
    events = kinesis(first_sequence_number=10**55)

    records = events.event(*(events.insert("Orders", {"id": str(n)}) for n in range(2)))["Records"]

    assert [str(10**55), str(10**55 + 1)] == [r["kinesis"]["sequenceNumber"] for r in records]


# The tumbling window ------------------------------------------------------------------


def test_the_window_envelope_has_the_shape_of_the_go_capture() -> None:
    events = kinesis()
    start = datetime(2020, 12, 9, 7, 4, tzinfo=UTC)

    window = events.window_event(
        events.insert("Orders", {"id": "o-1"}),
        start=start,
        end=start + timedelta(minutes=2),
        state={"1": "state 1", "2": "state 2"},
    )

    assert list(WINDOW) == list(window)
    assert shape({**WINDOW, "Records": None}) == shape({**window, "Records": None})
    assert (WINDOW["window"], WINDOW["state"]) == (window["window"], window["state"])
    assert (events.stream_arn("Orders"), "shardId-000000000000") == (
        window["eventSourceARN"],
        window["shardId"],
    )
    assert list(WINDOW["Records"][0]) == list(window["Records"][0])


def test_the_window_flags_and_state_are_what_was_given() -> None:
    events = kinesis()
    start = datetime(2026, 1, 1, tzinfo=UTC)

    window = events.window_event(
        start=start, end=start + timedelta(minutes=5), final=True, terminated_early=True
    )

    assert ([], {}, True, True) == (
        window["Records"],
        window["state"],
        window["isFinalInvokeForWindow"],
        window["isWindowTerminatedEarly"],
    )


def test_a_dynamodb_streams_window_names_its_stream() -> None:
    events = EventFactory(created_at=0)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    window = events.window_event(
        events.insert("Orders", {"id": "o-1"}), start=start, end=start + timedelta(minutes=1)
    )

    assert events.stream_arn("Orders") == window["eventSourceARN"]
    assert "aws:dynamodb" == window["Records"][0]["eventSource"]
    with pytest.raises(ValueError, match="needs a record to name its stream"):
        events.window_event(start=start, end=start + timedelta(minutes=1))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"start": "2026-01-01", "end": datetime(2026, 1, 2, tzinfo=UTC)},
            TypeError,
            "start must be a datetime",
        ),
        (
            {"start": datetime(2026, 1, 2, tzinfo=UTC), "end": datetime(2026, 1, 1, tzinfo=UTC)},
            ValueError,
            "end must be after start",
        ),
        (
            {
                "start": datetime(2026, 1, 1, tzinfo=UTC),
                "end": datetime(2026, 1, 2, tzinfo=UTC),
                "state": {"n": 1},
            },
            TypeError,
            "state must be a mapping of strings",
        ),
    ],
)
def test_a_window_refuses_bounds_or_state_lambda_never_sends(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        kinesis().window_event(**options)


# Bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"source": "kafka"}, ValueError, "unknown source 'kafka'"),
        ({"source": "kinesis", "precision": "SECOND"}, ValueError, "unknown precision 'SECOND'"),
        ({"source": "kinesis", "view_type": "NEW_IMAGE"}, ValueError, "view_type: Kinesis"),
        ({"precision": "MICROSECOND"}, ValueError, "precision: DynamoDB Streams"),
        ({"source": "kinesis", "stream_name": ""}, ValueError, "stream_name"),
        (
            {"source": "kinesis", "created_at": 1_790_000_000},
            ValueError,
            "created_at must be epoch milliseconds",
        ),
        (
            {"source": "kinesis", "precision": "MICROSECOND", "created_at": 1_790_000_000_000},
            ValueError,
            "created_at must be epoch microseconds",
        ),
        ({"source": "kinesis", "created_at": 1.79e12}, TypeError, "created_at must be a datetime or an int"),
        ({"source": "kinesis", "first_sequence_number": -1}, ValueError, "first_sequence_number"),
    ],
)
def test_a_kinesis_factory_refuses_settings_kds_does_not_have(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        EventFactory(**options)


def test_a_kds_record_refuses_a_sequence_number_and_a_time_in_the_wrong_unit() -> None:
    events = kinesis()

    with pytest.raises(ValueError, match="sequence_number: Kinesis"):
        events.insert("Orders", {"id": "o-1"}, sequence_number=10**25)
    with pytest.raises(ValueError, match="created_at must be epoch milliseconds"):
        events.insert("Orders", {"id": "o-1"}, created_at=1_790_000_000)  # seconds
    with pytest.raises(ValueError, match="is not a DynamoDB table name"):
        events.insert("T", {"id": "o-1"})


@pytest.mark.parametrize("record", [42, "text", None])
def test_an_event_refuses_what_is_no_record(record: Any) -> None:
    with pytest.raises(TypeError, match=r"records\[1\] must be a change record"):
        kinesis().event(b"ok", record)
    with pytest.raises(TypeError, match=r"records\[0\] must be a stream record"):
        EventFactory().event(record)


def test_the_source_may_be_given_as_the_enum() -> None:
    events = EventFactory(source=RecordSource.KINESIS)

    [record] = events.event(events.insert("Orders", {"id": "o-1"}))["Records"]

    assert ("kinesis", "aws:kinesis") == (events.source, record["eventSource"])
    assert (
        "aws:dynamodb"
        == EventFactory(source=RecordSource.DYNAMODB_STREAMS).insert("Orders", {"id": "a"})["eventSource"]
    )


def test_repr_shows_the_source_and_precision_not_items() -> None:
    events = kinesis(precision="MICROSECOND")
    events.insert("Things", {"id": "canary-93a1"})

    assert "source='kinesis', precision='MICROSECOND'" in repr(events)
    assert "canary" not in repr(events)
    assert "source" not in repr(EventFactory())


# Read back by dynastream --------------------------------------------------------------


def test_a_built_kinesis_event_reads_back_as_the_changes_that_went_in() -> None:
    events = kinesis(keys={"Orders": ["orderId"]}, precision="MICROSECOND")
    placed = {"orderId": "o-1", "status": "PLACED", "raw": b"\x00"}

    event = events.event(
        events.insert("Orders", placed, created_at=CREATED),
        events.modify("Orders", {**placed, "status": "SHIPPED"}),
        events.remove("Orders", {**placed, "status": "SHIPPED"}, ttl=True),
    )
    records = dynastream.parse_event(json.dumps(event))

    assert 3 == len(records)
    assert ["Orders"] * 3 == [r.table_name for r in records]
    assert [("PLACED", None), ("SHIPPED", "PLACED"), (None, "SHIPPED")] == [
        (r.new_image and r.new_image["status"], r.old_image and r.old_image["status"]) for r in records
    ]
    assert [{"orderId": "o-1"}] * 3 == [r.keys for r in records]
    assert b"\x00" == records[0].new_image["raw"]
    assert [r["kinesis"]["sequenceNumber"] for r in event["Records"]] == [r.item_identifier for r in records]
    assert [False, False, True] == [r.is_ttl_delete for r in records]
    assert [decoded(k)["eventID"] for k in event["Records"]] == [r.event_id for r in records]
    assert CREATED == records[0].approximate_creation_time
    assert [RecordSource.KINESIS] * 3 == [r.source for r in records]


@pytest.mark.parametrize("precision", ["MILLISECOND", "MICROSECOND"])
def test_records_built_one_after_another_are_ordered_one_after_another(precision: str) -> None:
    events = kinesis(precision=precision)

    built = [events.modify("Orders", {"id": "o-1", "n": n}) for n in range(50)]
    records = dynastream.parse_event(events.event(*built))

    numbers = [r.sequence_number for r in records]
    assert sorted(numbers) == numbers
    assert len(set(numbers)) == len(numbers)


def test_a_duplicate_reads_as_the_same_change_under_another_kinesis_sequence_number() -> None:
    events = kinesis()
    record = events.insert("Orders", {"id": "o-1"})

    original, duplicate = dynastream.parse_event(events.event(record, record))

    assert (original.event_id, original.sequence_number) == (duplicate.event_id, duplicate.sequence_number)
    assert original.item_identifier != duplicate.item_identifier


def test_a_deliberate_tie_is_counted_as_one_by_replication(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ties.sqlite'}")
    metadata = sa.MetaData()
    table = sa.Table(
        "orders",
        metadata,
        sa.Column("id", dynastream.ExactString(20), primary_key=True),
        sa.Column("n", sa.Integer),
        dynastream.sequence_column(),
    )
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Orders", into=table, source="kinesis")
    events = kinesis(precision="MICROSECOND")
    tie = 1_893_456_000_000_000

    result = app.dispatch(
        events.event(
            events.modify("Orders", {"id": "o-1", "n": 1}, created_at=tie),
            events.modify("Orders", {"id": "o-1", "n": 2}, created_at=tie),
            events.modify("Orders", {"id": "o-2", "n": 1}, created_at=tie),  # another item: no tie
        )
    )

    assert (3, 1) == (result.applied, result.summary.total("tied"))


def test_a_built_window_reads_back_with_its_window() -> None:
    events = kinesis()
    start = datetime(2026, 1, 1, tzinfo=UTC)

    batch = dynastream.read_event(
        events.window_event(
            events.insert("Orders", {"id": "o-1"}),
            start=start,
            end=start + timedelta(minutes=5),
            state={"n": "1"},
        )
    )

    assert batch.error is None
    assert batch.window is not None
    assert (1, start, {"n": "1"}) == (len(batch.records), batch.window.start, batch.window.state)
