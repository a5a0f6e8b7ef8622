"""
Finding the first failing record by bisection, against a model of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import dynastream
from dynastream import StreamRecord, UnitOfWork
from dynastream._bisect import bisect_runs as _bisect
from tests.builders import FIRST_SEQUENCE_NUMBER, insert_event


class Batch:
    """A batch whose records in `failing` always fail: a deterministic handler."""

    def __init__(self, failing: set[int]) -> None:
        self.failing = failing
        self.applied: list[int] = []
        self.attempts: list[tuple[int, int]] = []

    def attempt(self, start: int, end: int) -> Any:
        self.attempts.append((start, end))
        assert start == len(self.applied), "a run must start right after what is applied"
        if self.failing.intersection(range(start, end)):
            return f"failed in [{start}, {end})"
        self.applied.extend(range(start, end))
        return None


@given(
    limit=st.integers(min_value=1, max_value=2000),
    failing=st.sets(st.integers(min_value=0, max_value=2100), max_size=5),
)
def test_bisection_applies_exactly_the_records_before_the_first_failure(
    limit: int, failing: set[int]
) -> None:
    batch = Batch(failing)

    applied, error = _bisect(batch.attempt, limit)

    first = min((f for f in failing if f < limit), default=None)
    expected = limit if first is None else first
    assert expected == applied
    assert list(range(expected)) == batch.applied
    assert (error is None) == (first is None)
    if first is not None:
        assert (first, first + 1) == batch.attempts[-1]
    # O(log n) attempts, at most about twice the records.
    assert len(batch.attempts) <= 2 * limit.bit_length() + 2
    assert sum(end - start for start, end in batch.attempts) <= 2 * limit + limit.bit_length() + 2


@given(
    limit=st.integers(min_value=1, max_value=300),
    outcomes=st.lists(st.booleans(), min_size=1, max_size=400),
)
def test_bisection_with_flaky_failures_never_applies_a_record_twice_or_skips_one(
    limit: int, outcomes: list[bool]
) -> None:
    applied_records: list[int] = []
    attempts = iter(outcomes)
    last: list[tuple[int, int, bool]] = []

    def attempt(start: int, end: int) -> Any:
        fails = next(attempts, False)
        last.append((start, end, fails))
        if fails:
            return "transient"
        assert start == len(applied_records)
        applied_records.extend(range(start, end))
        return None

    applied, error = _bisect(attempt, limit)

    assert list(range(applied)) == applied_records
    if error is None:
        assert limit == applied
    else:
        assert (applied, applied + 1, True) == last[-1]


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=120),
    failing=st.sets(st.integers(min_value=0, max_value=130), max_size=3),
)
def test_dispatch_commits_the_prefix_and_reports_the_first_failing_record(
    size: int, failing: set[int]
) -> None:
    table = sa.Table("bisect_rows", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True))
    app = dynastream.App(database_url="sqlite://")
    engine = app.container.engine()
    table.create(engine)

    @app.handler("Orders")
    def write(records: Sequence[StreamRecord[dynastream.Item]], uow: UnitOfWork) -> None:
        numbers = [int(r.new_image["n"]) for r in records if r.new_image is not None]
        uow.connection().execute(table.insert(), [{"n": n} for n in numbers])
        if failing.intersection(numbers):
            raise RuntimeError("refused")

    response = app.lambda_handler(insert_event(size), None)

    first = min((f for f in failing if f < size), default=None)
    expected_failures = [] if first is None else [{"itemIdentifier": str(FIRST_SEQUENCE_NUMBER + first)}]
    assert {"batchItemFailures": expected_failures} == response
    with engine.connect() as connection:
        stored = sorted(connection.scalars(sa.select(table.c.n)))
    assert list(range(size if first is None else first)) == stored
    engine.dispose()
