"""
`App`: what an application creates in its `handler.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs
from dependency_injector import providers

from ._autowire import build_handler, build_mapper, handler_provider, mapper_provider
from ._dispatch import Dispatcher
from ._records import RecordSource
from ._registry import PoisonPolicy, Registration, Registry, qualified_name
from ._settings import Settings, requested_bulk_path
from .containers import Container
from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import timedelta

    import sqlalchemy as sa
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine import Dialect

    from ._records import StreamRecord
    from ._replication.handler import DeletePolicy, TtlPolicy
    from ._results import BatchResult
    from ._settings import SourceName
    from ._uow import UnitOfWork
    from .typing import Item, Mapper, StreamEventHandler

__all__ = ["App"]

HandlerT = TypeVar(
    "HandlerT",
    bound="type[StreamEventHandler[Any]] | Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None]",
)


def _table_columns(target: Any) -> set[str]:
    table = getattr(target, "__table__", target)
    return {column.name for column in getattr(table, "columns", ())}


class App:
    """
    A stream-processing application: its handlers, container and Lambda entry.

    Args:
        database_url: SQLAlchemy URL of the target database; overrides
            `DYNASTREAM_DATABASE_URL`.
        engine: An engine to use instead of building one (tests, or sharing
            an engine the application already has). Build it with
            `hide_parameters=True`, as dynastream does, so that item values
            stay out of SQLAlchemy's logs and errors.
        container: A container to use instead of a new `Container`.

    Examples:
        >>> import dynastream
        >>> app = dynastream.App(database_url="sqlite://")
        >>> @app.handler("Orders")
        ... def record_orders(records, uow):
        ...     ...
        >>> lambda_handler = app.lambda_handler
        >>> lambda_handler({"Records": []}, None)
        {'batchItemFailures': []}
    """

    def __init__(
        self,
        *,
        database_url: str | None = None,
        engine: Engine | None = None,
        container: Container | None = None,
    ) -> None:
        self.container: Container = Container() if container is None else container
        if database_url is not None:
            self.container.settings.override(
                providers.Singleton(lambda: attrs.evolve(Settings.from_env(), database_url=database_url))
            )
        if engine is not None:
            self.container.engine.override(providers.Object(engine))
        self._registry = Registry()
        self._dispatcher = Dispatcher(self._registry, self.container)

    def handler(
        self,
        table_name: str,
        *,
        mapper: Mapper[Any] | type[Any] | None = None,
        exactly_once: bool | str = False,
        on_poison: PoisonPolicy | None = None,
        keep_raw: bool = False,
    ) -> Callable[[HandlerT], HandlerT]:
        """
        Register the decorated handler class or function for `table_name`.

        Several handlers may serve one table: they run in registration order,
        each receiving all of the table's records of the batch in stream order.

        Args:
            table_name: The DynamoDB table (as named in `eventSourceARN`).
            mapper: Turns each image into the handler's type: a callable
                `(item) -> T`, or a class whose instances are such callables
                (built by the container, like handlers). Without one, handlers
                receive deserialized items (`dict[str, Any]`).
            exactly_once: Pass each record to the handler once, however often
                it is delivered: the `eventID`s it applied are kept in the
                `dynastream_applied_events` ledger, written in the same
                transaction as the handler's own writes (create it with
                `App.create_tables`). `True` keys the ledger by the handler's
                qualified name; a string names the ledger explicitly (keep it
                when you rename the handler).
            on_poison: What happens to a record the handler cannot apply:
                `"report"` it in `batchItemFailures` (the batch stops there;
                the event source mapping retries it), or `"quarantine"` it:
                write it to `dynastream_quarantine` in the same transaction and
                go on with the next record, so one bad record does not hold up
                its shard. A table quarantines only when all its handlers say so.
                By default, as `DYNASTREAM_ON_POISON` says (`"report"` unless
                set; see `dynastream.Settings`).
            keep_raw: Keep a quarantined record's raw JSON (it may hold
                personal data; without it, replaying it means reading the stream
                again).

        Examples:
            >>> import dynastream
            >>> app = dynastream.App(database_url="sqlite://")
            >>> @app.handler("Payments", mapper=lambda item: item["amount"])
            ... class PaymentsHandler(dynastream.StreamEventHandler[object]):
            ...     def handle(self, records, uow) -> None: ...
        """

        def register(handler: HandlerT) -> HandlerT:
            self.register(
                table_name,
                handler,
                mapper=mapper,
                exactly_once=exactly_once,
                on_poison=on_poison,
                keep_raw=keep_raw,
            )
            return handler

        return register

    def register(
        self,
        table_name: str,
        handler: type[StreamEventHandler[Any]] | Callable[[Sequence[StreamRecord[Any]], UnitOfWork], None],
        *,
        mapper: Mapper[Any] | type[Any] | None = None,
        exactly_once: bool | str = False,
        on_poison: PoisonPolicy | None = None,
        keep_raw: bool = False,
    ) -> Registration:
        """
        Register `handler` for `table_name` (what `App.handler` does).

        Raises:
            ConfigurationError: The handler or mapper is not usable.
        """
        ledger_name = None
        if exactly_once:
            ledger_name = exactly_once if isinstance(exactly_once, str) else qualified_name(handler)
        return self._registry.add(
            table_name,
            handler,
            mapper,
            ledger_name=ledger_name,
            on_poison=on_poison,
            keep_raw=keep_raw,
            handler_provider=handler_provider(handler, self.container),
            mapper_provider=mapper_provider(mapper, self.container),
        )

    def replicate(
        self,
        table_name: str,
        *,
        into: sa.Table | type[Any],
        mapper: Callable[[Item], Mapping[str, Any]] | None = None,
        renames: Mapping[str, str] | None = None,
        naming: Literal["exact", "snake_case"] = "exact",
        extra: str | None = None,
        deletes: DeletePolicy = "delete",
        ttl: TtlPolicy | None = None,
        sequence_column: str = "dynastream_sequence",
        deleted_column: str = "dynastream_deleted_at",
        on_poison: PoisonPolicy | None = None,
        keep_raw: bool = False,
        source: SourceName | None = None,
        tombstone_retention: timedelta | None = None,
    ) -> Registration:
        """
        Mirror the DynamoDB table `table_name` into a SQL table, idempotently.

        Each item becomes one row: attributes map to columns by name (see
        `dynastream.RowMapper` for the exact conversions), the last change of
        each item in a batch wins, and a change is written only when its
        sequence number is greater than the row's, so redelivered, replayed or
        out-of-order batches leave the table equal to the source. A REMOVE
        deletes the row (or marks it, with `deletes="soft_delete"`) and leaves a
        tombstone so that a late, older change cannot bring it back.

        The table needs `dynastream.sequence_column()` (and
        `dynastream.deleted_column()` for soft deletes), and dynastream's own
        tables must exist (`App.create_tables`).

        Args:
            table_name: The DynamoDB table.
            into: The target: a `sqlalchemy.Table` or a declarative model.
            mapper: A custom mapper from an item to a row (column name to
                value) for business logic; keys still map by name.
            renames: Attribute name to column name, where they differ.
            naming: `"snake_case"` maps `orderId` to `order_id`.
            extra: A JSON column to keep attributes that have no column in;
                by default they are ignored.
            deletes: What a REMOVE does: `"delete"` or `"soft_delete"`.
            ttl: What a time-to-live expiry does: `"delete"`, `"soft_delete"`
                or `"ignore"` (keep the row); by default the same as `deletes`.
            sequence_column: The column keeping each row's sequence number.
            deleted_column: The soft-delete column.
            on_poison: `"report"` a record that cannot be replicated (a value
                that does not fit its column...), or `"quarantine"` it and go
                on; by default as `DYNASTREAM_ON_POISON` says; see `App.handler`.
            keep_raw: Keep a quarantined record's raw JSON.
            source: Where the table's changes come from: `"dynamodb"`
                (DynamoDB Streams) or `"kinesis"` (Kinesis Data Streams for
                DynamoDB); by default as `DYNASTREAM_SOURCE` says. A record
                of the other source fails its batch.
            tombstone_retention: How long a deleted item's tombstone is kept
                (48 hours by default, twice DynamoDB Streams' retention). From
                Kinesis Data Streams, keep it longer than the event source
                mapping's `MaximumRecordAgeInSeconds`.

        Returns:
            The registration.

        Raises:
            ConfigurationError: The table lacks a required column, or a rename
                or `extra` names a column that does not fit.

        Examples:
            >>> import sqlalchemy as sa, dynastream
            >>> orders = sa.Table(
            ...     "orders", sa.MetaData(),
            ...     sa.Column("order_id", dynastream.ExactString(64), primary_key=True),
            ...     sa.Column("total", sa.Numeric(12, 2)),
            ...     dynastream.sequence_column(),
            ... )
            >>> app = dynastream.App(database_url="sqlite://")
            >>> app.replicate("Orders", into=orders, renames={"orderId": "order_id"})
            Registration(table_name='Orders', ...)
        """
        from ._replication.handler import ReplicationHandler
        from ._replication.mapping import RowMapper

        columns = _table_columns(into)
        excluded = tuple(name for name in (sequence_column, deleted_column) if name in columns)

        def row_mapper_for(dialect: Dialect | None, charsets: Mapping[str, str] | None = None) -> RowMapper:
            return RowMapper(
                into,
                renames=renames,
                naming=naming,
                extra=extra,
                exclude=excluded,
                dialect=dialect,
                charsets=charsets,
            )

        handler = ReplicationHandler(
            table_name,
            row_mapper_for(None),
            row_mapper_for=row_mapper_for,
            mapper=mapper,
            sequence_column=sequence_column,
            deletes=deletes,
            ttl=ttl,
            deleted_column=deleted_column,
            clock=lambda: self.container.clock()(),  # noqa: PLW0108 - resolved per call, so overriding the clock provider works
            bulk_path=lambda: requested_bulk_path(self.container.settings()),  # per batch, as the clock
            source=lambda: RecordSource(source or self.container.settings().source),
            **({} if tombstone_retention is None else {"tombstone_retention": tombstone_retention}),
        )
        return self._registry.add(
            table_name,
            handler,
            None,
            on_poison=on_poison,
            keep_raw=keep_raw,
            handler_provider=handler_provider(handler, self.container),
            mapper_provider=mapper_provider(None, self.container),
        )

    def create_tables(self) -> None:
        """
        Create dynastream's own tables in the configured database, if missing.

        They are the tombstones of replicated tables and the applied-events
        ledger of exactly-once handlers.

        Teams that manage schema with migrations can copy the DDL instead
        (`dynastream ddl`).
        """
        from .schema import metadata

        metadata.create_all(self.container.engine())

    @property
    def registrations(self) -> tuple[Registration, ...]:
        """
        Every registration, in the order handlers run.
        """
        return self._registry.registrations

    def check(self, *, database: bool = False) -> None:
        """
        Build every handler and mapper once, so wiring mistakes surface early.

        Call it at start-up or in a test rather than wait for the first batch.

        Args:
            database: Also connect and check each replicated table against the
                database, as the first batch would: its text key columns must
                compare exactly (see "Keys" in the replication guide).

        Raises:
            ConfigurationError: Handlers or mappers need providers the
                container does not have (every such parameter is named, with
                its handler or mapper), a DynamoDB table or a SQL table is
                replicated from both DynamoDB Streams and Kinesis Data Streams,
                or (with `database=True`) a replicated table's key columns do
                not compare text exactly, or a table replicated from DynamoDB
                Streams holds rows written from Kinesis Data Streams.
        """
        from ._replication.handler import ReplicationHandler
        from ._replication.ordering import source_conflicts

        handlers = []
        problems = []
        for registration in self._registry.registrations:
            try:
                handlers.append(build_handler(registration, self.container))
            except ConfigurationError as error:
                problems.append(str(error))
            try:
                build_mapper(registration)
            except ConfigurationError as error:
                problems.append(str(error))
        problems += source_conflicts([h for h in handlers if isinstance(h, ReplicationHandler)])
        if problems:
            raise ConfigurationError("; ".join(problems))
        if not database:
            return
        with self.container.engine().connect() as connection:
            for handler in handlers:
                if isinstance(handler, ReplicationHandler):
                    handler.check_table(connection)

    def dispatch(
        self,
        event: Any,
        context: Any = None,
        *,
        table_name: str | None = None,
        before_commit: Callable[[Connection, int], None] | None = None,
    ) -> BatchResult:
        """
        Apply one event in one transaction and say what happened.

        Records that cannot be applied (malformed, unrouted, failing to map or
        failing in a handler) are reported in the result, not raised: the first
        one stops the batch, the records before it are committed.

        Args:
            event: Any shape `dynastream.parse_event` reads.
            context: The Lambda context, when there is one.
            table_name: The table the records belong to, for records that do
                not carry `eventSourceARN` (a `GetRecords` response).
            before_commit: Called as `before_commit(connection, settled)` in
                the batch's transaction just before COMMIT, once the first
                `settled` records are applied or quarantined: a reader of the
                stream writes its checkpoint there, so that data and checkpoint
                commit together (`dynastream.StreamRunner` does). If it raises,
                the transaction is rolled back and the error propagates.

        Returns:
            What was applied, and the first failure if any.

        Raises:
            MalformedEventError: The event cannot be read as a whole, or a
                malformed record carries no readable sequence number (nothing
                is applied; the whole batch is delivered again).
            ConfigurationError: A handler or mapper cannot be built, or no
                database is configured.
            UnitOfWorkError: A handler committed, rolled back or closed the
                session; the whole batch is rolled back.
            CommitOutcomeUnknownError: The connection failed during COMMIT; the
                batch is not known to be committed, so the invocation fails and
                the batch is delivered again.
            sqlalchemy.exc.DBAPIError: A transient error (deadlock, lost
                connection, read-only server) persisted through every retry.
            DynastreamError: A connection broke in a way the driver did not
                report (its ROLLBACK failed too), through every retry.
        """
        return self._dispatcher.dispatch(event, context, table_name=table_name, before_commit=before_commit)

    def lambda_handler(self, event: Any, context: Any) -> dict[str, Any]:
        """
        The AWS Lambda entry point: `lambda_handler = app.lambda_handler`.

        Returns:
            `{"batchItemFailures": [...]}`, for an event source mapping with
            `FunctionResponseTypes: [ReportBatchItemFailures]`.
        """
        return self._dispatcher.dispatch(event, context).response()
