"""
Strategies for the replication property test: schemas, histories with values at the edges, deliveries.

Every value generated is one the mapping accepts, so every record must apply
(see the table in `dynastream/_mapping.py`): numbers within a column's range
and scale (on SQLite only those its float storage keeps), text and binary
within a column's length, JSON numbers a JSON column keeps exactly, whole
seconds for MariaDB's plain DATETIME, no NUL in PostgreSQL text. Keys of one
column are drawn from a small pool of near neighbours (`abc`/`ABC`/`abc `,
numbers one apart in their last digit, bytes one zero byte apart), and numbers
are spelled several ways (`1.50`, `1.5E+0`, `-0`).
"""

from __future__ import annotations

import base64
import sqlite3
from datetime import timedelta, timezone
from decimal import Decimal
from typing import Final

import attrs
from hypothesis import strategies as st

from tests.replication.schemas import (
    EPOCH,
    EXACT,
    FIRST_CREATED,
    INTEGER_BITS,
    NOPAD_BIN,
    Case,
    Change,
    Column,
    Image,
    Schema,
    Typed,
    canonical_number,
    decode_binary,
    identity_of,
)

# In the order Hypothesis shrinks towards: the plainest types first.
KEY_KINDS: Final = (
    "string",
    "integer",
    "biginteger",
    "numeric",
    "varbinary",
    "binary",
    "largebinary",
    "datetime",
)
VALUE_KINDS: Final = (
    *("string", "text", "integer", "biginteger", "numeric", "boolean", "json"),
    *("varbinary", "binary", "largebinary", "datetime"),
)

# --- values at the edges ---------------------------------------------------------------------

EDGE_TEXTS: Final = (
    *("abc", "ABC", "abc ", "Abc", " abc", "a", "ß", "ss", "SS", "é"),
    "e\u0301",  # é decomposed
    "😀",  # 4 bytes in UTF-8
    "\U0001d518\U0001d52b\U0001d526",  # 4 bytes each, letter-like
    *("日本語", "\t", "a\nb", '"\\', "'; --", "\u00a0", "\ufeff", "\U0010ffff"),
)
EDGE_BYTES: Final = (b"\x00\x01", b"\x01", b"\x01\x00", b"\xff", b"\x00", b"\x00\x00", b"\xff\xfe", b"0001")
EDGE_NUMBERS: Final = (
    *("0", "1", "-1", "1.5", "0.1", "9007199254740993", "1.0000000000000001"),
    *("12345678901234567890", "12345678901234567891"),  # one float, two numbers
    *("10000000000000000000000000000000000001", "10000000000000000000000000000000000002"),
    *("99999999999999999999999999999999999999", "-99999999999999999999999999999999999999"),
    "0.00000000000000000000000000000000000001",
)
# Naive UTC range kept well inside every engine's DATETIME (MariaDB: years 1000-9999).
FIRST_SECOND: Final = -2_208_988_800  # 1900-01-01
LAST_SECOND: Final = 7_258_118_400  # 2200-01-01
OFFSETS: Final = (None, "+00:00", "Z", "+05:30", "-08:00", "+14:00", "-12:00")


def characters(dialect: str) -> st.SearchStrategy[str]:
    # No lone surrogates (not UTF-8); PostgreSQL cannot store NUL in text.
    return st.characters(codec="utf-8", exclude_characters="\x00" if dialect == "postgresql" else None)


def texts(dialect: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    edges = [t for t in EDGE_TEXTS if min_size <= len(t) <= max_size]
    long = [t * max_size for t in ("x", "😀", "é ")] if max_size >= 2 else []
    fitting = [t[:max_size] for t in long if len(t[:max_size]) >= min_size]
    return st.one_of(
        st.sampled_from(edges) if edges else st.nothing(),
        st.text(characters(dialect), min_size=min_size, max_size=min(max_size, 30)),
        st.sampled_from(fitting or ["x" * min_size]),
    )


def binaries(min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    edges = [b for b in EDGE_BYTES if min_size <= len(b) <= max_size]
    return st.one_of(
        st.sampled_from(edges) if edges else st.nothing(),
        st.binary(min_size=min_size, max_size=min(max_size, 40)),
        st.just(b"\xff" * max_size),
    )


def fixed_binaries(size: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(
            [b"\x00" * size, b"\xff" * size, b"\x00" * (size - 1) + b"\x01", b"\x01" + b"\x00" * (size - 1)]
        ),
        st.binary(min_size=size, max_size=size),
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decimals(max_digits: int = 38) -> st.SearchStrategy[Decimal]:
    """
    DynamoDB numbers: up to 38 significant digits, edges first.
    """
    edges = [Decimal(t) for t in EDGE_NUMBERS if len(Decimal(t).as_tuple().digits) <= max_digits]
    return st.one_of(
        st.sampled_from(edges),
        st.builds(
            lambda digits, exponent: Decimal(digits).scaleb(exponent, EXACT),
            st.integers(-(10**max_digits - 1), 10**max_digits - 1),
            st.integers(-40, 20),
        ),
    )


def number_texts(number: Decimal) -> st.SearchStrategy[str]:
    """
    The ways a number can be written: canonical first, then trailing zeros, an exponent, -0.
    """
    plain = canonical_number(number)
    variants = [plain]
    significant = len(number.normalize(EXACT).as_tuple().digits)
    if significant < 38:
        variants.append(plain + ("0" if "." in plain else ".0"))
    if number:
        variants.append(f"{number.normalize(EXACT):E}")
    else:
        variants += ["-0", "0.00", "-0.0"]
    return st.sampled_from(variants)


def numbers(number: Decimal) -> st.SearchStrategy[Typed]:
    return number_texts(number).map(lambda text: {"N": text})


def integers(bits: int) -> st.SearchStrategy[Decimal]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.sampled_from([0, 1, -1, high, low, high - 1]), st.integers(low, high)).map(Decimal)


def numeric_decimals(precision: int, scale: int, dialect: str) -> st.SearchStrategy[Decimal]:
    """
    Numbers that fit NUMERIC(precision, scale), at its edges; on SQLite only those its float keeps.
    """
    top = 10**precision - 1  # the largest unscaled value
    edges = [0, 1, -1, top, -top, 10 ** (precision - 1), 10 ** (precision - 1) + 1, 10 ** (precision - 1) + 2]
    edges += [u for u in (12345678901234567890, 12345678901234567891) if u <= top]
    if scale:
        edges += [10**scale, 10**scale + 1, 10**scale * 15 // 10]  # 1, 1 + ulp, 1.5
    full = st.integers(
        10 ** (precision - 1), top
    )  # all `precision` digits: 38 of them lose digits as a float
    unscaled = st.one_of(
        st.sampled_from([u for u in edges if -top <= u <= top]),
        st.integers(-top, top),
        full,
        full.map(lambda u: -u),
    )
    values = unscaled.map(lambda u: Decimal(u).scaleb(-scale, EXACT))
    if dialect != "sqlite":
        return values
    # SQLAlchemy stores Numeric as a float on SQLite and reads it back with `scale` places.
    limit = Decimal(10) ** (precision - scale)

    def through_float(value: Decimal) -> Decimal:
        return Decimal(f"%.{scale}f" % float(value))

    return values.map(through_float).filter(lambda v: abs(v) < limit and through_float(v) == v)


def epoch_seconds(*, whole: bool) -> st.SearchStrategy[Decimal]:
    micro = st.just(0) if whole else st.one_of(st.just(0), st.integers(0, 999_999))
    seconds = st.one_of(
        st.sampled_from([0, FIRST_CREATED, -1, 2**31 - 1, 2**31]), st.integers(FIRST_SECOND, LAST_SECOND)
    )
    return st.builds(lambda s, u: Decimal(s) + Decimal(u).scaleb(-6), seconds, micro)


@st.composite
def iso_texts(draw: st.DrawFn, *, whole: bool) -> str:
    instant = EPOCH + timedelta(seconds=int(draw(epoch_seconds(whole=whole))))
    if not whole:
        instant += timedelta(microseconds=draw(st.integers(0, 999_999)))
    offset = draw(st.sampled_from(OFFSETS))
    if offset is None:
        return instant.replace(tzinfo=None).isoformat()
    if offset == "Z":
        return instant.replace(tzinfo=None).isoformat() + "Z"
    sign = -1 if offset[0] == "-" else 1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
    return instant.astimezone(timezone(delta)).isoformat()


def json_numbers(dialect: str) -> st.SearchStrategy[Decimal]:
    """
    Numbers a JSON column keeps exactly: integers (64-bit on MariaDB), or decimals a float keeps.
    """
    low, high = (-(2**63), 2**64 - 1) if dialect == "mysql" else (-(10**38 - 1), 10**38 - 1)
    ints = st.one_of(st.sampled_from([0, -1, 2**53 + 1, 2**63 - 1, -(2**63), high]), st.integers(low, high))
    floats = (
        st.floats(allow_nan=False, allow_infinity=False)
        .filter(lambda f: f == 0 or 1e-100 < abs(f) < 1e100)
        .map(lambda f: Decimal(repr(f)))
        .filter(lambda d: d != d.to_integral_value() or low <= int(d) <= high)
    )
    return st.one_of(ints.map(Decimal), floats)


def json_attributes(dialect: str) -> st.SearchStrategy[Typed]:
    """
    Any attribute value a JSON column takes: scalars, sets, and maps and lists nested.
    """
    text = texts(dialect, 0, 12)
    keys = texts(dialect, 1, 8)
    leaves = st.one_of(
        text.map(lambda s: {"S": s}),
        json_numbers(dialect).flatmap(numbers),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        binaries(0, 8).map(lambda b: {"B": b64(b)}),
        st.lists(texts(dialect, 0, 6), min_size=1, max_size=4, unique=True).map(lambda m: {"SS": m}),
        st.lists(json_numbers(dialect), min_size=1, max_size=4, unique=True)
        .flatmap(lambda ns: st.tuples(*[number_texts(n) for n in ns]))
        .map(lambda ts: {"NS": list(ts)}),
        st.lists(binaries(1, 6), min_size=1, max_size=4, unique=True).map(
            lambda bs: {"BS": [b64(b) for b in bs]}
        ),
    )
    nested = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda members: {"L": members}),
            st.dictionaries(keys, children, max_size=4).map(lambda members: {"M": members}),
        ),
        max_leaves=10,
    )

    def deep(depth: int) -> Typed:
        value: Typed = {"S": "bottom"}
        for level in range(depth):
            value = {"M": {f"level{level}": value}}
        return value

    whole = st.one_of(nested, st.integers(20, 25).map(deep))
    # As a JSON column's whole value, SQLite stores a number as an INTEGER or a REAL (its
    # JSON column has NUMERIC affinity), which dynastream refuses when that would change
    # it: generate only what it keeps (inside lists and maps, numbers stay text).
    return whole.filter(_sqlite_keeps) if dialect == "sqlite" else whole


def _sqlite_keeps(value: Typed) -> bool:
    text = value.get("N")
    if not isinstance(text, str):
        return True
    number = Decimal(text)
    if number == number.to_integral_value():
        return -(2**63) <= int(number) < 2**63
    connection = sqlite3.connect(":memory:")
    try:
        read_back = connection.execute("SELECT CAST(? AS REAL)", (text,)).fetchone()[0]
    finally:
        connection.close()
    return bool(read_back == float(text))


# --- columns and values ---------------------------------------------------------------------


def key_kinds(dialect: str) -> list[str]:
    # MariaDB cannot index a BLOB without a prefix length.
    return [k for k in KEY_KINDS if not (dialect == "mysql" and k == "largebinary")]


@st.composite
def columns(draw: st.DrawFn, name: str, dialect: str, *, key: bool) -> Column:
    kind = draw(st.sampled_from(key_kinds(dialect) if key else VALUE_KINDS))
    if kind == "string":
        length = draw(st.one_of(st.sampled_from([40, 200, 1, 3]), st.integers(1, 200)))
        return Column(name, kind, key=key, length=length, numbers=key and draw(st.booleans()))
    if kind == "numeric":
        precision = draw(st.one_of(st.sampled_from([38, 20, 17]), st.integers(1, 38)))
        scale = draw(st.one_of(st.just(0), st.integers(0, precision)))
        return Column(name, kind, key=key, precision=precision, scale=scale)
    if kind == "varbinary":
        return Column(
            name, kind, key=key, length=draw(st.one_of(st.sampled_from([16, 200]), st.integers(1, 200)))
        )
    if kind == "binary":
        return Column(name, kind, key=key, length=draw(st.integers(1, 16)))
    if kind == "datetime":
        fsp = 6 if dialect == "mysql" and draw(st.booleans()) else None
        return Column(name, kind, key=key, timezone=draw(st.booleans()), fsp=fsp)
    return Column(name, kind, key=key)


def whole_seconds(column: Column, dialect: str) -> bool:
    return dialect == "mysql" and column.fsp is None  # MariaDB's plain DATETIME keeps whole seconds


def key_attributes(column: Column, dialect: str) -> st.SearchStrategy[Typed]:
    """
    The canonical attribute values of a key column (S, N or B, never empty).
    """
    kind = column.kind
    if kind == "string":
        if column.numbers:
            length = column.length or 200
            return (
                decimals()
                .filter(lambda d: len(canonical_number(d)) <= length)
                .map(lambda d: {"N": canonical_number(d)})
            )
        return texts(dialect, 1, column.length or 200).map(lambda s: {"S": s})
    if kind in INTEGER_BITS:
        return integers(INTEGER_BITS[kind]).map(lambda d: {"N": canonical_number(d)})
    if kind == "numeric":
        assert column.precision is not None
        assert column.scale is not None
        return numeric_decimals(column.precision, column.scale, dialect).map(
            lambda d: {"N": canonical_number(d)}
        )
    if kind == "binary":
        assert column.length is not None
        return fixed_binaries(column.length).map(lambda b: {"B": b64(b)})
    if kind in ("varbinary", "largebinary"):
        return binaries(1, column.length or 200).map(lambda b: {"B": b64(b)})
    assert kind == "datetime", kind
    return epoch_seconds(whole=whole_seconds(column, dialect)).map(lambda d: {"N": canonical_number(d)})


def neighbours(column: Column, typed: Typed, dialect: str) -> list[Typed]:
    """
    Key values next to `typed` that a database could confuse with it, all valid for the column.

    `abc`: `ABC`, `Abc`, `abc `; a number: one more and one less in its last
    digit (12345678901234567890 and ...891 are one float); binary: a zero byte
    more, the last bit flipped; a time: one microsecond (or second) later.
    """
    kind = column.kind
    if kind == "string" and not column.numbers:
        text = typed["S"]
        texts = {text.swapcase(), text.upper(), text.lower(), text + " ", text.rstrip()}
        return [{"S": t} for t in sorted(texts) if 1 <= len(t) <= (column.length or 200) and t != text]
    if kind in ("varbinary", "largebinary", "binary"):
        data = decode_binary(typed["B"])
        variants = {data[:-1] + bytes([data[-1] ^ 1]), b"\x00" + data[1:], data + b"\x00", b"\x00" + data}
        size = column.length or 200
        fits = (lambda b: len(b) == size) if kind == "binary" else (lambda b: 1 <= len(b) <= size)
        return [{"B": b64(b)} for b in sorted(variants) if fits(b) and b != data]
    number = Decimal(typed["N"])
    unit = Decimal(1).scaleb(number.normalize(EXACT).as_tuple().exponent if number else 0)
    if kind in INTEGER_BITS:
        unit = Decimal(1)
    elif kind == "numeric":
        unit = Decimal(1).scaleb(-(column.scale or 0))
    elif kind == "datetime":
        unit = Decimal(1) if whole_seconds(column, dialect) else Decimal("0.000001")
    # In the exact context: the default one would round 38 digits to 28.
    candidates = [EXACT.add(number, unit), EXACT.subtract(number, unit)][: 1 if kind == "datetime" else 2]
    return [{"N": canonical_number(c)} for c in candidates if fits_key(column, c, dialect)]


def fits_key(column: Column, number: Decimal, dialect: str) -> bool:
    """
    Whether a number is a valid key value of a numeric, String-of-N or DateTime column.
    """
    if len(number.normalize(EXACT).as_tuple().digits) > 38:
        return False
    kind = column.kind
    if kind in INTEGER_BITS:
        bits = INTEGER_BITS[kind]
        return -(2 ** (bits - 1)) <= number < 2 ** (bits - 1)
    if kind == "numeric":
        assert column.precision is not None
        scale = column.scale or 0
        if abs(number) >= Decimal(10) ** (column.precision - scale):
            return False
        return dialect != "sqlite" or Decimal(f"%.{scale}f" % float(number)) == number
    if kind == "datetime":
        return FIRST_SECOND <= number <= LAST_SECOND
    return len(canonical_number(number)) <= (column.length or 200)


@st.composite
def key_pools(draw: st.DrawFn, column: Column, dialect: str) -> list[Typed]:
    """
    The values items take in a key column: one, its neighbours, and up to two others.
    """
    base = draw(key_attributes(column, dialect))
    others = draw(st.lists(key_attributes(column, dialect), max_size=2))
    pool: list[Typed] = []
    for typed in [base, *neighbours(column, base, dialect), *others]:
        if typed not in pool:
            pool.append(typed)
    return pool


def spelled(typed: Typed) -> st.SearchStrategy[Typed]:
    """
    One way of writing an attribute value: numbers as `1.50`, `1.5E+0`, `-0`; others as they are.
    """
    if "N" in typed:
        return numbers(Decimal(typed["N"]))
    return st.just(typed)


def value_attributes(column: Column, dialect: str) -> st.SearchStrategy[Typed]:
    """
    The attribute values a value column takes (NULL and missing are drawn by the caller).
    """
    kind = column.kind
    if kind == "string":
        length = column.length or 200
        as_numbers = decimals().filter(lambda d: len(canonical_number(d)) <= length).flatmap(numbers)
        return st.one_of(texts(dialect, 0, length).map(lambda s: {"S": s}), as_numbers)
    if kind == "text":
        return st.one_of(texts(dialect, 0, 1000).map(lambda s: {"S": s}), decimals().flatmap(numbers))
    if kind == "boolean":
        return st.booleans().map(lambda b: {"BOOL": b})
    if kind == "json":
        return json_attributes(dialect)
    if kind == "datetime":
        whole = whole_seconds(column, dialect)
        return st.one_of(
            epoch_seconds(whole=whole).flatmap(numbers), iso_texts(whole=whole).map(lambda s: {"S": s})
        )
    return key_attributes(column, dialect).flatmap(spelled)


# --- schemas, histories, schedules ---------------------------------------------------------------

RESERVED: Final = ("dynastream_sequence", "dynastream_deleted_at")
identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(lambda n: n not in RESERVED)


@st.composite
def schemas(
    draw: st.DrawFn, dialect: str, table: str, *, collation: str | None = NOPAD_BIN, string_key: bool = False
) -> Schema:
    """
    A table of 1-3 key columns and 0-6 value columns, and its delete and TTL policies.

    `string_key`: the first key column is a String of S values.
    """
    key_count = draw(st.integers(1, 3))
    value_count = draw(st.integers(0, 6))
    names = draw(
        st.lists(
            identifiers,
            min_size=key_count + value_count,
            max_size=key_count + value_count,
            unique_by=str.lower,
        )
    )
    keys = [draw(columns(name, dialect, key=True)) for name in names[:key_count]]
    if string_key:
        keys[0] = Column(names[0], "string", key=True, length=draw(st.sampled_from([20, 200])))
    keys = [attrs.evolve(c, collation=collation) if c.kind == "string" else c for c in keys]
    values = [draw(columns(name, dialect, key=False)) for name in names[key_count:]]
    deletes = draw(st.sampled_from(["delete", "soft_delete"]))
    ttl = draw(st.sampled_from([None, "ignore", "delete", "soft_delete"]))
    soft = "soft_delete" in (deletes, ttl)
    # A soft delete keeps the item's last image: the REMOVE must carry it.
    view_type = "NEW_AND_OLD_IMAGES" if soft else draw(st.sampled_from(["NEW_AND_OLD_IMAGES", "NEW_IMAGE"]))
    return Schema(table, (*keys, *values), deletes=deletes, ttl=ttl, view_type=view_type)


def sequence_steps() -> st.SearchStrategy[int]:
    """
    Multipliers and increments between consecutive sequence numbers: mostly small, sometimes a jump in length.
    """
    return st.one_of(st.integers(1, 1000), st.integers(1, 10**12), st.integers(1, 5).map(lambda k: -k))


@st.composite
def histories(draw: st.DrawFn, schema: Schema, dialect: str) -> tuple[Change, ...]:
    """
    Changes on 1-5 items as DynamoDB makes them.

    INSERT when absent, MODIFY or REMOVE (by a user or TTL) when present.
    """
    pools = [draw(key_pools(c, dialect)) for c in schema.keys]
    base = tuple(pool[0] for pool in pools)
    # Items whose keys differ in one column only, where a database could confuse them, or in any.
    one_apart = st.tuples(st.integers(0, len(pools) - 1), st.integers(0, 10)).map(
        lambda change: tuple(
            pools[n][change[1] % len(pools[n])] if n == change[0] else value for n, value in enumerate(base)
        )
    )
    canonical_keys = draw(
        st.lists(
            st.one_of(one_apart, st.tuples(*[st.sampled_from(pool) for pool in pools])),
            min_size=1,
            max_size=5,
            unique_by=lambda keys: identity_of(
                schema, dict(zip([c.name for c in schema.keys], keys, strict=True)), dialect
            ),
        )
    )
    items = [dict(zip([c.name for c in schema.keys], keys, strict=True)) for keys in canonical_keys]
    images: list[Image | None] = [None] * len(items)
    sequence_number = draw(st.integers(10**20, 10**21 - 1))
    changes = []
    for position in range(draw(st.integers(1, 12))):
        index = draw(st.integers(0, len(items) - 1))
        spelled_keys = {name: draw(spelled(value)) for name, value in items[index].items()}
        previous = images[index]
        if previous is None:
            event_name, ttl = "INSERT", False
        else:
            event_name, ttl = draw(st.sampled_from([("MODIFY", False), ("REMOVE", False), ("REMOVE", True)]))
        new_image = None
        if event_name != "REMOVE":
            new_image = dict(spelled_keys)
            for column in schema.values:
                choice = draw(st.integers(0, 5))
                if choice == 1:
                    continue  # missing
                new_image[column.name] = (
                    {"NULL": True} if choice == 2 else draw(value_attributes(column, dialect))
                )
            for name in draw(st.lists(identifiers.map(lambda n: "x_" + n), max_size=2, unique=True)):
                if name not in {c.name for c in schema.columns}:
                    new_image[name] = draw(json_attributes(dialect))  # no column: ignored, but checked
        step = draw(sequence_steps())
        if position:
            grown = sequence_number * 10 ** (-step) if step < 0 else sequence_number + step
            sequence_number = grown if grown < 10**40 else sequence_number + 1
        changes.append(
            Change(
                event_name,
                sequence_number,
                spelled_keys,
                new_image=new_image,
                old_image=previous,
                ttl=ttl,
                created=FIRST_CREATED + position,
            )
        )
        images[index] = new_image
    return tuple(changes)


@st.composite
def perturbed(draw: st.DrawFn, batch: tuple[int, ...]) -> tuple[int, ...]:
    """
    A batch as a saved event or a replay may carry it: records duplicated or out of order inside it.
    """
    records = list(batch)
    if len(records) > 1 and draw(st.integers(0, 3)) == 3:
        records = draw(st.permutations(records))
    if draw(st.integers(0, 3)) == 3:
        duplicate = draw(st.sampled_from(records))
        records.insert(draw(st.integers(0, len(records))), duplicate)
    return tuple(records)


@st.composite
def schedules(draw: st.DrawFn, size: int) -> tuple[tuple[int, ...], ...]:
    """
    Deliveries of records 0..size-1, each at least once, the ways the event source mapping delivers them.
    """
    batches: list[tuple[int, ...]] = []
    start = 0
    while start < size:
        length = draw(st.integers(1, 6))
        batches.append(tuple(range(start, min(size, start + length))))
        start += length
    schedule: list[tuple[int, ...]] = []
    for index, batch in enumerate(batches):
        schedule.append(draw(perturbed(batch)))
        again = draw(st.sampled_from(["", "whole", "suffix", "halves", "older"]))
        if again == "whole":
            schedule.append(batch)
        elif again == "suffix":  # after a reported failure: from that record on
            schedule.append(batch[draw(st.integers(0, len(batch) - 1)) :])
        elif again == "halves" and len(batch) > 1:  # bisection
            half = len(batch) // 2
            schedule += [batch[:half], batch[half:]]
        elif again == "older" and index:  # a replay of an older batch after a newer one
            schedule.append(draw(perturbed(batches[draw(st.integers(0, index - 1))])))
    return tuple(schedule)


@st.composite
def cases(
    draw: st.DrawFn, dialect: str, table: str, *, collation: str | None = NOPAD_BIN, string_key: bool = False
) -> Case:
    schema = draw(schemas(dialect, table, collation=collation, string_key=string_key))
    history = draw(histories(schema, dialect))
    schedule = draw(schedules(len(history)))
    # Two workers (ParallelizationFactor > 1): real threads only where the database has concurrent writers.
    parallel = draw(
        st.sampled_from(["", "interleaved", "threads"] if dialect != "sqlite" else ["", "interleaved"])
    )
    order = (
        tuple(draw(st.lists(st.integers(0, 1), max_size=2 * len(schedule))))
        if parallel == "interleaved"
        else ()
    )
    return Case(schema, history, schedule, parallel, order)
