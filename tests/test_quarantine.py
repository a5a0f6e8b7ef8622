"""
Poison records set aside in the quarantine table, so the batch goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream import StreamRecord, UnitOfWork
from tests.builders import insert_event
from tests.replication.test_replication import S, make_app, put, rows

quarantine = dynastream.schema.quarantine


def set_aside(engine: sa.Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(quarantine).order_by(quarantine.c.sequence_number)))


def test_a_poison_record_is_quarantined_and_the_batch_goes_on(engine: sa.Engine) -> None:
    app = make_app(engine, on_poison="quarantine")
    poison = put("b", "1", S[1], label="x" * 41)  # longer than String(40)

    result = app.dispatch({"Records": [put("a", "1", S[0]), poison, put("c", "3", S[2])]})

    assert ({"batchItemFailures": []}, 2) == (result.response(), result.applied)
    assert [1] == [q.index for q in result.quarantined]
    assert {"a": (Decimal("1"), "x"), "c": (Decimal("3"), "x")} == rows(engine)
    [row] = set_aside(engine)
    assert ("Items", poison["eventID"], str(S[1]).zfill(40)) == (
        row.table_name,
        row.event_id,
        row.sequence_number,
    )
    assert {"pk": "b"} == json.loads(row.item_keys)
    assert row.error_type.endswith("MappingError")
    assert "attribute 'label' -> column 'label'" in row.error_message
    assert row.raw is None


def test_the_raw_record_is_kept_only_on_request(engine: sa.Engine) -> None:
    app = make_app(engine, on_poison="quarantine", keep_raw=True)
    poison = put("b", "1", S[1], label="x" * 41)

    app.lambda_handler({"Records": [poison]}, None)

    [row] = set_aside(engine)
    assert poison == json.loads(row.raw)


def test_a_redelivered_poison_record_is_set_aside_once(engine: sa.Engine) -> None:
    app = make_app(engine, on_poison="quarantine")
    batch = {
        "Records": [
            put("a", "1", S[0], label="x" * 41),
            put("b", "2", S[1]),
            put("c", "3", S[2], label="y" * 50),
        ]
    }

    app.lambda_handler(batch, None)
    app.lambda_handler(batch, None)

    assert 2 == len(set_aside(engine))
    assert {"b": (Decimal("2"), "x")} == rows(engine)


def test_a_custom_handler_can_quarantine_what_it_refuses(engine: sa.Engine) -> None:
    effects = sa.Table(
        "quarantine_effects", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True, autoincrement=False)
    )
    effects.create(engine)
    dynastream.schema.metadata.create_all(engine)
    app = dynastream.App(engine=engine)

    @app.handler("Orders", on_poison="quarantine")
    def apply(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        numbers = [int(r.new_image["n"]) for r in records if r.new_image is not None]
        uow.connection().execute(effects.insert(), [{"n": n + 1} for n in numbers])
        if {3, 7} & set(numbers):
            raise ValueError("refused")

    result = app.dispatch(insert_event(10))

    assert [] == result.response()["batchItemFailures"]
    assert [3, 7] == [q.index for q in result.quarantined]
    with engine.connect() as connection:
        assert [1, 2, 3, 5, 6, 7, 9, 10] == sorted(connection.scalars(sa.select(effects.c.n)))
    assert ["builtins.ValueError", "builtins.ValueError"] == [r.error_type for r in set_aside(engine)]
    assert ["ValueError", "ValueError"] == [
        r.error_message for r in set_aside(engine)
    ]  # its text may quote data


def test_a_table_reports_unless_all_its_handlers_quarantine(engine: sa.Engine) -> None:
    app = make_app(engine, on_poison="quarantine")
    app.register("Items", lambda records, uow: None)  # reports, the default

    result = app.dispatch({"Records": [put("a", "1", S[0]), put("b", "1", S[1], label="x" * 41)]})

    assert [{"itemIdentifier": str(S[1])}] == result.response()["batchItemFailures"]
    assert [] == set_aside(engine)


def test_unknown_poison_policy_is_refused() -> None:
    app = dynastream.App(database_url="sqlite://")
    with pytest.raises(dynastream.ConfigurationError, match="on_poison"):
        app.register("Orders", lambda records, uow: None, on_poison="ignore")  # type: ignore[arg-type]


def test_the_default_poison_policy_comes_from_the_settings(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`DYNASTREAM_ON_POISON=quarantine` applies to handlers registered without `on_poison=`."""
    monkeypatch.setenv("DYNASTREAM_ON_POISON", "quarantine")
    following = make_app(engine)  # no on_poison=: the setting decides
    poison = put("b", "1", S[1], label="x" * 41)

    result = following.dispatch({"Records": [put("a", "1", S[0]), poison]})

    assert ({"batchItemFailures": []}, 1) == (result.response(), len(set_aside(engine)))
    explicit = make_app(engine, on_poison="report")  # a handler's own policy wins
    again = explicit.dispatch({"Records": [put("c", "1", S[2], label="x" * 41)]})
    assert [{"itemIdentifier": str(S[2])}] == again.response()["batchItemFailures"]


def test_a_wrong_default_poison_policy_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNASTREAM_ON_POISON", "ignore")

    with pytest.raises(dynastream.ConfigurationError, match="DYNASTREAM_ON_POISON"):
        dynastream.Settings.from_env()


@pytest.mark.parametrize("view_type", ["KEYS_ONLY", "OLD_IMAGE"])
def test_a_configuration_error_is_reported_never_quarantined(engine: sa.Engine, view_type: str) -> None:
    from tests.replication.test_replication import events

    app = make_app(engine, on_poison="quarantine")
    change = events(view_type=view_type).insert(
        "Items", {"pk": "a", "amount": Decimal(1)}, sequence_number=S[0]
    )
    change["dynamodb"].pop("NewImage", None)  # these streams carry no new image

    result = app.dispatch({"Records": [change, put("b", "2", S[1])]})

    assert isinstance(result.failure and result.failure.error, dynastream.ConfigurationError)
    assert {"batchItemFailures": [{"itemIdentifier": str(S[0])}]} == result.response()
    assert ([], {}) == (set_aside(engine), rows(engine))


def _exhaust_server_resources(connection: sa.Connection) -> None:
    """Raise the server's own error for a full lock table, as it raises it."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "DO $$ BEGIN RAISE EXCEPTION 'out of shared memory' USING ERRCODE = '53200',"
            " HINT = 'You might need to increase max_locks_per_transaction.'; END $$"
        )
    else:
        connection.exec_driver_sql(
            "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1206,"
            " MESSAGE_TEXT = 'The total number of locks exceeds the lock table size'"
        )


@pytest.mark.parametrize("persists", [False, True], ids=["passing", "persisting"])
def test_a_full_lock_table_is_the_servers_trouble_never_a_poison_record(
    server_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, persists: bool
) -> None:
    """
    `out of shared memory` (53200) and ER_LOCK_TABLE_FULL (1206) say the server is
    out of a resource every client shares: the transaction is retried, and when the
    error persists the invocation fails as a whole (the batch is delivered again),
    with no record reported and none quarantined.
    """
    from dynastream import _retry as _failures

    monkeypatch.setattr(_failures.time, "sleep", lambda _: None)
    app = make_app(server_engine, on_poison="quarantine")
    calls: list[int] = []

    @app.handler("Items")
    def short_of_locks(records: Sequence[StreamRecord[Any]], uow: UnitOfWork) -> None:
        calls.append(len(records))
        if persists or len(calls) == 1:
            _exhaust_server_resources(uow.connection())

    event = {"Records": [put("a", "1", S[0]), put("b", "2", S[1])]}
    if persists:
        with pytest.raises(sa.exc.DBAPIError) as raised:
            app.dispatch(event)
        assert _failures.is_transient(raised.value)
        assert 8 == len(calls)  # every attempt, then the invocation fails
        assert {} == rows(server_engine)
    else:
        result = app.dispatch(event)
        assert ({"batchItemFailures": []}, 2, ()) == (result.response(), result.applied, result.quarantined)
        assert [2, 2] == calls
        assert {"a", "b"} == set(rows(server_engine))
    assert [] == set_aside(server_engine)
