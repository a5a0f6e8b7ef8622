"""
Attributes with no column: counted by name per batch, in the summary line and in EMF, never their values.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from dynastream import StreamRecord, UnitOfWork
from dynastream._deserialize import deserialize_image
from dynastream.testing import EventFactory, LambdaContext
from tests.test_observability import validate_emf

metadata = sa.MetaData()
orders = sa.Table(
    "unmapped_orders",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("total", sa.Numeric(12, 2)),
    dynastream.sequence_column(),
)
returns = sa.Table(
    "unmapped_returns",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    dynastream.sequence_column(),
)
snake_orders = sa.Table(
    "unmapped_snake_orders",
    metadata,
    sa.Column("order_id", dynastream.ExactString(20), primary_key=True),
    sa.Column("order_total", sa.Numeric(12, 2)),
    dynastream.sequence_column(),
)
kept_orders = sa.Table(
    "unmapped_kept_orders",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("total", sa.Numeric(12, 2)),
    sa.Column("extras", sa.JSON),
    dynastream.sequence_column(),
)
soft_orders = sa.Table(
    "unmapped_soft_orders",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("total", sa.Numeric(12, 2)),
    dynastream.sequence_column(),
    dynastream.deleted_column(),
)

# A value no log line or metric may ever hold: attributes without a column carry it.
SECRET = "S3CRET-VALUE"  # noqa: S105 - not a password: a value to look for


class Collected:
    """A metrics sink that keeps what it is given."""

    def __init__(self) -> None:
        self.summaries: list[dynastream.BatchSummary] = []

    def publish(self, summary: dynastream.BatchSummary) -> None:
        self.summaries.append(summary)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The `dynastream` logger's lines, as JSON, at INFO."""
    logger = logging.getLogger("dynastream")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(dynastream.JsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def make_app(
    engine: sa.Engine, into: sa.Table = orders, *, metrics: Any = None, **options: Any
) -> tuple[dynastream.App, Collected]:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    sink = Collected()
    app.container.metrics.override(providers.Object(sink if metrics is None else metrics))
    app.replicate("Orders", into=into, **options)
    return app, sink


def factory(view_type: str = "NEW_AND_OLD_IMAGES", keys: Sequence[str] = ("pk",)) -> EventFactory:
    return EventFactory(keys=list(keys), view_type=view_type, first_sequence_number=10**24)


def unmapped(result: dynastream.BatchResult, table: str = "Orders") -> dict[str, int]:
    assert result.summary is not None
    [summary] = [t for t in result.summary.tables if t.table_name == table]
    return dict(summary.unmapped)


def emf_documents(stream: io.StringIO) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in stream.getvalue().splitlines()]
    for document in documents:
        validate_emf(document)
    return documents


def test_summary_line_and_emf_name_attributes_without_a_column(
    engine: sa.Engine, log_lines: io.StringIO
) -> None:
    """
    Every INSERT and MODIFY counts, superseded ones included; REMOVEs do not; values never show.
    """
    emf = io.StringIO()
    app, _ = make_app(engine, metrics=dynastream.EmfMetrics("shop", stream=emf))
    events = factory()
    event = events.event(
        events.insert(
            "Orders", {"pk": "a", "total": 1, "discount": f"{SECRET}-1", "giftNote": f"{SECRET}-2"}
        ),
        events.insert("Orders", {"pk": "b", "total": 2, "discount": f"{SECRET}-3"}),
        events.modify("Orders", {"pk": "a", "total": 3, "discount": f"{SECRET}-4"}),  # supersedes a's insert
        events.remove("Orders", {"pk": "b", "discount": f"{SECRET}-3"}),  # its old image is not counted
    )

    response = app.lambda_handler(event, LambdaContext(function_name="orders-replica"))

    assert {"batchItemFailures": []} == response
    [line] = [json.loads(text) for text in log_lines.getvalue().splitlines() if "batch of" in text]
    assert line["message"].endswith("; attributes without a column: discount (3), giftNote (1)")
    assert {"discount": 3, "giftNote": 1} == line["unmapped_attributes"]
    assert "unmapped_attributes_omitted" not in line
    table, discount, gift_note = emf_documents(emf)
    assert 2 == table["UnmappedAttributes"]
    assert {"Name": "UnmappedAttributes", "Unit": "Count"} in table["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    for document, name, count in ((discount, "discount", 3), (gift_note, "giftNote", 1)):
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert (
            "shop",
            [["FunctionName", "TableName", "AttributeName"]],
            [{"Name": "RecordsWithUnmappedAttribute", "Unit": "Count"}],
        ) == (directive["Namespace"], directive["Dimensions"], directive["Metrics"])
        assert ("orders-replica", "Orders", name, count) == (
            document["FunctionName"],
            document["TableName"],
            document["AttributeName"],
            document["RecordsWithUnmappedAttribute"],
        )
    assert SECRET not in log_lines.getvalue()
    assert SECRET not in emf.getvalue()


def test_a_batch_whose_attributes_all_have_columns_adds_nothing(engine: sa.Engine) -> None:
    emf = io.StringIO()
    app, _ = make_app(engine, metrics=dynastream.EmfMetrics(stream=emf))
    events = factory()

    summary = app.dispatch(events.event(events.insert("Orders", {"pk": "a", "total": 1}))).summary

    assert summary is not None
    assert {} == dict(summary.tables[0].unmapped)
    assert "unmapped_attributes" not in summary.fields()
    assert "attributes without a column" not in summary.message()
    [document] = emf_documents(emf)
    assert "UnmappedAttributes" not in document


def test_images_deserialized_for_another_handler_count_alike(engine: sa.Engine) -> None:
    app, _ = make_app(engine)

    @app.handler("Orders")
    def read_images(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        assert all(r.new_image is not None for r in records if r.event_name.value != "REMOVE")

    events = factory()
    event = events.event(
        events.insert("Orders", {"pk": "a", "total": 1, "note": SECRET}),
        events.modify("Orders", {"pk": "a", "total": 2, "note": SECRET}),
    )

    assert {"note": 2} == unmapped(app.dispatch(event))


def test_snake_case_naming_counts_attributes_no_column_is_named_like(engine: sa.Engine) -> None:
    app, _ = make_app(engine, into=snake_orders, naming="snake_case")
    events = factory(keys=["OrderId"])
    event = events.event(
        events.insert("Orders", {"OrderId": "o-1", "OrderTotal": 1, "GiftNote": SECRET}),
        events.insert("Orders", {"OrderId": "o-2", "order-total": 2, "GiftNote": SECRET, "Coupon": SECRET}),
    )

    result = app.dispatch(event)

    assert {"GiftNote": 2, "Coupon": 1} == unmapped(result)
    with engine.connect() as connection:
        totals = dict(
            connection.execute(sa.select(snake_orders.c.order_id, snake_orders.c.order_total)).all()
        )
    assert {"o-1": Decimal(1), "o-2": Decimal(2)} == totals


def test_renamed_attributes_fill_their_column_and_the_column_name_no_longer_does(engine: sa.Engine) -> None:
    app, _ = make_app(engine, renames={"amount": "total"})
    events = factory()

    result = app.dispatch(events.event(events.insert("Orders", {"pk": "a", "amount": 5, "total": 7})))

    assert {"total": 1} == unmapped(result)


def test_snake_case_with_renames(engine: sa.Engine) -> None:
    app, _ = make_app(engine, into=snake_orders, naming="snake_case", renames={"Amount": "order_total"})
    events = factory(keys=["OrderId"])

    result = app.dispatch(
        events.event(
            events.insert("Orders", {"OrderId": "o-1", "Amount": 5, "OrderTotal": 7, "Note": SECRET})
        )
    )

    assert {"OrderTotal": 1, "Note": 1} == unmapped(result)


def test_an_extra_column_keeps_them_and_nothing_is_counted(engine: sa.Engine) -> None:
    app, _ = make_app(engine, into=kept_orders, extra="extras")
    events = factory()

    result = app.dispatch(events.event(events.insert("Orders", {"pk": "a", "total": 1, "note": "kept"})))

    assert {} == unmapped(result)
    assert result.summary is not None
    assert "unmapped_attributes" not in result.summary.fields()
    with engine.connect() as connection:
        assert {"note": "kept"} == connection.execute(sa.select(kept_orders.c.extras)).scalar_one()


def test_a_custom_mapper_decides_and_nothing_is_counted(engine: sa.Engine) -> None:
    app, _ = make_app(engine, mapper=lambda item: {"pk": item["pk"], "total": item["total"]})
    events = factory()

    result = app.dispatch(events.event(events.insert("Orders", {"pk": "a", "total": 1, "note": SECRET})))

    assert 1 == result.applied
    assert {} == unmapped(result)


def test_every_record_counts_once_however_often_its_item_changes_in_the_batch(engine: sa.Engine) -> None:
    app, _ = make_app(engine)
    events = factory(view_type="NEW_IMAGE")
    first = events.insert("Orders", {"pk": "a", "total": 1, "note": SECRET})
    event = events.event(
        first,
        events.modify("Orders", {"pk": "a", "total": 2, "note": SECRET, "coupon": SECRET}),
        events.modify("Orders", {"pk": "a", "total": 3}),
        first,  # delivered twice within the batch: a record of its own
    )

    result = app.dispatch(event)

    assert result.summary is not None
    assert (1, 3) == (result.summary.total("applied"), result.summary.total("stale_skipped"))
    assert {"note": 3, "coupon": 1} == unmapped(result)


def test_soft_deletes_write_the_last_image_without_counting_it_again(engine: sa.Engine) -> None:
    app, _ = make_app(engine, into=soft_orders, deletes="soft_delete")
    events = factory()
    event = events.event(
        events.insert("Orders", {"pk": "a", "total": 1, "note": SECRET}),
        events.remove("Orders", {"pk": "a", "total": 1, "note": SECRET}),
        events.remove("Orders", {"pk": "b", "total": 2, "note": SECRET}),  # never inserted: its old image
    )

    result = app.dispatch(event)

    assert {"note": 1} == unmapped(result)
    with engine.connect() as connection:
        assert 2 == connection.execute(sa.select(sa.func.count()).select_from(soft_orders)).scalar_one()


@pytest.mark.parametrize(("on_poison", "expected"), [("report", {"note": 2}), ("quarantine", {"note": 3})])
def test_a_batch_applied_in_parts_counts_the_records_of_the_parts_committed(
    engine: sa.Engine, on_poison: str, expected: dict[str, int]
) -> None:
    """
    Bisection: the failing record's part is rolled back, and so are its counts.
    """
    app, _ = make_app(engine, on_poison=on_poison)
    events = factory()
    event = events.event(
        events.insert("Orders", {"pk": "a", "total": 1, "note": SECRET}),
        events.insert("Orders", {"pk": "b", "total": 2, "note": SECRET}),
        events.insert("Orders", {"pk": "c", "total": "not a number", "note": SECRET}),
        events.insert("Orders", {"pk": "d", "total": 4, "note": SECRET}),
    )

    result = app.dispatch(event)

    assert result.summary is not None
    assert (on_poison == "report") == (result.failure is not None)
    assert expected == unmapped(result)


def test_the_summary_lists_twenty_names_and_emf_ten_the_most_frequent_first(engine: sa.Engine) -> None:
    emf = io.StringIO()
    app, _ = make_app(engine, metrics=dynastream.EmfMetrics(stream=emf))
    names = [f"attr{n:02d}" for n in range(25)]
    events = factory()
    event = events.event(
        events.insert("Orders", {"pk": "a", "total": 1, **dict.fromkeys(names, SECRET)}),
        events.insert("Orders", {"pk": "b", "total": 1, "attr24": SECRET, "attr23": SECRET}),
    )

    summary = app.dispatch(event).summary

    assert summary is not None
    listed = {"attr23": 2, "attr24": 2, **{f"attr{n:02d}": 1 for n in range(18)}}
    fields = summary.fields()
    assert listed == fields["unmapped_attributes"]
    assert list(listed) == list(fields["unmapped_attributes"])  # the order: count, then name
    assert 5 == fields["unmapped_attributes_omitted"]
    shown = ", ".join(f"{name} ({count})" for name, count in listed.items())
    assert summary.message().endswith(f"; attributes without a column: {shown} and 5 more")
    table, *attributes = emf_documents(emf)
    assert 25 == table["UnmappedAttributes"]
    assert [("attr23", 2), ("attr24", 2), *((f"attr{n:02d}", 1) for n in range(8))] == [
        (document["AttributeName"], document["RecordsWithUnmappedAttribute"]) for document in attributes
    ]


def test_names_become_printable_bounded_text_and_ascii_dimension_values(engine: sa.Engine) -> None:
    emf = io.StringIO()
    app, _ = make_app(engine, metrics=dynastream.EmfMetrics(stream=emf))
    names = ["prix_réduit", "折扣", "emoji😀", "line\nbreak", "   ", "x" * 300]
    events = factory()
    event = events.event(events.insert("Orders", {"pk": "a", "total": 1, **dict.fromkeys(names, SECRET)}))

    summary = app.dispatch(event).summary

    assert summary is not None
    assert dict.fromkeys(names, 1) == dict(summary.tables[0].unmapped)
    shown = {
        "   ": 1,
        "emoji😀": 1,
        "line\\nbreak": 1,
        "prix_réduit": 1,
        "x" * 100 + "…": 1,
        "折扣": 1,
    }
    assert shown == summary.fields()["unmapped_attributes"]
    assert "\n" not in summary.message()
    _, *attributes = emf_documents(emf)
    values = {document["AttributeName"] for document in attributes}
    assert {
        "'   '",
        "emoji\\U0001f600",
        "line\\nbreak",
        "prix_r\\xe9duit",
        "x" * 100 + "\\u2026",
        "\\u6298\\u6263",
    } == values
    for value in values:
        assert value.isascii()
        assert value.strip()
        assert all(" " <= character <= "~" for character in value)
        assert len(value) <= 1024
    assert SECRET not in emf.getvalue()


def test_tables_of_one_batch_count_apart_and_the_line_adds_them_up(engine: sa.Engine) -> None:
    emf = io.StringIO()
    app, _ = make_app(engine, metrics=dynastream.EmfMetrics(stream=emf))
    app.replicate("Returns", into=returns)
    events = factory()
    event = events.event(
        events.insert("Orders", {"pk": "a", "total": 1, "note": SECRET}),
        events.insert("Returns", {"pk": "r", "note": SECRET, "reason": SECRET}),
    )

    result = app.dispatch(event)

    assert ({"note": 1}, {"note": 1, "reason": 1}) == (unmapped(result), unmapped(result, "Returns"))
    assert result.summary is not None
    assert {"note": 2, "reason": 1} == result.summary.fields()["unmapped_attributes"]
    documents = emf_documents(emf)
    assert [
        ("Orders", None),
        ("Orders", "note"),
        ("Returns", None),
        ("Returns", "note"),
        ("Returns", "reason"),
    ] == [(document["TableName"], document.get("AttributeName")) for document in documents]


def test_a_custom_handler_may_report_attributes_it_ignored(engine: sa.Engine) -> None:
    app, _ = make_app(engine)

    @app.handler("Payments")
    def record(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        uow.report_outcomes(applied=len(records), unmapped={"legacyFlag": len(records)})

    events = factory()
    event = events.event(events.insert("Payments", {"pk": "p"}), events.insert("Payments", {"pk": "q"}))

    assert {"legacyFlag": 2} == unmapped(app.dispatch(event), "Payments")


@pytest.mark.parametrize("naming", ["exact", "snake_case"])
def test_row_mapper_names_unmapped_attributes_of_event_images_and_items_alike(naming: str) -> None:
    table = sa.Table(
        "t", sa.MetaData(), sa.Column("pk", sa.String(5), primary_key=True), sa.Column("total", sa.Integer)
    )
    mapper = dynastream.RowMapper(table, naming=naming)  # type: ignore[arg-type]
    image = {"pk": {"S": "a"}, "note": {"N": "1"}, "total": {"N": "2"}, "coupon": {"S": SECRET}}

    assert ("note", "coupon") == mapper.unmapped_attributes(image)
    assert ("note", "coupon") == mapper.unmapped_attributes(deserialize_image(image))
    assert () == mapper.unmapped_attributes({"pk": "a", "total": 2})


def test_row_mapper_names_them_under_an_extra_column_too() -> None:
    mapper = dynastream.RowMapper(kept_orders, extra="extras", renames={"amount": "total"})

    assert "extras" == mapper.extra
    assert ("total", "note") == mapper.unmapped_attributes({"pk": "a", "amount": 1, "total": 2, "note": 3})
    assert dynastream.RowMapper(orders).extra is None


def test_row_mapper_under_snake_case_names_them_even_where_two_attributes_name_one_column() -> None:
    mapper = dynastream.RowMapper(snake_orders, naming="snake_case")
    item = {"OrderId": "o-1", "orderId": "o-1", "GiftNote": SECRET}

    with pytest.raises(dynastream.ColumnValueError):
        mapper(item)
    assert ("GiftNote",) == mapper.unmapped_attributes(item)
