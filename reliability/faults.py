"""
The faults: connections killed, worker processes killed, server restarts and read-only failovers.

Also what the harness needs to ride them out (`patiently`) and to name what
the workers met (`error_kind`, `ErrorTally`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    import dynastream

T = TypeVar("T")


def invoke(app: dynastream.App, event: dict[str, Any]) -> dict[str, Any]:
    """
    Run one invocation: its Lambda response, and the ties dynastream counted in the batch.
    """
    result = app.dispatch(event, None)
    tied = 0 if result.summary is None else result.summary.total("tied")
    return {"response": result.response(), "tied": tied}


class Killer:
    """Kills the worker's server connection at random statements and COMMITs."""

    def __init__(self, engine: sa.Engine, admin: sa.Engine | None, rng: random.Random, rate: float) -> None:
        self.admin, self.rng, self.rate, self.kills = admin, rng, rate, 0
        if admin is None or rate <= 0:
            return
        sa.event.listen(engine, "before_cursor_execute", self.maybe_kill)
        sa.event.listen(engine, "commit", self.maybe_kill_connection)

    def maybe_kill(self, connection: sa.Connection, *_: Any) -> None:
        self.maybe_kill_connection(connection)

    def maybe_kill_connection(self, connection: sa.Connection) -> None:
        if self.admin is None or self.rng.random() >= self.rate:
            return
        raw = connection.connection.dbapi_connection
        if connection.dialect.name == "postgresql":
            pid = raw.info.backend_pid  # type: ignore[union-attr]
            statement = f"SELECT pg_terminate_backend({int(pid)})"
        else:
            statement = f"KILL {int(raw.thread_id())}"  # type: ignore[union-attr]
        try:
            with self.admin.connect() as admin:
                admin.exec_driver_sql(statement)
                admin.commit()
        except sa.exc.DBAPIError:  # the server is restarting (another worker's fault): no kill
            return
        self.kills += 1


class ProcessKiller:
    """
    Runs some deliveries in a forked worker that dies by SIGKILL at a random point.

    The point is the n-th statement the worker sends, or the moment after its
    COMMIT and before its response reaches the event source mapping. The
    parent sees a failed invocation, as Lambda would, and delivers the batch
    again.
    """

    def __init__(self, rng: random.Random, rate: float, tally: ErrorTally) -> None:
        self.rng, self.rate, self.kills, self.tally = rng, rate, 0, tally

    def deliver(self, app: dynastream.App, engine: sa.Engine, event: dict[str, Any]) -> dict[str, Any] | None:
        """Return the invocation's outcome (see `invoke`), or None when the worker was killed."""
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return invoke(app, event)
        after_commit = self.rng.random() < 0.3
        nth = self.rng.randint(1, 6)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read)
            inherited = engine.pool  # kept alive: the parent's connection is never closed from here
            code = 0
            before = Counter(self.tally.counts)
            answer: dict[str, Any] = {}
            try:
                engine.dispose(close=False)
                if not after_commit:
                    sent = [0]

                    def die_at_nth(*_: Any) -> None:
                        sent[0] += 1
                        if sent[0] == nth:
                            os.kill(os.getpid(), signal.SIGKILL)

                    sa.event.listen(engine, "before_cursor_execute", die_at_nth)
                answer["invocation"] = invoke(app, event)
                if after_commit:
                    os.kill(os.getpid(), signal.SIGKILL)
            except BaseException as error:  # noqa: BLE001 - reported to the parent as a failed invocation
                answer["error"] = error_kind(error)
                code = 3
            finally:
                answer["errors"] = self.tally.counts - before
                with contextlib.suppress(OSError):  # a pipe holds a small answer whole
                    os.write(write, json.dumps(answer).encode())
                del inherited
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            self.kills += 1
            return None
        answer = json.loads(data) if data else {"error": "no answer"}
        self.tally.counts.update(answer.get("errors", {}))
        if os.WEXITSTATUS(status) != 0 or "invocation" not in answer:
            raise InvocationFailedError(answer.get("error", "no answer"))
        invocation: dict[str, Any] = answer["invocation"]
        return invocation


_PIDOF_MARIADB = ["/usr/bin/pidof", "mariadbd"]
# How .ci/run starts MariaDB when it is down.
_START_MARIADB = [
    "/usr/sbin/start-stop-daemon",
    "--start",
    "--oknodo",
    "--background",
    "--exec",
    "/usr/sbin/mariadbd",
]


class ServerFaults:
    """
    Restarts the database server, or makes it read-only, in the middle of a history.

    A restart happens inside a delivery, before a random statement of the
    worker (which then meets a dead connection); a read-only flip is a
    failover's: the server turns read-only and drops the worker's sessions for
    one delivery, then turns writable again. MariaDB's `read_only` does not
    bind privileged users, so the worker connects as an unprivileged one there.
    """

    WORKER = "dynastream_reliability"

    def __init__(self, name: str, url: str | None, admin: sa.Engine | None) -> None:
        self.name, self.admin = name, admin
        self.restarts = self.flips = 0
        self.parent = os.getpid()
        self.worker_url = url
        if admin is not None and name == "mysql" and url is not None:
            password = "reliability-only"  # noqa: S105 - a local test user
            database = sa.engine.make_url(url).database

            def create_user() -> None:
                with admin.begin() as connection:
                    connection.exec_driver_sql(
                        f"CREATE USER IF NOT EXISTS '{self.WORKER}'@'%%' IDENTIFIED BY '{password}'"
                    )
                    connection.exec_driver_sql(
                        f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{self.WORKER}'@'%%'"
                    )

            patiently(create_user)
            self.worker_url = (
                sa.engine.make_url(url)
                .set(username=self.WORKER, password=password)
                .render_as_string(hide_password=False)
            )

    def set_read_only(self, *, on: bool) -> None:
        patiently(lambda: self._set_read_only(on=on))
        self.flips += on

    def _set_read_only(self, *, on: bool) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as session:
            connection = session.execution_options(isolation_level="AUTOCOMMIT")
            if self.name == "postgresql":
                # A session opened while the database is read-only is read-only too.
                connection.exec_driver_sql("SET default_transaction_read_only = off")
                database = connection.exec_driver_sql("SELECT current_database()").scalar()
                connection.exec_driver_sql(
                    f'ALTER DATABASE "{database}" SET default_transaction_read_only = {"on" if on else "off"}'
                )
                if on:
                    connection.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
            else:
                connection.exec_driver_sql(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")
                if on:
                    ids = connection.exec_driver_sql(
                        f"SELECT id FROM information_schema.processlist WHERE user = '{self.WORKER}'"
                    ).scalars()
                    for thread in list(ids):
                        with contextlib.suppress(sa.exc.DBAPIError):  # it may have ended meanwhile
                            connection.exec_driver_sql(f"KILL {int(thread)}")

    def arm_restart(self, engine: sa.Engine, nth: int) -> None:
        """Restart the server before the worker's `nth` statement (in this process only)."""
        sent = [0]

        def restart_at_nth(*_: Any) -> None:
            if os.getpid() != self.parent:
                return
            sent[0] += 1
            if sent[0] == nth:
                self.restart()

        sa.event.listen(engine, "before_cursor_execute", restart_at_nth)

    def restart(self) -> None:
        if self.name == "postgresql":
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(  # noqa: S603 - a fixed command
                ["/usr/bin/pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
                capture_output=True,
            )
        else:
            assert self.admin is not None  # noqa: S101 - restarts are armed only on servers
            with contextlib.suppress(Exception), self.admin.connect() as connection:
                connection.exec_driver_sql("SHUTDOWN")
            deadline = time.monotonic() + 120
            while subprocess.run(_PIDOF_MARIADB, capture_output=True, check=False).returncode == 0:  # noqa: S603
                if time.monotonic() > deadline:
                    raise RuntimeError("MariaDB did not stop")
                time.sleep(0.1)
            subprocess.run(_START_MARIADB, check=True, capture_output=True)  # noqa: S603 - a fixed command
        self.wait_until_up()
        self.restarts += 1

    def wait_until_up(self) -> None:
        assert self.admin is not None  # noqa: S101
        admin = self.admin

        def ping() -> None:
            with admin.connect() as connection:
                connection.exec_driver_sql("SELECT 1")

        patiently(ping)


def patiently(work: Callable[[], T]) -> T:
    """
    Run the harness's own `work`, again while the server restarts (up to 120 s).
    """
    deadline = time.monotonic() + 120
    while True:
        try:
            return work()
        except sa.exc.DBAPIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def error_kind(error: BaseException) -> str:
    """
    Name a failure by its driver error class and code (MySQL error number, SQLSTATE), if any.
    """
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, InvocationFailedError):
            return seen.kind
        orig = seen.orig if isinstance(seen, sa.exc.DBAPIError) else seen
        if orig is not None and type(orig).__module__.split(".")[0] in ("psycopg", "pymysql", "sqlite3"):
            code = getattr(orig, "sqlstate", None)
            if orig.args and isinstance(orig.args[0], int):
                code = orig.args[0]  # a MySQL error number (PyMySQL has a SQLSTATE too, less precise)
            return f"{type(orig).__name__} {code}" if code is not None else type(orig).__name__
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


class InvocationFailedError(Exception):
    """A forked worker's invocation failed, with `kind` (from `error_kind`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"the worker's invocation failed: {kind}")
        self.kind = kind


class ErrorTally:
    """
    Counts the database errors an engine meets, by kind: those dynastream retried
    inside the invocation as well as those that failed it.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.counts: Counter[str] = Counter()
        sa.event.listen(engine, "handle_error", self.count)

    def count(self, context: sa.engine.ExceptionContext) -> None:
        self.counts["met " + error_kind(context.original_exception)] += 1
