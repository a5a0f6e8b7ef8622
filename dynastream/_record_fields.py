"""
The parts of reading a record that every source shares: naming the record in errors, fields, images.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ._deserialize import LONE_SURROGATE, InvalidAttributeValue, deserialize_image, is_unicode, type_name
from ._records import EventName, Item
from .exceptions import MalformedEventError, MalformedRecordError

__all__ = [
    "EPOCH",
    "EVENT_NAMES",
    "NO_IMAGE",
    "TABLE_NAME_RULE",
    "RecordReader",
    "decode_json",
    "is_image",
    "is_mapping",
    "is_table_name",
    "is_ttl_identity",
    "kept_text",
    "missing_or_wrong",
    "read_event_name",
    "read_image",
    "read_keys",
    "read_size",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.NamingRules
is_table_name = re.compile(r"[a-zA-Z0-9_.-]{3,255}").fullmatch
TABLE_NAME_RULE = "3 to 255 characters among a-z, A-Z, 0-9, '_', '-' and '.'"
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"
EVENT_NAMES = {name.value: name for name in EventName}


def decode_json(text: str | bytes | bytearray) -> Any:
    # A file saved by some Windows editors starts with a byte-order mark. json
    # skips it in bytes (and so in load_event) but refuses it in a str; read
    # the same event the same way whichever form it comes in.
    if isinstance(text, str) and text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise MalformedEventError(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except UnicodeDecodeError:
        raise MalformedEventError("not valid JSON: not UTF-8 text") from None


class RecordReader:
    """
    Names the record being read in every error it raises.
    """

    __slots__ = ("event_id", "index", "sequence_number")

    def __init__(self, index: int) -> None:
        self.index = index
        self.event_id: str | None = None
        self.sequence_number: str | None = None

    def error(self, field: str, reason: str) -> MalformedRecordError:
        return MalformedRecordError(
            reason,
            field=field,
            index=self.index,
            event_id=self.event_id,
            sequence_number=self.sequence_number,
        )


def kept_text(value: Any, field: str, reader: RecordReader) -> Any:
    # Text kept on the record must be writable (UTF-8): no lone surrogate.
    if value.__class__ is str and not is_unicode(value):
        raise reader.error(field, LONE_SURROGATE)
    return value


def is_mapping(value: Any) -> bool:
    # Parsed JSON holds dicts: skip the slower ABC check for them.
    return value.__class__ is dict or isinstance(value, Mapping)


def is_image(sent: Any) -> bool:
    # An image that is absent, null or {} is no image: DynamoDB never writes an
    # item without its key attributes, so {} can only stand for "none here".
    # Anything else, even a falsy [] or "", is read (and refused if malformed).
    return sent is not None and not (sent.__class__ is dict and not sent)


NO_IMAGE = {type(None): "null", dict: "empty"}


def missing_or_wrong(container: Mapping[str, Any], key: str, expected: str) -> str:
    if key not in container:
        return "missing"
    return f"must be {expected}, got {type_name(container[key])}"


def read_image(dynamodb: Mapping[str, Any], name: str, reader: RecordReader) -> Item:
    try:
        return deserialize_image(dynamodb[name])
    except InvalidAttributeValue as error:
        raise reader.error(error.field(f"dynamodb.{name}"), error.reason) from None


def is_ttl_identity(identity: Any) -> bool:
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html
    # Lambda spells the identity {"type", "principalId"}; the Streams API, and so
    # boto3's get_records, {"Type", "PrincipalId"}
    # (https://docs.aws.amazon.com/amazondynamodbstreams/latest/APIReference/API_Identity.html).
    if not isinstance(identity, Mapping):
        return False
    return (identity.get("type") == "Service" and identity.get("principalId") == _TTL_PRINCIPAL) or (
        identity.get("Type") == "Service" and identity.get("PrincipalId") == _TTL_PRINCIPAL
    )


def read_event_name(raw: Mapping[str, Any], reader: RecordReader) -> EventName:
    """
    Return a record's `eventName`, or refuse one that is missing or unknown.
    """
    name_text = raw.get("eventName")
    event_name = EVENT_NAMES.get(name_text) if isinstance(name_text, str) else None
    if event_name is None:
        if name_text is None:
            raise reader.error("eventName", "missing")
        raise reader.error(
            "eventName", f"unknown event name {str(name_text)[:20]!r} (expected INSERT, MODIFY or REMOVE)"
        )
    return event_name


def read_keys(dynamodb: Mapping[str, Any], reader: RecordReader) -> Item:
    """
    Return a record's `Keys`, or refuse them when missing, empty or malformed.
    """
    if "Keys" not in dynamodb:
        raise reader.error("dynamodb.Keys", "missing")
    keys = read_image(dynamodb, "Keys", reader)
    if not keys:
        raise reader.error("dynamodb.Keys", "empty: a record must name its item's key")
    return keys


def read_size(dynamodb: Mapping[str, Any], reader: RecordReader) -> int | None:
    """
    Return a record's `SizeBytes` when it has one, or refuse one that is not a count of bytes.
    """
    size = dynamodb.get("SizeBytes")
    if size is not None and (type(size) is not int or size < 0):
        raise reader.error("dynamodb.SizeBytes", "must be a non-negative integer")
    return size
