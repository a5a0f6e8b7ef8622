"""
Built-in replication of generated schemas: any table, any history, any delivery ends equal to the source.

Hypothesis generates the table (key and value columns of every supported type),
a history of changes with values at each type's edges, and a delivery schedule
(`tests/replication/schema_strategies.py`); raw Lambda events are built by hand, and every
column of every row is compared with an independent model (`tests/replication/schemas.py`).

Examples per property and engine: `DYNASTREAM_SCHEMA_EXAMPLES` (default 50; the
MariaDB-only variants run fewer). Under `CI=true` the examples are derandomized.
A failure names what differs in its class (`RowsLostWithKeysOf_numeric`,
`ValuesDifferIn_varbinary`, `RecordRefused_DataError_binary`, ...), so that one
run reports each kind of failure with its own shrunk example.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

import dynastream
from dynastream._replication import chunks
from dynastream.exceptions import ConfigurationError
from tests.conftest import _engine_for, _isolated_url, _server_url
from tests.replication.schema_strategies import cases
from tests.replication.schemas import (
    FIRST_CREATED,
    Case,
    Change,
    Column,
    Schema,
    expected_rows,
    identity_of,
    lambda_event,
    refused,
    rows_differ,
    stored_rows,
    worker_batches,
)

EXAMPLES = int(os.environ.get("DYNASTREAM_SCHEMA_EXAMPLES", "50"))
generated = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],  # no slow "explain"
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

TABLE = "generated_rows"
SOURCE = "Generated"  # the DynamoDB table
NO_FAILURES: dict[str, Any] = {"batchItemFailures": []}


def dialect_of(engine: sa.Engine) -> str:
    return "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name


def replicating_app(engine: sa.Engine, case: Case, table: sa.Table) -> dynastream.App:
    app = dynastream.App(engine=engine)
    schema = case.schema
    deleted = {"deleted_column": "dynastream_deleted_at"} if schema.soft else {}
    app.replicate(SOURCE, into=table, deletes=schema.deletes, ttl=schema.ttl, **deleted)  # type: ignore[arg-type]
    return app


def apply(app: dynastream.App, case: Case, batch: tuple[int, ...]) -> None:
    """
    Send one batch as a raw Lambda event; every record of it must apply.

    `App.lambda_handler(event, None)` is `App.dispatch(event, None).response()`:
    dispatching directly keeps the error of a refused record for the report.
    """
    result = app.dispatch(lambda_event(case, batch, SOURCE), None)
    if result.failure is not None:
        raise refused(case.schema, result.failure.item_identifier, result.failure.error)
    assert NO_FAILURES == result.response()


def deliver(engine: sa.Engine, case: Case, table: sa.Table) -> None:
    """
    Send the case's schedule, from one worker or two (see `Case.parallel`).
    """
    per_worker = worker_batches(case, dialect_of(engine))
    if len(per_worker) == 1:
        app = replicating_app(engine, case, table)
        for batch in per_worker[0]:
            apply(app, case, batch)
        return
    # ParallelizationFactor > 1: each thread its own App and connection, per-item order kept.
    apps = [
        replicating_app(sa.create_engine(engine.url, poolclass=sa.pool.NullPool), case, table)
        for _ in per_worker
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(per_worker))

    def work(thread: int) -> None:
        barrier.wait()
        try:
            for batch in per_worker[thread]:
                apply(apps[thread], case, batch)
        except Exception as error:  # raised again below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(per_worker))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in apps:
        app.container.engine().dispose()
    if errors:
        raise errors[0]


def fresh_table(engine: sa.Engine, case: Case, **options: Any) -> sa.Table:
    table = case.schema.sa_table(dialect_of(engine), sa.MetaData(), **options)
    dynastream.schema.metadata.create_all(engine)
    drop(engine, table)
    table.create(engine)
    return table


def drop(engine: sa.Engine, table: sa.Table) -> None:
    table.drop(engine, checkfirst=True)
    tombstones = dynastream.schema.tombstones
    with engine.begin() as connection:
        connection.execute(tombstones.delete().where(tombstones.c.table_name == table.fullname))


def assert_replicated(engine: sa.Engine, case: Case, table: sa.Table) -> None:
    """
    Every row and every column equal the model's; the database holds no other row.
    """
    expected = expected_rows(case, dialect_of(engine))
    with engine.connect() as connection:
        stored = stored_rows(connection, case.schema, table)
        count = connection.scalar(sa.select(sa.func.count()).select_from(table))
    if expected != stored or len(expected) != count:
        raise rows_differ(case.schema, expected, stored, count)


def check(engine: sa.Engine, case: Case, **table_options: Any) -> None:
    table = fresh_table(engine, case, **table_options)
    try:
        deliver(engine, case, table)
        assert_replicated(engine, case, table)
    finally:
        drop(engine, table)


@generated
@given(data=st.data())
def test_any_schema_history_and_delivery_end_equal_to_the_source(
    engine: sa.Engine, data: st.DataObject
) -> None:
    case = data.draw(cases(dialect_of(engine), TABLE), label="case")

    check(engine, case)


@settings(generated, max_examples=max(1, EXAMPLES // 2))
@given(data=st.data())
def test_any_schema_ends_equal_to_the_source_with_chunks_encoded_by_the_standard_library(
    engine: sa.Engine, data: st.DataObject
) -> None:
    # The property above runs with orjson (the speedups extra) where it is installed;
    # this one with the standard library that replaces it when it is not.
    case = data.draw(cases(dialect_of(engine), TABLE), label="case")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "orjson", None)
        check(engine, case)


# --- MariaDB: utf8mb4 tables in a latin1 database ---------------------------------------


@pytest.fixture
def latin1_engine() -> Iterator[sa.Engine]:
    """An engine on a new MariaDB database whose default character set is latin1."""
    base = make_url(_server_url("mysql"))
    name = f"dynastream_latin1_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        connection.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    try:
        yield from _engine_for(base.set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@settings(generated, max_examples=max(1, EXAMPLES // 2))
@given(data=st.data())
def test_utf8mb4_tables_in_a_latin1_database_keep_text_exactly(
    latin1_engine: sa.Engine, data: st.DataObject
) -> None:
    case = data.draw(cases("mysql", TABLE), label="case")

    check(latin1_engine, case, mysql_charset="utf8mb4")


# --- MariaDB: String keys need a no-pad binary collation ----------------------------------


@pytest.fixture
def mariadb_engine(_server_databases: dict[str, str]) -> Iterator[sa.Engine]:
    """An engine on this run's private MariaDB database."""
    yield from _engine_for(_isolated_url("mysql", _server_databases))


def case_sensitive_keys() -> Case:
    schema = Schema(
        TABLE,
        (Column("pk", "string", key=True, length=20, collation=None), Column("v", "integer")),
    )
    history = (
        Change("INSERT", 10**20 + 1, {"pk": {"S": "abc"}}, new_image={"pk": {"S": "abc"}, "v": {"N": "1"}}),
        Change("INSERT", 10**20 + 2, {"pk": {"S": "ABC"}}, new_image={"pk": {"S": "ABC"}, "v": {"N": "2"}}),
        Change("INSERT", 10**20 + 3, {"pk": {"S": "abc "}}, new_image={"pk": {"S": "abc "}, "v": {"N": "3"}}),
    )
    return Case(schema, history, ((0, 1, 2),))


def test_a_string_key_with_a_case_insensitive_collation_is_refused(mariadb_engine: sa.Engine) -> None:
    case = case_sensitive_keys()
    table = fresh_table(mariadb_engine, case)
    try:
        app = replicating_app(mariadb_engine, case, table)

        result = app.dispatch(lambda_event(case, case.schedule[0], SOURCE))

        assert result.failure is not None
        assert isinstance(result.failure.error, ConfigurationError)
        with mariadb_engine.connect() as connection:
            assert 0 == connection.scalar(sa.select(sa.func.count()).select_from(table))
    finally:
        drop(mariadb_engine, table)


@settings(generated, max_examples=max(1, EXAMPLES // 5))
@given(data=st.data())
def test_default_collation_string_keys_are_refused_or_kept_apart(
    mariadb_engine: sa.Engine, data: st.DataObject
) -> None:
    case = data.draw(cases("mysql", TABLE, collation=None, string_key=True), label="case")
    table = fresh_table(mariadb_engine, case)
    try:
        app = replicating_app(mariadb_engine, case, table)
        first = app.dispatch(lambda_event(case, case.schedule[0], SOURCE))
        if first.failure is not None and isinstance(first.failure.error, ConfigurationError):
            return  # refused: the table cannot keep `abc` and `ABC` apart
        if first.failure is not None:
            raise refused(case.schema, first.failure.item_identifier, first.failure.error)
        for batch in case.schedule[1:]:
            apply(app, case, batch)
        assert_replicated(mariadb_engine, case, table)
    finally:
        drop(mariadb_engine, table)


# --- the shrunk failures, as regression tests ------------------------------------------------


def case_of(
    schema: Schema, changes: list[tuple[str, dict[str, Any]]], schedule: tuple[tuple[int, ...], ...]
) -> Case:
    """
    A case from (event name, item) pairs: sequence numbers 10**20 + position, old images kept.
    """
    keys = [c.name for c in schema.keys]
    history, images = [], {}
    for position, (event_name, item) in enumerate(changes):
        key = {name: item[name] for name in keys}
        identity = identity_of(schema, key, "postgresql")  # `1.50` and `1.5` are one item
        previous = images.get(identity)
        new_image = None if event_name == "REMOVE" else item
        history.append(
            Change(
                event_name,
                10**20 + position,
                key,
                new_image=new_image,
                old_image=previous,
                created=FIRST_CREATED + position,
            )
        )
        images[identity] = new_image
    return Case(schema, tuple(history), schedule)


def binary_case() -> Case:
    """Bug 1: MariaDB stored VARBINARY and BINARY keys and values as hex text (b"\\x00\\x01" as b"0001")."""
    schema = Schema(
        TABLE,
        (
            Column("k", "varbinary", key=True, length=16),
            Column("v", "varbinary", length=4),
            Column("f", "binary", length=2),
        ),
    )
    item = {"k": {"B": "AAE="}, "v": {"B": "/w=="}, "f": {"B": "AAE="}}
    return case_of(schema, [("INSERT", item)], ((0,),))


def test_binary_keys_and_values_arrive_as_their_bytes(engine: sa.Engine) -> None:
    check(engine, binary_case())


def numeric_key(value: str) -> dict[str, Any]:
    return {"k": {"N": value}}


def test_removing_a_38_digit_key_leaves_its_float_neighbour(server_engine: sa.Engine) -> None:
    """Bug 2: MariaDB compared DECIMAL keys as doubles in the guarded DELETE."""
    schema = Schema(TABLE, (Column("k", "numeric", key=True, precision=38, scale=0),))
    case = case_of(
        schema,
        [
            ("INSERT", numeric_key("12345678901234567890")),
            ("INSERT", numeric_key("12345678901234567891")),
            ("REMOVE", numeric_key("12345678901234567890")),
        ],
        ((0, 1), (2,)),
    )

    check(server_engine, case)


def test_a_tombstone_holds_back_only_its_own_38_digit_key(server_engine: sa.Engine) -> None:
    """Bug 3: tombstone keys were rounded to 28 digits, so a late INSERT of a neighbour was lost."""
    schema = Schema(TABLE, (Column("k", "numeric", key=True, precision=38, scale=0),))
    case = case_of(
        schema,
        [
            ("INSERT", numeric_key("10000000000000000000000000000000000002")),
            ("INSERT", numeric_key("10000000000000000000000000000000000001")),
            ("REMOVE", numeric_key("10000000000000000000000000000000000001")),
        ],
        ((1, 2), (0,)),  # the first batch late, after the second
    )

    check(server_engine, case)


PLAIN = Schema(TABLE, (Column("k", "string", key=True, length=20), Column("v", "integer")))


@pytest.mark.parametrize(
    ("changes", "schedule"),
    [
        pytest.param(["INSERT", "REMOVE", "INSERT"], ((0,), (2, 1)), id="insert-then-older-remove"),
        pytest.param(["INSERT", "REMOVE"], ((1, 0),), id="remove-then-older-insert"),
        pytest.param(["INSERT", "MODIFY", "MODIFY"], ((0, 2, 1),), id="modify-then-older-modify"),
        pytest.param(["INSERT", "MODIFY"], ((0, 1, 0),), id="duplicate-after-newer"),
    ],
)
def test_records_of_a_batch_collapse_by_sequence_number_not_position(
    engine: sa.Engine, changes: list[str], schedule: tuple[tuple[int, ...], ...]
) -> None:
    """Bug 9: the last record of an item by position won, even when it was older."""
    items = [{"k": {"S": "a"}, "v": {"N": str(n)}} for n in range(len(changes))]
    case = case_of(PLAIN, list(zip(changes, items, strict=True)), schedule)

    check(engine, case)


def test_a_number_in_a_string_key_is_stored_as_its_canonical_text(engine: sa.Engine) -> None:
    """`1.50` and `1.5` are one DynamoDB item, and one row keyed "1.5"."""
    schema = Schema(
        TABLE, (Column("k", "string", key=True, length=20, numbers=True), Column("v", "string", length=20))
    )
    case = case_of(
        schema,
        [
            ("INSERT", {"k": {"N": "1.50"}, "v": {"N": "1E+2"}}),
            ("MODIFY", {"k": {"N": "1.5"}, "v": {"N": "-0.0"}}),
        ],
        ((0,), (1,)),
    )

    check(engine, case)


def test_text_beyond_latin1_arrives_exactly_in_a_latin1_database(latin1_engine: sa.Engine) -> None:
    """A utf8mb4 table in a latin1 database keeps 4-byte and combining characters (not `?`)."""
    schema = Schema(TABLE, (Column("k", "string", key=True, length=20), Column("v", "text")))
    case = case_of(
        schema,
        [
            ("INSERT", {"k": {"S": "😀"}, "v": {"S": "e\u0301 \U0001d518 \x91"}}),
            ("INSERT", {"k": {"S": "日本語"}, "v": {"S": "é"}}),
        ],
        ((0, 1),),
    )

    check(latin1_engine, case, mysql_charset="utf8mb4")


def test_numeric_columns_take_every_number_they_keep_exactly(engine: sa.Engine) -> None:
    """On SQLite a Numeric(p, s) takes N whose float reads back as the same number, 16+ digits included."""
    schema = Schema(
        TABLE,
        (
            Column("k", "numeric", key=True, precision=38, scale=0),
            Column("v", "numeric", precision=38, scale=30),
        ),
    )
    case = case_of(
        schema,
        [
            ("INSERT", {"k": {"N": str(2**60)}, "v": {"N": "0.100000000000000005551115123126"}}),
            ("INSERT", {"k": {"N": "99999999999999997748809823456034029568"}, "v": {"N": "0.5"}}),
        ],
        ((0, 1),),
    )

    check(engine, case)
