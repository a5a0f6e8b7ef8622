"""
The testing kit: built events read back to what went in; the Lambda context counts down.
"""

from __future__ import annotations

import doctest
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import dynastream
from dynastream import EventName, StreamViewType, read_event
from dynastream.exceptions import TimeBudgetError
from dynastream.testing import EventFactory, LambdaContext, attribute_value, serialize_image

# Values -------------------------------------------------------------------------------

# Numbers DynamoDB stores: up to 38 significant digits, magnitudes 1E-130 to 9.99...E+125.
numbers = st.one_of(
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.builds(
        lambda sign, digits, exponent: Decimal((sign, digits, exponent - len(digits) + 1)),
        st.sampled_from([0, 1]),
        st.lists(st.integers(0, 9), min_size=1, max_size=38).map(tuple).filter(lambda d: d[0] != 0),
        st.integers(-130, 125),
    ),
)
scalars = st.one_of(
    st.text(),  # S
    numbers,  # N
    st.binary(),  # B
    st.booleans(),  # BOOL
    st.none(),  # NULL
    st.frozensets(st.text(), min_size=1),  # SS
    st.frozensets(numbers, min_size=1),  # NS
    st.frozensets(st.binary(), min_size=1),  # BS
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1).filter(lambda name: name != "id"), values, max_size=6).map(
    lambda attributes: {"id": "item-1", **attributes}
)


def read_back(event: dict[str, Any]) -> list[dynastream.StreamRecord[dynastream.Item]]:
    """Read an event as Lambda hands it over: as JSON text."""
    batch = read_event(json.dumps(event))
    assert batch.error is None
    return list(batch.records)


@given(items)
def test_every_attribute_type_reads_back_to_the_same_python_values(item: dict[str, Any]) -> None:
    events = EventFactory()

    [inserted, modified, removed] = read_back(
        events.event(
            events.insert("Things", item), events.modify("Things", item), events.remove("Things", item)
        )
    )

    assert item == inserted.new_image == modified.new_image == modified.old_image == removed.old_image
    assert {"id": "item-1"} == inserted.keys


@given(numbers)
def test_numbers_keep_their_exact_text(number: int | Decimal) -> None:
    [record] = read_back(EventFactory().inserts("Things", [{"id": "n", "n": number}]))

    assert record.new_image is not None
    assert str(number) == str(record.new_image["n"])
    assert {"N": str(number)} == attribute_value(number)


def test_every_type_is_serialized_as_lambda_sends_it() -> None:
    item = {
        "s": "text",
        "n": Decimal("12.50"),
        "i": 7,
        "b": b"\x00\xff",
        "t": True,
        "z": None,
        "m": {"k": [1, "x"]},
        "ss": {"b", "a"},
        "ns": frozenset({Decimal("2.5"), 1}),
        "bs": {b"\x02", b"\x01"},
    }

    assert {
        "s": {"S": "text"},
        "n": {"N": "12.50"},
        "i": {"N": "7"},
        "b": {"B": "AP8="},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "m": {"M": {"k": {"L": [{"N": "1"}, {"S": "x"}]}}},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AQ==", "Ag=="]},
    } == serialize_image(item)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (1.5, TypeError, "use decimal.Decimal"),
        (set(), ValueError, "empty sets"),
        ({"a", 1}, TypeError, "only strings, only numbers"),
        ({True, False}, TypeError, "only strings, only numbers"),
        (Decimal("NaN"), ValueError, "finite"),
        (Decimal("Infinity"), ValueError, "finite"),
        (10**38 + 1, ValueError, "38 significant digits"),
        (Decimal("1E+126"), ValueError, "between"),
        (Decimal("1E-131"), ValueError, "between"),
        (object(), TypeError, "no DynamoDB attribute type"),
        ({1: "x"}, TypeError, "names must be strings"),
    ],
)
def test_values_dynamodb_refuses_are_refused(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        attribute_value(value)


def test_errors_name_the_attribute_path_but_never_a_value() -> None:
    canary = "canary-4f2a"

    with pytest.raises(TypeError) as raised:
        serialize_image({"profile": {"emails": [canary, {canary, 3}]}})

    assert "attribute 'profile.emails[1]'" in str(raised.value)
    assert canary not in str(raised.value)


def test_limits_are_inclusive() -> None:
    largest, smallest = Decimal("9.9999999999999999999999999999999999999E+125"), Decimal("1E-130")

    assert [{"N": str(largest)}, {"N": str(smallest)}, {"N": "1" + "0" * 60}] == [
        attribute_value(largest),
        attribute_value(smallest),
        attribute_value(10**60),  # one significant digit
    ]


# Records ------------------------------------------------------------------------------

IMAGES = {
    ("KEYS_ONLY", "INSERT"): set(),
    ("KEYS_ONLY", "MODIFY"): set(),
    ("KEYS_ONLY", "REMOVE"): set(),
    ("NEW_IMAGE", "INSERT"): {"NewImage"},
    ("NEW_IMAGE", "MODIFY"): {"NewImage"},
    ("NEW_IMAGE", "REMOVE"): set(),
    ("OLD_IMAGE", "INSERT"): set(),
    ("OLD_IMAGE", "MODIFY"): {"OldImage"},
    ("OLD_IMAGE", "REMOVE"): {"OldImage"},
    ("NEW_AND_OLD_IMAGES", "INSERT"): {"NewImage"},
    ("NEW_AND_OLD_IMAGES", "MODIFY"): {"NewImage", "OldImage"},
    ("NEW_AND_OLD_IMAGES", "REMOVE"): {"OldImage"},
}


def build(
    events: EventFactory, event_name: str, item: dict[str, Any], table: str = "Orders"
) -> dict[str, Any]:
    if event_name == "INSERT":
        return events.insert(table, item)
    if event_name == "MODIFY":
        return events.modify(table, item)
    return events.remove(table, item)


@pytest.mark.parametrize(("view_type", "event_name"), list(IMAGES))
def test_images_are_the_ones_the_view_type_carries_for_the_event(view_type: str, event_name: str) -> None:
    events = EventFactory(view_type=view_type)

    raw = build(events, event_name, {"id": "o-1", "total": 3})
    [record] = read_back(events.event(raw))

    assert IMAGES[view_type, event_name] == {"NewImage", "OldImage"} & set(raw["dynamodb"])
    assert {"id": {"S": "o-1"}} == raw["dynamodb"]["Keys"]
    assert (StreamViewType(view_type), EventName(event_name)) == (record.stream_view_type, record.event_name)


def test_a_record_has_every_field_lambda_sends() -> None:
    events = EventFactory(region="us-west-2", account_id="210987654321", created_at=1_790_000_000)

    record = events.insert("Orders", {"id": "o-1"})

    assert {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    } == set(record)
    assert ("1.1", "aws:dynamodb", "us-west-2") == (
        record["eventVersion"],
        record["eventSource"],
        record["awsRegion"],
    )
    assert re.fullmatch(r"[0-9a-f]{32}", record["eventID"])
    assert re.fullmatch(
        r"arn:aws:dynamodb:us-west-2:210987654321:table/Orders/stream/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}",
        record["eventSourceARN"],
    )
    dynamodb = record["dynamodb"]
    assert 1_790_000_000 == dynamodb["ApproximateCreationDateTime"]
    assert isinstance(dynamodb["SizeBytes"], int)
    assert dynamodb["SizeBytes"] > 0
    assert "NEW_AND_OLD_IMAGES" == dynamodb["StreamViewType"]


def test_records_read_back_with_their_table_region_and_time() -> None:
    created = datetime(2026, 11, 1, 10, 0, 1, tzinfo=UTC)
    events = EventFactory(region="ap-south-1", created_at=created)

    [record] = read_back(events.inserts("Payments", [{"id": "p-1"}]))

    assert ("Payments", "ap-south-1", created) == (
        record.table_name,
        record.aws_region,
        record.approximate_creation_time,
    )


def test_sequence_numbers_are_long_text_and_strictly_increase() -> None:
    events = EventFactory()

    records = [
        events.insert("Alpha", {"id": "1"}),
        events.modify("Beta", {"id": "1"}),
        events.remove("Alpha", {"id": "1"}),
        *events.inserts("Alpha", [{"id": "2"}, {"id": "3"}])["Records"],
    ]

    texts = [r["dynamodb"]["SequenceNumber"] for r in records]
    assert all(isinstance(text, str) and len(text) >= 21 and text.isdigit() for text in texts)
    assert sorted(texts, key=int) == texts
    assert len(set(texts)) == len(texts)


def test_a_given_sequence_number_is_used_and_the_factory_goes_on_with_its_own() -> None:
    events = EventFactory(first_sequence_number=10**25)

    given_one = events.insert("Things", {"id": "a"}, sequence_number=7)
    first, second = events.insert("Things", {"id": "b"}), events.insert("Things", {"id": "c"})

    assert ["7", str(10**25), str(10**25 + 1)] == [
        r["dynamodb"]["SequenceNumber"] for r in (given_one, first, second)
    ]


def test_a_record_built_again_has_the_same_event_id_and_others_differ() -> None:
    events = EventFactory()

    first = events.insert("Things", {"id": "a"}, sequence_number=10**21)
    again = events.insert("Things", {"id": "a"}, sequence_number=10**21)
    other_table = events.insert("Others", {"id": "a"}, sequence_number=10**21)
    next_one = events.insert("Things", {"id": "a"})

    assert first["eventID"] == again["eventID"]
    assert len({first["eventID"], other_table["eventID"], next_one["eventID"]}) == 3


def test_modify_takes_the_last_image_the_factory_built_as_the_old_one() -> None:
    events = EventFactory(keys={"Orders": ["orderId", "line"]})
    placed = {"orderId": "o-1", "line": 1, "status": "PLACED"}

    event = events.event(
        events.insert("Orders", placed),
        events.modify("Orders", {**placed, "status": "PACKED"}),
        events.modify("Orders", {**placed, "status": "SHIPPED"}),
        events.modify("Orders", {**placed, "line": 2, "status": "NEW"}),  # never built: old is new
    )

    assert [(None, "PLACED"), ("PLACED", "PACKED"), ("PACKED", "SHIPPED"), ("NEW", "NEW")] == [
        (r.old_image and r.old_image["status"], r.new_image and r.new_image["status"])
        for r in read_back(event)
    ]


def test_modify_keeps_a_given_old_image_and_refuses_one_of_another_item() -> None:
    events = EventFactory()

    record = events.modify("Things", {"id": "a", "v": 2}, {"id": "a", "v": 1})

    assert {"id": {"S": "a"}, "v": {"N": "1"}} == record["dynamodb"]["OldImage"]
    with pytest.raises(ValueError, match="key attributes differ"):
        events.modify("Things", {"id": "a"}, {"id": "b"})


def test_remove_forgets_the_item() -> None:
    events = EventFactory()
    events.insert("Things", {"id": "a", "v": 1})
    events.remove("Things", {"id": "a", "v": 1})

    record = events.modify("Things", {"id": "a", "v": 3})

    assert {"id": {"S": "a"}, "v": {"N": "3"}} == record["dynamodb"]["OldImage"]


def test_ttl_deletes_carry_the_dynamodb_service_identity() -> None:
    events = EventFactory()

    ttl, user = read_back(
        events.event(events.remove("Things", {"id": "a"}, ttl=True), events.remove("Things", {"id": "b"}))
    )

    assert (True, False) == (ttl.is_ttl_delete, user.is_ttl_delete)
    assert {"type": "Service", "principalId": "dynamodb.amazonaws.com"} == ttl.raw["userIdentity"]
    assert "userIdentity" not in user.raw


def test_keys_may_differ_per_table_and_every_table_needs_its_keys() -> None:
    events = EventFactory(keys={"Orders": ["orderId"], "Lines": ("orderId", "line")})

    order = events.insert("Orders", {"orderId": "o-1", "x": 1})
    line = events.insert("Lines", {"orderId": "o-1", "line": 2})

    assert {"orderId": {"S": "o-1"}} == order["dynamodb"]["Keys"]
    assert {"orderId": {"S": "o-1"}, "line": {"N": "2"}} == line["dynamodb"]["Keys"]
    with pytest.raises(ValueError, match="no key attributes for table 'Other'"):
        events.insert("Other", {"orderId": "o-1"})


@pytest.mark.parametrize("table", ["T", "{{{table}}}", "My Orders", "x" * 256])
def test_a_table_name_dynamodb_cannot_have_is_refused(table: str) -> None:
    """The factory never builds a record that parse_event would refuse at eventSourceARN."""
    with pytest.raises(ValueError, match="is not a DynamoDB table name"):
        EventFactory().insert(table, {"id": "a"})


@pytest.mark.parametrize(
    ("item", "error", "message"),
    [
        ({"name": "no key"}, ValueError, "no key attribute 'id'"),
        ({"id": 1.5}, TypeError, "must be a string, a number or bytes"),
        ({"id": True}, TypeError, "must be a string, a number or bytes"),
        ({"id": {"nested": 1}}, TypeError, "must be a string, a number or bytes"),
    ],
)
def test_items_need_a_valid_key(item: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        EventFactory().insert("Things", item)


@pytest.mark.parametrize(
    "options",
    [{"view_type": "ALL"}, {"keys": ()}, {"keys": ["a", "b", "c"]}, {"first_sequence_number": -1}],
)
def test_a_factory_refuses_settings_no_stream_has(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is checked by the cases above
        EventFactory(**options)


def test_the_view_type_may_be_given_as_the_enum() -> None:
    record = EventFactory(view_type=StreamViewType.KEYS_ONLY).insert("Things", {"id": "a", "x": 1})

    assert ("KEYS_ONLY", False) == (
        json.loads(json.dumps(record))["dynamodb"]["StreamViewType"],
        "NewImage" in record["dynamodb"],
    )


def test_numbers_and_binary_keys_work() -> None:
    events = EventFactory(keys=["pk", "sk"])

    [record] = read_back(events.inserts("Things", [{"pk": b"\x01", "sk": Decimal("2.50")}]))

    assert {"pk": b"\x01", "sk": Decimal("2.50")} == record.keys


def test_repr_shows_settings_not_items() -> None:
    events = EventFactory()
    events.insert("Things", {"id": "canary-93a1"})

    assert "canary" not in repr(events)


# The Lambda context -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remaining_time_counts_down_with_the_clock_and_can_be_set() -> None:
    clock = FakeClock()
    context = LambdaContext(remaining_seconds=300, clock=clock)

    clock.now += 1.5
    counted = context.get_remaining_time_in_millis()
    context.remaining_seconds = 5
    clock.now += 2
    set_then_counted = context.get_remaining_time_in_millis()
    clock.now += 10

    assert (298_500, 3_000, 0) == (counted, set_then_counted, context.get_remaining_time_in_millis())


def test_remaining_time_runs_with_real_time_by_default() -> None:
    context = LambdaContext(remaining_seconds=60)

    assert 59_000 < context.get_remaining_time_in_millis() <= 60_000


def test_context_has_the_attributes_of_lambdas_context() -> None:
    context = LambdaContext(function_name="replicate-orders", memory_limit_in_mb=512)

    assert "arn:aws:lambda:eu-west-1:123456789012:function:replicate-orders" == context.invoked_function_arn
    assert "/aws/lambda/replicate-orders" == context.log_group_name
    assert 512 == context.memory_limit_in_mb
    assert re.fullmatch(r"[0-9a-f-]{36}", context.aws_request_id)
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", context.log_stream_name)
    assert LambdaContext().aws_request_id != context.aws_request_id


def test_the_dispatcher_refuses_to_start_work_when_the_context_says_time_is_short() -> None:
    app = dynastream.App(database_url="sqlite://")
    handled: list[str] = []

    @app.handler("Orders")
    def record_ids(records: Any, uow: dynastream.UnitOfWork) -> None:
        handled.extend(record.keys["id"] for record in records)

    events = EventFactory()
    event = events.inserts("Orders", [{"id": "o-1"}, {"id": "o-2"}])
    context = LambdaContext()
    context.remaining_seconds = 5  # below the default 10-second margin

    result = app.dispatch(event, context)

    assert isinstance(result.failure and result.failure.error, TimeBudgetError)
    assert [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}] == result.response()[
        "batchItemFailures"
    ]
    assert [] == handled
    assert {"batchItemFailures": []} == app.lambda_handler(event, LambdaContext(remaining_seconds=300))
    assert ["o-1", "o-2"] == handled


# The kit documents itself -------------------------------------------------------------


@pytest.mark.parametrize(
    "module_name",
    [
        "dynastream.testing",
        "dynastream._serialize",
        "dynastream._factory",
        "dynastream.testing._context",
    ],
)
def test_docstring_examples_run(module_name: str) -> None:
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)

    assert 0 == result.failed
