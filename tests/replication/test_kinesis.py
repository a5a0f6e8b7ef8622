"""
Replicating from Kinesis Data Streams for DynamoDB: real events, order by creation time, ties, one source.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynastream
from dynastream import load_event, parse_event
from dynastream.exceptions import ConfigurationError
from dynastream.testing import EventFactory

from .test_replication import items, make_app, rows

KDS = Path(__file__).parent.parent / "fixtures" / "events" / "kds"
START = 1_790_000_000_000_000  # microseconds since the epoch, 2026-09-21
_kinesis_numbers = itertools.count(49_657_828_409_187_701_520_019_995_242_508_390_119_953_358_325_192_589_314)


def change(
    pk: str,
    amount: str | None,
    created: int,
    *,
    precision: str = "MICROSECOND",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A KDS change record of table Items: a put (amount), or a REMOVE (None)."""
    keys = {"pk": {"S": pk}}
    dynamodb: dict[str, Any] = {"ApproximateCreationDateTime": created, "Keys": keys, "SizeBytes": 40}
    if precision == "MICROSECOND":
        dynamodb["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
    if amount is None:
        dynamodb["OldImage"] = {**keys, "label": {"S": "x"}}
    else:
        dynamodb["NewImage"] = {**keys, "amount": {"N": amount}, "label": {"S": "x"}}
    return {
        "awsRegion": "eu-west-1",
        "eventID": event_id or str(uuid.uuid4()),
        "eventName": "MODIFY" if amount is not None else "REMOVE",
        "userIdentity": None,
        "recordFormat": "application/json",
        "tableName": "Items",
        "dynamodb": dynamodb,
        "eventSource": "aws:dynamodb",
    }


def wrapped(data: dict[str, Any]) -> dict[str, Any]:
    """The change in a Lambda Kinesis record; each wrap (each delivery) has its own sequence number."""
    number = str(next(_kinesis_numbers))
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "9F3A",
            "sequenceNumber": number,
            "data": base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode(),
            "approximateArrivalTimestamp": 1_790_000_000.5,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{number}",
        "eventName": "aws:kinesis:record",
        "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:kinesis:eu-west-1:123456789012:stream/items",
    }


def deliver(app: dynastream.App, *changes: dict[str, Any]) -> dict[str, Any]:
    return app.lambda_handler({"Records": [wrapped(data) for data in changes]}, None)


def kinesis_app(engine: sa.Engine) -> dynastream.App:
    app = make_app(engine, source="kinesis")
    with engine.begin() as connection:
        connection.execute(items.delete())
        connection.execute(dynastream.schema.tombstones.delete())
    return app


# --- real events -----------------------------------------------------------------------


def test_the_powertools_kinesis_event_replicates_row_by_row(engine: sa.Engine) -> None:
    event = load_event(KDS / "powertools_typescript_kinesis_dynamodb_stream.json")
    table = sa.Table(
        "kds_powertools",
        sa.MetaData(),
        sa.Column("id", dynastream.ExactString(40), primary_key=True),
        sa.Column("data", sa.String(40)),
        dynastream.sequence_column(),
    )
    table.create(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    [name] = {record.table_name for record in parse_event(event)}
    app.replicate(name, into=table, source="kinesis")

    assert {"batchItemFailures": []} == app.lambda_handler(event, None)

    with engine.connect() as connection:
        got = [
            dict(row._mapping)
            for row in connection.execute(sa.select(table.c.id, table.c.data).order_by(table.c.id))
        ]
        stored = list(connection.scalars(sa.select(table.c.dynastream_sequence)))
    assert got == sorted((record.new_image for record in parse_event(event)), key=lambda image: image["id"])
    assert all(text.startswith("K") and len(text) == 40 for text in stored)


def test_the_bare_change_record_replicates(engine: sa.Engine) -> None:
    event = load_event(KDS / "rust_runtime_kds_record_with_optional_fields.json")
    table = sa.Table(
        "kds_examples",
        sa.MetaData(),
        sa.Column("id", dynastream.ExactString(40), primary_key=True),
        sa.Column("created", sa.String(40)),
        dynastream.sequence_column(),
    )
    table.create(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("examples", into=table, source="kinesis")

    assert {"batchItemFailures": []} == app.lambda_handler(event, None)

    with engine.connect() as connection:
        got = [dict(row._mapping) for row in connection.execute(sa.select(table.c.id, table.c.created))]
    assert got == [parse_event(event)[0].new_image]


# --- ordering --------------------------------------------------------------------------


def test_a_later_change_wins_whatever_the_delivery_order(engine: sa.Engine) -> None:
    app = kinesis_app(engine)
    first, second = change("a", "1", START), change("a", "2", START + 1)

    deliver(app, second)
    deliver(app, first, first)  # older, and twice

    assert {"a": (Decimal("2"), "x")} == rows(engine)


def test_a_removal_holds_back_an_older_change_delivered_after_it(engine: sa.Engine) -> None:
    app = kinesis_app(engine)

    deliver(app, change("a", "1", START))
    deliver(app, change("a", None, START + 10))
    deliver(app, change("a", "5", START + 5))

    assert {} == rows(engine)


def test_a_failing_record_is_reported_by_its_kinesis_sequence_number(engine: sa.Engine) -> None:
    app = kinesis_app(engine)
    good, bad = wrapped(change("a", "1", START)), wrapped(change("b", "not a number", START))

    response = app.lambda_handler({"Records": [good, bad]}, None)

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["kinesis"]["sequenceNumber"]}]}
    assert {"a": (Decimal("1"), "x")} == rows(engine)


def test_a_kinesis_change_wins_over_rows_replicated_from_dynamodb_streams_before(engine: sa.Engine) -> None:
    streams = make_app(engine)
    with engine.begin() as connection:
        connection.execute(items.delete())
    factory = EventFactory(keys=("pk",), view_type="NEW_IMAGE")
    streams.lambda_handler(
        {
            "Records": [
                factory.modify(
                    "Items", {"pk": "a", "amount": Decimal(1), "label": "x"}, sequence_number=9 * 10**39
                )
            ]
        },
        None,
    )

    deliver(make_app(engine, source="kinesis"), change("a", "2", START))

    assert {"a": (Decimal("2"), "x")} == rows(engine)


# --- ties ------------------------------------------------------------------------------


def test_two_changes_in_one_microsecond_are_counted_and_settled_the_same_way_in_any_order(
    engine: sa.Engine,
) -> None:
    one, two = change("a", "1", START, event_id="e-1"), change("a", "2", START, event_id="e-2")
    winner = max((one, two), key=lambda data: parse_event(wrapped(data))[0].sequence_number)
    finals = []
    for order in ((one, two), (two, one)):
        app = kinesis_app(engine)
        result = app.dispatch({"Records": [wrapped(data) for data in order]})
        assert result.summary.total("tied") == 1
        assert result.summary.fields()["tied"] == 1
        assert "(1 tied)" in result.summary.message()
        finals.append(rows(engine))
    assert finals[0] == finals[1] == {"a": (Decimal(winner["dynamodb"]["NewImage"]["amount"]["N"]), "x")}


def test_the_metrics_document_counts_ties() -> None:
    summary = dynastream.BatchSummary(
        tables=(dynastream.TableSummary("Items", records=2, applied=1, stale_skipped=1, tied=1),),
        records=2,
        duration_ms=1.0,
    )

    document = dynastream.EmfMetrics().documents(summary, timestamp=0)[0]

    assert document["RecordsTied"] == 1
    assert {"Name": "RecordsTied", "Unit": "Count"} in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]


def test_a_millisecond_change_ties_with_a_microsecond_one_of_its_millisecond(engine: sa.Engine) -> None:
    app = kinesis_app(engine)
    millisecond = change("a", "1", START // 1000, precision="MILLISECOND")
    inside = change("a", "2", START + 500)

    result = app.dispatch({"Records": [wrapped(millisecond), wrapped(inside)]})

    assert result.summary.total("tied") == 1
    assert {"a": (Decimal("2"), "x")} == rows(engine)  # at its microsecond, after the millisecond's start


def test_without_ties_nothing_is_counted(engine: sa.Engine) -> None:
    app = kinesis_app(engine)

    result = app.dispatch(
        {"Records": [wrapped(change("a", "1", START)), wrapped(change("a", "2", START + 1))]}
    )

    assert result.summary.total("tied") == 0
    assert "tied" not in result.summary.fields()


def test_a_tie_with_the_change_an_earlier_batch_stored_is_counted(engine: sa.Engine) -> None:
    app = kinesis_app(engine)
    first, second = change("a", "1", START, event_id="e-1"), change("a", "2", START, event_id="e-2")

    winner, loser = sorted((first, second), key=lambda data: -parse_event(wrapped(data))[0].sequence_number)

    assert app.dispatch({"Records": [wrapped(first)]}).summary.total("tied") == 0
    assert app.dispatch({"Records": [wrapped(second)]}).summary.total("tied") == 1
    assert app.dispatch({"Records": [wrapped(loser)]}).summary.total("tied") == 1  # again, tying again
    assert app.dispatch({"Records": [wrapped(winner)]}).summary.total("tied") == 0  # the stored one, again
    assert app.dispatch({"Records": [wrapped(change("a", "3", START + 1))]}).summary.total("tied") == 0


def test_a_tie_with_a_tombstone_is_counted(engine: sa.Engine) -> None:
    app = kinesis_app(engine)

    app.dispatch({"Records": [wrapped(change("a", None, START, event_id="e-1"))]})
    result = app.dispatch({"Records": [wrapped(change("a", "2", START, event_id="e-2"))]})

    assert result.summary.total("tied") == 1


def test_stored_ties_are_found_through_composite_and_numeric_keys(engine: sa.Engine) -> None:
    table = sa.Table(
        "kds_lines",
        sa.MetaData(),
        sa.Column("order_id", dynastream.ExactString(20), primary_key=True),
        sa.Column("line", sa.Numeric(10, 0), primary_key=True, autoincrement=False),
        sa.Column("sku", sa.String(20)),
        dynastream.sequence_column(),
    )
    table.create(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Lines", into=table, source="kinesis")

    def line(number: str, sku: str, event_id: str) -> dict[str, Any]:
        data = change("x", "1", START, event_id=event_id)
        keys = {"order_id": {"S": "o-1"}, "line": {"N": number}}
        data.update(tableName="Lines")
        data["dynamodb"].update(Keys=keys, NewImage={**keys, "sku": {"S": sku}})
        return data

    app.dispatch({"Records": [wrapped(line("1", "A", "e-1")), wrapped(line("2", "B", "e-2"))]})
    result = app.dispatch({"Records": [wrapped(line("1.0", "C", "e-3")), wrapped(line("3", "D", "e-4"))]})

    assert result.summary.total("tied") == 1  # line 1 (sent as 1.0 the second time), not line 3


# --- one source per table ----------------------------------------------------------------


def test_a_kinesis_record_fails_the_batch_of_a_table_replicated_from_dynamodb_streams(
    engine: sa.Engine,
) -> None:
    app = make_app(engine)

    result = app.dispatch({"Records": [wrapped(change("a", "1", START))]})

    error = result.failure and result.failure.error
    assert isinstance(error, ConfigurationError)
    assert "DYNASTREAM_SOURCE=kinesis" in str(error)


def test_the_source_setting_chooses_the_source(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNASTREAM_SOURCE", "kinesis")
    app = make_app(engine)  # source not given: the setting's

    assert {"batchItemFailures": []} == deliver(app, change("z", "1", START))


def test_the_source_setting_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="DYNASTREAM_SOURCE must be one of dynamodb, kinesis"):
        dynastream.Settings.from_env({"DYNASTREAM_SOURCE": "firehose"})


def test_check_refuses_a_table_replicated_from_both_sources() -> None:
    app = dynastream.App(database_url="sqlite://")
    app.replicate("Items", into=items)
    other = items.to_metadata(sa.MetaData(), name="other_items")
    app.replicate("Items", into=other, source="kinesis")

    with pytest.raises(ConfigurationError, match="DynamoDB table 'Items' is replicated from both"):
        app.check()


def test_check_refuses_dynamodb_streams_into_a_table_holding_kinesis_rows(engine: sa.Engine) -> None:
    deliver(kinesis_app(engine), change("a", "1", START))

    with pytest.raises(ConfigurationError, match="holds rows replicated from Kinesis Data Streams"):
        make_app(engine).check(database=True)
    make_app(engine, source="kinesis").check(database=True)


# --- any delivery of any history --------------------------------------------------------

KEYS = ["k1", "k2", "k3"]
histories = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(["put", "put", "remove"]),
        st.integers(0, 99),
        st.sampled_from(["later", "later", "later", "same", "millisecond"]),
    ),
    min_size=1,
    max_size=20,
)


def history(spec: list[tuple[str, str, int, str]]) -> tuple[list[dict[str, Any]], dict[str, tuple[Any, ...]]]:
    """
    KDS changes in the order they were made, and the state the greatest ordering number per item gives.

    Times mostly grow; "same" reuses the last microsecond (a tie with the change before, if of
    the same item), "millisecond" writes the change at millisecond precision.
    """
    records: list[dict[str, Any]] = []
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    now = START
    for key, op, value, timing in spec:
        if timing != "same":
            now += 1_000 if timing == "millisecond" else 1
        precision = "MILLISECOND" if timing == "millisecond" else "MICROSECOND"
        created = now // 1000 if precision == "MILLISECOND" else now
        data = change(key, str(value) if op == "put" else None, created, precision=precision)
        records.append(data)
        number = parse_event(wrapped(data))[0].sequence_number
        if key not in newest or number > newest[key][0]:
            newest[key] = (number, data)
    state = {
        key: (Decimal(data["dynamodb"]["NewImage"]["amount"]["N"]), "x")
        for key, (_, data) in newest.items()
        if "NewImage" in data["dynamodb"]
    }
    return records, state


def kinesis_deliveries(records: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """Every change delivered at least once, duplicated and reordered within and across batches."""
    pending = [*records, *rng.sample(records, k=rng.randint(0, len(records)))]  # duplicates
    rng.shuffle(pending)
    batches = []
    while pending:
        size = rng.randint(1, 6)
        batches.append(pending[:size])
        pending = pending[size:]
    return batches


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=histories, seed=st.integers(0, 2**32 - 1))
def test_any_delivery_of_any_kinesis_history_converges(
    engine: sa.Engine, spec: list[tuple[str, str, int, str]], seed: int
) -> None:
    app = kinesis_app(engine)
    records, expected = history(spec)

    for batch in kinesis_deliveries(records, random.Random(seed)):
        assert {"batchItemFailures": []} == deliver(app, *batch)

    assert expected == rows(engine)
