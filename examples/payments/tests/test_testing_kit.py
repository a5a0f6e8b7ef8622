"""
The Payments handler tested the way a user would: with dynastream's testing kit.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from dynastream import App
from dynastream.testing import EventFactory, LambdaContext
from examples.payments.models import ledger_entries, metadata

pytestmark = pytest.mark.dynastream_app("examples.payments.handler:app")


def test_a_captured_payment_is_booked_once(dynastream_app: App, lambda_context: LambdaContext) -> None:
    engine = dynastream_app.container.engine()  # a fresh SQLite database, dynastream's tables in it
    metadata.create_all(engine)  # the handler's own table
    events = EventFactory(keys=["paymentId"])
    payment = {"paymentId": "p-1", "accountId": "a-7", "amount": Decimal("19.99"), "currency": "EUR"}
    event = events.event(
        events.insert("Payments", {**payment, "status": "AUTHORIZED"}),
        events.modify("Payments", {**payment, "status": "CAPTURED"}),  # old image: the AUTHORIZED one
    )

    assert {"batchItemFailures": []} == dynastream_app.lambda_handler(event, lambda_context)
    dynastream_app.lambda_handler(event, lambda_context)  # delivered again

    with engine.connect() as connection:
        booked = connection.execute(sa.select(ledger_entries.c.payment_id, ledger_entries.c.amount)).all()
    assert [("p-1", Decimal("19.99"))] == booked
