"""
Converters from item values to column values: exact, or `Unfit`.

One small function per column type family, chosen once per column by
`converter_for`; `RowMapper` (in `mapping.py`) runs them. Each refuses what the
database would round, truncate, pad or reinterpret.
"""

from __future__ import annotations

import base64
import math
import re
import struct
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Final

from dynastream._deserialize import deserialize_value, fast_number
from dynastream.exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import sqlalchemy as sa

__all__ = [
    "REQUIRED",
    "Unfit",
    "canonical_number_text",
    "check_text",
    "converter_for",
    "extra_converter",
    "fill_for",
    "mapped_converter_for",
    "number_converter_for",
    "typed_json_converter_for",
]

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
# SQLite has 64-bit integers only (https://www.sqlite.org/datatype3.html).
_SQLITE_INTEGERS: Final = range(-(2**63), 2**63)
# MariaDB parses JSON documents 32 levels deep at most (JSON_DEPTH 32; deeper
# ones fail JSON_VALID, the check of its JSON columns, and JSON_TABLE); MySQL 8.0
# takes 100. A value travels inside the chunk's array of rows: two levels more.
_MARIADB_JSON_DEPTH: Final = 32 - 2
# Text no encoding can carry: a lone UTF-16 surrogate.
_SURROGATE: Final = re.compile("[\ud800-\udfff]").search
# MySQL's latin1 is cp1252 plus the five bytes cp1252 leaves undefined, read as
# the C1 controls of the same number
# (https://dev.mysql.com/doc/refman/8.0/en/charset-we-sets.html).
_MYSQL_LATIN1_EXTRA: Final = frozenset("\x81\x8d\x8f\x90\x9d")
_BEYOND_BMP: Final = re.compile("[\U00010000-\U0010ffff]").search
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


def check_text(text: str) -> str:
    """
    Return `text`, or raise `Unfit` when it holds a lone surrogate.

    Such a string has no UTF-8 form, so no database (and no quarantine) can
    take it; DynamoDB never sends one.
    """
    # A surrogate is not printable: most text is decided by the two quick tests.
    if text.isascii() or text.isprintable() or _SURROGATE(text) is None:
        return text
    raise Unfit("text that is not valid Unicode (a lone surrogate)")


def canonical_number_text(value: Decimal) -> str:
    """
    Return a number as DynamoDB keeps it: plain digits, no trailing zeros.

    `1.50`, `1.5` and `15E-1` are one DynamoDB number, so they give one text,
    `1.5`; `-0` gives `0`.
    """
    if not value:
        return "0"
    return format(value.normalize(_EXACT), "f")


# MySQL character sets, and PostgreSQL server encodings, by the Python codec
# that encodes exactly what they hold. utf8mb4, UTF8, utf16, utf32 and gb18030
# hold all of Unicode and need no check; one not listed is left to the server.
_CODECS: Final = {
    "ascii": "ascii",
    "latin2": "iso8859_2",
    "latin5": "iso8859_9",
    "latin7": "iso8859_13",
    "greek": "iso8859_7",
    "hebrew": "iso8859_8",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp850": "cp850",
    "cp852": "cp852",
    "cp866": "cp866",
    "koi8r": "koi8_r",
    "koi8u": "koi8_u",
    "macroman": "mac_roman",
    "sjis": "shift_jis",
    "cp932": "cp932",
    "ujis": "euc_jp",
    "eucjpms": "euc_jp",
    "euckr": "euc_kr",
    "gb2312": "gb2312",
    "gbk": "gbk",
    "big5": "big5",
    "tis620": "tis_620",
    # PostgreSQL's names (https://www.postgresql.org/docs/current/multibyte.html)
    "latin1": "latin_1",
    "latin9": "iso8859_15",
    "win1250": "cp1250",
    "win1251": "cp1251",
    "win1252": "cp1252",
    "win1256": "cp1256",
    "win1257": "cp1257",
    "euc_jp": "euc_jp",
    "euc_kr": "euc_kr",
    "koi8": "koi8_r",
    "iso_8859_5": "iso8859_5",
    "iso_8859_7": "iso8859_7",
    "iso_8859_8": "iso8859_8",
}


def charset_check(charset: str | None, *, mysql: bool) -> Callable[[str], None] | None:
    """
    Return a check that text fits a column's character set, or `None` if all does.

    `charset` is the name the database gives (MySQL's `CHARACTER_SET_NAME`,
    PostgreSQL's `server_encoding`). Text the set cannot hold would be
    replaced by `?` or refused by the server; the check refuses it first, so
    that the error names the record and the column.
    """
    if charset is None:
        return None
    name = charset.lower()
    if name in ("utf8mb3", "utf8", "ucs2") and mysql:
        # MySQL's utf8 is utf8mb3: three bytes, the Basic Multilingual Plane only.
        def fits_bmp(text: str) -> None:
            if not text.isascii() and _BEYOND_BMP(text) is not None:
                raise Unfit(f"a character beyond the Basic Multilingual Plane, which {charset} cannot hold")

        return fits_bmp
    if name == "latin1" and mysql:
        return _fits_mysql_latin1
    codec = _CODECS.get(name)
    if codec is None:
        return None

    def fits(text: str) -> None:
        if text.isascii():  # every set listed holds ASCII as ASCII
            return
        try:
            text.encode(codec)
        except UnicodeEncodeError:
            raise Unfit(f"a character that the {charset} character set cannot hold") from None

    return fits


def _fits_mysql_latin1(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        for character in text:
            if character not in _MYSQL_LATIN1_EXTRA and not _encodes(character, "cp1252"):
                raise Unfit("a character that the latin1 character set cannot hold") from None


def _encodes(character: str, codec: str) -> bool:
    try:
        character.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def extra_converter(
    column: sa.Column[Any], dialect: str | None, *, mariadb: bool = False
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
    return _json_walkers(type_, dialect, mariadb=mariadb, top_level=False)


def typed_json_converter_for(
    column_type: sa.types.TypeEngine[Any], dialect: str | None, *, mariadb: bool = False
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
    return _json_walkers(type_, dialect, mariadb=mariadb)[1] if isinstance(type_, sa.JSON) else None


def _dialect_type(type_: sa.types.TypeEngine[Any], dialect: str | None) -> sa.types.TypeEngine[Any]:
    """
    Return the `with_variant` type `dialect` would use, else `type_` itself.
    """
    if dialect is None:
        return type_
    # As SQLAlchemy chooses: the variant of exactly the dialect's name (a
    # mariadb:// engine takes a "mariadb" variant, not a "mysql" one).
    variant: sa.types.TypeEngine[Any] = type_._variant_mapping.get(dialect, type_)
    return variant


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


def converter_for(  # noqa: PLR0911 - one return per family
    column_type: sa.types.TypeEngine[Any],
    dialect: str | None,
    *,
    mariadb: bool = False,
    key: bool = False,
    charset: str | None = None,
) -> Callable[[Any], Any]:
    """
    Choose the converter for a column type (and `dialect`'s rules).

    Args:
        column_type: The column's declared type.
        dialect: The SQLAlchemy dialect name written to (it selects
            `with_variant` types), or `None` for rules that hold everywhere.
        mariadb: The server is MariaDB (its JSON nests 32 levels at most).
        key: The column is part of the primary key: its values must tell
            DynamoDB keys apart exactly, so a spelling that several keys share
            (ISO 8601 text for a `DateTime`, a UUID in capitals) is refused.
        charset: The column's character set as the database names it, when
            known; text it cannot hold is refused.
    """
    import sqlalchemy as sa

    type_ = _dialect_type(column_type, dialect)
    mysql = dialect in ("mysql", "mariadb")
    if isinstance(type_, sa.Boolean):
        return _boolean
    if isinstance(type_, sa.JSON):
        return _json_walkers(type_, dialect, mariadb=mariadb)[0]
    if isinstance(type_, sa.ARRAY):
        return _array_converter(type_, dialect)
    if isinstance(type_, sa.Integer):
        return _integer_converter(type_)
    if isinstance(type_, sa.Float):
        return _float_converter(type_, dialect)
    if isinstance(type_, sa.Numeric):
        return _numeric_converter(type_, dialect)
    if isinstance(type_, sa.String):
        return _string_converter(type_, dialect, charset=charset)
    if isinstance(type_, sa.types._Binary):  # the base of LargeBinary, BINARY, VARBINARY
        return _binary_converter(type_, mysql=mysql)
    if isinstance(type_, sa.DateTime):
        return _datetime_converter(type_, mysql=mysql, key=key)
    if isinstance(type_, sa.Date):
        return _date
    if isinstance(type_, sa.Time):
        return _time_converter(type_, mysql=mysql, key=key)
    if isinstance(type_, sa.Uuid):
        convert = _uuid if type_.as_uuid else _uuid_text
        return _canonical_uuid(convert) if key else convert
    return _passthrough_converter(type_)


def number_converter_for(
    column_type: sa.types.TypeEngine[Any],
    dialect: str | None,
    convert: Callable[[Any], Any],
    *,
    as_text: bool = False,
) -> Callable[[str], Any]:
    """
    Return a column's converter of `N` payloads: number text as events carry it.

    It gives what `convert`, the column's converter from `converter_for`, gives for the payload's
    `Decimal`, without building one where the text alone decides: an integer
    column's plain integer text is checked against its range, and with
    `as_text` an exact-decimal column's plain decimal text is checked against
    its precision and scale and given as it is. The bulk writers of PostgreSQL
    and MySQL send numbers as text, which the server parses exactly
    (`CAST(... AS numeric)`, an assignment to `DECIMAL`). Any other text,
    and any number that does not fit, goes the checked way, which gives the
    precise error. Only SQLAlchemy's own types take a quick path: a subclass
    may process its values in ways the text would not survive.
    """
    import sqlalchemy as sa

    def checked(payload: str) -> Any:
        return convert(fast_number(payload))

    type_ = _dialect_type(column_type, dialect)
    if not type(type_).__module__.startswith("sqlalchemy."):
        return checked
    if isinstance(type_, sa.Integer):
        return _integer_text(type_, checked)
    if as_text and isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float):
        return _numeric_text(type_, dialect, checked)
    return checked


def _integer_text(type_: sa.Integer, checked: Callable[[str], Any]) -> Callable[[str], Any]:
    low, high, _ = _integer_bounds(type_)

    def convert(payload: str) -> Any:
        # Up to 18 digits, an optional minus: int() reads exactly what Decimal()
        # would, and the value is within 64 bits.
        digits = payload[1:] if payload[:1] == "-" else payload
        if 0 < len(digits) < 19 and digits.isdigit() and digits.isascii():
            number = int(payload)
            if low <= number <= high:
                return number
        return checked(payload)

    return convert


def _numeric_text(
    type_: sa.Numeric[Any], dialect: str | None, checked: Callable[[str], Any]
) -> Callable[[str], Any]:
    precision, scale = _numeric_bounds(type_, dialect)
    integer_digits = None if precision is None else precision - (scale or 0)

    def convert(payload: str) -> Any:
        # Plain decimal text, an optional minus: its significant digits before
        # and after the point are what the Decimal checks count (adjusted() and
        # scaleb()); leading and trailing zeros do not count, as in the column.
        if payload.isascii():
            whole, point, fraction = (payload[1:] if payload[:1] == "-" else payload).partition(".")
            if (
                whole.isdigit()
                and (not point or fraction.isdigit())
                and (scale is None or len(fraction.rstrip("0")) <= scale)
                and (integer_digits is None or len(whole.lstrip("0")) <= integer_digits)
            ):
                return payload
        return checked(payload)

    return convert


def mapped_converter_for(
    column_type: sa.types.TypeEngine[Any],
    dialect: str | None,
    *,
    mariadb: bool = False,
    key: bool = False,
    charset: str | None = None,
) -> Callable[[Any], Any]:
    """
    Return the converter of what a custom mapper gives for a column.

    A mapper gives Python values (`int`, `float`, `str`, `datetime`...)
    rather than DynamoDB ones; they get the checks that `converter_for`
    applies to items, so that the server never rounds or truncates them.
    """
    import sqlalchemy as sa

    convert = converter_for(column_type, dialect, mariadb=mariadb, key=key, charset=charset)
    type_ = _dialect_type(column_type, dialect)
    if isinstance(type_, sa.Enum) and type_.enum_class is not None:
        enum_class = type_.enum_class

        def convert_enum(value: Any) -> Any:
            return value if isinstance(value, enum_class) else convert(_item_value(value))

        return convert_enum
    if isinstance(type_, (sa.Boolean, sa.JSON, sa.ARRAY)) or not _has_rule(type_):
        return convert  # they take Python values as they are

    def convert_mapped(value: Any) -> Any:
        return convert(_item_value(value))

    return convert_mapped


def _has_rule(type_: sa.types.TypeEngine[Any]) -> bool:
    import sqlalchemy as sa

    return isinstance(
        type_, (sa.Integer, sa.Float, sa.Numeric, sa.String, sa.types._Binary, sa.DateTime, sa.Date, sa.Time)
    )


def _item_value(value: Any) -> Any:
    """
    Return a Python value as the item value the converters take.

    An `int` or `float` becomes the `Decimal` it spells, other binary types
    `bytes`; anything else is left as it is.
    """
    cls = value.__class__
    if cls is int:
        return Decimal(value)
    if cls is float:
        return Decimal(repr(value)) if math.isfinite(value) else value
    if cls is bytearray or cls is memoryview:
        return bytes(value)
    return value


_INF: Final = float("inf")


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


def _integer_bounds(type_: sa.Integer) -> tuple[int, int, str]:
    """
    Return the lowest and highest value of an integer type, and its name in errors.
    """
    bits = _integer_bits(type_)
    unsigned = bool(getattr(type_, "unsigned", False))  # MySQL's integer types
    low, high = (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return low, high, f"{_INTEGER_NAMES[bits]}{' UNSIGNED' if unsigned else ''} ({bits}-bit)"


def _integer_converter(type_: sa.Integer) -> Callable[[Any], int]:
    low, high, label = _integer_bounds(type_)

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


def _numeric_bounds(type_: sa.Numeric[Any], dialect: str | None) -> tuple[int | None, int | None]:
    """
    Return the precision and scale a Numeric column has on `dialect` (`None`: unbounded).
    """
    precision, scale = type_.precision, type_.scale
    if dialect in ("mysql", "mariadb") and precision is None:
        # MySQL's DECIMAL with no arguments is DECIMAL(10, 0)
        # (https://dev.mysql.com/doc/refman/8.0/en/fixed-point-types.html).
        return 10, 0
    if precision is not None and scale is None:
        return precision, 0  # NUMERIC(p) is NUMERIC(p, 0) in SQL
    return precision, scale


def _numeric_converter(type_: sa.Numeric[Any], dialect: str | None) -> Callable[[Any], Decimal]:
    precision, scale = _numeric_bounds(type_, dialect)
    label = f"{type(type_).__name__}({precision}, {scale})" if precision is not None else type(type_).__name__
    if dialect in ("mysql", "mariadb") and type_.precision is None:
        label = f"{type(type_).__name__}, DECIMAL(10, 0) on MySQL"
    integer_digits = None if precision is None else precision - (scale or 0)
    # SQLite has no decimal type: SQLAlchemy binds a Numeric as a float and
    # reads it back through text with a fixed number of places (the
    # decimal_return_scale, else the scale, else 10), so only numbers that
    # come back the same that way are kept exactly.
    read_back = _sqlite_numeric_read_back(type_) if dialect == "sqlite" else None

    def convert(value: Any) -> Decimal:
        if not isinstance(value, Decimal):
            raise Unfit(f"{_kind(value)} is not a number ({label} column)")
        if not value:
            return value
        if not value.is_finite():
            raise Unfit(f"a number that is not finite does not fit {label}")
        if scale is not None and not _is_integral(value.scaleb(scale, _EXACT)):
            raise Unfit(f"more than {scale} decimal place{'' if scale == 1 else 's'} ({label})")
        if integer_digits is not None and value.adjusted() >= integer_digits:
            raise Unfit(f"more than {integer_digits} digits before the decimal point ({label})")
        if read_back is not None and read_back(value) != value:
            raise Unfit(
                f"a number that SQLite, which stores {label} as a float, would give back as another number"
            )
        return value

    return convert


def _sqlite_numeric_read_back(type_: sa.Numeric[Any]) -> Callable[[Decimal], Any]:
    """
    Return what SQLAlchemy reads back on SQLite for a number bound to `type_`.

    The float it binds is stored as a REAL (or an INTEGER when integral), and
    read back as a `Decimal` through `"%.<scale>f"`, or as the float itself
    with `asdecimal=False`.
    """
    if not type_.asdecimal:
        return lambda value: Decimal(repr(float(value)))
    places = type_._effective_decimal_return_scale
    template = f"%.{places}f"

    def read_back(value: Decimal) -> Decimal:
        number = float(value)
        if number in (_INF, -_INF):
            return Decimal("NaN")  # out of range: compares unequal to every number
        return Decimal(template % number)

    return read_back


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


def _string_converter(type_: sa.String, dialect: str | None, *, charset: str | None) -> Callable[[Any], str]:
    import sqlalchemy as sa

    length = type_.length
    name = type(type_).__name__
    allowed = frozenset(type_.enums) if isinstance(type_, sa.Enum) else None
    label = f"{name}({length})" if length is not None and allowed is None else name
    fixed = type_.__visit_name__ in ("CHAR", "NCHAR") and length is not None
    mysql = dialect in ("mysql", "mariadb")
    byte_limit = _MYSQL_BYTE_LIMITS.get(type_.__visit_name__.upper()) if mysql and length is None else None
    codec = _CODECS.get((charset or "").lower()) if byte_limit is not None else None
    no_nul = dialect == "postgresql"
    fits = charset_check(charset, mysql=mysql)

    def convert(value: Any) -> str:
        if isinstance(value, str):
            text = value
            if not (text.isascii() or text.isprintable()) and _SURROGATE(text) is not None:
                raise Unfit("text that is not valid Unicode (a lone surrogate)")
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise Unfit(f"a number that is not finite ({label} column)")
            text = canonical_number_text(value)
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
        if fits is not None:
            fits(text)
        if byte_limit is not None and len(text) * 4 > byte_limit:
            size = len(text.encode(codec or "utf-8", "replace"))
            if size > byte_limit:
                encoding = "UTF-8" if codec is None else str(charset)
                raise Unfit(f"more than {byte_limit} bytes of {encoding} do not fit {label} on MySQL")
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


def _json_walkers(
    type_: sa.JSON, dialect: str | None, *, mariadb: bool = False, top_level: bool = True
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """
    Return the converters to values `json.dumps` takes, exactly.

    Sets become arrays sorted by value (strings by code point, numbers
    numerically, binary by its bytes), binary base64 text, numbers an `int`
    or a `float` that reads back as the same number. The first converter
    takes deserialized values (and the `int`s and `float`s a custom mapper
    gives), the second attribute values as events carry them (see
    `typed_json_converter_for`). `top_level` says the value is the column's
    whole value (not a member of the extra column's object).
    """
    # Every JSON value travels to PostgreSQL inside a JSONB document, which
    # cannot hold NUL (https://www.postgresql.org/docs/current/datatype-json.html).
    no_nul = dialect == "postgresql"
    # MySQL's binary JSON keeps integers as 64-bit, larger ones as a double;
    # MariaDB keeps JSON as text, digits and all.
    int_range = _MYSQL_JSON_INTEGERS if dialect in ("mysql", "mariadb") and not mariadb else None

    def number(value: Decimal) -> int | float:
        # Quick paths on the text for the common cases: plain integers, and
        # decimals whose float has the same shortest text.
        digits = str(value)
        if digits.isdigit() or (digits[:1] == "-" and digits[1:].isdigit()):
            return integer(int(digits))
        # Not an exponent, NaN or Infinity, nor an integral "1.0" (an int below).
        if "E" not in digits and "N" not in digits and "n" not in digits and not digits.endswith(".0"):
            quick = float(digits)
            if repr(quick) == digits:
                return quick
        if not value.is_finite():
            raise Unfit("a number that is not finite (JSON column)")
        if value == value.to_integral_value():
            return integer(int(value))
        approximate = _exact_float(value)
        if approximate is None:
            raise Unfit("a number with more digits than JSON columns keep exactly")
        return approximate

    def integer(value: int) -> int:
        if int_range is not None and value not in int_range:
            raise Unfit("an integer beyond 64 bits, which MySQL JSON keeps only as a float")
        return value

    def real(value: float) -> float:
        if not math.isfinite(value):
            raise Unfit("a number that is not finite (JSON column)")
        return value

    def text(value: str) -> str:
        if no_nul and "\x00" in value:
            raise Unfit("text containing a NUL character, which PostgreSQL's JSONB cannot store")
        return check_text(value)

    def binary(value: bytes) -> str:
        return base64.b64encode(value).decode("ascii")

    def mapping(value: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, member in value.items():
            if key.__class__ is not str:
                raise Unfit("a map whose member names are not all strings (JSON column)")
            if not key.isascii() or (no_nul and "\x00" in key):
                text(key)
            out[key] = member if member is None or member.__class__ is bool else walk(member)
        return out

    def sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
        return [member if member is None or member.__class__ is bool else walk(member) for member in value]

    def members(value: set[Any] | frozenset[Any]) -> list[Any]:
        try:
            if all(isinstance(member, str) for member in value):
                return [text(member) for member in sorted(value)]
            if all(isinstance(member, Decimal) for member in value):
                return [number(member) for member in sorted(value)]
            if all(isinstance(member, bytes) for member in value):
                return [binary(member) for member in sorted(value)]
        except TypeError:
            pass
        raise Unfit("a set whose members are not all strings, numbers or binary")

    def same(value: Any) -> Any:
        return value

    def plain(value: str) -> str:
        return value if value.isascii() and not (no_nul and "\x00" in value) else text(value)

    walkers: dict[type, Callable[[Any], Any]] = {
        str: plain,
        Decimal: number,
        bytes: binary,
        bool: same,
        type(None): same,
        dict: mapping,
        list: sequence,
        set: members,
        frozenset: members,
        # what a custom mapper may give besides DynamoDB's types
        int: integer,
        float: real,
        tuple: sequence,
    }

    def walk(value: Any) -> Any:
        walker = walkers.get(value.__class__)
        if walker is None:
            raise Unfit(f"{_kind(value)} is not a DynamoDB value (JSON column)")
        return walker(value)

    typed = _typed_walker(walk, number, text, no_nul=no_nul)
    checks: list[Callable[[Any], Any]] = []
    if mariadb:
        # A member of the extra column's object is one level deeper than a column's value.
        checks.append(_mariadb_depth if top_level else _mariadb_member_depth)
    if dialect == "sqlite" and top_level:
        checks.append(_sqlite_top_level)
    if not checks:
        return walk, typed

    def checked(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def convert_checked(value: Any) -> Any:
            converted = convert(value)
            for check in checks:
                check(converted)
            return converted

        return convert_checked

    return checked(walk), checked(typed)


def _mariadb_member_depth(value: Any) -> None:
    _mariadb_depth(value, limit=_MARIADB_JSON_DEPTH - 1)


def _mariadb_depth(value: Any, limit: int = _MARIADB_JSON_DEPTH) -> None:
    """
    Refuse a JSON value that nests deeper than MariaDB takes in a chunk (JSON_DEPTH 30).

    JSON_DEPTH counts a scalar or an empty array or object as 1, and a
    non-empty one as one more than its deepest member
    (https://mariadb.com/kb/en/json_depth/).
    """
    level = [value] if value.__class__ is dict or value.__class__ is list else []
    depth = 1  # of a scalar, or of containers that are all empty
    while level:
        filled = [container for container in level if container]
        if not filled:
            return
        depth += 1
        if depth > limit:
            raise Unfit(f"JSON nested deeper than the {limit} levels MariaDB takes here")
        level = [
            member
            for container in filled
            for member in (container.values() if container.__class__ is dict else container)
            if member.__class__ is dict or member.__class__ is list
        ]


def _sqlite_top_level(value: Any) -> None:
    """
    Refuse a number that SQLite would change as a JSON column's whole value.

    SQLAlchemy's JSON is a NUMERIC-affinity column on SQLite: a JSON text that
    is a number is stored as an INTEGER or a REAL, not as text
    (https://www.sqlite.org/datatype3.html#type_affinity), so an integer beyond
    64 bits, or a decimal that SQLite reads as another double, comes back
    changed. Inside an array or object, numbers stay text.
    """
    cls = value.__class__
    if cls is int:
        if value not in _SQLITE_INTEGERS:
            raise Unfit("an integer beyond 64 bits as a whole JSON value, which SQLite keeps only as a float")
    elif cls is float and _sqlite_real(repr(value)) != value:
        raise Unfit("a number as a whole JSON value that SQLite would read as another number")


def _sqlite_real(text: str) -> float:
    import sqlite3

    connection = sqlite3.connect(":memory:")
    try:
        real: float = connection.execute("SELECT CAST(? AS REAL)", (text,)).fetchone()[0]
    finally:
        connection.close()
    return real


def _typed_walker(
    walk: Callable[[Any], Any],
    number: Callable[[Decimal], int | float],
    text: Callable[[str], str],
    *,
    no_nul: bool,
) -> Callable[[Any], Any]:
    """
    Return `walk` for attribute values as events carry them, in one pass.

    `number` and `text` are `walk`'s own converters: what they refuse is
    refused here too. Anything unusual (another tag, a payload of the wrong
    type, text that is not plain, a set that DynamoDB would not send) goes
    the long way, `walk(deserialize_value(value))`, which raises the precise
    error.
    """

    def typed(value: dict[str, Any]) -> Any:  # noqa: PLR0911 - one branch per type tag, leaves inline
        # The common tags inline, and the scalar members of a map or list
        # without a call; any other tag, or a payload of the wrong type, is
        # deserialized first. Malformed values raise on the way.
        (tag,) = value
        payload = value[tag]
        cls = payload.__class__
        if tag == "M" and cls is dict:
            return typed_map(payload)
        if tag == "L" and cls is list:
            out: list[Any] = []
            append = out.append
            for member in payload:
                (inner,) = member
                leaf = member[inner]
                if inner == "M" and leaf.__class__ is dict:
                    append(typed_map(leaf))
                elif (
                    inner == "S"
                    and leaf.__class__ is str
                    and leaf.isascii()
                    and not (no_nul and "\x00" in leaf)
                ):
                    append(leaf)
                elif inner == "N" and leaf.__class__ is str:
                    append(typed_number(leaf))
                else:
                    append(typed(member))
            return out
        if tag == "S" and cls is str:
            return payload if payload.isascii() and not (no_nul and "\x00" in payload) else text(payload)
        if tag == "N" and cls is str:
            return typed_number(payload)
        if tag == "SS" and cls is list and payload:
            joined = "".join(payload)  # a TypeError unless every member is text
            if joined.isascii() and not (no_nul and "\x00" in joined):
                strings = sorted(set(payload))
                if len(strings) == len(payload):
                    return strings
        if tag == "BOOL" and cls is bool:
            return payload
        if tag == "NULL" and payload is True:
            return None
        return walk(deserialize_value(value))

    def typed_map(payload: dict[str, Any]) -> dict[str, Any]:
        # Every member name checked at once (a TypeError unless each is text);
        # one that is not plain is checked on its own.
        names = "".join(payload)
        if not names.isascii() or (no_nul and "\x00" in names):
            for key in payload:
                text(key)
        out: dict[str, Any] = {}
        for key, member in payload.items():
            (inner,) = member
            leaf = member[inner]
            if inner == "S" and leaf.__class__ is str and leaf.isascii() and not (no_nul and "\x00" in leaf):
                out[key] = leaf
            elif inner == "N" and leaf.__class__ is str:
                # typed_number's first quick path, inline
                out[key] = (
                    int(leaf) if len(leaf) < 19 and leaf.isdigit() and leaf.isascii() else typed_number(leaf)
                )
            else:
                out[key] = typed(member)
        return out

    def typed_number(payload: str) -> int | float:
        # The quick paths of number(), on the text: an int of up to 18 digits
        # is within every range; a float whose shortest text is the payload
        # is exact. Texts with an exponent, NaN, Infinity or an integral "1.0"
        # go the long way, as they do in number().
        if len(payload) < 19 and payload.isdigit() and payload.isascii():
            return int(payload)
        if len(payload) <= 16 and payload.isascii():
            # Plain decimal text of at most 15 digits (DBL_DIG), not integral:
            # its float is the same number, as two such texts never share a float.
            whole, point, fraction = (payload[1:] if payload[:1] == "-" else payload).partition(".")
            if point and whole.isdigit() and fraction.isdigit() and fraction.strip("0"):
                return float(payload)
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
    (https://dev.mysql.com/doc/refman/8.0/en/fractional-seconds.html);
    PostgreSQL's `timestamp(p)` and `time(p)` round to `p` digits, six when
    not given (https://www.postgresql.org/docs/current/datatype-datetime.html).
    """
    if mysql:
        digits = getattr(type_, "fsp", None) or 0
        where = f"{label}({digits}) on MySQL"
    else:
        precision = getattr(type_, "precision", None)  # PostgreSQL's TIMESTAMP and TIME
        if precision is None:
            return None
        digits = precision
        where = f"{label}({digits})"
    if digits >= 6:
        return None
    unit = 10 ** (6 - digits)

    def check(microseconds: int) -> None:
        if microseconds % unit:
            raise Unfit(f"more than {digits} fractional-second digits ({where})")

    return check


def _datetime_converter(type_: sa.DateTime, *, mysql: bool, key: bool = False) -> Callable[[Any], datetime]:
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
        elif isinstance(value, datetime):  # what a custom mapper may give
            moment = value
        else:
            raise Unfit(f"{_kind(value)} is neither epoch seconds nor ISO 8601 text (DateTime column)")
        try:
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except OverflowError:
            raise Unfit("a date-time out of range") from None
        if check is not None:
            check(moment.microsecond)
        moment = moment if aware else moment.replace(tzinfo=None)
        if key and isinstance(value, str) and moment.isoformat() != value:
            # "…Z", "…+00:00" and "…+01:00" an hour later are one instant but
            # three DynamoDB keys: only one spelling per instant can be a key.
            raise Unfit(
                "ISO 8601 text in another spelling than YYYY-MM-DDTHH:MM:SS[.ffffff]"
                f"{'+00:00' if aware else ''} for a DateTime key column (several spellings name one"
                " instant but are different DynamoDB keys; map such keys to a String column)"
            )
        return moment

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
    if isinstance(value, date) and not isinstance(value, datetime):  # from a custom mapper
        return value
    if not isinstance(value, str):
        raise Unfit(f"{_kind(value)} is not an ISO 8601 date (Date column)")
    if not _ISO_DATE(value):
        raise Unfit("a string that is not a YYYY-MM-DD date (Date column)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Unfit("a string that is not a valid YYYY-MM-DD date (Date column)") from None


def _time_converter(type_: sa.Time, *, mysql: bool, key: bool = False) -> Callable[[Any], time]:
    aware = bool(type_.timezone)
    check = _precision_check(type_, mysql=mysql, label="TIME")

    def convert(value: Any) -> time:
        if isinstance(value, time):  # from a custom mapper
            moment = value
        elif isinstance(value, str):
            _check_fraction(value)
            try:
                moment = time.fromisoformat(value)
            except ValueError:
                raise Unfit("a string that is not an ISO 8601 time") from None
            if key and moment.isoformat() != value:
                raise Unfit(
                    "ISO 8601 text in another spelling than HH:MM:SS[.ffffff] for a Time key column"
                    " (several spellings name one time but are different DynamoDB keys)"
                )
        else:
            raise Unfit(f"{_kind(value)} is not an ISO 8601 time (Time column)")
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
    if isinstance(value, uuid.UUID):  # from a custom mapper
        return value
    if not isinstance(value, str):
        raise Unfit(f"{_kind(value)} is not a UUID (Uuid column)")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Unfit("a string that is not a UUID (Uuid column)") from None


def _uuid_text(value: Any) -> str:
    return str(_uuid(value))


def _canonical_uuid(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """
    Wrap a Uuid key column's converter: only the canonical spelling is a key.
    """

    def convert_key(value: Any) -> Any:
        if isinstance(value, str) and str(_uuid(value)) != value:
            raise Unfit(
                "a UUID in another spelling than lower-case 8-4-4-4-12 for a Uuid key column (several"
                " spellings name one UUID but are different DynamoDB keys; map such keys to a String column)"
            )
        return convert(value)

    return convert_key


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
            return check_text(value) if isinstance(value, str) else value
        raise Unfit(f"{_kind(value)} is not a {python_type.__name__} ({label} column)")

    return convert
