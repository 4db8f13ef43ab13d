"""Real file-system faults for tests: a small tmpfs (full disk, read-only remount) and an
immutable file. Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted, the test is
skipped with the reason."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True)


@contextmanager
def tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the block; unmounted (lazily) afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))


def remount_read_only(path: Path) -> None:
    done = _run("mount", "-o", "remount,ro", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot remount {path} read-only: {done.stderr.strip()}")


@contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """``chattr +i``: not even root may write the file (chmod does not stop root)."""
    done = _run("chattr", "+i", str(path))
    if done.returncode != 0:
        pytest.skip(f"cannot make {path} immutable: {done.stderr.strip()}")
    try:
        yield path
    finally:
        _run("chattr", "-i", str(path))
