"""
Settings: what a deployment configures, read from `DYNASTREAM_*` variables.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Settings"]

_PREFIX = "DYNASTREAM_"


def _hide_password(url: str | None) -> str:
    if url is None:
        return "None"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return repr(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return "'<unparseable URL>'"


@attrs.frozen
class Settings:
    """
    How dynastream connects and behaves.

    Explicit arguments win over the environment: `Settings.from_env()` reads
    the `DYNASTREAM_*` variables, and `App(database_url=...)` overrides them.

    Attributes:
        database_url: SQLAlchemy URL of the target database
            (`DYNASTREAM_DATABASE_URL`), for example
            `postgresql+psycopg://user@host/db` or `mysql+pymysql://user@host/db`.
            Its password never appears in a repr or a log.
    """

    database_url: str | None = attrs.field(default=None, repr=_hide_password)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """
        Read settings from `DYNASTREAM_*` environment variables.

        Args:
            environ: The variables to read; `os.environ` when omitted.
        """
        env = os.environ if environ is None else environ
        return cls(database_url=env.get(_PREFIX + "DATABASE_URL") or None)
