"""
The package's layout: no import circle, nothing runs back up, each module single-purpose.

Every import counts: at module level, under `TYPE_CHECKING`, and inside
functions. The checks read the source (AST), so they see imports that a run
would never execute.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dynastream"
# One topic, kept whole (see docs/development.md, "Architecture").
LONG_MODULES_ALLOWED = {"dynastream._replication.coerce"}
MAX_LINES = 500


def module_files(package: Path) -> dict[str, Path]:
    """
    Return the package's modules by dotted name.
    """
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """
    Return the package modules `name` imports, each with the line of its first import.

    `from package import name` counts as an import of the module `package.name`
    when there is one, of `package` otherwise.
    """
    root = next(iter(modules)).split(".")[0]
    found: dict[str, int] = {}
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                for alias in node.names
            ]
        for imported in targets:
            target = imported
            while target and target not in modules:  # `import a.b.c` imports a, a.b and a.b.c
                target = target.rpartition(".")[0]
            if target.split(".")[0] == root and target != name:
                found.setdefault(target, node.lineno)
    return found


def import_graph(package: Path) -> dict[str, dict[str, int]]:
    modules = module_files(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """
    Return each import circle once, as the modules along it (Tarjan's strongly connected components).
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_checks_see_circles_through_type_checking_and_function_bodies(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
            "pkg/b.py": "def f():\n    from pkg import c\n",
            "pkg/c.py": "from . import a\n",
            "pkg/d.py": "import pkg.a\n",
        },
    )

    assert [["pkg.a", "pkg.b", "pkg.c"]] == cycles(import_graph(package))


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph(PACKAGE)

    assert [] == cycles(graph)
    # The package's own __init__ imports its parts; none of them imports it back, but for
    # the testing kit, which is built on the public API and which the package never imports.
    back = [name for name, targets in graph.items() if "dynastream" in targets and name != "dynastream"]
    assert [] == sorted(name for name in back if not name.startswith("dynastream.testing"))


def test_only_the_testing_kit_imports_the_testing_kit() -> None:
    graph = import_graph(PACKAGE)

    importers = sorted(
        name
        for name, targets in graph.items()
        if not name.startswith("dynastream.testing")
        and any(target.startswith("dynastream.testing") for target in targets)
    )

    assert [] == importers


def test_exceptions_and_typing_stand_on_value_types_only() -> None:
    graph = import_graph(PACKAGE)

    assert {} == graph["dynastream.exceptions"]
    assert {"dynastream._records", "dynastream._summary", "dynastream._uow"} >= set(
        graph["dynastream.typing"]
    )


def test_no_private_name_crosses_a_module_border() -> None:
    modules = module_files(PACKAGE)
    crossings = []
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                module = ".".join(
                    [*here[: len(here) - (node.level - 1)], *([node.module] if node.module else [])]
                )
            else:
                module = node.module or ""
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if module.startswith("dynastream") and private and f"{module}.{alias.name}" not in modules:
                    crossings.append(f"{name}:{node.lineno} imports {module}.{alias.name}")

    assert [] == crossings


# Who may import each group: the core reaches built-in replication only through the
# App (inside App.replicate), the package's __init__ re-exports, schema inference is a
# tool built on replication's mapping and the sources, and the command line is the top
# of the stack.
LAYERS = {
    "dynastream._replication": (
        "dynastream._replication",
        "dynastream._sources",
        "dynastream._cli",
        "dynastream._app",
        "dynastream.testing",
        "dynastream.inference",
    ),
    "dynastream._sources": ("dynastream._sources", "dynastream._cli", "dynastream.inference"),
    "dynastream.inference": ("dynastream.inference", "dynastream._cli"),
    "dynastream._cli": ("dynastream._cli", "dynastream.__main__"),
}


@pytest.mark.parametrize("group", sorted(LAYERS))
def test_imports_run_down_the_layers(group: str) -> None:
    allowed = LAYERS[group]
    graph = import_graph(PACKAGE)

    importers = sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        for target in targets
        if (target == group or target.startswith(group + "."))
        and name != "dynastream"  # the package's __init__ re-exports (its AWS tools on first use)
        and not any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)
    )

    assert [] == importers


@pytest.mark.parametrize("folder", ["_replication", "_sources", "_cli"])
def test_each_group_has_its_folder(folder: str) -> None:
    assert (PACKAGE / folder / "__init__.py").is_file()


def test_no_module_is_longer_than_a_topic() -> None:
    too_long = {
        name: length
        for name, path in module_files(PACKAGE).items()
        if (length := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and name not in LONG_MODULES_ALLOWED
    }

    assert {} == too_long
