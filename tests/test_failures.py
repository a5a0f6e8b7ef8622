"""
Which database errors are retried, and how.
"""

from __future__ import annotations

import psycopg.errors
import pymysql.err
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from dynastream._failures import is_transient, retry_transient


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
