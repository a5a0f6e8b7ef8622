"""
Benchmarks for dynastream, each measured against a baseline in the same run.

Run them with `python -m benchmarks` (or `nox -s bench`); `--quick` uses smaller
inputs. Absolute rates drift from run to run; the ratios are what to compare.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["best_times"]


def best_times(works: dict[str, Callable[[], object]], *, repeat: int) -> dict[str, float]:
    """
    Return the fastest of `repeat` runs of each of `works`, in seconds, by name.

    The runs are interleaved (one of each per round), so that a slow moment
    of the machine does not fall on one side of a ratio only; the minimum is
    the run least disturbed by the rest of the machine.
    """
    best = dict.fromkeys(works, float("inf"))
    for _ in range(repeat):
        for name, work in works.items():
            started = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - started)
    return best
