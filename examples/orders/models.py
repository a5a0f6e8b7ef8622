"""
The Orders example's types: the domain object and the SQL table it lands in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


@attrs.frozen
class Order:
    """An order as the Orders table stores it in DynamoDB."""

    order_id: str
    customer: str
    status: str
    total: Decimal
    lines: list[dict[str, Any]] = attrs.field(factory=list)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Order:
        """Map a deserialized DynamoDB item (numbers are exact Decimals)."""
        return cls(
            order_id=item["orderId"],
            customer=item["customer"],
            status=item["status"],
            total=item["total"],
            lines=[{"sku": line["sku"], "quantity": int(line["quantity"])} for line in item.get("lines", [])],
        )


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    """One row per order in the relational copy."""

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    customer: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20))
    total: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    line_count: Mapped[int]
