"""
The deserializer benchmark: both sides agree, runs are interleaved, and the target is judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks import best_times, deserialize

if TYPE_CHECKING:
    import pytest


def test_best_times_interleaves_the_runs_and_keeps_each_side_s_fastest() -> None:
    calls: list[str] = []
    best = best_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeat=3)

    assert calls == ["a", "b"] * 3
    assert set(best) == {"a", "b"}
    assert all(0 <= seconds < 1 for seconds in best.values())


def test_the_quick_run_prints_both_rates_and_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    deserialize.run(quick=True)

    out = capsys.readouterr().out
    assert "best of 3 interleaved runs" in out
    verdict = next(line for line in out.splitlines() if "ratio dynastream / boto3" in line)
    assert f"target >= {deserialize.TARGET:.1f}x:" in verdict
    assert verdict.rstrip().endswith(("met)", "not met)"))
