"""
The unit of work: the batch's transaction, as a handler sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine import Dialect
    from sqlalchemy.orm import Session

    from ._summary import Outcomes

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

    def __init__(self, session: Session) -> None:
        self.session = session
        # Where built-in handlers report their counts (see _summary); the
        # dispatcher sets one per handler call.
        self._outcomes: Outcomes | None = None

    def connection(self) -> Connection:
        """
        Return the Core connection of the batch's transaction.
        """
        return self.session.connection()

    @property
    def dialect(self) -> Dialect:
        """
        The database dialect.

        `uow.dialect.name` is `"postgresql"`, `"mysql"`, `"sqlite"`, ...
        """
        return self.session.connection().dialect

    def __repr__(self) -> str:
        return f"<UnitOfWork {self.dialect.name}>"
