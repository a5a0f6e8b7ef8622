"""
Canaries: a database password and personal data in items never reach logs,
errors, results or metrics, at any log level, under default settings.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream import StreamRecord, UnitOfWork
from dynastream.testing import EventFactory, LambdaContext

PASSWORD = "canary-pw-7c1d"  # noqa: S105 - a canary, not a credential
PERSONAL = "canary-4f1e@example.com"

people = sa.Table(
    "privacy_people",
    sa.MetaData(),
    sa.Column("pk", dynastream.ExactString(60), primary_key=True),
    sa.Column("email", sa.String(20)),  # too short for the canary: a mapping error
    sa.Column("age", sa.Integer),
    dynastream.sequence_column(),
)


def person(n: int, *, email: str = "ok@example.com", age: Any = 30, table: str = "People") -> dict[str, Any]:
    item = {"pk": f"{PERSONAL}-{n}", "email": email, "age": Decimal(age) if isinstance(age, int) else age}
    return EventFactory(keys=["pk"], view_type="NEW_IMAGE").insert(table, item, sequence_number=10**25 + n)


def test_no_canary_in_logs_errors_or_results(
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password=PASSWORD)  # trust authentication ignores it; it still travels
    elif url.get_backend_name() in ("mysql", "mariadb"):
        admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with admin.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE USER IF NOT EXISTS 'dynastream_canary'@'%%' IDENTIFIED BY '{PASSWORD}'"
            )
            connection.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO 'dynastream_canary'@'%%'")
        admin.dispose()
        url = url.set(username="dynastream_canary", password=PASSWORD)
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("DYNASTREAM_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "canary")  # EMF metrics are printed in Lambda
    app = dynastream.App()
    engine = app.container.engine()
    # The JSON lines dynastream's formatter writes, as well as pytest's capture.
    json_lines = io.StringIO()
    json_handler = logging.StreamHandler(json_lines)
    json_handler.setFormatter(dynastream.JsonFormatter())
    logger = logging.getLogger("dynastream")
    level = logger.level
    logger.setLevel(logging.NOTSET)  # unconfigured, so that DYNASTREAM_LOG_LEVEL applies
    logger.addHandler(json_handler)
    try:
        check_canaries(app, engine, caplog, json_lines, capsys)
    finally:
        logger.removeHandler(json_handler)
        logger.setLevel(level)
        people.drop(engine, checkfirst=True)
        dynastream.schema.metadata.drop_all(engine)
        engine.dispose()


def check_canaries(
    app: dynastream.App,
    engine: sa.Engine,
    caplog: pytest.LogCaptureFixture,
    json_lines: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    people.create(engine)
    app.create_tables()
    app.replicate("People", into=people, on_poison="quarantine")

    @app.handler("Audit")
    def refuse(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        uow.connection().execute(sa.text("SELECT * FROM no_such_table WHERE x = :v"), {"v": PERSONAL})

    texts: list[str] = [repr(app.container.settings()), repr(engine)]
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"):
        batches = [
            [person(1), person(2, email=PERSONAL), person(3)],  # a mapping error, quarantined
            [person(4, table="Audit")],  # a database error naming a value
            [person(5, age={"N": PERSONAL})],  # malformed, reported
        ]
        for batch in batches:
            result = app.dispatch({"Records": batch}, LambdaContext())
            texts += [repr(result), str(result.response())]
            texts += [f"{f.error!s} {f.error!r}" for f in (result.failure, *result.quarantined) if f]
        with engine.connect() as connection:
            texts += [
                str(row)
                for row in connection.execute(sa.select(dynastream.schema.quarantine.c.error_message))
            ]
    texts.append(caplog.text)
    texts.append(json_lines.getvalue())
    emitted = capsys.readouterr()
    texts += [emitted.out, emitted.err]

    assert '"_aws"' in emitted.out  # the metrics were there to check
    assert "batch of" in json_lines.getvalue()  # and the summary lines
    assert "sqlalchemy.engine" in caplog.text  # and SQLAlchemy's statements
    everything = "\n".join(texts)
    assert PASSWORD not in everything
    assert PERSONAL not in everything
    assert PERSONAL.encode().hex() not in everything  # MySQL's chunks travel as hexadecimal literals


MEMBER_NAME = "canary.member-9b2e@example.org"  # a map member's name is data too

constrained = sa.Table(
    "privacy_constrained",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(80), unique=True),
    sa.Column("age", sa.Integer),
    sa.Column("note", sa.String(80)),
    sa.CheckConstraint("age >= 0", name="privacy_age_ck"),
    mysql_charset="latin1",
    mariadb_charset="latin1",
)
documents = sa.Table(
    "privacy_documents",
    sa.MetaData(),
    sa.Column("pk", dynastream.ExactString(60), primary_key=True),
    sa.Column("doc", sa.JSON),
    dynastream.sequence_column(),
)


def test_database_errors_and_member_names_never_reach_plain_logs_or_the_quarantine(engine: sa.Engine) -> None:
    constrained.create(engine)
    documents.create(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    # Its own app: a custom handler's images are read before dispatch, where a malformed
    # one stops the reading (it is reported, not quarantined).
    replicating = dynastream.App(engine=engine)
    replicating.replicate("Documents", into=documents, on_poison="quarantine")
    rows = [
        {"id": 1, "email": PERSONAL, "age": 1, "note": "ok"},
        {"id": 2, "email": PERSONAL, "age": 1, "note": "ok"},  # the same e-mail: a uniqueness violation
        {"id": 3, "email": "x@example.org", "age": -1, "note": PERSONAL},  # a CHECK violation
        {"id": 4, "email": "y@example.org", "age": 1, "note": PERSONAL + " \U0001f600"},  # not latin1 (MySQL)
    ]

    @app.handler("Audit")
    def insert(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        for record in records:
            uow.connection().execute(constrained.insert(), rows[int(record.keys["pk"].split("-")[-1]) - 1])

    stream = io.StringIO()
    root, ours = logging.getLogger(), logging.getLogger("dynastream")
    handlers, level = root.handlers[:], root.level
    saved = ours.handlers[:], ours.level, ours.propagate
    ours.handlers[:], ours.propagate = [], True  # as an application that never configured it
    ours.setLevel(logging.NOTSET)
    logging.basicConfig(stream=stream, level=logging.DEBUG, force=True)  # the plainest set-up there is
    try:
        responses = [
            app.dispatch({"Records": [person(n, table="Audit")]}, LambdaContext()).response()
            for n in (1, 2, 3, 4)
        ]
        bad_member = EventFactory(keys=["pk"]).insert("Documents", {"pk": "doc-1"}, sequence_number=10**25)
        bad_member["dynamodb"]["NewImage"]["doc"] = {"M": {MEMBER_NAME: {"N": "not a number"}}}
        quarantined = replicating.dispatch({"Records": [bad_member]})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        ours.handlers[:], ours.propagate = saved[0], saved[2]
        ours.setLevel(saved[1])
    with engine.connect() as connection:
        messages = [
            str(m) for m in connection.scalars(sa.select(dynastream.schema.quarantine.c.error_message))
        ]
    constrained.drop(engine)
    documents.drop(engine)

    assert [] == responses[0]["batchItemFailures"]
    assert all(r["batchItemFailures"] for r in responses[1:3])
    assert 1 == len(quarantined.quarantined)
    logged = stream.getvalue()
    everything = "\n".join([logged, *messages, str(quarantined.quarantined[0].error)])
    for canary in (PERSONAL, MEMBER_NAME, PERSONAL.encode().hex(), "\\xF0\\x9F"):
        assert canary not in everything
    # and the failures were logged, by class and code
    assert "IntegrityError" in logged
    if engine.dialect.name == "postgresql":
        assert "SQLSTATE 23505" in logged
    elif engine.dialect.name in ("mysql", "mariadb"):
        assert "MySQL error 1062" in logged
