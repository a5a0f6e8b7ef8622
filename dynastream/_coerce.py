"""
Converters from item values to column values: exact, or `Unfit`.

One small function per column type family, chosen once per column by
`converter_for`; `RowMapper` (in `_mapping.py`) runs them. Each refuses what the
database would round, truncate, pad or reinterpret.
"""

from __future__ import annotations

import base64
import re
import struct
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Final

from ._deserialize import deserialize_value, fast_number
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa

__all__ = ["REQUIRED", "Unfit", "converter_for", "extra_converter", "fill_for", "typed_json_converter_for"]

_INTEGER_NAMES: Final = {8: "TINYINT", 16: "SMALLINT", 24: "MEDIUMINT", 32: "INTEGER", 64: "BIGINT"}

# Byte limits of MySQL's TEXT and BLOB families when no length is declared
# (https://dev.mysql.com/doc/refman/8.0/en/storage-requirements.html#data-types-storage-reqs-strings).
_MYSQL_BYTE_LIMITS: Final = {
    "TINYTEXT": 255,
    "TEXT": 65_535,
    "UNICODE_TEXT": 65_535,
    "MEDIUMTEXT": 16_777_215,
    "TINYBLOB": 255,
    "BLOB": 65_535,
    "LARGE_BINARY": 65_535,
    "MEDIUMBLOB": 16_777_215,
}

# Enough precision that scaling a DynamoDB number (38 digits) is exact.
_EXACT: Final = Context(prec=1000, Emax=10_000, Emin=-10_000)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION: Final = re.compile(r"[.,](\d+)").search
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII).fullmatch
# SQLAlchemy stores Numeric as a float on SQLite: 15 significant digits
# survive any decimal -> double -> decimal round trip (DBL_DIG).
_SQLITE_NUMERIC_DIGITS: Final = 15
# MySQL and MariaDB send a FLOAT (32-bit) as text with 6 significant digits
# (FLT_DIG), so one with more, or a subnormal one, reads back as another number.
_FLT_DIG: Final = 6
_FLT_MIN: Final = Decimal("1.17549435E-38")
# MySQL's JSON keeps integers as signed or unsigned 64-bit, larger ones as a
# double (https://dev.mysql.com/doc/refman/8.0/en/json.html).
_MYSQL_JSON_INTEGERS: Final = range(-(2**63), 2**64)


REQUIRED: Final = object()  # the fill of a column that must have a value


class Unfit(Exception):  # noqa: N818 - internal signal, wrapped before it escapes
    """
    A value does not fit its column; the mapper adds the column and attribute.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_KINDS: Final[dict[type, str]] = {
    str: "a string",
    Decimal: "a number",
    bytes: "binary data",
    bool: "a boolean",
    dict: "a map",
    list: "a list",
    set: "a set",
    frozenset: "a set",
    type(None): "NULL",
}


def _kind(value: object) -> str:
    """
    Name a value's DynamoDB type (never the value) for an error message.
    """
    return _KINDS.get(type(value)) or f"a value of type {type(value).__name__}"


def extra_converter(
    column: sa.Column[Any], dialect: str | None
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """
    Return the JSON converters of the `extra` column, which must be JSON.

    The first takes Python values, the second attribute values in Lambda's
    JSON shape (see `typed_json_converter_for`).

    Raises:
        ConfigurationError: The column is not a JSON column.
    """
    import sqlalchemy as sa

    type_ = _dialect_type(column.type, dialect)
    if not isinstance(type_, sa.JSON):
        raise ConfigurationError(
            f"extra column {column.name!r} must be a JSON column to keep attributes as an object,"
            f" not {type(type_).__name__}"
        )
    return _json_walkers(type_, dialect)


def typed_json_converter_for(
    column_type: sa.types.TypeEngine[Any], dialect: str | None
) -> Callable[[Any], Any] | None:
    """
    Return a JSON column's converter of attribute values, or `None` for other types.

    It takes a value as an event carries it (`{"M": {...}}`) and gives what the
    column's converter gives for the deserialized value, in one pass instead of
    two; it raises on anything it does not take, and the caller then goes the
    checked way (deserialize, then convert) for the precise error.
    """
    import sqlalchemy as sa

    type_ = _dialect_type(column_type, dialect)
    return _json_walkers(type_, dialect)[1] if isinstance(type_, sa.JSON) else None


def _dialect_type(type_: sa.types.TypeEngine[Any], dialect: str | None) -> sa.types.TypeEngine[Any]:
    """
    Return the `with_variant` type `dialect` would use, else `type_` itself.
    """
    if dialect is None:
        return type_
    variants = type_._variant_mapping  # where with_variant keeps its types
    names = ("mariadb", "mysql") if dialect == "mariadb" else (dialect,)
    for name in names:
        if name in variants:
            return variants[name]
    return type_


def fill_for(column: sa.Column[Any], dialect: str | None) -> Any:
    """
    Return what a column gets when its attribute is missing or NULL.
    """
    import sqlalchemy as sa

    if column.primary_key:
        return REQUIRED
    if column.nullable:
        # A bare None in a JSON column is stored as JSON 'null' unless the type
        # says none_as_null; sa.null() is SQL NULL in every case.
        type_ = _dialect_type(column.type, dialect)
        if isinstance(type_, sa.JSON) and not type_.none_as_null:
            return sa.null()
        return None
    default = column.default
    if default is not None and default.is_scalar:
        return default.arg  # type: ignore[attr-defined]  # ScalarElementColumnDefault.arg
    return REQUIRED


# --- converters, one chosen per column ----------------------------------------


def converter_for(column_type: sa.types.TypeEngine[Any], dialect: str | None) -> Callable[[Any], Any]:  # noqa: PLR0911 - one return per family
    """
    Choose the converter for a column type (and `dialect`'s rules).
    """
    import sqlalchemy as sa

    type_ = _dialect_type(column_type, dialect)
    mysql = dialect in ("mysql", "mariadb")
    if isinstance(type_, sa.Boolean):
        return _boolean
    if isinstance(type_, sa.JSON):
        return _json_walkers(type_, dialect)[0]
    if isinstance(type_, sa.ARRAY):
        return _array_converter(type_, dialect)
    if isinstance(type_, sa.Integer):
        return _integer_converter(type_)
    if isinstance(type_, sa.Float):
        return _float_converter(type_, dialect)
    if isinstance(type_, sa.Numeric):
        return _numeric_converter(type_, dialect)
    if isinstance(type_, sa.String):
        return _string_converter(type_, dialect)
    if isinstance(type_, sa.types._Binary):  # the base of LargeBinary, BINARY, VARBINARY
        return _binary_converter(type_, mysql=mysql)
    if isinstance(type_, sa.DateTime):
        return _datetime_converter(type_, mysql=mysql)
    if isinstance(type_, sa.Date):
        return _date
    if isinstance(type_, sa.Time):
        return _time_converter(type_, mysql=mysql)
    if isinstance(type_, sa.Uuid):
        return _uuid if type_.as_uuid else _uuid_text
    return _passthrough_converter(type_)


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise Unfit(f"{_kind(value)} is not a boolean (Boolean column)")


def _integer_bits(type_: sa.Integer) -> int:
    import sqlalchemy as sa

    # MySQL's TINYINT and MEDIUMINT, known by name so that the dialect need
    # not be imported.
    name = type_.__visit_name__
    if name in ("TINYINT", "MEDIUMINT"):
        return 8 if name == "TINYINT" else 24
    if isinstance(type_, sa.BigInteger):
        return 64
    return 16 if isinstance(type_, sa.SmallInteger) else 32


def _integer_converter(type_: sa.Integer) -> Callable[[Any], int]:
    bits = _integer_bits(type_)
    unsigned = bool(getattr(type_, "unsigned", False))  # MySQL's integer types
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    label = f"{_INTEGER_NAMES[bits]}{' UNSIGNED' if unsigned else ''} ({bits}-bit)"

    def convert(value: Any) -> int:
        if not isinstance(value, Decimal):
            raise Unfit(f"{_kind(value)} is not a number ({label} column)")
        try:
            number = int(value)
        except (ValueError, OverflowError):
            raise Unfit(f"a number that is not finite does not fit {label}") from None
        if number != value:
            raise Unfit(f"a number with a fractional part does not fit {label}")
        if not low <= number <= high:
            digits = len(str(abs(number)))
            if digits > len(str(high)):
                raise Unfit(f"{digits} digits do not fit {label}")
            raise Unfit(f"a number outside {low} to {high} does not fit {label}")
        return number

    return convert


def _significant_digits(value: Decimal) -> int:
    """
    Return how many significant digits a nonzero number has: `1.50` has 2.
    """
    digits = value.as_tuple().digits
    count = len(digits)
    while digits[count - 1] == 0:
        count -= 1
    return count


def _numeric_converter(type_: sa.Numeric[Any], dialect: str | None) -> Callable[[Any], Decimal]:
    precision, scale = type_.precision, type_.scale
    if dialect in ("mysql", "mariadb") and precision is None:
        # MySQL's DECIMAL with no arguments is DECIMAL(10, 0)
        # (https://dev.mysql.com/doc/refman/8.0/en/fixed-point-types.html).
        precision, scale = 10, 0
    elif precision is not None and scale is None:
        scale = 0  # NUMERIC(p) is NUMERIC(p, 0) in SQL
    elif dialect == "sqlite" and scale is None:
        # SQLite keeps the float, and SQLAlchemy reads it back rounded to
        # `decimal_return_scale` (10) places: more would not come back.
        scale = 10 if type_.decimal_return_scale is None else type_.decimal_return_scale
    float_storage = dialect == "sqlite"
    label = f"{type(type_).__name__}({precision}, {scale})" if precision is not None else type(type_).__name__
    if dialect in ("mysql", "mariadb") and type_.precision is None:
        label = f"{type(type_).__name__}, DECIMAL(10, 0) on MySQL"
    integer_digits = None if precision is None else precision - (scale or 0)

    def convert(value: Any) -> Decimal:
        if not isinstance(value, Decimal):
            raise Unfit(f"{_kind(value)} is not a number ({label} column)")
        if not value:
            return value
        if not value.is_finite():
            raise Unfit(f"a number that is not finite does not fit {label}")
        if scale is not None and not _is_integral(value.scaleb(scale, _EXACT)):
            where = (
                label if type_.scale is not None or not float_storage else f"{label}, read back so on SQLite"
            )
            raise Unfit(f"more than {scale} decimal place{'' if scale == 1 else 's'} ({where})")
        if integer_digits is not None and value.adjusted() >= integer_digits:
            raise Unfit(f"more than {integer_digits} digits before the decimal point ({label})")
        if float_storage and _significant_digits(value) > _SQLITE_NUMERIC_DIGITS:
            raise Unfit(
                f"more than {_SQLITE_NUMERIC_DIGITS} significant digits"
                f" ({label} is stored as a float on SQLite)"
            )
        return value

    return convert


def _float_bits(type_: sa.Float[Any], dialect: str | None) -> int:
    """
    Return how many bits `type_` keeps on `dialect`: 32 or 64.
    """
    if dialect == "sqlite":
        return 64  # every SQLite REAL is 8 bytes
    name = type_.__visit_name__.upper()
    precision = getattr(type_, "precision", None)
    if name in ("DOUBLE", "DOUBLE_PRECISION"):
        return 64
    if name == "REAL":
        # REAL is DOUBLE on MySQL (without REAL_AS_FLOAT), 4 bytes elsewhere.
        return 64 if dialect in ("mysql", "mariadb") else 32
    if precision is not None:
        return 32 if precision <= 24 else 64
    # FLOAT without precision: single on MySQL, double on PostgreSQL.
    return 32 if dialect in ("mysql", "mariadb") else 64


def _float_converter(type_: sa.Float[Any], dialect: str | None) -> Callable[[Any], float]:
    bits = _float_bits(type_, dialect)
    label = f"{type(type_).__name__} ({bits}-bit)"

    def convert(value: Any) -> float:
        if not isinstance(value, Decimal):
            raise Unfit(f"{_kind(value)} is not a number ({label} column)")
        number = _exact_float(value) if value.is_finite() else None
        if number is None:
            raise Unfit(f"a number with more digits than {label} keeps exactly")
        return number

    def convert_single(value: Any) -> float:
        number = convert(value)
        if Decimal(_shortest_single(number)) != value:
            raise Unfit(f"a number with more digits than {label} keeps exactly")
        return number

    def convert_mysql_single(value: Any) -> float:
        number = convert_single(value)
        if value and (value.copy_abs() < _FLT_MIN or _significant_digits(value) > _FLT_DIG):
            raise Unfit(f"a number with more than {_FLT_DIG} significant digits ({label} on MySQL)")
        return number

    if bits == 64:
        return convert
    return convert_mysql_single if dialect in ("mysql", "mariadb") else convert_single


def _is_integral(value: Decimal) -> bool:
    return value == value.to_integral_value()  # exact: no rounding to the context's precision


def _exact_float(value: Decimal) -> float | None:
    """
    Return the float whose shortest text (`repr`) is `value`, else `None`.
    """
    text = str(value)
    number = float(text)
    if repr(number) == text or Decimal(repr(number)) == value:  # the first test is the quick one
        return number
    return None


def _shortest_single(number: float) -> str:
    """
    Return the shortest text that reads back as the 32-bit float nearest `number`.
    """
    try:
        packed = struct.pack("<f", number)
    except OverflowError:
        return "NaN"  # out of range: compares unequal to every number
    single = struct.unpack("<f", packed)[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return text
    return repr(single)  # pragma: no cover - nine digits always identify a float32


def _string_converter(type_: sa.String, dialect: str | None) -> Callable[[Any], str]:
    import sqlalchemy as sa

    length = type_.length
    name = type(type_).__name__
    allowed = frozenset(type_.enums) if isinstance(type_, sa.Enum) else None
    label = f"{name}({length})" if length is not None and allowed is None else name
    fixed = type_.__visit_name__ in ("CHAR", "NCHAR") and length is not None
    mysql = dialect in ("mysql", "mariadb")
    byte_limit = _MYSQL_BYTE_LIMITS.get(type_.__visit_name__.upper()) if mysql and length is None else None
    no_nul = dialect == "postgresql"

    def convert(value: Any) -> str:
        if isinstance(value, str):
            text = value
        elif isinstance(value, Decimal):
            text = str(value)
        else:
            raise Unfit(f"{_kind(value)} is not text ({label} column)")
        if allowed is not None:
            if text not in allowed:
                raise Unfit(f"a value that is not one of the {len(allowed)} values of {label}")
            return text
        if length is not None and len(text) > length:
            raise Unfit(f"{len(text)} characters do not fit {label}")
        if fixed and (len(text) != length or (mysql and text.endswith(" "))):
            # CHAR(n) pads shorter text with spaces (PostgreSQL returns them;
            # MySQL strips trailing spaces on reading).
            raise Unfit(f"text of another length than {length} characters (or ending in a space) for {label}")
        if byte_limit is not None and len(text) * 4 > byte_limit and len(text.encode()) > byte_limit:
            raise Unfit(f"more than {byte_limit} bytes of UTF-8 do not fit {label} on MySQL")
        if no_nul and "\x00" in text:
            raise Unfit("text containing a NUL character, which PostgreSQL cannot store")
        return text

    return convert


def _binary_converter(type_: sa.types._Binary, *, mysql: bool) -> Callable[[Any], bytes]:
    length = type_.length
    name = type(type_).__name__
    label = f"{name}({length})" if length is not None else name
    fixed = type_.__visit_name__ == "BINARY" and length is not None
    byte_limit = _MYSQL_BYTE_LIMITS.get(type_.__visit_name__.upper()) if mysql and length is None else None

    def convert(value: Any) -> bytes:
        if not isinstance(value, bytes):
            raise Unfit(f"{_kind(value)} is not binary data ({label} column)")
        if length is not None and len(value) > length:
            raise Unfit(f"{len(value)} bytes do not fit {label}")
        if fixed and len(value) != length:
            raise Unfit(f"binary data of another length than {length} bytes for {label} (it would be padded)")
        if byte_limit is not None and len(value) > byte_limit:
            raise Unfit(f"more than {byte_limit} bytes do not fit {label} on MySQL")
        return value

    return convert


# --- JSON --------------------------------------------------------------------


def _json_walkers(type_: sa.JSON, dialect: str | None) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """
    Return the converters to values `json.dumps` takes, exactly.

    Sets become arrays sorted by value (strings by code point, numbers
    numerically, binary by its bytes), binary base64 text, numbers an `int`
    or a `float` that reads back as the same number. The first converter
    takes deserialized values, the second attribute values as events carry
    them (see `typed_json_converter_for`).
    """
    no_nul = dialect == "postgresql" and type_.__visit_name__ == "JSONB"
    int_range = _MYSQL_JSON_INTEGERS if dialect == "mysql" else None

    def number(value: Decimal) -> int | float:
        # Quick paths on the text for the common cases: plain integers, and
        # decimals whose float has the same shortest text.
        digits = str(value)
        if digits.isdigit() or (digits[:1] == "-" and digits[1:].isdigit()):
            integral = int(digits)
            if int_range is not None and integral not in int_range:
                raise Unfit("an integer beyond 64 bits, which MySQL JSON keeps only as a float")
            return integral
        # Not an exponent, NaN or Infinity, nor an integral "1.0" (an int below).
        if "E" not in digits and "N" not in digits and "n" not in digits and not digits.endswith(".0"):
            quick = float(digits)
            if repr(quick) == digits:
                return quick
        if not value.is_finite():
            raise Unfit("a number that is not finite (JSON column)")
        if value == value.to_integral_value():
            integral = int(value)
            if int_range is not None and integral not in int_range:
                raise Unfit("an integer beyond 64 bits, which MySQL JSON keeps only as a float")
            return integral
        approximate = _exact_float(value)
        if approximate is None:
            raise Unfit("a number with more digits than JSON columns keep exactly")
        return approximate

    def text(value: str) -> str:
        if "\x00" in value:
            raise Unfit("text containing a NUL character, which PostgreSQL's JSONB cannot store")
        return value

    def binary(value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    # Values JSON takes as they are skip the walk: most leaves are strings.
    as_is = frozenset({bool, type(None)} if no_nul else {str, bool, type(None)})

    def mapping(value: dict[str, Any]) -> dict[str, Any]:
        if no_nul:
            for key in value:
                text(key)
        return {key: member if member.__class__ in as_is else walk(member) for key, member in value.items()}

    def sequence(value: list[Any]) -> list[Any]:
        return [member if member.__class__ in as_is else walk(member) for member in value]

    def members(value: set[Any] | frozenset[Any]) -> list[Any]:
        try:
            if all(isinstance(member, str) for member in value):
                return [text(member) for member in sorted(value)] if no_nul else sorted(value)
            if all(isinstance(member, Decimal) for member in value):
                return [number(member) for member in sorted(value)]
            if all(isinstance(member, bytes) for member in value):
                return [binary(member) for member in sorted(value)]
        except TypeError:
            pass
        raise Unfit("a set whose members are not all strings, numbers or binary")

    def same(value: Any) -> Any:
        return value

    walkers: dict[type, Callable[[Any], Any]] = {
        str: text if no_nul else same,
        Decimal: number,
        bytes: binary,
        bool: same,
        type(None): same,
        dict: mapping,
        list: sequence,
        set: members,
        frozenset: members,
    }

    def walk(value: Any) -> Any:
        walker = walkers.get(value.__class__)
        if walker is None:
            raise Unfit(f"{_kind(value)} is not a DynamoDB value (JSON column)")
        return walker(value)

    return walk, _typed_walker(walk, number, text, members, no_nul=no_nul)


def _typed_walker(
    walk: Callable[[Any], Any],
    number: Callable[[Decimal], int | float],
    text: Callable[[str], str],
    members: Callable[[set[Any]], list[Any]],
    *,
    no_nul: bool,
) -> Callable[[Any], Any]:
    """
    Return `walk` for attribute values as events carry them, in one pass.

    `number`, `text` and `members` are `walk`'s own converters: what they
    refuse is refused here too.
    """

    def typed(value: dict[str, Any]) -> Any:  # noqa: PLR0911 - one branch per type tag, leaves inline
        # The common tags inline, and a map's scalar members without a call;
        # any other tag, or a payload of the wrong type, is deserialized first.
        # Malformed values raise on the way.
        (tag,) = value
        payload = value[tag]
        cls = payload.__class__
        if tag == "M" and cls is dict:
            out: dict[str, Any] = {}
            for key, member in payload.items():
                if no_nul and "\x00" in key:
                    text(key)
                (inner,) = member
                leaf = member[inner]
                if inner == "S" and leaf.__class__ is str and not (no_nul and "\x00" in leaf):
                    out[key] = leaf
                elif inner == "N" and leaf.__class__ is str:
                    out[key] = typed_number(leaf)
                else:
                    out[key] = typed(member)
            return out
        if tag == "S" and cls is str:
            if no_nul and "\x00" in payload:
                text(payload)
            return payload
        if tag == "N" and cls is str:
            return typed_number(payload)
        if tag == "L" and cls is list:
            return [typed(member) for member in payload]
        if tag == "SS" and cls is list and all(member.__class__ is str for member in payload):
            strings = sorted(set(payload))
            if no_nul and any("\x00" in member for member in strings):
                return members(set(strings))  # raises
            return strings
        if tag == "BOOL" and cls is bool:
            return payload
        if tag == "NULL" and payload is True:
            return None
        return walk(deserialize_value(value))

    def typed_number(payload: str) -> int | float:
        # The quick paths of number(), on the text: an int of up to 18 digits
        # is within every range; a float whose shortest text is the payload
        # is exact. Texts with an exponent, NaN, Infinity or an integral "1.0"
        # go the long way, as they do in number().
        if len(payload) < 19 and payload.isdigit() and payload.isascii():
            return int(payload)
        if "e" not in payload and "n" not in payload and not payload.endswith(".0"):
            quick = float(payload)
            if repr(quick) == payload:
                return quick
        return number(fast_number(payload))

    return typed


def _array_converter(type_: sa.ARRAY[Any], dialect: str | None) -> Callable[[Any], list[Any]]:
    """
    Return the converter of an ARRAY column: a list or set, each member coerced.
    """
    element = converter_for(type_.item_type, dialect)

    def convert(value: Any) -> list[Any]:
        if isinstance(value, list):
            members = value
        elif isinstance(value, (set, frozenset)):
            try:
                members = sorted(value)
            except TypeError:
                raise Unfit("a set whose members are not all of one type") from None
        else:
            raise Unfit(f"{_kind(value)} is not a list or set (ARRAY column)")
        return [None if member is None else element(member) for member in members]

    return convert


# --- dates and times -----------------------------------------------------------


def _check_fraction(text: str) -> None:
    # fromisoformat keeps six fractional digits and drops the rest silently.
    fraction = _FRACTION(text)
    if fraction is not None and fraction.group(1)[6:].strip("0"):
        raise Unfit("fractional seconds finer than microseconds")


def _precision_check(type_: Any, *, mysql: bool, label: str) -> Callable[[int], None] | None:
    """
    Return a check that microseconds fit the column, or `None` when all do.

    MySQL's DATETIME and TIME keep `fsp` fractional digits, none by default,
    and round (MariaDB: truncate) the rest
    (https://dev.mysql.com/doc/refman/8.0/en/fractional-seconds.html).
    """
    if not mysql:
        return None
    fsp = getattr(type_, "fsp", None) or 0
    if fsp >= 6:
        return None
    unit = 10 ** (6 - fsp)

    def check(microseconds: int) -> None:
        if microseconds % unit:
            raise Unfit(f"more than {fsp} fractional-second digits ({label}({fsp}) on MySQL)")

    return check


def _datetime_converter(type_: sa.DateTime, *, mysql: bool) -> Callable[[Any], datetime]:
    aware = bool(type_.timezone)
    check = _precision_check(type_, mysql=mysql, label=type_.__visit_name__.upper())

    def convert(value: Any) -> datetime:
        if isinstance(value, str):
            _check_fraction(value)
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise Unfit("a string that is not an ISO 8601 date-time") from None
        elif isinstance(value, Decimal):
            moment = _from_epoch(value)
        else:
            raise Unfit(f"{_kind(value)} is neither epoch seconds nor ISO 8601 text (DateTime column)")
        try:
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except OverflowError:
            raise Unfit("a date-time out of range") from None
        if check is not None:
            check(moment.microsecond)
        return moment if aware else moment.replace(tzinfo=None)

    return convert


def _from_epoch(value: Decimal) -> datetime:
    if not value.is_finite():
        raise Unfit("epoch seconds that are not finite")
    microseconds = value.scaleb(6, _EXACT)
    if not _is_integral(microseconds):
        raise Unfit("epoch seconds finer than microseconds")
    try:
        return _EPOCH + timedelta(microseconds=int(microseconds))
    except OverflowError:
        raise Unfit("epoch seconds out of the range of dates") from None


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise Unfit(f"{_kind(value)} is not an ISO 8601 date (Date column)")
    if not _ISO_DATE(value):
        raise Unfit("a string that is not a YYYY-MM-DD date (Date column)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Unfit("a string that is not a valid YYYY-MM-DD date (Date column)") from None


def _time_converter(type_: sa.Time, *, mysql: bool) -> Callable[[Any], time]:
    aware = bool(type_.timezone)
    check = _precision_check(type_, mysql=mysql, label="TIME")

    def convert(value: Any) -> time:
        if not isinstance(value, str):
            raise Unfit(f"{_kind(value)} is not an ISO 8601 time (Time column)")
        _check_fraction(value)
        try:
            moment = time.fromisoformat(value)
        except ValueError:
            raise Unfit("a string that is not an ISO 8601 time") from None
        if check is not None:
            check(moment.microsecond)
        if aware:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        if moment.tzinfo is not None:
            raise Unfit("a time with a UTC offset for a Time column without time zone")
        return moment

    return convert


# --- the rest ------------------------------------------------------------------


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise Unfit(f"{_kind(value)} is not a UUID (Uuid column)")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Unfit("a string that is not a UUID (Uuid column)") from None


def _uuid_text(value: Any) -> str:
    return str(_uuid(value))


def _passthrough_converter(type_: sa.types.TypeEngine[Any]) -> Callable[[Any], Any]:
    """
    Pass values of the type's `python_type` through; refuse everything else.
    """
    label = type(type_).__name__
    try:
        python_type = type_.python_type
    except NotImplementedError:

        def refuse(value: Any) -> Any:
            raise Unfit(f"{_kind(value)} has no rule for {label} columns")

        return refuse

    def convert(value: Any) -> Any:
        if isinstance(value, python_type) and (python_type is bool or value.__class__ is not bool):
            return value
        raise Unfit(f"{_kind(value)} is not a {python_type.__name__} ({label} column)")

    return convert
