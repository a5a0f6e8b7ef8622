"""
Staging tables: where the staging bulk path loads a chunk's rows before the guarded upsert.

Each shape of written rows (a replicated table, with or without its
soft-delete column) has one temporary table per DBAPI connection, named after
a digest of its definition, so that neither a table name nor an attribute
name ever becomes part of its name. It is created by the connection's first
staged chunk (`CREATE TEMPORARY TABLE IF NOT EXISTS`, the staging path's only
DDL) and remembered in the connection's `info`, which the pool keeps with the
DBAPI connection and empties when it replaces it: a new connection creates its
own, and no later batch issues the DDL again.

On PostgreSQL the creation is part of the transaction, and undone with it:
until the transaction commits, a rollback (to a savepoint, or of the whole
transaction) forgets the table, and the next chunk creates it again.
https://www.postgresql.org/docs/current/sql-createtable.html
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["driver_error", "ensure_stage", "stage_name"]

# The connection's `info` entry: stage name -> True once its creation is
# committed (or cannot be undone), else the Connection whose transaction
# created it.
_STAGES = "dynastream_stages"


def stage_name(definition: str) -> str:
    """
    Return the name of the staging table `definition` describes (its columns and options).

    A digest of the definition: a table whose shape changes gets a table of
    its own, and no identifier of the user's reaches the name.
    """
    return "dynastream_stage_" + hashlib.blake2b(definition.encode(), digest_size=8).hexdigest()


def ensure_stage(connection: Connection, name: str, ddl: str, *, transactional: bool) -> None:
    """
    Run `ddl`, which creates staging table `name`, unless this connection already has it.

    Args:
        connection: The batch's connection.
        name: The staging table's name.
        ddl: Its `CREATE TEMPORARY TABLE IF NOT EXISTS` statement.
        transactional: Whether a rollback undoes the creation (PostgreSQL).
    """
    stages: dict[str, Any] = connection.info.setdefault(_STAGES, {})
    state = stages.get(name)
    if state is True or state is connection:
        return
    connection.exec_driver_sql(ddl)
    if not transactional:
        stages[name] = True
        return
    stages[name] = connection
    for event, listener in _LISTENERS:
        if not sa.event.contains(connection, event, listener):
            sa.event.listen(connection, event, listener)


def _recorded(connection: Connection) -> dict[str, Any]:
    # An invalidated connection has no `info` to ask (SQLAlchemy refuses): its DBAPI
    # connection is discarded, and the pool empties the `info` of the one replacing it.
    return {} if connection.invalidated else connection.info.get(_STAGES, {})


def _confirm(connection: Connection) -> None:
    stages = _recorded(connection)
    for name, state in list(stages.items()):
        if state is connection:
            stages[name] = True


def _forget(connection: Connection, *_: Any) -> None:
    # Any rollback forgets the tables this transaction created, even a rollback to
    # a savepoint taken after the creation: at worst the DDL runs again, a no-op.
    stages = _recorded(connection)
    for name, state in list(stages.items()):
        if state is connection:
            del stages[name]


# The COMMIT event comes before the COMMIT itself; a COMMIT that fails
# invalidates the connection, and the pool then empties its `info`.
_LISTENERS = (("commit", _confirm), ("rollback", _forget), ("rollback_savepoint", _forget))


def driver_error(connection: Connection, error: Exception, statement: str) -> sa.exc.StatementError:
    """
    Return a driver's `error`, raised outside SQLAlchemy's `execute`, as SQLAlchemy would raise it.

    The same class SQLAlchemy would wrap it in (so that its classification
    as transient, lost connection or record error holds), with the parameters
    hidden; a lost connection is invalidated first, so the pool never hands
    it out again.
    """
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    lost = dialect.is_disconnect(error, dbapi_connection, None)  # type: ignore[arg-type]
    if lost:
        connection.invalidate(error)
    return sa.exc.DBAPIError.instance(
        statement,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
