"""
The Payments example: a redelivered batch books nothing twice.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from dependency_injector import providers

import dynastream
from examples.payments import handler
from examples.payments.models import metadata

EVENT = Path(__file__).parent.parent / "events" / "payments.json"


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = dynastream.App(database_url=f"sqlite:///{tmp_path / 'payments.sqlite'}").container.engine()
    metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)
    return engine


def test_captured_payments_are_booked_once(engine: sa.Engine) -> None:
    event = dynastream.load_event(EVENT)

    with handler.app.container.engine.override(providers.Object(engine)):
        handler.lambda_handler(event, None)
        handler.lambda_handler(event, None)  # delivered again

    with engine.connect() as connection:
        booked = connection.execute(
            sa.text("SELECT payment_id, amount FROM ledger_entries ORDER BY payment_id")
        )
        assert [("p-1", Decimal("19.99")), ("p-2", Decimal("5.00"))] == [
            (p, Decimal(str(a))) for p, a in booked
        ]
