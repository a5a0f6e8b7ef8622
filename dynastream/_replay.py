"""
`dynastream replay` and `dynastream generate-event`: replaying what failed, writing events.

A saved Lambda event is dispatched as it is. An on-failure destination record
(what the event source mapping sends to SQS, SNS or S3 when it gives up on a
batch) carries no records, only where they are: its shard and sequence-number
range are read again through the DynamoDB Streams API, while the stream still
retains them (24 hours).
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._aws import AwsClients, call
from ._events import _arn_table, load_event
from .exceptions import MalformedEventError, SourceError, _describe_error

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

__all__ = ["batch_info", "generate_event_command", "read_failed_batch", "replay_command"]

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
    table = _arn_table(arn)
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


def _load(path: str) -> Any:
    if path == "-":
        return _stdin()
    try:
        return load_event(path)
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None


def _stdin() -> Any:
    from ._events import _decode_json

    return _decode_json(sys.stdin.buffer.read())


def replay_command(arguments: argparse.Namespace, app: Any) -> int:
    """
    The `dynastream replay` command: apply a saved event, or a failed batch read again.
    """
    document = _load(arguments.file)
    info = batch_info(document)
    table_name = arguments.table
    if info is not None:
        clients = AwsClients(endpoint_url=arguments.endpoint_url, region_name=arguments.region)
        table_name, records = read_failed_batch(clients, info)
        print(
            f"dynastream: read {len(records)} record(s) of the failed batch again from shard"
            f" {info['shardId']}",
            file=sys.stderr,
        )
        document = {"Records": records}
    result = app.dispatch(document, table_name=table_name)
    print(f"dynastream: {result.applied} of {result.total} record(s) applied", file=sys.stderr)
    for set_aside in result.quarantined:
        print(
            f"dynastream: record SequenceNumber={set_aside.item_identifier} quarantined:"
            f" {type(set_aside.error).__name__}",
            file=sys.stderr,
        )
    if result.failure is not None:
        failure = result.failure
        print(
            f"dynastream: record #{failure.index} SequenceNumber={failure.item_identifier}"
            f" (eventID={failure.event_id}) failed: {_describe_error(failure.error)}; the records after it"
            " were not applied",
            file=sys.stderr,
        )
        return 1
    return 0


def _is_typed(value: Any) -> bool:
    from ._deserialize import FAST_DECODERS

    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FAST_DECODERS


def _items(document: Any, input_format: str) -> list[dict[str, Any]]:
    """
    Return the items of an items file as Python values.

    A file is a JSON list of items, or the output of `aws dynamodb scan`
    (`{"Items": [...]}`). Items are plain JSON (numbers stay exact) or
    DynamoDB JSON (`{"total": {"N": "12.50"}}`, binary as base64).
    """
    from ._deserialize import InvalidAttributeValue, deserialize_image

    items = document.get("Items") if isinstance(document, dict) else document
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedEventError('the items file must hold a JSON list of objects, or {"Items": [...]}')
    typed = input_format == "dynamodb" or (
        input_format == "auto"
        and bool(items)
        and all(item and all(_is_typed(value) for value in item.values()) for item in items)
    )
    if not typed:
        return items
    converted = []
    for index, item in enumerate(items):
        try:
            converted.append(deserialize_image(item))
        except InvalidAttributeValue as error:
            raise MalformedEventError(f"item #{index}: {error.field('item')}: {error.reason}") from None
    return converted


def generate_event_command(arguments: argparse.Namespace) -> int:
    """
    The `dynastream generate-event` command: write a Lambda event for given items.
    """
    from .testing import EventFactory

    items = _items(_load(arguments.items), arguments.input_format)
    factory = EventFactory(
        keys=tuple(name.strip() for name in arguments.keys.split(",") if name.strip()),
        view_type=arguments.view_type,
        region=arguments.region or "eu-west-1",
    )
    records = []
    for index, item in enumerate(items):
        try:
            if arguments.event_name == "INSERT":
                records.append(factory.insert(arguments.table, item))
            elif arguments.event_name == "MODIFY":
                records.append(factory.modify(arguments.table, item))
            else:
                records.append(factory.remove(arguments.table, item, ttl=arguments.ttl))
        except (ValueError, TypeError) as error:
            raise MalformedEventError(f"item #{index}: {error}") from None
    text = json.dumps(factory.event(*records), indent=2, ensure_ascii=False) + "\n"
    if arguments.output in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(arguments.output, "w", encoding="utf-8") as file:
            file.write(text)
        print(f"dynastream: wrote {len(records)} record(s) to {arguments.output}", file=sys.stderr)
    return 0
