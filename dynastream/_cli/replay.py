"""
`dynastream replay` and `dynastream generate-event`: replaying what failed, writing events.

A saved Lambda event is dispatched as it is; an on-failure destination record
is read back from its stream first (`dynastream._sources.failed_batch`).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from dynastream._events import load_event
from dynastream._items import read_items
from dynastream._record_fields import decode_json
from dynastream._sources.aws import AwsClients
from dynastream._sources.failed_batch import batch_info, read_failed_batch
from dynastream.exceptions import MalformedEventError, SourceError, describe_error

if TYPE_CHECKING:
    import argparse

__all__ = ["generate_event_command", "replay_command"]


def _load(path: str) -> Any:
    if path == "-":
        return _stdin()
    try:
        return load_event(path)
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror or error}") from None


def _stdin() -> Any:
    return decode_json(sys.stdin.buffer.read())


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
            f" (eventID={failure.event_id}) failed: {describe_error(failure.error)}; the records after it"
            " were not applied",
            file=sys.stderr,
        )
        return 1
    return 0


def generate_event_command(arguments: argparse.Namespace) -> int:
    """
    The `dynastream generate-event` command: write a Lambda event for given items.
    """
    from dynastream._factory import EventFactory

    items = read_items(_load(arguments.items), arguments.input_format)
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
