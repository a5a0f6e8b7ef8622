"""
Registrations: which handlers (with which mappers) serve which table.

How the container builds them for each invocation is `_autowire`'s.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dependency_injector import providers

    from ._records import StreamRecord
    from ._uow import UnitOfWork
    from .typing import Mapper, StreamEventHandler

__all__ = ["HandlerSpec", "MapperSpec", "PoisonPolicy", "Registration", "Registry"]

PoisonPolicy: TypeAlias = Literal["report", "quarantine"]
# What may be registered: a handler class (built by the container for each
# invocation), a handler object (the built-in replication's), or a function
# `handle(records, uow)`; a mapper, a mapper class, or None for plain items.
HandlerSpec: TypeAlias = (
    "type[StreamEventHandler[Any]] | StreamEventHandler[Any]"
    " | Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None]"
)
MapperSpec: TypeAlias = "Mapper[Any] | type[Mapper[Any]] | None"


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
        handler_provider: The provider that gives the handler for each
            invocation: a `Factory` of a handler class, whose parameters come
            from the application's container, or an `Object` of a function or
            instance. Override it in a
            test to replace the handler (`.override(providers.Object(fake))`);
            exactly-once bookkeeping and the poison policy stay.
        mapper_provider: The same for the mapper (an `Object` of `None` when
            the handler takes deserialized items).
    """

    table_name: str
    handler: HandlerSpec
    mapper: MapperSpec
    position: int
    ledger_name: str | None = None
    on_poison: PoisonPolicy | None = None
    keep_raw: bool = False
    handler_provider: providers.Provider[StreamEventHandler[Any]] = attrs.field(
        kw_only=True, eq=False, repr=False
    )
    mapper_provider: providers.Provider[Mapper[Any] | None] = attrs.field(kw_only=True, eq=False, repr=False)

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
        on_poison: PoisonPolicy | None = None,
        keep_raw: bool = False,
        handler_provider: providers.Provider[StreamEventHandler[Any]],
        mapper_provider: providers.Provider[Mapper[Any] | None],
    ) -> Registration:
        """
        Register `handler` for `table_name`, given by `handler_provider` (see `_autowire`).

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
            table_name,
            handler,
            mapper,
            len(self._registrations),
            ledger_name,
            on_poison,
            keep_raw,
            handler_provider=handler_provider,
            mapper_provider=mapper_provider,
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
