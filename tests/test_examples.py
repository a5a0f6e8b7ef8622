"""
The examples run end to end on every engine.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import random
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from examples.orders import handler
from examples.orders.models import Base, OrderRow

ORDERS_EVENT = Path(__file__).parent.parent / "examples" / "orders" / "events" / "orders.json"
ORDERS_KINESIS_EVENT = ORDERS_EVENT.with_name("orders-kinesis.json")
EXPECTED_ORDERS = [
    ("o-1001", "Ada", "SHIPPED", Decimal("42.50"), [{"sku": "SKU-1", "quantity": 2}]),
    ("o-1003", "Linus", "PLACED", Decimal("120.00"), []),
]


def orders(engine: sa.Engine) -> list[tuple[object, ...]]:
    columns = (OrderRow.order_id, OrderRow.customer, OrderRow.status, OrderRow.total, OrderRow.lines)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(*columns).order_by(OrderRow.order_id))]


def test_orders_example_writes_the_expected_rows_once_however_often_delivered(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    event = dynastream.load_event(ORDERS_EVENT)

    with handler.app.container.engine.override(providers.Object(engine)):
        first = handler.lambda_handler(event, None)
        redelivered = handler.lambda_handler(event, None)
        older_half_again = handler.lambda_handler({"Records": event["Records"][:3]}, None)

    assert {"batchItemFailures": []} == first == redelivered == older_half_again
    assert EXPECTED_ORDERS == orders(engine)


def test_orders_example_reports_a_bad_record_and_keeps_the_ones_before(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    event = dynastream.load_event(ORDERS_EVENT)
    event["Records"][3]["dynamodb"]["NewImage"]["total"] = {"N": "120.005"}  # more cents than Numeric(12, 2)

    with handler.app.container.engine.override(providers.Object(engine)):
        response = handler.lambda_handler(event, None)

    assert {"batchItemFailures": [{"itemIdentifier": "4421584800000000017450439094"}]} == response
    with engine.connect() as connection:
        ids = connection.scalars(sa.select(OrderRow.order_id).order_by(OrderRow.order_id)).all()
    assert ["o-1001", "o-1002"] == ids


def test_payments_example_books_each_captured_payment_once(engine: sa.Engine) -> None:
    from examples.payments import handler as payments
    from examples.payments.models import ledger_entries, metadata

    metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    event = dynastream.load_event(
        Path(__file__).parent.parent / "examples" / "payments" / "events" / "payments.json"
    )

    with payments.app.container.engine.override(providers.Object(engine)):
        responses = [payments.lambda_handler(event, None) for _ in range(3)]

    assert [{"batchItemFailures": []}] * 3 == responses
    with engine.connect() as connection:
        booked = connection.execute(
            sa.select(ledger_entries.c.payment_id, ledger_entries.c.amount).order_by(
                ledger_entries.c.payment_id
            )
        ).all()
    assert [("p-1", Decimal("19.99")), ("p-2", Decimal("5.00"))] == booked


# The Orders example fed by Kinesis Data Streams (template-kinesis.yaml) -------------------


def orders_handler_for_kinesis(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The same handler.py, loaded afresh as template-kinesis.yaml runs it: DYNASTREAM_SOURCE=kinesis."""
    monkeypatch.setenv("DYNASTREAM_SOURCE", "kinesis")
    spec = importlib.util.spec_from_file_location(handler.__name__, handler.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rewrapped(record: dict[str, Any], sequence_number: int) -> dict[str, Any]:
    """A KDS duplicate: the same change record under another Kinesis sequence number."""
    kinesis = {**record["kinesis"], "sequenceNumber": str(sequence_number)}
    return {**record, "kinesis": kinesis, "eventID": f"shardId-000000000000:{sequence_number}"}


def test_orders_example_from_kinesis_writes_the_same_rows_however_delivered(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redelivered, duplicated, reordered within and across batches, as KDS may: the same rows."""
    Base.metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    records = dynastream.load_event(ORDERS_KINESIS_EVENT)["Records"]
    last = max(int(r["kinesis"]["sequenceNumber"]) for r in records)
    duplicates = [rewrapped(r, last + n + 1) for n, r in enumerate(records)]
    shuffled = random.Random(16).sample(duplicates, len(duplicates))
    kinesis = orders_handler_for_kinesis(monkeypatch)

    with kinesis.app.container.engine.override(providers.Object(engine)):
        responses = [
            kinesis.lambda_handler({"Records": records[3:]}, None),  # the later half first
            kinesis.lambda_handler({"Records": records}, None),
            kinesis.lambda_handler({"Records": records}, None),  # redelivered
            kinesis.lambda_handler({"Records": shuffled}, None),  # duplicates, out of order
        ]

    assert [{"batchItemFailures": []}] * 4 == responses
    assert EXPECTED_ORDERS == orders(engine)


def test_orders_example_from_kinesis_reports_a_bad_record_by_its_kinesis_sequence_number(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    Base.metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    event = dynastream.load_event(ORDERS_KINESIS_EVENT)
    bad = event["Records"][3]["kinesis"]
    change = json.loads(base64.b64decode(bad["data"]))
    change["dynamodb"]["NewImage"]["total"] = {"N": "120.005"}  # more cents than Numeric(12, 2)
    bad["data"] = base64.b64encode(json.dumps(change).encode()).decode()
    kinesis = orders_handler_for_kinesis(monkeypatch)

    with kinesis.app.container.engine.override(providers.Object(engine)):
        response = kinesis.lambda_handler(event, None)

    assert {"batchItemFailures": [{"itemIdentifier": bad["sequenceNumber"]}]} == response
    with engine.connect() as connection:
        ids = connection.scalars(sa.select(OrderRow.order_id).order_by(OrderRow.order_id)).all()
    assert ["o-1001", "o-1002"] == ids
