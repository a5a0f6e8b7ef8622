"""
The Orders example, end to end: a Lambda event in, rows out.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from examples.orders import handler
from examples.orders.models import Base, OrderRow

EVENT = Path(__file__).parent.parent / "events" / "orders.json"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'orders.sqlite'}")
    Base.metadata.create_all(engine)
    return engine


def test_event_becomes_rows(engine: sa.Engine) -> None:
    with handler.app.container.engine.override(providers.Object(engine)):
        response = handler.lambda_handler(dynastream.load_event(EVENT), None)

    assert {"batchItemFailures": []} == response
    with engine.connect() as connection:
        rows = connection.execute(sa.select(OrderRow.__table__).order_by("order_id")).all()
    assert [
        ("o-1001", "Ada", "SHIPPED", Decimal("42.50"), 1),
        ("o-1003", "Linus", "PLACED", Decimal("120.00"), 0),
    ] == [tuple(row) for row in rows]
