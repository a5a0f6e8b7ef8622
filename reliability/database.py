"""
The suite's databases: their URLs, the replicated table, and what the checks read back.
"""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

import dynastream

from .faults import patiently

URLS = {
    "sqlite": None,
    "postgresql": os.environ.get(
        "DYNASTREAM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("DYNASTREAM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
TABLE = "Items"  # the DynamoDB table

metadata = sa.MetaData()
items = sa.Table(
    "reliability_items",
    metadata,
    sa.Column("pk", dynastream.ExactString(20), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    dynastream.sequence_column(),
)


def rows(reader: sa.Engine) -> dict[str, tuple[str, int]]:
    """
    Return each row's stored sequence number (as stored: text) and version, by key.
    """

    def read() -> dict[str, tuple[str, int]]:
        with reader.connect() as connection:
            selected = connection.execute(sa.select(items))
            return {r.pk: (r.dynastream_sequence, r.version) for r in selected}

    return patiently(read)


def tombstones(reader: sa.Engine) -> dict[str, str]:
    """
    Return the stored sequence number of each deleted item's tombstone, by `item_key`.
    """
    table = dynastream.schema.tombstones

    def read() -> dict[str, str]:
        with reader.connect() as connection:
            selected = sa.select(table.c.item_key, table.c.sequence_number).where(
                table.c.table_name == items.name
            )
            return {row.item_key: row.sequence_number for row in connection.execute(selected)}

    return patiently(read)


def quarantined(reader: sa.Engine) -> list[str]:
    """
    Return the eventIDs of the quarantined records of the table, one per quarantine row.
    """
    table = dynastream.schema.quarantine

    def read() -> list[str]:
        with reader.connect() as connection:
            selected = sa.select(table.c.event_id).where(table.c.table_name == TABLE)
            return list(connection.execute(selected).scalars())

    return patiently(read)


def open_transactions(admin: sa.Engine | None) -> int:
    """
    Count the server's open transactions but the caller's, waiting up to 10 s for them to end.

    A killed worker's session ends when the server notices its socket closed.
    """
    if admin is None:
        return 0
    if admin.dialect.name == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
    else:
        # Only this database's sessions (and sessionless transactions): the server may be shared.
        query = (
            "SELECT count(*) FROM information_schema.innodb_trx t"
            " LEFT JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
            " WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND (p.id IS NULL OR p.db = DATABASE())"
        )
    deadline = time.monotonic() + 10
    while True:
        with admin.connect() as connection:
            count = int(connection.exec_driver_sql(query).scalar() or 0)
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.1)
