"""
Items to rows: each attribute coerced to its column's type exactly, or refused.

`RowMapper` looks at the table once and gives every column a small converter
chosen by its type; mapping an item is then one pass over those converters.
A value that would be rounded, truncated, padded or reinterpreted on the way
into the database raises `ColumnValueError` instead, naming the attribute and
column and saying what does not fit, never quoting the value.

| Column type                         | Takes                        | Gives                       |
| ----------------------------------- | ---------------------------- | --------------------------- |
| SmallInteger / Integer / BigInteger | N, integral and in range     | `int`                       |
| Numeric(p, s)                       | N within p and s             | `Decimal`                   |
| Float / Double / REAL               | N that a float keeps exactly | `float`                     |
| String / Text / Enum / ExactString  | S, or N as canonical text    | `str`                       |
| Boolean                             | BOOL                         | `bool`                      |
| LargeBinary / VARBINARY / BINARY    | B                            | `bytes`                     |
| JSON / JSONB                        | any value                    | what `json.dumps` takes     |
| DateTime                            | N epoch seconds, S ISO 8601  | `datetime` in UTC           |
| Date / Time                         | S ISO 8601                   | `date` / `time`             |
| Uuid                                | S                            | `uuid.UUID`                 |
| ARRAY                               | L, SS, NS or BS              | `list`, each member coerced |
| any other type                      | a value of its `python_type` | the value                   |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from dynastream._deserialize import FAST_DECODERS, InvalidAttributeValue, deserialize_image
from dynastream.exceptions import ColumnValueError, ConfigurationError, MalformedRecordError

from .coerce import (
    Unfit,
    check_text,
    converter_for,
    extra_converter,
    fill_for,
    mapped_converter_for,
    number_converter_for,
    typed_json_converter_for,
)
from .columns import check_columns, snake_case, table_of
from .slots import Slot, convert_event_image, convert_slots, extras, member_name

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    import sqlalchemy as sa
    from sqlalchemy.engine import Dialect

    from dynastream._records import Item

__all__ = ["RowMapper"]

Naming = Literal["exact", "snake_case"]
# A shape of item: its slots (all, key, and all with numbers as text) and unmapped attributes.
_Shape = tuple[tuple[Slot, ...], tuple[Slot, ...], tuple[Slot, ...], tuple[str, ...]]
# Dialects whose bulk writers send numbers as text (see number_converter_for).
_TEXT_NUMBERS: Final = frozenset({"postgresql", "mysql", "mariadb"})

_DIALECTS: Final = frozenset({"postgresql", "mysql", "mariadb", "sqlite"})
_SHAPE_CACHE_SIZE: Final = 256


class RowMapper:
    """
    Maps a DynamoDB item to a row of a SQLAlchemy table, exactly or not at all.

    Attributes match columns by name (`naming`), or as `renames` says. Each
    value is coerced to its column's type without rounding or truncation, or
    the call raises `ColumnValueError`. Rows are dicts keyed by the table's own
    column names: an attribute name never becomes SQL text.

    A missing or NULL attribute gives `None` in a nullable column (in a JSON
    column `sqlalchemy.null()`, so that it is SQL NULL rather than JSON
    `null`), the scalar `default` of a NOT NULL column, or an error; primary
    key columns must always have a value. `Computed` columns are never filled.

    Args:
        target: A Core `Table` or a declarative model class.
        renames: Attribute name to column name, where they differ. A renamed
            attribute fills only its new column, which no other attribute
            fills.
        naming: `"exact"` matches an attribute to the column of the same
            name; `"snake_case"` to the column named like it in snake case
            (`orderId`, `OrderID` and `order-id` to `order_id`).
        extra: A JSON column that keeps every attribute with no column, as an
            object; `None` ignores such attributes.
        exclude: Columns the mapper never fills (dynastream's sequence and
            deleted columns, columns left to a server default).
        dialect: The database's SQLAlchemy dialect (an engine's `dialect`),
            or its name: `"postgresql"`, `"mysql"` (or `"mariadb"`),
            `"sqlite"`; `None` for rules that hold everywhere. It selects
            `with_variant` types and the few dialect rules (MySQL's `DECIMAL`
            is `DECIMAL(10, 0)` and its `DATETIME` keeps whole seconds unless
            given `fsp`; SQLite keeps `Numeric` as a float; PostgreSQL text
            cannot hold NUL; MariaDB's JSON nests 32 levels at most).
        charsets: Column name to the character set its text is stored in, as
            the database names it (MySQL's `utf8mb3`, `latin1`...; PostgreSQL's
            server encoding): text the set cannot hold is refused rather than
            replaced. The built-in replication reads them from the database.

    Raises:
        ConfigurationError: The target is not a table; a rename, `exclude` or
            `extra` names a column the table lacks; two attributes are
            renamed to one column; `extra` is not a JSON column; a primary
            key column is excluded; or `naming` or `dialect` is unknown.

    Examples:
        >>> import sqlalchemy as sa, dynastream
        >>> from decimal import Decimal
        >>> orders = sa.Table(
        ...     "orders",
        ...     sa.MetaData(),
        ...     sa.Column("order_id", sa.String(20), primary_key=True),
        ...     sa.Column("total", sa.Numeric(10, 2), nullable=False),
        ...     sa.Column("lines", sa.JSON),
        ... )
        >>> mapper = dynastream.RowMapper(orders, naming="snake_case")
        >>> mapper({"OrderId": "o-1", "Total": Decimal("12.50"), "Lines": [{"Qty": Decimal("2")}]})
        {'order_id': 'o-1', 'total': Decimal('12.50'), 'lines': [{'Qty': 2}]}
        >>> try:
        ...     mapper({"OrderId": "o-2", "Total": Decimal("0.125")})
        ... except dynastream.ColumnValueError as error:
        ...     print(f"{error.attribute} -> {error.column}: {error.reason}")
        Total -> total: more than 2 decimal places (Numeric(10, 2))
    """

    __slots__ = (
        "_columns",
        "_extra",
        "_key_columns",
        "_key_slots",
        "_mapped",
        "_mapped_attributes",
        "_names",
        "_no_nul",
        "_renames",
        "_shapes",
        "_slots",
        "_table",
        "_text_slots",
        "snake_case",
    )

    def __init__(
        self,
        target: sa.Table | type[Any],
        *,
        renames: Mapping[str, str] | None = None,
        naming: Naming = "exact",
        extra: str | None = None,
        exclude: Collection[str] = (),
        dialect: str | Dialect | None = None,
        charsets: Mapping[str, str] | None = None,
    ) -> None:
        if naming not in ("exact", "snake_case"):
            raise ConfigurationError(f"naming must be 'exact' or 'snake_case', got {naming!r}")
        mariadb = dialect == "mariadb"
        if dialect is not None and not isinstance(dialect, str):
            mariadb = bool(getattr(dialect, "is_mariadb", False))
            dialect = dialect.name
        if dialect is not None and dialect not in _DIALECTS:
            raise ConfigurationError(
                f"dialect must be one of {', '.join(sorted(_DIALECTS))} or None, got {dialect!r}"
            )
        charsets = dict(charsets or {})
        self._no_nul = dialect == "postgresql"
        table = table_of(target)
        renames = dict(renames or {})
        excluded = set(exclude)
        check_columns(table, excluded, renames, extra)
        self._table = table
        self._renames = renames
        self.snake_case = naming == "snake_case"
        # The extra column's name and JSON converter.
        by_name = {column.name: column for column in table.columns}  # table.c is keyed by key, not name
        self._extra = (
            None if extra is None else (extra, *extra_converter(by_name[extra], dialect, mariadb=mariadb))
        )

        columns = [c for c in table.columns if c.name not in excluded and c.computed is None]
        self._columns = tuple(c.name for c in columns)
        self._key_columns = tuple(c.name for c in table.primary_key.columns)
        # A column takes the attribute renamed to it, else the attribute of its
        # name unless that one is renamed away ("" is no DynamoDB attribute).
        attribute_of = {column: attribute for attribute, column in renames.items()}
        attribute_of.update((name, "") for name in renames.keys() - attribute_of.keys())

        def slot(c: sa.Column[Any], *, as_text: bool) -> Slot:
            convert = converter_for(
                c.type, dialect, mariadb=mariadb, key=c.primary_key, charset=charsets.get(c.name)
            )
            return (
                attribute_of.get(c.name, c.name),
                c.name,
                convert,
                fill_for(c, dialect),
                typed_json_converter_for(c.type, dialect, mariadb=mariadb),
                number_converter_for(c.type, dialect, convert, as_text=as_text),
            )

        slots = [slot(c, as_text=False) for c in columns if c.name != extra]
        self._text_slots = (
            tuple(slot(c, as_text=True) for c in columns if c.name != extra)
            if dialect in _TEXT_NUMBERS
            else tuple(slots)
        )
        # What a custom mapper gives goes through the same checks (see coerce_row).
        self._mapped = {
            c.name: (
                mapped_converter_for(
                    c.type, dialect, mariadb=mariadb, key=c.primary_key, charset=charsets.get(c.name)
                ),
                c.nullable and not c.primary_key,
            )
            for c in columns
        }
        self._slots = tuple(slots)
        self._key_slots = tuple(slot for slot in slots if slot[1] in self._key_columns)
        self._mapped_attributes = frozenset(slot[0] for slot in slots if slot[0]) | renames.keys()
        # Columns snake_case naming fills by name: all but those a rename fills.
        self._names = frozenset(slot[1] for slot in slots) - set(renames.values())
        self._shapes: dict[tuple[str, ...], _Shape] = {}

    def __repr__(self) -> str:
        return f"<RowMapper -> {self._table.fullname}>"

    @property
    def table(self) -> sa.Table:
        """
        The table rows are mapped to.
        """
        return self._table

    @property
    def columns(self) -> tuple[str, ...]:
        """
        The names of the columns a row from this mapper carries, in table order.
        """
        return self._columns

    @property
    def extra(self) -> str | None:
        """
        The JSON column that keeps the attributes with no column, or `None` when they are ignored.
        """
        return None if self._extra is None else self._extra[0]

    def key_columns(self) -> tuple[str, ...]:
        """
        Return the names of the table's primary key columns, in key order.
        """
        return self._key_columns

    def unmapped_attributes(self, item: Item) -> tuple[str, ...]:
        """
        Return the names of `item`'s attributes that no column takes, in the item's order.

        Only the names are read: `item` may be deserialized or an image as an
        event carries it (`{"N": "1"}` values), and nothing is checked. These
        are the attributes a mapping ignores, or keeps in the `extra` column.
        Cheap: an item whose every attribute has a column costs one set test
        (under snake_case naming, a lookup of its shape).

        Examples:
            >>> import sqlalchemy as sa, dynastream
            >>> orders = sa.Table(
            ...     "orders", sa.MetaData(), sa.Column("order_id", sa.String(20), primary_key=True)
            ... )
            >>> mapper = dynastream.RowMapper(orders, naming="snake_case")
            >>> mapper.unmapped_attributes({"OrderId": {"S": "o-1"}, "GiftNote": {"S": "Happy birthday"}})
            ('GiftNote',)
            >>> mapper.unmapped_attributes({"OrderId": "o-2"})
            ()
        """
        if self.snake_case:
            try:
                return self._shape(item)[3]
            except ColumnValueError:  # two attributes name one column: both have a column all the same
                renames, names = self._renames, self._names
                return tuple(name for name in item if name not in renames and snake_case(name) not in names)
        mapped = self._mapped_attributes
        return () if mapped.issuperset(item) else tuple(name for name in item if name not in mapped)

    def __call__(self, item: Item) -> dict[str, Any]:
        """
        Return `item` as a row: column name to a value ready to bind to it.

        Raises:
            ColumnValueError: An attribute's value does not fit its column, a
                column that needs a value has none, or (snake_case) two
                attributes map to one column.
        """
        unmapped: Sequence[str]
        if self.snake_case:
            slots, _, _, unmapped = self._shape(item)
            row = convert_slots(item, slots)
        else:
            row = convert_slots(item, self._slots)
            if self._extra is None:
                return row
            mapped = self._mapped_attributes
            unmapped = [name for name in item if name not in mapped]
        if self._extra is not None:
            column, convert, _ = self._extra
            row[column] = extras(item, unmapped, column, convert, no_nul=self._no_nul)
        return row

    def map_event_image(
        self,
        image: Item,
        *,
        path: str = "image",
        numbers_as_text: bool = False,
        count_unmapped: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """
        Return the row of an image as an event carries it (`{"N": "1.5"}` values).

        The result, and any error, is what `mapper(deserialize(image))` would
        give, but the image is converted in one pass, without building the
        deserialized item: the built-in replication maps images this way. Every
        attribute is checked, mapped or not.

        Args:
            image: A `NewImage`, `OldImage` or `Keys` object of a stream record.
            path: How errors name the image (`dynamodb.NewImage`, say).
            numbers_as_text: On PostgreSQL and MySQL/MariaDB (the mapper's
                `dialect`), give an exact-decimal column's number as its text,
                checked against the column's precision and scale like a
                `Decimal`, where the text is plain (`-12.50`); other dialects,
                and other texts, give a `Decimal` as without it. The built-in
                replication sends numbers to those servers as text, which they
                parse exactly, and saves building a `Decimal` per value.
            count_unmapped: Once the image is mapped, add one here for each of
                its attributes that no column takes (`unmapped_attributes`),
                found by the same pass that maps it.

        Raises:
            ColumnValueError: As for a call.
            MalformedRecordError: The image is malformed; `field` is the path of
                the offending value below `path`.

        Examples:
            >>> import sqlalchemy as sa, dynastream
            >>> totals = sa.Table(
            ...     "totals",
            ...     sa.MetaData(),
            ...     sa.Column("id", sa.String(10), primary_key=True),
            ...     sa.Column("total", sa.Numeric(10, 2)),
            ... )
            >>> dynastream.RowMapper(totals).map_event_image({"id": {"S": "t-1"}, "total": {"N": "12.5"}})
            {'id': 't-1', 'total': Decimal('12.5')}
        """
        try:
            return self._map_event_image(
                image, numbers_as_text=numbers_as_text, count_unmapped=count_unmapped
            )
        except Exception:  # noqa: BLE001, S110 - the checked way below raises the precise error
            pass
        try:
            item = deserialize_image(image)
        except InvalidAttributeValue as error:
            raise MalformedRecordError(error.reason, field=error.field(path)) from None
        row = self(item)
        if count_unmapped is not None:
            for name in self.unmapped_attributes(image):
                count_unmapped[name] = count_unmapped.get(name, 0) + 1
        return row

    def _map_event_image(
        self, image: Item, *, numbers_as_text: bool, count_unmapped: dict[str, int] | None
    ) -> dict[str, Any]:
        unmapped: Sequence[str]
        if self.snake_case:
            plain_slots, _, text_slots, unmapped = self._shape(image)
            slots = text_slots if numbers_as_text else plain_slots
        else:
            slots = self._text_slots if numbers_as_text else self._slots
            mapped = self._mapped_attributes
            # Most images have no attribute without a column: one test in C says so.
            unmapped = [] if mapped.issuperset(image) else [name for name in image if name not in mapped]
        row = convert_event_image(image, slots)
        if self._extra is not None:
            column, _, typed = self._extra
            row[column] = {member_name(name, no_nul=self._no_nul): typed(image[name]) for name in unmapped}
        else:
            for name in unmapped:  # not kept, but checked all the same
                if not name.isascii():
                    check_text(name)
                member = image[name]
                (tag,) = member
                FAST_DECODERS[tag](member[tag])
        if count_unmapped is not None:  # mapped: count what has no column
            for name in unmapped:
                count_unmapped[name] = count_unmapped.get(name, 0) + 1
        return row

    def map_key(self, item: Item) -> dict[str, Any]:
        """
        Return the primary key columns of `item` (a `Keys` image will do).

        Raises:
            ColumnValueError: A key attribute is missing or does not fit.
        """
        if self.snake_case:
            return convert_slots(item, self._shape(item)[1])
        return convert_slots(item, self._key_slots)

    def coerce_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """
        Return a custom mapper's row with each value checked against its column.

        A mapper gives Python values (`int`, `float`, `str`, `datetime`...);
        each gets the exactness checks the default mapping applies, so that
        the database never rounds, truncates or replaces it. SQL NULL is
        `None` (or `sqlalchemy.null()`).

        Raises:
            ColumnValueError: A value does not fit its column, a column that
                needs a value has `None`, or the row names a column the mapper
                does not fill. (Columns the row lacks are the caller's to
                check: the replication fills key columns from `Keys`.)
        """
        import sqlalchemy as sa

        out: dict[str, Any] = {}
        mapped = self._mapped
        for column, value in row.items():
            entry = mapped.get(column)
            if entry is None:
                raise ColumnValueError(
                    "the mapper gave a value for a column that the table does not have, or that"
                    " dynastream fills itself",
                    column=str(column),
                    attribute=None,
                )
            convert, nullable = entry
            if value is None or isinstance(value, sa.sql.elements.Null):
                if not nullable:
                    raise ColumnValueError(
                        "NULL for a column that needs a value", column=column, attribute=None
                    )
                out[column] = value
                continue
            try:
                out[column] = convert(value)
            except Unfit as unfit:
                raise ColumnValueError(unfit.reason, column=column, attribute=None) from None
        return out

    def _shape(self, item: Item) -> _Shape:
        """
        Return the slots (all, key) and unmapped attributes of `item`'s names.

        Used under snake_case naming; cached per tuple of attribute names.
        """
        names = tuple(item)
        shape = self._shapes.get(names)
        if shape is None:
            shape = self._resolve(names)
            if len(self._shapes) < _SHAPE_CACHE_SIZE:  # items of a table have few shapes; stay bounded
                self._shapes[names] = shape
        return shape

    def _resolve(self, names: tuple[str, ...]) -> _Shape:
        found: dict[str, str] = {}
        unmapped: list[str] = []
        for name in names:
            column = self._renames.get(name)
            if column is None:
                candidate = snake_case(name)
                column = candidate if candidate in self._names else None
            if column is None:
                unmapped.append(name)
            elif column in found:
                raise ColumnValueError(
                    f"attributes {found[column]!r} and {name!r} both map to this column",
                    column=column,
                    attribute=name,
                )
            else:
                found[column] = name
        # A column no attribute maps to looks up "", which no DynamoDB attribute is named.
        slots = tuple((found.get(slot[1], ""), *slot[1:]) for slot in self._slots)
        text_slots = tuple((found.get(slot[1], ""), *slot[1:]) for slot in self._text_slots)
        keys = tuple(slot for slot in slots if slot[1] in self._key_columns)
        return slots, keys, text_slots, tuple(unmapped)
