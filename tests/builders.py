"""
The project's numbered test batches, built with `dynastream.testing`.

What is test-internal here is the numbering: item `n` of every batch has the
sequence number `FIRST_SEQUENCE_NUMBER + n`, whichever batch builds it, so
tests can name a record's expected `itemIdentifier` and build overlapping
batches (redeliveries) independently.
"""

from __future__ import annotations

from typing import Any

from dynastream.testing import EventFactory

FIRST_SEQUENCE_NUMBER = 4_421_584_500_000_000_017_450_439_000
CREATED_AT = 1_790_000_000


def insert_event(count: int, *, table: str = "Orders", start: int = 0) -> dict[str, Any]:
    """A Lambda event of `count` INSERTs of items `{"id": "i-<n>", "n": <n>}`, sequence number FIRST + n."""
    events = EventFactory(first_sequence_number=FIRST_SEQUENCE_NUMBER + start, created_at=CREATED_AT)
    return events.inserts(table, [{"id": f"i-{n}", "n": n} for n in range(start, start + count)])


def event_ids(count: int, *, table: str = "Orders", start: int = 0) -> list[str]:
    """The eventIDs of `insert_event(count, table=table, start=start)`."""
    return [record["eventID"] for record in insert_event(count, table=table, start=start)["Records"]]
