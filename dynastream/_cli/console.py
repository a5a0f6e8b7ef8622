"""
What the long-running commands show on a terminal, and how they stop.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["StatusLine", "rate", "stop_on_signals", "thousands"]


class StatusLine:
    """
    One status line on stderr.

    It is redrawn in place on a terminal, and printed now and then otherwise
    (the logs of a container).

    Args:
        stream: Where to write; stderr by default.
        interval: Seconds between redraws on a terminal.
        log_interval: Seconds between lines when not on a terminal.
    """

    def __init__(
        self, stream: TextIO | None = None, *, interval: float = 0.2, log_interval: float = 10.0
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = interval if self._tty else log_interval
        self._last = 0.0
        self._text = ""
        self._width = 0

    def show(self, text: str, *, force: bool = False) -> None:
        """Show `text`, unless the last one was shown too recently (and not `force`)."""
        self._text = text
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        if self._tty:
            padding = " " * max(0, self._width - len(text))
            self._stream.write(f"\r{text}{padding}")
            self._width = len(text)
        else:
            self._stream.write(f"{text}\n")
        self._stream.flush()

    def close(self) -> None:
        """Show the last text for good and end the line."""
        if self._text:
            self.show(self._text, force=True)
            if self._tty:
                self._stream.write("\n")
                self._stream.flush()


class stop_on_signals:  # noqa: N801 - used as a context manager, like contextlib's
    """
    Set an event on the first SIGINT or SIGTERM; a second SIGINT interrupts.

    The first signal lets the batch in progress finish and commit; a second
    Ctrl-C raises `KeyboardInterrupt` at once (the batch's transaction is then
    rolled back, which loses nothing: it is read again on the next run).

    Args:
        on_stop: Called once, when the first signal arrives (to say so).
    """

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.event = threading.Event()
        self._on_stop = on_stop
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.event.set()
        if self._on_stop is not None:
            self._on_stop()

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self.event

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def thousands(value: int) -> str:
    """Return `value` with thousands separators."""
    return f"{value:,}"


def rate(count: int, seconds: float) -> str:
    """Return `count / seconds` as a short per-second rate."""
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"
