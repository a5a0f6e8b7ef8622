"""
The unit of work: the batch's transaction, as a handler sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._summary import Outcomes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect
    from sqlalchemy.orm import Session

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """
    The transaction a handler writes into.

    The dispatcher opens one database transaction per invocation and gives each
    handler call a `UnitOfWork`. Handlers write through `session` (ORM) or
    `connection()` (Core); they never commit, roll back or close either.

    Attributes:
        session: An ORM session joined to the batch's transaction. The
            dispatcher flushes it after the handlers have run, before it
            commits.

    Examples:
        >>> def handle(self, records, uow):  # doctest: +SKIP
        ...     uow.session.add_all(OrderRow.from_item(r.image) for r in records)
    """

    __slots__ = ("_outcomes", "session")

    def __init__(self, session: Session, *, outcomes: Outcomes | None = None) -> None:
        self.session = session
        # Where `report_outcomes` counts go: the dispatcher gives each handler
        # call its own; a unit of work made elsewhere (a test's) has none.
        self._outcomes = outcomes

    def connection(self) -> Connection:
        """
        Return the Core connection of the batch's transaction.
        """
        return self.session.connection()

    def report_outcomes(
        self,
        *,
        applied: int = 0,
        stale_skipped: int = 0,
        deleted: int = 0,
        tied: int = 0,
        unmapped: Mapping[str, int] | None = None,
    ) -> None:
        """
        Say what the handler did with its records, for the batch summary and metrics.

        Built-in replication and exactly-once handlers report how many records
        they applied, skipped as stale (already applied, or older than the
        row) and deleted. A handler that reports nothing has all its records
        counted as applied. When several handlers serve a table, the first
        one that reports gives the table's counts. Outside the dispatcher
        (a unit of work made in a test) nothing is counted.

        Args:
            applied: Records applied.
            stale_skipped: Records skipped because the database already held
                them or something newer.
            deleted: Records that deleted (or marked deleted) a row.
            tied: Records (also counted above) whose order against another
                change of their item could not be told from their creation
                time (Kinesis Data Streams).
            unmapped: Attribute name to the number of records whose image
                carried that attribute with no column to take it (built-in
                replication reports these). Names and counts only: never
                values, which may be personal data.
        """
        if self._outcomes is not None:
            self._outcomes.add(
                Outcomes(applied, stale_skipped, deleted, tied=tied, unmapped=dict(unmapped or {}))
            )
            self._outcomes.reported = True

    @property
    def dialect(self) -> Dialect:
        """
        The database dialect.

        `uow.dialect.name` is `"postgresql"`, `"mysql"`, `"sqlite"`, ...
        """
        return self.session.connection().dialect

    def __repr__(self) -> str:
        return f"<UnitOfWork {self.dialect.name}>"
