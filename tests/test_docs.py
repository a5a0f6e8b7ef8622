"""
The documentation's code runs: every ```pycon block of a page, as one doctest.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

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
    import importlib

    module = importlib.import_module(module_name)

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)

    assert 0 == result.failed
