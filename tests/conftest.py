"""
Shared fixtures: one `database_url` fixture runs a test on every engine.

SQLite always runs. PostgreSQL and MariaDB/MySQL run when
`DYNASTREAM_TEST_POSTGRES_URL` / `DYNASTREAM_TEST_MYSQL_URL` are set; under
`CI=true` a missing URL fails the test instead of skipping it. Each pytest-xdist
worker gets its own PostgreSQL schema and MySQL database.

`DYNASTREAM_BULK_PATH` chooses replication's bulk path, as in production (read
by `Settings`); with `staging`, MySQL URLs allow `LOAD DATA LOCAL INFILE`
(`local_infile=1`), which that path needs (`nox -s tests_staging`).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# Property tests here talk to databases, whose timing says nothing about correctness:
# no per-example deadline (a loaded machine or a busy server must not fail them).
hypothesis.settings.register_profile("dynastream", deadline=None)
hypothesis.settings.load_profile("dynastream")

# "mariadb" is the MySQL server again, through a `mariadb+pymysql://` URL, whose
# dialect is named "mariadb": every MySQL-family protection must hold for both spellings.
ENGINES = ["sqlite", "postgresql", "mysql", "mariadb"]
URL_VARIABLES = {
    "postgresql": "DYNASTREAM_TEST_POSTGRES_URL",
    "mysql": "DYNASTREAM_TEST_MYSQL_URL",
    "mariadb": "DYNASTREAM_TEST_MYSQL_URL",
}


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _server_url(name: str) -> str:
    variable = URL_VARIABLES[name]
    url = os.environ.get(variable)
    if not url:
        reason = f"{variable} is not set"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: under CI=true the {name} tests must run", pytrace=False)
        pytest.skip(reason)
    if name == "mariadb":
        parsed = make_url(url)
        url = parsed.set(drivername=f"mariadb+{parsed.get_driver_name()}").render_as_string(
            hide_password=False
        )
    if (
        name in ("mysql", "mariadb")
        and os.environ.get("DYNASTREAM_BULK_PATH", "").strip().lower() == "staging"
    ):
        # The staging path loads rows with LOAD DATA LOCAL INFILE, which the client must allow.
        url = make_url(url).update_query_dict({"local_infile": "1"}).render_as_string(hide_password=False)
    return url


@pytest.fixture(scope="session")
def _server_databases() -> Iterator[dict[str, str]]:
    created: dict[str, str] = {}
    yield created
    for name, url in created.items():  # leave nothing behind on the servers
        _drop_private(name, url)


def _private_name(engine: str = "") -> str:
    # Unique per pytest run as well as per xdist worker: runs side by side (two
    # terminals, CI next to a developer) must not drop each other's tables.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8] or f"p{os.getpid()}"
    suffix = "_mariadb" if engine == "mariadb" else ""  # the same server as "mysql": a database of its own
    return f"dynastream_test_{_worker()}_{run}{suffix}"


def _drop_private(name: str, url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(
        parsed.set(query={}) if name == "postgresql" else parsed.set(database=None),
        poolclass=sa.pool.NullPool,
    )
    private = _private_name(name)
    try:
        with admin.begin() as connection:
            if name == "postgresql":
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{private}" CASCADE')
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{private}`")
    except sa.exc.DBAPIError:
        pass  # a server gone at the end of the run (the reliability suite restarts them) keeps it
    finally:
        admin.dispose()


def _isolated_url(name: str, cache: dict[str, str]) -> str:
    """Return a URL private to this xdist worker, creating its schema or database."""
    if name in cache:
        return cache[name]
    base = make_url(_server_url(name))
    private = _private_name(name)
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            if name == "postgresql":
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{private}" CASCADE')
                connection.exec_driver_sql(f'CREATE SCHEMA "{private}"')
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{private}`")
                connection.exec_driver_sql(f"CREATE DATABASE `{private}` CHARACTER SET utf8mb4")
    finally:
        admin.dispose()
    if name == "postgresql":
        url = base.update_query_dict({"options": f"-csearch_path={private}"})
    else:
        url = base.set(database=private)
    cache[name] = url.render_as_string(hide_password=False)
    return cache[name]


@pytest.fixture(params=ENGINES)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _server_databases: dict[str, str],
) -> str:
    """A URL of an empty database, once per engine."""
    name: str = request.param
    if name == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    return _isolated_url(name, _server_databases)


def _engine_for(url: str) -> Iterator[sa.Engine]:
    from dynastream import Settings
    from dynastream._engine import create_engine

    engine = create_engine(Settings(database_url=url))
    yield engine
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine built the way dynastream builds it, with no tables left behind."""
    yield from _engine_for(database_url)


@pytest.fixture(params=[name for name in ENGINES if name != "sqlite"])
def server_engine(request: pytest.FixtureRequest, _server_databases: dict[str, str]) -> Iterator[sa.Engine]:
    """The same, on the database servers only (for tests of concurrent transactions)."""
    yield from _engine_for(_isolated_url(request.param, _server_databases))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server (DynamoDB and DynamoDB Streams) for the whole session."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    botocore makes each of its retry attempts at once, without backing off between them.

    At an endpoint that refuses connections (`http://127.0.0.1:9`) its standard retry mode
    would sleep some 15 s, with jitter, before the error a test is about; the attempts and
    the error are the same without the sleeping.
    """
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def aws_clients(moto_endpoint: str) -> Any:
    """`dynastream.AwsClients` pointed at the moto server."""
    from dynastream import AwsClients

    return AwsClients(endpoint_url=moto_endpoint, region_name="us-east-1")


_table_numbers = itertools.count()


@pytest.fixture
def source_table(aws_clients: Any) -> str:
    """
    A new DynamoDB table (string key `id`) with a NEW_AND_OLD_IMAGES stream, on the moto server.

    Its name is unique per test and per xdist worker, so tests never share a stream.
    """
    name = f"Source-{_worker()}-{next(_table_numbers)}"
    aws_clients.dynamodb().create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return name


REPLAY_APP = """
import os

from tests.apps.runner_app import build_app

app = build_app(os.environ["RUNNER_TABLE"])
"""


@pytest.fixture
def replay_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An importable `replay_app:app` on a SQLite file, for the table `name`."""
    import dynastream
    from tests.apps.runner_app import metadata

    def make(name: str) -> sa.Engine:
        url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
        (tmp_path / "replay_app.py").write_text(REPLAY_APP)
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("RUNNER_TABLE", name)
        monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url)
        monkeypatch.delitem(__import__("sys").modules, "replay_app", raising=False)
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        dynastream.App(engine=engine).create_tables()
        return engine

    return make
