"""
Lambda entry point of the Orders example: keep an `orders` SQL table in step
with the DynamoDB table `Orders`.

Package the `orders/` folder with its dependencies, set the handler to
`orders.handler.lambda_handler` and the environment variable
`DYNASTREAM_DATABASE_URL`, and use an event source mapping with
`FunctionResponseTypes: [ReportBatchItemFailures]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import dynastream
from dynastream import EventName, StreamRecord, UnitOfWork

from .models import Order, OrderRow

app = dynastream.App()  # reads DYNASTREAM_DATABASE_URL when the first batch arrives


@app.handler("Orders", mapper=Order.from_item)
class OrdersHandler(dynastream.StreamEventHandler[Order]):
    """Upsert each order that changed; delete each order that was removed."""

    def handle(self, records: Sequence[StreamRecord[Order]], uow: UnitOfWork) -> None:
        for record in records:  # stream order: the last change to an order wins
            if record.event_name is EventName.REMOVE:
                uow.session.execute(sa.delete(OrderRow).where(OrderRow.order_id == record.keys["orderId"]))
                continue
            order = record.new_image
            assert order is not None, "the Orders stream carries new images"
            uow.session.merge(
                OrderRow(
                    order_id=order.order_id,
                    customer=order.customer,
                    status=order.status,
                    total=order.total,
                    line_count=len(order.lines),
                )
            )


lambda_handler = app.lambda_handler
