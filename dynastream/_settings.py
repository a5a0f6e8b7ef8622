"""
Settings: what a deployment configures, read from `DYNASTREAM_*` variables.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import attrs

from .exceptions import ConfigurationError

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
        time_margin_seconds: Work is not started, nor retried, nor another
            bisection step taken, when less than this much of the Lambda
            invocation's time is left (`DYNASTREAM_TIME_MARGIN_SECONDS`,
            default 10): the records not applied are reported instead, and
            Lambda's timeout never cuts a transaction short.
    """

    database_url: str | None = attrs.field(default=None, repr=_hide_password)
    time_margin_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """
        Read settings from `DYNASTREAM_*` environment variables.

        Args:
            environ: The variables to read; `os.environ` when omitted.
        """
        env = os.environ if environ is None else environ
        margin = env.get(_PREFIX + "TIME_MARGIN_SECONDS")
        try:
            time_margin = 10.0 if not margin else float(margin)
        except ValueError:
            raise ConfigurationError(
                f"{_PREFIX}TIME_MARGIN_SECONDS must be a number of seconds, got {margin!r}"
            ) from None
        return cls(database_url=env.get(_PREFIX + "DATABASE_URL") or None, time_margin_seconds=time_margin)
