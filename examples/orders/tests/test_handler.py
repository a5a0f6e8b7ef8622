"""
The Orders example, end to end: a Lambda event in, rows out.
"""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from examples.orders import handler
from examples.orders.models import Base, OrderRow

EVENT = Path(__file__).parent.parent / "events" / "orders.json"
KINESIS_EVENT = Path(__file__).parent.parent / "events" / "orders-kinesis.json"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = dynastream.App(database_url=f"sqlite:///{tmp_path / 'orders.sqlite'}").container.engine()
    Base.metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    return engine


def test_event_becomes_rows(engine: sa.Engine) -> None:
    with handler.app.container.engine.override(providers.Object(engine)):
        response = handler.lambda_handler(dynastream.load_event(EVENT), None)

    assert {"batchItemFailures": []} == response
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(OrderRow.order_id, OrderRow.status, OrderRow.total).order_by(OrderRow.order_id)
        ).all()
    assert [("o-1001", "SHIPPED", Decimal("42.50")), ("o-1003", "PLACED", Decimal("120.00"))] == rows


def handler_for_kinesis(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The same handler.py, loaded afresh as template-kinesis.yaml runs it: DYNASTREAM_SOURCE=kinesis."""
    monkeypatch.setenv("DYNASTREAM_SOURCE", "kinesis")
    spec = importlib.util.spec_from_file_location(handler.__name__, handler.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kinesis_event_becomes_the_same_rows(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    kinesis = handler_for_kinesis(monkeypatch)

    with kinesis.app.container.engine.override(providers.Object(engine)):
        response = kinesis.lambda_handler(dynastream.load_event(KINESIS_EVENT), None)

    assert {"batchItemFailures": []} == response
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(OrderRow.order_id, OrderRow.status, OrderRow.total).order_by(OrderRow.order_id)
        ).all()
    assert [("o-1001", "SHIPPED", Decimal("42.50")), ("o-1003", "PLACED", Decimal("120.00"))] == rows
