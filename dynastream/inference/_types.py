"""
Column types from sampled values: the candidates, and the replication's own check of them.

A type is chosen per database family (SQLite, PostgreSQL, MySQL/MariaDB):
the first candidate whose converter (the very one the replication uses,
`dynastream._replication.coerce.converter_for`) takes every sampled value on
that family. A column's families that agree share one type; the others get
a `with_variant`.
"""

from __future__ import annotations

from collections import Counter
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from dynastream._replication.coerce import Unfit, canonical_number_text, converter_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import sqlalchemy as sa

__all__ = [
    "FAMILIES",
    "TypeSpec",
    "attribute_kind",
    "choose",
    "describe_kinds",
    "number_shape",
]

# The database families a generated model serves, and the dialects each is checked as:
# a `mysql+pymysql://` engine on MariaDB is the "mysql" dialect with MariaDB's rules.
FAMILIES: Final = ("sqlite", "postgresql", "mysql")
_CHECKED_AS: Final = {
    "sqlite": (("sqlite", "sqlite", False),),
    "postgresql": (("postgresql", "postgresql", False),),
    "mysql": (("mysql", "mysql", False), ("mariadb", "mysql", True)),
}
# The databases checked, as problems name them.
DATABASE_NAMES: Final = {
    "sqlite": "SQLite",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "mariadb": "MariaDB",
}
FAMILY_NAMES: Final = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}

# VARCHAR lengths offered, and the longest before TEXT: 255 characters keep a
# MySQL utf8mb4 VARCHAR's length in one byte and a wide table under its 65,535-byte row
# (https://dev.mysql.com/doc/refman/8.0/en/column-count-limit.html).
_LENGTHS: Final = (16, 32, 64, 128, 255)
# Exact decimal digits: PostgreSQL's NUMERIC takes precision 1000
# (https://www.postgresql.org/docs/current/datatype-numeric.html), MySQL's DECIMAL
# 65 digits with at most 30 after the point
# (https://dev.mysql.com/doc/refman/8.0/en/fixed-point-types.html); SQLite keeps
# a Numeric as a float, exact to 15 significant digits.
_NUMERIC_LIMITS: Final = {"postgresql": (1000, 1000), "mysql": (65, 30), "sqlite": (15, 15)}
# A partition key holds 2,048 bytes, a sort key 1,024
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html).
_KEY_BYTES: Final = 2048
_INTEGER_DIGITS: Final = 9  # digits that Integer (32 bits) always holds
_BIG_INTEGER_DIGITS: Final = 18  # and BigInteger (64 bits)
_EXACT: Final = Context(prec=1000, Emax=10_000, Emin=-10_000)


@attrs.frozen
class TypeSpec:
    """
    A column type as generated code spells it: a name and its arguments.

    Attributes:
        name: `Integer`, `BigInteger`, `Numeric`, `String`, `ExactString`,
            `Text`, `MEDIUMTEXT`, `LargeBinary`, `MEDIUMBLOB`, `VARBINARY`,
            `Boolean`, `JSON` or `JSONB`.
        arguments: Its arguments (a length; a precision and scale).
    """

    name: str
    arguments: tuple[int, ...] = ()

    def build(self) -> sa.types.TypeEngine[Any]:
        """
        Return the SQLAlchemy type.
        """
        import sqlalchemy as sa
        from sqlalchemy.dialects import mysql, postgresql

        from dynastream.schema import ExactString

        builders: dict[str, Callable[..., sa.types.TypeEngine[Any]]] = {
            "Integer": sa.Integer,
            "BigInteger": sa.BigInteger,
            "Numeric": sa.Numeric,
            "String": sa.String,
            "ExactString": ExactString,
            "Text": sa.Text,
            "MEDIUMTEXT": mysql.MEDIUMTEXT,
            "LargeBinary": sa.LargeBinary,
            "MEDIUMBLOB": mysql.MEDIUMBLOB,
            "VARBINARY": mysql.VARBINARY,
            "Boolean": sa.Boolean,
            "JSON": sa.JSON,
            "JSONB": postgresql.JSONB,
        }
        return builders[self.name](*self.arguments)

    def source(self) -> str:
        """
        Return the type as Python source (`sa.Numeric(12, 4)`).
        """
        module = {"MEDIUMTEXT": "mysql", "MEDIUMBLOB": "mysql", "VARBINARY": "mysql", "JSONB": "postgresql"}
        prefix = "dynastream" if self.name == "ExactString" else module.get(self.name, "sa")
        return f"{prefix}.{self.name}({', '.join(map(str, self.arguments))})"

    @property
    def python_type(self) -> str:
        """
        The Python type of the column's values, as an annotation spells it.
        """
        return {
            "Integer": "int",
            "BigInteger": "int",
            "Numeric": "Decimal",
            "LargeBinary": "bytes",
            "MEDIUMBLOB": "bytes",
            "VARBINARY": "bytes",
            "Boolean": "bool",
            "JSON": "Any",
            "JSONB": "Any",
        }.get(self.name, "str")


def attribute_kind(value: Any) -> str:  # noqa: PLR0911 - one return per type
    """
    Return the DynamoDB type of a deserialized value: `S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`...
    """
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "BOOL"
    if isinstance(value, str):
        return "S"
    if isinstance(value, Decimal):
        return "N"
    if isinstance(value, (bytes, bytearray)):
        return "B"
    if isinstance(value, dict):
        return "M"
    if isinstance(value, (list, tuple)):
        return "L"
    if isinstance(value, (set, frozenset)):
        member = next(iter(value), "")
        return "NS" if isinstance(member, Decimal) else "BS" if isinstance(member, bytes) else "SS"
    return type(value).__name__


def describe_kinds(kinds: Counter[str]) -> str:
    """
    Say how often each type occurs: `S in 3 items, N in 2`.
    """
    parts = [
        f"{kind} in {count:,}" for kind, count in sorted(kinds.items(), key=lambda pair: (-pair[1], pair[0]))
    ]
    if parts:
        parts[0] += " item" if kinds.most_common(1)[0][1] == 1 else " items"
    return ", ".join(parts)


@attrs.frozen
class NumberShape:
    """
    How wide a set of numbers is: digits before the point, after it, and as text.
    """

    integral: bool
    integer_digits: int
    scale: int
    text_length: int


def number_shape(values: Iterable[Decimal]) -> NumberShape:
    """
    Return how wide `values` are (`12.5` has 2 digits before the point and 1 after).
    """
    integral, integer_digits, scale, text_length = True, 1, 0, 1
    for value in values:
        text_length = max(text_length, len(canonical_number_text(value)))
        if not value or not value.is_finite():
            continue
        _, digits, exponent = value.normalize(_EXACT).as_tuple()
        assert isinstance(exponent, int)  # noqa: S101 - finite
        integer_digits = max(integer_digits, len(digits) + exponent)
        if exponent < 0:
            integral = False
            scale = max(scale, -exponent)
    return NumberShape(integral, integer_digits, scale, text_length)


@attrs.frozen
class Choice:
    """
    The type chosen for one family, why, and what it refused (when nothing took everything).

    Attributes:
        spec: The type.
        why: A short reason, for the generated comment (`""` when the kind says it all).
        refused: Per database (`"sqlite"`, `"postgresql"`, `"mysql"`,
            `"mariadb"`), Unfit reasons (never values) with how many values each.
    """

    spec: TypeSpec
    why: str = ""
    refused: dict[str, tuple[tuple[str, int], ...]] = attrs.field(factory=dict)


def refusals(spec: TypeSpec, family: str, values: Sequence[Any], *, key: bool) -> dict[str, Counter[str]]:
    """
    Return, per database of `family`, why the replication would refuse values in a column of `spec`.
    """
    found: dict[str, Counter[str]] = {}
    type_ = spec.build()
    for database, dialect, mariadb in _CHECKED_AS[family]:
        convert = converter_for(type_, dialect, mariadb=mariadb, key=key)
        for value in values:
            try:
                convert(value)
            except Unfit as unfit:
                found.setdefault(database, Counter())[unfit.reason] += 1
    return found


def _length(longest: int) -> int | None:
    """
    Return a VARCHAR length for text up to `longest` characters with headroom, or `None` for TEXT.
    """
    for length in _LENGTHS:
        if longest * 2 <= length:
            return length
    return None


def _text(longest: int, family: str) -> TypeSpec:
    length = _length(longest)
    if length is not None:
        return TypeSpec("String", (length,))
    # An item holds at most 400 KB: MEDIUMTEXT (16 MB) always has room; MySQL's TEXT is 64 KB.
    return TypeSpec("MEDIUMTEXT") if family == "mysql" else TypeSpec("Text")


def _number_candidates(shape: NumberShape, family: str, margin: int) -> list[tuple[TypeSpec, str]]:
    text = (_text(shape.text_length, family), "numbers as their text")
    if shape.integral:
        digits = shape.integer_digits + margin
        if digits <= _INTEGER_DIGITS:
            return [(TypeSpec("Integer"), ""), text]
        if digits <= _BIG_INTEGER_DIGITS:
            return [(TypeSpec("BigInteger"), ""), text]
        scale = 0
    else:
        scale = shape.scale + margin
        digits = shape.integer_digits + margin + scale
    precision_limit, scale_limit = _NUMERIC_LIMITS[family]
    if digits > precision_limit or scale > scale_limit:
        why = {
            "sqlite": "SQLite keeps a Numeric as a float, exact to 15 digits: numbers as their text",
            "mysql": "MySQL's DECIMAL holds 65 digits, 30 after the point: numbers as their text",
            "postgresql": "wider than PostgreSQL's NUMERIC: numbers as their text",
        }[family]
        return [(text[0], why)]
    return [(TypeSpec("Numeric", (digits, scale)), ""), text]


def candidates(  # noqa: PLR0911 - one return per family of types
    kinds: Counter[str], values: Sequence[Any], family: str, *, key: bool, margin: int
) -> list[tuple[TypeSpec, str]]:
    """
    Return the types to try for an attribute on `family`, best first, each with its reason.
    """
    seen = set(kinds) - {"NULL"}
    json = (TypeSpec("JSONB" if family == "postgresql" else "JSON"), "")
    if seen == {"N"}:
        return _number_candidates(number_shape(values), family, margin)
    if seen in ({"S"}, {"S", "N"}):
        longest = max(
            (len(v) if isinstance(v, str) else len(canonical_number_text(v)) for v in values), default=0
        )
        why = "numbers as their text" if seen == {"S", "N"} else ""
        if key:
            return [(TypeSpec("ExactString", (_length(longest) or _KEY_BYTES,)), why)]
        return [(_text(longest, family), why), json]
    if seen == {"B"}:
        if key:
            longest = max(len(value) for value in values)
            spec = (
                TypeSpec("VARBINARY", (_length(longest) or _KEY_BYTES,))
                if family == "mysql"
                else TypeSpec("LargeBinary")
            )
            return [(spec, "")]
        return [(TypeSpec("MEDIUMBLOB") if family == "mysql" else TypeSpec("LargeBinary"), ""), json]
    if seen == {"BOOL"}:
        return [(TypeSpec("Boolean"), ""), json]
    return [json]


def choose(
    kinds: Counter[str], values: Sequence[Any], family: str, *, key: bool = False, margin: int = 2
) -> Choice:
    """
    Return the first candidate type that takes every value on `family`.

    When none does, the first one, with what it refused: the generated model
    says so, and replicating those values would fail.
    """
    options = candidates(kinds, values, family, key=key, margin=margin)
    first: Choice | None = None
    for spec, why in options:
        refused = refusals(spec, family, values, key=key)
        if not refused:
            return Choice(spec, why)
        if first is None:
            ranked = {
                database: tuple(sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0])))
                for database, reasons in refused.items()
            }
            first = Choice(spec, why, ranked)
    assert first is not None  # noqa: S101 - there is always a candidate
    return first
