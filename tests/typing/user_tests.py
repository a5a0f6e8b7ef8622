"""
A user's handler tests, written with `dynastream.testing`: they must type-check under `mypy --strict`.

Lines marked `# type: ignore[...]` must stay errors (see user_handler.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

import dynastream
from dynastream.testing import EventFactory, LambdaContext, attribute_value, serialize_image


@pytest.fixture
def stream_events() -> EventFactory:
    return EventFactory(keys={"Payments": ["paymentId"]}, view_type="NEW_IMAGE", created_at=datetime.now(UTC))


def test_payment(
    dynastream_app: dynastream.App, stream_events: EventFactory, lambda_context: LambdaContext
) -> None:
    record: dict[str, Any] = stream_events.insert("Payments", {"paymentId": "p-1", "amount": Decimal("1.50")})
    removed = stream_events.remove("Payments", {"paymentId": "p-1"}, ttl=True, sequence_number=10**21)
    event: dict[str, list[Any]] = stream_events.event(record, removed)
    lambda_context.remaining_seconds = 5
    millis: int = lambda_context.get_remaining_time_in_millis()
    response: dict[str, Any] = dynastream_app.lambda_handler(event, lambda_context)
    assert millis <= 5_000
    assert response


def test_values() -> None:
    typed: dict[str, Any] = attribute_value({"n": 1})
    image: dict[str, dict[str, Any]] = serialize_image({"id": "a"})
    assert typed
    assert image
    EventFactory(keys="id", first_sequence_number="1")  # type: ignore[arg-type]
    EventFactory(source="kafka")  # type: ignore[arg-type]
    EventFactory(source="kinesis", precision="NANOSECOND")  # type: ignore[arg-type]
    LambdaContext(remaining_seconds="5")  # type: ignore[arg-type]


def test_kinesis_events() -> None:
    events = EventFactory(keys=["paymentId"], source="kinesis", precision="MICROSECOND")
    change: dict[str, Any] = events.insert("Payments", {"paymentId": "p-1"}, created_at=datetime.now(UTC))
    event: dict[str, list[Any]] = events.event(change, change, b"other producer")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    window: dict[str, Any] = events.window_event(change, start=start, end=start.replace(hour=1))
    assert event
    assert window


class FakePayments:
    def handle(self, records: Any, uow: dynastream.UnitOfWork) -> None:
        uow.report_outcomes(applied=len(records), unmapped={"legacyFlag": len(records)})


def test_replacing_one_handler_and_the_engine(dynastream_app: dynastream.App) -> None:
    from dependency_injector import providers

    registration = dynastream_app.registrations[0]
    engine = dynastream_app.container.engine()
    with (
        registration.handler_provider.override(providers.Object(FakePayments())),
        registration.mapper_provider.override(providers.Object(None)),
        dynastream_app.container.engine.override(providers.Object(engine)),
    ):
        dynastream_app.check()
    poison: str | None = registration.on_poison
    assert poison in (None, "report", "quarantine")
