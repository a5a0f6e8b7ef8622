"""
Autowiring: handlers and mappers built from the container for each invocation.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from dependency_injector import providers

from dynastream._registry import qualified_name
from dynastream.exceptions import ConfigurationError
from dynastream.typing import StreamEventHandler

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dependency_injector import containers

    from dynastream._records import StreamRecord
    from dynastream._registry import Registration
    from dynastream._uow import UnitOfWork
    from dynastream.typing import Mapper

__all__ = ["build", "build_handler", "build_mapper", "handler_provider", "mapper_provider"]


class _FunctionHandler:
    """
    Adapts a plain `def handle(records, uow)` function to the handler protocol.
    """

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None]) -> None:
        self.function = function

    def handle(self, records: Sequence[StreamRecord[Any]], uow: UnitOfWork, /) -> None:
        self.function(records, uow)


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


def handler_provider(
    handler: Any, container: containers.Container
) -> providers.Provider[StreamEventHandler[Any]]:
    """
    Return the provider that gives `handler` for each invocation.

    A class is built by the container each time (a `Factory` of `build`, so
    that providers added to the container after registration count); a
    function or an instance is given as it is.
    """
    if inspect.isclass(handler):
        return providers.Factory(build, handler, container, "handler")
    if isinstance(handler, StreamEventHandler):  # an instance: the built-in replication handler
        return providers.Object(handler)
    return providers.Object(_FunctionHandler(handler))


def mapper_provider(mapper: Any, container: containers.Container) -> providers.Provider[Mapper[Any] | None]:
    """
    Return the provider that gives `mapper` for each invocation (`None`: plain items).
    """
    if inspect.isclass(mapper):
        return providers.Factory(build, mapper, container, "mapper")
    return providers.Object(mapper)


def build_handler(registration: Registration, container: containers.Container) -> StreamEventHandler[Any]:
    """
    Return the handler object for one invocation, from its registration's provider.

    An exactly-once handler is wrapped in its ledger, whatever the provider gives.
    """
    handler = registration.handler_provider()
    if registration.ledger_name is not None:
        from dynastream._ledger import ExactlyOnceHandler

        handler = ExactlyOnceHandler(handler, registration.ledger_name, clock=container.clock())
    return handler


def build_mapper(registration: Registration) -> Mapper[Any] | None:
    """
    Return the mapper for one invocation, or `None` for deserialized items.
    """
    return registration.mapper_provider()
