"""
The dependency-injection container.

It holds what the dispatcher needs, and it is where an application plugs in
its own dependencies.

`App` owns one `Container`. A handler's constructor parameters are resolved by
name against the container's providers, so an application adds a provider and
names a parameter after it:

Examples:
    >>> from dependency_injector import providers
    >>> import dynastream
    >>> app = dynastream.App(database_url="sqlite://")
    >>> app.container.ledger = providers.Singleton(dict)   # any provider
    >>> @app.handler("Payments")
    ... class PaymentsHandler(dynastream.StreamEventHandler[dynastream.Item]):
    ...     def __init__(self, ledger: dict) -> None:
    ...         self.ledger = ledger
    ...     def handle(self, records, uow) -> None: ...

Tests override providers instead of patching:

    >>> with app.container.ledger.override(providers.Object({"fake": True})):
    ...     pass

The providers every container has:

- `settings`: `dynastream.Settings`, read from `DYNASTREAM_*` variables once.
- `credentials`: where database credentials come from when not from the URL
  (a Secrets Manager secret, IAM authentication tokens), or `None`.
- `engine`: the SQLAlchemy engine, built once per process on first use.
- `session_factory`: makes the session joined to each batch's transaction.
- `clock`: a callable returning the current aware UTC datetime.
- `logger`: the `logging.Logger` dynastream writes to (`dynastream`, at
  `Settings.log_level`).
- `metrics`: the `dynastream.typing.MetricsSink` each batch's summary is
  published to: `dynastream.EmfMetrics` in `Settings.metrics_namespace`, or
  `None` when `Settings.metrics` is false.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dependency_injector import containers, providers

from ._credentials import credentials_for
from ._engine import create_engine, create_session_factory
from ._logging import dynastream_logger
from ._metrics import metrics_sink
from ._settings import Settings

__all__ = ["Container"]


def utc_now() -> datetime:
    """
    Return the current time as an aware UTC datetime.
    """
    return datetime.now(UTC)


class Container(containers.DeclarativeContainer):
    """
    Providers for settings, engine, session factory, clock, logger and metrics.

    Replace one for a whole application with `container.<name>.override(...)`;
    add your own with `container.<name> = providers.Singleton(...)`.
    """

    settings = providers.Singleton(Settings.from_env)
    credentials = providers.Singleton(credentials_for, settings)
    engine = providers.Singleton(create_engine, settings, credentials)
    session_factory = providers.Singleton(create_session_factory)
    clock = providers.Object(utc_now)
    logger = providers.Singleton(dynastream_logger, settings)
    metrics = providers.Singleton(metrics_sink, settings)
