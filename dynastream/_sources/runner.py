"""
The stream runner: apply a DynamoDB stream to the database outside Lambda.

It reads shards through the DynamoDB Streams API and hands each page of
records to the application's dispatcher, exactly as Lambda's event source
mapping would hand it a batch. Where it is in each shard (its checkpoint) is
written in the same transaction as the data, so a runner killed anywhere
resumes where the database says it is: nothing is lost, nothing is applied
twice, even by handlers that are not idempotent.

A shard is read only once its parent is fully applied (shards split and roll
over; a child holds later changes to the same items), and new shards are picked
up as they appear.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from dynastream._retry import is_transient
from dynastream.exceptions import (
    CommitOutcomeUnknownError,
    RecordFailedError,
    SourceError,
)

from .aws import AwsClients, Trouble, call, is_transient_aws, source_error, stream_of_table
from .checkpoints import Checkpoints, Shard

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import Connection

    from dynastream._app import App

__all__ = ["RunnerProgress", "StreamRunner"]

StartingPosition = Literal["trim_horizon", "latest"]

_log = logging.getLogger("dynastream.runner")


@attrs.frozen
class RunnerProgress:
    """
    Where a stream runner is.

    Attributes:
        table_name: The DynamoDB table whose stream is applied.
        stream_arn: Its stream.
        applied: Records applied (or quarantined) by this run.
        batches: Pages of records applied by this run.
        quarantined: Records set aside in `dynastream_quarantine` by this run.
        apply_seconds: Time spent applying batches (mapping, writing,
            committing), as opposed to reading the stream or waiting.
        lag_seconds: How old the last change applied was when it was applied
            (now - its `ApproximateCreationDateTime`); 0 once a round of reads
            found nothing new; `None` before either.
        shards_reading: Shards being read (open, or closed and not yet applied
            to their end).
        shards_waiting: Shards waiting for their parent to be applied first.
        shards_finished: Closed shards applied to their end.
        caught_up: The last round of reads found nothing new in any shard.
    """

    table_name: str
    stream_arn: str
    applied: int = 0
    batches: int = 0
    quarantined: int = 0
    apply_seconds: float = 0.0
    lag_seconds: float | None = None
    shards_reading: int = 0
    shards_waiting: int = 0
    shards_finished: int = 0
    caught_up: bool = False


class StreamRunner:
    """
    Applies a table's DynamoDB stream to the database, outside Lambda.

    Each page of records read from a shard is dispatched like a Lambda batch
    (one transaction, the application's handlers and poison policy), and the
    shard's checkpoint is written in that same transaction. A runner stopped
    or killed anywhere resumes from the checkpoints in the database.

    Args:
        app: The application whose handlers apply the records.
        table_name: The DynamoDB table (its records are routed by this name).
        stream_arn: The stream to read; the table's current stream when
            omitted.
        clients: Builds the DynamoDB and Streams clients (endpoint, region).
        start_at: Where to start in a shard with no checkpoint:
            `"trim_horizon"` (the oldest record kept, the default) or
            `"latest"` (only changes made from now on; shards already closed
            are skipped). Shards that appear later are always read from their
            start.
        batch_size: Records per `GetRecords` call, and so per transaction
            (at most 1,000).
        poll_interval: Seconds to wait after a round of reads found nothing.
        refresh_interval: Seconds between looks for new shards (a shard that
            ends triggers one at once).
        on_progress: Called with a `RunnerProgress` after every batch and every
            idle round.

    Examples:
        >>> import dynastream
        >>> app = dynastream.App(database_url="sqlite://")
        >>> runner = dynastream.StreamRunner(app, "Orders", clients=dynastream.AwsClients(
        ...     endpoint_url="http://127.0.0.1:5000", region_name="us-east-1"))
    """

    def __init__(
        self,
        app: App,
        table_name: str,
        *,
        stream_arn: str | None = None,
        clients: AwsClients | None = None,
        start_at: StartingPosition = "trim_horizon",
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        refresh_interval: float = 60.0,
        on_progress: Callable[[RunnerProgress], None] | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be 1 to 1,000 (the GetRecords limit)")
        if start_at not in ("trim_horizon", "latest"):
            raise ValueError(f"start_at must be 'trim_horizon' or 'latest', got {start_at!r}")
        self._app = app
        self.table_name = table_name
        self._stream_arn = stream_arn
        self._clients = clients or AwsClients()
        self._start_at = start_at
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._refresh_interval = refresh_interval
        self._on_progress = on_progress
        self._shards: dict[str, Shard] = {}
        self._streams: Any = None
        self._checkpoints: Checkpoints | None = None
        self._progress: RunnerProgress | None = None
        self._first_look = True
        self._next_refresh = 0.0

    @property
    def stream_arn(self) -> str:
        """The stream being applied (looked up from the table on first use)."""
        if self._stream_arn is None:
            self._stream_arn = stream_of_table(self._clients.dynamodb(), self.table_name)
        return self._stream_arn

    def run(self, *, stop: threading.Event | None = None, until_caught_up: bool = False) -> RunnerProgress:
        """
        Apply the stream until `stop` is set, and return where it got to.

        With `until_caught_up`, it also returns once a round of reads finds
        nothing new in any shard. A batch in progress when `stop` is set is finished first.

        Raises:
            SourceError: The table, its stream or the endpoint cannot be read,
                or records to read were already trimmed from the stream.
            RecordFailedError: A record cannot be applied (and its table does
                not quarantine); everything before it is applied.
            CheckpointConflictError: Another runner applies the same stream to
                the same database.
            ConfigurationError: The application is wired wrongly.
        """
        stop = stop or threading.Event()
        stream_arn = self.stream_arn
        self._streams = self._clients.streams()
        clock: Callable[[], datetime] = self._app.container.clock()
        self._checkpoints = Checkpoints(self._app.container.engine(), stream_arn, clock)
        self._progress = RunnerProgress(self.table_name, stream_arn)
        self._first_look = True
        self._refresh()
        self._next_refresh = time.monotonic() + self._refresh_interval
        trouble = Trouble()
        while not stop.is_set():
            try:
                caught_up = self._round(stop)
            except SourceError as error:
                # Throttling, a network blip or a 5xx that outlasted botocore's own
                # retries: wait and go on (positions are only ever moved by commits).
                if not is_transient_aws(error.__cause__) or not trouble.wait(str(error), stop):
                    raise
                continue
            trouble.clear()
            if caught_up:
                self._update(lag_seconds=0.0, caught_up=True)
                if until_caught_up:
                    break
                stop.wait(self._poll_interval)
        return self._report()

    def _round(self, stop: threading.Event) -> bool:
        """
        Read one page of every shard ready to be read, and apply it.

        Returns:
            Whether the round found nothing new (and no shard ended).
        """
        if time.monotonic() >= self._next_refresh:
            self._refresh()
            self._next_refresh = time.monotonic() + self._refresh_interval
        changed = read_any = False
        for shard in self._ready():
            if stop.is_set():
                break
            busy, ended = self._read_once(shard)
            read_any = read_any or busy
            changed = changed or ended
        if changed:
            self._refresh()
            self._next_refresh = time.monotonic() + self._refresh_interval
        return not read_any and not changed

    @property
    def _store(self) -> Checkpoints:
        if self._checkpoints is None:
            raise RuntimeError("the runner is not running")
        return self._checkpoints

    @property
    def _current(self) -> RunnerProgress:
        if self._progress is None:
            raise RuntimeError("the runner is not running")
        return self._progress

    # Shards

    def _refresh(self) -> None:
        described = self._describe()
        saved = self._retrying("read the checkpoints", self._store.load)
        for shard_id, (parent_id, closed) in described.items():
            shard = self._shards.get(shard_id)
            if shard is None:
                shard = self._shards[shard_id] = Shard(shard_id, parent_id, closed)
                if shard_id in saved:
                    shard.position, shard.finished = saved[shard_id]
                    shard.has_checkpoint = True
                elif self._first_look and self._start_at == "latest":
                    # Closed shards are all before "now": not read, and not recorded as read.
                    shard.finished = closed
                    shard.from_latest = not closed
            shard.closed = closed
        self._first_look = False
        self._report()

    def _describe(self) -> dict[str, tuple[str | None, bool]]:
        shards: dict[str, tuple[str | None, bool]] = {}
        arguments: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = call(
                f"describe stream {self.stream_arn}", self._streams.describe_stream, **arguments
            )["StreamDescription"]
            for shard in description.get("Shards", ()):
                closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
                shards[shard["ShardId"]] = (shard.get("ParentShardId"), closed)
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            arguments["ExclusiveStartShardId"] = last

    def _ready(self) -> list[Shard]:
        """
        Return the shards to read now.

        Those not finished, whose parent (if still in the stream) is.
        """
        ready = []
        for shard in self._shards.values():
            if shard.finished:
                continue
            parent = self._shards.get(shard.parent_id) if shard.parent_id else None
            if parent is None or parent.finished:
                ready.append(shard)
        return ready

    # Reading and applying

    def _iterator(self, shard: Shard) -> str | None:
        arguments: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.position is not None:
            arguments.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.position)
        elif shard.first_read is not None:
            # Read from LATEST, but nothing is known applied: start again where reading
            # began, not at a new LATEST, which would skip what was read since.
            arguments.update(ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=shard.first_read)
        elif shard.from_latest:
            arguments.update(ShardIteratorType="LATEST")
        else:
            arguments.update(ShardIteratorType="TRIM_HORIZON")
        response = call(
            f"get a shard iterator for shard {shard.shard_id}", self._streams.get_shard_iterator, **arguments
        )
        iterator: str | None = response.get("ShardIterator")
        return iterator

    def _get_records(self, shard: Shard) -> tuple[list[dict[str, Any]], str | None]:
        from botocore.exceptions import ClientError

        for _ in range(3):
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
                if shard.iterator is None:
                    return [], None
            try:
                response = self._streams.get_records(ShardIterator=shard.iterator, Limit=self._batch_size)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ExpiredIteratorException":
                    shard.iterator = None  # iterators last 15 minutes: get a new one
                    continue
                raise source_error(error, f"read shard {shard.shard_id}") or error from error
            except Exception as error:
                translated = source_error(error, f"read shard {shard.shard_id}")
                if translated is None:
                    raise
                raise translated from error
            return response.get("Records", []), response.get("NextShardIterator")
        raise SourceError(f"read shard {shard.shard_id}: its iterators keep expiring")

    def _read_once(self, shard: Shard) -> tuple[bool, bool]:
        """
        Read and apply one page of `shard`.

        Returns:
            `(whether the page had records, whether the shard ended)`.
        """
        records, next_iterator = self._get_records(shard)
        if records and shard.from_latest and shard.position is None and shard.first_read is None:
            shard.first_read = str(records[0]["dynamodb"]["SequenceNumber"])
        if records and not self._apply(shard, records):
            return True, False  # the outcome is unknown: read again from the checkpoint
        shard.iterator = next_iterator
        if next_iterator is None:
            self._finish(shard)
            return bool(records), True
        return bool(records), False

    def _apply(self, shard: Shard, records: Sequence[Mapping[str, Any]]) -> bool:
        """
        Dispatch one page of records with the shard's checkpoint.

        Returns:
            Whether the outcome is known (`False`: the shard's position was
            read again from the database).

        Raises:
            RecordFailedError: A record cannot be applied.
        """
        checkpoints_ = self._store
        settled_position: list[str] = []

        def write_checkpoint(connection: Connection, settled: int) -> None:
            position = str(records[settled - 1]["dynamodb"]["SequenceNumber"])
            checkpoints_.write(connection, shard, position, finished=False)
            settled_position[:] = [position]

        started = time.perf_counter()
        try:
            result = self._app.dispatch(
                {"Records": records}, table_name=self.table_name, before_commit=write_checkpoint
            )
        except CommitOutcomeUnknownError as error:
            self._recover(shard, error)
            return False
        except Exception as error:
            if not is_transient(error):
                raise
            self._recover(shard, error)
            return False
        if settled_position:
            shard.position = settled_position[0]
            shard.has_checkpoint = True
        settled = result.applied + len(result.quarantined)
        lag = _lag(records[settled - 1]) if settled else None
        progress = self._current
        self._update(
            applied=progress.applied + settled,
            batches=progress.batches + 1,
            quarantined=progress.quarantined + len(result.quarantined),
            apply_seconds=progress.apply_seconds + time.perf_counter() - started,
            lag_seconds=progress.lag_seconds if lag is None else lag,
            caught_up=False,
        )
        if result.failure is not None:
            raise RecordFailedError(shard.shard_id, result.failure)
        return True

    def _recover(self, shard: Shard, error: BaseException) -> None:
        """
        Take the shard's position from the database again, after a batch whose outcome is unknown.

        The database is the only truth; reading goes on from there.
        """
        _log.warning(
            "shard %s: %s while applying a batch; resuming from the checkpoint in the database",
            shard.shard_id,
            type(error).__name__,
        )
        saved = self._retrying("read the checkpoints", self._store.load)
        shard.position, shard.finished = saved.get(shard.shard_id, (None, False))
        shard.has_checkpoint = shard.shard_id in saved
        shard.iterator = None

    def _finish(self, shard: Shard) -> None:
        """
        Record that a closed shard is applied to its end, so its children start.
        """
        checkpoints_ = self._store
        engine = self._app.container.engine()

        def finish() -> None:
            with engine.begin() as connection:
                checkpoints_.write(connection, shard, shard.position, finished=True)

        self._retrying(f"finish shard {shard.shard_id}", finish)
        shard.finished = True
        shard.has_checkpoint = True
        _log.info("shard %s is applied to its end", shard.shard_id)

    def _retrying(self, doing: str, function: Callable[[], Any]) -> Any:
        """
        Call `function` until it succeeds, through transient database errors.

        A database that stays unreachable for `GIVE_UP_SECONDS` (see `aws`) ends the run
        with its last error (a supervisor restarts the runner, which resumes).
        """
        trouble = Trouble()
        while True:
            try:
                return function()
            except Exception as error:
                if not is_transient(error) or not trouble.wait(f"could not {doing} ({type(error).__name__})"):
                    raise

    # Progress

    def _update(self, **changes: Any) -> None:
        self._progress = attrs.evolve(self._current, **changes)
        self._report()

    def _report(self) -> RunnerProgress:
        shards = self._shards.values()
        ready = {shard.shard_id for shard in self._ready()}
        self._progress = attrs.evolve(
            self._current,
            shards_reading=len(ready),
            shards_waiting=sum(1 for s in shards if not s.finished and s.shard_id not in ready),
            shards_finished=sum(1 for s in shards if s.finished),
        )
        if self._on_progress is not None:
            self._on_progress(self._progress)
        return self._progress


def _lag(record: Mapping[str, Any]) -> float | None:
    created = record.get("dynamodb", {}).get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        moment = created if created.tzinfo else created.replace(tzinfo=UTC)
        return max(0.0, (datetime.now(UTC) - moment).total_seconds())
    if isinstance(created, (int, float)):
        return max(0.0, time.time() - float(created))
    return None
