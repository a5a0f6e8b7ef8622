"""
Reading events: every input shape, every view type, and typed errors for bad input.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from dynastream import (
    EventName,
    MalformedEventError,
    MalformedRecordError,
    RecordSource,
    StreamRecord,
    StreamViewType,
    TumblingWindow,
    load_event,
    parse_event,
    read_event,
)

FIXTURES = Path(__file__).parent / "fixtures" / "events"
CANARY = "canary-4f1e@example.com"
ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-11-01T00:00:00.000"
SEQUENCE_NUMBER = "4421584500000000017450439091"
CREATED = 1_790_000_000
CREATED_AT = datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)

KEYS = {"id": {"S": "o-1"}}
NEW_IMAGE = {"id": {"S": "o-1"}, "email": {"S": CANARY}, "total": {"N": "12.50"}, "status": {"S": "PAID"}}
OLD_IMAGE = {"id": {"S": "o-1"}, "email": {"S": CANARY}, "total": {"N": "12.50"}, "status": {"S": "NEW"}}
NEW_ITEM = {"id": "o-1", "email": CANARY, "total": Decimal("12.50"), "status": "PAID"}
OLD_ITEM = {"id": "o-1", "email": CANARY, "total": Decimal("12.50"), "status": "NEW"}

# Which images a stream writes, by view type and event name
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html).
IMAGES_CARRIED = {
    ("KEYS_ONLY", "INSERT"): (),
    ("KEYS_ONLY", "MODIFY"): (),
    ("KEYS_ONLY", "REMOVE"): (),
    ("NEW_IMAGE", "INSERT"): ("NewImage",),
    ("NEW_IMAGE", "MODIFY"): ("NewImage",),
    ("NEW_IMAGE", "REMOVE"): (),
    ("OLD_IMAGE", "INSERT"): (),
    ("OLD_IMAGE", "MODIFY"): ("OldImage",),
    ("OLD_IMAGE", "REMOVE"): ("OldImage",),
    ("NEW_AND_OLD_IMAGES", "INSERT"): ("NewImage",),
    ("NEW_AND_OLD_IMAGES", "MODIFY"): ("NewImage", "OldImage"),
    ("NEW_AND_OLD_IMAGES", "REMOVE"): ("OldImage",),
}


def lambda_record(
    event_name: str = "MODIFY",
    *,
    view_type: str = "NEW_AND_OLD_IMAGES",
    number: int = 1,
    **dynamodb: Any,
) -> dict[str, Any]:
    """A record as Lambda delivers it, carrying the images its view type carries."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": CREATED,
        "Keys": copy.deepcopy(KEYS),
        "SequenceNumber": str(int(SEQUENCE_NUMBER) + number - 1),
        "SizeBytes": 120,
        "StreamViewType": view_type,
    }
    images = {"NewImage": NEW_IMAGE, "OldImage": OLD_IMAGE}
    for image in IMAGES_CARRIED[view_type, event_name]:
        body[image] = copy.deepcopy(images[image])
    body.update(dynamodb)
    return {
        "eventID": f"e-{number}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": body,
        "eventSourceARN": ARN,
    }


def fields(record: StreamRecord[Any]) -> dict[str, Any]:
    """Every field of a record but `raw`, images included (records compare without them)."""
    values = attrs.asdict(record, recurse=False)
    del values["raw"]
    return values


def malformed_record(event: Any, **options: Any) -> MalformedRecordError:
    with pytest.raises(MalformedRecordError) as raised:
        parse_event(event, **options)
    return raised.value


def malformed_event(event: Any) -> MalformedEventError:
    with pytest.raises(MalformedEventError) as raised:
        parse_event(event)
    assert MalformedEventError is type(raised.value)
    return raised.value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- the AWS sample event ---------------------------------------------------
# From the Lambda developer guide ("Using AWS Lambda with Amazon DynamoDB",
# https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html), as the console's
# DynamoDB test event template also gives it.

SAMPLE_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTableWithStream/stream/2015-06-27T00:48:05.899"
)
SAMPLE_CREATED_AT = datetime(2015, 4, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws_sample() -> list[StreamRecord[Any]]:
    return parse_event(load_event(FIXTURES / "aws_sample.json"))


def test_aws_sample_insert_is_read_field_by_field(aws_sample: list[StreamRecord[Any]]) -> None:
    assert {
        "event_id": "c4ca4238a0b923820dcc509a6f75849b",
        "event_name": EventName.INSERT,
        "table_name": "ExampleTableWithStream",
        "sequence_number": 4421584500000000017450439091,
        "item_identifier": "4421584500000000017450439091",
        "keys": {"Id": Decimal("101")},
        "new_image": {"Message": "New item!", "Id": Decimal("101")},
        "old_image": None,
        "approximate_creation_time": SAMPLE_CREATED_AT,
        "stream_view_type": StreamViewType.NEW_AND_OLD_IMAGES,
        "is_ttl_delete": False,
        "event_source_arn": SAMPLE_ARN,
        "aws_region": "us-east-1",
        "size_bytes": 26,
        "source": RecordSource.DYNAMODB_STREAMS,
    } == fields(aws_sample[0])


def test_aws_sample_modify_is_read_field_by_field(aws_sample: list[StreamRecord[Any]]) -> None:
    assert {
        "event_id": "c81e728d9d4c2f636f067f89cc14862c",
        "event_name": EventName.MODIFY,
        "table_name": "ExampleTableWithStream",
        "sequence_number": 4421584500000000017450439092,
        "item_identifier": "4421584500000000017450439092",
        "keys": {"Id": Decimal("101")},
        "new_image": {"Message": "This item has changed", "Id": Decimal("101")},
        "old_image": {"Message": "New item!", "Id": Decimal("101")},
        "approximate_creation_time": SAMPLE_CREATED_AT,
        "stream_view_type": StreamViewType.NEW_AND_OLD_IMAGES,
        "is_ttl_delete": False,
        "event_source_arn": SAMPLE_ARN,
        "aws_region": "us-east-1",
        "size_bytes": 59,
        "source": RecordSource.DYNAMODB_STREAMS,
    } == fields(aws_sample[1])


def test_aws_sample_remove_is_read_field_by_field(aws_sample: list[StreamRecord[Any]]) -> None:
    assert {
        "event_id": "eccbc87e4b5ce2fe28308fd9f2a7baf3",
        "event_name": EventName.REMOVE,
        "table_name": "ExampleTableWithStream",
        "sequence_number": 4421584500000000017450439093,
        "item_identifier": "4421584500000000017450439093",
        "keys": {"Id": Decimal("101")},
        "new_image": None,
        "old_image": {"Message": "This item has changed", "Id": Decimal("101")},
        "approximate_creation_time": SAMPLE_CREATED_AT,
        "stream_view_type": StreamViewType.NEW_AND_OLD_IMAGES,
        "is_ttl_delete": False,
        "event_source_arn": SAMPLE_ARN,
        "aws_region": "us-east-1",
        "size_bytes": 38,
        "source": RecordSource.DYNAMODB_STREAMS,
    } == fields(aws_sample[2])


def test_aws_sample_creation_times_are_aware_utc(aws_sample: list[StreamRecord[Any]]) -> None:
    offsets = [record.approximate_creation_time.utcoffset() for record in aws_sample]  # type: ignore[union-attr]

    assert [timedelta(0)] * 3 == offsets


def test_aws_sample_records_keep_the_raw_records(aws_sample: list[StreamRecord[Any]]) -> None:
    raw = json.loads((FIXTURES / "aws_sample.json").read_text())["Records"]

    assert raw == [record.raw for record in aws_sample]


def test_aws_sample_reads_the_same_from_json_text_bytes_and_dict() -> None:
    text = (FIXTURES / "aws_sample.json").read_text()

    from_dict = [fields(record) for record in parse_event(json.loads(text))]

    assert from_dict == [fields(record) for record in parse_event(text)]
    assert from_dict == [fields(record) for record in parse_event(text.encode())]


# --- view type x event name ------------------------------------------------


@pytest.mark.parametrize(("view_type", "event_name"), list(IMAGES_CARRIED))
def test_record_carries_the_images_its_view_type_writes(view_type: str, event_name: str) -> None:
    carried = IMAGES_CARRIED[view_type, event_name]

    [record] = parse_event({"Records": [lambda_record(event_name, view_type=view_type)]})

    assert StreamViewType(view_type) is record.stream_view_type
    assert EventName(event_name) is record.event_name
    assert {"id": "o-1"} == record.keys
    assert (NEW_ITEM if "NewImage" in carried else None) == record.new_image
    assert (OLD_ITEM if "OldImage" in carried else None) == record.old_image


@pytest.mark.parametrize(
    ("event_name", "image"),
    [("INSERT", NEW_ITEM), ("MODIFY", NEW_ITEM), ("REMOVE", None)],
)
def test_image_is_the_item_as_the_change_left_it(event_name: str, image: Any) -> None:
    [record] = parse_event(lambda_record(event_name))

    assert image == record.image


REQUIRED_IMAGES = [
    (view_type, event_name, image)
    for (view_type, event_name), images in IMAGES_CARRIED.items()
    for image in images
]


@pytest.mark.parametrize(("view_type", "event_name", "image"), REQUIRED_IMAGES)
def test_record_missing_an_image_its_view_type_writes_is_malformed(
    view_type: str, event_name: str, image: str
) -> None:
    record = lambda_record(event_name, view_type=view_type)
    del record["dynamodb"][image]

    error = malformed_record([record])

    assert f"dynamodb.{image}" == error.field
    assert f"missing: a {event_name} record of a {view_type} stream carries it" == error.reason


def test_record_without_stream_view_type_takes_the_images_it_has() -> None:
    record = lambda_record("MODIFY")
    del record["dynamodb"]["StreamViewType"]
    del record["dynamodb"]["OldImage"]

    [read] = parse_event(record)

    assert (None, NEW_ITEM, None) == (read.stream_view_type, read.new_image, read.old_image)


@pytest.mark.parametrize("sent", [{}, None], ids=["empty", "null"])
@pytest.mark.parametrize(
    ("image", "expected"), [("NewImage", (None, OLD_ITEM)), ("OldImage", (NEW_ITEM, None))]
)
def test_empty_or_null_image_is_no_image(image: str, expected: tuple[Any, Any], sent: Any) -> None:
    record = lambda_record("MODIFY")
    del record["dynamodb"]["StreamViewType"]
    record["dynamodb"][image] = sent

    [read] = parse_event(record)

    assert expected == (read.new_image, read.old_image)


@pytest.mark.parametrize(("sent", "state"), [({}, "empty"), (None, "null")], ids=["empty", "null"])
@pytest.mark.parametrize(("view_type", "event_name", "image"), REQUIRED_IMAGES)
def test_record_with_an_empty_or_null_image_its_view_type_writes_is_malformed(
    view_type: str, event_name: str, image: str, sent: Any, state: str
) -> None:
    record = lambda_record(event_name, view_type=view_type)
    record["dynamodb"][image] = sent

    error = malformed_record([record])

    assert (f"dynamodb.{image}", f"{state}: a {event_name} record of a {view_type} stream carries it") == (
        error.field,
        error.reason,
    )


def test_empty_required_image_is_malformed_even_when_images_are_left_unread() -> None:
    record = lambda_record("MODIFY", view_type="NEW_IMAGE")
    record["dynamodb"]["NewImage"] = {}

    batch = read_event(record, old_images=False, new_images=False)

    assert ("dynamodb.NewImage", "empty") == (batch.error.field, batch.error.reason.split(":")[0])  # type: ignore[union-attr]


# --- TTL deletes -----------------------------------------------------------

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_remove_by_the_ttl_process_is_a_ttl_delete() -> None:
    [record] = parse_event(lambda_record("REMOVE") | {"userIdentity": TTL_IDENTITY})

    assert record.is_ttl_delete


def test_remove_by_a_user_is_not_a_ttl_delete() -> None:
    [record] = parse_event(lambda_record("REMOVE"))

    assert not record.is_ttl_delete


@pytest.mark.parametrize(
    "identity",
    [
        {"type": "Service", "principalId": "lambda.amazonaws.com"},
        {"type": "User", "principalId": "dynamodb.amazonaws.com"},
        "Service",
    ],
    ids=["other-service", "not-a-service", "not-an-object"],
)
def test_remove_by_another_identity_is_not_a_ttl_delete(identity: Any) -> None:
    [record] = parse_event(lambda_record("REMOVE") | {"userIdentity": identity})

    assert not record.is_ttl_delete


def test_insert_with_the_ttl_identity_is_not_a_ttl_delete() -> None:
    # SAM's sample event puts this identity on an INSERT; only a REMOVE is a TTL delete.
    [record] = parse_event(lambda_record("INSERT") | {"userIdentity": TTL_IDENTITY})

    assert not record.is_ttl_delete


# The Streams API spells the identity {"PrincipalId", "Type"}
# (https://docs.aws.amazon.com/amazondynamodbstreams/latest/APIReference/API_Identity.html).
API_TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}


def boto3_get_records(*records: dict[str, Any]) -> dict[str, Any]:
    """
    A `GetRecords` response exactly as boto3 returns it: the JSON the API sends,
    parsed by botocore's own parser (datetimes, bytes, `ResponseMetadata`).
    """
    import botocore.session
    from botocore.parsers import create_parser

    service = botocore.session.get_session().get_service_model("dynamodbstreams")
    operation = service.operation_model("GetRecords")
    body = json.dumps({"Records": list(records), "NextShardIterator": "iterator-2"}).encode()
    response = {"body": body, "headers": {}, "status_code": 200}
    return create_parser("json").parse(response, operation.output_shape)  # type: ignore[no-any-return]


def api_ttl_remove(sequence_number: str = SEQUENCE_NUMBER, **identity: Any) -> dict[str, Any]:
    """A TTL REMOVE as the Streams API sends it: no eventSourceARN, the API's identity spelling."""
    return {
        "eventID": "e-ttl",
        "eventName": "REMOVE",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "ApproximateCreationDateTime": CREATED,
            "Keys": {"id": {"S": "o-1"}},
            "OldImage": {"id": {"S": "o-1"}, "photo": {"B": b64(b"\x00\xff")}},
            "SequenceNumber": sequence_number,
            "SizeBytes": 40,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "userIdentity": identity or API_TTL_IDENTITY,
    }


def test_get_records_remove_by_the_ttl_process_is_a_ttl_delete() -> None:
    response = boto3_get_records(api_ttl_remove())
    sent = response["Records"][0]
    assert (datetime, bytes) == (  # the shape boto3 hands over, not Lambda's
        type(sent["dynamodb"]["ApproximateCreationDateTime"]),
        type(sent["dynamodb"]["OldImage"]["photo"]["B"]),
    )

    [record] = parse_event(response, table_name="Orders")

    assert (True, CREATED_AT, {"id": "o-1", "photo": b"\x00\xff"}) == (
        record.is_ttl_delete,
        record.approximate_creation_time,
        record.old_image,
    )


@pytest.mark.parametrize(
    "identity",
    [
        {"PrincipalId": "lambda.amazonaws.com", "Type": "Service"},
        {"PrincipalId": "dynamodb.amazonaws.com", "Type": "User"},
    ],
    ids=["other-service", "not-a-service"],
)
def test_get_records_remove_by_another_identity_is_not_a_ttl_delete(identity: dict[str, str]) -> None:
    [record] = parse_event(boto3_get_records(api_ttl_remove(**identity)), table_name="Orders")

    assert not record.is_ttl_delete


def test_get_records_ttl_delete_is_ignored_by_replication_that_ignores_ttl() -> None:
    import sqlalchemy as sa

    import dynastream

    rows = sa.Table(
        "ttl_orders",
        sa.MetaData(),
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("photo", sa.LargeBinary),
        dynastream.sequence_column(),
    )
    engine = sa.create_engine("sqlite://", poolclass=sa.StaticPool)
    rows.metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Orders", into=rows, ttl="ignore")
    insert = api_ttl_remove() | {"eventName": "INSERT", "eventID": "e-put"}
    insert["dynamodb"] = insert["dynamodb"] | {"NewImage": insert["dynamodb"]["OldImage"]}
    del insert["dynamodb"]["OldImage"], insert["userIdentity"]
    app.dispatch(boto3_get_records(insert), table_name="Orders")

    result = app.dispatch(
        boto3_get_records(api_ttl_remove(str(int(SEQUENCE_NUMBER) + 1))), table_name="Orders"
    )

    assert [] == result.response()["batchItemFailures"]
    with engine.connect() as connection:
        assert [("o-1", b"\x00\xff")] == connection.execute(sa.select(rows.c.id, rows.c.photo)).all()


# --- values ----------------------------------------------------------------


def test_binary_keys_and_attributes_from_lambda_json_are_bytes_decoded_once() -> None:
    # b"QUJD" is itself base64 (of b"ABC"): decoding twice would show.
    record = lambda_record(
        "INSERT",
        view_type="NEW_IMAGE",
        Keys={"hash": {"B": b64(b"\x00\x01\x02")}},
        NewImage={
            "hash": {"B": b64(b"\x00\x01\x02")},
            "photo": {"B": b64(b"QUJD")},
            "thumbs": {"BS": [b64(b"QUJD"), b64(b"\xff")]},
        },
    )

    [read] = parse_event(record)

    assert {"hash": b"\x00\x01\x02"} == read.keys
    assert {"hash": b"\x00\x01\x02", "photo": b"QUJD", "thumbs": {b"QUJD", b"\xff"}} == read.new_image


def test_numbers_keep_38_digits_exponents_and_trailing_zeros() -> None:
    numbers = {
        "big": "12345678901234567890123456789012345678",
        "negative": "-99999999999999999999999999999999999999",
        "tiny": "1E-130",
        "huge": "9.9999999999999999999999999999999999999E+125",
        "price": "1.500",
        "zero": "-0",
    }
    record = lambda_record(
        "INSERT",
        view_type="NEW_IMAGE",
        Keys={"id": {"N": numbers["big"]}},
        NewImage={name: {"N": text} for name, text in numbers.items()},
    )

    [read] = parse_event(record)

    assert Decimal(numbers["big"]).as_tuple() == read.keys["id"].as_tuple()
    assert {name: Decimal(text).as_tuple() for name, text in numbers.items()} == {
        name: value.as_tuple()
        for name, value in read.new_image.items()  # type: ignore[union-attr]
    }


def test_40_digit_sequence_number_is_an_exact_int_and_its_identifier_the_text_sent() -> None:
    text = "9" * 40

    [record] = parse_event(lambda_record(SequenceNumber=text))

    assert (10**40 - 1, text) == (record.sequence_number, record.item_identifier)


def test_40_digit_sequence_numbers_a_float_cannot_tell_apart_keep_their_order() -> None:
    first, second = "1" + "0" * 38 + "1", "1" + "0" * 38 + "2"
    assert float(first) == float(second)  # why they must never go through a float

    records = parse_event([lambda_record(SequenceNumber=first), lambda_record(SequenceNumber=second)])

    assert records[0].sequence_number < records[1].sequence_number
    assert [first, second] == [record.item_identifier for record in records]


def test_sequence_number_identifier_is_the_text_exactly_as_sent() -> None:
    [record] = parse_event(lambda_record(SequenceNumber="000123"))

    assert (123, "000123") == (record.sequence_number, record.item_identifier)


# --- input shapes ----------------------------------------------------------


def test_single_record_is_read_as_a_batch_of_one() -> None:
    [record] = parse_event(lambda_record())

    assert ("e-1", "Orders") == (record.event_id, record.table_name)


def test_array_of_records_is_read_in_order() -> None:
    records = parse_event([lambda_record(number=n) for n in (1, 2, 3)])

    assert ["e-1", "e-2", "e-3"] == [record.event_id for record in records]


def test_event_with_no_records_reads_as_empty() -> None:
    batch = read_event({"Records": []})

    assert ((), None, 0) == (batch.records, batch.error, batch.total)


def test_json_text_and_bytes_read_as_the_dict_does() -> None:
    event = {"Records": [lambda_record("INSERT", number=1), lambda_record("REMOVE", number=2)]}
    expected = [fields(record) for record in parse_event(event)]

    assert expected == [fields(record) for record in parse_event(json.dumps(event))]
    assert expected == [fields(record) for record in parse_event(json.dumps(event).encode())]


@pytest.mark.parametrize("form", ["text", "bytes", "file"])
def test_json_starting_with_a_byte_order_mark_reads_as_the_dict_does(form: str, tmp_path: Path) -> None:
    event = {"Records": [lambda_record("INSERT", number=1), lambda_record("REMOVE", number=2)]}
    text = "\ufeff" + json.dumps(event)
    path = tmp_path / "event.json"
    path.write_text(text, encoding="utf-8")
    sent = {"text": text, "bytes": text.encode(), "file": load_event(path)}[form]

    assert [fields(record) for record in parse_event(event)] == [
        fields(record) for record in parse_event(sent)
    ]
    assert 2 == len(read_event(sent).records)


@pytest.mark.parametrize("form", ["text", "bytes"])
def test_json_with_two_byte_order_marks_is_malformed(form: str) -> None:
    text = "\ufeff\ufeff" + json.dumps({"Records": []})

    assert "" == malformed_event(text if form == "text" else text.encode()).field


def test_json_text_keeps_numbers_exact() -> None:
    text = json.dumps(lambda_record("INSERT")).replace('"12.50"', '"1.500E+1"')

    [record] = parse_event(text)

    assert Decimal("1.500E+1").as_tuple() == record.new_image["total"].as_tuple()  # type: ignore[index]


def tumbling_window_event() -> dict[str, Any]:
    records = [lambda_record(number=1), lambda_record(number=2)]
    for record in records:
        del record["eventSourceARN"]
    return {
        "Records": records,
        "window": {"start": "2020-07-30T17:00:00Z", "end": "2020-07-30T17:05:00Z"},
        "state": {"1": "state1"},
        "shardId": "shard123456789",
        "eventSourceARN": ARN.replace("Orders", "Windowed"),
        "isFinalInvokeForWindow": True,
        "isWindowTerminatedEarly": False,
    }


def test_tumbling_window_envelope_is_read() -> None:
    batch = read_event(tumbling_window_event())

    assert (
        TumblingWindow(
            start=datetime(2020, 7, 30, 17, 0, tzinfo=UTC),
            end=datetime(2020, 7, 30, 17, 5, tzinfo=UTC),
            state={"1": "state1"},
            shard_id="shard123456789",
            is_final_invoke=True,
            is_terminated_early=False,
        )
        == batch.window
    )
    assert {"1": "state1"} == batch.window.state


def test_tumbling_window_records_take_their_table_from_the_envelope_arn() -> None:
    records = parse_event(tumbling_window_event())

    assert ["Windowed", "Windowed"] == [record.table_name for record in records]


def test_record_arn_wins_over_the_envelope_arn() -> None:
    event = tumbling_window_event()
    event["Records"][1]["eventSourceARN"] = ARN

    records = parse_event(event)

    assert ["Windowed", "Orders"] == [record.table_name for record in records]


def test_event_without_window_has_no_window() -> None:
    assert read_event({"Records": [lambda_record()]}).window is None


def test_table_name_argument_wins_over_the_arn() -> None:
    [record] = parse_event(lambda_record(), table_name="Replica")

    assert "Replica" == record.table_name


# --- ApproximateCreationDateTime -------------------------------------------

INSTANT = datetime(2015, 4, 9, 0, 0, 0, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        pytest.param(1428537600, INSTANT.replace(microsecond=0), id="int-seconds"),
        pytest.param(1428537600.25, INSTANT, id="float-seconds"),
        pytest.param(1.42853760025e9, INSTANT, id="float-scientific"),
        pytest.param(Decimal("1.42853760025E+9"), INSTANT, id="json-number-scientific"),
        pytest.param("1.42853760025E9", INSTANT, id="string-scientific"),
        pytest.param("1428537600.25", INSTANT, id="string-seconds"),
        pytest.param(1428537600250, INSTANT, id="int-milliseconds"),
        pytest.param(1428537600250.0, INSTANT, id="float-milliseconds"),
        pytest.param(1428537600250000, INSTANT, id="int-microseconds"),
        pytest.param(datetime(2015, 4, 9, 0, 0, 0, 250_000), INSTANT, id="naive-datetime"),  # noqa: DTZ001
        pytest.param(
            datetime(2015, 4, 9, 2, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2))),
            INSTANT,
            id="aware-datetime",
        ),
        pytest.param("2015-04-09T00:00:00.250Z", INSTANT, id="iso-8601-z"),
        pytest.param("2015-04-09T02:00:00.250+02:00", INSTANT, id="iso-8601-offset"),
    ],
)
def test_creation_time_in_any_unit_is_the_same_aware_utc_instant(created: Any, expected: datetime) -> None:
    [record] = parse_event(lambda_record(ApproximateCreationDateTime=created))

    assert expected == record.approximate_creation_time
    assert timedelta(0) == record.approximate_creation_time.utcoffset()


def test_creation_time_as_scientific_json_number_in_text_is_exact() -> None:
    text = json.dumps(lambda_record()).replace(str(CREATED), "1.42853760025E9")

    [record] = parse_event(text)

    assert INSTANT == record.approximate_creation_time


def test_absent_creation_time_is_none() -> None:
    record = lambda_record()
    del record["dynamodb"]["ApproximateCreationDateTime"]

    [read] = parse_event(record)

    assert read.approximate_creation_time is None


@pytest.mark.parametrize(
    "created",
    ["yesterday", True, float("nan"), "Infinity", [1], "1E+1000000", 10**30],
    ids=["text", "boolean", "nan", "infinity", "array", "past-decimal-range", "past-year-9999"],
)
def test_unreadable_creation_time_is_malformed(created: Any) -> None:
    error = malformed_record(lambda_record(ApproximateCreationDateTime=created))

    assert "dynamodb.ApproximateCreationDateTime" == error.field


# --- GetRecords, as boto3 returns it ---------------------------------------

ITEM = {
    "id": {"S": "o-1"},
    "email": {"S": CANARY},
    "total": {"N": "12345678901234567890123456789012345678"},
    "rate": {"N": "-1.5E-7"},
    "photo": {"B": b"\x00\xffbinary"},
    "thumbs": {"BS": [b"QUJD", b"\x01"]},
    "tags": {"SS": ["a", "b"]},
    "scores": {"NS": ["1", "2.5"]},
    "address": {"M": {"city": {"S": "Lyon"}, "zip": {"N": "69001"}}},
    "lines": {"L": [{"M": {"sku": {"S": "s-1"}, "qty": {"N": "2"}}}]},
    "gift": {"BOOL": True},
    "note": {"NULL": True},
}
WRITTEN = {
    "id": "o-1",
    "email": CANARY,
    "total": Decimal("12345678901234567890123456789012345678"),
    "rate": Decimal("-1.5E-7"),
    "photo": b"\x00\xffbinary",
    "thumbs": {b"QUJD", b"\x01"},
    "tags": {"a", "b"},
    "scores": {Decimal(1), Decimal("2.5")},
    "address": {"city": "Lyon", "zip": Decimal(69001)},
    "lines": [{"sku": "s-1", "qty": Decimal(2)}],
    "gift": True,
    "note": None,
}
UPDATED = WRITTEN | {"status": "PAID", "total": Decimal("0.5")}


@attrs.frozen
class GetRecordsRun:
    response: dict[str, Any]
    started: datetime
    finished: datetime


@pytest.fixture(scope="module")
def get_records() -> GetRecordsRun:
    """Write, update and delete one item in moto, then read its stream with boto3."""
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        region_name="eu-west-1",
    )
    # With current botocore, in-process moto answers stream calls only in this mode.
    config = Config(account_id_endpoint_mode="disabled")
    with mock_aws():
        dynamodb = session.client("dynamodb", config=config)
        dynamodb.create_table(
            TableName="Orders",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        started = datetime.now(UTC)
        dynamodb.put_item(TableName="Orders", Item=ITEM)
        dynamodb.update_item(
            TableName="Orders",
            Key={"id": {"S": "o-1"}},
            UpdateExpression="SET #status = :status, #total = :total",
            ExpressionAttributeNames={"#status": "status", "#total": "total"},
            ExpressionAttributeValues={":status": {"S": "PAID"}, ":total": {"N": "0.5"}},
        )
        dynamodb.delete_item(TableName="Orders", Key={"id": {"S": "o-1"}})
        finished = datetime.now(UTC)

        streams = session.client("dynamodbstreams", config=config)
        stream_arn = dynamodb.describe_table(TableName="Orders")["Table"]["LatestStreamArn"]
        [shard] = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        response = streams.get_records(ShardIterator=iterator)
    return GetRecordsRun(dict(response), started, finished)


def test_get_records_response_reads_insert_modify_remove_in_order(get_records: GetRecordsRun) -> None:
    records = parse_event(get_records.response, table_name="Orders")

    assert [EventName.INSERT, EventName.MODIFY, EventName.REMOVE] == [record.event_name for record in records]
    assert {"Orders"} == {record.table_name for record in records}
    assert [{"id": "o-1"}] * 3 == [record.keys for record in records]


def test_get_records_images_equal_what_was_written(get_records: GetRecordsRun) -> None:
    insert, modify, remove = parse_event(get_records.response, table_name="Orders")

    assert (WRITTEN, None) == (insert.new_image, insert.old_image)
    assert (UPDATED, WRITTEN) == (modify.new_image, modify.old_image)
    assert (None, UPDATED) == (remove.new_image, remove.old_image)


def test_get_records_binary_is_the_bytes_written_not_decoded_again(get_records: GetRecordsRun) -> None:
    [insert, *_] = parse_event(get_records.response, table_name="Orders")
    image: dict[str, Any] = insert.new_image  # type: ignore[assignment]

    assert b"\x00\xffbinary" == image["photo"]
    assert {b"QUJD", b"\x01"} == image["thumbs"]
    assert {bytes} == {type(image["photo"]), *(type(member) for member in image["thumbs"])}


def test_get_records_numbers_are_exact_decimals(get_records: GetRecordsRun) -> None:
    [insert, *_] = parse_event(get_records.response, table_name="Orders")
    image: dict[str, Any] = insert.new_image  # type: ignore[assignment]

    assert Decimal("12345678901234567890123456789012345678").as_tuple() == image["total"].as_tuple()
    assert Decimal("-1.5E-7").as_tuple() == image["rate"].as_tuple()


def test_get_records_creation_time_is_aware_utc_when_it_was_written(get_records: GetRecordsRun) -> None:
    records = parse_event(get_records.response, table_name="Orders")
    times = [record.approximate_creation_time for record in records]

    assert [timedelta(0)] * 3 == [time.utcoffset() for time in times]  # type: ignore[union-attr]
    margin = timedelta(seconds=1)  # moto keeps milliseconds
    assert all(get_records.started - margin <= time <= get_records.finished + margin for time in times)  # type: ignore[operator]


def test_get_records_sequence_numbers_are_exact_ints_in_order(get_records: GetRecordsRun) -> None:
    records = parse_event(get_records.response, table_name="Orders")
    sent = [raw["dynamodb"]["SequenceNumber"] for raw in get_records.response["Records"]]

    assert sent == [record.item_identifier for record in records]
    assert [int(text) for text in sent] == [record.sequence_number for record in records]
    assert sorted(record.sequence_number for record in records) == [
        record.sequence_number for record in records
    ]


def test_get_records_without_table_name_is_malformed_at_event_source_arn(get_records: GetRecordsRun) -> None:
    first = get_records.response["Records"][0]

    error = malformed_record(get_records.response)

    assert ("eventSourceARN", 0) == (error.field, error.index)
    assert (first["eventID"], first["dynamodb"]["SequenceNumber"]) == (error.event_id, error.sequence_number)


# --- malformed events ------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        pytest.param({"records": []}, "Records", id="no-Records"),
        pytest.param({"Records": {"eventID": "1"}}, "Records", id="Records-object"),
        pytest.param({"Records": None}, "Records", id="Records-null"),
        pytest.param(42, "", id="number"),
        pytest.param("42", "", id="json-number"),
        pytest.param("{", "", id="truncated-json"),
        pytest.param(b'{"Records": "\xff"}', "", id="not-utf-8"),
        pytest.param({"Records": [], "window": "2020"}, "window", id="window-not-object"),
        pytest.param({"Records": [], "window": {"start": "soon"}}, "window.start", id="window-start"),
    ],
)
def test_unreadable_event_is_a_malformed_event_error(event: Any, field: str) -> None:
    assert field == malformed_event(event).field


def test_truncated_json_file_is_malformed_with_line_and_column(tmp_path: Path) -> None:
    text = (FIXTURES / "aws_sample.json").read_text()
    cut = text[: text.index('"SizeBytes": 59,') + len('"SizeBytes": 59,')]
    path = tmp_path / "truncated.json"
    path.write_text(cut)
    line, column = cut.count("\n") + 1, len(cut.rsplit("\n", 1)[-1]) + 1

    with pytest.raises(MalformedEventError) as raised:
        load_event(path)

    assert MalformedEventError is type(raised.value)
    assert f"at line {line} column {column}" in str(raised.value)


def mutated(change: Any) -> dict[str, Any]:
    """An event whose second record (#1, eventID e-2) has been changed."""
    record = lambda_record(number=2)
    change(record)
    return {"Records": [lambda_record(number=1), record]}


SECOND_SEQUENCE_NUMBER = str(int(SEQUENCE_NUMBER) + 1)
SQS_MESSAGE = {
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
    "body": "hello",
    "attributes": {"ApproximateReceiveCount": "1"},
    "messageAttributes": {},
    "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orders",
    "awsRegion": "eu-west-1",
}


def _set(path: str, value: Any) -> Any:
    *parents, last = path.split("/")

    def change(record: dict[str, Any]) -> None:
        target = record
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _delete(path: str) -> Any:
    *parents, last = path.split("/")

    def change(record: dict[str, Any]) -> None:
        target = record
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _replace_with(replacement: dict[str, Any]) -> Any:
    def change(record: dict[str, Any]) -> None:
        record.clear()
        record.update(copy.deepcopy(replacement))

    return change


def assert_names(
    error: MalformedRecordError, field: str, event_id: str | None, sequence_number: str | None
) -> None:
    """The error names record #1 by what could be read of it, and the field."""
    assert (field, 1, event_id, sequence_number) == (
        error.field,
        error.index,
        error.event_id,
        error.sequence_number,
    )


SECOND = SECOND_SEQUENCE_NUMBER


@pytest.mark.parametrize(
    "change",
    [_set("eventName", "UPSERT"), _set("eventName", "insert"), _set("eventName", 1), _delete("eventName")],
    ids=["unknown", "lower-case", "number", "missing"],
)
def test_unknown_or_missing_event_name_is_malformed(change: Any) -> None:
    assert_names(malformed_record(mutated(change)), "eventName", "e-2", SECOND)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(_set("dynamodb/Keys/id", {}), "dynamodb.Keys.id", id="no-type-tag"),
        pytest.param(
            _set("dynamodb/NewImage/total", {"S": "1", "N": "1"}), "dynamodb.NewImage.total", id="two"
        ),
        pytest.param(_set("dynamodb/NewImage/total", {"N": 20}), "dynamodb.NewImage.total", id="N-as-number"),
        pytest.param(
            _set("dynamodb/OldImage/lines", {"L": [{"M": {"qty": {"N": "x"}}}]}),
            "dynamodb.OldImage.lines[0].#1",
            id="deep-in-old-image",
        ),
        pytest.param(_set("dynamodb/OldImage", []), "dynamodb.OldImage", id="image-not-an-object"),
        pytest.param(_set("dynamodb/NewImage/tags", {"SS": []}), "dynamodb.NewImage.tags", id="empty-set"),
        pytest.param(
            _set("dynamodb/OldImage/tags", {"NS": ["1.5", "1.50"]}),
            "dynamodb.OldImage.tags[1]",
            id="repeated-member",
        ),
        pytest.param(_set("dynamodb/OldImage", ""), "dynamodb.OldImage", id="image-empty-string"),
        pytest.param(_set("dynamodb/NewImage", False), "dynamodb.NewImage", id="image-false"),
    ],
)
def test_malformed_attribute_value_is_named_by_its_path(change: Any, field: str) -> None:
    assert_names(malformed_record(mutated(change)), field, "e-2", SECOND)


@pytest.mark.parametrize(
    "change",
    [_delete("dynamodb/Keys"), _set("dynamodb/Keys", {}), _set("dynamodb/Keys", None)],
    ids=["missing", "empty", "null"],
)
def test_missing_or_empty_keys_are_malformed(change: Any) -> None:
    assert_names(malformed_record(mutated(change)), "dynamodb.Keys", "e-2", SECOND)


@pytest.mark.parametrize(
    "value",
    ["", "12a", "-1", " 1", 1.5, -1, None, "\u0661\u0662"],
    ids=["empty", "letters", "negative", "space", "float", "negative-int", "null", "arabic-indic-digits"],
)
def test_invalid_sequence_number_is_malformed(value: Any) -> None:
    error = malformed_record(mutated(_set("dynamodb/SequenceNumber", value)))

    assert_names(error, "dynamodb.SequenceNumber", "e-2", None)


def test_missing_sequence_number_is_malformed() -> None:
    error = malformed_record(mutated(_delete("dynamodb/SequenceNumber")))

    assert_names(error, "dynamodb.SequenceNumber", "e-2", None)


@pytest.mark.parametrize(
    "change",
    [_delete("eventID"), _set("eventID", ""), _set("eventID", 7)],
    ids=["missing", "empty", "number"],
)
def test_missing_or_invalid_event_id_is_malformed(change: Any) -> None:
    assert_names(malformed_record(mutated(change)), "eventID", None, SECOND)


def test_record_without_dynamodb_is_malformed() -> None:
    assert_names(malformed_record(mutated(_delete("dynamodb"))), "dynamodb", "e-2", None)


def test_sqs_message_is_malformed_at_event_source() -> None:
    assert_names(malformed_record(mutated(_replace_with(SQS_MESSAGE))), "eventSource", None, None)


def test_a_stream_record_claiming_to_come_from_kinesis_is_malformed_at_event_source() -> None:
    error = malformed_record(mutated(_set("eventSource", "aws:kinesis")))

    assert_names(error, "eventSource", "e-2", SECOND)
    assert "without its 'kinesis' object" in error.reason


@pytest.mark.parametrize(
    "change",
    [
        _set("eventSourceARN", "stream-ARN"),
        _set("eventSourceARN", "arn:aws:sqs:eu-west-1:123456789012:orders"),
        _set("eventSourceARN", "arn:aws:dynamodb:eu-west-1:123456789012:backup/b-1"),
        _set("eventSourceARN", "arn:aws:dynamodb:eu-west-1:123456789012:table/"),
        _set("eventSourceARN", 42),
        _delete("eventSourceARN"),
    ],
    ids=["not-an-arn", "sqs-queue", "not-a-table", "no-table-name", "number", "missing"],
)
def test_bad_or_missing_event_source_arn_is_malformed(change: Any) -> None:
    assert_names(malformed_record(mutated(change)), "eventSourceARN", "e-2", SECOND)


def arn_of(table: str) -> str:
    return f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-01T00:00:00.000"


# Table names are 3 to 255 of a-z, A-Z, 0-9, "_", "-" and "."
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.NamingRules).
@pytest.mark.parametrize(
    "table",
    ["{{{table}}}", "${TableName}", "Q7", "x" * 256, "My Orders", "Ordérs", "Orders\n"],
    ids=[
        "sam-placeholder",
        "cfn-placeholder",
        "too-short",
        "too-long",
        "space",
        "not-ascii",
        "newline",
    ],
)
def test_event_source_arn_whose_table_name_dynamodb_cannot_have_is_malformed(table: str) -> None:
    error = malformed_record(mutated(_set("eventSourceARN", arn_of(table))))

    assert_names(error, "eventSourceARN", "e-2", SECOND)
    assert table not in str(error)
    assert error.reason.startswith("its table name is not a DynamoDB table name")


@pytest.mark.parametrize("table", ["abc", "x" * 255, "Orders.v2-eu_1", "0-_."])
def test_event_source_arn_with_any_valid_table_name_names_that_table(table: str) -> None:
    [record] = parse_event(lambda_record() | {"eventSourceARN": arn_of(table)})

    assert table == record.table_name


# Every saved event but the one whose Kinesis record another producer wrote
# (tests/test_kinesis_events.py checks that it is refused).
SAVED_EVENTS = sorted(
    path
    for path in [
        *FIXTURES.glob("**/*.json"),
        *(FIXTURES.parent.parent.parent / "examples").glob("*/events/*.json"),
    ]
    if path.name != "go_kinesis_time_window_event.json"
)


@pytest.mark.parametrize("path", SAVED_EVENTS, ids=[path.name for path in SAVED_EVENTS])
def test_every_saved_event_of_the_project_is_read(path: Path) -> None:
    assert parse_event(load_event(path))


def test_unknown_stream_view_type_is_malformed() -> None:
    error = malformed_record(mutated(_set("dynamodb/StreamViewType", "ALL")))

    assert_names(error, "dynamodb.StreamViewType", "e-2", SECOND)


@pytest.mark.parametrize("value", [-1, "26", 2.5, True], ids=["negative", "string", "float", "boolean"])
def test_invalid_size_bytes_is_malformed(value: Any) -> None:
    error = malformed_record(mutated(_set("dynamodb/SizeBytes", value)))

    assert_names(error, "dynamodb.SizeBytes", "e-2", SECOND)


def test_record_that_is_not_an_object_is_malformed_at_its_position() -> None:
    error = malformed_record({"Records": [lambda_record(), "e-2"]})

    assert ("", 1, None, None) == (error.field, error.index, error.event_id, error.sequence_number)


def test_malformed_record_message_names_position_event_id_sequence_number_and_field() -> None:
    error = malformed_record(mutated(_set("eventName", "UPSERT")))

    assert (
        f"malformed record #1 eventID='e-2' SequenceNumber='{SECOND_SEQUENCE_NUMBER}': eventName: "
        "unknown event name 'UPSERT' (expected INSERT, MODIFY or REMOVE)"
    ) == str(error)


def test_read_event_returns_the_records_before_a_malformed_one_and_its_error() -> None:
    records = [lambda_record(number=n) for n in (1, 2, 3, 4)]
    records[2]["eventName"] = "UPSERT"

    batch = read_event({"Records": records})

    assert ["e-1", "e-2"] == [record.event_id for record in batch.records]
    assert ("eventName", 2, "e-3") == (batch.error.field, batch.error.index, batch.error.event_id)  # type: ignore[union-attr]
    assert 4 == batch.total


def test_parse_event_raises_the_error_read_event_reports() -> None:
    records = [lambda_record(number=n) for n in (1, 2, 3)]
    records[1]["dynamodb"]["NewImage"]["total"] = {"N": 20}

    error = malformed_record({"Records": records})

    assert (1, "dynamodb.NewImage.total") == (error.index, error.field)


# --- lone surrogates -----------------------------------------------------------
# JSON's "\ud800" escape gives a str that no UTF-8 text (every DynamoDB string) can
# hold: refused where it is, before it reaches a driver or a log line.

LONE_SURROGATE = "not valid Unicode: a lone surrogate"


@pytest.mark.parametrize(
    ("change", "field", "event_id"),
    [
        pytest.param(_set("eventID", "e-\ud800"), "eventID", None, id="eventID"),
        pytest.param(_set("awsRegion", "eu-\udc00"), "awsRegion", "e-2", id="awsRegion"),
        pytest.param(
            _set("eventSourceARN", ARN.replace("eu-west-1", "eu-\ud800")), "eventSourceARN", "e-2", id="ARN"
        ),
        pytest.param(
            _set("dynamodb/Keys/id", {"S": CANARY + "\ud800"}), "dynamodb.Keys.id", "e-2", id="Keys"
        ),
        pytest.param(
            _set("dynamodb/NewImage/email", {"S": CANARY + "\udfff"}),
            "dynamodb.NewImage.email",
            "e-2",
            id="S",
        ),
        pytest.param(
            _set("dynamodb/OldImage/\ud800", {"S": CANARY}), "dynamodb.OldImage['\\ud800']", "e-2", id="name"
        ),
    ],
)
def test_lone_surrogate_in_the_record_is_malformed_and_never_quoted(
    change: Any, field: str, event_id: str | None
) -> None:
    error = malformed_record(mutated(change))

    assert_names(error, field, event_id, SECOND)
    assert LONE_SURROGATE == error.reason
    assert CANARY not in str(error)
    str(error).encode()  # the message itself is valid text


def test_lone_surrogate_in_the_arn_is_malformed_when_table_name_is_given_too() -> None:
    error = malformed_record(mutated(_set("eventSourceARN", ARN + "\ud800")), table_name="Orders")

    assert ("eventSourceARN", LONE_SURROGATE) == (error.field, error.reason)


def test_lone_surrogate_escaped_in_json_text_is_malformed() -> None:
    text = json.dumps(mutated(_set("dynamodb/NewImage/email", {"S": "x"}))).replace(
        '"S": "x"', '"S": "x\\ud800"'
    )
    assert "\\ud800" in text

    error = malformed_record(text)

    assert ("dynamodb.NewImage.email", LONE_SURROGATE) == (error.field, error.reason)


def test_lone_surrogate_encoded_in_json_bytes_is_malformed() -> None:
    # json.loads reads bytes with "surrogatepass": a UTF-8-style encoded surrogate gets through it.
    data = json.dumps(mutated(_set("dynamodb/NewImage/email", {"S": "x"}))).encode()
    data = data.replace(b'"S": "x"', b'"S": "x\xed\xa0\x80"')

    error = malformed_record(data)

    assert ("dynamodb.NewImage.email", LONE_SURROGATE) == (error.field, error.reason)


def test_lone_surrogate_is_reported_by_the_dispatcher_and_the_records_before_it_handled() -> None:
    import sqlalchemy as sa

    import dynastream

    app = dynastream.App(engine=sa.create_engine("sqlite://", poolclass=sa.StaticPool))
    handled: list[str] = []

    @app.handler("Orders")
    def collect(records: Any, uow: Any) -> None:
        handled.extend(record.new_image["email"] for record in records)

    result = app.dispatch(mutated(_set("dynamodb/NewImage/email", {"S": "x\ud800"})))

    assert [{"itemIdentifier": SECOND}] == result.response()["batchItemFailures"]
    assert isinstance(result.failure and result.failure.error, MalformedRecordError)
    assert [CANARY] == handled


def test_surrogate_pair_escaped_in_json_text_is_the_character_it_encodes() -> None:
    text = json.dumps(lambda_record("INSERT")).replace('"S": "PAID"', '"S": "\\ud83d\\ude00"')

    [record] = parse_event(text)

    assert "\U0001f600" == record.new_image["status"]  # type: ignore[index]


# --- no attribute values in errors or reprs ----------------------------------


@pytest.mark.parametrize(
    "change",
    [
        _set("dynamodb/NewImage/total", {"N": CANARY}),
        _set("dynamodb/NewImage/total", {"B": CANARY}),
        _set("dynamodb/NewImage/total", {"BOOL": CANARY}),
        _set("dynamodb/NewImage/total", {"S": CANARY, "N": "1"}),
        _set("dynamodb/NewImage/total", {"N": 20}),
        _set("dynamodb/Keys/id", {"N": CANARY}),
        _set("eventName", "UPSERT"),
        _set("dynamodb/ApproximateCreationDateTime", CANARY),
    ],
    ids=["N", "B", "BOOL", "two-tags", "beside-a-bad-number", "key", "event-name", "creation-time"],
)
def test_record_error_never_quotes_an_attribute_value(change: Any) -> None:
    error = malformed_record(mutated(change))

    assert CANARY not in str(error)
    assert CANARY not in repr(error)


def test_record_repr_never_shows_keys_or_images() -> None:
    record = lambda_record("MODIFY", Keys={"email": {"S": CANARY}})

    [read] = parse_event(record)

    assert CANARY not in repr(read)


def test_event_batch_repr_never_shows_keys_or_images() -> None:
    records = [lambda_record("MODIFY", number=1), lambda_record(number=2)]
    records[1]["dynamodb"]["NewImage"]["total"] = {"N": CANARY}

    batch = read_event({"Records": records})

    assert CANARY not in repr(batch)
