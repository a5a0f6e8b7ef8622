"""
One cold-start sample, run by `benchmarks.cold_start` in a fresh interpreter.

`python -m benchmarks._cold_start_child (handler|deps) DRIVER URL EVENT` imports
either the Orders example's handler or its mandatory dependencies alone, then
applies the event once (the example's `lambda_handler`, or a hand-written
SQLAlchemy Core handler), and prints four numbers: seconds spent importing and in
the first invocation, by the clock, then in CPU time of the process.

Nothing but `sys` and `time` is imported before the clock starts, so every
module the measured import needs is paid for inside the measurement.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing here would go untimed
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEPENDENCIES"]

DEPENDENCIES = (
    "sqlalchemy",
    "sqlalchemy.orm",
    "attrs",
    "dependency_injector.containers",
    "dependency_injector.providers",
)
"""What the baseline imports, with the driver: the example's mandatory dependencies."""


def _import_handler() -> Any:
    from examples.orders import handler

    return handler.lambda_handler


def _import_dependencies(driver: str) -> None:
    import importlib

    for module in (*DEPENDENCIES, driver):
        importlib.import_module(module)


def _plain_value(value: Any) -> Any:
    """Return a typed JSON value as plain Python, the short way (numbers in maps may become floats)."""
    ((tag, inner),) = value.items()
    if tag == "M":
        return {name: _plain_value(member) for name, member in inner.items()}
    if tag == "L":
        return [_plain_value(member) for member in inner]
    if tag == "N":
        import json

        return json.loads(inner)
    return inner


def _plain_invocation(event: Any, url: str) -> None:
    """
    Apply `event` the way a short hand-written handler would.

    Last change per key wins, upserts with the dialect's own statement and one
    DELETE, one transaction; no validation, no sequence guard, no tombstones.
    """
    from decimal import Decimal

    import sqlalchemy as sa

    table = sa.Table(
        "orders_plain",
        sa.MetaData(),
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(200)),
        sa.Column("status", sa.String(20)),
        sa.Column("total", sa.Numeric(12, 2)),
        sa.Column("lines", sa.JSON),
    )
    latest = {record["dynamodb"]["Keys"]["orderId"]["S"]: record for record in event["Records"]}
    removed = [key for key, record in latest.items() if record["eventName"] == "REMOVE"]
    rows = [
        {
            "order_id": image["orderId"]["S"],
            "customer": image["customer"]["S"],
            "status": image["status"]["S"],
            "total": Decimal(image["total"]["N"]),
            "lines": _plain_value(image["lines"]),
        }
        for record in latest.values()
        if record["eventName"] != "REMOVE"
        for image in [record["dynamodb"]["NewImage"]]
    ]
    sqlite = url.startswith("sqlite")
    engine = sa.create_engine(url) if sqlite else sa.create_engine(url, pool_size=1, max_overflow=0)
    columns = ("customer", "status", "total", "lines")
    statement: Any
    if engine.dialect.name == "mysql":
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(table)
        statement = statement.on_duplicate_key_update({name: statement.inserted[name] for name in columns})
    else:
        import importlib

        # sqlalchemy.dialects.postgresql or .sqlite: both have INSERT ... ON CONFLICT.
        statement = importlib.import_module(f"sqlalchemy.dialects.{engine.dialect.name}").insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["order_id"], set_={name: statement.excluded[name] for name in columns}
        )
    with engine.begin() as connection:
        if rows:
            connection.execute(statement, rows)
        if removed:
            connection.execute(sa.delete(table).where(table.c.order_id.in_(removed)))


def main() -> None:
    side, driver, url, event_path = sys.argv[1:5]
    started, started_cpu = time.perf_counter(), time.process_time()
    if side == "handler":
        lambda_handler = _import_handler()
    else:
        _import_dependencies(driver)
    imported, imported_cpu = time.perf_counter(), time.process_time()

    import json

    # The Lambda runtime parses the event before calling the handler: not timed.
    with open(event_path, encoding="utf-8") as file:
        event = json.load(file)
    invoked, invoked_cpu = time.perf_counter(), time.process_time()
    if side == "handler":
        response = lambda_handler(event, None)
        if response != {"batchItemFailures": []}:
            raise SystemExit(f"the first invocation failed: {response}")
    else:
        _plain_invocation(event, url)
    done, done_cpu = time.perf_counter(), time.process_time()
    print(
        *(
            f"{seconds:.6f}"
            for seconds in (
                imported - started,
                done - invoked,
                imported_cpu - started_cpu,
                done_cpu - invoked_cpu,
            )
        )
    )


if __name__ == "__main__":
    main()
