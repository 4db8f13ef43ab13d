"""The library's layering, read from its source: the library never imports the CLI and prints
nothing (the CLI renders the library's events); the store knows no Ray and no plugins."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

LIBRARY = REPO / "automl"
CLI = LIBRARY / "cli"


def modules(root: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    return sorted(p for p in root.rglob("*.py")
                  if not any(p.is_relative_to(s) for s in skip))


def imported(path: Path) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` in the file names (also inside
    functions: the library imports lazily)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(package + ".")}


LIBRARY_MODULES = modules(LIBRARY, skip=(CLI, LIBRARY / "__main__.py"))


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_library_never_imports_the_cli(path: Path) -> None:
    assert not within(imported(path), "automl.cli"), f"{path} imports the CLI"


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_library_prints_nothing(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    printing = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name) and node.func.id == "print"]
    assert not printing, f"{path} calls print() on lines {printing}: emit an event instead"
    assert not within(imported(path), "rich"), f"{path} imports rich: rendering is the CLI's"


@pytest.mark.parametrize("path", modules(LIBRARY / "store"),
                         ids=lambda p: str(p.relative_to(REPO)))
def test_the_store_knows_no_ray_torch_or_plugins(path: Path) -> None:
    names = imported(path)
    for package in ("ray", "torch", "automl_plugins", "automl.plugin_manager", "automl.trial"):
        assert not within(names, package), f"{path} imports {package}"


def test_the_checks_see_the_whole_library() -> None:
    """The scan is not vacuous: it reads the library's modules and finds imports in them."""
    assert len(LIBRARY_MODULES) > 50
    assert within(imported(LIBRARY / "runner.py"), "automl.search")
    assert within(imported(CLI / "common.py"), "rich")
