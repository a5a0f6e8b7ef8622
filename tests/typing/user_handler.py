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
import sqlalchemy as sa
from dependency_injector import providers
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    __tablename__ = "orders"
    order_id: Mapped[str] = mapped_column(dynastream.ExactString(64), primary_key=True)
    total: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    dynastream_sequence = dynastream.sequence_column()


registration: dynastream.Registration = app.replicate(
    "Orders", into=OrderRow, naming="snake_case", deletes="soft_delete", ttl="ignore"
)
app.replicate("Orders", into=OrderRow, ttl="forever")  # type: ignore[arg-type]
row_mapper = dynastream.RowMapper(OrderRow, renames={"orderId": "order_id"})
row: dict[str, Any] = row_mapper({"orderId": "o-1", "total": Decimal("1.00")})
ignored: tuple[str, ...] = row_mapper.unmapped_attributes({"orderId": {"S": "o-1"}, "note": {"S": "n"}})
kept_in: str | None = row_mapper.extra


@app.handler("Payments", exactly_once=True)
def book(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None: ...
