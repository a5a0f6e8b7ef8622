"""
`dynastream run`: what the command says when the table, the endpoint, the options or the database are wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import dynastream


@pytest.mark.usefixtures("no_retry_waits")
def test_the_run_command_says_what_is_wrong(
    aws_clients: dynastream.AwsClients,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from dynastream._cli import main

    monkeypatch.setenv("RUNNER_TABLE", "Missing")
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    monkeypatch.delitem(sys.modules, "tests.apps.runner_app", raising=False)
    common = ["--app", "tests.apps.runner_app:app", "--region", "us-east-1"]

    assert 2 == main(["run", *common, "--table", "Missing", "--endpoint-url", moto_endpoint])
    assert "'Missing'" in capsys.readouterr().err
    assert 2 == main(["run", *common, "--table", "Missing", "--endpoint-url", "http://127.0.0.1:9"])
    assert "cannot reach the endpoint" in capsys.readouterr().err
    assert 2 == main(["run", *common, "--table", "Missing", "--batch-size", "5000"])
    assert "batch_size" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="cannot load"):
        main(["run", "--app", "no_such_module:app", "--table", "T"])
    with pytest.raises(SystemExit) as usage:
        main(["run", "--help"])
    assert 0 == usage.value.code
    assert "checkpoint" in capsys.readouterr().out


def test_the_run_command_says_when_the_database_refuses(
    moto_endpoint: str, source_table: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dynastream._cli import main

    monkeypatch.setenv("RUNNER_TABLE", source_table)
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", "sqlite:////no/such/directory/replica.sqlite")
    monkeypatch.delitem(sys.modules, "tests.apps.runner_app", raising=False)

    status = main(
        [
            "run",
            "--app",
            "tests.apps.runner_app:app",
            "--table",
            source_table,
            "--endpoint-url",
            moto_endpoint,
            "--region",
            "us-east-1",
            "--until-caught-up",
        ]
    )

    assert 2 == status
    assert "the database refused: OperationalError: unable to open database file" in capsys.readouterr().err
