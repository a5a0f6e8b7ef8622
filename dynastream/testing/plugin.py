"""
The pytest plugin: fixtures for testing a dynastream application.

Installing dynastream registers it (entry point `pytest11`), so the fixtures
are there in every test:

- `dynastream_database_url`: the URL of a new, empty SQLite database file;
- `dynastream_app`: a `dynastream.App` writing to that database, with
  dynastream's own tables created. To test your application's `App` instead,
  name it in the pytest configuration,

    ```toml
    [tool.pytest.ini_options]
    dynastream_app = "handler:app"    # module:attribute
    ```

  or per test module with `pytestmark = pytest.mark.dynastream_app("handler:app")`.
  For each test its engine is pointed at the temporary database (the
  container's `engine` provider is overridden, and the override undone after
  the test), and the tables of its `App.replicate(..., into=...)` targets are
  created. Tables your own handlers write to are yours to create, for example
  `Base.metadata.create_all(dynastream_app.container.engine())`;
- `stream_events`: a `dynastream.testing.EventFactory`;
- `lambda_context`: a `dynastream.testing.LambdaContext` with 300 seconds left.

Importing the plugin imports neither SQLAlchemy's ORM nor boto3: fixtures
import what they use when they run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dynastream import App
    from dynastream.testing import EventFactory, LambdaContext

__all__ = [
    "dynastream_app",
    "dynastream_database_url",
    "lambda_context",
    "pytest_addoption",
    "pytest_configure",
    "stream_events",
]

_INI = "dynastream_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    """
    Register the `dynastream_app` configuration option.
    """
    parser.addini(
        _INI,
        "The App the dynastream_app fixture provides, as module:attribute (for example handler:app).",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """
    Register the `dynastream_app` marker.
    """
    config.addinivalue_line(
        "markers",
        "dynastream_app(path): the App the dynastream_app fixture provides, as module:attribute;"
        " overrides the dynastream_app option",
    )


@pytest.fixture
def dynastream_database_url(tmp_path: Path) -> str:
    """
    The SQLAlchemy URL of a new, empty SQLite database file.
    """
    return f"sqlite:///{tmp_path / 'dynastream.sqlite'}"


@pytest.fixture
def dynastream_app(request: pytest.FixtureRequest, dynastream_database_url: str) -> Iterator[App]:
    """
    An `App` on the temporary database, with dynastream's tables created.

    It is your application's `App` when the `dynastream_app` marker or
    option names one (`module:attribute`), with its engine pointed at the
    temporary database for the test and its replicated tables created;
    otherwise a new, empty `App`.
    """
    import dynastream
    from dynastream._engine import create_engine

    engine = create_engine(dynastream.Settings(database_url=dynastream_database_url))
    marker = request.node.get_closest_marker(_INI)
    path = _marker_path(marker) if marker is not None else str(request.config.getini(_INI)).strip()
    try:
        if not path:
            app = dynastream.App(engine=engine)
            app.create_tables()
            yield app
            return
        app = _load_app(path)
        with app.container.engine.override(engine):
            app.create_tables()
            _create_replicated_tables(app, engine)
            yield app
    finally:
        engine.dispose()


def _marker_path(marker: pytest.Mark) -> str:
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or marker.kwargs:
        raise pytest.UsageError("@pytest.mark.dynastream_app takes one argument: 'module:attribute'")
    return marker.args[0]


def _load_app(path: str) -> App:
    import dynastream

    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise pytest.UsageError(
            f"dynastream_app must be 'module:attribute' (for example handler:app), got {path!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise pytest.UsageError(f"dynastream_app {path!r}: cannot import {module_name!r}: {error}") from error
    app: Any = module
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise pytest.UsageError(
                f"dynastream_app {path!r}: {module_name!r} has no {attribute!r}"
            ) from None
    if not isinstance(app, dynastream.App):
        raise pytest.UsageError(f"dynastream_app {path!r} is a {type(app).__name__}, not a dynastream.App")
    return app


def _create_replicated_tables(app: App, engine: Any) -> None:
    from dynastream._replication.handler import ReplicationHandler

    for registration in app.registrations:
        if isinstance(registration.handler, ReplicationHandler):
            registration.handler.table.create(engine, checkfirst=True)


@pytest.fixture
def stream_events() -> EventFactory:
    """
    A `dynastream.testing.EventFactory` with its defaults (key attribute `id`).

    Override the fixture in a `conftest.py` to configure it, for example
    `return EventFactory(keys={"Payments": ["paymentId"]})`.
    """
    from dynastream.testing import EventFactory

    return EventFactory()


@pytest.fixture
def lambda_context() -> LambdaContext:
    """
    A `dynastream.testing.LambdaContext` with 300 seconds left.

    Set `lambda_context.remaining_seconds` to test what happens when time runs short.
    """
    from dynastream.testing import LambdaContext

    return LambdaContext()
