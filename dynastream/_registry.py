"""
Registrations: which handlers (with which mappers) serve which table.

And how the container builds them for each invocation.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import attrs

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dependency_injector import containers

    from ._records import StreamRecord
    from ._uow import UnitOfWork
    from .typing import Mapper, StreamEventHandler

__all__ = ["Registration", "Registry"]


@attrs.frozen
class Registration:
    """
    One handler registered for one table.

    Attributes:
        table_name: The DynamoDB table whose records the handler receives.
        handler: The handler class (built by the container per invocation) or
            function.
        mapper: A mapper (callable), a mapper class (built by the container per
            invocation), or `None` to receive deserialized items.
        position: Registration order; handlers run in this order.
        ledger_name: For an exactly-once handler, the name its applied
            eventIDs are kept under; `None` otherwise.
        on_poison: `"report"` a record this handler cannot apply (the batch
            stops there), `"quarantine"` it and go on, or `None`: as
            `Settings.on_poison` says (`DYNASTREAM_ON_POISON`).
        keep_raw: Keep the raw record of a quarantined record (it may hold
            personal data).
    """

    table_name: str
    handler: type[Any] | Callable[..., None] | Any
    mapper: Any
    position: int
    ledger_name: str | None = None
    on_poison: str | None = None
    keep_raw: bool = False

    @property
    def name(self) -> str:
        """
        The handler's qualified name, for messages.
        """
        return qualified_name(self.handler)


def qualified_name(obj: Any) -> str:
    """
    Return `module.QualifiedName` of a class or function, for messages and ledgers.
    """
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class _FunctionHandler:
    """
    Adapts a plain `def handle(records, uow)` function to the handler protocol.
    """

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None]) -> None:
        self.function = function

    def handle(self, records: Sequence[StreamRecord[Any]], uow: UnitOfWork, /) -> None:
        self.function(records, uow)


class Registry:
    """
    The application's registrations, in order.
    """

    def __init__(self) -> None:
        self._registrations: list[Registration] = []

    def add(
        self,
        table_name: str,
        handler: Any,
        mapper: Any,
        *,
        ledger_name: str | None = None,
        on_poison: str | None = None,
        keep_raw: bool = False,
    ) -> Registration:
        """
        Register `handler` for `table_name`.

        Raises:
            ConfigurationError: The table name is empty, or the handler is
                neither a class with `handle` nor a function.
        """
        if not table_name:
            raise ConfigurationError("a handler's table name must be a non-empty string")
        if inspect.isclass(handler):
            if not callable(getattr(handler, "handle", None)):
                raise ConfigurationError(f"{qualified_name(handler)} has no handle(records, uow) method")
        elif not callable(handler):
            raise ConfigurationError(
                f"a handler must be a class with handle(records, uow) or a function, got {handler!r}"
            )
        if mapper is not None and not callable(mapper):
            raise ConfigurationError(f"a mapper must be callable, got {mapper!r}")
        if inspect.isclass(mapper) and not any("__call__" in vars(k) for k in mapper.__mro__):
            raise ConfigurationError(
                f"mapper {qualified_name(mapper)} is a class whose instances are not callable;"
                " pass a function or classmethod that builds it from an item instead"
                " (for example mapper=lambda item: Payment(**item))"
            )
        if on_poison not in (None, "report", "quarantine"):
            raise ConfigurationError(f"on_poison must be 'report' or 'quarantine', got {on_poison!r}")
        registration = Registration(
            table_name, handler, mapper, len(self._registrations), ledger_name, on_poison, keep_raw
        )
        self._registrations.append(registration)
        return registration

    @property
    def registrations(self) -> tuple[Registration, ...]:
        """
        Every registration, in registration order.
        """
        return tuple(self._registrations)

    def for_table(self, table_name: str) -> list[Registration]:
        """
        The registrations serving `table_name`, in registration order.
        """
        return [r for r in self._registrations if r.table_name == table_name]

    def quarantines(self, table_name: str, default: str = "report") -> tuple[bool, bool]:
        """
        Return whether a failing record of `table_name` is quarantined.

        It is when every handler of the table says so (those registered
        without a policy follow `default`); the second value says whether its
        raw record is kept.
        """
        registrations = self.for_table(table_name)
        quarantined = bool(registrations) and all(
            (default if r.on_poison is None else r.on_poison) == "quarantine" for r in registrations
        )
        return quarantined, quarantined and any(r.keep_raw for r in registrations)

    @property
    def uses_old_images(self) -> bool:
        """
        Whether any handler or mapper may read `old_image`.

        Handlers may say they do not (the built-in replication handler does).
        """
        return any(
            r.mapper is not None or getattr(r.handler, "uses_old_images", True) for r in self._registrations
        )

    @property
    def uses_new_images(self) -> bool:
        """
        Whether any handler or mapper may read `new_image`.

        Handlers may say they do not, reading images from `raw` themselves (the
        built-in replication handler does).
        """
        return any(
            r.mapper is not None or getattr(r.handler, "uses_new_images", True) for r in self._registrations
        )

    @property
    def table_names(self) -> frozenset[str]:
        """
        The tables that have at least one handler.
        """
        return frozenset(r.table_name for r in self._registrations)


def build(target: type[Any], container: containers.Container, role: str) -> Any:
    """
    Build `target` with its constructor parameters taken from the container.

    Each parameter gets the provider of the same name; parameters with
    defaults may go without.

    Raises:
        ConfigurationError: A required parameter has no provider of that name.
    """
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]  # builtins without a signature take nothing
    providers = container.providers
    arguments: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if name in providers:
            arguments[name] = providers[name]()
        elif parameter.default is inspect.Parameter.empty:
            known = ", ".join(sorted(providers)) or "none"
            raise ConfigurationError(
                f"cannot build {role} {qualified_name(target)}: its parameter {name!r} has no"
                f" provider of that name in the container (providers: {known}); add one with"
                f" app.container.{name} = providers.Singleton(...)"
            )
    return target(**arguments)


def build_handler(registration: Registration, container: containers.Container) -> StreamEventHandler[Any]:
    """
    Return the handler object for one invocation.
    """
    handler: StreamEventHandler[Any]
    if inspect.isclass(registration.handler):
        handler = build(registration.handler, container, "handler")
    elif callable(getattr(registration.handler, "handle", None)):
        handler = registration.handler  # type: ignore[assignment]  # an instance, such as the built-in replication handler
    else:
        handler = _FunctionHandler(registration.handler)
    if registration.ledger_name is not None:
        from ._ledger import ExactlyOnceHandler

        handler = ExactlyOnceHandler(handler, registration.ledger_name, clock=container.clock())
    return handler


def build_mapper(registration: Registration, container: containers.Container) -> Mapper[Any] | None:
    """
    Return the mapper for one invocation, or `None` for deserialized items.
    """
    mapper = registration.mapper
    if inspect.isclass(mapper):
        built: Mapper[Any] = build(mapper, container, "mapper")
        return built
    return mapper  # type: ignore[no-any-return]
