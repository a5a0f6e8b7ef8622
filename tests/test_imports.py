"""
Importing dynastream does no more than it must (DESIGN §2.10: cold start stays small).
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_dynastream_imports_no_aws_sdk_driver_orm_or_moto() -> None:
    code = (
        "import sys, dynastream\n"
        "heavy = ('boto3', 'botocore', 'moto', 'psycopg', 'pymysql', 'sqlalchemy.orm')\n"
        "print(sorted(name for name in heavy if name in sys.modules))"
    )

    # A fresh interpreter: nothing else has imported them yet.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603 - fixed code

    assert "[]" == out.strip()
