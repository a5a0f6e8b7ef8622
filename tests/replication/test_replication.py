"""
Built-in replication: the table ends equal to the source, whatever the delivery.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import dynastream
from dynastream._engine import create_engine
from dynastream.exceptions import ConfigurationError, MappingError
from dynastream.testing import EventFactory

metadata = sa.MetaData()
items = sa.Table(
    "replicated_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("amount", sa.Numeric(20, 4)),
    sa.Column("label", sa.String(40)),
    sa.Column("doc", sa.JSON),
    dynastream.sequence_column(),
)
soft_items = sa.Table(
    "replicated_soft_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("amount", sa.Numeric(20, 4)),
    sa.Column("label", sa.String(40)),
    dynastream.sequence_column(),
    dynastream.deleted_column(),
)
lines = sa.Table(
    "replicated_lines",
    metadata,
    sa.Column("order_id", dynastream.ExactString(20), primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.String(20), nullable=False),
    dynastream.sequence_column(),
)


def make_app(engine: sa.Engine, **options: Any) -> dynastream.App:
    metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Items", into=options.pop("into", items), **options)
    return app


def events(*keys: str, view_type: str = "NEW_IMAGE") -> EventFactory:
    """A factory of records of table Items (key `pk` unless named)."""
    return EventFactory(keys=keys or ("pk",), view_type=view_type, created_at=1_790_000_000)


def put(
    pk: str, amount: str, sequence_number: int, *, event: str = "MODIFY", label: str = "x", doc: Any = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": pk, "amount": Decimal(amount), "label": label}
    if doc is not None:
        item["doc"] = doc
    factory = events()
    build = factory.insert if event == "INSERT" else factory.modify
    return build("Items", item, sequence_number=sequence_number)


def remove(pk: str, sequence_number: int, *, ttl: bool = False) -> dict[str, Any]:
    return events().remove("Items", {"pk": pk}, ttl=ttl, sequence_number=sequence_number)


def rows(engine: sa.Engine, table: sa.Table = items) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as connection:
        result = connection.execute(sa.select(table).order_by(table.c.pk))
        return {row.pk: tuple(row)[1:3] for row in result}


def deliver(app: dynastream.App, *records: dict[str, Any]) -> dict[str, Any]:
    return app.lambda_handler({"Records": list(records)}, None)


# Sequence numbers of very different lengths: a text or float comparison would get them wrong.
S = [10**20 + 7, 10**25 + 3, 10**30, 10**35 + 1, 10**39 + 5, 4 * 10**39]


def test_changes_become_rows(engine: sa.Engine) -> None:
    app = make_app(engine)

    response = deliver(
        app,
        put("a", "1.5", S[0], event="INSERT"),
        put("b", "2", S[1], event="INSERT"),
        put("a", "3.25", S[2]),
    )

    assert {"batchItemFailures": []} == response
    assert {"a": (Decimal("3.25"), "x"), "b": (Decimal("2"), "x")} == rows(engine)


def test_maps_and_lists_land_in_json_columns_and_missing_ones_are_null(engine: sa.Engine) -> None:
    app = make_app(engine)
    doc = {"lines": [{"sku": "A-1", "qty": Decimal(2), "price": Decimal("9.99")}], "tags": ["x"]}

    deliver(app, put("a", "1", S[0], doc=doc), put("b", "1", S[1]))

    with engine.connect() as connection:
        got = dict(connection.execute(sa.select(items.c.pk, items.c.doc).order_by(items.c.pk)).all())
    assert {"a": {"lines": [{"sku": "A-1", "qty": 2, "price": 9.99}], "tags": ["x"]}, "b": None} == got


def test_redelivered_batch_changes_nothing(engine: sa.Engine) -> None:
    app = make_app(engine)
    batch = [put("a", "1", S[0], event="INSERT"), put("a", "2", S[1]), remove("b", S[2]), put("c", "3", S[3])]

    deliver(app, *batch)
    once = rows(engine)
    deliver(app, *batch)

    assert once == rows(engine)


def test_older_batch_after_newer_one_does_not_go_backwards(engine: sa.Engine) -> None:
    app = make_app(engine)

    deliver(app, put("a", "2", S[3]))
    deliver(app, put("a", "1", S[1]))

    assert {"a": (Decimal("2"), "x")} == rows(engine)


def test_sequence_numbers_compare_as_integers_not_text(engine: sa.Engine) -> None:
    app = make_app(engine)

    deliver(app, put("a", "2", 9 * 10**20))
    deliver(app, put("a", "1", 10**20))

    assert {"a": (Decimal("2"), "x")} == rows(engine)
    deliver(app, put("a", "3", 10**21))
    assert {"a": (Decimal("3"), "x")} == rows(engine)


def test_stale_insert_after_remove_does_not_resurrect_the_row(engine: sa.Engine) -> None:
    app = make_app(engine)

    deliver(app, put("a", "1", S[0], event="INSERT"))
    deliver(app, remove("a", S[2]))
    deliver(app, put("a", "1", S[1]))

    assert {} == rows(engine)
    deliver(app, put("a", "4", S[3], event="INSERT"))
    assert {"a": (Decimal("4"), "x")} == rows(engine)


def test_remove_older_than_the_row_is_ignored(engine: sa.Engine) -> None:
    app = make_app(engine)

    deliver(app, put("a", "5", S[3]))
    deliver(app, remove("a", S[1]))

    assert {"a": (Decimal("5"), "x")} == rows(engine)


def test_soft_delete_marks_the_row_and_a_newer_insert_revives_it(engine: sa.Engine) -> None:
    app = make_app(engine, into=soft_items, deletes="soft_delete")

    deliver(app, put("a", "1", S[0], event="INSERT"), remove("a", S[1]))
    with engine.connect() as connection:
        deleted_at = connection.scalar(sa.select(soft_items.c.dynastream_deleted_at))
    deliver(app, put("a", "2", S[2], event="INSERT"))

    assert deleted_at is not None
    with engine.connect() as connection:
        row = connection.execute(sa.select(soft_items)).one()
    assert (Decimal("2"), None) == (row.amount, row.dynastream_deleted_at)


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [("delete", {}), ("ignore", {"a": (Decimal("1"), "x")})],
)
def test_ttl_expiry_follows_the_table_policy(engine: sa.Engine, ttl: str, expected: dict[str, Any]) -> None:
    app = make_app(engine, ttl=ttl)

    deliver(app, put("a", "1", S[0], event="INSERT"), remove("a", S[1], ttl=True))

    assert expected == rows(engine)


def test_ttl_expiry_can_soft_delete_while_user_deletes_delete(engine: sa.Engine) -> None:
    app = make_app(engine, into=soft_items, ttl="soft_delete")

    deliver(app, put("a", "1", S[0], event="INSERT"), put("b", "1", S[1], event="INSERT"))
    deliver(app, remove("a", S[2], ttl=True), remove("b", S[3]))

    with engine.connect() as connection:
        remaining = connection.execute(sa.select(soft_items.c.pk, soft_items.c.dynastream_deleted_at)).all()
    assert ["a"] == [pk for pk, deleted_at in remaining if deleted_at is not None]
    assert 1 == len(remaining)


def test_composite_keys_replicate(engine: sa.Engine) -> None:
    app = make_app(engine, into=lines)

    def line(order: str, n: int, sku: str, seq: int) -> dict[str, Any]:
        keys = {"order_id": order, "line": n}
        return lines_events.modify("Items", {**keys, "sku": sku}, sequence_number=seq)

    lines_events = events("order_id", "line")

    deliver(app, line("o1", 1, "A", S[0]), line("o1", 2, "B", S[1]), line("o2", 1, "C", S[2]))
    deliver(
        app,
        lines_events.remove("Items", {"order_id": "o1", "line": 2}, sequence_number=S[3]),
        line("o1", 1, "Z", S[4]),
    )

    with engine.connect() as connection:
        got = connection.execute(
            sa.select(lines.c.order_id, lines.c.line, lines.c.sku).order_by("order_id", "line")
        )
        assert [("o1", 1, "Z"), ("o2", 1, "C")] == [tuple(r) for r in got]


def test_value_that_does_not_fit_is_reported_with_attribute_and_column(engine: sa.Engine) -> None:
    app = make_app(engine)
    too_long = put("b", "1", S[1], label="x" * 41)

    result = app.dispatch({"Records": [put("a", "1", S[0]), too_long, put("c", "1", S[2])]})

    assert [{"itemIdentifier": str(S[1])}] == result.response()["batchItemFailures"]
    error = result.failure and result.failure.error
    assert isinstance(error, MappingError)
    assert ("label", "label") == (error.attribute, error.column)
    assert {"a": (Decimal("1"), "x")} == rows(engine)


def test_table_without_sequence_column_is_refused() -> None:
    bare = sa.Table("bare", sa.MetaData(), sa.Column("pk", dynastream.ExactString(20), primary_key=True))
    app = dynastream.App(database_url="sqlite://")

    with pytest.raises(ConfigurationError, match="sequence_column"):
        app.replicate("Items", into=bare)


def test_keys_only_stream_cannot_be_replicated(engine: sa.Engine) -> None:
    app = make_app(engine)
    keys_only = events(view_type="KEYS_ONLY").insert("Items", {"pk": "a"}, sequence_number=S[0])

    result = app.dispatch({"Records": [keys_only]})

    assert isinstance(result.failure and result.failure.error, ConfigurationError)


# Histories and deliveries -------------------------------------------------------------

KEYS = ["k1", "k2", "k3"]
changes = st.lists(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["put", "put", "remove"]), st.integers(0, 99)),
    min_size=1,
    max_size=25,
)


def history(spec: list[tuple[str, str, int]]) -> tuple[list[dict[str, Any]], dict[str, tuple[Any, ...]]]:
    """Records in stream order (sequence numbers growing across digit lengths) and the final state."""
    records, state = [], {}
    for position, (key, op, value) in enumerate(spec):
        sequence_number = 10**20 * (3**position) + position  # 21 digits growing past 30
        if op == "put":
            records.append(put(key, str(value), sequence_number))
            state[key] = (Decimal(value), "x")
        else:
            records.append(remove(key, sequence_number))
            state.pop(key, None)
    return records, state


def deliveries(records: list[dict[str, Any]], rng: random.Random) -> list[list[dict[str, Any]]]:
    """Deliver every record at least once, the ways the event source mapping can."""
    batches: list[list[dict[str, Any]]] = []
    start = 0
    while start < len(records):
        size = rng.randint(1, 6)
        batches.append(records[start : start + size])
        start += size
    schedule: list[list[dict[str, Any]]] = []
    for index, batch in enumerate(batches):
        schedule.append(batch)
        roll = rng.random()
        if roll < 0.2:
            schedule.append(batch)  # whole-batch redelivery
        elif roll < 0.35:
            schedule.append(batch[rng.randrange(len(batch)) :])  # redelivery from a reported record
        elif roll < 0.5:
            half = max(1, len(batch) // 2)
            schedule.extend([batch[:half], batch[half:]])  # bisection
        elif roll < 0.6 and index:
            schedule.append(batches[rng.randrange(index)])  # an older batch, late
    return [batch for batch in schedule if batch]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=changes, seed=st.integers(0, 2**32 - 1))
def test_any_delivery_of_any_history_ends_equal_to_the_source(
    engine: sa.Engine, spec: list[tuple[str, str, int]], seed: int
) -> None:
    metadata.create_all(engine)
    dynastream.App(engine=engine).create_tables()
    with engine.begin() as connection:
        connection.execute(items.delete())
        connection.execute(dynastream.schema.tombstones.delete())
    app = make_app(engine)
    records, expected = history(spec)

    for batch in deliveries(records, random.Random(seed)):
        assert {"batchItemFailures": []} == deliver(app, *batch)

    assert expected == rows(engine)


@given(spec=changes)
def test_collapsing_per_key_gives_the_same_state_as_one_record_at_a_time(
    spec: list[tuple[str, str, int]],
) -> None:
    records, _ = history(spec)
    whole = make_app(create_engine(dynastream.Settings(database_url="sqlite://")))
    single = make_app(create_engine(dynastream.Settings(database_url="sqlite://")))

    deliver(whole, *records)
    for one in records:
        deliver(single, one)

    assert rows(single.container.engine()) == rows(whole.container.engine())


class Base(DeclarativeBase):
    pass


class KeyedRow(Base):
    """A model whose attribute names differ from its column names."""

    __tablename__ = "replicated_keyed"

    order_id: Mapped[str] = mapped_column("orderId", dynastream.ExactString(20), primary_key=True)
    total_amount: Mapped[Decimal] = mapped_column("totalAmount", sa.Numeric(10, 2))
    sequence = dynastream.sequence_column()


def test_declarative_model_whose_attributes_differ_from_column_names(engine: sa.Engine) -> None:
    Base.metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Items", into=KeyedRow)
    item = {"orderId": "o-1", "totalAmount": Decimal("12.50")}

    deliver(
        app,
        events("orderId").insert("Items", item, sequence_number=S[0]),
    )
    deliver(app, events("orderId").remove("Items", {"orderId": "o-2"}, sequence_number=S[1]))

    with engine.connect() as connection:
        assert [("o-1", Decimal("12.50"))] == connection.execute(
            sa.select(KeyedRow.order_id, KeyedRow.total_amount)
        ).all()


def test_tombstones_are_pruned_after_their_retention_only(engine: sa.Engine) -> None:
    from datetime import UTC, datetime, timedelta

    from dependency_injector import providers

    app = make_app(engine)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    now = [start]
    app.container.clock.override(providers.Object(lambda: now[0]))
    tombstones = dynastream.schema.tombstones

    def count() -> int:
        with engine.connect() as connection:
            return connection.scalar(sa.select(sa.func.count()).select_from(tombstones)) or 0

    deliver(app, remove("a", S[0]))
    now[0] = start + timedelta(hours=47)
    deliver(app, remove("b", S[1]))
    assert 2 == count()  # nothing old enough yet

    now[0] = start + timedelta(hours=49)
    deliver(app, put("c", "1", S[2]))
    assert 1 == count()  # "a" (49 h old) is gone, "b" (2 h old) stays


def test_a_batch_larger_than_one_chunk_is_written_whole(engine: sa.Engine) -> None:
    app = make_app(engine)
    inserts = [put(f"k{n}", str(n), 10**25 + n, event="INSERT") for n in range(4_500)]
    removes = [remove(f"k{n}", 10**26 + n) for n in range(0, 4_500, 2)]

    assert {"batchItemFailures": []} == deliver(app, *inserts, *removes)

    stored = rows(engine)
    assert 2_250 == len(stored)
    assert {f"k{n}" for n in range(1, 4_500, 2)} == set(stored)


@attrs.frozen
class Priced:
    """Business logic between item and row: amounts arrive in cents."""

    pk: str
    cents: int

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Priced:
        return cls(pk=item["pk"], cents=int(item["cents"]))

    def row(self) -> dict[str, Any]:
        return {"pk": self.pk, "amount": Decimal(self.cents) / 100, "label": "priced", "doc": None}


def cents(pk: str, amount: int, sequence_number: int) -> dict[str, Any]:
    item = {"pk": pk, "cents": Decimal(amount)}
    return events().modify("Items", item, sequence_number=sequence_number)


def test_a_custom_mapper_can_go_through_an_attrs_class(engine: sa.Engine) -> None:
    app = make_app(engine, mapper=lambda item: Priced.from_item(item).row())

    deliver(app, cents("a", 1999, S[0]), cents("b", 5, S[1]))
    deliver(app, remove("a", S[2]))

    assert {"b": (Decimal("0.05"), "priced")} == rows(engine)


def test_attributes_without_a_column_can_be_kept_in_a_json_column(engine: sa.Engine) -> None:
    app = make_app(engine, extra="doc")
    item = {"pk": "a", "amount": Decimal("1"), "label": "x", "color": "red", "sizes": ["S", "M"]}

    deliver(app, events().insert("Items", item, sequence_number=S[0]))

    with engine.connect() as connection:
        assert {"color": "red", "sizes": ["S", "M"]} == connection.scalar(sa.select(items.c.doc))


awkward = sa.Table(
    'replicated awkward`"names',
    sa.MetaData(),
    sa.Column("key'; DROP TABLE x; --", dynastream.ExactString(20), primary_key=True),
    sa.Column('val"ue`', sa.String(40)),
    sa.Column("Ünïcødé", sa.String(40)),
    dynastream.sequence_column(),
)


def test_identifiers_only_come_from_the_table_and_are_quoted(engine: sa.Engine) -> None:
    awkward.create(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Items", into=awkward)
    key = "key'; DROP TABLE x; --"
    item = {key: "k1", 'val"ue`': "v", "Ünïcødé": "ü", "unmapped'); DELETE FROM t; --": "ignored"}

    first = deliver(app, events(key).insert("Items", item, sequence_number=S[0]))
    second = deliver(app, events(key).remove("Items", {key: "k2"}, sequence_number=S[1]))

    assert {"batchItemFailures": []} == first == second
    with engine.connect() as connection:
        assert [("k1", "v", "ü")] == [tuple(r)[:3] for r in connection.execute(sa.select(awkward))]


boundaries = sa.Table(
    "replicated_boundaries",
    sa.MetaData(),
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("as_text", sa.String(200)),
    sa.Column("as_number", sa.Numeric()),
    sa.Column("in_json", sa.JSON),
    dynastream.sequence_column(),
)
BOUNDARY_NUMBERS = [
    "9" * 38,
    "-" + "9" * 38,
    "1E-130",
    "9.9999999999999999999999999999999999999E+125",
    "1.50",
    "0.000000000000000000000000000000000000001",
]


@pytest.mark.parametrize("text", BOUNDARY_NUMBERS)
def test_boundary_numbers_round_trip_exactly_or_fail_loudly(engine: sa.Engine, text: str) -> None:
    boundaries.create(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate("Items", into=boundaries)
    number = Decimal(text)
    item = {"pk": "n", "as_text": number, "as_number": number, "in_json": {"n": number}}

    result = app.dispatch(
        {
            "Records": [
                events().insert("Items", item, sequence_number=S[0]),
            ]
        }
    )

    if result.failure is not None:  # loudly: a typed error naming the column, nothing written
        assert isinstance(result.failure.error, MappingError)
        assert result.failure.error.column in {"as_number", "in_json"}
        with engine.connect() as connection:
            assert 0 == connection.scalar(sa.select(sa.func.count()).select_from(boundaries))
        return
    with engine.connect() as connection:
        row = connection.execute(sa.select(boundaries)).one()
    # Text holds the number as DynamoDB keeps it: plain digits, no exponent, no trailing zeros.
    assert number == Decimal(row.as_text)
    assert "E" not in row.as_text
    assert not ("." in row.as_text and row.as_text.endswith("0"))
    assert number == Decimal(str(row.as_number))
    assert number == Decimal(repr(row.in_json["n"]))


@pytest.mark.parametrize("options", [{"deletes": "hard"}, {"ttl": "forever"}])
def test_unknown_delete_policies_are_refused(options: dict[str, Any]) -> None:
    app = dynastream.App(database_url="sqlite://")

    with pytest.raises(ConfigurationError, match=next(iter(options))):
        app.replicate("Items", into=items, **options)


def test_pruning_never_waits_for_a_tombstone_another_batch_holds(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A tombstone past its retention that a concurrent batch is writing (its item removed
    again) is left for a later prune: pruning never waits, so it cannot deadlock with
    writers. A prune that reached its bound runs again on the next batch.
    """
    from datetime import UTC, datetime, timedelta

    from dependency_injector import providers

    from dynastream._replication import handler as _replication

    app = make_app(engine)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    now = [start]
    app.container.clock.override(providers.Object(lambda: now[0]))
    tombstones = dynastream.schema.tombstones

    def remaining() -> set[str]:
        with engine.connect() as connection:
            return set(connection.scalars(sa.select(tombstones.c.item_key)))

    deliver(app, remove("a", S[0]), remove("b", S[1]), remove("c", S[2]))
    old = remaining()
    assert 3 == len(old)
    now[0] = start + timedelta(hours=49)
    monkeypatch.setattr(_replication, "_PRUNE_ROWS", 1)
    if engine.dialect.name == "sqlite":  # one writer: nothing to wait for
        deliver(app, put("d", "1", S[3]))
        deliver(app, put("e", "1", S[4]))
        assert 1 == len(remaining())  # one per prune: the bound reached, so the next batch pruned again
        return
    held_key = min(old)
    other = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    with other.connect() as holder, holder.begin():
        holder.execute(  # by primary key: InnoDB locks just that row
            sa.select(tombstones)
            .where(tombstones.c.table_name == "replicated_items", tombstones.c.item_key == held_key)
            .with_for_update()
        )
        started = time.monotonic()
        deliver(app, put("d", "1", S[3]))
        deliver(app, put("e", "1", S[4]))
        deliver(app, put("f", "1", S[5]))
        assert time.monotonic() - started < 5
        assert {held_key} == remaining()
    other.dispose()
