"""
Images mapped as events carry them: the same rows, and the same errors, as
mapping the deserialized item; malformed images in a replicated batch are
reported, never skipped.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

import dynastream
from dynastream._deserialize import InvalidAttributeValue, deserialize_image
from dynastream.exceptions import ColumnValueError, MalformedRecordError
from dynastream.testing import EventFactory
from tests.test_deserialize import _loose_values, images, number_texts

metadata = sa.MetaData()
wide = sa.Table(
    "event_image_wide",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("amount", sa.Numeric(12, 3)),
    sa.Column("count", sa.Integer),
    sa.Column("ratio", sa.Float),
    sa.Column("label", sa.String(8)),
    sa.Column("flag", sa.Boolean),
    sa.Column("blob", sa.LargeBinary),
    sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    sa.Column("tags", sa.JSON),
    sa.Column("required", sa.String(20), nullable=False, default="none"),
)
NAMES = [column.name for column in wide.columns]
DIALECTS = [None, "postgresql", "mysql", "sqlite"]

event_values = st.one_of(
    number_texts().map(lambda text: {"N": text}),
    st.sampled_from(
        [
            {"N": "12.5"},
            {"N": "324.60"},
            {"N": "-91.675502"},
            {"N": "1.0"},
            {"N": "123456789012345678901"},
            {"N": "1E+2"},
            {"S": "a\x00b"},
            {"SS": ["b", "a", "a\x00"]},
            {"SS": ["b", "a"]},
            {"NS": ["2", "10"]},
            {"NULL": True},
            {"BOOL": True},
            {"B": "AAEC"},
        ]
    ),
    _loose_values,
)
nested = st.recursive(
    event_values,
    lambda members: st.one_of(
        st.dictionaries(st.sampled_from(["a", "b", "\x00k", "é"]), members, max_size=3).map(
            lambda m: {"M": m}
        ),
        st.lists(members, max_size=3).map(lambda values: {"L": values}),
    ),
    max_leaves=6,
)


event_images = st.dictionaries(st.sampled_from([*NAMES, "other", "Other"]), nested, max_size=8)


def outcome(call: Any) -> tuple[str, str]:
    """What a mapping gives, with int and float told apart (1 == 1.0 in Python)."""
    try:
        return "row", repr(call())
    except (ColumnValueError, MalformedRecordError) as error:
        return type(error).__name__, str(error)


def checked(mapper: dynastream.RowMapper, image: dict[str, Any]) -> dict[str, Any]:
    try:
        item = deserialize_image(image)
    except InvalidAttributeValue as error:
        raise MalformedRecordError(error.reason, field=error.field("image")) from None
    return mapper(item)


@settings(max_examples=400, deadline=None)
@given(image=event_images, dialect=st.sampled_from(DIALECTS), naming=st.sampled_from(["exact", "snake_case"]))
def test_an_image_maps_as_its_deserialized_item_does(
    image: dict[str, Any], dialect: str | None, naming: Any
) -> None:
    mapper = dynastream.RowMapper(wide, dialect=dialect, naming=naming)

    assert outcome(lambda: checked(mapper, image)) == outcome(lambda: mapper.map_event_image(image))


def numbers_read(call: Any) -> tuple[str, str]:
    """`outcome`, with numbers given as text read as the `Decimal` the server makes of them."""

    def read() -> Any:
        return {
            name: Decimal(value) if name == "amount" and isinstance(value, str) else value
            for name, value in call().items()
        }

    return outcome(read)


@settings(max_examples=300, deadline=None)
@given(
    image=event_images,
    dialect=st.sampled_from(["postgresql", "mysql"]),
    naming=st.sampled_from(["exact", "snake_case"]),
)
def test_an_image_maps_to_the_same_values_with_numbers_as_text(
    image: dict[str, Any], dialect: str, naming: Any
) -> None:
    mapper = dynastream.RowMapper(wide, dialect=dialect, naming=naming)

    assert numbers_read(lambda: mapper.map_event_image(image, numbers_as_text=True)) == outcome(
        lambda: mapper.map_event_image(image)
    )


@settings(max_examples=200, deadline=None)
@given(image=event_images, dialect=st.sampled_from(DIALECTS))
def test_an_image_maps_as_its_deserialized_item_does_with_an_extra_column(
    image: dict[str, Any], dialect: str | None
) -> None:
    mapper = dynastream.RowMapper(wide, dialect=dialect, extra="doc")

    assert outcome(lambda: checked(mapper, image)) == outcome(lambda: mapper.map_event_image(image))


@settings(max_examples=100, deadline=None)
@given(item=images)
def test_valid_images_give_the_same_rows(item: dict[str, Any]) -> None:
    from tests.test_deserialize import lambda_shape

    image = {"pk": {"S": "k"}, "doc": {"M": {name: lambda_shape(value) for name, value in item.items()}}}
    mapper = dynastream.RowMapper(wide, dialect="postgresql")

    assert outcome(lambda: checked(mapper, image)) == outcome(lambda: mapper.map_event_image(image))


# Plain decimal text of up to 16 characters, which the JSON walk reads as a float
# without checking its shortest text; with zeros before and after, and other scripts' digits.
digits = st.integers(1, 10).flatmap(lambda count: st.text("0123456789", min_size=count, max_size=count))
short_decimals = st.one_of(
    st.builds(
        lambda sign, whole, fraction: f"{sign}{whole}.{fraction}", st.sampled_from(["", "-"]), digits, digits
    ),
    st.from_regex(r"-?\d{1,3}\.\d{1,3}", fullmatch=True),
)


@settings(max_examples=500, deadline=None)
@given(number=st.one_of(short_decimals, number_texts()), dialect=st.sampled_from(DIALECTS))
def test_a_number_in_a_json_column_is_read_as_its_decimal_is(number: str, dialect: str | None) -> None:
    mapper = dynastream.RowMapper(wide, dialect=dialect)
    image = {"pk": {"S": "k"}, "doc": {"M": {"n": {"N": number}, "l": {"L": [{"N": number}]}}}}

    assert outcome(lambda: checked(mapper, image)) == outcome(lambda: mapper.map_event_image(image))


# What the deserializer refuses and the mapper's one-pass walk takes inline, where it
# must look for it: an empty SS or one that repeats a member, and lone surrogates (which
# no UTF-8 text holds) in S values and names; DynamoDB never sends either.
INLINE_REFUSALS = [
    pytest.param({"pk": {"S": "k"}, "doc": {"M": {"t": {"SS": []}}}}, id="empty-SS-in-json"),
    pytest.param({"pk": {"S": "k"}, "tags": {"SS": ["a", "a"]}}, id="repeated-SS-member-in-json"),
    pytest.param({"pk": {"S": "k"}, "label": {"S": "a\ud800"}}, id="lone-surrogate-in-a-string-column"),
    pytest.param({"pk": {"S": "k\udc00"}}, id="lone-surrogate-in-the-key-column"),
    pytest.param({"pk": {"S": "k"}, "doc": {"M": {"a": {"S": "\ud800"}}}}, id="lone-surrogate-in-json"),
    pytest.param(
        {"pk": {"S": "k"}, "doc": {"M": {"\ud800": {"S": "x"}}}}, id="lone-surrogate-in-a-json-name"
    ),
    pytest.param({"pk": {"S": "k"}, "tags": {"SS": ["\udfff"]}}, id="lone-surrogate-in-an-SS-in-json"),
    pytest.param({"pk": {"S": "k"}, "\ud800": {"S": "x"}}, id="lone-surrogate-in-an-unmapped-name"),
]


@pytest.mark.parametrize("image", INLINE_REFUSALS)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_image_the_deserializer_refuses_is_refused_by_the_mapper(
    image: dict[str, Any], dialect: str | None
) -> None:
    mapper = dynastream.RowMapper(wide, dialect=dialect)

    assert outcome(lambda: checked(mapper, image)) == outcome(lambda: mapper.map_event_image(image))


def test_numbers_inside_json_keep_their_kind() -> None:
    mapper = dynastream.RowMapper(wide)
    doc = {"M": {"i": {"N": "12"}, "f": {"N": "12.5"}, "z": {"N": "324.60"}, "w": {"N": "1.0"}}}

    row = mapper.map_event_image({"pk": {"S": "k"}, "doc": doc})

    assert '{"i": 12, "f": 12.5, "z": 324.6, "w": 1}' == json.dumps(row["doc"])


def test_an_unmapped_malformed_attribute_is_refused() -> None:
    mapper = dynastream.RowMapper(wide)

    with pytest.raises(MalformedRecordError) as raised:
        mapper.map_event_image({"pk": {"S": "k"}, "unknown": {"N": "NaN"}}, path="dynamodb.NewImage")

    assert "dynamodb.NewImage.unknown" == raised.value.field


# --- in a replicated batch ----------------------------------------------------------------

items = sa.Table(
    "event_image_items",
    sa.MetaData(),
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("amount", sa.Numeric(20, 4)),
    dynastream.sequence_column(),
)


def change(pk: str, amount: str, sequence_number: int, *, event: str = "MODIFY") -> dict[str, Any]:
    events = EventFactory(keys=["pk"], view_type="NEW_IMAGE")
    build = events.insert if event == "INSERT" else events.modify
    return build("Items", {"pk": pk, "amount": Decimal(amount)}, sequence_number=sequence_number)


def amounts(engine: sa.Engine) -> dict[str, Decimal]:
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(items.c.pk, items.c.amount)).all())


def replicating_app(engine: sa.Engine, **options: Any) -> dynastream.App:
    items.metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Items", into=items, **options)
    return app


def test_replication_leaves_images_to_be_read_where_they_are_mapped() -> None:
    app = replicating_app(sa.create_engine("sqlite://"))

    batch = dynastream.read_event(
        {"Records": [change("a", "1", 100)]},
        old_images=app._registry.uses_old_images,
        new_images=app._registry.uses_new_images,
    )

    assert batch.records[0].new_image is None  # read from raw, once, by the mapper


def test_a_malformed_image_is_reported_and_nothing_after_it_is_applied(engine: sa.Engine) -> None:
    app = replicating_app(engine)
    bad = change("b", "2", 200)
    bad["dynamodb"]["NewImage"]["amount"] = {"N": "1_000"}

    result = app.dispatch({"Records": [change("a", "1", 100), bad, change("c", "3", 300)]})

    assert [{"itemIdentifier": "200"}] == result.response()["batchItemFailures"]
    error = result.failure and result.failure.error
    assert isinstance(error, MalformedRecordError)
    assert ("dynamodb.NewImage.amount", "200") == (error.field, error.sequence_number)
    assert {"a": Decimal("1")} == amounts(engine)


def test_a_malformed_image_superseded_in_the_batch_is_still_reported(engine: sa.Engine) -> None:
    app = replicating_app(engine)
    bad = change("a", "1", 100, event="INSERT")
    bad["dynamodb"]["NewImage"]["amount"] = {"N": 20}

    result = app.dispatch({"Records": [bad, change("a", "2", 200)]})

    assert [{"itemIdentifier": "100"}] == result.response()["batchItemFailures"]
    assert {} == amounts(engine)


def test_an_image_that_does_not_fit_superseded_in_the_batch_is_still_reported(engine: sa.Engine) -> None:
    app = replicating_app(engine)
    too_precise = change("a", "1.00001", 100, event="INSERT")

    result = app.dispatch({"Records": [change("b", "1", 50), too_precise, change("a", "2", 200)]})

    assert [{"itemIdentifier": "100"}] == result.response()["batchItemFailures"]
    assert {"b": Decimal("1")} == amounts(engine)


def test_a_malformed_image_is_quarantined_under_the_quarantine_policy(engine: sa.Engine) -> None:
    app = replicating_app(engine, on_poison="quarantine")
    bad = change("b", "2", 200)
    bad["dynamodb"]["NewImage"]["amount"] = {"S": "x", "N": "1"}

    result = app.dispatch({"Records": [change("a", "1", 100), bad, change("c", "3", 300)]})

    assert [] == result.response()["batchItemFailures"]
    assert {"a": Decimal("1"), "c": Decimal("3")} == amounts(engine)
    with engine.connect() as connection:
        kept = connection.execute(sa.select(dynastream.schema.quarantine)).mappings().all()
    assert [(200, "dynastream.exceptions.MalformedRecordError")] == [
        (int(row["sequence_number"]), row["error_type"]) for row in kept
    ]


def test_a_failing_bulk_statement_never_carries_the_rows(engine: sa.Engine) -> None:
    """The chunk travels inside MySQL's statement text: errors show `X'...'` instead."""
    app = replicating_app(engine)
    canary = "canary-4711-personal"
    change_with_canary = change("a", "1", 100)
    change_with_canary["dynamodb"]["NewImage"]["pk"] = {"S": canary[:20]}
    change_with_canary["dynamodb"]["Keys"]["pk"] = {"S": canary[:20]}
    items.drop(engine)  # every statement on the table now fails

    try:
        result = app.dispatch({"Records": [change_with_canary]})
        error: BaseException | None = result.failure and result.failure.error
    except Exception as raised:
        error = raised
    assert error is not None

    texts = []
    while error is not None:
        texts.append(f"{error!s} {error!r} {getattr(error, 'statement', '')}")
        error = error.__cause__ or error.__context__
    text = " ".join(texts)
    assert canary[:20] not in text
    assert canary[:20].encode().hex() not in text


# The staging path's only DDL (see dynastream._replication.stage).
STAGE_NAME = re.compile(r"dynastream_stage_[0-9a-f]{16}")
STAGE_DDL = re.compile(
    r"CREATE TEMPORARY TABLE IF NOT EXISTS (pg_temp\.)?dynastream_stage_[0-9a-f]{16}"
    r" \((c[0-9]+ [^,]+, )+item_key [^,]+\)( ON COMMIT DELETE ROWS| ENGINE=InnoDB)"
)

# Untrusted attribute names: quotes, backticks, ";", "--", NUL, Unicode, and longer than
# any identifier may be (64), each marked so that finding it in SQL text means something.
attribute_names = st.text(
    alphabet=st.sampled_from(["'", '"', "`", ";", "-", " ", "\x00", "é", "\U0001d518", "a", "(", ")", "*"]),
    max_size=80,
).map(lambda fuzz: f"attr'{fuzz}`--;")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(attribute_names, min_size=1, max_size=4, unique=True))
def test_attribute_names_never_become_sql(engine: sa.Engine, names: list[str]) -> None:
    """
    Fuzzed attribute names never reach SQL text, and no DDL runs while a batch is applied.

    But on the staging bulk path: its temporary table, named after a digest and
    with columns `c0`, `c1`..., created once per connection (so at most once
    per batch, and only by a batch that stages).
    """
    app = replicating_app(engine)
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    item = change("a", "1", 100)
    for name in names:
        item["dynamodb"]["NewImage"][name] = {"S": "v"}
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        response = app.lambda_handler({"Records": [item, change("a", "2", 200, event="REMOVE")]}, None)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)

    assert {"batchItemFailures": []} == response
    sql = "\n".join(statements)
    assert not [name for name in names if name in sql]
    ddl = [
        statement
        for statement in statements
        if statement.lstrip().upper().startswith(("CREATE", "DROP", "ALTER", "TRUNCATE"))
    ]
    stages = {name for statement in statements for name in STAGE_NAME.findall(statement)}
    assert len(stages) <= 1
    assert len(ddl) <= len(stages)
    assert [] == [statement for statement in ddl if not STAGE_DDL.fullmatch(statement)]
