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


def test_orders_example_writes_the_expected_rows(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    event = dynastream.load_event(ORDERS_EVENT)

    with handler.app.container.engine.override(providers.Object(engine)):
        first = handler.lambda_handler(event, None)
        redelivered = handler.lambda_handler(event, None)

    assert {"batchItemFailures": []} == first == redelivered
    with engine.connect() as connection:
        rows = connection.execute(sa.select(OrderRow.__table__).order_by("order_id")).all()
    assert [
        ("o-1001", "Ada", "SHIPPED", Decimal("42.50"), 1),
        ("o-1003", "Linus", "PLACED", Decimal("120.00"), 0),
    ] == [tuple(row) for row in rows]


def test_orders_example_reports_a_bad_record_and_keeps_the_ones_before(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    event = dynastream.load_event(ORDERS_EVENT)
    del event["Records"][3]["dynamodb"]["NewImage"]["customer"]

    with handler.app.container.engine.override(providers.Object(engine)):
        response = handler.lambda_handler(event, None)

    assert {"batchItemFailures": [{"itemIdentifier": "4421584800000000017450439094"}]} == response
    with engine.connect() as connection:
        ids = connection.scalars(sa.select(OrderRow.order_id).order_by(OrderRow.order_id)).all()
    assert ["o-1001", "o-1002"] == ids
