"""
The examples run end to end on every engine.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from examples.orders import handler
from examples.orders.models import Base, OrderRow

ORDERS_EVENT = Path(__file__).parent.parent / "examples" / "orders" / "events" / "orders.json"
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
