"""
`App`: what an application creates in its `handler.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from dependency_injector import providers

from ._dispatch import BatchResult, Dispatcher
from ._registry import Registration, Registry, build_handler, build_mapper
from ._settings import Settings
from .containers import Container

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dependency_injector import containers
    from sqlalchemy import Engine

    from ._records import StreamRecord
    from ._uow import UnitOfWork
    from .typing import Mapper, StreamEventHandler

__all__ = ["App"]

HandlerT = TypeVar(
    "HandlerT",
    bound="type[StreamEventHandler[Any]] | Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None]",
)


class App:
    """
    A stream-processing application: its handlers, container and Lambda entry.

    Args:
        database_url: SQLAlchemy URL of the target database; overrides
            `DYNASTREAM_DATABASE_URL`.
        engine: An engine to use instead of building one (tests, or sharing
            an engine the application already has).
        container: A container to use instead of a new `Container`.

    Examples:
        >>> import dynastream
        >>> app = dynastream.App(database_url="sqlite://")
        >>> @app.handler("Orders")
        ... def record_orders(records, uow):
        ...     ...
        >>> lambda_handler = app.lambda_handler
        >>> lambda_handler({"Records": []}, None)
        {'batchItemFailures': []}
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        engine: Engine | None = None,
        container: containers.Container | None = None,
    ) -> None:
        self.container: Any = Container() if container is None else container
        if database_url is not None:
            self.container.settings.override(
                providers.Singleton(lambda: attrs.evolve(Settings.from_env(), database_url=database_url))
            )
        if engine is not None:
            self.container.engine.override(providers.Object(engine))
        self._registry = Registry()
        self._dispatcher = Dispatcher(self._registry, self.container)

    def handler(
        self, table_name: str, *, mapper: Mapper[Any] | type[Any] | None = None
    ) -> Callable[[HandlerT], HandlerT]:
        """
        Register the decorated handler class or function for `table_name`.

        Several handlers may serve one table: they run in registration order,
        each receiving all of the table's records of the batch in stream order.

        Args:
            table_name: The DynamoDB table (as named in `eventSourceARN`).
            mapper: Turns each image into the handler's type: a callable
                `(item) -> T`, or a class whose instances are such callables
                (built by the container, like handlers). Without one, handlers
                receive deserialized items (`dict[str, Any]`).

        Examples:
            >>> import dynastream
            >>> app = dynastream.App(database_url="sqlite://")
            >>> @app.handler("Payments", mapper=lambda item: item["amount"])
            ... class PaymentsHandler(dynastream.StreamEventHandler[object]):
            ...     def handle(self, records, uow) -> None: ...
        """

        def register(handler: HandlerT) -> HandlerT:
            self.register(table_name, handler, mapper=mapper)
            return handler

        return register

    def register(
        self,
        table_name: str,
        handler: type[StreamEventHandler[Any]] | Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None],
        *,
        mapper: Mapper[Any] | type[Any] | None = None,
    ) -> Registration:
        """
        Register `handler` for `table_name` (what `App.handler` does).

        Raises:
            ConfigurationError: The handler or mapper is not usable.
        """
        return self._registry.add(table_name, handler, mapper)

    @property
    def registrations(self) -> tuple[Registration, ...]:
        """
        Every registration, in the order handlers run.
        """
        return self._registry.registrations

    def check(self) -> None:
        """
        Build every handler and mapper once, so wiring mistakes surface early.

        Call it at start-up or in a test rather than wait for the first batch.

        Raises:
            ConfigurationError: A handler or mapper needs a provider the
                container does not have.
        """
        for registration in self._registry.registrations:
            build_handler(registration, self.container)
            build_mapper(registration, self.container)

    def dispatch(self, event: Any, context: Any = None, *, table_name: str | None = None) -> BatchResult:
        """
        Apply one event in one transaction and say what happened.

        Records that cannot be applied (malformed, unrouted, failing to map or
        failing in a handler) are reported in the result, not raised: the first
        one stops the batch, the records before it are committed.

        Args:
            event: Any shape `dynastream.parse_event` reads.
            context: The Lambda context, when there is one.
            table_name: The table the records belong to, for records that do
                not carry `eventSourceARN` (a `GetRecords` response).

        Returns:
            What was applied, and the first failure if any.

        Raises:
            MalformedEventError: The event cannot be read as a whole, or a
                malformed record carries no readable sequence number (nothing
                is applied; the whole batch is delivered again).
            ConfigurationError: A handler or mapper cannot be built, or no
                database is configured.
            UnitOfWorkError: A handler committed, rolled back or closed the
                session; the whole batch is rolled back.
            sqlalchemy.exc.DBAPIError: The connection failed or COMMIT failed;
                the batch is not known to be committed, so the invocation fails
                and the batch is delivered again.
        """
        return self._dispatcher.dispatch(event, context, table_name=table_name)

    def lambda_handler(self, event: Any, context: Any) -> dict[str, Any]:
        """
        The AWS Lambda entry point: `lambda_handler = app.lambda_handler`.

        Returns:
            `{"batchItemFailures": [...]}`, for an event source mapping with
            `FunctionResponseTypes: [ReportBatchItemFailures]`.
        """
        return self._dispatcher.dispatch(event, context).response()
