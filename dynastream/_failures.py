"""
Failure classification: which database errors are worth another try.

A transient error (a deadlock, a lock wait timeout, a serialization failure,
a connection lost before COMMIT) says nothing about the records: the same transaction, run again, may well
succeed. Such an error fails the whole transaction (InnoDB rolls it back on a
deadlock, savepoints included), so the dispatcher retries the transaction from
the start, with jittered backoff, rather than blame a record.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TRANSIENT_MYSQL_ERRORS", "TRANSIENT_SQLSTATES", "is_transient", "retry_transient"]

T = TypeVar("T")

# https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
TRANSIENT_MYSQL_ERRORS = frozenset(
    {
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
    }
)
# https://www.postgresql.org/docs/current/errcodes-appendix.html
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }
)


def is_transient(error: BaseException) -> bool:
    """
    Return whether `error` (or the driver error it wraps) is worth a retry.

    A lost connection counts: the dispatcher only retries errors raised
    before COMMIT, when nothing of the transaction can have been kept (the
    pool has already discarded the dead connection). A failure during COMMIT
    is a `CommitOutcomeUnknownError`, never retried.
    """
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.orig is not None:
            current = current.orig
            continue
        sqlstate = getattr(current, "sqlstate", None)
        if sqlstate in TRANSIENT_SQLSTATES:
            return True
        arguments = getattr(current, "args", ())
        if arguments and isinstance(arguments[0], int) and arguments[0] in TRANSIENT_MYSQL_ERRORS:
            return getattr(type(current), "__module__", "").startswith(("pymysql", "MySQLdb", "mysql"))
        current = current.__cause__ or current.__context__
    return False


def retry_transient(
    work: Callable[[], T],
    *,
    attempts: int = 5,
    first_delay: float = 0.05,
    max_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """
    Run `work`, and again after each transient error, up to `attempts` times.

    Between attempts it waits with "full jitter" exponential backoff: a random
    delay up to 50 ms, 100 ms, 200 ms, ... capped at `max_delay`.

    Raises:
        Exception: The last error, when it is not transient or the attempts
            are used up.
    """
    for attempt in range(attempts):
        try:
            return work()
        except Exception as error:
            if attempt == attempts - 1 or not is_transient(error):
                raise
            sleep(random.uniform(0, min(max_delay, first_delay * 2**attempt)))  # noqa: S311 - jitter, not cryptography
    raise AssertionError("unreachable")  # pragma: no cover
