"""
From a sample to a SQL table: one column per attribute, named and typed by the mapping's rules.
"""

from __future__ import annotations

import hashlib
import keyword
import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from dynastream._replication.columns import snake_case

from ._types import (
    DATABASE_NAMES,
    FAMILIES,
    FAMILY_NAMES,
    TypeSpec,
    attribute_kind,
    choose,
    describe_kinds,
    number_shape,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ._sample import Sample

__all__ = ["InferredColumn", "InferredTable", "infer_table"]

Target = Literal["all", "sqlite", "postgresql", "mysql", "mariadb"]

# Identifiers: PostgreSQL keeps 63 bytes of a name, MySQL 64 characters
# (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS,
# https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html).
MAX_NAME: Final = 63
# A MySQL index key holds 3,072 bytes, and utf8mb4 counts 4 per character
# (https://dev.mysql.com/doc/refman/8.0/en/innodb-limits.html).
_MYSQL_KEY_CHARACTERS: Final = 768
_PLAIN_NAME: Final = re.compile(r"[a-z_][a-z0-9_]*").fullmatch
_PLAIN_EXACT_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").fullmatch
Naming = Literal["snake_case", "exact"]
SEQUENCE: Final = "dynastream_sequence"
DELETED: Final = "dynastream_deleted_at"


# SQLite's keywords (https://www.sqlite.org/lang_keywords.html): SQLAlchemy quotes only some
# of them, and an unquoted NOTHING or WINDOW breaks a statement.
_SQLITE_KEYWORDS: Final = frozenset(
    word
    for line in (
        "abort action add after all alter always analyze and as asc attach autoincrement before",
        "begin between by cascade case cast check collate column commit conflict constraint",
        "create cross current current_date current_time current_timestamp database default",
        "deferrable deferred delete desc detach distinct do drop each else end escape except",
        "exclude exclusive exists explain fail filter first following for foreign from full",
        "generated glob group groups having if ignore immediate in index indexed initially inner",
        "insert instead intersect into is isnull join key last left like limit match materialized",
        "natural no not nothing notnull null nulls of offset on or order others outer over",
        "partition plan pragma preceding primary query raise range recursive references regexp",
        "reindex release rename replace restrict returning right rollback row rows savepoint",
        "select set table temp temporary then ties to transaction trigger unbounded union unique",
        "update using vacuum values view virtual when where window with without",
    )
    for word in line.split()
)


# What a generated class body refers to (see _render.render_model).
_MODULE_NAMES: Final = frozenset({"sa", "mysql", "postgresql", "dynastream", "mapped_column"})


def _reserved_words() -> frozenset[str]:
    from sqlalchemy.dialects.mysql.reserved_words import RESERVED_WORDS_MARIADB, RESERVED_WORDS_MYSQL
    from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS as POSTGRESQL
    from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer
    from sqlalchemy.sql.compiler import RESERVED_WORDS as ANSI

    sql = (
        ANSI
        | POSTGRESQL
        | RESERVED_WORDS_MYSQL
        | RESERVED_WORDS_MARIADB
        | SQLiteIdentifierPreparer.reserved_words
    )
    # Python keywords cannot be class attributes; declarative keeps `metadata` and `registry`.
    # and the model's class body uses the module's own names, which a column must not hide.
    python = {*keyword.kwlist, *keyword.softkwlist, "metadata", "registry"} | _MODULE_NAMES
    return frozenset({word.lower() for word in (*sql, *python)} | _SQLITE_KEYWORDS | {SEQUENCE, DELETED})


@attrs.frozen
class InferredColumn:
    """
    One column of an inferred table, and why it has its type.

    Attributes:
        attribute: The DynamoDB attribute it keeps.
        name: The column's name.
        types: The type on each database family (`"sqlite"`, `"postgresql"`,
            `"mysql"`, which serves MariaDB too).
        primary_key: It is part of the primary key.
        present: Sampled items that carry the attribute (NULL included).
        kinds: How many sampled items carry each DynamoDB type (`S`, `N`, ...).
        notes: Why the type is what it is, and any problem, for the generated
            comment. Never a value.
        refused: Database (`"sqlite"`, `"postgresql"`, `"mysql"`, `"mariadb"`)
            to what the replication would refuse there: reasons
            (never values) and how many sampled values each. Empty when the
            column takes every sampled value.
        renamed_because: Why the name is not the attribute's snake case, if it is not.
    """

    attribute: str
    name: str
    types: dict[str, TypeSpec]
    primary_key: bool
    present: int
    kinds: Counter[str]
    notes: tuple[str, ...] = ()
    refused: dict[str, tuple[tuple[str, int], ...]] = attrs.field(factory=dict)
    renamed_because: str | None = None

    def type_for(self, target: Target) -> sa.types.TypeEngine[Any]:
        """
        Return the SQLAlchemy type: for one family, or (`"all"`) with a variant per family that differs.
        """
        if target != "all":
            return self.types[_family(target)].build()
        base, variants = self.variants()
        type_ = base.build()
        for spec, dialects in variants:
            type_ = type_.with_variant(spec.build(), *dialects)
        return type_

    def variants(self) -> tuple[TypeSpec, list[tuple[TypeSpec, tuple[str, ...]]]]:
        """
        Return the type most families share, and the others with the dialect names they apply to.
        """
        by_spec: dict[TypeSpec, list[str]] = {}
        for family in ("postgresql", "mysql", "sqlite"):  # ties go to the first
            by_spec.setdefault(self.types[family], []).append(family)
        base = max(by_spec, key=lambda spec: len(by_spec[spec]))
        variants = [
            (spec, tuple(name for family in families for name in _DIALECT_NAMES[family]))
            for spec, families in by_spec.items()
            if spec != base
        ]
        return base, variants


_DIALECT_NAMES: Final = {"sqlite": ("sqlite",), "postgresql": ("postgresql",), "mysql": ("mysql", "mariadb")}


def _family(target: str) -> str:
    return "mysql" if target == "mariadb" else target


@attrs.frozen
class InferredTable:
    """
    A SQL table for a DynamoDB table, inferred from a sample.

    Render it with `dynastream.inference.render_model` or `render_ddl`, or
    build it with `to_table`.

    Attributes:
        sample: What it was inferred from.
        name: The SQL table's name.
        class_name: The model class's name.
        columns: Key columns first, then the others by how many items carry them.
        renames: Attribute to column, for every attribute whose column is not
            the name `naming` gives it: what `App.replicate(..., renames=)` needs.
        margin: Digits of margin given to numbers (before the point, and
            after it when there are decimals).
        naming: `"snake_case"` or `"exact"`: what `App.replicate(..., naming=)` needs.
        problems: What the replication would refuse, per column and family:
            empty when the sample replicates into the table everywhere.
    """

    sample: Sample
    name: str
    class_name: str
    columns: tuple[InferredColumn, ...]
    renames: dict[str, str]
    margin: int
    naming: Naming = "snake_case"

    @property
    def problems(self) -> list[str]:
        """
        Say, per column and family, what the replication would refuse (reasons, never values).
        """
        found = []
        for column in self.columns:
            for family, reasons in column.refused.items():
                listed = "; ".join(f"{reason} ({count:,} values)" for reason, count in reasons)
                found.append(f"{column.name} ({column.attribute!r}) on {DATABASE_NAMES[family]}: {listed}")
        return found

    def to_table(self, metadata: sa.MetaData | None = None, *, target: Target = "all") -> sa.Table:
        """
        Return the table as a `sqlalchemy.Table`, with `dynastream.sequence_column()`.

        Args:
            metadata: Where to define it; a new `MetaData` when omitted.
            target: The database family its types are for, or `"all"`.
        """
        import sqlalchemy as sa

        from dynastream.schema import sequence_column

        columns = [
            # A key is DynamoDB's value: never AUTO_INCREMENT, which turns a 0 into a new number on MySQL.
            sa.Column(c.name, c.type_for(target), primary_key=True, autoincrement=False)
            if c.primary_key
            else sa.Column(c.name, c.type_for(target), nullable=True)
            for c in self.columns
        ]
        make: Any = sa.Table  # its overloads do not take dialect options as **kwargs
        table: sa.Table = make(
            self.name, metadata or sa.MetaData(), *columns, sequence_column(), **table_options(target)
        )
        return table


def table_options(target: str) -> dict[str, str]:
    """
    Return the table options a generated table carries: utf8mb4 on MySQL, which holds all of Unicode.
    """
    return {"mysql_charset": "utf8mb4"} if target in ("all", "mysql", "mariadb") else {}


def infer_table(
    sample: Sample,
    *,
    table_name: str | None = None,
    class_name: str | None = None,
    margin: int = 2,
    naming: Naming = "snake_case",
) -> InferredTable:
    """
    Infer a SQL table for `sample`'s DynamoDB table, one column per attribute.

    The types follow the built-in replication's mapping rules, checked by the
    replication's own converters on every sampled value, on SQLite,
    PostgreSQL and MySQL/MariaDB:

    - `N`: `Integer` or `BigInteger` when every value is integral and has
      room for `margin` more digits; else `Numeric(p, s)` with `margin` more
      digits before the point and after it; text where the family's exact
      types cannot hold that (SQLite beyond 15 digits, MySQL beyond 65).
    - `S`: `String(n)` with twice the longest value's room (16 to 255), else
      `Text` (`MEDIUMTEXT` on MySQL); key columns `dynastream.ExactString`.
    - `B`: `LargeBinary` (`MEDIUMBLOB` on MySQL; `VARBINARY` as a MySQL key).
    - `BOOL`: `Boolean`. `M`, `L`, sets: `JSON` (`JSONB` on PostgreSQL).
    - Several types: text when they are `S` and `N`, else JSON; an
      attribute only ever NULL, JSON.

    Every non-key column is nullable: an attribute present in every sampled
    item may be missing from the next one.

    Column names are the attributes' snake case (`naming="snake_case"`) or
    the attributes' names (`"exact"`), made plain ASCII, with a `_` after a
    reserved word (SQL or Python), shortened with a digest past 63
    characters, and numbered when two attributes would share one (ignoring
    case: MySQL does).

    Args:
        sample: The key schema and items.
        table_name: The SQL table's name (default: the DynamoDB table's, in snake case).
        class_name: The model class's name (default: the DynamoDB table's, in CamelCase).
        margin: Digits of margin for numbers.
        naming: How column names follow attribute names, as
            `App.replicate(..., naming=)` takes it.

    Raises:
        ValueError: `margin` is negative, or `naming` unknown.
    """
    if margin < 0:
        raise ValueError(f"margin must be 0 or more, got {margin}")
    if naming not in ("snake_case", "exact"):
        raise ValueError(f"naming must be 'snake_case' or 'exact', got {naming!r}")
    present: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = {}
    values: dict[str, list[Any]] = {}
    for item in sample.items:
        for attribute, value in item.items():
            present[attribute] += 1
            kinds.setdefault(attribute, Counter())[attribute_kind(value)] += 1
            if value is not None:
                values.setdefault(attribute, []).append(value)
    key_names = [key.name for key in sample.keys]
    others = sorted(set(present) - set(key_names), key=lambda name: (-present[name], name))
    names, reasons = _column_names([*key_names, *others], naming)
    key_types = {key.name: key.type for key in sample.keys}
    columns = [
        _column(
            attribute,
            names[attribute],
            kinds.get(attribute) or Counter({key_types[attribute]: 0}),
            values.get(attribute, []),
            present=present[attribute],
            total=len(sample.items),
            key=attribute in key_types,
            margin=margin,
            renamed=reasons.get(attribute),
        )
        for attribute in [*key_names, *others]
    ]
    columns = _fit_mysql_key(columns, values)
    natural = snake_case if naming == "snake_case" else str
    renames = {c.attribute: c.name for c in columns if c.name != natural(c.attribute)}
    base = sample.table_name
    return InferredTable(
        sample,
        table_name or _column_names([base], "snake_case")[0][base],
        class_name or _class_name(base),
        tuple(columns),
        renames,
        margin,
        naming,
    )


def _column(
    attribute: str,
    name: str,
    kinds: Counter[str],
    values: list[Any],
    *,
    present: int,
    total: int,
    key: bool,
    margin: int,
    renamed: str | None,
) -> InferredColumn:
    choices = {family: choose(kinds, values, family, key=key, margin=margin) for family in FAMILIES}
    notes = [_kinds_note(kinds, present, total, key=key) + _width_note(kinds, values)]
    whys: dict[str, list[str]] = {}
    for family, choice in choices.items():
        if choice.why:
            whys.setdefault(choice.why, []).append(FAMILY_NAMES[family])
    for why, families in whys.items():
        notes.append(why if len(families) == len(FAMILIES) else f"on {', '.join(families)}: {why}")
    refused = {database: why for choice in choices.values() for database, why in choice.refused.items()}
    if set(kinds) - {"NULL"} and len(set(kinds) - {"NULL"}) > 1 and not any("text" in n for n in notes):
        notes.append("several types in the sample: JSON keeps any of them")
    if not set(kinds) - {"NULL"}:
        notes.append("only NULL in the sample: JSON keeps whatever comes")
    for family, reasons in refused.items():
        listed = "; ".join(f"{reason} ({count:,} values)" for reason, count in reasons)
        notes.append(f"REVIEW: on {DATABASE_NAMES[family]} the replication would refuse: {listed}")
    return InferredColumn(
        attribute,
        name,
        {family: choice.spec for family, choice in choices.items()},
        key,
        present,
        kinds,
        tuple(notes),
        refused,
        renamed,
    )


def _width_note(kinds: Counter[str], values: list[Any]) -> str:
    seen = set(kinds) - {"NULL"}
    if seen == {"N"}:
        shape = number_shape(values)
        after = f" and {_count(shape.scale, 'digit')} after it" if shape.scale else ""
        return f"; up to {_count(shape.integer_digits, 'digit')} before the point{after}"
    if seen == {"S"}:
        return f"; up to {_count(max(map(len, values)), 'character')}"
    if seen == {"B"}:
        return f"; up to {_count(max(map(len, values)), 'byte')}"
    return ""


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _kinds_note(kinds: Counter[str], present: int, total: int, *, key: bool) -> str:
    role = "key, " if key else ""
    if present == total:
        return f"{role}{describe_kinds(kinds)} (every item)"
    return f"{role}{describe_kinds(kinds)} of {total:,} sampled"


def _fit_mysql_key(columns: list[InferredColumn], values: dict[str, list[Any]]) -> list[InferredColumn]:
    """
    Shorten key text columns so that MySQL can index them, where the sample allows.
    """
    keys = [c for c in columns if c.primary_key and c.types["mysql"].name in ("ExactString", "VARBINARY")]
    total = sum(
        c.types["mysql"].arguments[0] * (4 if c.types["mysql"].name == "ExactString" else 1) for c in keys
    )
    if total <= _MYSQL_KEY_CHARACTERS * 4:
        return columns
    fitted = []
    share = _MYSQL_KEY_CHARACTERS // max(len(keys), 1)
    for column in columns:
        spec = column.types["mysql"]
        if column not in keys:
            fitted.append(column)
            continue
        longest = max((len(v) for v in values.get(column.attribute, [])), default=0)
        width = share if spec.name == "ExactString" else share * 4
        new = TypeSpec(spec.name, (max(width, longest),))
        note = f"on MySQL/MariaDB, {new.arguments[0]} wide: its primary key index holds 3,072 bytes"
        if longest > width:
            note = (
                f"REVIEW: on MySQL/MariaDB, sampled keys of {longest:,} characters make the primary key"
                " wider than its 3,072-byte index: CREATE TABLE fails there"
            )
        types = dict(column.types)
        types["mysql"] = new
        fitted.append(attrs.evolve(column, types=types, notes=(*column.notes, note)))
    return fitted


def _column_names(attributes: list[str], naming: Naming) -> tuple[dict[str, str], dict[str, str]]:
    """
    Return each attribute's column name, and why, where it is not the name `naming` gives.
    """
    reserved = _reserved_words()
    names: dict[str, str] = {}
    reasons: dict[str, str] = {}
    taken: set[str] = set()  # in lower case: MySQL's column names ignore case
    plain_name = _PLAIN_NAME if naming == "snake_case" else _PLAIN_EXACT_NAME
    for attribute in attributes:
        wanted = snake_case(attribute) if naming == "snake_case" else attribute
        name, reason = wanted, None
        if not plain_name(name):
            plain = unicodedata.normalize("NFKD", snake_case(name)).encode("ascii", "ignore").decode("ascii")
            plain = re.sub(r"[^a-z0-9_]+", "_", plain.lower()).strip("_") or "attribute"
            name = plain if _PLAIN_NAME(plain) else f"col_{plain}"
            reason = "not a plain ASCII identifier"
        if name.lower() in reserved:
            name, reason = f"{name}_", "a reserved word"
        if len(name) > MAX_NAME:
            digest = hashlib.sha256(attribute.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            name, reason = f"{name[: MAX_NAME - 9]}_{digest}", f"longer than {MAX_NAME} characters"
        if name.lower() in taken:
            number = 2
            while f"{name}_{number}".lower() in taken:
                number += 1
            name, reason = f"{name}_{number}", "another attribute has the same column name"
        taken.add(name.lower())
        names[attribute] = name
        if reason is not None:
            reasons[attribute] = reason
    return names, reasons


def _class_name(table_name: str) -> str:
    words = re.split(
        r"[^A-Za-z0-9]+", unicodedata.normalize("NFKD", table_name).encode("ascii", "ignore").decode()
    )
    name = "".join(word[:1].upper() + word[1:] for word in words if word) or "Item"
    if name[0].isdigit() or keyword.iskeyword(name) or name == "Base":
        name = f"Table{name}"
    return name
