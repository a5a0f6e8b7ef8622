"""
Which change of an item is newer: sequence numbers as stored, sources, ties.

DynamoDB Streams orders the changes of an item by sequence number; Kinesis
Data Streams for DynamoDB by an ordering number built from the creation time
(see `_kinesis`). One table is replicated from one source: the two orders
cannot be compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from dynastream._kinesis import is_tie
from dynastream._records import RecordSource
from dynastream.exceptions import ConfigurationError, MalformedRecordError
from dynastream.schema import KINESIS_MARKER, SEQUENCE_WIDTH, encode_sequence_number, item_key, tombstones

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Connection

    from dynastream._records import Item, StreamRecord
    from dynastream._replication.target import Deletion

__all__ = [
    "check_source",
    "check_stored_source",
    "count_stored_ties",
    "counts_as_tie",
    "source_conflicts",
    "stored_sequence",
]

_TIE_KEYS = 1_000  # keys asked about per statement when counting ties with stored changes

_SETTING = {RecordSource.DYNAMODB_STREAMS: "dynamodb", RecordSource.KINESIS: "kinesis"}
_NAMES = {RecordSource.DYNAMODB_STREAMS: "DynamoDB Streams", RecordSource.KINESIS: "Kinesis Data Streams"}


def stored_sequence(record: StreamRecord[Item], source: RecordSource, table_name: str) -> str:
    """
    Return a record's sequence number as stored, or refuse one of more than 40 digits.

    Raises:
        MalformedRecordError: The sequence number is too long.
        ConfigurationError: The record comes from another source than `source`
            (see `check_source`).
    """
    check_source(record, source, table_name)
    kinesis = record.source is RecordSource.KINESIS
    try:
        return encode_sequence_number(record.sequence_number, kinesis=kinesis)
    except ValueError:
        raise MalformedRecordError(
            f"a sequence number of more than {SEQUENCE_WIDTH} digits (DynamoDB's have 21 to 40)",
            field="dynamodb.SequenceNumber",
            event_id=record.event_id,
            sequence_number=record.item_identifier,
        ) from None


def check_source(record: StreamRecord[Item], expected: RecordSource, table_name: str) -> None:
    """
    Refuse a record of the source its table is not replicated from.

    Raises:
        ConfigurationError: The record comes from the other source; the whole
            batch fails, as every record of it would.
    """
    if record.source is not expected:
        raise ConfigurationError(
            f"record {record.item_identifier} of {table_name!r} comes from {_NAMES[record.source]},"
            f" but the table is replicated from {_NAMES[expected]}: set DYNASTREAM_SOURCE="
            f"{_SETTING[record.source]} (or App.replicate(..., source={_SETTING[record.source]!r}))"
            " if the function now reads that source; one table cannot be replicated from both,"
            " since their orders of changes cannot be compared"
        )


def counts_as_tie(record: StreamRecord[Item], newest: StreamRecord[Item] | None) -> bool:
    """
    Return whether `record` ties with the newest change of its item seen so far in the batch.
    """
    return (
        newest is not None
        and record.source is RecordSource.KINESIS
        and newest.source is RecordSource.KINESIS
        and is_tie(record.sequence_number, newest.sequence_number)
    )


def source_conflicts(handlers: Sequence[Any]) -> list[str]:
    """
    Return a problem for each DynamoDB table or SQL table that `handlers` replicate from both sources.
    """
    sources: dict[tuple[str, str], set[RecordSource]] = {}
    for handler in handlers:
        source = handler.source()
        sources.setdefault(("DynamoDB table", handler.table_name), set()).add(source)
        sources.setdefault(("SQL table", handler.table.fullname), set()).add(source)
    return [
        f"{kind} {name!r} is replicated from both DynamoDB Streams and Kinesis Data Streams,"
        " whose orders of changes cannot be compared: replicate it from one"
        for (kind, name), found in sources.items()
        if len(found) > 1
    ]


def check_stored_source(
    connection: Connection, table: sa.Table, sequence_column: str, source: RecordSource
) -> None:
    """
    Refuse to replicate from DynamoDB Streams into a table holding rows written from Kinesis Data Streams.

    A Kinesis ordering number is stored after a letter, which sorts after every
    digit: no DynamoDB Streams change could ever win over such a row. (The other
    way, a table moved from DynamoDB Streams to Kinesis Data Streams, works:
    every Kinesis change wins over the rows and tombstones left before.)

    Raises:
        ConfigurationError: The table holds such a row.
    """
    if source is not RecordSource.DYNAMODB_STREAMS:
        return
    column = table.c[sequence_column]
    found = connection.execute(
        sa.select(sa.literal(1)).where(column.like(f"{KINESIS_MARKER}%")).limit(1)
    ).first()
    if found is not None:
        raise ConfigurationError(
            f"table {table.fullname!r} holds rows replicated from Kinesis Data Streams, but is now"
            " replicated from DynamoDB Streams, whose changes could never win over them: set"
            " DYNASTREAM_SOURCE=kinesis (or App.replicate(..., source='kinesis')), or start the table afresh"
        )


def count_stored_ties(
    connection: Connection,
    handler: Any,
    row_mapper: Any,
    pending: Sequence[Any],
    deletions: Sequence[Deletion],
) -> int:
    """
    Return how many of a batch's Kinesis changes tie with the stored change of their item.

    `pending` are the replication handler's rows to write (item key, ...,
    mapped key, sequence as stored), `deletions` its deletions. The stored
    change is the row's or the tombstone's. Only counted: the guarded
    statements decide, as for every change. Called with the batch's item
    locks held, so what it reads is what the statements will compare with.
    """
    table: sa.Table = handler.table
    key_columns = row_mapper.key_columns()
    changes = {deletion.item_key: (deletion.key, deletion.sequence) for deletion in deletions}
    changes.update((change[0], ([change[4][c] for c in key_columns], change[5])) for change in pending)
    columns = [table.c[name] for name in key_columns]
    identities = list(changes)
    tied: set[str] = set()
    for start in range(0, len(identities), _TIE_KEYS):
        chunk = identities[start : start + _TIE_KEYS]
        if len(columns) == 1:
            where = columns[0].in_([changes[identity][0][0] for identity in chunk])
        else:
            where = sa.tuple_(*columns).in_([tuple(changes[identity][0]) for identity in chunk])
        stored = [
            (item_key(row[:-1]), row[-1])
            for row in connection.execute(sa.select(*columns, table.c[handler.sequence_column]).where(where))
        ]
        stored += [
            (row.item_key, row.sequence_number)
            for row in connection.execute(
                sa.select(tombstones.c.item_key, tombstones.c.sequence_number).where(
                    tombstones.c.table_name == table.fullname, tombstones.c.item_key.in_(chunk)
                )
            )
        ]
        tied.update(
            identity
            for identity, sequence in stored
            if identity in changes and _ties(changes[identity][1], sequence)
        )
    return len(tied)


def _ties(incoming: str, stored: str | None) -> bool:
    return (
        stored is not None
        and stored[:1] == KINESIS_MARKER
        and incoming[:1] == KINESIS_MARKER
        and stored[1:].isdigit()
        and is_tie(int(incoming[1:]), int(stored[1:]))
    )
