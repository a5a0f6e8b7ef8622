"""
Connections (DESIGN §2.9): pool discipline, TLS verification, credentials from AWS.

Server tests run on the local PostgreSQL and MariaDB. The TLS and credentials
tests need `.ci/tls-setup` (a test CA on both servers, password authentication
for a PostgreSQL test role) and `DYNASTREAM_TEST_TLS_CA`; without it they
skip, and under `CI=true` they fail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers
from sqlalchemy.engine import make_url

import dynastream
from dynastream import ConfigurationError, Settings
from dynastream._credentials import DatabaseSecret, IamAuthentication, SecretsManagerCredentials
from dynastream._engine import create_engine, tls_connect_args
from dynastream._retry import is_transient
from tests.builders import insert_event
from tests.conftest import _isolated_url

PASSWORD = "canary-rotated-pw-91b2"  # noqa: S105 - a canary, not a credential
SERVERS = ["postgresql", "mysql"]
REMOTE_PG = "postgresql+psycopg://app@db.example.com:5432/app"
REMOTE_MY = "mysql+pymysql://app@db.example.com:3306/app"


def orders_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", dynastream.ExactString(40), primary_key=True),
        sa.Column("n", sa.Integer),
        dynastream.sequence_column(),
    )


@pytest.fixture(params=SERVERS)
def server_url(request: pytest.FixtureRequest, _server_databases: dict[str, str]) -> str:
    """A URL of this run's private database on each server (credentials in the URL, no TLS)."""
    return _isolated_url(request.param, _server_databases)


@pytest.fixture
def tls_ca() -> str:
    """The test CA's file, from `.ci/tls-setup` (skip without it; fail under CI=true)."""
    path = os.environ.get("DYNASTREAM_TEST_TLS_CA")
    if not path:
        reason = "DYNASTREAM_TEST_TLS_CA is not set (run .ci/tls-setup as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: under CI=true the TLS tests must run", pytrace=False)
        pytest.skip(reason)
    return path


def admin_engine(url: str) -> sa.Engine:
    # Its own logger names, so the canary checks can leave out the test's own statements.
    return sa.create_engine(
        url,
        poolclass=sa.pool.NullPool,
        isolation_level="AUTOCOMMIT",
        logging_name="admin",
        pool_logging_name="admin",
    )


def run(url: str, *statements: str) -> list[Any]:
    engine = admin_engine(url)
    try:
        with engine.connect() as connection:
            results = [connection.exec_driver_sql(s) for s in statements]
            return [r.scalar() if r.returns_rows else None for r in results]
    finally:
        engine.dispose()


def replicating_app(table: sa.Table, **app_options: Any) -> dynastream.App:
    app = dynastream.App(**app_options)
    app.replicate("Orders", into=table)
    return app


def stored(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# --- Pool discipline -------------------------------------------------------------------------------


def test_pool_is_one_connection_with_no_overflow_pinged_and_recycled() -> None:
    engine = create_engine(Settings(database_url=REMOTE_PG, tls_ca_file="/ca.pem"))

    assert (sa.pool.QueuePool, 1, 0, True, 600) == (
        type(engine.pool),
        engine.pool.size(),  # type: ignore[attr-defined]
        engine.pool._max_overflow,  # type: ignore[attr-defined]
        engine.pool._pre_ping,
        engine.pool._recycle,
    )


def test_pool_is_configurable_and_null_for_rds_proxy() -> None:
    sized = create_engine(Settings(database_url=REMOTE_PG, pool_size=3, pool_max_overflow=2))
    null = create_engine(Settings(database_url=REMOTE_PG, pool="null", pool_recycle_seconds=60))

    assert (3, 2) == (sized.pool.size(), sized.pool._max_overflow)  # type: ignore[attr-defined]
    assert (sa.pool.NullPool, True, 60) == (type(null.pool), null.pool._pre_ping, null.pool._recycle)


def test_a_plain_url_builds_the_engine_without_importing_boto3() -> None:
    code = (
        "import sys, dynastream\n"
        "app = dynastream.App(database_url='postgresql+psycopg://app@db.example.com/app')\n"
        "app.container.engine()\n"
        "print(sorted(name for name in ('boto3', 'botocore') if name in sys.modules))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603 - fixed code

    assert "[]" == out.strip()


@pytest.mark.parametrize("server", SERVERS)
def test_a_thousand_invocations_hold_one_connection_and_a_killed_one_is_replaced(
    server: str,
    _server_databases: dict[str, str],  # noqa: PT019 - its value is used
) -> None:
    private = make_url(_isolated_url(server, _server_databases))
    admin_url = private.render_as_string(hide_password=False)
    name = f"conn_orders_{os.getpid()}"
    if server == "postgresql":
        url = private.update_query_dict({"application_name": name})
        ours = f"FROM pg_stat_activity WHERE application_name = '{name}'"
        kill = f"SELECT pg_terminate_backend(pid) {ours}"
    else:
        url = private
        ours = (
            f"FROM information_schema.processlist WHERE db = '{private.database}' AND id <> CONNECTION_ID()"
        )
        kill = f"SELECT GROUP_CONCAT(id) {ours}"
    table = orders_table(name)
    app = replicating_app(table, database_url=url.render_as_string(hide_password=False))
    engine = app.container.engine()
    connects: list[object] = []
    sa.event.listen(engine, "connect", lambda *_: connects.append(None))
    table.create(engine)
    app.create_tables()
    try:
        counts = []
        for n in range(1000):
            assert {"batchItemFailures": []} == app.lambda_handler(insert_event(1, start=n), None)
            if n % 50 == 0:
                counts.append(run(admin_url, f"SELECT count(*) {ours}")[0])
        assert 1 == len(connects)
        assert {1} == set(counts)

        # Lambda froze; the server (or a proxy, or a failover) closed the idle connection.
        if server == "postgresql":
            run(admin_url, kill)
        else:
            (ids,) = run(admin_url, kill)
            run(admin_url, *(f"KILL {int(i)}" for i in str(ids).split(",")))

        assert {"batchItemFailures": []} == app.lambda_handler(insert_event(1, start=1000), None)
        assert 2 == len(connects)
        assert 1001 == stored(engine, table)
        assert 1 == run(admin_url, f"SELECT count(*) {ours}")[0]
    finally:
        table.drop(engine)
        engine.dispose()


# --- TLS ---------------------------------------------------------------------------------------------


def test_tls_is_verified_by_default_for_a_remote_host() -> None:
    settings = Settings(database_url=REMOTE_PG, tls_ca_file="/opt/rds/global-bundle.pem")

    assert {"sslmode": "verify-full", "sslrootcert": "/opt/rds/global-bundle.pem"} == tls_connect_args(
        make_url(REMOTE_PG), settings
    )
    assert {"sslmode": "verify-full", "sslrootcert": "system"} == tls_connect_args(
        make_url(REMOTE_PG), Settings(database_url=REMOTE_PG)
    )


def test_pymysql_gets_a_context_that_verifies_certificate_and_host_name() -> None:
    context = tls_connect_args(make_url(REMOTE_MY), Settings(database_url=REMOTE_MY))["ssl"]

    assert (ssl.CERT_REQUIRED, True) == (context.verify_mode, context.check_hostname)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_tls_is_not_forced_on_a_local_host(host: str) -> None:
    url = f"postgresql+psycopg://app@{host}:5432/app"

    assert {} == tls_connect_args(make_url(url), Settings(database_url=url))


def test_tls_verify_forces_verification_on_a_local_host_too() -> None:
    url = "postgresql+psycopg://app@localhost/app"

    assert (
        "verify-full" == tls_connect_args(make_url(url), Settings(database_url=url, tls="verify"))["sslmode"]
    )


def test_disabling_tls_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dynastream"):
        args = tls_connect_args(make_url(REMOTE_PG), Settings(database_url=REMOTE_PG, tls="disable"))

    assert {} == args
    assert ["WARNING"] == [r.levelname for r in caplog.records]
    assert "DYNASTREAM_TLS=disable" in caplog.text


# Every TLS- or host-related query parameter of libpq and PyMySQL, spelled to weaken TLS or
# to move the connection to a host that is not local ("vm"), on URLs whose host part is
# local, remote or absent.
POSTGRESQL_QUERIES = [
    "sslmode=disable",
    "sslmode=allow",
    "sslmode=prefer",
    "sslmode=require",
    "sslmode=verify-ca",
    "host=vm",
    "host=vm&sslmode=disable",
    "host=localhost,vm",
    "hostaddr=10.1.2.3",
    "hostaddr=10.1.2.3&host=localhost",
    "service=orders",
    "sslrootcert=/tmp/ca.pem&sslmode=disable",
    "requiressl=0",
    "sslnegotiation=direct",
    "sslcert=/tmp/c.pem&sslkey=/tmp/k.pem",
    "gssencmode=require&sslmode=disable",
]
PYMYSQL_QUERIES = [
    "host=vm",
    f"ssl_ca={ssl.get_default_verify_paths().openssl_cafile}",
    "ssl_check_hostname=false",
    "ssl_capath=/tmp",
    "ssl_cipher=NULL",
]
PYMYSQL_REFUSED = [
    "ssl_disabled=true",
    "ssl_disabled=false",
    "ssl_verify_cert=false",
    "ssl_verify_identity=false",
    "host=vm&ssl_verify_cert=true",
]


def connection_options(url: sa.URL, settings: Settings) -> dict[str, Any]:
    """What the driver receives: the URL's own options, then dynastream's (SQLAlchemy's order)."""
    _, options = url.get_dialect()().create_connect_args(url)
    return {**options, **tls_connect_args(url, settings)}


@pytest.mark.parametrize("query", POSTGRESQL_QUERIES)
@pytest.mark.parametrize(
    "base",
    [
        "postgresql+psycopg://app@db.example.com/app",
        "postgresql+psycopg://app@127.0.0.1/app",
        "postgresql+psycopg://app@/app",
    ],
)
def test_no_postgresql_url_option_gives_an_unverified_connection_to_another_host(
    base: str, query: str
) -> None:
    import psycopg.conninfo

    url = make_url(f"{base}?{query}")
    conninfo = psycopg.conninfo.conninfo_to_dict(
        psycopg.conninfo.make_conninfo("", **connection_options(url, Settings(database_url=str(url))))
    )

    hosts = (conninfo.get("hostaddr") or conninfo.get("host") or "").split(",")
    if all(host in ("", "localhost", "127.0.0.1") for host in hosts) and "service" not in conninfo:
        return  # local: the URL's own options stand
    assert "verify-full" == conninfo["sslmode"]


@pytest.mark.parametrize("query", PYMYSQL_QUERIES)
@pytest.mark.parametrize(
    "base",
    [
        "mysql+pymysql://app@db.example.com/app",
        "mysql+pymysql://app@127.0.0.1/app",
        "mysql+pymysql://app@/app",
        "mariadb+pymysql://app@db.example.com/app",
    ],
)
def test_no_pymysql_url_option_gives_an_unverified_connection_to_another_host(base: str, query: str) -> None:
    import pymysql

    url = make_url(f"{base}?{query}")
    options = connection_options(url, Settings(database_url=str(url)))
    # PyMySQL's own reading of its arguments, without connecting.
    connection = pymysql.connections.Connection(**options, defer_connect=True)

    if connection.host in ("localhost", "127.0.0.1"):
        return  # local: the URL's own options stand
    assert (True, ssl.CERT_REQUIRED, True) == (
        connection.ssl,
        connection.ctx.verify_mode,
        connection.ctx.check_hostname,
    )


@pytest.mark.parametrize("query", PYMYSQL_REFUSED)
@pytest.mark.parametrize(
    "base", ["mysql+pymysql://app@db.example.com/app", "mariadb+pymysql://app@/app?host=vm"]
)
def test_a_pymysql_url_option_that_weakens_tls_to_another_host_is_refused(base: str, query: str) -> None:
    url = make_url(f"{base}{'&' if '?' in base else '?'}{query}")

    with pytest.raises(ConfigurationError, match="DYNASTREAM_TLS=disable") as raised:
        tls_connect_args(url, Settings(database_url=str(url)))

    assert query.rsplit("&", maxsplit=1)[-1].split("=", maxsplit=1)[0] in str(raised.value)


def test_pghost_in_the_environment_is_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example.com")
    url = make_url("postgresql+psycopg://app@/app")

    assert "verify-full" == tls_connect_args(url, Settings(database_url=str(url)))["sslmode"]


def test_a_driver_whose_tls_options_are_unknown_is_refused() -> None:
    url = "mysql+mysqldb://app@db.example.com/app"

    with pytest.raises(ConfigurationError, match="DYNASTREAM_TLS=disable"):
        tls_connect_args(make_url(url), Settings(database_url=url))


def tls_settings(monkeypatch: pytest.MonkeyPatch, url: sa.URL, ca_file: str, *, host: str) -> None:
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url.set(host=host).render_as_string(hide_password=False))
    monkeypatch.setenv("DYNASTREAM_TLS", "verify")
    monkeypatch.setenv("DYNASTREAM_TLS_CA_FILE", ca_file)


def encrypted(connection: sa.Connection) -> bool:
    if connection.dialect.name == "postgresql":
        return bool(
            connection.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar()
        )
    return bool(connection.exec_driver_sql("SHOW STATUS LIKE 'Ssl_cipher'").one()[1])


def test_settings_alone_connect_over_verified_tls(
    server_url: str, tls_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_settings(monkeypatch, make_url(server_url), tls_ca, host="localhost")
    table = orders_table(f"tls_orders_{os.getpid()}")
    app = replicating_app(table)
    engine = app.container.engine()
    table.create(engine)
    app.create_tables()
    try:
        assert {"batchItemFailures": []} == app.lambda_handler(insert_event(3), None)
        with engine.connect() as connection:
            assert encrypted(connection)
        assert 3 == stored(engine, table)
    finally:
        table.drop(engine)
        engine.dispose()


def test_a_certificate_that_does_not_name_the_host_is_refused(
    server_url: str, tls_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test certificate names localhost only; 127.0.0.1 is the same server by another name.
    tls_settings(monkeypatch, make_url(server_url), tls_ca, host="127.0.0.1")
    engine = dynastream.App().container.engine()

    with pytest.raises(sa.exc.OperationalError, match=r"(?i)match|hostname") as raised:
        engine.connect()

    assert not is_transient(raised.value)  # refused for good, not retried


def test_a_certificate_from_another_ca_is_refused(
    server_url: str, tls_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong_ca = os.path.join(os.path.dirname(tls_ca), "wrong-ca.pem")
    tls_settings(monkeypatch, make_url(server_url), wrong_ca, host="localhost")
    engine = dynastream.App().container.engine()

    with pytest.raises(sa.exc.OperationalError, match=r"(?i)certificate verify failed") as raised:
        engine.connect()

    assert not is_transient(raised.value)  # refused for good, not retried


# --- Credentials from AWS --------------------------------------------------------------------------------


@pytest.fixture
def database_user(server_url: str, tls_ca: str) -> Iterator[tuple[sa.URL, str]]:
    """A user of the private database who must give a password; yields its URL (no password) and name."""
    url = make_url(server_url)
    user = f"dynastream_pw_{os.getpid()}"
    if url.get_backend_name() == "postgresql":
        schema = str(url.query["options"]).split("=", 1)[1]
        run(
            server_url,
            f"DROP ROLE IF EXISTS {user}",
            f"CREATE ROLE {user} LOGIN PASSWORD 'first-{PASSWORD}' IN ROLE dynastream_password_auth",
            f'GRANT ALL ON SCHEMA "{schema}" TO {user}',
            f'GRANT ALL ON ALL TABLES IN SCHEMA "{schema}" TO {user}',
        )
    else:
        run(
            server_url,
            f"DROP USER IF EXISTS '{user}'@'%%'",
            f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'first-{PASSWORD}'",
            f"GRANT ALL ON `{url.database}`.* TO '{user}'@'%%'",
        )
    yield url.set(username=user, password=None), user
    if url.get_backend_name() == "postgresql":
        run(server_url, f"DROP OWNED BY {user}", f"DROP ROLE IF EXISTS {user}")
    else:
        run(server_url, f"DROP USER IF EXISTS '{user}'@'%%'")


def set_password(server_url: str, user: str, password: str) -> None:
    if make_url(server_url).get_backend_name() == "postgresql":
        run(server_url, f"ALTER ROLE {user} PASSWORD '{password}'")
    else:
        run(server_url, f"ALTER USER '{user}'@'%%' IDENTIFIED BY '{password}'")


def kill_connections(server_url: str, user: str) -> None:
    if make_url(server_url).get_backend_name() == "postgresql":
        run(server_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{user}'")
    else:
        (ids,) = run(
            server_url, f"SELECT GROUP_CONCAT(id) FROM information_schema.processlist WHERE user = '{user}'"
        )
        run(server_url, *(f"KILL {int(i)}" for i in str(ids or "").split(",") if i))


def test_a_rotated_secret_is_read_again_and_the_connection_retried_once(
    server_url: str,
    database_user: tuple[sa.URL, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from moto import mock_aws

    url, user = database_user
    secret = {"username": user, "password": f"first-{PASSWORD}", "host": url.host, "port": url.port}
    table = orders_table(f"secret_orders_{os.getpid()}")
    with mock_aws():
        import boto3

        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name="prod/orders/db", SecretString=json.dumps(secret))
        # The URL names the driver and database only: the secret gives user, password, host and port.
        monkeypatch.setenv(
            "DYNASTREAM_DATABASE_URL", url.set(username=None, host=None, port=None).render_as_string()
        )
        monkeypatch.setenv("DYNASTREAM_CREDENTIALS", "secrets_manager")
        monkeypatch.setenv("DYNASTREAM_SECRET_ID", "prod/orders/db")
        monkeypatch.setenv("DYNASTREAM_AWS_REGION", "eu-west-1")
        app = replicating_app(table)
        reads: list[object] = []
        credentials = app.container.credentials()
        original_read = credentials._read

        def counted_read() -> DatabaseSecret:
            reads.append(None)
            secret: DatabaseSecret = original_read()
            return secret

        monkeypatch.setattr(credentials, "_read", counted_read)
        engine = app.container.engine()
        # dynastream's and SQLAlchemy's logs at every level. (botocore's own DEBUG log
        # prints response bodies, secrets included: never turn it on in production.)
        caplog.set_level(logging.DEBUG, logger="sqlalchemy")
        with caplog.at_level(logging.DEBUG, logger="dynastream"):
            table.create(engine)
            app.create_tables()
            assert {"batchItemFailures": []} == app.lambda_handler(insert_event(2), None)
            assert 1 == len(reads)

            # Rotation: the secret and the user's password change; the pooled connection goes.
            client.put_secret_value(
                SecretId="prod/orders/db", SecretString=json.dumps(secret | {"password": PASSWORD})
            )
            set_password(server_url, user, PASSWORD)
            kill_connections(server_url, user)

            assert {"batchItemFailures": []} == app.lambda_handler(insert_event(2, start=2), None)
            assert 2 == len(reads)
            assert 4 == stored(engine, table)
        table.drop(engine)
        engine.dispose()
    logged = [r.getMessage() for r in caplog.records if not r.name.endswith(".admin")]
    assert logged
    assert [] == [message for message in logged if PASSWORD in message]
    assert PASSWORD not in repr(app.container.settings()) + repr(engine) + repr(credentials)


def test_a_refused_secret_is_retried_once_only(server_url: str, database_user: tuple[sa.URL, str]) -> None:
    url, user = database_user
    fake = FakeSecrets({"username": user, "password": "wrong-1"}, {"username": user, "password": PASSWORD})
    credentials = SecretsManagerCredentials("prod/orders/db", client=fake)
    engine = create_engine(Settings(database_url=url.render_as_string()), credentials)

    with pytest.raises(sa.exc.OperationalError) as raised:
        engine.connect()

    assert 2 == fake.calls
    assert PASSWORD not in str(raised.value)


class FakeSecrets:
    """A `secretsmanager` client returning each secret value in turn."""

    def __init__(self, *values: dict[str, Any]) -> None:
        self.values = list(values)
        self.calls = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return {"SecretString": json.dumps(value)}


class FakeRds:
    """An `rds` client whose tokens are the passwords the test sets on the server."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.calls: list[tuple[str, int, str]] = []

    def generate_db_auth_token(self, DBHostname: str, Port: int, DBUsername: str) -> str:  # noqa: N803
        self.calls.append((DBHostname, Port, DBUsername))
        return self.tokens[len(self.calls) - 1]


def test_iam_authentication_signs_a_fresh_token_for_each_new_connection(
    server_url: str, database_user: tuple[sa.URL, str], tls_ca: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, user = database_user
    tokens = [f"token-1-{PASSWORD}", f"token-2-{PASSWORD}"]
    set_password(server_url, user, tokens[0])
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url.set(host="localhost").render_as_string())
    monkeypatch.setenv("DYNASTREAM_CREDENTIALS", "iam")
    monkeypatch.setenv("DYNASTREAM_TLS_CA_FILE", tls_ca)  # IAM requires TLS, on a local host too
    fake = FakeRds(tokens)
    table = orders_table(f"iam_orders_{os.getpid()}")
    app = replicating_app(table)
    app.container.credentials.override(providers.Object(IamAuthentication(client=fake)))
    engine = app.container.engine()
    table.create(engine)
    app.create_tables()
    try:
        for n in range(3):  # the pooled connection is reused: no new token
            assert {"batchItemFailures": []} == app.lambda_handler(insert_event(1, start=n), None)
        with engine.connect() as connection:
            assert encrypted(connection)
        assert [("localhost", url.port, user)] == fake.calls

        # 15 minutes on, the first token has expired; the connection is closed.
        set_password(server_url, user, tokens[1])
        kill_connections(server_url, user)

        assert {"batchItemFailures": []} == app.lambda_handler(insert_event(1, start=3), None)
        assert 2 == len(fake.calls)
        assert 4 == stored(engine, table)
    finally:
        table.drop(engine)
        engine.dispose()


def test_a_secret_without_the_rds_shape_names_the_field_and_not_the_value() -> None:
    with pytest.raises(ConfigurationError, match="'password'") as raised:
        DatabaseSecret.from_json(json.dumps({"username": "app", "password": 12345678}), "prod/db")

    assert "12345678" not in str(raised.value)


def test_a_secret_repr_never_shows_its_password() -> None:
    secret = DatabaseSecret.from_json(json.dumps({"username": "app", "password": PASSWORD}), "prod/db")

    assert PASSWORD not in repr(secret)


def test_a_secret_alone_gives_driver_host_and_database() -> None:
    fake = FakeSecrets(
        {
            "username": "app",
            "password": PASSWORD,
            "engine": "postgres",
            "host": "db.example.com",
            "port": 5432,
            "dbname": "orders",
        }
    )
    credentials = SecretsManagerCredentials("prod/db", client=fake)

    settings = Settings(credentials="secrets_manager", secret_id="prod/db")  # noqa: S106 - a secret's name

    engine = create_engine(settings, credentials)

    assert "postgresql+psycopg://app@db.example.com:5432/orders" == engine.url.render_as_string(
        hide_password=False
    )


def test_the_url_host_wins_over_the_secret_for_rds_proxy() -> None:
    fake = FakeSecrets(
        {"username": "app", "password": PASSWORD, "host": "instance.example.com", "dbname": "orders"}
    )
    credentials = SecretsManagerCredentials("prod/db", client=fake)
    settings = Settings(
        database_url="mysql+pymysql://proxy.example.com",
        credentials="secrets_manager",
        secret_id="prod/db",  # noqa: S106 - a secret's name
        pool="null",
    )

    engine = create_engine(settings, credentials)

    assert "mysql+pymysql://app@proxy.example.com/orders" == engine.url.render_as_string(hide_password=False)


def test_iam_authentication_needs_a_user_and_host() -> None:
    with pytest.raises(ConfigurationError, match="DYNASTREAM_DATABASE_URL"):
        create_engine(
            Settings(database_url="postgresql+psycopg:///app", credentials="iam"), IamAuthentication()
        )


# --- The example handler, configured by DYNASTREAM_* variables alone -------------------------------------

EXAMPLE_OVER_TLS = """
import json
import dynastream
from examples.orders import handler
from examples.orders.models import Base

engine = handler.app.container.engine()
Base.metadata.create_all(engine)
handler.app.create_tables()
response = handler.lambda_handler(dynastream.load_event("examples/orders/events/orders.json"), None)
with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        encrypted = bool(connection.exec_driver_sql(sql).scalar())
    else:
        encrypted = bool(connection.exec_driver_sql("SHOW STATUS LIKE 'Ssl_cipher'").one()[1])
    rows = connection.exec_driver_sql("SELECT count(*) FROM orders").scalar()
Base.metadata.drop_all(engine)
print(json.dumps({"response": response, "encrypted": encrypted, "rows": rows}))
"""


def run_example(url: sa.URL, ca_file: str, *, host: str) -> subprocess.CompletedProcess[str]:
    """The Orders example's handler in a fresh process, as Lambda would load it."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("DYNASTREAM_")}
    environment.update(
        DYNASTREAM_DATABASE_URL=url.set(host=host).render_as_string(hide_password=False),
        DYNASTREAM_TLS="verify",
        DYNASTREAM_TLS_CA_FILE=ca_file,
    )
    return subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", EXAMPLE_OVER_TLS],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_example_handler_connects_over_verified_tls_with_settings_alone(
    server_url: str, tls_ca: str
) -> None:
    done = run_example(make_url(server_url), tls_ca, host="localhost")

    assert 0 == done.returncode, done.stderr
    assert {"response": {"batchItemFailures": []}, "encrypted": True, "rows": 2} == json.loads(done.stdout)


def test_the_example_handler_refuses_a_server_whose_certificate_does_not_match(
    server_url: str, tls_ca: str
) -> None:
    done = run_example(make_url(server_url), tls_ca, host="127.0.0.1")  # the certificate names localhost

    assert 0 != done.returncode
    assert re.search(r"(?i)does not match|hostname|certificate", done.stderr), done.stderr
    assert "OperationalError" in done.stderr
