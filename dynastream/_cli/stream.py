"""
`dynastream run`: the stream runner with a progress line, stopped cleanly by a signal.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from dynastream._cli.common import load_app
from dynastream._sources.aws import AwsClients
from dynastream._sources.runner import StreamRunner

if TYPE_CHECKING:
    import argparse

    from dynastream._sources.runner import RunnerProgress

__all__ = ["describe_progress", "run_stream"]


def describe_progress(progress: RunnerProgress, started: float) -> str:
    from .console import rate, thousands

    lag = "-" if progress.lag_seconds is None else f"{progress.lag_seconds:,.1f} s"
    state = "caught up" if progress.caught_up else "applying"
    return (
        f"{progress.table_name}: {thousands(progress.applied)} records applied"
        f" ({rate(progress.applied, time.monotonic() - started)}), lag {lag}, shards"
        f" {progress.shards_reading} reading / {progress.shards_waiting} waiting /"
        f" {progress.shards_finished} finished; {state}"
    )


def run_stream(arguments: argparse.Namespace) -> int:

    from .console import StatusLine, stop_on_signals

    app = load_app(arguments.app)
    line = StatusLine()
    started = time.monotonic()
    runner = StreamRunner(
        app,
        arguments.table,
        stream_arn=arguments.stream_arn,
        clients=AwsClients(endpoint_url=arguments.endpoint_url, region_name=arguments.region),
        start_at=arguments.start_at,
        batch_size=arguments.batch_size,
        poll_interval=arguments.poll_interval,
        on_progress=lambda progress: line.show(describe_progress(progress, started)),
    )

    def say_stopping() -> None:
        line.close()
        print("dynastream: stopping after the current batch (Ctrl-C again to interrupt)", file=sys.stderr)

    with stop_on_signals(say_stopping) as stop:
        try:
            progress = runner.run(stop=stop, until_caught_up=arguments.until_caught_up)
        finally:
            line.close()
    print(
        f"dynastream: {progress.applied:,} records applied in {time.monotonic() - started:,.1f} s;"
        f" checkpoints are in the target database",
        file=sys.stderr,
    )
    return 0
