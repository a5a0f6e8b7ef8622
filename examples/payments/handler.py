"""
Lambda entry point of the Payments example: book each captured payment once
into an append-only ledger.

Booking is not idempotent (a second delivery would book twice), so the handler
is registered with `exactly_once=True`: the eventIDs it applied are kept in
dynastream's ledger, in the same transaction as the bookings.
"""

from __future__ import annotations

from collections.abc import Sequence

from dependency_injector import providers

import dynastream
from dynastream import EventName, StreamRecord, UnitOfWork

from .models import Ledger, Payment

app = dynastream.App()
app.container.ledger = providers.Singleton(Ledger, clock=app.container.clock)


@app.handler("Payments", mapper=Payment.from_item, exactly_once="payments-ledger")
class CapturedPayments(dynastream.StreamEventHandler[Payment]):
    """Books a payment when it becomes CAPTURED."""

    def __init__(self, ledger: Ledger) -> None:  # the container's `ledger` provider
        self.ledger = ledger

    def handle(self, records: Sequence[StreamRecord[Payment]], uow: UnitOfWork) -> None:
        captured = [
            record.new_image
            for record in records
            if record.event_name is not EventName.REMOVE
            and record.new_image is not None
            and record.new_image.status == "CAPTURED"
            and (record.old_image is None or record.old_image.status != "CAPTURED")
        ]
        if captured:
            self.ledger.book(uow.connection(), captured)


lambda_handler = app.lambda_handler
