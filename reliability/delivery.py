"""
Delivery as the event source mapping does it: batches, again and again, from a reported record, in halves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .faults import error_kind
from .history import identifier

if TYPE_CHECKING:
    import random
    from collections import Counter
    from collections.abc import Callable


def schedule(rng: random.Random, records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """
    Cut the stream into batches of 1 to 8 records, with redeliveries: whole, from a record, halves, late.
    """
    batches, start = [], 0
    while start < len(records):
        size = rng.randint(1, 8)
        batches.append(records[start : start + size])
        start += size
    plan: list[list[dict[str, Any]]] = []
    for index, batch in enumerate(batches):
        plan.append(batch)
        roll = rng.random()
        if roll < 0.15:
            plan.append(batch)
        elif roll < 0.3:
            plan.append(batch[rng.randrange(len(batch)) :])
        elif roll < 0.45:
            half = max(1, len(batch) // 2)
            plan += [batch[:half], batch[half:]]
        elif roll < 0.6 and index:
            plan.append(batches[rng.randrange(index)])
    return [batch for batch in plan if batch]


def deliver_until_done(
    batch: list[dict[str, Any]],
    deliver: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    poisoned: set[int],
    policy: str,
    reports: dict[int, int],
    counts: Counter[str],
    violations: list[str],
    seed: int,
) -> None:
    """
    Deliver `batch` as the event source mapping does, until it is through.

    A failed invocation delivers it again; a reported record, the records from it
    on; a record reported twice is skipped (its retries spent, the event source
    mapping sends it to the on-failure destination and goes on). `deliver`
    returns the invocation's outcome (`faults.invoke`), or None when the worker
    was killed.
    """
    for _ in range(50):
        counts["deliveries"] += 1
        try:
            invocation = deliver({"Records": batch})
        except Exception as error:  # noqa: BLE001 - a failed invocation: the whole batch comes again
            counts["failed"] += 1
            counts["failed " + error_kind(error)] += 1
            continue
        if invocation is None:  # the worker was killed: the whole batch comes again
            continue
        failures = invocation["response"]["batchItemFailures"]
        if not failures:
            return
        reported = int(failures[0]["itemIdentifier"])
        if reported not in poisoned:
            violations.append(f"seed {seed}: record {reported} was reported, but it is not poison")
        elif policy == "quarantine":
            violations.append(f"seed {seed}: poison record {reported} was reported, not quarantined")
        reports[reported] = reports.get(reported, 0) + 1
        skip = reported if reports[reported] >= 2 else -1
        batch = [r for r in batch if identifier(r) >= reported and identifier(r) != skip]
        if not batch:
            return
    violations.append(f"seed {seed}: a batch never got through")
