"""
Which database errors are retried, and how.
"""

from __future__ import annotations

from typing import Any

import psycopg.errors
import pymysql.err
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from dynastream._retry import is_read_only, is_transient, retry_transient


@pytest.mark.parametrize(
    "driver_error",
    [
        pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
        pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.SerializationFailure("could not serialize access"),
    ],
    ids=["mysql-deadlock", "mysql-lock-wait", "pg-deadlock", "pg-serialization"],
)
def test_deadlocks_lock_waits_and_serialization_failures_are_transient(driver_error: Exception) -> None:
    assert is_transient(OperationalError("INSERT ...", {}, driver_error))


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT ...", {}, pymysql.err.IntegrityError(1062, "Duplicate entry")),
        IntegrityError("INSERT ...", {}, psycopg.errors.UniqueViolation("duplicate key")),
        ValueError("a handler's own error"),
    ],
    ids=["mysql-duplicate", "pg-unique", "plain"],
)
def test_record_level_errors_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_transient_errors_are_retried_until_success() -> None:
    outcomes = [OperationalError("x", {}, pymysql.err.OperationalError(1213, "deadlock")), None]
    delays: list[float] = []

    def work() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "done"

    assert "done" == retry_transient(work, sleep=delays.append)
    assert 1 == len(delays)
    assert 0 <= delays[0] <= 0.05


def test_other_errors_are_raised_at_once() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise ValueError("not transient")

    with pytest.raises(ValueError, match="not transient"):
        retry_transient(work, sleep=lambda _: None)
    assert [1] == calls


def test_retries_stop_after_the_last_attempt() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise OperationalError("x", {}, psycopg.errors.DeadlockDetected("deadlock"))

    with pytest.raises(OperationalError):
        retry_transient(work, attempts=3, sleep=lambda _: None)
    assert 3 == len(calls)


@pytest.mark.parametrize(
    "driver_error",
    [
        pymysql.err.OperationalError(1290, "The MySQL server is running with the --read-only option"),
        pymysql.err.OperationalError(1836, "Running in read-only mode"),
        psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
    ],
    ids=["mysql-read-only-option", "mysql-read-only-mode", "pg-read-only"],
)
def test_read_only_errors_after_a_failover_are_transient_and_need_a_new_connection(
    driver_error: Exception,
) -> None:
    error = OperationalError("INSERT ...", {}, driver_error)

    assert (True, True) == (is_transient(error), is_read_only(error))


def test_a_writer_turned_reader_is_left_for_a_new_connection(server_engine: sa.Engine) -> None:
    """The first attempt finds its connection read-only (as after a failover); the retry gets another."""
    import dynastream
    from tests.builders import insert_event

    rows = sa.Table(
        "failover_rows", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True, autoincrement=False)
    )
    rows.create(server_engine)
    app = dynastream.App(engine=server_engine)
    connections: list[int] = []

    @app.handler("Orders")
    def write(records: Any, uow: dynastream.UnitOfWork) -> None:
        connection = uow.connection()
        connections.append(id(connection.connection.dbapi_connection))
        if len(connections) == 1:  # this session's transactions are now read-only
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            else:
                connection.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        connection.execute(rows.insert(), [{"n": n} for n in range(1, len(records) + 1)])

    response = app.lambda_handler(insert_event(3), None)

    assert {"batchItemFailures": []} == response
    assert 2 == len(connections)
    assert connections[0] != connections[1]
    with server_engine.connect() as connection:
        assert [1, 2, 3] == sorted(connection.scalars(sa.select(rows.c.n)))


class ShortContext:
    """A Lambda context with a fixed time left."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_statements_are_bounded_by_the_time_left(server_engine: sa.Engine) -> None:
    """With 10.5 s left and a 10 s margin, a 3-second statement is cut off, and reported."""
    import dynastream
    from tests.builders import FIRST_SEQUENCE_NUMBER, insert_event

    app = dynastream.App(engine=server_engine)

    @app.handler("Orders")
    def slow(records: Any, uow: dynastream.UnitOfWork) -> None:
        sleep = "SELECT pg_sleep(3)" if uow.dialect.name == "postgresql" else "SELECT SLEEP(3)"
        uow.connection().exec_driver_sql(sleep)

    result = app.dispatch(insert_event(1), ShortContext(10_500))

    assert [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER)}] == result.response()["batchItemFailures"]
    error = result.failure and result.failure.error
    assert isinstance(error, sa.exc.DBAPIError)
    # The session is back to the server's defaults for the next invocation.
    with server_engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            assert "0" == connection.exec_driver_sql("SHOW statement_timeout").scalar()
        else:
            assert 0 == connection.exec_driver_sql("SELECT @@max_statement_time").scalar()


@pytest.mark.parametrize(
    "driver_error",
    [
        psycopg.OperationalError(
            "connection failed: connection to server at 127.0.0.1 failed: Connection refused"
        ),
        psycopg.errors.CannotConnectNow("the database system is starting up"),
        pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1'"),
    ],
    ids=["pg-refused", "pg-starting-up", "mysql-cannot-connect"],
)
def test_a_server_that_cannot_be_reached_yet_is_transient(driver_error: Exception) -> None:
    error = OperationalError(None, None, driver_error)  # raised while connecting: no statement

    assert is_transient(error)


@pytest.mark.parametrize(
    "driver_error",
    [
        psycopg.errors.InvalidPassword("password authentication failed for user"),
        psycopg.errors.InvalidCatalogName('database "nope" does not exist'),
        pymysql.err.OperationalError(1045, "Access denied for user"),
    ],
    ids=["pg-password", "pg-no-database", "mysql-access-denied"],
)
def test_a_refused_connection_is_not_transient(driver_error: Exception) -> None:
    assert not is_transient(OperationalError(None, None, driver_error))


def test_retries_ride_out_a_few_seconds_at_most() -> None:
    delays: list[float] = []

    def work() -> None:
        raise OperationalError("x", {}, psycopg.errors.DeadlockDetected("deadlock"))

    with pytest.raises(OperationalError):
        retry_transient(work, sleep=delays.append)
    assert 7 == len(delays)
    assert sum(delays) <= 5.15


def test_a_failure_during_commit_is_never_transient_whatever_broke_it() -> None:
    from dynastream.exceptions import CommitOutcomeUnknownError

    lost = OperationalError("COMMIT", {}, pymysql.err.OperationalError(2003, "Can't connect"))
    error = CommitOutcomeUnknownError("the connection failed during COMMIT")
    error.__cause__ = lost

    assert not is_transient(error)


@pytest.mark.parametrize(
    "scheme",
    ["postgresql+psycopg", "mysql+pymysql", "mariadb+pymysql"],
    ids=["psycopg", "pymysql", "mariadb"],
)
def test_a_server_that_never_answers_is_a_time_budget_error_within_the_budget(scheme: str) -> None:
    """The kernel accepts the connection, the server never says a word: reported in time, not killed."""
    import socket
    import time

    import dynastream
    from dynastream.exceptions import TimeBudgetError
    from dynastream.testing import LambdaContext
    from tests.builders import FIRST_SEQUENCE_NUMBER, insert_event

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # and never accept()
    port = listener.getsockname()[1]
    app = dynastream.App(database_url=f"{scheme}://app@127.0.0.1:{port}/app")

    @app.handler("Orders")
    def unreachable(records: Any, uow: dynastream.UnitOfWork) -> None:
        raise AssertionError("never reached")

    started = time.monotonic()
    try:
        # 4 s of work, then the 10 s margin; the context's time runs down with the clock.
        result = app.dispatch(insert_event(2), LambdaContext(remaining_seconds=14))
    finally:
        listener.close()
        app.container.engine().dispose()
    took = time.monotonic() - started

    assert isinstance(result.failure and result.failure.error, TimeBudgetError)
    assert [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER)}] == result.response()["batchItemFailures"]
    assert took < 14 - 5  # within the budget, with most of the margin to spare
