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
    assert "CREATE TABLE dynastream_locks" in out
    assert ("ALTER TABLE dynastream_locks SET UNLOGGED;" in out) == (dialect == "postgresql")


def test_create_tables_creates_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite'}"

    assert 0 == main(["create-tables", "--database-url", url])
    assert 0 == main(["create-tables", "--database-url", url])  # again: nothing to do

    assert {
        "dynastream_applied_events",
        "dynastream_checkpoints",
        "dynastream_locks",
        "dynastream_quarantine",
        "dynastream_tombstones",
    } == set(sa.inspect(sa.create_engine(url)).get_table_names())


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


POISON_APP = """
import os

import dynastream

app = dynastream.App(database_url=os.environ["POISON_DATABASE_URL"])


@app.handler("Orders", on_poison="quarantine", keep_raw=True)
def handle(records, uow):
    if os.environ.get("POISON_FIXED") != "1":
        raise ValueError("not yet")
"""


def test_quarantined_records_are_listed_and_replayed_once_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.builders import insert_event

    url = f"sqlite:///{tmp_path / 'poison.sqlite'}"
    (tmp_path / "poison_app.py").write_text(POISON_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POISON_DATABASE_URL", url)
    monkeypatch.delenv("POISON_FIXED", raising=False)
    from dynastream._cli.common import load_app as _load_app

    app = _load_app("poison_app:app")
    app.create_tables()
    assert {"batchItemFailures": []} == app.lambda_handler(insert_event(2), None)

    assert 0 == main(["quarantine", "list", "--database-url", url])
    listed = capsys.readouterr()
    assert 2 == len(listed.out.splitlines())
    assert "ValueError" in listed.out

    assert 1 == main(["quarantine", "replay", "--app", "poison_app:app"])  # still failing: kept
    assert "failed again" in capsys.readouterr().err

    monkeypatch.setenv("POISON_FIXED", "1")
    assert 0 == main(["quarantine", "replay", "--app", "poison_app:app"])
    assert 0 == main(["quarantine", "list", "--database-url", url])
    assert "" == capsys.readouterr().out


def test_replay_needs_a_loadable_app(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="module:attribute"):
        main(["quarantine", "replay", "--app", "no-colon"])
    with pytest.raises(SystemExit, match="cannot load"):
        main(["quarantine", "replay", "--app", "no_such_module_here:app"])
