"""
Lambda entry point of the Orders example: keep an `orders` SQL table equal to
the DynamoDB table `Orders`.

Package the `orders/` folder with its dependencies, set the handler to
`orders.handler.lambda_handler` and the environment variable
`DYNASTREAM_DATABASE_URL`, and use an event source mapping with
`FunctionResponseTypes: [ReportBatchItemFailures]`.
"""

from __future__ import annotations

import dynastream

from .models import OrderRow

app = dynastream.App()  # reads DYNASTREAM_DATABASE_URL when the first batch arrives

# orderId -> order_id, customer, status, total (exact), lines (JSON); REMOVE deletes;
# redelivered and out-of-order batches never move a row backwards.
app.replicate("Orders", into=OrderRow, naming="snake_case")

lambda_handler = app.lambda_handler
