"""
Built-in replication: mirror a DynamoDB table into a SQL table, idempotently.

Per call, the handler keeps only the last change of each item (stream order),
maps each surviving image to a row, locks the items (see `_locks`), and hands
the writes to the table's writer, whose statements only let a change win over
an older one. Replaying a batch, delivering an older batch after a newer one,
or a stale INSERT after a REMOVE therefore leave the table as the source left
it, whatever other batches run at the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from dynastream._deserialize import InvalidAttributeValue, deserialize_image
from dynastream._records import EventName, Item, RecordSource
from dynastream._replication.chunks import CHUNK_ROWS
from dynastream._replication.target import Deletion, Target, Upsert
from dynastream._replication.writer import TableWriter
from dynastream.exceptions import ColumnValueError, ConfigurationError, MalformedRecordError, MappingError
from dynastream.schema import item_key, tombstones

from .facts import TableFacts, check_key_collations, read_table_facts
from .images import Image, keep_newest_image, record_image
from .ordering import check_stored_source, count_stored_ties, counts_as_tie, stored_sequence

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect

    from dynastream._records import StreamRecord
    from dynastream._settings import BulkPath
    from dynastream._uow import UnitOfWork

    from .mapping import RowMapper

__all__ = ["DeletePolicy", "ReplicationHandler", "TtlPolicy"]

DeletePolicy = Literal["delete", "soft_delete"]
TtlPolicy = Literal["delete", "soft_delete", "ignore"]

# Stream records are retained for 24 hours; a tombstone must outlive every
# older change that could still be delivered, so it is kept twice as long.
DEFAULT_TOMBSTONE_RETENTION = timedelta(hours=48)
_PRUNE_EVERY = timedelta(hours=1)
_PRUNE_ROWS = 10_000  # at most, per prune


def _utc_now() -> datetime:
    return datetime.now(UTC)


# A row to write: (item key, record, image, deleted_at: set for a soft delete's last image,
# the key columns' values, mapped from the record's Keys, the sequence number as stored).
_Pending = tuple[str, "StreamRecord[Item]", Image, "datetime | None", "Mapping[str, Any]", str]


def _malformed(record: StreamRecord[Item], label: str, error: InvalidAttributeValue) -> MalformedRecordError:
    return MalformedRecordError(
        error.reason,
        field=error.field(f"dynamodb.{label}"),
        event_id=record.event_id,
        sequence_number=record.item_identifier,
    )


class ReplicationHandler:
    """
    The handler `App.replicate` registers: upserts, deletes and tombstones.

    Args:
        table_name: The DynamoDB table replicated.
        row_mapper: Maps images (and keys) to rows of the target table; built
            again for each dialect written to (`row_mapper_for`), since a few
            exactness rules depend on the engine.
        row_mapper_for: Returns the row mapper for a dialect, given the
            character sets of the table's columns (see `facts`).
        mapper: A custom mapper from an item to a row (column name to value),
            used instead of `row_mapper` for images; keys still go through
            `row_mapper`.
        sequence_column: The target's sequence column.
        deletes: What a REMOVE does: `"delete"` the row or `"soft_delete"` it.
        ttl: What a time-to-live REMOVE does; `None` follows `deletes`.
        deleted_column: The soft-delete column, required when either policy
            soft-deletes.
        tombstone_retention: How long tombstones are kept.
        clock: Returns the current aware UTC time.
        bulk_path: Returns the bulk path upserts take, asked once per batch
            (see `Settings.bulk_path` and `TableWriter.bulk_path`).
        source: Returns the source the table is replicated from, asked once
            per batch (see `Settings.source`); a record of the other fails the batch.
    """

    def __init__(
        self,
        table_name: str,
        row_mapper: RowMapper,
        *,
        row_mapper_for: Callable[[Dialect, Mapping[str, str]], RowMapper] | None = None,
        mapper: Callable[[Item], Mapping[str, Any]] | None = None,
        sequence_column: str,
        deletes: DeletePolicy = "delete",
        ttl: TtlPolicy | None = None,
        deleted_column: str | None = None,
        tombstone_retention: timedelta = DEFAULT_TOMBSTONE_RETENTION,
        clock: Callable[[], datetime] = _utc_now,
        bulk_path: Callable[[], BulkPath] = lambda: "auto",
        source: Callable[[], RecordSource] = lambda: RecordSource.DYNAMODB_STREAMS,
    ) -> None:
        if deletes not in ("delete", "soft_delete"):
            raise ConfigurationError(f"deletes must be 'delete' or 'soft_delete', got {deletes!r}")
        if ttl not in (None, "delete", "soft_delete", "ignore"):
            raise ConfigurationError(f"ttl must be 'delete', 'soft_delete', 'ignore' or None, got {ttl!r}")
        self.table_name = table_name
        self.row_mapper = row_mapper
        self._row_mappers: dict[str, RowMapper] = {}
        self._row_mapper_for = row_mapper_for
        self.mapper = mapper
        self.table: sa.Table = row_mapper.table
        self.deletes: DeletePolicy = deletes
        self.ttl: TtlPolicy = deletes if ttl is None else ttl
        self.tombstone_retention = tombstone_retention
        self.clock = clock
        self.bulk_path = bulk_path
        self.source = source
        soft = "soft_delete" in (self.deletes, self.ttl)
        names = {column.name: column for column in self.table.columns}
        if sequence_column not in names:
            raise ConfigurationError(
                f"table {self.table.fullname!r} has no {sequence_column!r} column: add"
                f" dynastream.sequence_column({sequence_column!r}) to it (it keeps each row's sequence"
                " number, so that redelivered and out-of-order changes cannot win)"
            )
        sequence_type = names[sequence_column].type
        if not isinstance(sequence_type, sa.String) or (sequence_type.length or 40) < 40:
            raise ConfigurationError(
                f"column {self.table.fullname}.{sequence_column} must be a String of at least 40 characters"
            )
        if soft and (deleted_column is None or deleted_column not in names):
            raise ConfigurationError(
                f"soft deletes need a {deleted_column!r} column in {self.table.fullname!r}: add"
                " dynastream.deleted_column() to it"
            )
        self.sequence_column = sequence_column
        self.deleted_column = deleted_column if soft else None
        self.columns = [*row_mapper.columns, sequence_column]
        if self.deleted_column is not None:
            self.columns.append(self.deleted_column)
        # Images are read from each record's raw event (see _image), unless a
        # custom mapper takes deserialized ones; only soft deletes read old
        # images (to keep a row removed before it was written).
        self.uses_new_images = mapper is not None
        self.uses_old_images = mapper is not None and self.deleted_column is not None
        self._writers: dict[tuple[str, bool], TableWriter] = {}
        self._facts: dict[str, TableFacts] = {}
        self._pruned_at: datetime | None = None

    def __repr__(self) -> str:
        return f"<ReplicationHandler {self.table_name} -> {self.table.fullname}>"

    def _writer(self, connection: Connection, *, soft: bool) -> TableWriter:
        dialect = connection.dialect
        key = (dialect.name, soft)
        writer = self._writers.get(key)
        if writer is None:
            writer = TableWriter(
                Target(
                    self.table,
                    columns=self.columns,
                    sequence_column=self.sequence_column,
                    deleted_column=self.deleted_column if soft else None,
                    dialect=dialect,
                    collations=self._facts.get(dialect.name, TableFacts()).collations,
                )
            )
            if dialect.name in self._facts:  # built from what the database said, not before it said
                self._writers[key] = writer
        return writer

    def __call__(self, records: Sequence[StreamRecord[Item]], uow: UnitOfWork) -> None:
        """
        Apply `records` (the handler protocol's `handle`).
        """
        self.handle(records, uow)

    def handle(self, records: Sequence[StreamRecord[Item]], uow: UnitOfWork) -> None:
        """
        Collapse `records` to the newest change per item, then write them.

        The newest change is the one with the greatest sequence number, in
        whatever order the records come (a replayed or hand-made event may hold
        one twice, or out of order): the outcome is the one of applying them
        one at a time. It reports to the dispatcher, through `uow`, how many
        records were applied, deleted, or skipped as stale (superseded in the
        batch, or held back by the sequence guard), and how many new images
        carried each attribute that has no column (unless an `extra` column
        keeps them, or a custom mapper decides); see the observability guide.

        Raises:
            MappingError: An image does not fit the table.
            MalformedRecordError: An image is malformed, or a sequence number
                has more than 40 digits.
            ConfigurationError: An INSERT or MODIFY carries no new image (the
                stream's view type must include new images), the table's
                key columns do not compare text exactly, or the staging bulk
                path is asked for where it cannot work.
        """
        connection = uow.connection()
        row_mapper = self._mapper_for(connection)
        # The newest change of each item, with its sequence number as stored.
        latest: dict[tuple[Any, ...], tuple[StreamRecord[Item], str]] = {}
        # The newest image known of each item, for soft deletes: (sequence number, image).
        images: dict[tuple[Any, ...], tuple[int, Image]] = {}
        soft_deletes = self.deleted_column is not None
        # Per attribute with no column, the records whose new image carried it.
        unmapped: dict[str, int] | None = {} if self.mapper is None and row_mapper.extra is None else None
        # TTL deletes the policy ignores (applied, as configured); Kinesis changes
        # whose time cannot order them against the newest of their item.
        ignored = tied = 0
        source = self.source()
        for record in records:
            # A malformed sequence number fails its record, in stream order; another source, the batch.
            sequence = stored_sequence(record, source, self.table_name)
            if record.is_ttl_delete and self.ttl == "ignore":
                ignored += 1
                continue
            keys = record.keys
            key = tuple(keys.items()) if len(keys) == 1 else tuple(sorted(keys.items()))
            newest = latest.get(key)
            current = None if newest is None else newest[0]
            tied += counts_as_tie(record, current)
            if current is None or record.sequence_number > current.sequence_number:
                latest[key] = (record, sequence)
                superseded = current
            else:
                superseded = record  # older than a change already seen, or the same one again
            if superseded is not None and superseded.event_name is not EventName.REMOVE:
                # Never written, but mapped all the same: a record that cannot be
                # applied is reported, as it would be applied one at a time.
                superseded_image = record_image(superseded, "NewImage")
                if superseded_image is not None:
                    self._map(row_mapper, superseded, superseded_image, unmapped)
            if soft_deletes:
                keep_newest_image(images, key, record)

        now = self.clock()
        # Upserts are mapped a chunk at a time, after sorting by key, so that the
        # mapped rows of only one chunk are alive at once.
        pending: list[_Pending] = []
        hard: list[Deletion] = []
        soft: list[Deletion] = []
        for key, (record, sequence) in latest.items():
            mapped_key = self._map_key(row_mapper, record)
            key_values = [mapped_key[c] for c in row_mapper.key_columns()]
            identity = item_key(key_values)
            if record.event_name is EventName.REMOVE:
                policy = self.ttl if record.is_ttl_delete else self.deletes
                deleted_at = record.approximate_creation_time or now
                deletion = Deletion(key_values, identity, sequence, deleted_at)
                if policy != "soft_delete":
                    hard.append(deletion)
                    continue
                soft.append(deletion)
                last = images.get(key)
                if last is not None:  # keep the row, marked deleted, even if it never reached the table
                    image = last[1]
                    pending.append(
                        (identity, record, ("OldImage", image[1], image[2]), deleted_at, mapped_key, sequence)
                    )
                continue
            new_image = record_image(record, "NewImage")
            if new_image is None:
                raise ConfigurationError(
                    f"replicating {self.table_name!r} needs new images, but record"
                    f" {record.item_identifier} has none: set the stream's view type to"
                    " NEW_IMAGE or NEW_AND_OLD_IMAGES"
                )
            pending.append((identity, record, new_image, None, mapped_key, sequence))

        kinesis = source is RecordSource.KINESIS
        applied, deleted, stored_ties = self._write(
            connection, row_mapper, pending, hard, soft, now=now, kinesis=kinesis, unmapped=unmapped
        )
        applied += ignored
        self._prune(uow, now)
        # Every other record (superseded in the batch, or held back by the guard or a tombstone) was stale.
        deleted = min(deleted, len(records) - applied)
        uow.report_outcomes(
            applied=applied,
            deleted=deleted,
            stale_skipped=len(records) - applied - deleted,
            tied=tied + stored_ties,
            unmapped=unmapped,
        )

    def _write(
        self,
        connection: Connection,
        row_mapper: RowMapper,
        pending: list[_Pending],
        hard: list[Deletion],
        soft: list[Deletion],
        *,
        now: datetime,
        kinesis: bool,
        unmapped: dict[str, int] | None,
    ) -> tuple[int, int, int]:
        """
        Write the upserts and deletions of a batch, in key order (`_map` says what `unmapped` is).

        Returns:
            How many changes were applied and deleted a row, as the database
            reports them (`TableWriter.upsert`), and tied with a stored change.
        """
        pending.sort(key=lambda change: change[0])
        writer = self._writer(connection, soft=self.deleted_column is not None)
        # Chosen before anything is written: staging asked for where it cannot work raises here.
        staged = writer.bulk_path(connection, self.bulk_path()) == "staging"
        held = writer.lock(connection, [change[0] for change in pending] + [d.item_key for d in hard + soft])
        stored_ties = count_stored_ties(connection, self, row_mapper, pending, hard + soft) if kinesis else 0
        applied = 0
        deleted = 0
        for start in range(0, len(pending), CHUNK_ROWS):
            chunk = pending[start : start + CHUNK_ROWS]
            upserts = [
                self._upsert(row_mapper, record, image, identity, deleted_at, key, sequence, unmapped)
                for identity, record, image, deleted_at, key, sequence in chunk
            ]
            written = writer.upsert(connection, upserts, converted=self.mapper is None, staged=staged)
            # A soft delete that wrote its last image is a deletion. The count is
            # per statement: in a chunk where only some rows were written, the
            # plain changes are taken to be those (the sum stays exact).
            changes = len(chunk) if not soft else sum(1 for change in chunk if change[3] is None)
            applied += min(changes, written)
            deleted += written - min(changes, written)
        if hard:
            hard.sort(key=lambda d: d.item_key)
            deleted += self._writer(connection, soft=False).delete(connection, hard, now=now)
        if soft:
            soft.sort(key=lambda d: d.item_key)
            deleted += self._writer(connection, soft=True).delete(connection, soft, now=now)
        writer.unlock(connection, held)
        return applied, deleted, stored_ties

    def _upsert(  # noqa: PLR0917 - one call per row: positional, the pending tuple's order
        self,
        row_mapper: RowMapper,
        record: StreamRecord[Item],
        image: Image,
        identity: str,
        deleted_at: datetime | None,
        key: Mapping[str, Any],
        sequence: str,
        unmapped: dict[str, int] | None,
    ) -> Upsert:
        # The row is the item's image with the key of the record's Keys: when an
        # image disagrees with them (a hand-made event), Keys say which item it is.
        row = self._map(row_mapper, record, image, unmapped)
        row.update(key)
        try:
            values = list(map(row.__getitem__, row_mapper.columns))
        except KeyError as missing:
            error = ColumnValueError(
                "the mapper produced no value", column=str(missing.args[0]), attribute=None
            )
            raise self._mapping_error(record, image[0], error) from None
        values.append(sequence)
        if self.deleted_column is not None:
            values.append(deleted_at)
        return Upsert(values, identity, sequence)

    def check_table(self, connection: Connection) -> None:
        """
        Check the table against the database `connection` talks to.

        Raises:
            ConfigurationError: A key column does not compare text exactly, or
                the table holds rows of the other source (`check_stored_source`).
        """
        check_key_collations(self.table, read_table_facts(connection, self.table), connection.dialect)
        check_stored_source(connection, self.table, self.sequence_column, self.source())

    def _mapper_for(self, connection: Connection) -> RowMapper:
        """
        Return the row mapper for the database `connection` talks to.

        Built on the first batch for each dialect, after asking the database
        about the table (character sets, key collations: see `facts`).

        Raises:
            ConfigurationError: A key column does not compare text exactly.
        """
        dialect = connection.dialect
        mapper = self._row_mappers.get(dialect.name)
        if mapper is None:
            facts = read_table_facts(connection, self.table)
            check_key_collations(self.table, facts, dialect)
            if self._row_mapper_for is None:
                mapper = self.row_mapper
            else:
                mapper = self._row_mapper_for(dialect, facts.charsets)
            if facts.found or dialect.name == "sqlite":  # a missing table is asked about again
                self._row_mappers[dialect.name] = mapper
                self._facts[dialect.name] = facts
        return mapper

    def _map_key(self, row_mapper: RowMapper, record: StreamRecord[Item]) -> Mapping[str, Any]:
        try:
            return row_mapper.map_key(record.keys)
        except Exception as cause:
            raise self._mapping_error(record, "Keys", cause) from cause

    def _map(
        self, row_mapper: RowMapper, record: StreamRecord[Item], image: Image, unmapped: dict[str, int] | None
    ) -> dict[str, Any]:
        """
        Return the row of an image, a new dict; or raise a typed error naming the record.

        Once a new image is mapped, each of its attributes with no column adds
        one to its count in `unmapped` (when not `None`): names only, never values.
        """
        label, item, as_sent = image
        counts = unmapped if label == "NewImage" else None
        try:
            if as_sent and self.mapper is None:
                # The writers send numbers as text where the server parses them exactly; the
                # same pass counts the attributes with no column.
                row = row_mapper.map_event_image(
                    item, path=f"dynamodb.{label}", numbers_as_text=True, count_unmapped=counts
                )
                counts = None
            elif self.mapper is None:
                row = row_mapper(item)
            else:
                row = row_mapper.coerce_row(self.mapper(deserialize_image(item) if as_sent else item))
        except InvalidAttributeValue as malformed:
            raise _malformed(record, label, malformed) from None
        except MalformedRecordError as malformed:
            raise MalformedRecordError(
                malformed.reason,
                field=malformed.field,
                event_id=record.event_id,
                sequence_number=record.item_identifier,
            ) from None
        except Exception as cause:
            raise self._mapping_error(record, label, cause) from cause
        if counts is not None:
            for name in row_mapper.unmapped_attributes(item):  # mostly none: one set test says so
                counts[name] = counts.get(name, 0) + 1
        return row

    def _mapping_error(self, record: StreamRecord[Item], image: str, cause: BaseException) -> MappingError:
        return MappingError(
            index=None,
            event_id=record.event_id,
            sequence_number=record.item_identifier,
            image=image,
            mapper=f"replication of {self.table_name} into {self.table.fullname}",
            cause=cause,
        )

    def _prune(self, uow: UnitOfWork, now: datetime) -> None:
        """
        Delete tombstones past their retention, a bounded number at a time, never waiting.

        The tombstones to delete are locked with `SKIP LOCKED` first: one a
        concurrent batch is writing (its item removed again) is left for a later
        prune, so pruning never waits for another transaction, and never takes
        part in a deadlock. When the bound was reached, the next batch prunes
        again rather than an hour later.
        """
        if self._pruned_at is not None and now - self._pruned_at < _PRUNE_EVERY:
            return
        connection = uow.connection()
        table_name = self.table.fullname
        stale = (
            sa.select(tombstones.c.item_key)
            .where(
                tombstones.c.table_name == table_name,
                tombstones.c.deleted_at < now - self.tombstone_retention,
            )
            .limit(_PRUNE_ROWS)
            .with_for_update(skip_locked=True)
        )
        keys = list(connection.scalars(stale))
        for start in range(0, len(keys), CHUNK_ROWS):
            connection.execute(
                tombstones.delete().where(
                    tombstones.c.table_name == table_name,
                    tombstones.c.item_key.in_(keys[start : start + CHUNK_ROWS]),
                )
            )
        self._pruned_at = None if len(keys) == _PRUNE_ROWS else now
