"""
The engine: built once per process, shaped for Lambda.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ._settings import Settings

__all__ = ["create_engine", "create_session_factory"]


def create_engine(settings: Settings) -> Engine:
    """
    Build the engine for `settings.database_url`.

    One connection per process by default (a Lambda environment runs one
    invocation at a time), checked before use so that a connection the server
    closed while the environment was frozen is never handed out. Statement
    parameters (item values) never appear in SQLAlchemy's logs or errors.

    Raises:
        ConfigurationError: No database URL is configured.
    """
    import sqlalchemy
    from sqlalchemy.engine import make_url

    if not settings.database_url:
        raise ConfigurationError(
            "no database is configured: set DYNASTREAM_DATABASE_URL or pass App(database_url=...)"
        )
    url = make_url(settings.database_url)
    # Statement parameters are item values, which may be personal data: keep
    # them out of SQLAlchemy's logs and out of the text of its exceptions.
    options: dict[str, Any] = {"hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            from sqlalchemy.pool import StaticPool

            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        engine = sqlalchemy.create_engine(url, **options)
        enable_sqlite_savepoints(engine)
        return engine
    options.update(pool_size=1, max_overflow=0, pool_pre_ping=True, pool_recycle=600)
    return sqlalchemy.create_engine(url, **options)


def enable_sqlite_savepoints(engine: Engine) -> None:
    """
    Let SQLAlchemy, not pysqlite, issue BEGIN, so SAVEPOINT works on SQLite.

    pysqlite defers BEGIN and commits around DDL on its own, which breaks
    savepoints; this is the fix from SQLAlchemy's SQLite dialect notes
    ("Serializable isolation / Savepoints / Transactional DDL"). `BEGIN
    IMMEDIATE` takes the write lock up front, so two writers wait for each
    other instead of failing on a lock upgrade.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory() -> sessionmaker[Session]:
    """
    Return the session factory the dispatcher binds to each batch's connection.
    """
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(autoflush=True, expire_on_commit=False)
