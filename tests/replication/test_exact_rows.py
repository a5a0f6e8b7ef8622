"""
Built-in replication on real schemas: every key and value arrives exactly, or is refused by name.

Events are built by hand here, as a new user would, in the shape Lambda sends
(typed attribute values, base64 binary, sequence numbers as text).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

import dynastream
from dynastream.exceptions import ConfigurationError, MalformedRecordError, MappingError
from dynastream.schema import item_key, quarantine
from tests.conftest import _server_url

ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/Items/stream/2026-01-01T00:00:00.000"
BASE = 10**25  # sequence numbers of 26 digits


def typed(value: Any) -> dict[str, Any]:
    """A Python value as DynamoDB JSON, the way Lambda carries it."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, Decimal)):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {"M": {name: typed(member) for name, member in value.items()}}
    if isinstance(value, list):
        return {"L": [typed(member) for member in value]}
    return {"S": value}


def record(
    name: str,
    sequence: int,
    keys: dict[str, Any],
    new: dict[str, Any] | None = None,
    *,
    old: dict[str, Any] | None = None,
    created: Any = 1_790_000_000,
    event_id: str | None = None,
    raw_keys: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One Lambda stream record; `raw_keys` and typed images go in as they are."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": created,
        "Keys": raw_keys if raw_keys is not None else {k: typed(v) for k, v in keys.items()},
        "SequenceNumber": str(sequence),
        "SizeBytes": 100,
        "StreamViewType": "NEW_IMAGE",
    }
    if new is not None:
        dynamodb["NewImage"] = {k: typed(v) for k, v in new.items()}
    if old is not None:
        dynamodb["OldImage"] = {k: typed(v) for k, v in old.items()}
    return {
        "eventID": event_id or f"e{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "eventSourceARN": ARN,
        "dynamodb": dynamodb,
    }


def put(sequence: int, item: dict[str, Any], key: str = "pk", *, name: str = "MODIFY") -> dict[str, Any]:
    return record(name, sequence, {key: item[key]}, item)


def remove(sequence: int, keys: dict[str, Any], **options: Any) -> dict[str, Any]:
    return record("REMOVE", sequence, keys, **options)


def replicate(engine: sa.Engine, table: sa.Table, **options: Any) -> dynastream.App:
    table.metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Items", into=table, **options)
    return app


def dispatch(app: dynastream.App, *records: dict[str, Any]) -> dynastream.BatchResult:
    return app.dispatch({"Records": list(records)})


def doc(value: Any) -> str:
    """A JSON column's value in a form sets can hold."""
    return json.dumps(value, sort_keys=True)


def all_rows(engine: sa.Engine, table: sa.Table) -> set[tuple[Any, ...]]:
    """Every row, without dynastream's columns; JSON values as `doc()` gives them."""
    names = [c for c in table.columns if not c.name.startswith("dynastream_")]
    with engine.connect() as connection:
        return {
            tuple(doc(v) if isinstance(v, (dict, list)) else v for v in row)
            for row in connection.execute(sa.select(*names))
        }


def failure_of(result: dynastream.BatchResult) -> BaseException:
    assert result.failure is not None, "the batch was acknowledged"
    return result.failure.error


# 1. Binary columns of every kind ------------------------------------------------------------------


def test_varbinary_and_binary_keys_and_values_are_stored_as_bytes(engine: sa.Engine) -> None:
    postgresql = engine.dialect.name == "postgresql"  # it has BYTEA only
    table = sa.Table(
        "exact_binary",
        sa.MetaData(),
        sa.Column("pk", sa.LargeBinary() if postgresql else sa.VARBINARY(16), primary_key=True),
        sa.Column("fixed", sa.LargeBinary() if postgresql else sa.BINARY(2)),
        sa.Column("blob", sa.LargeBinary),
        dynastream.sequence_column(),
    )
    app = replicate(engine, table)
    values = {"pk": b"\x00\x01", "fixed": b"\xff\x00", "blob": b"\x00\xfe"}

    first = dispatch(
        app, put(BASE + 1, values), put(BASE + 2, {"pk": b"\xff", "fixed": b"ab", "blob": b"\x7f"})
    )
    second = dispatch(app, remove(BASE + 3, {"pk": b"\xff"}))

    assert (None, None) == (first.failure, second.failure)
    assert {(b"\x00\x01", b"\xff\x00", b"\x00\xfe")} == all_rows(engine, table)


# 2 and 3. Numeric keys compare exactly, in every statement and in tombstones --------------------------

numbers = sa.Table(
    "exact_numeric_keys",
    sa.MetaData(),
    sa.Column("pk", sa.Numeric(38, 0), primary_key=True),
    sa.Column("label", sa.String(10)),
    dynastream.sequence_column(),
)


def test_removing_a_20_digit_key_leaves_its_neighbour_equal_to_it_as_a_double(
    server_engine: sa.Engine,
) -> None:
    app = replicate(server_engine, numbers)
    dispatch(
        app,
        put(BASE + 1, {"pk": 12345678901234567890, "label": "a"}),
        put(BASE + 2, {"pk": 12345678901234567891, "label": "b"}),
    )

    result = dispatch(app, remove(BASE + 3, {"pk": 12345678901234567890}))

    assert result.failure is None
    assert {(Decimal(12345678901234567891), "b")} == all_rows(server_engine, numbers)


def test_a_tombstone_blocks_only_its_own_38_digit_key(server_engine: sa.Engine) -> None:
    first, second = 10**37 + 1, 10**37 + 2  # one number in 28 significant digits
    app = replicate(server_engine, numbers)
    dispatch(app, remove(BASE + 10, {"pk": first}))

    late = dispatch(app, put(BASE + 5, {"pk": second, "label": "kept"}, name="INSERT"))

    assert late.failure is None
    assert {(Decimal(second), "kept")} == all_rows(server_engine, numbers)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (Decimal("1" + "0" * 36 + "1"), Decimal("1" + "0" * 36 + "2")),
        (
            Decimal("9.9999999999999999999999999999999999999E+125"),
            Decimal("9.9999999999999999999999999999999999998E+125"),
        ),
        (Decimal("1E-130"), Decimal("1.0000000000000000000000000000000000001E-130")),
    ],
)
def test_item_keys_of_different_numbers_differ(one: Decimal, other: Decimal) -> None:
    assert item_key([one]) != item_key([other])


@given(
    keys=st.lists(
        st.one_of(st.text(st.characters(exclude_categories=["Cs"])), st.text(st.characters(codec="ascii"))),
        min_size=1,
        max_size=3,
    )
)
def test_item_keys_of_text_are_the_digest_of_their_json(keys: list[str]) -> None:
    # Tombstones and item locks store item keys: the text hashed must never change.
    text = json.dumps([["s", key] for key in keys], ensure_ascii=False, separators=(",", ":"))

    assert item_key(keys) == hashlib.sha256(text.encode()).hexdigest()


def test_an_item_key_is_what_earlier_versions_stored() -> None:
    assert item_key(["o-1"]) == "d264907ed49a6b737a56562c04bd10bb23080f6cab454c23dcccc1ca5c707fb3"


def test_item_keys_of_one_number_spelled_twice_are_one() -> None:
    assert item_key([Decimal("1.50")]) == item_key([Decimal("1.5")]) == item_key([Decimal("15E-1")])


# 5. Empty images are no images ----------------------------------------------------------------------


def test_a_soft_delete_with_an_empty_old_image_keeps_the_last_values(engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_soft",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("label", sa.String(10), nullable=False),
        dynastream.sequence_column(),
        dynastream.deleted_column(),
    )
    app = replicate(engine, table, deletes="soft_delete")
    gone = remove(BASE + 2, {"pk": "a"})
    gone["dynamodb"]["OldImage"] = {}

    result = dispatch(app, put(BASE + 1, {"pk": "a", "label": "kept"}, name="INSERT"), gone)

    assert result.failure is None
    with engine.connect() as connection:
        row = connection.execute(sa.select(table.c.label, table.c.dynastream_deleted_at)).one()
    assert "kept" == row.label
    assert row.dynastream_deleted_at is not None


# 6. Keys that differ in case or trailing spaces stay apart ----------------------------------------


def test_keys_differing_in_case_or_trailing_space_are_three_rows(engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_text_keys",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("label", sa.String(10)),
        dynastream.sequence_column(),
    )
    app = replicate(engine, table)
    dispatch(app, *(put(BASE + n, {"pk": key, "label": key}) for n, key in enumerate(["abc", "ABC", "abc "])))

    result = dispatch(app, remove(BASE + 10, {"pk": "abc"}))

    assert result.failure is None
    assert {("ABC", "ABC"), ("abc ", "abc ")} == all_rows(engine, table)


def test_a_key_column_that_ignores_case_is_refused_before_anything_is_written(engine: sa.Engine) -> None:
    key_type = sa.String(10, collation="NOCASE") if engine.dialect.name == "sqlite" else sa.String(10)
    table = sa.Table(
        "exact_loose_keys",
        sa.MetaData(),
        sa.Column("pk", key_type, primary_key=True),
        dynastream.sequence_column(),
    )
    if engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's default collation is deterministic: the nondeterministic case is below")
    app = replicate(engine, table)

    result = dispatch(app, put(BASE + 1, {"pk": "abc"}))

    error = failure_of(result)
    assert isinstance(error, ConfigurationError)
    assert "exact_loose_keys.pk" in str(error)
    assert ("ExactString" in str(error)) == (engine.dialect.name in ("mysql", "mariadb"))
    assert set() == all_rows(engine, table)


def test_a_nondeterministic_key_collation_is_refused_on_postgresql(server_engine: sa.Engine) -> None:
    if server_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's nondeterministic collations")
    with server_engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE COLLATION IF NOT EXISTS dynastream_test_ci"
            " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
        )
    table = sa.Table(
        "exact_ci_keys",
        sa.MetaData(),
        sa.Column("pk", sa.String(10, collation="dynastream_test_ci"), primary_key=True),
        dynastream.sequence_column(),
    )
    app = replicate(server_engine, table)

    result = dispatch(app, put(BASE + 1, {"pk": "abc"}))

    assert isinstance(failure_of(result), ConfigurationError)


# 7. A latin1 database, and columns of narrow character sets ---------------------------------------


@pytest.fixture
def latin1_engine() -> Any:
    url = _server_url("mysql")  # local_infile=1 on the staging path
    name = f"dynastream_test_latin1_{os.getpid()}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = sa.create_engine(make_url(url).set(database=None), poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        connection.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    engine = sa.create_engine(make_url(url).set(database=name))
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


TEXTS = ["Zoë", "€ 5", "emoji 😀", "日本語", "tab\tnew\nline", "'quote\"", "\\backslash"]


def test_utf8mb4_columns_in_a_latin1_database_keep_every_character(latin1_engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_unicode",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(20), primary_key=True),
        sa.Column("text", sa.String(40)),
        sa.Column("doc", sa.JSON),
        dynastream.sequence_column(),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    app = replicate(latin1_engine, table)

    result = dispatch(
        app,
        *(put(BASE + n, {"pk": text, "text": text, "doc": {text: [text]}}) for n, text in enumerate(TEXTS)),
    )
    deleted = dispatch(app, remove(BASE + 100, {"pk": TEXTS[2]}))

    assert (None, None) == (result.failure, deleted.failure)
    expected = {(text, text, doc({text: [text]})) for text in TEXTS if text != TEXTS[2]}
    assert expected == {
        (a, b, doc(json.loads(c)) if isinstance(c, str) and c.startswith("{") else c)
        for a, b, c in all_rows(latin1_engine, table)
    }


def test_text_a_columns_character_set_cannot_hold_is_refused_by_name(latin1_engine: sa.Engine) -> None:
    from sqlalchemy.dialects import mysql

    table = sa.Table(
        "exact_narrow",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(20), primary_key=True),
        sa.Column("western", mysql.VARCHAR(20, charset="latin1")),
        sa.Column("three_bytes", mysql.VARCHAR(20, charset="utf8mb3")),
        dynastream.sequence_column(),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    app = replicate(latin1_engine, table)

    kept = dispatch(app, put(BASE + 1, {"pk": "a", "western": "€ Zoë", "three_bytes": "日本語"}))
    latin = dispatch(app, put(BASE + 2, {"pk": "b", "western": "日本語", "three_bytes": "x"}))
    emoji = dispatch(app, put(BASE + 3, {"pk": "c", "western": "x", "three_bytes": "😀"}))

    assert kept.failure is None
    assert {("a", "€ Zoë", "日本語")} == all_rows(latin1_engine, table)
    for result, column in ((latin, "western"), (emoji, "three_bytes")):
        error = failure_of(result)
        assert isinstance(error, MappingError)
        assert column == error.column


# 8. SQLite keeps what it can keep exactly, and refuses the rest --------------------------------------


def test_sqlite_refuses_numbers_it_would_read_back_as_others(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'numbers.sqlite'}")
    table = sa.Table(
        "exact_sqlite_numbers",
        sa.MetaData(),
        sa.Column("pk", sa.String(10), primary_key=True),
        sa.Column("money", sa.Numeric(12, 2)),
        sa.Column("wide", sa.Numeric(38, 10)),
        sa.Column("fine", sa.Numeric(20, 18)),
        sa.Column("doc", sa.JSON),
        dynastream.sequence_column(),
    )
    app = replicate(engine, table)

    kept = dispatch(app, put(BASE + 1, {"pk": "a", "money": Decimal("1234567890.12"), "wide": 1, "doc": 12}))
    refused = [
        dispatch(app, put(BASE + 2, {"pk": "b", "wide": Decimal("1234567890.12")})),
        dispatch(app, put(BASE + 3, {"pk": "c", "fine": Decimal("0.1")})),
        dispatch(app, put(BASE + 4, {"pk": "d", "doc": 1234567890123456789012345678})),
    ]

    assert kept.failure is None
    with engine.connect() as connection:
        row = connection.execute(sa.select(table.c.money, table.c.wide, table.c.doc)).one()
    assert (Decimal("1234567890.12"), Decimal(1), 12) == tuple(row)
    assert ["wide", "fine", "doc"] == [getattr(failure_of(r), "column", None) for r in refused]
    engine.dispose()


# 9. Any order inside a batch ends as one at a time would --------------------------------------------


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        # [A@5, B@6, A@5 again]: B, the newest
        (
            [
                put(BASE + 5, {"pk": "k", "label": "A"}),
                put(BASE + 6, {"pk": "k", "label": "B"}),
                put(BASE + 5, {"pk": "k", "label": "A"}),
            ],
            {("k", "B")},
        ),
        # [INSERT@7, REMOVE@5]: the row stays
        (
            [put(BASE + 7, {"pk": "k", "label": "I"}, name="INSERT"), remove(BASE + 5, {"pk": "k"})],
            {("k", "I")},
        ),
        # [REMOVE@9, INSERT@8]: no row
        ([remove(BASE + 9, {"pk": "k"}), put(BASE + 8, {"pk": "k", "label": "I"}, name="INSERT")], set()),
    ],
)
def test_a_batch_in_any_order_ends_as_its_newest_change(
    engine: sa.Engine, batch: list[dict[str, Any]], expected: set[tuple[Any, ...]]
) -> None:
    table = sa.Table(
        "exact_order",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("label", sa.String(10)),
        dynastream.sequence_column(),
    )
    app = replicate(engine, table)

    result = dispatch(app, *batch)
    # and a late change older than the batch's newest changes nothing
    late = dispatch(app, put(BASE + 4, {"pk": "k", "label": "late"}))

    assert (None, None) == (result.failure, late.failure)
    assert expected == all_rows(engine, table)


# 10. A custom mapper's values get the same checks -----------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"), [("name", "abcdefghij"), ("amount", Decimal("1.005")), ("amount", 1.005)]
)
def test_a_custom_mappers_value_that_does_not_fit_is_refused_not_cut(
    engine: sa.Engine, column: str, value: Any
) -> None:
    table = sa.Table(
        "exact_custom",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("name", sa.String(5)),
        sa.Column("amount", sa.Numeric(10, 2)),
        dynastream.sequence_column(),
    )

    def mapper(item: dict[str, Any]) -> dict[str, Any]:
        return {"pk": item["pk"], "name": "ok", "amount": 1, column: value}

    app = replicate(engine, table, mapper=mapper)

    result = dispatch(app, put(BASE + 1, {"pk": "k"}))

    error = failure_of(result)
    assert isinstance(error, MappingError)
    assert column == error.column
    assert set() == all_rows(engine, table)


def test_a_custom_mappers_python_values_are_stored_exactly(engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_custom_ok",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("amount", sa.Numeric(10, 2)),
        sa.Column("ratio", sa.Float),
        sa.Column("count", sa.BigInteger),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("ref", sa.Uuid),
        dynastream.sequence_column(),
    )
    reference = uuid.UUID("0b9e2f4c-7a51-4c1e-9f1e-3c2d1b0a9e8f")
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def mapper(item: dict[str, Any]) -> dict[str, Any]:
        return {
            "pk": item["pk"],
            "amount": 12.5,
            "ratio": 0.1,
            "count": 2**62,
            "at": moment,
            "ref": reference,
        }

    app = replicate(engine, table, mapper=mapper)

    result = dispatch(app, put(BASE + 1, {"pk": "k"}))

    assert result.failure is None
    with engine.connect() as connection:
        row = connection.execute(sa.select(table.c.amount, table.c.ratio, table.c.count, table.c.ref)).one()
    assert (Decimal("12.5"), 0.1, 2**62, reference) == tuple(row)


# 11. Valid items that were permanent poison ---------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


json_table = sa.Table(
    "exact_json",
    sa.MetaData(),
    sa.Column("pk", dynastream.ExactString(10), primary_key=True),
    sa.Column("doc", sa.JSON),
    dynastream.sequence_column(),
)


def test_maps_nested_as_deep_as_mariadb_takes_are_stored_exactly(engine: sa.Engine) -> None:
    app = replicate(engine, json_table)
    doc = nested(29)  # JSON_DEPTH 30, in a chunk of rows 32: MariaDB's limit

    result = dispatch(app, put(BASE + 1, {"pk": "k", "doc": doc}))

    assert result.failure is None
    with engine.connect() as connection:
        assert doc == connection.scalar(sa.select(json_table.c.doc))


def test_maps_nested_deeper_than_the_database_takes_are_refused_by_name(engine: sa.Engine) -> None:
    app = replicate(engine, json_table)

    result = dispatch(app, put(BASE + 1, {"pk": "k", "doc": nested(30)}))

    if getattr(engine.dialect, "is_mariadb", False):
        error = failure_of(result)
        assert isinstance(error, MappingError)
        assert "doc" == error.column
    else:
        assert result.failure is None


def test_a_lone_surrogate_is_a_typed_error_and_quarantines_cleanly(engine: sa.Engine) -> None:
    app = replicate(engine, json_table, on_poison="quarantine", keep_raw=True)
    poison = put(BASE + 1, {"pk": "k", "doc": {"note": "\ud800"}})

    result = dispatch(app, poison, put(BASE + 2, {"pk": "next", "doc": {}}))

    assert result.failure is None
    [set_aside] = result.quarantined
    assert isinstance(set_aside.error, (MappingError, MalformedRecordError))
    assert {("next", doc({}))} == all_rows(engine, json_table)
    with engine.connect() as connection:
        assert "e" + str(BASE + 1) == connection.scalar(sa.select(quarantine.c.event_id))


def test_nul_in_json_is_refused_on_postgresql_only(engine: sa.Engine) -> None:
    app = replicate(engine, json_table)

    result = dispatch(app, put(BASE + 1, {"pk": "k", "doc": {"note": "a\x00b"}}))

    if engine.dialect.name == "postgresql":
        assert isinstance(failure_of(result), MappingError)
    else:
        assert result.failure is None
        assert {("k", doc({"note": "a\x00b"}))} == all_rows(engine, json_table)


def test_a_sequence_number_of_41_digits_is_malformed_and_quarantines_cleanly(engine: sa.Engine) -> None:
    app = replicate(engine, json_table, on_poison="quarantine")
    long_id = "x" * 200

    result = dispatch(
        app,
        record("INSERT", 10**40 + 1, {"pk": "k"}, {"pk": "k", "doc": {}}, event_id=long_id),
        put(BASE + 2, {"pk": "next", "doc": {}}),
    )

    assert result.failure is None
    [set_aside] = result.quarantined
    assert isinstance(set_aside.error, MalformedRecordError)
    assert "dynamodb.SequenceNumber" == set_aside.error.field
    with engine.connect() as connection:
        stored = connection.execute(sa.select(quarantine.c.event_id, quarantine.c.sequence_number)).one()
    assert stored.event_id.startswith("x" * 100)
    assert 128 == len(stored.event_id)
    assert 40 == len(stored.sequence_number)
    assert {("next", doc({}))} == all_rows(engine, json_table)


def test_event_ids_sharing_a_long_prefix_are_two_events_in_the_ledger(engine: sa.Engine) -> None:
    seen: list[str] = []
    app = dynastream.App(engine=engine)
    app.create_tables()

    @app.handler("Items", exactly_once=True)
    def count(records: Any, uow: Any) -> None:
        seen.extend(r.event_id for r in records)

    first, second = "p" * 150 + "1", "p" * 150 + "2"
    app.dispatch({"Records": [record("INSERT", BASE + 1, {"pk": "a"}, {"pk": "a"}, event_id=first)]})
    app.dispatch({"Records": [record("INSERT", BASE + 2, {"pk": "b"}, {"pk": "b"}, event_id=second)]})
    app.dispatch({"Records": [record("INSERT", BASE + 2, {"pk": "b"}, {"pk": "b"}, event_id=second)]})

    assert [first, second] == seen


# 12. Smaller decisions ---------------------------------------------------------------------------


def test_keys_say_which_item_a_record_changes_not_its_image(engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_keys_win",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("label", sa.String(10)),
        dynastream.sequence_column(),
    )
    app = replicate(engine, table)

    written = dispatch(app, record("INSERT", BASE + 1, {"pk": "real"}, {"pk": "image", "label": "x"}))

    assert {("real", "x")} == all_rows(engine, table)
    removed = dispatch(app, remove(BASE + 2, {"pk": "real"}))
    assert (None, None) == (written.failure, removed.failure)
    assert set() == all_rows(engine, table)


def test_a_number_key_in_a_text_column_is_one_row_however_it_is_spelled(engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_number_text_keys",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("label", sa.String(10)),
        dynastream.sequence_column(),
    )
    app = replicate(engine, table)
    spelled = [{"N": "1.50"}, {"N": "1.5"}, {"N": "15E-1"}]
    changes = []
    for n, key in enumerate(spelled):
        change = record("MODIFY", BASE + n, {}, raw_keys={"pk": key})
        change["dynamodb"]["NewImage"] = {"pk": key, "label": {"S": str(n)}}
        changes.append(change)

    written = dispatch(app, *changes)
    assert {("1.5", "2")} == all_rows(engine, table)

    removed = dispatch(app, record("REMOVE", BASE + 9, {}, raw_keys={"pk": {"N": "1.500"}}))
    assert (None, None) == (written.failure, removed.failure)
    assert set() == all_rows(engine, table)


def test_a_soft_delete_keeps_the_removal_time_to_the_microsecond(engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_deleted_at",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        dynastream.sequence_column(),
        dynastream.deleted_column(),
    )
    app = replicate(engine, table, deletes="soft_delete")

    dispatch(
        app, put(BASE + 1, {"pk": "k"}), remove(BASE + 2, {"pk": "k"}, created=Decimal("1790000000.123456"))
    )

    with engine.connect() as connection:
        deleted_at = connection.scalar(sa.select(table.c.dynastream_deleted_at))
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=1_790_000_000, microseconds=123456)
    assert expected == (deleted_at if deleted_at.tzinfo else deleted_at.replace(tzinfo=UTC))


def test_check_with_the_database_refuses_a_key_column_that_ignores_case(engine: sa.Engine) -> None:
    key_type = sa.String(10, collation="NOCASE") if engine.dialect.name == "sqlite" else sa.String(10)
    table = sa.Table(
        "exact_checked",
        sa.MetaData(),
        sa.Column("pk", key_type, primary_key=True),
        dynastream.sequence_column(),
    )
    table.create(engine)
    app = dynastream.App(engine=engine)
    app.replicate("Items", into=table)

    app.check()  # without the database: nothing to see
    if engine.dialect.name == "postgresql":
        app.check(database=True)  # PostgreSQL's default collation is deterministic
    else:
        with pytest.raises(ConfigurationError, match=r"exact_checked\.pk"):
            app.check(database=True)


def test_a_table_whose_collation_is_not_the_databases_default_replicates(server_engine: sa.Engine) -> None:
    table = sa.Table(
        "exact_collated",
        sa.MetaData(),
        sa.Column("pk", dynastream.ExactString(10), primary_key=True),
        sa.Column("ref", sa.Uuid, primary_key=True),
        sa.Column("label", sa.String(10)),
        dynastream.sequence_column(),
        mysql_collate="utf8mb4_unicode_ci",
        mariadb_collate="utf8mb4_unicode_ci",
    )
    app = replicate(server_engine, table)
    ref = uuid.UUID("0b9e2f4c-7a51-4c1e-9f1e-3c2d1b0a9e8f")
    keys = {"pk": "k", "ref": str(ref)}

    results = [
        dispatch(app, record("INSERT", BASE + 1, keys, {**keys, "label": "a"})),
        dispatch(app, remove(BASE + 3, keys)),
        dispatch(app, record("INSERT", BASE + 2, keys, {**keys, "label": "late"})),
    ]

    assert [None, None, None] == [r.failure for r in results]
    assert set() == all_rows(server_engine, table)
