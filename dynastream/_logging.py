"""
Logging: the `dynastream` logger, JSON lines, and exceptions as fields that hold no data.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from dynastream._settings import Settings

__all__ = ["LOGGER_NAME", "JsonFormatter", "configure_logging", "dynastream_logger", "exception_fields"]

LOGGER_NAME = "dynastream"


def dynastream_logger(settings: Settings) -> logging.Logger:
    """
    Return the `dynastream` logger, at the level the settings give.

    A level the application set on the logger itself wins: the settings'
    level applies only to a logger nobody configured.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if logger.level == logging.NOTSET:
        logger.setLevel(settings.log_level)
    return logger


# What every LogRecord has: anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """
    Formats log records as one JSON object per line.

    Keys: `timestamp` (ISO 8601, UTC), `level`, `logger`, `message`, then
    every field passed with `extra=` (dynastream's summary line passes its
    counts this way). An exception is given by its type name and stack; its
    message only when it is one of dynastream's (which never quote values),
    since other exceptions' messages may hold item values.

    Examples:
        >>> import logging, dynastream
        >>> handler = logging.StreamHandler()
        >>> handler.setFormatter(dynastream.JsonFormatter())
    """

    def format(self, record: logging.LogRecord) -> str:
        """
        Return `record` as a JSON line.
        """
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in document:
                document[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            document.update(exception_fields(record.exc_info[1]))
        return json.dumps(document, default=str, ensure_ascii=False)


def exception_fields(error: BaseException) -> dict[str, Any]:
    """
    Return an exception as log fields that hold no data: its chain of types and its stack.

    A message is kept only for dynastream's own errors, which never quote
    values; the stack is file, line, function and source line, code only.
    """
    import traceback

    from dynastream.exceptions import DynastreamError

    chain: list[str] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 10:
        described = type(current).__name__
        if isinstance(current, DynastreamError):
            described += f": {current}"
        chain.append(described)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    stack = traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__), capture_locals=False)
    return {"exception": " <- ".join(chain), "stack": "".join(stack.format())}


def _is_powertools(handler: logging.Handler) -> bool:
    # Without importing Powertools: its formatters derive from BasePowertoolsFormatter.
    formatter = handler.formatter
    return formatter is not None and any(
        cls.__name__ == "BasePowertoolsFormatter" for cls in type(formatter).__mro__
    )


def configure_logging(
    level: int | str | None = None, *, stream: TextIO | None = None, force: bool = False
) -> logging.Logger:
    """
    Send dynastream's logs out as JSON lines, or into Powertools Logger.

    Call it once, in `handler.py`. It sets the `dynastream` logger's level,
    then:

    - if the `dynastream` logger already has handlers (for example from
      Powertools' `copy_config_to_registered_loggers`), it leaves them;
    - if the root logger has a Powertools handler, dynastream's records
      propagate to it, and Powertools prints the summary's fields as its own
      keys;
    - otherwise it adds a handler writing `JsonFormatter` lines to `stream`
      and stops propagation, so that Lambda's own handler on the root logger
      does not print each line a second time.

    Calling it again replaces the handler it added rather than adding another.

    Args:
        level: The level, for example `"INFO"` or `logging.DEBUG`;
            `DYNASTREAM_LOG_LEVEL` (default INFO) when omitted.
        stream: Where the JSON lines go; standard output when omitted.
        force: Add the JSON handler even if the logger has handlers or the
            root logger is Powertools'.

    Returns:
        The `dynastream` logger.

    Examples:
        >>> import dynastream
        >>> logger = dynastream.configure_logging("INFO")
    """
    import os

    logger = logging.getLogger(LOGGER_NAME)
    chosen = level if level is not None else os.environ.get("DYNASTREAM_LOG_LEVEL", "").strip() or "INFO"
    logger.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    for handler in list(logger.handlers):
        if getattr(handler, "_dynastream_json", False):
            logger.removeHandler(handler)
    if not force and (logger.handlers or any(_is_powertools(h) for h in logging.getLogger().handlers)):
        return logger
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    handler._dynastream_json = True  # type: ignore[attr-defined]  # marks the handler this function owns
    logger.addHandler(handler)
    logger.propagate = False
    return logger
