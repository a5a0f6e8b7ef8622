"""
Importing dynastream does no more than it must (DESIGN §2.10: cold start stays small).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_importing_dynastream_imports_no_aws_sdk_driver_orm_or_moto() -> None:
    code = (
        "import sys, dynastream\n"
        "heavy = ('boto3', 'botocore', 'moto', 'psycopg', 'pymysql', 'sqlalchemy.orm')\n"
        "print(sorted(name for name in heavy if name in sys.modules))"
    )

    # A fresh interpreter: nothing else has imported them yet.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603 - fixed code

    assert "[]" == out.strip()


EXAMPLES = [
    pytest.param("examples.orders", "Base.metadata", "orders.json", id="orders"),
    pytest.param("examples.payments", "metadata", "payments.json", id="payments"),
]
# The Orders example fed by Kinesis Data Streams: the same handler, DYNASTREAM_SOURCE=kinesis.
FIRST_INVOCATIONS = [
    *EXAMPLES,
    pytest.param("examples.orders", "Base.metadata", "orders-kinesis.json", id="orders-kinesis"),
]
AWS_SDK_AND_DRIVERS = "('boto3', 'botocore', 'moto', 'psycopg', 'pymysql')"


def _run_fresh(code: str, **environment: str) -> str:
    # A fresh interpreter at the project root, where `examples` is a package.
    return (
        subprocess.run(  # noqa: S603 - fixed code
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )  # the last line: the handler may log or emit metrics before it


@pytest.mark.parametrize(("example", "_metadata", "_event"), EXAMPLES)
def test_importing_an_example_handler_imports_no_aws_sdk_or_driver(
    example: str, _metadata: str, _event: str
) -> None:
    code = (
        f"import sys, {example}.handler\n"
        f"print(sorted(name for name in {AWS_SDK_AND_DRIVERS} if name in sys.modules))"
    )

    assert "[]" == _run_fresh(code)


@pytest.mark.parametrize(("example", "metadata", "event"), FIRST_INVOCATIONS)
def test_first_invocation_with_a_plain_url_imports_no_aws_sdk(
    example: str, metadata: str, event: str, tmp_path: Path
) -> None:
    database = tmp_path / "example.sqlite"
    code = (
        "import sys, sqlalchemy, dynastream\n"
        f"from {example} import handler, models\n"
        f"engine = sqlalchemy.create_engine('sqlite:///{database}')\n"
        f"models.{metadata}.create_all(engine)\n"
        "dynastream.schema.metadata.create_all(engine)\n"
        "engine.dispose()\n"
        f"event = dynastream.load_event('{ROOT / example.replace('.', '/') / 'events' / event}')\n"
        "response = handler.lambda_handler(event, None)\n"
        f"print(response, sorted(name for name in {AWS_SDK_AND_DRIVERS} if name in sys.modules))"
    )

    # The URL comes from the environment, as on Lambda.
    source = "kinesis" if "kinesis" in event else "dynamodb"
    out = _run_fresh(code, DYNASTREAM_DATABASE_URL=f"sqlite:///{database}", DYNASTREAM_SOURCE=source)

    assert "{'batchItemFailures': []} []" == out
