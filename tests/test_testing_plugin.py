"""
The pytest plugin: its fixtures in a user's test run, with and without `dynastream_app` configured.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

USER_APP = """
import sqlalchemy as sa
from dependency_injector import providers

import dynastream

metadata = sa.MetaData()
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", dynastream.ExactString(20), primary_key=True),
    sa.Column("total", sa.Numeric(10, 2)),
    dynastream.sequence_column(),
)
audit = sa.Table("audit", metadata, sa.Column("event_id", dynastream.ExactString(40), primary_key=True))

app = dynastream.App(database_url="sqlite:///never-used.sqlite")
app.replicate("Orders", into=orders)


@app.handler("Orders", exactly_once=True)
def record_audit(records, uow):
    uow.connection().execute(audit.insert(), [{"event_id": r.event_id} for r in records])


other = dynastream.App(database_url="sqlite:///never-used.sqlite")
"""

USER_TESTS = """
from decimal import Decimal

import sqlalchemy as sa

import userapp


def test_replicates_and_runs_the_custom_handler(dynastream_app, stream_events, lambda_context):
    assert dynastream_app is userapp.app
    engine = dynastream_app.container.engine()
    userapp.audit.create(engine)  # a custom handler's own table is the user's to create
    event = stream_events.inserts("Orders", [{"id": "o-1", "total": Decimal("9.50")}])

    assert {"batchItemFailures": []} == dynastream_app.lambda_handler(event, lambda_context)

    with engine.connect() as connection:
        assert [("o-1", Decimal("9.50"))] == connection.execute(
            sa.select(userapp.orders.c.id, userapp.orders.c.total)
        ).all()
        assert 1 == connection.scalar(sa.select(sa.func.count()).select_from(userapp.audit))


def test_the_engine_override_is_undone_after_the_test():
    assert not userapp.app.container.engine.overridden
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(userapp=USER_APP)
    pytester.syspathinsert()
    return pytester


def test_fixtures_give_an_app_on_a_fresh_sqlite_database(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import sqlalchemy as sa

        import dynastream
        from dynastream.testing import EventFactory, LambdaContext


        def test_fixtures(dynastream_app, dynastream_database_url, stream_events, lambda_context, tmp_path):
            assert isinstance(dynastream_app, dynastream.App)
            assert dynastream_database_url.startswith(f"sqlite:///{tmp_path}")
            engine = dynastream_app.container.engine()
            assert str(engine.url) == dynastream_database_url
            tables = set(sa.inspect(engine).get_table_names())
            assert {"dynastream_tombstones", "dynastream_applied_events"} <= tables
            assert isinstance(stream_events, EventFactory)
            assert isinstance(lambda_context, LambdaContext)
            assert lambda_context.get_remaining_time_in_millis() > 250_000

            seen = []
            dynastream_app.register("Orders", lambda records, uow: seen.extend(r.keys["id"] for r in records))
            event = stream_events.inserts("Orders", [{"id": "o-1"}])
            assert {"batchItemFailures": []} == dynastream_app.lambda_handler(event, lambda_context)
            assert ["o-1"] == seen


        def test_leaves_a_table(dynastream_app):
            with dynastream_app.container.engine().begin() as connection:
                connection.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")


        def test_each_test_gets_its_own_database(dynastream_app):
            assert "scratch" not in sa.inspect(dynastream_app.container.engine()).get_table_names()
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=3)


def test_the_ini_option_loads_the_users_app_and_points_it_at_the_test_database(
    user_project: pytest.Pytester,
) -> None:
    user_project.makeini("[pytest]\ndynastream_app = userapp:app\n")
    user_project.makepyfile(test_user=USER_TESTS)

    result = user_project.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)


def test_the_marker_names_an_app_for_one_module(user_project: pytest.Pytester) -> None:
    user_project.makeini("[pytest]\ndynastream_app = userapp:other\n")
    user_project.makepyfile(
        test_user="import pytest\n\npytestmark = pytest.mark.dynastream_app('userapp:app')\n" + USER_TESTS
    )

    result = user_project.runpytest("-p", "no:cacheprovider", "--strict-markers")

    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("userapp", "must be 'module:attribute'"),
        ("no_such_module:app", "cannot import 'no_such_module'"),
        ("userapp:missing", "'userapp' has no 'missing'"),
        ("userapp:orders", "is a Table, not a dynastream.App"),
    ],
)
def test_a_wrong_app_setting_is_reported(user_project: pytest.Pytester, setting: str, message: str) -> None:
    user_project.makeini(f"[pytest]\ndynastream_app = {setting}\n")
    user_project.makepyfile(test_user="def test_app(dynastream_app):\n    pass\n")

    result = user_project.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])


def test_the_plugin_is_registered_as_an_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_nothing():\n    pass\n")

    result = pytester.runpytest("-p", "no:cacheprovider", "--trace-config")

    result.stdout.fnmatch_lines(["*dynastream.testing.plugin*"])


def test_importing_the_plugin_imports_no_orm_driver_or_aws_sdk() -> None:
    code = textwrap.dedent(
        """
        import sys
        import dynastream
        before = set(sys.modules)
        import dynastream.testing.plugin
        print(" ".join(sorted(set(sys.modules) - before)))
        """
    )
    command = [sys.executable, "-c", code]

    added = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()  # noqa: S603 - fixed code

    heavy = ("sqlalchemy", "boto3", "botocore", "moto", "psycopg", "pymysql", "hypothesis")
    assert [] == [name for name in added if name.split(".")[0] in heavy]
    assert "dynastream.testing.plugin" in added
