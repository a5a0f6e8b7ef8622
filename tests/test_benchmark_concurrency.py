"""
The pure parts of the concurrency benchmark: its streams, its model and its model check.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pymysql
import pytest

from benchmarks._concurrency_worker import REMOVED, Source, error_kind, newest, templates
from benchmarks.concurrency import RESURRECTED, ExpectedRows, check_model, percentile

IMAGES = templates()[:20]


def frozen_clock() -> int:
    return 1_790_000_000 * 10**9  # every call the same instant: sequence numbers must still increase


def test_sequence_numbers_are_unique_and_increasing_across_workers() -> None:
    sources = [Source(worker, "overlapping", IMAGES, clock=frozen_clock) for worker in range(3)]
    numbers = [[source.sequence_number() for _ in range(100)] for source in sources]
    assert all(a < b for stream in numbers for a, b in itertools.pairwise(stream))
    assert 300 == len({number for stream in numbers for number in stream})


def test_disjoint_batches_touch_each_key_once_and_never_another_workers_key() -> None:
    sources = [Source(worker, "disjoint", IMAGES) for worker in range(2)]
    keys: list[set[str]] = [set(), set()]
    for _ in range(3):
        for worker, source in enumerate(sources):
            records, changes = source.batch(100)
            batch_keys = [key for key, _ in changes]
            assert len(batch_keys) == len(set(batch_keys))
            assert [r["dynamodb"]["Keys"]["id"]["S"] for r in records] == batch_keys
            keys[worker].update(batch_keys)
    assert set() == keys[0] & keys[1]


def test_disjoint_batches_change_and_remove_only_keys_that_exist() -> None:
    source = Source(0, "disjoint", IMAGES)
    live: set[str] = set()
    for _ in range(4):
        records, _ = source.batch(100)
        for record in records:
            key = record["dynamodb"]["Keys"]["id"]["S"]
            if record["eventName"] == "INSERT":
                assert key not in live
                live.add(key)
            else:
                assert key in live
                if record["eventName"] == "REMOVE":
                    live.remove(key)
    assert Counter({"INSERT": 60, "MODIFY": 30, "REMOVE": 10}) == Counter(r["eventName"] for r in records)


def test_the_newest_change_of_a_key_wins_across_workers() -> None:
    merged = newest([{"a": (5, 1), "b": (9, REMOVED)}, {"a": (7, REMOVED), "b": (8, 2)}])
    assert {"a": (7, REMOVED), "b": (9, REMOVED)} == merged


def test_the_model_check_passes_on_the_model_and_names_a_resurrection() -> None:
    expected = ExpectedRows(IMAGES)
    model = {"a": (10, 3), "b": (20, REMOVED)}
    table = {"a": expected.row("a", (10, 3))}
    assert check_model(table, model, {}, expected).passed

    resurrected = {**table, "b": expected.row("b", (15, 4))}
    assert Counter({RESURRECTED: 1}) == check_model(resurrected, model, {}, expected).problems

    stale = {"a": expected.row("a", (9, 3))}
    assert not check_model(stale, model, {}, expected).passed


def test_an_uncertain_change_may_or_may_not_have_been_applied() -> None:
    expected = ExpectedRows(IMAGES)
    model = {"a": (10, 3)}
    uncertain = {"a": (12, REMOVED), "c": (13, 5)}
    without = {"a": expected.row("a", (10, 3))}
    applied = {"c": expected.row("c", (13, 5))}
    assert check_model(without, model, uncertain, expected).passed
    assert check_model(applied, model, uncertain, expected).passed


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (50.0, 95.0, 100.0) == (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"), "1213"),
        (ValueError("not a database error"), "ValueError"),
    ],
)
def test_errors_are_named_by_their_mysql_number_or_class(error: Exception, kind: str) -> None:
    assert kind == error_kind(error)
