"""
Chunk encoding: orjson (the `speedups` extra) and the standard library give the servers the same values.

The bulk writers of PostgreSQL and MySQL send each chunk of rows as one JSON
text. With orjson installed it encodes them; whatever orjson refuses goes to
the standard library. Every test here compares the two encoders, and the
replication property of `test_replication_schemas` runs again with orjson
switched off.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from dynastream._replication import chunks
from dynastream._replication.chunks import json_encoder, scalar_text

pytest.importorskip("orjson", reason="the speedups extra (orjson) is not installed")


def default(value: Any) -> Any:
    """What the writers do with values JSON has no type for (as `JsonRows` does)."""
    if value.__class__ is Decimal:
        return str(value)
    return None if isinstance(value, sa.sql.elements.Null) else scalar_text(value, binary_prefix="\\x")


def stdlib_encoder(monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(chunks, "orjson", None)
        return json_encoder(default)


def read(text: str) -> Any:
    """The values a server reads: numbers exactly."""
    return json.loads(text, parse_float=Decimal)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson refuses those, the standard library takes them
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),  # lone surrogates too
    st.decimals(allow_nan=False, allow_infinity=False),
    st.binary(max_size=8),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.dates(),
    st.times(),
    st.uuids(),
)
values = st.recursive(
    scalars,
    lambda members: st.one_of(
        st.lists(members, max_size=4), st.dictionaries(st.text(max_size=4), members, max_size=4)
    ),
    max_leaves=12,
)


def encoded(encode: Any, value: Any) -> tuple[str, Any]:
    try:
        return "text", read(encode(value))
    except (TypeError, ValueError) as error:
        return "error", type(error).__name__


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(values, max_size=5), max_size=4))
def test_orjson_and_the_standard_library_give_the_same_values(rows: list[Any]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunks, "orjson", None)
        stdlib = json_encoder(default)
    quick = json_encoder(default)

    assert encoded(quick, rows) == encoded(stdlib, rows)


def test_orjson_encodes_where_it_is_installed() -> None:
    row = [[1, "é", Decimal("12.50"), b"\x00\xff", sa.null(), {"a": [1.5, None]}]]

    assert chunks.orjson is not None
    assert json_encoder(default)(row) == '[[1,"é","12.50","\\\\x00ff",null,{"a":[1.5,null]}]]'


@pytest.mark.parametrize(
    "row",
    [
        [2**64],  # beyond orjson's 64-bit integers
        ["\ud800"],  # not valid Unicode: orjson refuses it
        [{"a": [[[[1]]]]}],
    ],
    ids=["integer-beyond-64-bits", "lone-surrogate", "nested"],
)
def test_what_orjson_refuses_is_encoded_by_the_standard_library(
    row: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert json_encoder(default)(row) == stdlib_encoder(monkeypatch)(row)


def test_dates_and_times_are_spelled_by_the_writer_not_by_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    row = [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), date(2026, 1, 2), time(3, 4), uuid.UUID(int=7)]

    text = json_encoder(default)(row)

    assert text == stdlib_encoder(monkeypatch)(row)
    assert read(text)[0] == "2026-01-02 03:04:05.000006+00:00"


def test_a_value_no_writer_sends_raises_the_same_error_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    row = [object()]

    with pytest.raises(TypeError, match="cannot send a object value"):
        json_encoder(default)(row)
    with pytest.raises(TypeError, match="cannot send a object value"):
        stdlib_encoder(monkeypatch)(row)
