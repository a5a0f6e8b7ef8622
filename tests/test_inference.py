"""
Schema inference: the type rules, names, rendering, and generated schemas that replicate on every engine.
"""

from __future__ import annotations

import itertools
import json
import string
import sys
import types
from decimal import Decimal
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dynastream
from dynastream import inference
from dynastream.exceptions import MalformedEventError, SourceError
from dynastream.inference import KeyAttribute, Sample
from dynastream.testing import EventFactory
from tests.replica_check import assert_replica_equals

# --- generated schemas -------------------------------------------------------------

_counter = itertools.count()

# Names as tables have them: camelCase, snake_case, reserved words, separators, unicode,
# long ones, and names that collide once in snake case.
NAMES = st.one_of(
    st.sampled_from(
        [
            "orderId",
            "order_id",
            "OrderID",
            "order",
            "select",
            "nothing",
            "window",
            "metadata",
            "class",
            "from",
            "Total",
            "total",
            "created-at",
            "shipping address",
            "größe",
            "名前",
            "1st",
            "_private",
            "a" * 70,
            "a" * 70 + "b",
            "dynastream_sequence",
            "x.y",
            "tags",
            "value",
            'q"""uote',
            "back\\slash\\N",
            "sa",
            "new\nline",
            "ALL CAPS",
            "Order",
        ]
    ),
    st.from_regex(r"[a-z][a-zA-Z0-9]{0,12}", fullmatch=True),
)


def numbers(digits: int = 38, low: int = -130, high: int = 125) -> st.SearchStrategy[Decimal]:
    """DynamoDB numbers: up to `digits` significant digits, magnitude 1E-130 to under 1E+126."""

    def build(draw_digits: str, exponent: int, negative: bool) -> Decimal:
        value = Decimal(f"{'-' if negative else ''}{draw_digits}E{exponent}")
        adjusted = value.adjusted()
        if adjusted > high or adjusted < low:
            value = Decimal(f"{'-' if negative else ''}{draw_digits}")
        return value

    return st.builds(
        build,
        st.from_regex(rf"[1-9][0-9]{{0,{digits - 1}}}", fullmatch=True),
        st.integers(-40, 40),
        st.booleans(),
    ) | st.just(Decimal(0))


INTEGERS = st.one_of(
    st.integers(-1000, 1000), st.integers(-(10**17), 10**17), st.integers(-(10**37), 10**37)
).map(Decimal)
TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
) | st.text(string.ascii_letters, min_size=200, max_size=3000)
# JSON keeps numbers as int (64 bits on MySQL) or float: nested numbers stay within that.
JSON_NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(Decimal),
    st.decimals(places=3, min_value=-(10**9), max_value=10**9, allow_nan=False),
)
LEAVES = st.one_of(
    st.text(max_size=10).filter(lambda t: "\x00" not in t and t.isprintable()),
    JSON_NUMBERS,
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
)
NESTED = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(string.ascii_letters, max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KINDS: dict[str, st.SearchStrategy[Any]] = {
    "integer": INTEGERS,
    "decimal": numbers(),
    "money": st.decimals(places=2, min_value=0, max_value=10**6, allow_nan=False),
    "text": TEXT,
    "binary": st.binary(max_size=300),
    "bool": st.booleans(),
    "null": st.none(),
    "map": st.dictionaries(st.text(string.ascii_letters, max_size=6), NESTED, max_size=4),
    "list": st.lists(NESTED, max_size=4),
    "strings": st.sets(
        st.text(string.printable.replace("\x00", ""), min_size=1, max_size=8), min_size=1, max_size=4
    ),
    "numbers": st.sets(JSON_NUMBERS, min_size=1, max_size=4),
    "binaries": st.sets(st.binary(min_size=1, max_size=4), min_size=1, max_size=3),
}


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    """A sample of a generated table: generated keys, attribute names, types and values."""
    key_kind = draw(st.sampled_from(["S", "N", "B"]))
    sort_kind = draw(st.sampled_from([None, "S", "N"]))
    names = draw(st.lists(NAMES, min_size=1, max_size=10, unique=True).filter(lambda n: "pk" not in n))
    kinds = {name: draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=2)) for name in names}
    key_values = {
        "S": st.text(
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=30
        ),
        "N": st.one_of(INTEGERS, numbers(digits=12, low=-5, high=15)),
        "B": st.binary(min_size=1, max_size=20),
    }
    count = draw(st.integers(1, 12))
    items = []
    for position in range(count):
        item: dict[str, Any] = {"pk": draw(key_values[key_kind])}
        if sort_kind is not None:
            item["sk"] = Decimal(position) if sort_kind == "N" else f"s{position}"
        for name, choices in kinds.items():
            if draw(st.integers(0, 4)) == 0:
                continue  # sparse: not every item carries every attribute
            item[name] = draw(KINDS[draw(st.sampled_from(choices))])
        items.append(item)
    keys = [KeyAttribute("pk", key_kind, "HASH")]
    if sort_kind is not None:
        keys.append(KeyAttribute("sk", sort_kind, "RANGE"))
    return Sample(f"Generated-{next(_counter)}", tuple(keys), tuple(items), source="generated")


def load_model(source: str, class_name: str) -> Any:
    """Import a generated module (SQLAlchemy resolves its annotations in the module's namespace)."""
    name = f"generated_model_{next(_counter)}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - generated by the test
        return getattr(module, class_name)
    finally:
        del sys.modules[name]


@pytest.fixture
def clean_engine(engine: sa.Engine) -> sa.Engine:
    dynastream.App(engine=engine).create_tables()
    return engine


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sample=samples(), naming=st.sampled_from(["snake_case", "exact"]))
def test_generated_schemas_replicate_their_sample_exactly(
    clean_engine: sa.Engine, sample: Sample, naming: Literal["snake_case", "exact"]
) -> None:
    """
    A generated table takes its sample exactly, or says which columns would refuse values, and only those do.
    """
    table = inference.infer_table(sample, naming=naming)
    dialect = clean_engine.dialect
    database = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
    refused = {c.attribute: c.name for c in table.columns if database in c.refused}
    metadata = sa.MetaData()
    target = table.to_table(metadata)
    # The rendered model defines the same table (the module is what users keep).
    rendered = load_model(inference.render_model(table), table.class_name).__table__
    assert [(c.name, str(c.type), c.primary_key, c.nullable, c.autoincrement) for c in rendered.columns] == [
        (c.name, str(c.type), c.primary_key, c.nullable, c.autoincrement) for c in target.columns
    ]
    metadata.create_all(clean_engine)
    try:
        app = dynastream.App(engine=clean_engine)
        app.replicate(sample.table_name, into=target, naming=naming, renames=table.renames)
        keys = [key.name for key in sample.keys]
        result = app.dispatch(EventFactory(keys=keys).inserts(sample.table_name, list(sample.items)))
        if refused:  # the replication refuses a value of a column the generator said would
            assert result.failure is not None
            assert isinstance(result.failure.error, dynastream.MappingError)
            assert refused.get(result.failure.error.attribute) == result.failure.error.column
        else:
            assert result.failure is None, result.failure
            assert_replica_equals(
                clean_engine, target, list(sample.items), keys, table.renames, naming=naming
            )
    finally:
        metadata.drop_all(clean_engine)


# --- the type rules ------------------------------------------------------------------


def infer(values: list[Any], *, margin: int = 2) -> inference.InferredColumn:
    items = tuple({"id": f"i{n}", "a": value} for n, value in enumerate(values))
    table = inference.infer_table(Sample("T", (KeyAttribute("id", "S"),), items), margin=margin)
    return table.columns[1]


def spelled(column: inference.InferredColumn) -> dict[str, str]:
    return {family: spec.source() for family, spec in column.types.items()}


@pytest.mark.parametrize(
    ("values", "types"),
    [
        ([Decimal(1), Decimal(9_999_999)], dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.Integer()")),
        ([Decimal(10_000_000)], dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.BigInteger()")),
        (
            [Decimal(10**16)],
            {"sqlite": "sa.String(64)", "postgresql": "sa.Numeric(19, 0)", "mysql": "sa.Numeric(19, 0)"},
        ),
        (
            [Decimal("12.5"), Decimal("0.25")],
            dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.Numeric(8, 4)"),
        ),
        (
            [Decimal("1234567890123456789012345678901234567.8")],
            {"sqlite": "sa.String(128)", "postgresql": "sa.Numeric(42, 3)", "mysql": "sa.Numeric(42, 3)"},
        ),
        (
            [Decimal("1E-130")],
            {"sqlite": "sa.Text()", "postgresql": "sa.Numeric(135, 132)", "mysql": "mysql.MEDIUMTEXT()"},
        ),
        (["PAID", "NEW"], dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.String(16)")),
        (["x" * 127], dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.String(255)")),
        (["x" * 128], {"sqlite": "sa.Text()", "postgresql": "sa.Text()", "mysql": "mysql.MEDIUMTEXT()"}),
        (
            [b"\x00"],
            {"sqlite": "sa.LargeBinary()", "postgresql": "sa.LargeBinary()", "mysql": "mysql.MEDIUMBLOB()"},
        ),
        ([True, False], dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.Boolean()")),
        (
            [{"a": Decimal(1)}],
            {"sqlite": "sa.JSON()", "postgresql": "postgresql.JSONB()", "mysql": "sa.JSON()"},
        ),
        (
            [{"a"}, [Decimal(1)]],
            {"sqlite": "sa.JSON()", "postgresql": "postgresql.JSONB()", "mysql": "sa.JSON()"},
        ),
        (["a", Decimal("1.5")], dict.fromkeys(("sqlite", "postgresql", "mysql"), "sa.String(16)")),
        (["a", True], {"sqlite": "sa.JSON()", "postgresql": "postgresql.JSONB()", "mysql": "sa.JSON()"}),
        ([None, None], {"sqlite": "sa.JSON()", "postgresql": "postgresql.JSONB()", "mysql": "sa.JSON()"}),
    ],
)
def test_types_follow_the_mapping_rules(values: list[Any], types: dict[str, str]) -> None:
    assert types == spelled(infer(values))


def test_the_margin_is_stated_and_applied() -> None:
    assert "sa.Numeric(3, 1)" == infer([Decimal("12.5")], margin=0).types["postgresql"].source()
    assert "sa.Numeric(11, 5)" == infer([Decimal("12.5")], margin=4).types["postgresql"].source()
    with pytest.raises(ValueError, match="margin"):
        infer([Decimal(1)], margin=-1)


def test_mixed_types_and_nulls_say_why() -> None:
    assert any("several types in the sample" in note for note in infer(["a", True]).notes)
    assert any("numbers as their text" in note for note in infer(["a", Decimal(1)]).notes)
    assert any("only NULL" in note for note in infer([None]).notes)
    assert "S in 2 items, N in 1" in infer(["a", "b", Decimal(1)]).notes[0]


def test_values_no_type_can_keep_are_reported_not_hidden() -> None:
    # A map holding a number with more digits than JSON keeps, and text with NUL (PostgreSQL).
    column = infer([{"n": Decimal("1.23456789012345678901")}])
    assert {"sqlite", "postgresql", "mysql", "mariadb"} == set(column.refused)
    assert "more digits than JSON columns keep exactly" in column.refused["postgresql"][0][0]
    nul = infer(["a\x00b"])
    assert ["postgresql"] == list(nul.refused)
    table = inference.infer_table(Sample("T", (KeyAttribute("id", "S"),), ({"id": "x", "a": "a\x00b"},)))
    assert [
        "a ('a') on PostgreSQL: text containing a NUL character, which PostgreSQL cannot store (1 values)"
    ] == (table.problems)
    assert "REVIEW" in inference.render_model(table)
    assert "a\x00b" not in inference.render_model(table)


# --- names ---------------------------------------------------------------------------


def test_names_are_safe_and_renames_written_out() -> None:
    attributes = ["orderId", "order_id", "order", "nothing", "metadata", "größe", "1st", "a" * 70, "x.y"]
    items = ({"id": "k", **dict.fromkeys(attributes, "v")},)
    table = inference.infer_table(Sample("Orders", (KeyAttribute("id", "S"),), items))
    assert {
        "order_id": "order_id_2",
        "order": "order_",
        "nothing": "nothing_",
        "metadata": "metadata_",
        "größe": "groe",
        "1st": "col_1st",
        "a" * 70: table.renames["a" * 70],
    } == table.renames
    assert 63 == len(table.renames["a" * 70])
    names = [c.name for c in table.columns]
    assert len(set(names)) == len(names)
    assert "x_y" in names  # a plain snake case name needs no rename
    assert "orders" == table.name
    assert "Orders" == table.class_name


def test_exact_naming_keeps_names_that_are_safe() -> None:
    attributes = ["orderId", "OrderID", "order", "None", "total-2"]
    items = ({"id": "k", **dict.fromkeys(attributes, "v")},)
    table = inference.infer_table(Sample("Orders", (KeyAttribute("id", "S"),), items), naming="exact")
    assert {"orderId": "orderId_2", "order": "order_", "None": "None_", "total-2": "total_2"} == table.renames
    assert "exact" == table.naming
    assert "NAMING = 'exact'" in inference.render_model(table)
    with pytest.raises(ValueError, match="naming"):
        inference.infer_table(table.sample, naming="camel")  # type: ignore[arg-type]


def test_key_text_columns_fit_a_mysql_index() -> None:
    items = ({"pk": "p" * 400, "sk": "s" * 300},)
    table = inference.infer_table(
        Sample("T", (KeyAttribute("pk", "S"), KeyAttribute("sk", "S", "RANGE")), items)
    )
    widths = [c.types["mysql"].arguments[0] for c in table.columns]
    assert [400, 384] == widths  # the sample's own longest values still fit
    assert "3,072 bytes" in table.columns[1].notes[-1]
    assert "REVIEW" in table.columns[0].notes[-1]  # 400 characters: no room for the sort key


# --- rendering ----------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb", "sqlite"])
def test_ddl_names_the_dialects_types(dialect: str) -> None:
    items = ({"id": "k", "total": Decimal("1.5"), "doc": {"a": Decimal(1)}, "note": "t" * 500},)
    ddl = inference.render_ddl(inference.infer_table(Sample("T", (KeyAttribute("id", "S"),), items)), dialect)
    expected = {
        "postgresql": ["id VARCHAR(16) NOT NULL", "doc JSONB", "note TEXT"],
        "mysql": ["COLLATE utf8mb4_0900_bin", "doc JSON", "note MEDIUMTEXT", "CHARSET=utf8mb4"],
        "mariadb": ["COLLATE utf8mb4_nopad_bin", "doc JSON", "note MEDIUMTEXT"],
        "sqlite": ["doc JSON", "note TEXT"],
    }[dialect]
    for part in expected:
        assert part in ddl
    assert ddl.startswith("-- The DynamoDB table 'T'")


def test_model_targets_one_database() -> None:
    items = ({"id": "k", "doc": {"a": Decimal(1)}},)
    table = inference.infer_table(Sample("T", (KeyAttribute("id", "S"),), items))
    assert "with_variant" not in inference.render_model(table, target="postgresql")
    assert "postgresql.JSONB()" in inference.render_model(table, target="postgresql")
    assert "with_variant(postgresql.JSONB(), 'postgresql')" in inference.render_model(table)


# --- samples from files -------------------------------------------------------------


def test_a_lambda_event_is_a_sample(tmp_path: Any) -> None:
    event = EventFactory(keys=["pk", "sk"]).inserts("Orders", [{"pk": "a", "sk": 1, "n": Decimal("2.5")}])
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    sample = inference.read_sample(path)
    assert "Orders" == sample.table_name
    assert [KeyAttribute("pk", "S", "HASH"), KeyAttribute("sk", "N", "RANGE")] == list(sample.keys)
    assert [{"pk": "a", "sk": Decimal(1), "n": Decimal("2.5")}] == list(sample.items)


def test_file_errors_are_clear(tmp_path: Any) -> None:
    with pytest.raises(MalformedEventError, match=r"give the key attribute names"):
        inference.read_sample([{"id": "a"}])
    with pytest.raises(SourceError, match="holds no items"):
        inference.read_sample([], keys=["id"])
    with pytest.raises(SourceError, match="cannot read"):
        inference.read_sample(tmp_path / "missing.json")
    with pytest.raises(MalformedEventError, match="no key attribute 'id'"):
        inference.read_sample([{"other": "a"}], keys=["id"])
    two = EventFactory().event(
        EventFactory().insert("TableA", {"id": "1"}), EventFactory().insert("TableB", {"id": "2"})
    )
    with pytest.raises(MalformedEventError, match="several tables"):
        inference.read_sample(two)
    assert "TableB" == inference.read_sample(two, table_name="TableB").table_name
    keys_only = EventFactory(view_type="KEYS_ONLY").inserts("TableA", [{"id": "1"}])
    with pytest.raises(SourceError, match="KEYS_ONLY"):
        inference.read_sample(keys_only)


# --- diff ------------------------------------------------------------------------------


def test_diff_finds_missing_narrow_and_unfilled() -> None:
    orders = sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("id", dynastream.ExactString(16), primary_key=True),
        sa.Column("status", sa.String(4)),
        sa.Column("total", sa.Numeric(6, 2)),
        sa.Column("retired", sa.String(10)),
        dynastream.sequence_column(),
    )
    items = (
        {"id": "a", "status": "PAID", "total": Decimal("1.5"), "coupon": "private-1"},
        {"id": "b", "status": "SHIPPED", "total": Decimal("1.555"), "coupon": "private-2", "gift": True},
    )
    sample = Sample("Orders", (KeyAttribute("id", "S"),), items)

    found = inference.diff_table(orders, sample, dialects=["postgresql", "sqlite"])

    assert [d.describe() for d in found] == [
        "missing: attribute 'coupon' has no column (2 sampled items carry it)",
        "missing: attribute 'gift' has no column (1 sampled items carry it)",
        (
            "narrow: column 'status' (attribute 'status') on PostgreSQL, SQLite: 7 characters do not fit"
            " String(4) (1 sampled items)"
        ),
        (
            "narrow: column 'total' (attribute 'total') on PostgreSQL, SQLite: more than 2 decimal places"
            " (Numeric(6, 2)) (1 sampled items)"
        ),
        "unfilled: column 'retired' is filled by no sampled item",
    ]
    assert "private" not in repr(found)
    # An extra column keeps what has no column: nothing is missing.
    orders.append_column(sa.Column("rest", sa.JSON))
    assert [] == [d for d in inference.diff_table(orders, sample, extra="rest") if d.kind == "missing"]
    with pytest.raises(ValueError, match="unknown dialect"):
        inference.diff_table(orders, sample, dialects=["oracle"])
