"""The package list in pyproject.toml covers every package directory: a package missing there is
missing from a wheel (``pip install automl``), which an editable install would hide."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


def listed() -> tuple[set[str], dict[str, str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(config["packages"]), config["package-dir"]


def on_disk(package_dir: dict[str, str]) -> set[str]:
    found = set()
    for name, directory in package_dir.items():
        root = REPO / directory
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root)
            found.add(".".join([name, *relative.parts]))
    return found


def test_every_package_directory_is_listed() -> None:
    packages, package_dir = listed()
    assert on_disk(package_dir) - packages == set(), "add these to pyproject.toml's packages"
    assert packages - on_disk(package_dir) == set(), "listed packages with no directory"


@pytest.mark.slow
def test_the_wheel_holds_every_module(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path), str(REPO)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    wheel = next(tmp_path.glob("automl-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    _, package_dir = listed()
    for name, directory in package_dir.items():
        for module in (REPO / directory).rglob("*.py"):
            inside = "/".join([name, *module.relative_to(REPO / directory).parts])
            assert inside in names, f"{inside} is not in the wheel"
