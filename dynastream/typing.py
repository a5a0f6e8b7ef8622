"""
The protocols an application implements: handlers and mappers.

Examples:
    >>> import dynastream
    >>> class PaymentsHandler(dynastream.StreamEventHandler[dict]):
    ...     def handle(self, records, uow):
    ...         for record in records:
    ...             ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from ._records import Item

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._records import StreamRecord
    from ._summary import BatchSummary
    from ._uow import UnitOfWork

__all__ = ["Item", "Mapper", "MetricsSink", "StreamEventHandler"]

T_contra = TypeVar("T_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class StreamEventHandler(Protocol[T_contra]):
    """
    Business logic for the records of one table.

    Subclass it (or just implement `handle`) and register the class with
    `App.handler`. The container builds one instance per invocation, passing
    each constructor parameter the container provider of the same name.

    `handle` receives, in stream order, the records of its table, with images
    mapped to `T` by the handler's mapper, and the unit of work holding the
    batch's transaction. It writes through `uow.session` (or
    `uow.connection()`) and never commits, rolls back or closes: the dispatcher
    owns the transaction.

    When a call raises, the dispatcher rolls back to a savepoint and calls the
    handler again on smaller runs of the same records to find the first one
    that fails; the records before it are then applied exactly once. So one
    invocation may call `handle` several times, each time with records that
    directly follow those already applied, and a handler's effects must be
    confined to the unit of work (no external calls that cannot be undone).
    """

    def handle(self, records: Sequence[StreamRecord[T_contra]], uow: UnitOfWork, /) -> None:
        """
        Apply `records` (in stream order) through `uow`.

        Raises:
            Exception: Any exception marks the batch as failing at one of these
                records; the dispatcher finds which.
        """
        ...


@runtime_checkable
class Mapper(Protocol[T_co]):
    """
    Turns one deserialized image into the handler's type `T`.

    Any callable taking an item and returning `T` is a mapper: a function, a
    `classmethod` such as `Payment.from_item`, or an object with `__call__`.
    It is called once for each image (new and old) a record carries. It must
    not touch the database; raising marks the record as failed with a
    `dynastream.exceptions.MappingError`.
    """

    def __call__(self, item: Item, /) -> T_co:
        """
        Return the image as a `T`.
        """
        ...


class MetricsSink(Protocol):
    """
    Receives each batch's summary: what the container's `metrics` provider gives.

    The default is `dynastream.EmfMetrics`. Override the provider with your own
    sink to send the counts elsewhere, or to collect them in a test.

    Examples:
        >>> from dependency_injector import providers
        >>> import dynastream
        >>> class Collected:
        ...     def __init__(self) -> None:
        ...         self.summaries = []
        ...     def publish(self, summary) -> None:
        ...         self.summaries.append(summary)
        >>> app = dynastream.App(database_url="sqlite://")
        >>> app.container.metrics.override(providers.Object(Collected()))
        <...>
    """

    def publish(self, summary: BatchSummary, /) -> None:
        """
        Publish one batch's counts, duration and lag.
        """
