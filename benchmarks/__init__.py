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

__all__ = ["best_time"]


def best_time(work: Callable[[], object], *, repeat: int) -> float:
    """
    Return the fastest of `repeat` runs of `work`, in seconds.

    The minimum is the run least disturbed by the rest of the machine.
    """
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best
