"""
Failure classification: which database errors are worth another try.

A transient error (a deadlock, a lock wait timeout, a serialization failure,
a server out of memory or of lock table, a connection lost before COMMIT, a
server that refuses connections while it restarts) says nothing about the
records: the same transaction, run again, may well
succeed. Such an error fails the whole transaction (InnoDB rolls it back on a
deadlock, savepoints included), so the dispatcher retries the transaction from
the start, with jittered backoff, rather than blame a record.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import TYPE_CHECKING, Any, TypeVar

from .exceptions import CommitOutcomeUnknownError, DynastreamError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .exceptions import TimeBudgetError

__all__ = [
    "READ_ONLY_MYSQL_ERRORS",
    "READ_ONLY_SQLSTATES",
    "TRANSIENT_MYSQL_ERRORS",
    "TRANSIENT_SQLSTATES",
    "ConnectionLostError",
    "OutOfTime",
    "is_read_only",
    "is_transient",
    "remaining_time",
    "retry_transient",
    "within_budget",
]

T = TypeVar("T")

# https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
TRANSIENT_MYSQL_ERRORS = frozenset(
    {
        1037,  # ER_OUTOFMEMORY
        1038,  # ER_OUT_OF_SORTMEMORY
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1041,  # ER_OUT_OF_RESOURCES
        1135,  # ER_CANT_CREATE_THREAD
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1206,  # ER_LOCK_TABLE_FULL: the server's lock memory is exhausted, by every client together
        1213,  # ER_LOCK_DEADLOCK
        1290,  # ER_OPTION_PREVENTS_STATEMENT: --read-only, as after an Aurora failover
        1792,  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        1836,  # ER_READ_ONLY_MODE
        2002,  # CR_CONNECTION_ERROR: the server cannot be reached (restarting, failing over)
        2003,  # CR_CONN_HOST_ERROR
    }
)
# Failures to connect that another try will not mend: wrong credentials or database.
_REFUSED_MYSQL_ERRORS = frozenset({1044, 1045, 1049, 1698})
_REFUSED_SQLSTATES = frozenset({"28000", "28P01", "3D000"})
# Errors after which the connection must not be used again: it points at a
# server that became a reader (failover) and would fail the same way.
READ_ONLY_MYSQL_ERRORS = frozenset({1290, 1792, 1836})
READ_ONLY_SQLSTATES = frozenset({"25006"})  # read_only_sql_transaction
# https://www.postgresql.org/docs/current/errcodes-appendix.html
TRANSIENT_SQLSTATES = frozenset(
    {
        "25006",  # read_only_sql_transaction, as after an Aurora failover
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53000",  # insufficient_resources, and the whole class 53 below: the server's, not the record's
        "53100",  # disk_full
        "53200",  # out_of_memory: also "out of shared memory" when the lock table is full
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
        "55P03",  # lock_not_available: lock_timeout ended a lock wait
        "57P03",  # cannot_connect_now: the server is starting up or shutting down
        "08001",  # sqlclient_unable_to_establish_sqlconnection
        "08006",  # connection_failure
    }
)


class ConnectionLostError(DynastreamError):
    """
    The connection broke in a way the driver did not report as a disconnect.

    (For example a statement failing, then its rollback failing too.) Always
    transient: the connection has been discarded, the transaction is retried;
    it escapes `lambda_handler`, `dispatch` and the stream runner only when
    every retry failed so.
    """


def _driver_errors(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__ or current.__context__
    return chain


def _mysql_code(error: BaseException) -> int | None:
    arguments = getattr(error, "args", ())
    module = getattr(type(error), "__module__", "")
    if arguments and isinstance(arguments[0], int) and module.startswith(("pymysql", "MySQLdb", "mysql")):
        return arguments[0]
    return None


def is_read_only(error: BaseException) -> bool:
    """
    Return whether `error` says the server is read-only (a failed-over writer).
    """
    return any(
        getattr(e, "sqlstate", None) in READ_ONLY_SQLSTATES or _mysql_code(e) in READ_ONLY_MYSQL_ERRORS
        for e in _driver_errors(error)
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

    from .exceptions import CommitOutcomeUnknownError

    if isinstance(error, CommitOutcomeUnknownError):  # whatever broke COMMIT: never run twice
        return False
    if _is_certificate_failure(error):  # a server TLS does not trust stays untrusted
        return False
    if isinstance(error, ConnectionLostError) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        return True
    if _is_connect_failure(error):
        return True
    return any(
        getattr(e, "sqlstate", None) in TRANSIENT_SQLSTATES or _mysql_code(e) in TRANSIENT_MYSQL_ERRORS
        for e in _driver_errors(error)
    )


def _is_certificate_failure(error: BaseException) -> bool:
    """
    Whether `error` is TLS refusing the server's certificate (wrong CA, wrong host name).

    PyMySQL reports it as error 2003, as it does an unreachable server; libpq
    only in its message.
    """
    import ssl

    return any(
        isinstance(e, ssl.SSLCertVerificationError)
        or "certificate verify failed" in str(e)
        or ("server certificate for" in str(e) and "does not match host name" in str(e))
        for e in _driver_errors(error)
    )


def _is_connect_failure(error: BaseException) -> bool:
    """
    Whether `error` is a failure to open a connection, other than a refusal.

    A server restarting or failing over refuses connections for a few seconds;
    no transaction exists yet, so another try is safe. Wrong credentials or
    an unknown database are refused for good.
    """
    from sqlalchemy.exc import OperationalError

    if not isinstance(error, OperationalError) or error.statement is not None:
        return False
    if any(type(e).__module__ == "sqlite3" for e in _driver_errors(error)):
        return False  # a file that cannot be opened (no directory, no permission) stays so
    return not any(
        getattr(e, "sqlstate", None) in _REFUSED_SQLSTATES or _mysql_code(e) in _REFUSED_MYSQL_ERRORS
        for e in _driver_errors(error)
    )


def retry_transient(
    work: Callable[[], T],
    *,
    attempts: int = 8,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """
    Run `work`, and again after each transient error, up to `attempts` times.

    Between attempts it waits with "full jitter" exponential backoff: a random
    delay up to 50 ms, 100 ms, 200 ms, ... capped at `max_delay`: about 2.5 s
    in all on average, 5 s at most, enough to ride out a server restart. (The
    dispatcher's work also checks the invocation's time left before each try.)

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


# The invocation's time budget


class OutOfTime(Exception):  # noqa: N818 - internal signal, carries the error to report
    def __init__(self, error: TimeBudgetError) -> None:
        super().__init__(str(error))
        self.error = error


def remaining_time(context: Any) -> Callable[[], float | None]:
    """
    Return a function giving the seconds left in the Lambda invocation.

    It gives `None` when there is no Lambda context to ask.
    """
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return lambda: None
    return lambda: float(remaining()) / 1000


@contextlib.contextmanager
def within_budget(out_of_time: Callable[[], TimeBudgetError | None]) -> Iterator[None]:
    """
    Turn a failure once the time budget is spent into that budget's error.

    A connect, read or write that the deadline cut short (see
    `bound_connects`) is the invocation's time running out, reported as a
    `TimeBudgetError` for the records not applied, not a database failure.
    """
    try:
        yield
    except (OutOfTime, CommitOutcomeUnknownError):
        raise
    except Exception as error:
        budget = out_of_time()
        if budget is not None:
            raise OutOfTime(budget) from error
        raise
