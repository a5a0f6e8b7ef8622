"""
The Orders example's SQL table: one row per order of the DynamoDB table `Orders`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import dynastream


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    """An order as replicated: item attributes map to columns by name (camelCase to snake_case)."""

    __tablename__ = "orders"

    order_id: Mapped[str] = mapped_column(dynastream.ExactString(64), primary_key=True)
    customer: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20))
    total: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    # The sequence number of the change that wrote the row: older changes never win.
    dynastream_sequence = dynastream.sequence_column()
