"""
`dynastream schema generate` and `schema diff` on moto: from a DynamoDB table to a replica, and drift.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dynastream
from dynastream._cli import main
from dynastream._deserialize import deserialize_image
from tests.replica_check import assert_replica_equals
from tests.sources.test_backfill import put_items

# Values no output may show: each is distinctive text, number or bytes.
PERSONAL_TEXT = "personal-value-7f3a"
PERSONAL_NUMBER = "98765432109876543210987654321098765432"  # 38 digits
PERSONAL_BYTES = b"personal-bytes-\x00\x01"


def every_type_items(count: int = 30) -> list[dict[str, Any]]:
    """Items with every attribute type, 38-digit numbers, long strings, mixed and sparse attributes."""
    items = []
    for key in range(count):
        item: dict[str, Any] = {
            "pk": {"S": f"customer#{key % 7}"},
            "sk": {"N": str(key * 1000 + 7)},
            "status": {"S": ("PAID", "NEW", "SHIPPED")[key % 3]},
            "total": {"N": f"{key * 13}.{key % 100:02d}"},
            "quantity": {"N": str(key % 9)},
            "createdAt": {"N": str(1_700_000_000_000 + key)},
            "bigInteger": {"N": PERSONAL_NUMBER if key == 0 else str(10**37 + key)},
            "bigDecimal": {"N": f"1234567890123456789012345678901234567.{key % 10}"},
            "tiny": {"N": "1E-130" if key % 2 else "0.5"},
            "huge": {"N": "9.9999999999999999999999999999999999999E+125" if key % 2 else "1"},
            "note": {"S": PERSONAL_TEXT if key == 1 else f"note {key}"},
            "longText": {"S": ("long text " * 10_000)[: 20_000 + key]},
            "blob": {"B": base64.b64encode(PERSONAL_BYTES if key == 2 else bytes([key, 0, 255])).decode()},
            "gift": {"BOOL": key % 2 == 0},
            "nothing": {"NULL": True},
            "address": {
                "M": {"city": {"S": "Lyon"}, "zip": {"N": str(69000 + key)}, "geo": {"L": [{"N": "4.5"}]}}
            },
            "lines": {
                "L": [{"M": {"sku": {"S": f"s-{key}"}, "qty": {"N": "2"}}}, {"S": "x"}, {"NULL": True}]
            },
            "tags": {"SS": ["a", f"t{key}"]},
            "scores": {"NS": ["1", "2.5", str(key + 3)]},
            "chunks": {
                "BS": [base64.b64encode(b"\x01").decode(), base64.b64encode(bytes([key + 2])).decode()]
            },
            "mixedTextNumber": {"S": f"v{key}"} if key % 2 else {"N": str(key)},
            "mixedAnything": ({"S": "x"}, {"BOOL": True}, {"M": {"a": {"N": "1"}}})[key % 3],
            "order": {"S": "reserved"},
            "select": {"N": str(key)},
            "shipping-address line": {"S": "dash and space"},
        }
        if key % 5 == 0:
            item["rareAttribute"] = {"S": "sometimes"}
        items.append(item)
    return items


def create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def for_client(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items as boto3's client takes them: binary as bytes (it encodes base64 itself)."""
    converted = []
    for item in items:
        copy = dict(item)
        for name, value in item.items():
            if "B" in value:
                copy[name] = {"B": base64.b64decode(value["B"])}
            elif "BS" in value:
                copy[name] = {"BS": [base64.b64decode(member) for member in value["BS"]]}
        converted.append(copy)
    return converted


@pytest.fixture
def every_type_table(aws_clients: Any, source_table: str) -> str:
    name = f"{source_table}-every-type"
    create_table(aws_clients.dynamodb(), name)
    put_items(aws_clients.dynamodb(), name, for_client(every_type_items()))
    return name


def load_module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def model_class(module: Any) -> Any:
    """The model class of a generated module."""
    base = module.Base
    return next(
        v for n, v in vars(module).items() if isinstance(v, type) and n != "Base" and issubclass(v, base)
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("generated_")]:
        del sys.modules[name]


def test_generated_model_takes_the_sample_on_every_engine_row_by_row(
    every_type_table: str,
    aws_clients: Any,
    engine: sa.Engine,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_file = workdir / "generated_model.py"

    status = main(
        [
            "schema", "generate", "--table", every_type_table, "--endpoint-url", aws_clients.endpoint_url,
            "--region", "us-east-1", "--limit", "500", "--output", str(model_file),
        ]
    )  # fmt: skip

    out = capsys.readouterr()
    assert 0 == status, out.err
    source = model_file.read_text()
    for secret in (
        PERSONAL_TEXT,
        PERSONAL_NUMBER,
        "personal-bytes",
        base64.b64encode(PERSONAL_BYTES).decode(),
    ):
        assert secret not in source + out.out + out.err
    module = load_module(model_file, "generated_model")
    model = model_class(module)
    table = model.__table__
    assert ["pk", "sk"] == [c.name for c in table.primary_key.columns]
    assert {"order": "order_", "select": "select_"}.items() <= module.RENAMES.items()
    assert "rare_attribute" in table.c
    # What a reader sees: why each type.
    assert "several types in the sample" in source
    assert "numbers as their text" in source

    module.Base.metadata.create_all(engine)
    app = dynastream.App(engine=engine)
    app.create_tables()
    app.replicate(every_type_table, into=model, naming=module.NAMING, renames=module.RENAMES)
    progress = dynastream.Backfill(app, every_type_table, clients=aws_clients, segments=2, page_size=7).run()

    assert 30 == progress.written
    items = [deserialize_image(item) for item in every_type_items()]
    assert 600 < assert_replica_equals(engine, table, items, ["pk", "sk"], module.RENAMES)


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb", "sqlite"])
def test_ddl_of_each_dialect_is_valid_sql(
    every_type_table: str, aws_clients: Any, dialect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(
        [
            "schema", "generate", "--table", every_type_table, "--endpoint-url", aws_clients.endpoint_url,
            "--region", "us-east-1", "--format", "ddl", "--dialect", dialect,
        ]
    )  # fmt: skip
    ddl = capsys.readouterr().out
    assert "CREATE TABLE" in ddl
    assert "dynastream_sequence VARCHAR(40) NOT NULL" in ddl
    assert PERSONAL_TEXT not in ddl


def test_ddl_needs_one_dialect(
    every_type_table: str, aws_clients: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["schema", "generate", "--table", every_type_table, "--format", "ddl",
                   "--endpoint-url", aws_clients.endpoint_url, "--region", "us-east-1"])  # fmt: skip
    assert 2 == status
    assert "choose --dialect" in capsys.readouterr().err


# Errors


@pytest.mark.parametrize("action", ["generate", "diff"])
def test_help_of_both_commands(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["schema", action, "--help"])
    assert 0 == exit_.value.code
    out = capsys.readouterr().out
    assert f"usage: dynastream schema {action}" in out
    assert "--from-file" in out
    assert "exit status" in out


def test_a_missing_table_is_a_clear_error(aws_clients: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["schema", "generate", "--table", "NoSuchTable", "--endpoint-url", aws_clients.endpoint_url,
                   "--region", "us-east-1"])  # fmt: skip
    assert 2 == status
    assert "describe table 'NoSuchTable': not found" in capsys.readouterr().err


def test_an_empty_table_is_a_clear_error(
    aws_clients: Any, source_table: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["schema", "generate", "--table", source_table, "--endpoint-url", aws_clients.endpoint_url,
                   "--region", "us-east-1"])  # fmt: skip
    assert 2 == status
    assert f"table {source_table!r} holds no items" in capsys.readouterr().err


def test_no_credentials_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_PERSONAL_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status = main(["schema", "generate", "--table", "Orders", "--region", "us-east-1",
                   "--endpoint-url", "http://127.0.0.1:9"])  # fmt: skip
    assert 2 == status
    assert "no AWS credentials are configured" in capsys.readouterr().err


# Drift


def test_diff_reports_new_attributes_and_narrow_columns_without_values(
    every_type_table: str, aws_clients: Any, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = workdir / "generated_drift.py"
    common = [
        "--table",
        every_type_table,
        "--endpoint-url",
        aws_clients.endpoint_url,
        "--region",
        "us-east-1",
    ]
    assert 0 == main(["schema", "generate", *common, "--output", str(model_file)])
    capsys.readouterr()
    class_name = model_class(load_module(model_file, "generated_drift")).__name__

    assert 0 == main(["schema", "diff", "--model", f"generated_drift:{class_name}", *common])
    assert "0 attributes with no column, 0 columns refusing values" in capsys.readouterr().err

    # The table changes: a new attribute, and a status far longer than any sampled.
    changed = every_type_items(3)
    for item in changed:
        item["discountCode"] = {"S": PERSONAL_TEXT}
        item["status"] = {"S": PERSONAL_TEXT * 20}
    put_items(aws_clients.dynamodb(), every_type_table, for_client(changed))

    status = main(["schema", "diff", "--model", f"generated_drift:{class_name}", *common])

    out = capsys.readouterr()
    assert 1 == status
    assert "missing: attribute 'discountCode' has no column (3 sampled items carry it)" in out.out
    assert "narrow: column 'status' (attribute 'status') on SQLite, PostgreSQL, MySQL, MariaDB:" in out.out
    assert "characters do not fit String(16)" in out.out
    assert PERSONAL_TEXT not in out.out + out.err


def test_diff_of_an_application_registration(
    every_type_table: str, aws_clients: Any, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "generated_app.py").write_text(
        "import sqlalchemy as sa\nimport dynastream\n"
        "table = sa.Table('t', sa.MetaData(),\n"
        "    sa.Column('pk', dynastream.ExactString(64), primary_key=True),\n"
        "    sa.Column('sk', sa.Integer, primary_key=True), sa.Column('status', sa.String(8)),\n"
        "    sa.Column('extra', sa.JSON), dynastream.sequence_column())\n"
        "app = dynastream.App(database_url='sqlite://')\n"
        f"app.replicate({every_type_table!r}, into=table)\n"
        "kept = dynastream.App(database_url='sqlite://')\n"
        f"kept.replicate({every_type_table!r}, into=table, extra='extra')\n"
    )
    common = [
        "--table",
        every_type_table,
        "--endpoint-url",
        aws_clients.endpoint_url,
        "--region",
        "us-east-1",
    ]

    assert 1 == main(["schema", "diff", "--app", "generated_app:app", *common])
    out = capsys.readouterr().out
    assert "missing: attribute 'total' has no column (30 sampled items carry it)" in out
    assert "unfilled: column 'extra'" in out

    # With an extra column, nothing is dropped: only the narrow status column remains.
    assert 0 == main(["schema", "diff", "--app", "generated_app:kept", *common, "--dialect", "postgresql"])
    assert "missing" not in capsys.readouterr().out


def test_generate_reads_a_saved_scan_file(
    every_type_table: str, aws_clients: Any, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scan = aws_clients.dynamodb().scan(TableName=every_type_table)
    # As `aws dynamodb scan` prints it: binary as base64.
    as_cli = json.dumps({"Items": scan["Items"]}, default=lambda data: base64.b64encode(data).decode())
    (workdir / "scan.json").write_text(as_cli)

    assert 2 == main(["schema", "generate", "--from-file", "scan.json"])
    assert "give the key attribute names (--keys pk,sk)" in capsys.readouterr().err
    assert 0 == main(
        ["schema", "generate", "--from-file", "scan.json", "--keys", "pk,sk", "--table", "Orders"]
    )
    out = capsys.readouterr().out
    assert "class Orders(Base):" in out
    key = out[out.index("    pk: Mapped[str]") :].split("\n    #")[0]
    assert "dynastream.ExactString(32)" in key
    assert "primary_key=True" in key
    assert "autoincrement=False" in key
