"""
The documentation's code runs: every ```pycon block of a page, as one doctest; every ```python block.
"""

from __future__ import annotations

import doctest
import importlib
import logging
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from boto3.dynamodb.types import TypeSerializer
from dependency_injector import providers

# Imported before any test swaps `sys.modules` for a copy (the README project's): a dialect
# first imported inside such a test would be imported again later, and registering its SQL
# functions twice warns (schema inference reads the dialects' reserved words).
from sqlalchemy.dialects import mysql, postgresql  # noqa: F401

import dynastream
from dynastream.testing import EventFactory
from examples.orders.models import OrderRow

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "```pycon" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```pycon\n(.*?)```", page.read_text(), re.DOTALL)
    test = doctest.DocTestParser().get_doctest(
        "\n".join(blocks), {"__name__": "__main__"}, str(page), str(page), 0
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)

    runner.run(test)

    assert 0 == runner.failures


MODULES = sorted(
    "dynastream." + p.stem if p.stem != "__init__" else "dynastream"
    for p in (ROOT / "dynastream").glob("*.py")
    if p.stem != "__main__"  # importing it runs the command
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)

    assert 0 == result.failed


# ```python blocks. Every one in the docs, the README and the changelog is either included
# from examples/ (which tests run), run by a test below, or listed in COMPILE_ONLY with the
# reason; a new block that is none of these fails `test_python_block_is_tested`.

MARKDOWN = sorted([*(ROOT / "docs").rglob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md"])
PYTHON_LANGUAGES = {"", "py", "python", "python3"}  # an untagged block may be Python: tag it
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^":]+)(:[^"]*)?"$')


@attrs.frozen
class Block:
    """A fenced block whose language is Python (or not given), dedented."""

    page: str  # relative to the repository root
    line: int  # of the opening fence
    code: str

    @property
    def key(self) -> tuple[str, str]:
        """Its page and first line: what the tests below name it by."""
        return self.page, self.code.lstrip("\n").splitlines()[0] if self.code.strip() else ""


def python_blocks(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    opening: re.Match[str] | None = None
    body: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if opening is None:
            if fence:
                opening, body, start = fence, [], number
        elif (
            fence
            and not fence["info"].strip()
            and fence["fence"][0] == opening["fence"][0]
            and len(fence["fence"]) >= len(opening["fence"])
        ):
            language = (
                opening["info"].strip().lstrip("{.").split(maxsplit=1)[0] if opening["info"].strip() else ""
            )
            if language.lower() in PYTHON_LANGUAGES:
                code = textwrap.dedent("\n".join(body)) + "\n"
                blocks.append(Block(str(path.relative_to(ROOT)), start, code))
            opening = None
        else:
            body.append(line)
    return blocks


BLOCKS = [block for path in MARKDOWN for block in python_blocks(path)]
RUN: set[tuple[str, str]] = set()

# Blocks that cannot run on their own, with the reason; they are compiled.
COMPILE_ONLY: dict[tuple[str, str], str] = {}


def runs(page: str, first_line: str) -> Callable[[], str]:
    """
    Declare that a test below runs the block of `page` starting with `first_line`; return its getter.
    """
    RUN.add((page, first_line))

    def code() -> str:
        (block,) = (b for b in BLOCKS if b.key == (page, first_line))
        return block.code

    return code


def execute(code: str, namespace: dict[str, Any]) -> None:
    """
    Run a block of the docs in `namespace` (its globals), as a module of the user's would run.
    """
    exec(code, namespace)  # noqa: S102 -- the docs' own code, which these tests exist to run


def included_from_examples(block: Block) -> Path | None:
    """
    The file under examples/ that the block only includes, or None.
    """
    lines = block.code.strip().splitlines()
    match = INCLUDE.match(lines[0].strip()) if len(lines) == 1 else None
    if match is None or not match["path"].startswith("examples/"):
        return None
    return ROOT / match["path"]


def run_by_tests(path: Path) -> bool:
    """
    A test module under examples/ is collected (`testpaths`); any other module must be imported by one.
    """
    if path.name.startswith("test_"):
        return True
    package, _, module = ".".join(path.relative_to(ROOT).with_suffix("").parts).rpartition(".")
    tests = [*(ROOT / "tests").rglob("test_*.py"), *(ROOT / "examples").rglob("test_*.py")]
    names = (f"{package}.{module}", f"from {package} import {module}")
    return any(name in test.read_text() for test in tests for name in names)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.page}:{b.line}")
def test_python_block_is_tested(block: Block) -> None:
    """Every Python block is included from examples/ that tests run, run below, or compiled with a reason."""
    included = included_from_examples(block)
    if included is not None:
        assert included.is_file(), f"{block.page}:{block.line} includes a missing file"
        assert run_by_tests(included), f"{included.relative_to(ROOT)} is included but no test runs it"
    elif block.key in COMPILE_ONLY:
        compile(block.code, f"{block.page}:{block.line}", "exec")
    else:
        assert block.key in RUN, (
            f"{block.page}:{block.line} is not tested: run it in a test in tests/test_docs.py, "
            "include it from examples/, or list it in COMPILE_ONLY with the reason"
        )


def test_every_block_named_here_is_on_its_page() -> None:
    assert set() == (RUN | COMPILE_ONLY.keys()) - {block.key for block in BLOCKS}


README_HANDLER = runs("README.md", "import dynastream")
README_MODELS = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from examples.orders.models import OrderRow


class Base(DeclarativeBase):
    pass


class PaymentRecord(Base):
    __tablename__ = "payment_records"

    payment_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
"""


def test_readme_handler_replicates_orders_and_books_each_captured_payment_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "readme_project"
    project.mkdir()
    (project / "__init__.py").write_text("")
    (project / "models.py").write_text(README_MODELS)
    (project / "handler.py").write_text(README_HANDLER())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the project's modules go with the test
    handler = importlib.import_module("readme_project.handler")
    models = importlib.import_module("readme_project.models")
    engine = dynastream.App(database_url="sqlite://").container.engine()
    for metadata in (models.OrderRow.metadata, models.Base.metadata, dynastream.schema.metadata):
        metadata.create_all(engine)
    payments = EventFactory(keys=["paymentId"]).inserts(
        "Payments", [{"paymentId": "p-1", "status": "CAPTURED"}, {"paymentId": "p-2", "status": "PENDING"}]
    )

    with handler.app.container.engine.override(providers.Object(engine)):
        responses = [
            handler.lambda_handler(dynastream.load_event(ROOT / "examples/orders/events/orders.json"), None),
            handler.lambda_handler(payments, None),
            handler.lambda_handler(payments, None),  # delivered again
        ]

    assert [{"batchItemFailures": []}] * 3 == responses
    with engine.connect() as connection:
        assert ["o-1001", "o-1003"] == connection.scalars(sa.text("SELECT order_id FROM orders")).all()
        assert ["p-1"] == connection.scalars(sa.text("SELECT payment_id FROM payment_records")).all()


EXACTLY_ONCE_CLASS = runs("docs/concepts/replication.md", '@app.handler("Payments", exactly_once=True)')


def test_exactly_once_class_handler_registers_with_a_ledger() -> None:
    from examples.payments.models import Payment

    app = dynastream.App(database_url="sqlite://")

    execute(
        EXACTLY_ONCE_CLASS(),
        {"__name__": "handler", "app": app, "dynastream": dynastream, "Payment": Payment},
    )

    (registration,) = app.registrations
    assert ("Payments", "handler.PaymentsHandler") == (registration.table_name, registration.ledger_name)
    app.check()


BACKFILL = runs("docs/how-to/backfill.md", "import dynastream")


def test_backfill_from_python_loads_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto import mock_aws

    from examples.orders import handler

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setitem(sys.modules, "handler", handler)
    engine = dynastream.App(database_url="sqlite://").container.engine()
    OrderRow.metadata.create_all(engine)
    dynastream.schema.metadata.create_all(engine)

    with mock_aws(), handler.app.container.engine.override(providers.Object(engine)):
        dynamodb = dynastream.AwsClients().dynamodb()
        dynamodb.create_table(
            TableName="Orders",
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        serializer = TypeSerializer()
        for order_id, total in (("o-1", "9.50"), ("o-2", "120.00")):
            item = {
                "orderId": order_id,
                "customer": "Ada",
                "status": "PLACED",
                "total": Decimal(total),
                "lines": [],
            }
            dynamodb.put_item(TableName="Orders", Item={k: serializer.serialize(v) for k, v in item.items()})
        execute(BACKFILL(), {"__name__": "__main__"})

    assert capsys.readouterr().out.endswith("2 2\n")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(OrderRow.order_id, OrderRow.total).order_by(OrderRow.order_id))
        assert [("o-1", Decimal("9.50")), ("o-2", Decimal("120.00"))] == rows.all()


NEW_TABLE_GENERATE = runs("docs/how-to/new-table.md", "from dynastream import AwsClients, inference")
NEW_TABLE_CREATE = runs("docs/how-to/new-table.md", "import sqlalchemy as sa")
NEW_TABLE_HANDLER = runs("docs/how-to/new-table.md", "# handler.py")


def test_new_table_from_python_to_a_replica(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "models_orders", raising=False)
    items = [
        {"orderId": f"o-{n}", "total": Decimal(f"{n}.5"), "lines": [{"sku": "a"}], "order": "x"}
        for n in range(3)
    ]
    with mock_aws():
        dynamodb = dynastream.AwsClients().dynamodb()
        dynamodb.create_table(
            TableName="Orders",
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        serializer = TypeSerializer()
        for item in items:
            dynamodb.put_item(TableName="Orders", Item={k: serializer.serialize(v) for k, v in item.items()})
        generated: dict[str, Any] = {"__name__": "__main__"}
        execute(NEW_TABLE_GENERATE(), generated)

    (tmp_path / "models_orders.py").write_text(capsys.readouterr().out)
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    execute(NEW_TABLE_CREATE(), {"__name__": "__main__", "DATABASE_URL": url})
    handler: dict[str, Any] = {"__name__": "handler"}
    monkeypatch.setenv("DYNASTREAM_DATABASE_URL", url)
    execute(NEW_TABLE_HANDLER(), handler)
    app = handler["app"]
    app.create_tables()
    result = app.dispatch(EventFactory(keys=["orderId"]).inserts("Orders", items))

    assert result.failure is None
    assert "orders" == generated["orders"].name
    with app.container.engine().connect() as connection:
        rows = connection.execute(sa.text("SELECT order_id, total, order_ FROM orders ORDER BY order_id"))
        assert [("o-0", Decimal("0.5"), "x"), ("o-1", Decimal("1.5"), "x"), ("o-2", Decimal("2.5"), "x")] == [
            (row[0], Decimal(str(row[1])), row[2]) for row in rows
        ]


ALEMBIC_ENV = runs("docs/how-to/schema.md", "# env.py")


def test_alembic_env_targets_the_app_tables_and_dynastream_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.orders import models

    my_app = types.ModuleType("my_app")
    my_app.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_app", my_app)
    monkeypatch.setitem(sys.modules, "my_app.models", models)
    namespace: dict[str, Any] = {}

    execute(ALEMBIC_ENV(), namespace)

    tables = {name for metadata in namespace["target_metadata"] for name in metadata.tables}
    assert {"orders", *dynastream.schema.metadata.tables} == tables


@pytest.fixture
def plain_dynastream_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("dynastream")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    logger.handlers[:] = []
    logger.propagate = True
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


CONFIGURE_LOGGING = runs(
    "docs/how-to/observability.md",
    "dynastream.configure_logging()          # level from DYNASTREAM_LOG_LEVEL, default INFO",
)


def test_configure_logging_adds_one_json_handler_and_stops_propagation(
    plain_dynastream_logger: logging.Logger,
) -> None:
    execute(CONFIGURE_LOGGING(), {"dynastream": dynastream})

    (handler,) = plain_dynastream_logger.handlers
    assert isinstance(handler.formatter, dynastream.JsonFormatter)
    assert not plain_dynastream_logger.propagate


JSON_FORMATTER = runs("docs/how-to/observability.md", "handler = logging.StreamHandler()")


def test_json_formatter_on_a_handler_of_your_own() -> None:
    namespace: dict[str, Any] = {"logging": logging, "dynastream": dynastream}

    execute(JSON_FORMATTER(), namespace)

    assert isinstance(namespace["handler"].formatter, dynastream.JsonFormatter)


POWERTOOLS_COPY = runs("docs/how-to/observability.md", "from aws_lambda_powertools import Logger")


def test_powertools_configuration_copied_to_dynastream_is_kept(
    plain_dynastream_logger: logging.Logger,
) -> None:
    pytest.importorskip("aws_lambda_powertools")
    namespace: dict[str, Any] = {}
    execute(POWERTOOLS_COPY(), namespace)
    copied = list(plain_dynastream_logger.handlers)

    dynastream.configure_logging()

    assert namespace["logger"].handlers == copied == plain_dynastream_logger.handlers


TESTING_MARK = runs(
    "docs/how-to/testing.md", 'pytestmark = pytest.mark.dynastream_app("examples.payments.handler:app")'
)
TESTING_CREATE_ALL = runs(
    "docs/how-to/testing.md", "Base.metadata.create_all(dynastream_app.container.engine())"
)
TESTING_CONFTEST = runs("docs/how-to/testing.md", "import pytest")


def test_the_marker_line_is_the_one_the_example_uses() -> None:
    namespace: dict[str, Any] = {"pytest": pytest}

    execute(TESTING_MARK(), namespace)

    assert ("dynastream_app", ("examples.payments.handler:app",)) == (
        namespace["pytestmark"].name,
        namespace["pytestmark"].args,
    )
    assert TESTING_MARK() in (ROOT / "examples/payments/tests/test_testing_kit.py").read_text()


def test_create_all_on_the_fixture_engine_creates_your_tables() -> None:
    from examples.orders.models import Base

    dynastream_app = dynastream.App(database_url="sqlite://")

    execute(TESTING_CREATE_ALL(), {"Base": Base, "dynastream_app": dynastream_app})

    assert ["orders"] == sa.inspect(dynastream_app.container.engine()).get_table_names()


def test_a_conftest_stream_events_fixture_replaces_the_plugin_one(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(TESTING_CONFTEST())
    pytester.makepyfile(
        test_keys="""
        def test_keys_per_table(stream_events):
            order = stream_events.insert("Orders", {"orderId": "o-1", "line": 2, "sku": "SKU-1"})
            payment = stream_events.insert("Payments", {"paymentId": "p-1", "amount": 5})
            assert {"orderId": {"S": "o-1"}, "line": {"N": "2"}} == order["dynamodb"]["Keys"]
            assert {"paymentId": {"S": "p-1"}} == payment["dynamodb"]["Keys"]
        """
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1)
