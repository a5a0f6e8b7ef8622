"""
User-style code that must type-check under `mypy --strict` (nox -s typecheck).

Lines marked `# type: ignore[...]` must stay errors: with `warn_unused_ignores`
(part of --strict) mypy fails if one of them stops being an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs
from dependency_injector import providers

import dynastream
from dynastream import EventName, StreamRecord, UnitOfWork


@attrs.frozen
class Payment:
    payment_id: str
    amount: Decimal

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Payment:
        return cls(payment_id=item["paymentId"], amount=item["amount"])


class Ledger:
    def record(self, payment: Payment) -> None: ...


app = dynastream.App()
app.container.ledger = providers.Singleton(Ledger)


@app.handler("Payments", mapper=Payment.from_item)
class PaymentsHandler(dynastream.StreamEventHandler[Payment]):
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def handle(self, records: Sequence[StreamRecord[Payment]], uow: UnitOfWork) -> None:
        for record in records:
            if record.event_name is EventName.REMOVE:
                continue
            payment = record.new_image
            if payment is not None:
                self.ledger.record(payment)
            sequence: int = record.sequence_number
            identifier: str = record.item_identifier
            del sequence, identifier
            wrong: int = record.new_image  # type: ignore[assignment]
            del wrong


@app.handler("Audit")
def audit(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
    uow.session.flush()


mapper: dynastream.Mapper[Payment] = Payment.from_item
handler: dynastream.StreamEventHandler[Payment] = PaymentsHandler(Ledger())

lambda_handler = app.lambda_handler
response: dict[str, Any] = lambda_handler({"Records": []}, None)
result: dynastream.BatchResult = app.dispatch({"Records": []})
failure: dynastream.RecordFailure | None = result.failure
records: list[StreamRecord[dynastream.Item]] = dynastream.parse_event({"Records": []})
