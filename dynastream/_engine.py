"""
The engine: built once per process, shaped for Lambda.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import URL
    from sqlalchemy.orm import Session, sessionmaker
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

    from ._credentials import IamAuthentication, SecretsManagerCredentials
    from ._settings import Settings

__all__ = [
    "bound_connects",
    "create_engine",
    "create_session_factory",
    "deadline",
    "deadline_for",
    "is_local_host",
    "limit_statements",
    "read_committed",
    "tls_connect_args",
    "unlimit_statements",
]

logger = logging.getLogger("dynastream")

# When the work under way must end (time.monotonic()) and how much longer a
# statement's reads and writes may take, or None: the dispatcher sets it for an
# invocation's remaining time minus its safety margin.
deadline: ContextVar[tuple[float, float] | None] = ContextVar("dynastream_deadline", default=None)
# libpq's connect_timeout counts whole seconds, and takes less than 2 as 2
# (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-CONNECT-TIMEOUT).
_LIBPQ_MINIMUM_TIMEOUT = 2
_bounded: WeakSet[Engine] = WeakSet()


def create_engine(
    settings: Settings, credentials: SecretsManagerCredentials | IamAuthentication | None = None
) -> Engine:
    """
    Build the engine `settings` describe.

    One connection per process by default (a Lambda environment runs one
    invocation at a time), with no overflow; `settings.pool == "null"` opens a
    connection per batch instead (RDS Proxy pools them). Every connection is
    pinged before use and replaced after `pool_recycle_seconds`, so that a
    connection the server closed while the environment was frozen is never
    handed out. Statement parameters (item values) never appear in
    SQLAlchemy's logs or errors.

    Args:
        settings: The settings.
        credentials: Where the user name and password come from, when not
            from the URL (see `dynastream.containers.Container.credentials`).

    Raises:
        ConfigurationError: No database is configured, or TLS cannot be
            verified with its driver.
    """
    import sqlalchemy
    from sqlalchemy.engine import make_url

    url = None if settings.database_url is None else make_url(settings.database_url)
    if credentials is not None:
        url = credentials.complete_url(url)
    if url is None:
        raise ConfigurationError(
            "no database is configured: set DYNASTREAM_DATABASE_URL or pass App(database_url=...)"
        )
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
    options.update(
        pool_pre_ping=True,
        pool_recycle=settings.pool_recycle_seconds,
        connect_args=tls_connect_args(url, settings),
    )
    if settings.pool == "null":
        from sqlalchemy.pool import NullPool

        options.update(poolclass=NullPool)
    else:
        options.update(pool_size=settings.pool_size, max_overflow=settings.pool_max_overflow)
    engine = sqlalchemy.create_engine(url, **options)
    if credentials is not None:
        credentials.install(engine)
    return engine


def bound_connects(engine: Engine) -> None:
    """
    Make `engine`'s connects, and PyMySQL's reads and writes, end by the `deadline`.

    A server that never answers (a failed-over Aurora writer, a security group
    that drops packets) would otherwise hold a Lambda invocation until Lambda
    kills it, with no response and no log. Each new connection gets the time
    left as its driver's `connect_timeout` (PyMySQL's `read_timeout` and
    `write_timeout` too, which bound its handshake); on every checkout a
    PyMySQL connection's read and write timeouts are set to the time left
    (and cleared when no deadline is set). libpq has no read timeout: on
    PostgreSQL a statement is bounded by the server's `statement_timeout`,
    which the dispatcher sets. Idempotent.
    """
    if engine in _bounded:
        return
    from sqlalchemy import event

    backend = engine.url.get_backend_name()
    driver = engine.url.get_driver_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        return
    pymysql = driver == "pymysql"

    def on_connect(
        _dialect: Any, _record: ConnectionPoolEntry, _arguments: Any, options: dict[str, Any]
    ) -> None:
        left = _time_left()
        if left is None:
            return
        if pymysql:
            options["connect_timeout"] = options["read_timeout"] = options["write_timeout"] = left
        else:
            options["connect_timeout"] = max(_LIBPQ_MINIMUM_TIMEOUT, math.ceil(left))

    def on_checkout(
        dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        # PyMySQL reads these attributes before every read and write of its socket.
        if hasattr(dbapi_connection, "_read_timeout") and hasattr(dbapi_connection, "_write_timeout"):
            left = _time_left(grace=True)
            dbapi_connection._read_timeout = dbapi_connection._write_timeout = left

    event.listen(engine, "do_connect", on_connect)
    if pymysql:
        event.listen(engine, "checkout", on_checkout)
    _bounded.add(engine)


def _time_left(*, grace: bool = False) -> float | None:
    """
    Return the seconds left before the `deadline` (at least a millisecond), or `None`.

    With `grace`, the time a statement's reads and writes may take past it.
    """
    bound = deadline.get()
    if bound is None:
        return None
    end, extra = bound
    return max(0.001, end + (extra if grace else 0.0) - time.monotonic())


def is_local_host(host: str | None) -> bool:
    """
    Return whether `host` is this machine: no host (a Unix socket), localhost, a loopback address.
    """
    if not host or host.lower() == "localhost" or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_connect_args(url: URL, settings: Settings) -> dict[str, Any]:
    """
    Return the driver arguments that make `url`'s connections verify the server.

    With `tls="auto"`, a local host is left to the URL (and so is every host
    with `tls="disable"`, after a warning); any other connection requires TLS
    and checks the server's certificate against `tls_ca_file` (or the system's
    CAs) and its host name, whatever TLS options the URL carries. The host is
    the one the driver will use: a `host`, `hostaddr` or `service` in the
    URL's query (or libpq's `PGHOST`, `PGHOSTADDR`, `PGSERVICE`) counts, not
    only the URL's host part.

    Raises:
        ConfigurationError: The driver is not one whose TLS options dynastream
            knows (psycopg, psycopg2, PyMySQL), or, for a host that is not
            local, the URL carries an option that would turn verification off
            (`ssl_disabled`, `ssl_verify_cert`, `ssl_verify_identity` for
            PyMySQL): `DYNASTREAM_TLS=disable` is the one way to do that.
    """
    if settings.tls == "disable":
        logger.warning(
            "TLS verification is disabled (DYNASTREAM_TLS=disable): connections to %s are not "
            "protected against eavesdropping or an impostor server unless the URL's own options do so",
            url.host or "the local socket",
        )
        return {}
    backend, driver = url.get_backend_name(), url.get_driver_name()
    local = all(is_local_host(host) for host in _hosts(url))
    if settings.tls == "auto" and settings.credentials != "iam" and local:
        return {}
    query = {name: url.query[name] for name in url.query}
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        # https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION
        # sslrootcert=system (the system's CAs) needs libpq 16 or later. These
        # arguments win over the URL's sslmode and sslrootcert (SQLAlchemy
        # applies connect_args last); a CA file the URL names is kept.
        ca_file = settings.tls_ca_file or _single(query.get("sslrootcert"))
        return {"sslmode": "verify-full", "sslrootcert": ca_file or "system"}
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        import ssl

        # PyMySQL takes these outside its `ssl` argument and lets them replace
        # or switch off the context given there.
        weakening = sorted(set(query) & {"ssl_disabled", "ssl_verify_cert", "ssl_verify_identity"})
        if weakening:
            raise ConfigurationError(
                f"DYNASTREAM_DATABASE_URL's {', '.join(weakening)} would weaken TLS to a host that is not"
                " local: remove it (dynastream verifies the certificate and host name), or set"
                " DYNASTREAM_TLS=disable to opt out explicitly"
            )
        # PyMySQL turns verification off when given no CA file; a context of
        # our own verifies the certificate and host name in every case.
        ca_file = settings.tls_ca_file or _single(query.get("ssl_ca"))
        return {"ssl": ssl.create_default_context(cafile=ca_file)}
    raise ConfigurationError(
        f"dynastream does not know how to verify TLS with the {backend}+{driver} driver: use psycopg or "
        "PyMySQL, or set DYNASTREAM_TLS=disable and put the driver's TLS options in the URL"
    )


def _single(value: str | tuple[str, ...] | None) -> str | None:
    return value[-1] if isinstance(value, tuple) else value


def _hosts(url: URL) -> list[str | None]:
    """
    Return every host `url`'s driver may connect to (`None`: its default, a local socket).

    libpq takes `host` and `hostaddr` from the query (each a comma-separated
    list, `hostaddr` winning), a `service` from pg_service.conf, and the
    `PGHOST`/`PGHOSTADDR`/`PGSERVICE` variables when the URL names no host
    (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS);
    PyMySQL a `host` from the query, and connects to `unix_socket` when
    given, or to hosts named in an option file.
    """
    import os

    query = {name: _single(url.query[name]) or "" for name in url.query}
    if url.get_backend_name() == "postgresql":
        unknown = "<a service of pg_service.conf>"
        hosts = query.get("hostaddr") or query.get("host") or url.host
        if not hosts:
            hosts = os.environ.get("PGHOSTADDR") or os.environ.get("PGHOST")
        if "service" in query or (not hosts and os.environ.get("PGSERVICE")):
            return [unknown]
        return [host.strip() or None for host in hosts.split(",")] if hosts else [None]
    if query.get("unix_socket"):
        return [query["unix_socket"]]
    if "read_default_file" in query or "read_default_group" in query:
        return ["<a host of a MySQL option file>"]
    return [query.get("host") or url.host]


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


# Each batch's transaction


@contextlib.contextmanager
def deadline_for(left: float | None, margin: float) -> Iterator[None]:
    """
    Set the `deadline` connects and reads keep to (see `bound_connects`).

    Connects must end when the time left less the margin is spent; a read or
    write of a statement may take half the margin more, so that the server's
    own bound on the statement (`limit_statements`) ends it first and the
    connection survives.
    """
    token = deadline.set(None if left is None else (time.monotonic() + left - margin, margin / 2))
    try:
        yield
    finally:
        deadline.reset(token)


def read_committed(connection: Connection) -> None:
    """
    Run the batch's transaction at READ COMMITTED on MySQL and MariaDB.

    PostgreSQL's default. At InnoDB's default, REPEATABLE READ, the reads of
    `INSERT ... SELECT` and of deletes take next-key locks, gaps included, on
    the shared bookkeeping tables and the data table: batches writing
    neighbouring keys then block, and deadlock, on each other's gaps. At READ
    COMMITTED they lock only the rows they write; item locks (`_locks`) keep two
    writers of one item apart. `SET TRANSACTION` applies to the next
    transaction only, and is allowed before its first statement:
    https://dev.mysql.com/doc/refman/8.0/en/set-transaction.html
    """
    if connection.dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


def limit_statements(connection: Connection, seconds: float) -> None:
    """
    Bound each statement and lock wait of this transaction by the time left.

    So that a slow statement fails (and the dispatcher stops in time) rather
    than Lambda's timeout cutting the transaction short. PostgreSQL scopes the
    settings to the transaction; MariaDB's are per session and undone after.
    """
    milliseconds = max(1, int(seconds * 1000))
    dialect = connection.dialect
    if dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
    elif dialect.name in ("mysql", "mariadb"):  # a mariadb+pymysql URL's dialect is "mariadb"
        connection.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(seconds))}")
        if getattr(dialect, "is_mariadb", False):
            connection.exec_driver_sql(f"SET SESSION max_statement_time = {milliseconds / 1000:.3f}")


def unlimit_statements(connection: Connection) -> None:
    dialect = connection.dialect
    if dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = DEFAULT")
        if getattr(dialect, "is_mariadb", False):
            connection.exec_driver_sql("SET SESSION max_statement_time = DEFAULT")
