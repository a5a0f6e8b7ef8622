"""
Replicating mixed batches: dynastream's full path against plain ORM, hand-written Core and raw-driver code.

Every strategy applies the same Lambda event (see `benchmarks.events`: about
60% INSERTs, 30% MODIFYs, 10% REMOVEs) to its own table of one schema, from
the parsed event dict to COMMIT, starting from the same pre-state:

- **full**: `dynastream.App.lambda_handler` with `App.replicate("Orders", ...)`
  into a table with `dynastream.sequence_column()`: read the event, map each
  item exactly, collapse per key, guarded multi-row upsert and delete,
  tombstones, one transaction;
- **full, otherwise configured**: the same on the statement bulk path
  (`DYNASTREAM_BULK_PATH=statements`), and with chunks encoded by the standard
  library instead of orjson (as without the `speedups` extra);
- **(a) ORM**: the seed article's approach written plainly: boto3's
  `TypeDeserializer` per record, a declarative model, `Session.merge` per
  INSERT/MODIFY and `Query.delete` per REMOVE, one commit;
- **(c) ceiling**: the fastest hand-written path to the same rows, without a
  sequence guard, tombstones or checks: number text passed straight to the
  server, each engine's bulk-load path. Several candidates are measured per
  engine (COPY or `LOAD DATA LOCAL INFILE` into a temporary table, then one
  `INSERT ... SELECT` upsert; or driver `executemany`), and the fastest is the
  ceiling.

After timing, every strategy's table must hold exactly the same rows (numbers
compared as `Decimal`), or the benchmark fails.

The growth part (`benchmarks.growth`, `python -m benchmarks replication
growth`) takes the full path's and (b)'s results from here, and adds wide and
large items.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import json
import os
import tempfile
import time
import tracemalloc
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session

import dynastream
from dynastream.schema import tombstones

from .events import Batch, make_batch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    # An image, its sequence number and a `TypeDeserializer` to the row of a table, as `plain_row` does.
    RowBuilder = Callable[[dict[str, Any], str, Any], dict[str, Any]]

__all__ = ["ENGINES", "SIZES", "run"]

ENGINES: dict[str, tuple[str, str]] = {
    "postgresql": ("DYNASTREAM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": ("DYNASTREAM_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
SIZES = (100, 1_000, 10_000)
BENCH_SCHEMA = "dynastream_bench"
# Targets from the issue, checked for the batch sizes that matter (1,000 and up).
TARGET_SIZES = (1_000, 10_000)
TARGET_OVER_CORE = 1.0
TARGET_OF_CEILING = 0.6
TARGET_OVER_ORM = 20.0
TARGET_MEMORY = 1.5

# --- the schema every strategy writes ------------------------------------------------


def order_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """
    Return the `Orders` target table (the same schema for every strategy).
    """
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    return sa.Table(
        name,
        metadata,
        sa.Column("id", dynastream.ExactString(40), primary_key=True),
        sa.Column("customer_id", sa.String(20), nullable=False),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("total", sa.Numeric(12, 2), nullable=False),
        sa.Column("exchange_rate", sa.Numeric(18, 10), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("discount_rate", sa.Numeric(5, 3), nullable=False),
        sa.Column("tags", json_type, nullable=False),
        sa.Column("is_gift", sa.Boolean, nullable=False),
        sa.Column("gift_message", sa.String(200)),
        sa.Column("coupon", sa.String(20)),
        sa.Column("loyalty_points", sa.BigInteger),
        sa.Column("address", json_type, nullable=False),
        sa.Column("lines", json_type, nullable=False),  # LINES is reserved in MySQL: quoting is tested too
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        dynastream.sequence_column(),
    )


class Base(DeclarativeBase):
    pass


class OrmOrder(Base):
    """
    The declarative model of strategy (a).
    """

    __table__ = order_table("bench_orders_orm", Base.metadata)
    id: Mapped[str]


FULL_TABLE = order_table("bench_orders_full", Base.metadata)
# The full path as configured otherwise (label: bulk path, whether orjson encodes), each
# into its own table: the report gives their rates beside the full path's.
BulkPath = Literal["auto", "statements", "staging"]
FULL_VARIANTS: dict[str, tuple[BulkPath | None, bool]] = {
    "statements path": ("statements", True),
    "standard-library JSON": (None, False),
}
VARIANT_TABLES = {
    label: order_table(f"bench_orders_full_{position}", Base.metadata)
    for position, label in enumerate(FULL_VARIANTS)
}
CORE_TABLE = order_table("bench_orders_core", Base.metadata)
COLUMNS = [column.name for column in FULL_TABLE.columns]
JSON_COLUMNS = ("tags", "address", "lines")
SEQUENCE = "dynastream_sequence"


# --- (a) the plain ORM approach ----------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """
    What a JSON column takes: numbers as int or float, sets as sorted lists.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {name: _jsonable(member) for name, member in value.items()}
    if isinstance(value, list):
        return [_jsonable(member) for member in value]
    if isinstance(value, set):
        return sorted(_jsonable(member) for member in value)
    return value


def plain_row(image: dict[str, Any], sequence_number: str, deserializer: Any) -> dict[str, Any]:
    """
    Map an image to column values the plain way: TypeDeserializer, then by hand.

    boto3's `TypeDeserializer` refuses Lambda's base64 text for B, so binary
    attributes are decoded before it.
    """
    item = {
        name: base64.b64decode(value["B"]) if "B" in value else deserializer.deserialize(value)
        for name, value in image.items()
    }
    points = item.get("loyalty_points")
    return {
        "id": item["id"],
        "customer_id": item["customer_id"],
        "email": item["email"],
        "status": item["status"],
        "created_at": item["created_at"],
        "total": item["total"],
        "exchange_rate": item["exchange_rate"],
        "quantity": int(item["quantity"]),
        "discount_rate": item["discount_rate"],
        "tags": _jsonable(item["tags"]),
        "is_gift": item["is_gift"],
        "gift_message": item.get("gift_message"),
        "coupon": item.get("coupon"),
        "loyalty_points": None if points is None else int(points),
        "address": _jsonable(item["address"]),
        "lines": _jsonable(item["lines"]),
        "signature": item["signature"],
        "version": int(item["version"]),
        SEQUENCE: sequence_number.zfill(40),
    }


def apply_orm(engine: sa.Engine, event: dict[str, Any]) -> None:
    """
    Strategy (a): merge or delete record by record, commit once.
    """
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    with Session(engine) as session:
        for record in event["Records"]:
            change = record["dynamodb"]
            if record["eventName"] == "REMOVE":
                key = deserializer.deserialize(change["Keys"]["id"])
                session.query(OrmOrder).filter(OrmOrder.id == key).delete()
            else:
                session.merge(
                    OrmOrder(**plain_row(change["NewImage"], change["SequenceNumber"], deserializer))
                )
        session.commit()


# --- (b) hand-written SQLAlchemy Core ------------------------------------------------------


class CoreUpsert:
    """
    Strategy (b): the guarded upsert a competent engineer writes by hand with SQLAlchemy Core.

    boto3's `TypeDeserializer` on each image (binary decoded from base64
    first), the last change per key, keys in sorted order (one lock order for
    every batch); one `executemany` of a guarded upsert (`INSERT ... ON
    CONFLICT DO UPDATE ... WHERE seq < excluded.seq` on PostgreSQL and SQLite,
    `INSERT ... ON DUPLICATE KEY UPDATE col = IF(seq < VALUES(seq),
    VALUES(col), col)` on MySQL and MariaDB, the sequence column assigned
    last) and one of a guarded `DELETE ... WHERE id = :key AND seq < :seq`, in
    one transaction. No tombstones, no mapping checks.

    Images become rows through `row` (`plain_row`, the `Orders` table's, by
    default).
    """

    def __init__(self, engine: sa.Engine, table: sa.Table, row: RowBuilder | None = None) -> None:
        from boto3.dynamodb.types import TypeDeserializer

        self.engine = engine
        self.deserializer = TypeDeserializer()
        self.row = plain_row if row is None else row
        sequence = table.c[SEQUENCE]
        others = [column for column in table.columns if column.name not in ("id", SEQUENCE)]
        self.upsert: sa.Executable
        if engine.dialect.name in ("postgresql", "sqlite"):
            from sqlalchemy.dialects import sqlite

            insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(table)
            self.upsert = insert.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={column.name: insert.excluded[column.name] for column in [*others, sequence]},
                where=sequence < insert.excluded[SEQUENCE],
            )
        else:
            from sqlalchemy.dialects import mysql

            values = mysql.insert(table)
            newer = sequence < values.inserted[SEQUENCE]
            # Assignments run left to right and see the new values: the guard reads the
            # old sequence number only while it is assigned last
            # (https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html).
            self.upsert = values.on_duplicate_key_update(
                [(column.name, sa.func.IF(newer, values.inserted[column.name], column)) for column in others]
                + [(SEQUENCE, sa.func.IF(newer, values.inserted[SEQUENCE], sequence))]
            )
        self.delete = sa.delete(table).where(
            table.c.id == sa.bindparam("key"), sequence < sa.bindparam("sequence_number")
        )

    def changes(self, event: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """
        Return the rows to upsert and the keys to delete: the last change per key, by key.
        """
        latest: dict[str, dict[str, Any]] = {}
        for record in event["Records"]:
            latest[self.deserializer.deserialize(record["dynamodb"]["Keys"]["id"])] = record
        upserts = []
        deletes = []
        for key in sorted(latest):
            record = latest[key]
            change = record["dynamodb"]
            if record["eventName"] == "REMOVE":
                deletes.append({"key": key, "sequence_number": change["SequenceNumber"].zfill(40)})
            else:
                upserts.append(self.row(change["NewImage"], change["SequenceNumber"], self.deserializer))
        return upserts, deletes

    def apply(self, upserts: list[dict[str, Any]], deletes: list[dict[str, Any]]) -> None:
        """
        Write `upserts` and `deletes` (as `changes` returns them) in one transaction.
        """
        with self.engine.begin() as connection:
            if upserts:
                connection.execute(self.upsert, upserts)
            if deletes:
                connection.execute(self.delete, deletes)

    def apply_event(self, event: dict[str, Any]) -> None:
        """
        Apply a Lambda event: its last change per key, in one transaction.
        """
        self.apply(*self.changes(event))


# --- (c) the raw-driver ceiling ------------------------------------------------------------


def _number(text: str) -> int | float:
    return float(text) if "." in text or "e" in text or "E" in text else int(text)


def _plain_map(value: dict[str, Any]) -> dict[str, Any]:
    return {name: _PLAIN[tag](payload) for name, member in value.items() for tag, payload in member.items()}


def _plain_list(value: list[Any]) -> list[Any]:
    return [_PLAIN[tag](payload) for member in value for tag, payload in member.items()]


def _same(value: Any) -> Any:
    return value


def _null(_: Any) -> None:
    return None


_PLAIN: dict[str, Callable[[Any], Any]] = {
    "S": _same,
    "N": _number,
    "BOOL": _same,
    "NULL": _null,
    "M": _plain_map,
    "L": _plain_list,
    "SS": sorted,
}
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _optional(value: dict[str, Any] | None, tag: str) -> Any:
    return None if value is None else value.get(tag)  # absent, or {"NULL": true}


def raw_changes(event: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """
    Return the batch as upsert rows (in `COLUMNS` order) and deleted keys.

    The last change per key wins. Numbers stay text, binary stays base64 text;
    each driver path finishes the conversion its own way.
    """
    latest: dict[str, dict[str, Any]] = {}
    for record in event["Records"]:
        latest[record["dynamodb"]["Keys"]["id"]["S"]] = record
    upserts = []
    deletes = []
    for key, record in latest.items():
        if record["eventName"] == "REMOVE":
            deletes.append(key)
            continue
        change = record["dynamodb"]
        image = change["NewImage"]
        get = image.get
        upserts.append(
            (
                key,
                image["customer_id"]["S"],
                image["email"]["S"],
                image["status"]["S"],
                image["created_at"]["S"],
                image["total"]["N"],
                image["exchange_rate"]["N"],
                image["quantity"]["N"],
                image["discount_rate"]["N"],
                _dumps(sorted(image["tags"]["SS"])),
                image["is_gift"]["BOOL"],
                _optional(get("gift_message"), "S"),
                _optional(get("coupon"), "S"),
                _optional(get("loyalty_points"), "N"),
                _dumps(_plain_map(image["address"]["M"])),
                _dumps(_plain_list(image["lines"]["L"])),
                image["signature"]["B"],
                image["version"]["N"],
                change["SequenceNumber"].zfill(40),
            )
        )
    return upserts, deletes


SIGNATURE = COLUMNS.index("signature")


@attrs.define
class RawWriter:
    """
    The hand-written SQL of one target table on one engine.
    """

    engine: sa.Engine
    table: sa.Table
    quote: Callable[[str], str] = attrs.field(init=False)
    name: str = attrs.field(init=False)
    names: list[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        preparer = self.engine.dialect.identifier_preparer
        self.quote = preparer.quote
        self.name = preparer.format_table(self.table)
        self.names = [self.quote(name) for name in COLUMNS]

    def stage_ddl(self, *, binary_as_text: bool, json_as_text: bool) -> str:
        """
        Return `CREATE TEMPORARY TABLE IF NOT EXISTS` for the staging table.
        """
        stage = sa.Table(
            "bench_stage",
            sa.MetaData(),
            *(
                sa.Column(
                    column.name,
                    sa.Text
                    if (json_as_text and column.name in JSON_COLUMNS)
                    or (binary_as_text and column.name == "signature")
                    else column.type,
                )
                for column in self.table.columns
            ),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DELETE ROWS",
        )
        return str(sa.schema.CreateTable(stage, if_not_exists=True).compile(dialect=self.engine.dialect))

    def delete_in(self, count: int) -> str:
        """
        Return `DELETE ... WHERE id IN (%s, ...)` for `count` keys.
        """
        return f"DELETE FROM {self.name} WHERE {self.quote('id')} IN ({', '.join(['%s'] * count)})"


class PostgresCeiling(RawWriter):
    """
    PostgreSQL: COPY into a temporary table, or executemany in pipeline mode.
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        names = self.names
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names[1:])
        selected = ", ".join(
            f"decode({self.quote(name)}, 'base64')" if name == "signature" else self.quote(name)
            for name in COLUMNS
        )
        self.ddl = self.stage_ddl(binary_as_text=True, json_as_text=False)
        self.copy_sql = f"COPY bench_stage ({', '.join(names)}) FROM STDIN"
        self.merge_sql = (
            f"INSERT INTO {self.name} ({', '.join(names)}) SELECT {selected} FROM bench_stage"
            f" ON CONFLICT ({self.quote('id')}) DO UPDATE SET {updates}"
        )
        placeholders = ", ".join("decode(%s, 'base64')" if name == "signature" else "%s" for name in COLUMNS)
        self.insert_sql = (
            f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({placeholders})"
            f" ON CONFLICT ({self.quote('id')}) DO UPDATE SET {updates}"
        )
        self.delete_sql = f"DELETE FROM {self.name} WHERE {self.quote('id')} = ANY(%s)"

    def copy(self, event: dict[str, Any]) -> None:
        upserts, deletes = raw_changes(event)
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(self.ddl)
            with cursor.copy(self.copy_sql) as copy:
                write = copy.write_row
                for row in upserts:
                    write(row)
            cursor.execute(self.merge_sql)
            if deletes:
                cursor.execute(self.delete_sql, (deletes,))
            connection.commit()
        finally:
            connection.close()

    def executemany(self, event: dict[str, Any]) -> None:
        upserts, deletes = raw_changes(event)
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.executemany(self.insert_sql, upserts)
            if deletes:
                cursor.execute(self.delete_sql, (deletes,))
            connection.commit()
        finally:
            connection.close()

    @classmethod
    def candidates(cls, engine: sa.Engine) -> dict[str, str]:
        """
        Return the candidate paths on `engine`: label to method name.
        """
        del engine
        return {"COPY + INSERT ... SELECT": "copy", "executemany (pipeline)": "executemany"}


def _tsv_field(value: Any) -> str:
    # LOAD DATA's default format: tab-separated, backslash escapes, \N for NULL
    # (https://mariadb.com/kb/en/load-data-infile/).
    if value is None:
        return "\\N"
    if value is True:
        return "1"
    if value is False:
        return "0"
    text: str = value
    if "\\" in text or "\t" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


class MySQLCeiling(RawWriter):
    """
    MySQL / MariaDB: LOAD DATA LOCAL INFILE into a temporary table, or executemany.
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        names = self.names
        updates = ", ".join(f"{n} = VALUES({n})" for n in names[1:])
        # MariaDB's JSON is LONGTEXT with a json_valid check: check once, in the target.
        self.ddl = self.stage_ddl(binary_as_text=False, json_as_text=True)
        loaded = ", ".join("@signature" if name == "signature" else self.quote(name) for name in COLUMNS)
        self.load_sql = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE bench_stage CHARACTER SET utf8mb4 ({loaded})"
            f" SET {self.quote('signature')} = FROM_BASE64(@signature)"
        )
        self.merge_sql = (
            f"INSERT INTO {self.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM bench_stage"
            f" ON DUPLICATE KEY UPDATE {updates}"
        )
        self.insert_sql = (
            f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
            f" ON DUPLICATE KEY UPDATE {updates}"
        )

    def load_data(self, event: dict[str, Any]) -> None:
        upserts, deletes = raw_changes(event)
        text = "".join("\t".join([_tsv_field(value) for value in row]) + "\n" for row in upserts)
        descriptor, path = tempfile.mkstemp(suffix=".tsv", prefix="dynastream-bench-")
        connection = self.engine.raw_connection()
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            cursor = connection.cursor()
            cursor.execute(self.ddl)
            cursor.execute(self.load_sql, (path,))
            cursor.execute(self.merge_sql)
            cursor.execute("DELETE FROM bench_stage")
            if deletes:
                cursor.execute(self.delete_in(len(deletes)), deletes)
            connection.commit()
        finally:
            connection.close()
            os.unlink(path)

    def executemany(self, event: dict[str, Any]) -> None:
        upserts, deletes = raw_changes(event)
        decode = binascii.a2b_base64
        rows = [(*row[:SIGNATURE], decode(row[SIGNATURE]), *row[SIGNATURE + 1 :]) for row in upserts]
        connection = self.engine.raw_connection()
        try:
            cursor: Any = connection.cursor()  # a PyMySQL cursor
            # Multi-row statements up to 8 MiB (the server takes 16 MiB packets).
            cursor.max_stmt_length = 8 * 1024 * 1024
            cursor.executemany(self.insert_sql, rows)
            if deletes:
                cursor.execute(self.delete_in(len(deletes)), deletes)
            connection.commit()
        finally:
            connection.close()

    @classmethod
    def candidates(cls, engine: sa.Engine) -> dict[str, str]:
        """
        Return the candidate paths on `engine`: label to method name.
        """
        found = {}
        if _local_infile_enabled(engine):
            found["LOAD DATA LOCAL INFILE + INSERT ... SELECT"] = "load_data"
        found["executemany multi-row INSERT"] = "executemany"
        return found


def _local_infile_enabled(engine: sa.Engine) -> bool:
    """
    Return whether the server takes `LOAD DATA LOCAL`, enabling it if allowed.
    """
    with engine.connect() as connection:
        if connection.exec_driver_sql("SELECT @@GLOBAL.local_infile").scalar():
            return True
        try:
            connection.exec_driver_sql("SET GLOBAL local_infile = 1")
        except sa.exc.DBAPIError:
            print("  (the server refuses LOAD DATA LOCAL INFILE and it cannot be enabled: skipped)")
            return False
    return True


# --- one engine ------------------------------------------------------------------------------


@attrs.frozen
class Strategy:
    """
    One way of applying a batch, and the table it writes.
    """

    label: str
    table: sa.Table
    apply: Callable[[dict[str, Any]], object]


@attrs.frozen
class Result:
    """
    Records per second of each strategy for one engine and batch size.
    """

    engine: str
    size: int
    full: float
    orm: float
    core: float
    ceiling: float
    ceiling_name: str
    candidates: dict[str, float]
    json_bytes: int  # the size of the batch's event JSON
    variants: dict[str, float] = attrs.field(factory=dict)  # the full path otherwise configured
    bulk_path: str = ""  # the bulk path the full path took


@attrs.frozen
class Memory:
    """
    The extra peak memory of one full-path batch against its JSON text.
    """

    engine: str
    size: int
    json_bytes: int
    peak_bytes: int


def engine_url(name: str) -> sa.URL:
    """
    Return the URL of engine `name`, from the environment or the default.
    """
    variable, default = ENGINES[name]
    return make_url(os.environ.get(variable) or default)


def _recreate_bench_schema(name: str, *, create: bool) -> None:
    admin = sa.create_engine(engine_url(name), poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as connection:
            if name == "postgresql":
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{BENCH_SCHEMA}" CASCADE')
                if create:
                    connection.exec_driver_sql(f'CREATE SCHEMA "{BENCH_SCHEMA}"')
            else:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{BENCH_SCHEMA}`")
                if create:
                    connection.exec_driver_sql(f"CREATE DATABASE `{BENCH_SCHEMA}` CHARACTER SET utf8mb4")
    finally:
        admin.dispose()


def bench_engine(name: str) -> sa.Engine:
    """
    Create (afresh) the benchmark's own schema or database and return its engine.

    The engine is shaped as dynastream's own (one pooled connection, pre-ping)
    and shared by all strategies.
    """
    base = engine_url(name)
    try:
        _recreate_bench_schema(name, create=True)
    except sa.exc.OperationalError as error:
        raise SystemExit(
            f"replication: cannot reach {name} at {base.render_as_string(hide_password=True)}"
            f" ({type(error.orig).__name__}); set {ENGINES[name][0]} or choose engines with --engines"
        ) from None
    if name == "postgresql":
        url = base.update_query_dict({"options": f"-csearch_path={BENCH_SCHEMA}"})
        connect_args: dict[str, Any] = {}
    else:
        url = base.set(database=BENCH_SCHEMA)
        connect_args = {"local_infile": True}
    return sa.create_engine(
        url, pool_size=1, max_overflow=0, pool_pre_ping=True, pool_recycle=600, connect_args=connect_args
    )


def server_version(engine: sa.Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return "PostgreSQL " + str(connection.exec_driver_sql("SHOW server_version").scalar())
        version = str(connection.exec_driver_sql("SELECT VERSION()").scalar())
        return version if "MariaDB" in version else f"MySQL {version}"


def strategies_for(engine: sa.Engine) -> list[Strategy]:
    """
    Create every strategy's table on `engine` and return the strategies: full, ORM, Core, candidates.
    """
    strategies = [
        Strategy("full", FULL_TABLE, full_path(engine, FULL_TABLE)),
        Strategy("orm", OrmOrder.__table__, lambda event: apply_orm(engine, event)),
        Strategy("core", CORE_TABLE, CoreUpsert(engine, CORE_TABLE).apply_event),
    ]
    strategies += [
        Strategy(label, VARIANT_TABLES[label], full_path(engine, VARIANT_TABLES[label], path, orjson=orjson))
        for label, (path, orjson) in FULL_VARIANTS.items()
    ]
    ceiling = PostgresCeiling if engine.dialect.name == "postgresql" else MySQLCeiling
    for position, (label, method) in enumerate(ceiling.candidates(engine).items()):
        name = f"bench_orders_raw_{position}"
        table = (
            Base.metadata.tables[name] if name in Base.metadata.tables else order_table(name, Base.metadata)
        )
        strategies.append(Strategy(label, table, getattr(ceiling(engine, table), method)))
    Base.metadata.create_all(engine, tables=[strategy.table for strategy in strategies])
    dynastream.App(engine=engine).create_tables()
    return strategies


def full_path(
    engine: sa.Engine, table: sa.Table, bulk_path: BulkPath | None = None, *, orjson: bool = True
) -> Callable[[dict[str, Any]], None]:
    """
    Return the full path into `table`: `App.lambda_handler` replicating `Orders`.

    `bulk_path` overrides `DYNASTREAM_BULK_PATH` (`None` keeps it, `auto` by
    default); without `orjson` the chunks are encoded by the standard library,
    as without the `speedups` extra.
    """
    from dependency_injector import providers

    from dynastream._replication import chunks

    app = dynastream.App(engine=engine)
    if bulk_path is not None:
        settings = attrs.evolve(app.container.settings(), bulk_path=bulk_path)
        app.container.settings.override(providers.Object(settings))
    app.replicate("Orders", into=table)

    def full(event: dict[str, Any]) -> None:
        kept = chunks.orjson
        if not orjson:  # the writers are built on the first batch, encoder and all
            chunks.orjson = None
        try:
            response = app.lambda_handler(event, None)
        finally:
            chunks.orjson = kept
        if response != {"batchItemFailures": []}:
            raise SystemExit(f"replication: the full path reported failures: {response}")

    return full


def taken_path(engine: sa.Engine, apply: Callable[[dict[str, Any]], object], batch: Batch) -> str:
    """
    Return the bulk path a full path takes on `engine`: staging when its upsert reads a staging table.
    """
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        apply(batch.event)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    staged = any("dynastream_stage_" in statement for statement in statements)
    if not staged:
        return "statements"
    return "staging (COPY)" if engine.dialect.name == "postgresql" else "staging (LOAD DATA LOCAL INFILE)"


def reset(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """
    Put `table` back to the pre-state (and forget its tombstones).

    SQLite, which has no TRUNCATE, runs it only in the tests' tiny batches.
    """
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(table.delete())
        else:
            connection.exec_driver_sql(
                f"TRUNCATE TABLE {engine.dialect.identifier_preparer.format_table(table)}"
            )
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
        connection.execute(tombstones.delete().where(tombstones.c.table_name == table.fullname))


def time_runs(
    strategies: list[Strategy],
    engine: sa.Engine,
    batch: Batch,
    pre_rows: list[dict[str, Any]],
    repeat: int,
) -> dict[str, float]:
    """
    Return the best time of each strategy; the pre-state is rebuilt before every run.

    Runs are interleaved (one of each strategy per round) so that a slow
    moment of the machine does not fall on one strategy only.
    """
    best = {strategy.label: float("inf") for strategy in strategies}
    for _ in range(repeat):
        for strategy in strategies:
            reset(engine, strategy.table, pre_rows)
            gc.collect()
            started = time.perf_counter()
            strategy.apply(batch.event)
            best[strategy.label] = min(best[strategy.label], time.perf_counter() - started)
    return best


def read_rows(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    """
    Return every row of `table` by key, JSON read back with exact numbers.
    """
    json_positions = [
        position for position, column in enumerate(table.columns) if isinstance(column.type, sa.JSON)
    ]
    selected = [
        sa.cast(column, sa.Text) if isinstance(column.type, sa.JSON) else column for column in table.columns
    ]
    with engine.connect() as connection:
        result = connection.execute(sa.select(*selected).order_by(table.c.id)).all()
    rows = []
    for row in result:
        values = list(row)
        for position in json_positions:
            values[position] = json.loads(values[position], parse_float=Decimal)
        rows.append(tuple(values))
    return rows


def check_same(strategies: list[Strategy], engine: sa.Engine, batch: Batch, *, what: str = "") -> None:
    """
    Fail loudly unless every strategy's table holds exactly the full path's rows.

    `what` names the batches in the message (the growth part's variants).
    """
    where = " ".join(part for part in ("replication:", engine.dialect.name, what, f"{batch.size:,}") if part)
    reference, *others = strategies
    names = [column.name for column in reference.table.columns]
    expected = read_rows(engine, reference.table)
    count = len(batch.pre_state) + batch.counts["INSERT"] - batch.counts["REMOVE"]
    if len(expected) != count:
        raise SystemExit(f"{where}: the full path left {len(expected)} rows, not {count}")
    for strategy in others:
        rows = read_rows(engine, strategy.table)
        if rows == expected:
            continue
        detail = f"{len(rows)} rows, not {len(expected)}"
        for mine, theirs in zip(rows, expected, strict=False):
            if mine != theirs:
                column = next(c for c, a, b in zip(names, mine, theirs, strict=True) if a != b)
                detail = f"first difference at id {theirs[0]!r}, column {column!r}"
                break
        raise SystemExit(f"{where}: {strategy.label!r} left other rows than the full path ({detail})")


def peak_memory(work: Callable[[], object]) -> int:
    """
    Return the peak of Python allocations made while `work` runs, in bytes.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def measure_engine(
    name: str, batches: list[Batch], pre_rows: dict[int, list[dict[str, Any]]], repeat: int, *, memory: bool
) -> tuple[list[Result], Memory | None, str]:
    """
    Measure every strategy on one engine; return its results, memory and server version.
    """
    engine = bench_engine(name)
    try:
        version = server_version(engine)
        strategies = strategies_for(engine)
        full, orm, core = strategies[:3]
        variants = strategies[3 : 3 + len(FULL_VARIANTS)]
        ceilings = strategies[3 + len(FULL_VARIANTS) :]

        # Warm every path once: a warm Lambda has built its mappers and statements.
        warm = make_batch(20, seed=7)
        warm_rows = pre_state_rows(warm)
        for strategy in strategies:
            reset(engine, strategy.table, warm_rows)
            strategy.apply(warm.event)
        reset(engine, full.table, warm_rows)
        path = taken_path(engine, full.apply, warm)

        results = []
        for batch in batches:
            best = time_runs(strategies, engine, batch, pre_rows[batch.size], repeat)
            check_same(strategies, engine, batch)
            rate = {label: batch.size / seconds for label, seconds in best.items()}
            candidates = {strategy.label: rate[strategy.label] for strategy in ceilings}
            fastest = max(candidates, key=candidates.__getitem__)
            results.append(
                Result(
                    name,
                    batch.size,
                    rate[full.label],
                    rate[orm.label],
                    rate[core.label],
                    rate[fastest],
                    fastest,
                    candidates,
                    batch.json_bytes,
                    {strategy.label: rate[strategy.label] for strategy in variants},
                    path,
                )
            )

        peak = None
        if memory and batches:
            batch = batches[-1]
            reset(engine, full.table, pre_rows[batch.size])
            peak = Memory(name, batch.size, batch.json_bytes, peak_memory(lambda: full.apply(batch.event)))
        return results, peak, version
    finally:
        engine.dispose()
        with contextlib.suppress(sa.exc.DBAPIError):
            _recreate_bench_schema(name, create=False)


def pre_state_rows(batch: Batch, row: RowBuilder | None = None) -> list[dict[str, Any]]:
    """
    Return the rows of the batch's pre-state, built the plain way (by `row`, `plain_row` by default).
    """
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    build = plain_row if row is None else row
    return [build(image, str(sequence), deserializer) for image, sequence in batch.pre_state]


# --- the report ------------------------------------------------------------------------------


def _verdict(value: float, target: float, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return f"{'met' if met else 'NOT met'} ({value:.2f}x)"


def report(results: list[Result], memories: list[Memory], repeat: int, versions: dict[str, str]) -> None:
    print(
        "replication: mixed batches (60% INSERT, 30% MODIFY, 10% REMOVE; 15-18 attributes),"
        f" event dict to COMMIT, best of {repeat}"
    )
    for name, version in versions.items():
        print(f"  {name}: {version}")
    print(
        f"  {'engine':<10} {'batch':>7} {'full rec/s':>11} {'(a) ORM':>9} {'(b) Core':>9} {'(c) ceiling':>12}"
        f" {'full/(a)':>9} {'full/(b)':>9} {'full/(c)':>9}  ceiling"
    )
    for r in results:
        print(
            f"  {r.engine:<10} {r.size:>7,} {r.full:>11,.0f} {r.orm:>9,.0f} {r.core:>9,.0f}"
            f" {r.ceiling:>12,.0f}"
            f" {r.full / r.orm:>8.1f}x {r.full / r.core:>8.2f}x {r.full / r.ceiling:>8.2f}x  {r.ceiling_name}"
        )
    print("  the full path's bulk path (DYNASTREAM_BULK_PATH=auto), and the full path otherwise configured:")
    for r in results:
        listed = ", ".join(
            f"{label} {rate:,.0f} rec/s ({rate / r.core:.2f}x Core)" for label, rate in r.variants.items()
        )
        print(f"    {r.engine:<10} {r.size:>7,}: {r.bulk_path}; {listed}")
    print("  ceiling candidates (records/s):")
    for r in results:
        listed = ", ".join(f"{label} {rate:,.0f}" for label, rate in r.candidates.items())
        print(f"    {r.engine:<10} {r.size:>7,}: {listed}")
    for m in memories:
        ratio = m.peak_bytes / m.json_bytes
        print(
            f"  memory, {m.engine} {m.size:,} records: event JSON {m.json_bytes / 1e6:.1f} MB;"
            f" extra peak during lambda_handler {m.peak_bytes / 1e6:.1f} MB (tracemalloc);"
            f" <= {TARGET_MEMORY:g}x the JSON {_verdict(ratio, TARGET_MEMORY, at_most=True)}"
        )
    judged = [r for r in results if r.size in TARGET_SIZES]
    if judged:
        print(f"  targets for batches of {' and '.join(f'{s:,}' for s in TARGET_SIZES)} records:")
    for r in judged:
        print(
            f"    {r.engine:<10} {r.size:>7,}:"
            f" full >= {TARGET_OVER_CORE:g}x Core {_verdict(r.full / r.core, TARGET_OVER_CORE)};"
            f" full >= {TARGET_OF_CEILING:g}x ceiling {_verdict(r.full / r.ceiling, TARGET_OF_CEILING)};"
            f" full >= {TARGET_OVER_ORM:g}x ORM {_verdict(r.full / r.orm, TARGET_OVER_ORM)}"
        )


def run(
    *, quick: bool = False, engines: Sequence[str] = tuple(ENGINES), sizes: Sequence[int] = SIZES
) -> list[Result]:
    """
    Measure every strategy on every engine and batch size, print the report and return the results.

    The growth part (`benchmarks.growth`) reuses the results.
    """
    repeat = 1 if quick else 3
    batches = [make_batch(size) for size in sorted(sizes)]
    pre_rows = {batch.size: pre_state_rows(batch) for batch in batches}
    results: list[Result] = []
    memories: list[Memory] = []
    versions: dict[str, str] = {}
    for position, name in enumerate(engines):
        # tracemalloc slows the path several times: --quick measures memory on one engine only.
        engine_results, memory, version = measure_engine(
            name, batches, pre_rows, repeat, memory=not quick or position == 0
        )
        results.extend(engine_results)
        memories.extend([memory] if memory is not None else [])
        versions[name] = version
    report(results, memories, repeat, versions)
    return results
