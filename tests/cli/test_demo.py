"""
The demo: moto and SQLite, no servers, a replica checked against its source.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from dynastream._cli import demo as _demo
from dynastream._cli import main


def test_the_demo_replica_equals_the_source(tmp_path: Path) -> None:
    report = _demo.run_demo(f"sqlite:///{tmp_path / 'demo.sqlite'}", items=300)

    assert [] == report.differences
    assert report.written == report.applied  # every change reached the stream and was applied
    assert 300 - 300 // 10 == report.rows


def test_the_demo_comparison_finds_a_row_that_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check can fail: a replica altered behind the runner's back is reported."""
    compare = _demo._compare

    def tampered(dynamodb: object, engine: sa.Engine) -> tuple[int, list[str]]:
        with engine.begin() as connection:
            connection.execute(sa.update(_demo.orders).where(_demo.orders.c.order_no == 7).values(total=1))
            connection.execute(sa.delete(_demo.orders).where(_demo.orders.c.order_no == 8))
        return compare(dynamodb, engine)

    monkeypatch.setattr(_demo, "_compare", tampered)

    report = _demo.run_demo(f"sqlite:///{tmp_path / 'demo.sqlite'}", items=50)

    assert ["('customer-07', 7): total differ", "('customer-08', 8): missing from the replica"] == [
        d for d in report.differences if "07" in d or "08" in d
    ]


def test_the_demo_command_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "replica.sqlite"

    assert 0 == main(["demo", "--database", str(database), "--items", "120"])

    out = capsys.readouterr().out
    assert "The replica equals the source" in out
    assert str(database) in out
    with sa.create_engine(f"sqlite:///{database}").connect() as connection:
        assert 108 == connection.execute(sa.text("select count(*) from demo_orders")).scalar()
