"""
The backfill: load a table's existing items while its stream is being applied.

Segments of a parallel Scan (consistent reads) are read in threads, within a
shared read-capacity budget, and queued a page at a time for one writer thread,
which applies each page in one transaction through the application's own
replication, exactly as a batch of INSERT records would be. The records carry
sequence number 0, lower than any real one: the sequence guard then lets a
scanned value fill only a row that no change from the stream has touched, so a
backfill racing the stream can never leave a stale value behind. The argument
is written down in `docs/how-to/backfill.md`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import attrs

from dynastream.exceptions import BackfillError, ConfigurationError

from .aws import AwsClients, call

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from dynastream._app import App

__all__ = ["BACKFILL_SEQUENCE_NUMBER", "Backfill", "BackfillProgress"]

_log = logging.getLogger("dynastream.backfill")

# The sequence number of every backfilled record. Real sequence numbers are
# 21 to 40 digits, so 0 is older than any change the stream can deliver: a
# stream change always overwrites a backfilled row, and a backfilled value
# never overwrites (or resurrects, past a tombstone) a row the stream wrote.
BACKFILL_SEQUENCE_NUMBER = "0"

# DynamoDB's limit on TotalSegments.
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html#DDB-Scan-request-TotalSegments
_MAX_SEGMENTS = 1_000_000
# Pages (up to 1 MB of items each) waiting for the writer, whatever the number of segments.
_QUEUED_PAGES = 8

# Read at run time, so that tests can give the read budget a fake clock.
_monotonic = time.monotonic
_sleep = time.sleep


@attrs.frozen
class BackfillProgress:
    """
    Where a backfill is.

    Attributes:
        table_name: The DynamoDB table loaded.
        segments: Segments of the parallel Scan.
        scanned: Items read from the table so far.
        written: Items applied (committed) so far; an item the guard kept out
            (the stream already wrote the row, or deleted it) counts as applied.
        quarantined: Items set aside in `dynastream_quarantine` (tables whose
            poison policy is quarantine).
        pages: Pages of items applied.
        segments_done: Segments read to their end and applied.
        consumed_capacity: Read capacity units the Scan consumed, as DynamoDB
            reports them.
        elapsed_seconds: Seconds since the backfill started.
        estimated_items: The table's item count from `DescribeTable`, which
            DynamoDB refreshes about every six hours: a hint for a progress
            bar, not a target.
        done: Every segment is read and applied.
    """

    table_name: str
    segments: int
    scanned: int = 0
    written: int = 0
    quarantined: int = 0
    pages: int = 0
    segments_done: int = 0
    consumed_capacity: float = 0.0
    elapsed_seconds: float = 0.0
    estimated_items: int | None = None
    done: bool = False

    @property
    def items_per_second(self) -> float:
        """Items applied per second, on average since the start."""
        return self.written / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


class ReadBudget:
    """
    Read capacity shared by the scanning threads: a token bucket allowed into debt.

    A Scan's cost is known only once it returns (`ConsumedCapacity`), so a
    call waits until the bucket is not in debt, and its cost is taken after.
    The bucket holds at most one second's worth, so over any stretch the
    reads average at most `rate` units per second, plus the pages in flight.

    Args:
        rate: Read capacity units per second; `None` for no limit.
        clock: Seconds, monotonic.
        sleep: Waits a number of seconds.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._capacity = rate or 0.0
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()
        self.consumed = 0.0

    def _refill(self) -> None:
        now = self._clock()
        if self.rate is not None:
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def acquire(self, halt: threading.Event) -> bool:
        """
        Wait until a read may start; return `False` if `halt` was set meanwhile.
        """
        while not halt.is_set():
            with self._lock:
                self._refill()
                if self.rate is None or self._tokens > 0:
                    return True
                wait = -self._tokens / self.rate + 1e-3
            self._sleep(min(wait, 0.25))  # short naps, so that a halt is noticed
        return False

    def charge(self, units: float) -> None:
        """Take the capacity units a read consumed."""
        with self._lock:
            self._refill()
            self._tokens -= units
            self.consumed += units


@attrs.frozen
class _Page:
    segment: int
    position: int  # of its first item in the segment
    items: Sequence[Mapping[str, Any]]
    consumed: float
    last: bool


@attrs.frozen
class _Failed:
    segment: int
    error: BaseException


class Backfill:
    """
    Loads a DynamoDB table's existing items into its replicated SQL tables.

    A parallel Scan (`segments` threads, consistent reads, at most `max_rcu`
    read capacity units per second) feeds one writer, which applies each page
    of items in one transaction through the table's `App.replicate`
    registrations, as INSERT records with sequence number 0. It is safe to run
    while the table's stream is applied (by Lambda or a `dynastream.StreamRunner`)
    from a position at or before the moment the backfill starts: once the
    stream has caught up, the SQL table equals the source, because a scanned
    value only fills a row that no change from the stream has written or
    deleted. See the backfill how-to for the argument and its preconditions.

    A second backfill does not overwrite rows an earlier one wrote (both carry
    sequence number 0): to load a table again without its stream, empty the
    SQL table first.

    Args:
        app: The application; every handler of `table_name` must be built-in
            replication.
        table_name: The DynamoDB table to load.
        clients: Builds the DynamoDB client (endpoint, region, session).
        segments: Parallel Scan segments, each read in its own thread.
        max_rcu: Read capacity units per second for the whole Scan (all
            segments together), or `None` for no limit. A consistent read
            costs one unit per 4 KB.
        page_size: Items per Scan call (`Limit`), and so at most per
            transaction; DynamoDB also ends a page at 1 MB.
        on_progress: Called with a `BackfillProgress` after every page
            applied and once at the end, in the writer thread.

    Raises:
        ValueError: `segments`, `max_rcu` or `page_size` is out of range.

    Examples:
        >>> import dynastream
        >>> app = dynastream.App(database_url="sqlite://")
        >>> backfill = dynastream.Backfill(app, "Orders", segments=8, max_rcu=500,
        ...     clients=dynastream.AwsClients(region_name="eu-west-1"))
        >>> backfill  # doctest: +ELLIPSIS
        <Backfill Orders segments=8 max_rcu=500 page_size=1000>
    """

    def __init__(
        self,
        app: App,
        table_name: str,
        *,
        clients: AwsClients | None = None,
        segments: int = 4,
        max_rcu: float | None = None,
        page_size: int = 1000,
        on_progress: Callable[[BackfillProgress], None] | None = None,
    ) -> None:
        if not 1 <= segments <= _MAX_SEGMENTS:
            raise ValueError(f"segments must be 1 to {_MAX_SEGMENTS:,} (the Scan limit), got {segments}")
        if max_rcu is not None and not max_rcu > 0:
            raise ValueError(f"max_rcu must be positive (or None for no limit), got {max_rcu}")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self._app = app
        self.table_name = table_name
        self.segments = segments
        self.max_rcu = max_rcu
        self.page_size = page_size
        self._clients = clients or AwsClients()
        self._on_progress = on_progress

    def __repr__(self) -> str:
        return (
            f"<Backfill {self.table_name} segments={self.segments} max_rcu={self.max_rcu:g}"
            f" page_size={self.page_size}>"
            if self.max_rcu is not None
            else f"<Backfill {self.table_name} segments={self.segments} page_size={self.page_size}>"
        )

    def check(self) -> None:
        """
        Check that every handler of the table is built-in replication.

        Raises:
            ConfigurationError: The table has no handler, or has a handler
                other than `App.replicate`'s.
        """
        from dynastream._replication.handler import ReplicationHandler

        registrations = [r for r in self._app.registrations if r.table_name == self.table_name]
        if not registrations:
            raise ConfigurationError(
                f"no handler is registered for table {self.table_name!r}: register it with"
                f" app.replicate({self.table_name!r}, into=...) before backfilling it"
            )
        custom = [r.name for r in registrations if not isinstance(r.handler, ReplicationHandler)]
        if custom:
            raise ConfigurationError(
                f"table {self.table_name!r} has handlers other than app.replicate ({', '.join(custom)}):"
                " a backfill is safe only through built-in replication, whose sequence guard keeps an"
                " older scanned value from overwriting a change from the stream; custom handlers have"
                " no such guard, so a backfill would apply stale values to them"
            )

    def run(self, *, stop: threading.Event | None = None) -> BackfillProgress:
        """
        Scan the table and apply every item; return where it got to.

        When `stop` is set, the page being applied is finished and the
        backfill returns (`done` is false). Pages applied stay applied, and
        running the backfill again is safe (it starts over; rows already
        written are left as they are).

        Returns:
            The final progress.

        Raises:
            ConfigurationError: The table's handlers are not all built-in
                replication, or the application is wired wrongly.
            SourceError: The table does not exist, or DynamoDB cannot be read
                (endpoint, credentials, permissions).
            BackfillError: An item cannot be applied; the pages before it and
                the items before it in its page are applied.
            CommitOutcomeUnknownError: The connection failed during a page's
                COMMIT (running the backfill again is safe).
        """
        self.check()
        stop = stop or threading.Event()
        started = _monotonic()
        dynamodb = self._clients.dynamodb()
        table = call(
            f"describe table {self.table_name!r}", dynamodb.describe_table, TableName=self.table_name
        )["Table"]
        key_names = [key["AttributeName"] for key in table["KeySchema"]]
        count = table.get("ItemCount")
        progress = BackfillProgress(
            self.table_name, self.segments, estimated_items=count if isinstance(count, int) else None
        )
        budget = ReadBudget(self.max_rcu, clock=_monotonic, sleep=_sleep)
        pages: queue.Queue[_Page | _Failed] = queue.Queue(maxsize=min(_QUEUED_PAGES, max(2, self.segments)))
        halt = threading.Event()
        threads = [
            threading.Thread(
                target=self._scan_segment,
                args=(segment, dynamodb, budget, pages, halt),
                name=f"dynastream-backfill-{segment}",
                daemon=True,
            )
            for segment in range(self.segments)
        ]
        _log.info("backfill of %s: %d segment(s) started", self.table_name, self.segments)
        for thread in threads:
            thread.start()
        try:
            while progress.segments_done < self.segments and not stop.is_set():
                try:
                    message = pages.get(timeout=0.1)
                except queue.Empty:
                    continue
                if isinstance(message, _Failed):
                    raise message.error
                progress = self._apply(message, key_names, progress)
                progress = attrs.evolve(
                    progress,
                    consumed_capacity=budget.consumed,
                    elapsed_seconds=_monotonic() - started,
                )
                if self._on_progress is not None:
                    self._on_progress(progress)
        finally:
            halt.set()
            for thread in threads:
                thread.join(timeout=5)
        progress = attrs.evolve(
            progress,
            consumed_capacity=budget.consumed,
            elapsed_seconds=_monotonic() - started,
            done=progress.segments_done == self.segments,
        )
        if self._on_progress is not None:
            self._on_progress(progress)
        _log.info(
            "backfill of %s: %d item(s) scanned, %d applied, %d quarantined, %.1f read capacity units%s",
            self.table_name,
            progress.scanned,
            progress.written,
            progress.quarantined,
            progress.consumed_capacity,
            "" if progress.done else "; stopped before the end",
        )
        return progress

    def _scan_segment(
        self,
        segment: int,
        dynamodb: Any,
        budget: ReadBudget,
        pages: queue.Queue[_Page | _Failed],
        halt: threading.Event,
    ) -> None:
        """
        Read one segment to its end, queueing its pages for the writer.
        """

        def put(message: _Page | _Failed) -> bool:
            while not halt.is_set():
                try:
                    pages.put(message, timeout=0.1)
                except queue.Full:
                    continue
                return True
            return False

        arguments: dict[str, Any] = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": self.segments,
            "Limit": self.page_size,
            # An eventually consistent read may miss a write made just before
            # the backfill started, which the stream may not deliver again.
            "ConsistentRead": True,
            "ReturnConsumedCapacity": "TOTAL",
        }
        position = 0
        try:
            while budget.acquire(halt):
                response = call(
                    f"scan segment {segment} of table {self.table_name!r}", dynamodb.scan, **arguments
                )
                consumed = float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
                budget.charge(consumed)
                items = response.get("Items", [])
                last_key = response.get("LastEvaluatedKey")
                if not put(_Page(segment, position, items, consumed, last=last_key is None)):
                    return
                if last_key is None:
                    return
                position += len(items)
                arguments["ExclusiveStartKey"] = last_key
        except BaseException as error:  # noqa: BLE001 - handed to the writer, which raises it
            put(_Failed(segment, error))

    def _apply(self, page: _Page, key_names: Sequence[str], progress: BackfillProgress) -> BackfillProgress:
        """
        Apply one page in one transaction.

        Raises:
            BackfillError: An item of the page cannot be applied.
        """
        applied = quarantined = 0
        if page.items:
            records = [
                _record(item, key_names, f"backfill-{page.segment}-{page.position + index}")
                for index, item in enumerate(page.items)
            ]
            result = self._app.dispatch({"Records": records}, table_name=self.table_name)
            if result.failure is not None:
                raise BackfillError(
                    self.table_name,
                    segment=page.segment,
                    position=page.position + result.failure.index,
                    failure=result.failure,
                )
            applied, quarantined = result.applied, len(result.quarantined)
        return attrs.evolve(
            progress,
            scanned=progress.scanned + len(page.items),
            written=progress.written + applied,
            quarantined=progress.quarantined + quarantined,
            pages=progress.pages + 1,
            segments_done=progress.segments_done + page.last,
        )


def _record(item: Mapping[str, Any], key_names: Sequence[str], event_id: str) -> dict[str, Any]:
    """
    Return a scanned item as a `GetRecords` INSERT record with the backfill's sequence number.
    """
    return {
        "eventID": event_id,
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {name: item[name] for name in key_names if name in item},
            "NewImage": item,
            "SequenceNumber": BACKFILL_SEQUENCE_NUMBER,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
