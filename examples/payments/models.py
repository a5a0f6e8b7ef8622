"""
The Payments example's types: the payment as the domain sees it, and the
append-only ledger it is booked into.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa

metadata = sa.MetaData()

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("entry_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(64), nullable=False, index=True),
    sa.Column("payment_id", sa.String(64), nullable=False),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
)


@attrs.frozen
class Payment:
    """A payment as the Payments table stores it."""

    payment_id: str
    account_id: str
    amount: Decimal
    currency: str
    status: str

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Payment:
        """Map a deserialized item (numbers are exact Decimals)."""
        return cls(
            payment_id=item["paymentId"],
            account_id=item["accountId"],
            amount=item["amount"],
            currency=item["currency"],
            status=item["status"],
        )


class Ledger:
    """Books captured payments; a dependency the container injects into the handler."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def book(self, connection: sa.Connection, payments: list[Payment]) -> None:
        """Append one entry per payment."""
        now: datetime = self.clock()
        connection.execute(
            ledger_entries.insert(),
            [
                {
                    "account_id": p.account_id,
                    "payment_id": p.payment_id,
                    "amount": p.amount,
                    "currency": p.currency,
                    "booked_at": now,
                }
                for p in payments
            ],
        )
