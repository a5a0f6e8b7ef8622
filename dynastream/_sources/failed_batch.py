"""
Reading a failed batch back from its stream.

An on-failure destination record (what the event source mapping sends to SQS,
SNS or S3 when it gives up on a batch) carries no records, only where they
are: its shard and sequence-number range are read again through the DynamoDB
Streams API, while the stream still retains them (24 hours).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dynastream._events import arn_table
from dynastream.exceptions import MalformedEventError, SourceError

from .aws import AwsClients, call

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["batch_info", "read_failed_batch"]

# Pages with nothing in them tolerated before a range that should be there is
# declared unreadable (an open shard can answer an empty page mid-stream).
_EMPTY_PAGES = 10


def batch_info(document: Any) -> Mapping[str, Any] | None:
    """
    Return the `DDBStreamBatchInfo` of an on-failure destination record, or `None`.

    The record may be saved as it is, or as the SQS message (`body`/`Body`)
    or SNS notification (`Message`) that carried it.
    """
    if not isinstance(document, dict):
        return None
    info = document.get("DDBStreamBatchInfo")
    if isinstance(info, dict):
        return info
    for wrapper in ("body", "Body", "Message"):
        text = document.get(wrapper)
        if isinstance(text, str):
            try:
                inner = json.loads(text, parse_float=Decimal)
            except ValueError:
                continue
            found = batch_info(inner)
            if found is not None:
                return found
    records = document.get("Records") or document.get("Messages")
    if isinstance(records, list) and len(records) == 1:
        return batch_info(records[0])
    return None


def read_failed_batch(clients: AwsClients, info: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """
    Read the records of a failed batch again from the stream.

    Args:
        clients: Builds the Streams client.
        info: The destination record's `DDBStreamBatchInfo`.

    Returns:
        The table name and the records, in the `GetRecords` shape.

    Raises:
        MalformedEventError: `info` lacks a field or has one of the wrong type.
        SourceError: The stream cannot be read, or no longer holds the range.
    """
    try:
        arn = str(info["streamArn"])
        shard_id = str(info["shardId"])
        first = int(str(info["startSequenceNumber"]))
        last = int(str(info["endSequenceNumber"]))
    except (KeyError, ValueError) as error:
        raise MalformedEventError(f"DDBStreamBatchInfo: missing or malformed field {error}") from None
    table = arn_table(arn)
    if table is None:
        raise MalformedEventError(f"DDBStreamBatchInfo.streamArn is not a DynamoDB stream ARN: {arn!r}")
    streams = clients.streams()
    iterator = call(
        f"read shard {shard_id}",
        streams.get_shard_iterator,
        StreamArn=arn,
        ShardId=shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=str(info["startSequenceNumber"]),
    ).get("ShardIterator")
    records: list[dict[str, Any]] = []
    empty = 0
    while iterator is not None:
        page = call(f"read shard {shard_id}", streams.get_records, ShardIterator=iterator, Limit=1000)
        for record in page.get("Records", []):
            number = int(record["dynamodb"]["SequenceNumber"])
            if number > last:
                return table, records
            if number >= first:
                records.append(record)
        if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == last:
            return table, records
        empty = 0 if page.get("Records") else empty + 1
        if empty >= _EMPTY_PAGES:
            break
        iterator = page.get("NextShardIterator")
    if not records:
        raise SourceError(
            f"shard {shard_id} of {arn} holds no records from {first} to {last} any more"
            " (streams keep records 24 hours)"
        )
    return table, records
