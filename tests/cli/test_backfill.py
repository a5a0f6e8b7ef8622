"""
`dynastream backfill`: its progress line, and the command on a table loaded into the database.
"""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream._cli import main
from dynastream._cli.backfill import describe_progress, run_command
from tests.sources.test_backfill import metadata, mirror, mirror_item, put_items, target_rows

# Progress


def test_progress_line_has_a_bar_only_when_asked() -> None:
    halfway = dynastream.BackfillProgress(
        "Orders", 4, scanned=500, written=480, segments_done=1, elapsed_seconds=2.0, estimated_items=1000
    )
    finished = dynastream.BackfillProgress(
        "Orders", 4, scanned=1000, written=1000, segments_done=4, elapsed_seconds=4.0, done=True
    )
    unknown_size = dynastream.BackfillProgress("Orders", 4, scanned=10, estimated_items=0)

    assert describe_progress(halfway, bar=True).startswith("Orders [##########..........]  50% 500 scanned")
    assert "Orders 500 scanned, 480 written, 240 items/s, segments 1/4" == describe_progress(halfway)
    assert describe_progress(finished, bar=True).startswith("Orders [####################] 100%")
    assert describe_progress(finished, bar=True).endswith("done in 4.0 s")
    assert "[" not in describe_progress(unknown_size, bar=True)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_command_shows_a_bar_on_a_terminal_and_plain_lines_elsewhere(
    tmp_path: Path, aws_clients: Any, source_table: str, terminal: bool
) -> None:
    put_items(aws_clients.dynamodb(), source_table, [mirror_item(key, 1) for key in range(20)])
    app = dynastream.App(database_url=f"sqlite:///{tmp_path / 'target.sqlite'}")
    app.replicate(source_table, into=mirror)
    metadata.create_all(app.container.engine())
    app.create_tables()
    out = Terminal() if terminal else io.StringIO()

    status = run_command(
        app,
        source_table,
        segments=2,
        max_rcu=None,
        page_size=3,
        endpoint_url=aws_clients.endpoint_url,
        region="us-east-1",
        stream=out,
    )

    assert 0 == status
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith(f"dynastream: backfill of {source_table!r} done: 20 item(s) scanned")
    if terminal:  # one line redrawn in place, ending with the full bar
        assert out.getvalue().startswith("\r")
        assert "[####################] 100% 20 scanned, 20 written" in lines[-2]
    else:  # plain lines: the first page, then the last state
        assert "\r" not in out.getvalue()
        assert "[" not in out.getvalue()
        assert "20 scanned, 20 written" in lines[-2]


# The command


BACKFILL_APP = """
import os

import sqlalchemy as sa

import dynastream

metadata = sa.MetaData()
mirror = sa.Table(
    "backfilled_mirror",
    metadata,
    sa.Column("id", dynastream.ExactString(64), primary_key=True),
    sa.Column("s", sa.String(64), nullable=False),
    sa.Column("n", sa.Numeric(20, 4), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    dynastream.sequence_column(),
)
app = dynastream.App(database_url=os.environ["BACKFILL_DATABASE_URL"])
app.replicate(os.environ["BACKFILL_TABLE"], into=mirror)
"""


@pytest.fixture
def app_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source_table: str, database_url: str, engine: sa.Engine
) -> Iterator[str]:
    """A module defining `app`, replicating the test's source table on the test database."""
    metadata.create_all(engine)
    dynastream.App(engine=engine).create_tables()
    module = f"backfill_app_{uuid.uuid4().hex}"  # a fresh import per test
    (tmp_path / f"{module}.py").write_text(BACKFILL_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BACKFILL_DATABASE_URL", database_url)
    monkeypatch.setenv("BACKFILL_TABLE", source_table)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{module}:app"
    loaded = sys.modules.pop(module, None)
    if loaded is not None:
        loaded.app.container.engine().dispose()


def test_command_loads_the_table_and_says_so(
    app_module: str,
    aws_clients: Any,
    source_table: str,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_items(aws_clients.dynamodb(), source_table, [mirror_item(key, 1) for key in range(30)])

    status = main(
        [
            "backfill",
            "--app",
            app_module,
            "--table",
            source_table,
            "--segments",
            "2",
            "--max-rcu",
            "1000",
            "--page-size",
            "4",
            "--endpoint-url",
            aws_clients.endpoint_url,
            "--region",
            "us-east-1",
        ]
    )

    assert 0 == status
    assert 30 == len(target_rows(engine))
    err = capsys.readouterr().err
    assert "30 scanned, 30 written" in err
    assert f"backfill of {source_table!r} done: 30 item(s) scanned, 30 applied" in err


@pytest.mark.usefixtures("no_retry_waits")
def test_command_fails_clearly_on_wrong_input(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BACKFILL_DATABASE_URL", f"sqlite:///{tmp_path / 'target.sqlite'}")
    monkeypatch.setenv("BACKFILL_TABLE", "NoSuchTable")
    (tmp_path / "missing_table_app.py").write_text(BACKFILL_APP)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    common = ["backfill", "--app", "missing_table_app:app", "--region", "us-east-1"]

    assert 2 == main([*common, "--table", "NotReplicated", "--endpoint-url", moto_endpoint])
    assert "no handler is registered for table 'NotReplicated'" in capsys.readouterr().err

    assert 2 == main([*common, "--table", "NoSuchTable", "--endpoint-url", moto_endpoint])
    assert "describe table 'NoSuchTable': not found" in capsys.readouterr().err

    assert 2 == main([*common, "--table", "NoSuchTable", "--endpoint-url", "http://127.0.0.1:9"])
    assert "cannot reach the endpoint 'http://127.0.0.1:9" in capsys.readouterr().err


def test_command_exits_1_at_an_item_that_cannot_be_applied(
    app_module: str,
    moto_endpoint: str,
    aws_clients: Any,
    source_table: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    item = mirror_item(1, 1)
    item["s"] = {"S": "x" * 100}
    put_items(aws_clients.dynamodb(), source_table, [item])

    status = main(
        [
            *("backfill", "--app", app_module, "--table", source_table),
            *("--endpoint-url", moto_endpoint, "--region", "us-east-1"),
        ]
    )

    assert 1 == status
    assert "stopped at item #0 of segment" in capsys.readouterr().err


def test_command_needs_a_loadable_app() -> None:
    with pytest.raises(SystemExit, match="module:attribute"):
        main(["backfill", "--app", "no-colon", "--table", "Orders"])


def test_command_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["backfill", "--help"])

    assert 0 == raised.value.code
    out = capsys.readouterr().out
    options = ("--app", "--table", "--segments", "--max-rcu", "--page-size", "--endpoint-url", "--region")
    assert [] == [option for option in options if option not in out]


def test_command_refuses_bad_option_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["backfill", "--app", "a:b", "--table", "Orders", "--segments", "many"])

    assert 2 == raised.value.code
    assert "--segments" in capsys.readouterr().err
