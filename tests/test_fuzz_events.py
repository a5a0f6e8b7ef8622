"""
Malformed events, fuzzed: every one ends in a typed error or a valid response,
and no SQL runs for a record that could not be read.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import dynastream
from dynastream import StreamRecord, UnitOfWork
from tests.builders import insert_event

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([{"N": 20}, {}, {"S": "a", "N": "1"}, {"X": "1"}, {"N": "NaN"}, "INSERT", "REMOVE"]),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON-like value."""
    found = [prefix]
    if isinstance(value, dict):
        for key, member in value.items():
            found.extend(paths(member, (*prefix, key)))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found.extend(paths(member, (*prefix, index)))
    return found


def mutate(event: dict[str, Any], path: tuple[Any, ...], action: str, junk: Any) -> Any:
    if not path:
        return junk
    mutated = copy.deepcopy(event)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return mutated


EVENT = insert_event(3)
PATHS = paths(EVENT)


@settings(max_examples=400, deadline=None)
@given(
    path=st.sampled_from(PATHS),
    action=st.sampled_from(["replace", "delete"]),
    junk=JUNK,
)
def test_a_mutated_event_gives_a_typed_error_or_a_valid_response(
    path: tuple[Any, ...], action: str, junk: Any
) -> None:
    event = mutate(EVENT, path, action, junk)
    app = dynastream.App(database_url="sqlite://")
    seen: list[str] = []

    @app.handler("Orders")
    def note(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        seen.extend(r.item_identifier for r in records)
        uow.connection().execute(sa.text("SELECT 1"))

    try:
        response = app.lambda_handler(event, None)
    except dynastream.DynastreamError:
        assert [] == seen  # raised before any record was applied
        return

    failures = response["batchItemFailures"]
    assert isinstance(failures, list)
    assert len(failures) <= 1
    for failure in failures:
        identifier = failure["itemIdentifier"]
        assert isinstance(identifier, str)
        assert identifier
        assert identifier.isdigit()
        assert identifier not in seen  # the reported record was not applied
