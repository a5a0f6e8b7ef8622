"""
A bounded sample of a table's items: read by Scan under a read budget, or from a saved file.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Final

import attrs

from dynastream.exceptions import MalformedEventError, SourceError

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from dynastream._records import Item
    from dynastream._sources.aws import AwsClients

__all__ = ["KeyAttribute", "Sample", "read_sample", "sample_table"]

_KEY_TYPES: Final = frozenset({"S", "N", "B"})
_PAGE: Final = 100  # items per Scan call: small pages spread the sample over the segments


@attrs.frozen
class KeyAttribute:
    """
    One attribute of a table's primary key.

    Attributes:
        name: The attribute's name.
        type: Its DynamoDB type: `"S"`, `"N"` or `"B"`.
        role: `"HASH"` (partition key) or `"RANGE"` (sort key).
    """

    name: str
    type: str
    role: str = "HASH"


@attrs.frozen
class Sample:
    """
    A table's key schema and some of its items, to infer a SQL table from.

    Attributes:
        table_name: The DynamoDB table.
        keys: Its primary key, partition key first.
        items: The sampled items, deserialized (numbers as `Decimal`, binary
            as `bytes`, sets as `set`).
        source: Where the sample comes from, for the generated file's header.
        complete: The sample holds every item of the table (the Scan reached
            its end before the limit).
        estimated_items: The table's approximate item count, when known.
    """

    table_name: str
    keys: tuple[KeyAttribute, ...]
    items: tuple[Item, ...] = attrs.field(repr=lambda items: f"<{len(items)} items>")
    source: str = ""
    complete: bool = False
    estimated_items: int | None = None


def sample_table(
    table_name: str,
    *,
    limit: int = 1000,
    max_rcu: float | None = 25.0,
    segments: int = 4,
    clients: AwsClients | None = None,
) -> Sample:
    """
    Read the key schema (`DescribeTable`) and up to `limit` items of a table.

    The items come from a Scan split into `segments` parts read in turn, so
    that they spread over the table's key space rather than its first
    partition, with eventually consistent reads (half the cost of the
    backfill's). Reads wait so as to average at most `max_rcu` read capacity
    units per second.

    Args:
        table_name: The DynamoDB table.
        limit: The most items to read.
        max_rcu: Read capacity units per second; `None` for no limit.
        segments: Scan segments (1 to 1,000,000).
        clients: Builds the DynamoDB client (endpoint, region, session); the
            default configuration when omitted.

    Raises:
        SourceError: The table does not exist, the endpoint cannot be
            reached, no credentials are configured, or the table holds no
            items.
        ValueError: `limit`, `max_rcu` or `segments` out of range.
    """
    from dynastream._sources.aws import AwsClients, call
    from dynastream._sources.backfill import ReadBudget

    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if max_rcu is not None and not (max_rcu > 0 and math.isfinite(max_rcu)):
        raise ValueError(f"max_rcu must be a positive number, got {max_rcu}")
    if not 1 <= segments <= 1_000_000:
        raise ValueError(f"segments must be 1 to 1,000,000, got {segments}")
    dynamodb = (clients or AwsClients()).dynamodb()
    table = call(f"describe table {table_name!r}", dynamodb.describe_table, TableName=table_name)["Table"]
    keys = _key_schema(table)
    count = table.get("ItemCount")
    budget = ReadBudget(max_rcu)
    halt = threading.Event()
    starts: dict[int, dict[str, Any] | None] = dict.fromkeys(range(segments))
    raw: list[dict[str, Any]] = []
    while starts and len(raw) < limit and budget.acquire(halt):
        for segment in list(starts):
            if len(raw) >= limit or not budget.acquire(halt):
                break
            arguments: dict[str, Any] = {
                "TableName": table_name,
                "Limit": min(_PAGE, limit - len(raw)),
                "ReturnConsumedCapacity": "TOTAL",
            }
            if segments > 1:
                arguments.update(Segment=segment, TotalSegments=segments)
            start = starts[segment]
            if start is not None:
                arguments["ExclusiveStartKey"] = start
            response = call(f"scan table {table_name!r}", dynamodb.scan, **arguments)
            budget.charge(float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)))
            raw.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if last is None:
                del starts[segment]
            else:
                starts[segment] = last
    if not raw:
        raise SourceError(f"table {table_name!r} holds no items: there is nothing to infer its columns from")
    items = tuple(_deserialized(item, index) for index, item in enumerate(raw[:limit]))
    capacity = f", {budget.consumed:,.1f} read capacity units" if budget.consumed else ""
    return Sample(
        table_name,
        keys,
        items,
        source=f"a Scan of {len(items):,} items ({segments} segments{capacity})",
        complete=not starts,
        estimated_items=count if isinstance(count, int) else None,
    )


def _key_schema(table: dict[str, Any]) -> tuple[KeyAttribute, ...]:
    types = {a["AttributeName"]: a["AttributeType"] for a in table.get("AttributeDefinitions", [])}
    schema = sorted(table.get("KeySchema", []), key=lambda element: element.get("KeyType") != "HASH")
    keys = tuple(
        KeyAttribute(e["AttributeName"], types.get(e["AttributeName"], "S"), e["KeyType"]) for e in schema
    )
    if not keys:
        raise SourceError(f"table {table.get('TableName')!r} has no key schema in its description")
    return keys


def _deserialized(item: Any, index: int) -> Item:
    from dynastream._deserialize import InvalidAttributeValue, deserialize_image

    try:
        return deserialize_image(item)
    except InvalidAttributeValue as error:
        raise SourceError(f"scanned item #{index}: {error.field('item')}: {error.reason}") from None


def read_sample(
    source: str | os.PathLike[str] | Any,
    *,
    table_name: str | None = None,
    keys: Sequence[str] = (),
    input_format: str = "auto",
) -> Sample:
    """
    Read a sample from a saved file (or its decoded JSON).

    Three shapes are read:

    - a Lambda event (DynamoDB Streams or Kinesis Data Streams for DynamoDB),
      or any record shape `dynastream.parse_event` reads: the new image of
      each INSERT and MODIFY, and the old image of each REMOVE that carries
      one; the key names come from the records' `Keys`;
    - the output of `aws dynamodb scan` (`{"Items": [...]}`);
    - a JSON list of items, in plain or DynamoDB JSON.

    Args:
        source: A path, or the decoded document.
        table_name: The DynamoDB table; for an event, which of its tables
            (needed when it holds several).
        keys: The key attribute names, partition key first. Required for a
            scan or items file; for an event, they order the key columns.
        input_format: For an items file: `"plain"`, `"dynamodb"` or `"auto"`.

    Raises:
        MalformedEventError: The file cannot be read as any of the shapes, an
            item lacks a key attribute, or the keys are not given where needed.
        SourceError: The file cannot be opened, or holds no item.
    """
    from pathlib import Path

    from dynastream._events import load_event

    label = "the given document"
    document = source
    if isinstance(source, (str, Path)):
        label = str(source)
        try:
            document = load_event(source)
        except OSError as error:
            raise SourceError(f"cannot read {label}: {error.strerror or error}") from None
    if _is_event(document):
        return _event_sample(document, label, table_name, keys)
    from dynastream._items import read_items

    items = read_items(document, input_format)
    if not keys:
        raise MalformedEventError(
            f"{label} is a list of items, which does not say which attributes are the key: give the key"
            " attribute names (--keys pk,sk)"
        )
    if not items:
        raise SourceError(f"{label} holds no items: there is nothing to infer columns from")
    key_attributes = []
    for position, name in enumerate(keys):
        kinds = {_key_type(item.get(name), name, index) for index, item in enumerate(items)}
        if len(kinds) > 1:
            raise MalformedEventError(
                f"key attribute {name!r} has several types in {label}: {', '.join(sorted(kinds))}"
            )
        key_attributes.append(KeyAttribute(name, kinds.pop(), "HASH" if position == 0 else "RANGE"))
    return Sample(
        table_name or "items",
        tuple(key_attributes),
        tuple(items),
        source=f"{len(items):,} items read from {label}",
    )


def _key_type(value: Any, name: str, index: int) -> str:
    from decimal import Decimal

    if isinstance(value, str):
        return "S"
    if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
        return "N"
    if isinstance(value, bytes):
        return "B"
    raise MalformedEventError(f"item #{index} has no key attribute {name!r} of type S, N or B")


def _is_event(document: Any) -> bool:
    if isinstance(document, dict):
        if "Items" in document:
            return False
        return (
            "Records" in document
            or "dynamodb" in document
            or "kinesis" in document
            or "eventName" in document
        )
    return (
        bool(document)
        and isinstance(document, list)
        and isinstance(document[0], dict)
        and ("dynamodb" in document[0] or "kinesis" in document[0] or "eventName" in document[0])
    )


def _event_sample(document: Any, label: str, table_name: str | None, keys: Sequence[str]) -> Sample:
    from dynastream._events import parse_event

    records = parse_event(document)
    tables = sorted({record.table_name for record in records})
    if table_name is None:
        if len(tables) > 1:
            raise MalformedEventError(
                f"{label} holds records of several tables ({', '.join(tables)}): name one"
            )
        table_name = tables[0] if tables else None
    chosen = [record for record in records if record.table_name == table_name]
    items = [
        image
        for record in chosen
        for image in (record.new_image if record.new_image is not None else record.old_image,)
        if image is not None
    ]
    if not items:
        of_table = "" if table_name is None else f" of table {table_name!r}"
        raise SourceError(
            f"{label} holds no item image{of_table}: there is nothing to infer columns from (a KEYS_ONLY"
            " stream carries none)"
        )
    names = list(keys) or list(chosen[0].keys)
    key_attributes = []
    for position, name in enumerate(names):
        kinds = {_key_type(record.keys.get(name), name, index) for index, record in enumerate(chosen)}
        if len(kinds) > 1:
            raise MalformedEventError(f"key attribute {name!r} has several types in {label}")
        key_attributes.append(KeyAttribute(name, kinds.pop(), "HASH" if position == 0 else "RANGE"))
    assert table_name is not None  # noqa: S101 - records carry their table
    return Sample(
        table_name,
        tuple(key_attributes),
        tuple(items),
        source=f"{len(items):,} images of {len(chosen):,} records read from {label}",
    )
