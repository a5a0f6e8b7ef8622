"""
The replication property test's cases, raw Lambda events, and the model they are checked against.

A `Case` is a table (a primary key of 1-3 columns, 0-6 value columns), a history
of DynamoDB changes on a few items, and a schedule: the batches the event source
mapping delivers (indices into the history), from one thread or two.
`tests/replication/schema_strategies.py` generates them.

The model is independent of dynastream's code: it knows what each column must
hold from the DynamoDB value and the column type alone, and the final state of
the source from the highest-sequence change of each item. Values are compared in
a canonical, tagged form, so that `1.5 == 1.50` numerically but `True != 1`,
`b"\\x00\\x01" != b"0001"` and a naive datetime differs from an aware one.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any, Final

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

import dynastream

Typed = dict[str, Any]  # an attribute value as Lambda's JSON carries it: {"N": "1.5"}
Image = dict[str, Typed]

EXACT: Final = Context(prec=200, Emax=10_000, Emin=-10_000)
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_CREATED: Final = 1_767_225_600  # 2026-01-01T00:00:00Z
ARN: Final = "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2026-01-01T00:00:00.000"
TTL_IDENTITY: Final = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
NOPAD_BIN: Final = "utf8mb4_nopad_bin"

INTEGER_BITS: Final = {"integer": 32, "biginteger": 64}


# --- the case -----------------------------------------------------------------------


def _compact_repr(self: Any) -> str:
    """
    A repr that leaves out fields at their default, so that a shrunk case reads as code.
    """
    fields = attrs.fields(type(self))
    parts = [
        f"{field.name}={getattr(self, field.name)!r}"
        for field in fields
        if field.default is attrs.NOTHING or getattr(self, field.name) != field.default
    ]
    return f"{type(self).__name__}({', '.join(parts)})"


def _repr_pretty(self: Any, printer: Any, cycle: bool) -> None:
    printer.text(_compact_repr(self))  # Hypothesis prints falsifying examples this way


@attrs.frozen(repr=False)
class Column:
    """
    One generated column; its DynamoDB attribute has the column's name.

    `numbers`: a String key column whose attribute is N (else S). `fsp`: on
    MariaDB the DateTime is `DATETIME(fsp)` through `with_variant`.
    `collation`: the MariaDB collation of a String key column (None: the
    server's default).
    """

    __repr__ = _compact_repr
    _repr_pretty_ = _repr_pretty

    name: str
    kind: str
    key: bool = False
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    timezone: bool = False
    fsp: int | None = None
    numbers: bool = False
    collation: str | None = NOPAD_BIN

    def type(self, dialect: str) -> sa.types.TypeEngine[Any]:
        """
        Return the column's SQLAlchemy type, as a user targeting `dialect` would declare it.
        """
        kind = self.kind
        if kind == "string":
            if dialect == "mysql" and self.key and self.collation is not None:
                return sa.String(self.length, collation=self.collation)
            return sa.String(self.length)
        if kind == "text":
            return sa.Text()
        if kind == "integer":
            return sa.Integer()
        if kind == "biginteger":
            return sa.BigInteger()
        if kind == "numeric":
            return sa.Numeric(self.precision, self.scale)
        if kind == "boolean":
            return sa.Boolean()
        if kind == "json":
            return sa.JSON()
        if kind == "largebinary":
            return sa.LargeBinary()
        if kind in ("varbinary", "binary"):
            # PostgreSQL has neither type: BYTEA stands in.
            declared = sa.VARBINARY(self.length) if kind == "varbinary" else sa.BINARY(self.length)
            return declared.with_variant(postgresql.BYTEA(), "postgresql")
        assert kind == "datetime", kind
        moment = sa.DateTime(timezone=self.timezone)
        if self.fsp is not None:
            return moment.with_variant(
                mysql.DATETIME(timezone=self.timezone, fsp=self.fsp), "mysql", "mariadb"
            )
        return moment


@attrs.frozen(repr=False)
class Schema:
    """
    A generated table and how it is replicated.
    """

    __repr__ = _compact_repr
    _repr_pretty_ = _repr_pretty

    table: str
    columns: tuple[Column, ...]
    deletes: str = "delete"
    ttl: str | None = None
    view_type: str = "NEW_AND_OLD_IMAGES"

    @property
    def keys(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.key)

    @property
    def values(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.key)

    @property
    def soft(self) -> bool:
        return "soft_delete" in (self.deletes, self.ttl)

    def sa_table(self, dialect: str, metadata: sa.MetaData, **options: Any) -> sa.Table:
        columns = [
            sa.Column(c.name, c.type(dialect), primary_key=c.key, autoincrement=False, nullable=not c.key)
            for c in self.columns
        ]
        extra = [dynastream.deleted_column()] if self.soft else []
        return sa.Table(self.table, metadata, *columns, dynastream.sequence_column(), *extra, **options)

    def policy(self, change: Change) -> str:
        """
        Return what a REMOVE does to its row here: delete, soft_delete or ignore.
        """
        if change.ttl and self.ttl is not None:
            return self.ttl
        return self.deletes


@attrs.frozen(repr=False)
class Change:
    """
    One stream record of the history, as DynamoDB would write it.
    """

    __repr__ = _compact_repr
    _repr_pretty_ = _repr_pretty

    event_name: str
    sequence_number: int
    keys: Image
    new_image: Image | None = None
    old_image: Image | None = None
    ttl: bool = False
    created: int = FIRST_CREATED


@attrs.frozen(repr=False)
class Case:
    """
    A schema, a history of changes, and the batches delivered (indices into the history).

    `parallel`: how ParallelizationFactor > 1 delivers them. `""`: one
    worker, the schedule as it is. Otherwise the items are split in two
    groups and each group gets the schedule's batches filtered to its items,
    in order; `"interleaved"` delivers the two groups' batches one after the
    other in `order` (group numbers; the rest of group 0, then of group 1, at
    the end), so that an item's older change can arrive after another item's
    newer one; `"threads"` delivers them from two threads at once.
    """

    __repr__ = _compact_repr
    _repr_pretty_ = _repr_pretty

    schema: Schema
    history: tuple[Change, ...]
    schedule: tuple[tuple[int, ...], ...]
    parallel: str = ""
    order: tuple[int, ...] = ()


# --- raw Lambda events ------------------------------------------------------------------


def record(schema: Schema, change: Change, dynamodb_table: str) -> dict[str, Any]:
    """
    Return a change as a Lambda DynamoDB Streams record, built by hand.
    """
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": change.created,
        "Keys": change.keys,
        "SequenceNumber": str(change.sequence_number),
        "StreamViewType": schema.view_type,
    }
    if change.new_image is not None:
        dynamodb["NewImage"] = change.new_image
    if change.old_image is not None and schema.view_type == "NEW_AND_OLD_IMAGES":
        dynamodb["OldImage"] = change.old_image
    dynamodb["SizeBytes"] = len(json.dumps(dynamodb, ensure_ascii=False).encode())
    raw: dict[str, Any] = {
        "eventID": f"{change.sequence_number:x}"[-32:].rjust(32, "0"),
        "eventName": change.event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": ARN.format(dynamodb_table),
        "dynamodb": dynamodb,
    }
    if change.ttl:
        raw["userIdentity"] = dict(TTL_IDENTITY)
    return raw


def lambda_event(case: Case, batch: Sequence[int], dynamodb_table: str) -> dict[str, Any]:
    return {"Records": [record(case.schema, case.history[i], dynamodb_table) for i in batch]}


# --- the model ---------------------------------------------------------------------------


def canonical_number(number: Decimal) -> str:
    """
    Return a number's canonical text: plain notation, no trailing fractional zeros, 0 not -0.
    """
    if not number:
        return "0"
    return format(number.normalize(EXACT), "f")


def decode_binary(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def moment_of(typed: Typed) -> datetime:
    """
    Return the aware UTC instant of a DateTime column's attribute (N epoch seconds or S ISO 8601).
    """
    if "N" in typed:
        microseconds = Decimal(typed["N"]).scaleb(6, EXACT)
        assert microseconds == microseconds.to_integral_value()
        return EPOCH + timedelta(microseconds=int(microseconds))
    moment = datetime.fromisoformat(typed["S"])
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def expected_value(column: Column, typed: Typed | None, dialect: str) -> Any:
    """
    Return what `column` must hold for an attribute value, as SQLAlchemy reads it back.
    """
    if typed is None or "NULL" in typed:
        return None
    kind = column.kind
    if kind in ("string", "text"):
        return typed["S"] if "S" in typed else canonical_number(Decimal(typed["N"]))
    if kind in ("integer", "biginteger"):
        number = Decimal(typed["N"])
        assert number == number.to_integral_value()
        return int(number)
    if kind == "numeric":
        return Decimal(typed["N"])
    if kind == "boolean":
        return typed["BOOL"]
    if kind in ("varbinary", "binary", "largebinary"):
        return decode_binary(typed["B"])
    if kind == "json":
        return JsonValue(json_of(typed))
    assert kind == "datetime", kind
    moment = moment_of(typed)
    # Only PostgreSQL keeps the zone (TIMESTAMP WITH TIME ZONE); MariaDB's DATETIME and
    # SQLite's text hold UTC wall time and read back naive.
    return moment if column.timezone and dialect == "postgresql" else moment.replace(tzinfo=None)


@attrs.frozen
class JsonValue:
    """
    The value a JSON column must hold, with numbers as exact Decimals.
    """

    value: Any


def json_of(typed: Typed) -> Any:
    """
    Return an attribute value as JSON: sets as sorted arrays, binary as base64 text, numbers exact.
    """
    ((tag, payload),) = typed.items()
    if tag == "M":
        return {key: json_of(member) for key, member in payload.items()}
    if tag == "L":
        return [json_of(member) for member in payload]
    if tag == "N":
        return Decimal(payload)
    if tag == "B":
        return base64.b64encode(decode_binary(payload)).decode()
    if tag == "NULL":
        return None
    if tag == "SS":
        return sorted(payload)
    if tag == "NS":
        return sorted(Decimal(member) for member in payload)
    if tag == "BS":
        return [base64.b64encode(member).decode() for member in sorted(decode_binary(m) for m in payload)]
    assert tag in ("S", "BOOL"), tag
    return payload


def comparable(value: Any) -> Any:
    """
    Return a value in a tagged canonical form that compares exactly.

    Numbers compare numerically (`1.5 == 1.50`) but never equal a boolean or a
    float; bytes, text and datetimes compare exactly, zone included.
    """
    if value is None:
        return None
    if isinstance(value, JsonValue):
        return ("JSON", _comparable_json(value.value))
    if isinstance(value, bool):
        return ("BOOL", value)
    if isinstance(value, int):
        return ("INT", value)
    if isinstance(value, Decimal):
        return ("DECIMAL", canonical_number(value))
    if isinstance(value, str):
        return ("TEXT", value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("BYTES", bytes(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return ("NAIVE", value.isoformat())
        return ("AWARE", value.astimezone(UTC).isoformat())
    return ("OTHER", type(value).__name__, repr(value))


def _comparable_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _comparable_json(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_comparable_json(member) for member in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        return ("number", canonical_number(Decimal(repr(value))))
    if isinstance(value, (int, Decimal)):
        return ("number", canonical_number(Decimal(value)))
    return ("OTHER", type(value).__name__, repr(value))


Identity = tuple[Any, ...]
Row = dict[str, Any]


def identity_of(schema: Schema, keys: Image, dialect: str) -> Identity:
    return tuple(comparable(expected_value(c, keys[c.name], dialect)) for c in schema.keys)


def final_changes(case: Case, dialect: str) -> dict[Identity, Change]:
    """
    Return, per item, its change with the highest sequence number (TTL deletes a policy ignores left out).
    """
    last: dict[Identity, Change] = {}
    for change in case.history:
        if change.event_name == "REMOVE" and case.schema.policy(change) == "ignore":
            continue
        identity = identity_of(case.schema, change.keys, dialect)
        if identity not in last or last[identity].sequence_number < change.sequence_number:
            last[identity] = change
    return last


def expected_rows(case: Case, dialect: str) -> dict[Identity, Row]:
    """
    Return every row the table must hold, each column's value in `comparable` form.
    """
    schema = case.schema
    rows: dict[Identity, Row] = {}
    for identity, change in final_changes(case, dialect).items():
        deleted_at = None
        if change.event_name == "REMOVE":
            if schema.policy(change) == "delete":
                continue
            # Soft delete: the item's last image stays, marked deleted at the REMOVE's time.
            image = change.old_image
            assert image is not None
            deleted_at = datetime.fromtimestamp(change.created, UTC)
            if dialect != "postgresql":
                deleted_at = deleted_at.replace(tzinfo=None)
        else:
            image = change.new_image
            assert image is not None
        row = {c.name: comparable(expected_value(c, image.get(c.name), dialect)) for c in schema.columns}
        row["dynastream_sequence"] = comparable(str(change.sequence_number).zfill(40))
        if schema.soft:
            row["dynastream_deleted_at"] = comparable(deleted_at)
        rows[identity] = row
    return rows


def stored_rows(connection: sa.Connection, schema: Schema, table: sa.Table) -> dict[Identity, Row]:
    """
    Read the table back with SQLAlchemy, each value in `comparable` form.

    Two stored rows with one identity (which a correct table cannot have) are
    both kept, the second under a marked identity.
    """
    json_columns = {c.name for c in schema.columns if c.kind == "json"}
    rows: dict[Identity, Row] = {}
    for stored in connection.execute(sa.select(table)).mappings():
        row = {
            column.name: comparable(
                JsonValue(stored[column])
                if column.name in json_columns and stored[column] is not None
                else stored[column]
            )
            for column in table.columns
        }
        identity: Identity = tuple(row[c.name] for c in schema.keys)
        while identity in rows:
            identity = ("DUPLICATE", *identity)
        rows[identity] = row
    return rows


def worker_batches(case: Case, dialect: str) -> list[list[tuple[int, ...]]]:
    """
    The batches each concurrent worker delivers, in its order (one worker unless `parallel` is "threads").
    """
    if not case.parallel:
        return [list(case.schedule)]
    identities = sorted({identity_of(case.schema, c.keys, dialect) for c in case.history}, key=repr)
    group = {identity: n % 2 for n, identity in enumerate(identities)}
    per_group: list[list[tuple[int, ...]]] = [[], []]
    for batch in case.schedule:
        for number, batches in enumerate(per_group):
            mine = tuple(
                i for i in batch if group[identity_of(case.schema, case.history[i].keys, dialect)] == number
            )
            if mine:
                batches.append(mine)
    if case.parallel == "threads":
        return per_group
    merged = [per_group[number].pop(0) for number in case.order if per_group[number]]
    return [merged + per_group[0] + per_group[1]]


# --- failures -----------------------------------------------------------------------------------

_FAILURES: dict[str, type[AssertionError]] = {}


def label(column: Column) -> str:
    return f"{column.kind}N" if column.numbers else column.kind


def failure(category: str, message: str) -> AssertionError:
    kind = _FAILURES.setdefault(category, type(category, (AssertionError,), {"__module__": __name__}))
    return kind(message)


def refused(schema: Schema, identifier: str, error: BaseException) -> AssertionError:
    """
    Return the failure of a valid record that was not applied, classed by error and column kind.
    """
    column = getattr(error, "column", None)
    named = re.search(r"column '([^']+)'", str(error)) if column is None else None  # a driver's error
    column = named.group(1) if named else column
    kinds = {c.name: label(c) for c in schema.columns}
    category = f"RecordRefused_{type(error).__name__}_{kinds.get(column, 'table') if column else 'table'}"
    cause = getattr(error, "__cause__", None)
    return failure(
        category, f"record {identifier} was refused: {error}" + (f"\n  cause: {cause!r}" if cause else "")
    )


def rows_differ(
    schema: Schema, expected: Mapping[Identity, Row], stored: Mapping[Identity, Row], count: int
) -> AssertionError:
    """
    Return the failure of a table that is not what the model says, naming every difference.

    Its class says what kind of difference it is, and Hypothesis, which tells
    failures apart by class, shrinks and reports each kind on its own (a bug of
    binary columns does not hide one of numeric keys):

    - `KeysStoredDifferently_<kinds>`: rows stored under other key values (the
      kinds of the key columns whose values differ);
    - `RowsLostWithKeysOf_<kind>`: rows missing (the first key column's kind);
    - `RowsNotDeletedWithKeysOf_<kind>`: rows that should not be there;
    - `ValuesDifferIn_<kind>`: the first column whose value differs (`sequence`
      and `deleted` for dynastream's columns).
    """
    missing = {i: expected[i] for i in expected.keys() - stored.keys()}
    extra = {i: stored[i] for i in stored.keys() - expected.keys()}
    differing = {
        i: (expected[i], stored[i]) for i in expected.keys() & stored.keys() if expected[i] != stored[i]
    }
    kinds = {c.name: label(c) for c in schema.columns} | {
        "dynastream_sequence": "sequence",
        "dynastream_deleted_at": "deleted",
    }
    first_key = label(schema.keys[0])
    if missing and extra:
        moved = [
            label(c)
            for c in schema.keys
            if {r[c.name] for r in missing.values()} != {r[c.name] for r in extra.values()}
        ]
        category = "KeysStoredDifferently_" + "_".join(sorted(set(moved)) or [first_key])
    elif missing:
        category = f"RowsLostWithKeysOf_{first_key}"
    elif extra:
        category = f"RowsNotDeletedWithKeysOf_{first_key}"
    elif differing:
        want, got = next(iter(differing.values()))
        category = "ValuesDifferIn_" + next(kinds[name] for name in want if want[name] != got.get(name))
    else:
        category = "RowCountDiffers"
    lines = [f"the table differs from the source ({count} rows stored, {len(expected)} expected)"]
    lines += [f"  missing {identity!r}: {row!r}" for identity, row in sorted(missing.items(), key=repr)]
    lines += [f"  not expected {identity!r}: {row!r}" for identity, row in sorted(extra.items(), key=repr)]
    for identity, (want, got) in sorted(differing.items(), key=repr):
        for name in want:
            if want[name] != got.get(name):
                lines.append(
                    f"  row {identity!r} column {name!r}: expected {want[name]!r}, stored {got.get(name)!r}"
                )
    return failure(category, "\n".join(lines))
