"""
`dynastream backfill`: a backfill with a progress line, stopped cleanly by a signal.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from dynastream._sources.aws import AwsClients
from dynastream._sources.backfill import Backfill, BackfillProgress
from dynastream.exceptions import BackfillError, ConfigurationError, DynastreamError, SourceError

from .console import StatusLine, stop_on_signals

if TYPE_CHECKING:
    from dynastream._app import App

__all__ = ["describe_progress", "run_command"]


def describe_progress(progress: BackfillProgress, *, bar: bool = False) -> str:
    """
    Return one line saying where a backfill is (counts only, never item data).

    Args:
        progress: Where the backfill is.
        bar: Start with a bar against the table's approximate item count.

    Examples:
        >>> describe_progress(BackfillProgress("Orders", 4, scanned=500, written=500,
        ...     segments_done=1, elapsed_seconds=2.0, estimated_items=1000), bar=True)
        'Orders [##########..........]  50% 500 scanned, 500 written, 250 items/s, segments 1/4'
    """
    parts = [progress.table_name]
    if bar:
        estimate = progress.estimated_items
        if progress.done:
            fraction: float | None = 1.0
        elif estimate:
            fraction = min(0.99, progress.scanned / estimate)
        else:
            fraction = None
        if fraction is not None:
            filled = int(fraction * 20)
            parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] {fraction:4.0%}")
    parts.append(
        f"{progress.scanned:,} scanned, {progress.written:,} written,"
        f" {progress.items_per_second:,.0f} items/s, segments {progress.segments_done}/{progress.segments}"
    )
    if progress.quarantined:
        parts.append(f"({progress.quarantined:,} quarantined)")
    if progress.done:
        parts.append(f"done in {progress.elapsed_seconds:,.1f} s")
    return " ".join(parts)


def run_command(
    app: App,
    table_name: str,
    *,
    segments: int,
    max_rcu: float | None,
    page_size: int,
    endpoint_url: str | None,
    region: str | None,
    stream: TextIO | None = None,
) -> int:
    """
    Run `dynastream backfill` and return its exit status.

    Progress goes to `stream` (stderr): a line with a bar redrawn in place on
    a terminal, a plain line every ten seconds elsewhere. The first SIGINT or
    SIGTERM stops after the page being applied.

    Returns:
        0 when every item is applied; 1 when an item cannot be applied; 2 for
        wrong input (a table not replicated or with custom handlers, a missing
        table, an unreachable endpoint, no database); 130 when stopped before
        the end.
    """
    out = stream or sys.stderr
    status = StatusLine(out)
    bar = bool(getattr(out, "isatty", lambda: False)())

    def stopping() -> None:
        status.close()
        print("dynastream: stopping after the page being applied (Ctrl-C again stops at once)", file=out)

    try:
        with stop_on_signals(on_stop=stopping) as stop:
            progress = Backfill(
                app,
                table_name,
                clients=AwsClients(endpoint_url=endpoint_url, region_name=region),
                segments=segments,
                max_rcu=max_rcu,
                page_size=page_size,
                on_progress=lambda progress: status.show(describe_progress(progress, bar=bar)),
            ).run(stop=stop)
    except KeyboardInterrupt:
        status.close()
        print(
            "dynastream: interrupted; the pages applied stay, and running the backfill again is safe",
            file=out,
        )
        return 130
    except BackfillError as error:
        status.close()
        print(f"dynastream: {error}", file=out)
        return 1
    except (ConfigurationError, SourceError, ValueError) as error:
        status.close()
        print(f"dynastream: {error}", file=out)
        return 2
    except DynastreamError as error:
        status.close()
        print(f"dynastream: {type(error).__name__}: {error}", file=out)
        return 1
    status.close()
    if not progress.done:
        print(
            f"dynastream: backfill of {table_name!r} stopped before the end ({progress.written:,} item(s)"
            " applied); running it again is safe",
            file=out,
        )
        return 130
    print(
        f"dynastream: backfill of {table_name!r} done: {progress.scanned:,} item(s) scanned,"
        f" {progress.written:,} applied, {progress.consumed_capacity:,.1f} read capacity units",
        file=out,
    )
    return 0
