"""
The staging bulk path: chosen as configured, created once per connection, exact, and clean after a failure.

The rest of the replication suite runs on it too under `DYNASTREAM_BULK_PATH=staging`
(`nox -s tests_staging`); the tests here choose each path themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

import dynastream
from dynastream import ConfigurationError, Settings
from dynastream._engine import create_engine
from dynastream._settings import requested_bulk_path
from tests.conftest import _engine_for, _isolated_url

metadata = sa.MetaData()
items = sa.Table(
    "staging_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(40), primary_key=True),
    sa.Column("label", sa.String(200)),
    sa.Column("body", sa.Text),
    sa.Column("amount", sa.Numeric(38, 0)),
    sa.Column("fraction", sa.Numeric(38, 10)),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    sa.Column("flag", sa.Boolean),
    sa.Column("small", sa.Integer),
    dynastream.sequence_column(),
    sa.CheckConstraint("small < 1000", name="staging_items_small"),
)
STAGE = re.compile(r"dynastream_stage_[0-9a-f]{16}")
FIRST = 10**25


def url_of(engine: sa.Engine, **query: str) -> str:
    return engine.url.update_query_dict(query).render_as_string(hide_password=False)


@contextlib.contextmanager
def engine_at(url: str, **settings: Any) -> Iterator[sa.Engine]:
    """An engine built as dynastream builds it."""
    engine = create_engine(Settings(database_url=url, **settings))
    try:
        yield engine
    finally:
        engine.dispose()


def replicating(engine: sa.Engine, bulk_path: str, **settings: Any) -> dynastream.App:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    configured = Settings(bulk_path=bulk_path, **settings)  # type: ignore[arg-type]
    app.container.settings.override(providers.Object(configured))
    app.create_tables()
    app.replicate("Items", into=items, on_poison=settings.get("on_poison"))
    return app


def change(n: int, sequence: int | None = None, **values: Any) -> dict[str, Any]:
    """A MODIFY of item `k<n>`, DynamoDB-typed by `dynastream.testing.EventFactory`."""
    from dynastream.testing import EventFactory

    item = {"pk": f"k{n}", **values}
    return EventFactory(keys=["pk"], view_type="NEW_IMAGE").modify(
        "Items", item, sequence_number=FIRST + (n if sequence is None else sequence)
    )


@contextlib.contextmanager
def statements_of(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement sent through SQLAlchemy meanwhile (not COPY's rows, which psycopg streams)."""
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)


def staged(statements: list[str]) -> bool:
    return any(STAGE.search(statement) for statement in statements)


def creates(statements: list[str]) -> int:
    return sum(statement.startswith("CREATE TEMPORARY TABLE") for statement in statements)


def contents(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Every row, with whether `doc` is SQL NULL (not JSON null)."""
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.select(*items.columns, items.c.doc.is_(None)).order_by(items.c.pk)
            )
        ]


def clear(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(items.delete())
        connection.execute(dynastream.schema.tombstones.delete())


@pytest.fixture
def staging_url(server_engine: sa.Engine) -> str:
    """The server engine's database, with LOAD DATA LOCAL allowed on MySQL and MariaDB."""
    mysql = server_engine.dialect.name in ("mysql", "mariadb")
    return url_of(server_engine, local_infile="1") if mysql else url_of(server_engine)


# --- choosing the path ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bulk_path", "pool", "expected"),
    [
        ("auto", "queue", "auto"),
        ("auto", "null", "statements"),
        ("staging", "null", "staging"),
        ("statements", "queue", "statements"),
    ],
)
def test_auto_asks_for_statements_under_pool_null(bulk_path: str, pool: str, expected: str) -> None:
    settings = Settings(bulk_path=bulk_path, pool=pool)  # type: ignore[arg-type]

    assert expected == requested_bulk_path(settings)


def test_auto_takes_statements_under_pool_null(server_engine: sa.Engine) -> None:
    """`DYNASTREAM_POOL=null` says so, and so does an engine of the application's own with a `NullPool`."""
    mysql = server_engine.dialect.name != "postgresql"
    url = url_of(server_engine, local_infile="1") if mysql else url_of(server_engine)
    with engine_at(url, pool="null") as engine:
        configured = replicating(engine, "auto", pool="null")
        unpooled = replicating(engine, "auto")
        with statements_of(engine) as seen:
            results = [
                configured.dispatch({"Records": [change(1, label="a")]}),
                unpooled.dispatch({"Records": [change(2, label="b")]}),
            ]

    assert ([None, None], False) == ([result.failure for result in results], staged(seen))


@pytest.fixture
def postgresql_engine(_server_databases: dict[str, str]) -> Iterator[sa.Engine]:
    """An engine on the PostgreSQL server only (its own choice of bulk path)."""
    yield from _engine_for(_isolated_url("postgresql", _server_databases))


@pytest.fixture(params=["mysql", "mariadb"])
def mysql_engine(request: pytest.FixtureRequest, _server_databases: dict[str, str]) -> Iterator[sa.Engine]:
    """An engine on the MySQL-protocol server, through both dialects."""
    yield from _engine_for(_isolated_url(request.param, _server_databases))


def test_auto_stages_on_postgresql(postgresql_engine: sa.Engine) -> None:
    app = replicating(postgresql_engine, "auto")

    with statements_of(postgresql_engine) as seen:
        app.dispatch({"Records": [change(1, label="a")]})

    assert staged(seen)


@pytest.mark.parametrize(("local_infile", "expected"), [("0", False), ("1", True)])
def test_auto_stages_on_mysql_only_where_the_client_allows_load_data_local(
    mysql_engine: sa.Engine, local_infile: str, expected: bool
) -> None:
    with engine_at(url_of(mysql_engine, local_infile=local_infile)) as engine:
        app = replicating(engine, "auto")
        with statements_of(engine) as seen:
            result = app.dispatch({"Records": [change(1, label="a")]})

        assert (None, expected) == (result.failure, staged(seen))
        assert [("k1", "a")] == [row[:2] for row in contents(engine)]


def test_staging_without_load_data_local_is_a_configuration_error_before_any_row(
    mysql_engine: sa.Engine,
) -> None:
    with engine_at(url_of(mysql_engine, local_infile="0")) as engine:
        app = replicating(engine, "staging", on_poison="quarantine")
        result = app.dispatch({"Records": [change(1, label="a"), change(2, label="b")]})

        error = result.failure and result.failure.error
        assert isinstance(error, ConfigurationError)
        assert "local_infile=1" in str(error)
        assert (0, (), []) == (result.applied, result.quarantined, contents(engine))


def test_staging_on_sqlite_takes_statements(tmp_path: Any) -> None:
    with engine_at(f"sqlite:///{tmp_path / 'staging.sqlite'}") as engine:
        app = replicating(engine, "staging")
        with statements_of(engine) as seen:
            result = app.dispatch({"Records": [change(1, label="a")]})

        assert (None, False) == (result.failure, staged(seen))
        assert [("k1", "a")] == [row[:2] for row in contents(engine)]


# --- the staging table -----------------------------------------------------------------------


def test_the_staging_table_is_created_once_per_connection(staging_url: str) -> None:
    with engine_at(staging_url) as engine:
        app = replicating(engine, "staging")
        with statements_of(engine) as seen:
            for n in range(3):
                app.dispatch({"Records": [change(n, label="a"), change(n + 10, label="b")]})
        once = creates(seen)
        engine.dispose()  # the next batch has a new connection, which creates its own
        with statements_of(engine) as seen:
            app.dispatch({"Records": [change(20, label="c")]})

        assert (1, 1) == (once, creates(seen))
        assert 7 == len(contents(engine))


def test_a_batch_whose_first_attempt_fails_keeps_its_staging_table_and_no_rows(staging_url: str) -> None:
    """On PostgreSQL the rollback takes the table it created: the next chunk creates it again."""
    with engine_at(staging_url) as engine:
        app = replicating(engine, "staging", on_poison="quarantine")
        # The CHECK constraint fails in the upsert, after the chunk was staged.
        batch = [change(1, label="a"), change(2, small=5000), change(3, label="c")]
        left: list[int] = []

        def count_staged(connection: sa.Connection, _settled: int) -> None:
            (stage,) = {name for statement in seen for name in STAGE.findall(statement)}
            prefix = "pg_temp." if connection.dialect.name == "postgresql" else ""
            left.append(connection.exec_driver_sql(f"SELECT count(*) FROM {prefix}{stage}").scalar_one())

        with statements_of(engine) as seen:
            result = app.dispatch({"Records": batch}, before_commit=count_staged)
            later = app.dispatch({"Records": [change(4, label="d")]})

        assert [1] == [failure.index for failure in result.quarantined]
        assert (None, [0]) == (later.failure, left)
        assert ["k1", "k3", "k4"] == [row[0] for row in contents(engine)]


@pytest.mark.parametrize(
    ("event", "statement"),
    [
        # The connection dies after the item locks: the load is the first to meet it.
        ("after_cursor_execute", "INSERT INTO dynastream_locks"),
        # It dies before the upsert from the staging table: the rollback meets it.
        ("before_cursor_execute", "INSERT INTO staging_items"),
    ],
)
def test_a_connection_lost_on_the_staging_path_is_replaced_and_the_batch_applied(
    staging_url: str, event: str, statement: str
) -> None:
    with engine_at(staging_url) as engine:
        # The first batch creates the staging table: its rollback must forget it, on a dead connection.
        app = replicating(engine, "staging")
        admin = sa.create_engine(staging_url, poolclass=sa.pool.NullPool)
        armed = [True]

        def kill(connection: sa.Connection, _cursor: Any, sql: str, *_: Any) -> None:
            if not (armed[0] and sql.startswith(statement)):
                return
            armed[0] = False
            driver = connection.connection.dbapi_connection
            with admin.connect() as other:
                if connection.dialect.name == "postgresql":
                    other.exec_driver_sql(f"SELECT pg_terminate_backend({driver.info.backend_pid})")  # type: ignore[union-attr]
                else:
                    other.exec_driver_sql(f"KILL {driver.thread_id()}")  # type: ignore[union-attr]

        sa.event.listen(engine, event, kill)
        try:
            result = app.dispatch({"Records": [change(1, label="a"), change(2, label="b")]})
        finally:
            sa.event.remove(engine, event, kill)
            admin.dispose()

        assert (None, False) == (result.failure, armed[0])
        assert ["a", "b"] == [row[1] for row in contents(engine)]


@contextlib.contextmanager
def without_temporary_tables(server_engine: sa.Engine) -> Iterator[str]:
    """
    The URL of a user who may not create temporary tables, in a database with the replicated tables.

    PostgreSQL grants TEMPORARY on a database to PUBLIC: it is revoked on a database of
    its own. MySQL and MariaDB grant CREATE TEMPORARY TABLES only to whom it is granted.
    """
    url = make_url(url_of(server_engine, local_infile="1"))
    user = f"dynastream_no_temp_{os.getpid()}"
    postgresql = server_engine.dialect.name == "postgresql"
    database = f"dynastream_no_temp_{os.getpid()}" if postgresql else url.database
    admin = sa.create_engine(url.set(query={}) if postgresql else url, poolclass=sa.pool.NullPool)
    quoted = f'"{user}"' if postgresql else f"'{user}'@'%%'"
    with admin.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql(f"DROP USER IF EXISTS {quoted}")
        if postgresql:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}"')
            connection.exec_driver_sql(f'CREATE DATABASE "{database}"')
            connection.exec_driver_sql(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
            connection.exec_driver_sql(f"CREATE USER {quoted}")
        else:
            connection.exec_driver_sql(f"CREATE USER {quoted}")
    owner = sa.create_engine(
        url.set(database=database, query={}) if postgresql else url, poolclass=sa.pool.NullPool
    )
    metadata.create_all(owner)
    dynastream.App(engine=owner).create_tables()
    with owner.begin() as connection:
        if postgresql:
            connection.exec_driver_sql(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}"
            )
        else:
            connection.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{database}`.* TO {quoted}")
    owner.dispose()
    try:
        yield url.set(
            username=user, password=None, database=database, query={} if postgresql else url.query
        ).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            if postgresql:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            connection.exec_driver_sql(f"DROP USER IF EXISTS {quoted}")
        admin.dispose()


def test_a_user_who_may_not_create_temporary_tables_gets_statements_or_an_error(
    server_engine: sa.Engine,
) -> None:
    with without_temporary_tables(server_engine) as url, engine_at(url) as engine:
        refused = replicating(engine, "staging").dispatch({"Records": [change(1, label="a")]})
        with statements_of(engine) as seen:
            auto = replicating(engine, "auto").dispatch({"Records": [change(2, label="b")]})

        error = refused.failure and refused.failure.error
        assert isinstance(error, ConfigurationError)
        assert "may not create temporary tables" in str(error)
        assert (None, False) == (auto.failure, staged(seen))
        assert [("k2", "b")] == [row[:2] for row in contents(engine)]


# --- exact values ----------------------------------------------------------------------------

AWKWARD_TEXTS = [
    "tab\there",
    "line\nbreak",
    "carriage\r\nreturn",
    "back\\slash\\",
    "\\N",
    "\\",
    "NULL",
    "\\t not a tab, \\n not a newline",
    "",
    " ",
    "non-BMP \U0001d518 \U0001f389",
    "quote ' \" ` and %s %(x)s",
]


def awkward_items(dialect: str) -> list[dict[str, Any]]:
    texts = [*AWKWARD_TEXTS, "NUL \x00 in text"] if dialect != "postgresql" else AWKWARD_TEXTS
    found = []
    for n, text in enumerate(texts):
        found.append(
            {
                "label": text[:200],
                "body": text * 3,
                "amount": Decimal("12345678901234567890123456789012345678") * (-1 if n % 2 else 1),
                "fraction": Decimal("1234567890123456789012345678.0123456789"),
                "blob": bytes([0, 9, 10, 13, 92, 78, 255]) + text.encode(),
                "doc": {
                    "text": text.replace("\x00", ""),
                    "nested": [{"deeper": text.replace("\x00", "")}, None],
                },
                "flag": n % 2 == 0,
                "small": n,
            }
        )
    found.append({"label": "SQL NULL everywhere"})  # doc missing: SQL NULL, not JSON null
    found.append({"label": "JSON null member", "doc": {"value": None}})
    return found


def test_awkward_values_round_trip_exactly_on_both_paths(staging_url: str) -> None:
    with engine_at(staging_url) as engine:
        dialect = "postgresql" if engine.dialect.name == "postgresql" else "mysql"
        event = {"Records": [change(n, **values) for n, values in enumerate(awkward_items(dialect))]}
        found = {}
        for bulk_path in ("statements", "staging"):
            app = replicating(engine, bulk_path)
            clear(engine)
            with statements_of(engine) as seen:
                result = app.dispatch(event)
            assert (None, bulk_path == "staging") == (result.failure, staged(seen))
            found[bulk_path] = contents(engine)

    expected = awkward_items(dialect)
    rows = found["staging"]
    assert found["statements"] == rows
    assert len(expected) == len(rows)
    for values, row in zip(expected, sorted(rows, key=lambda row: int(row[0][1:])), strict=True):
        stored = dict(zip([c.name for c in items.columns], row, strict=False))
        assert {name: stored[name] for name in values} == values
        assert ("doc" not in values) == row[-1]  # SQL NULL, never JSON null


def test_a_batch_of_several_chunks_is_staged_whole(staging_url: str) -> None:
    with engine_at(staging_url) as engine:
        app = replicating(engine, "staging")
        records = [change(n, label=f"v{n}\t", amount=Decimal(n)) for n in range(4_500)]
        result = app.dispatch({"Records": records})

        assert (None, 4_500) == (result.failure, result.applied)
        expected = sorted((f"k{n}", f"v{n}\t", Decimal(n)) for n in range(4_500))
        assert expected == sorted((row[0], row[1], row[3]) for row in contents(engine))
