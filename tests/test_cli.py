"""
The `dynastream` command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from dynastream._cli import main


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_ddl_prints_the_bookkeeping_tables(dialect: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["ddl", "--dialect", dialect])

    out = capsys.readouterr().out
    assert "CREATE TABLE dynastream_tombstones" in out
    assert "CREATE TABLE dynastream_applied_events" in out


def test_create_tables_creates_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"

    assert 0 == main(["create-tables", "--database-url", url])
    assert 0 == main(["create-tables", "--database-url", url])  # again: nothing to do

    assert {"dynastream_applied_events", "dynastream_quarantine", "dynastream_tombstones"} == set(
        sa.inspect(sa.create_engine(url)).get_table_names()
    )


def test_create_tables_without_a_database_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DYNASTREAM_DATABASE_URL", raising=False)

    assert 2 == main(["create-tables"])
    assert "DYNASTREAM_DATABASE_URL" in capsys.readouterr().err


def test_unknown_command_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["frobnicate"])

    assert 2 == raised.value.code
    assert "usage:" in capsys.readouterr().err
