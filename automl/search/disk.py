"""A full disk under the artifacts: recognised in a trial's error or a driver exception, and
turned into one error that names the file system and the path."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from automl.errors import AutomlError

NO_SPACE = (os.strerror(errno.ENOSPC), f"[Errno {errno.ENOSPC}]")


class DiskFullError(AutomlError):
    exit_code = 1


def says_disk_full(text: str | None) -> bool:
    return bool(text) and any(marker in text for marker in NO_SPACE)


def caused_by_full_disk(exc: BaseException) -> bool:
    """True when ``exc`` or an exception in its chain is ENOSPC."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if says_disk_full(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def disk_full_error(location: Path | str, name: str, resume_hint: str) -> DiskFullError:
    """The error for a full disk under ``location`` (the artifacts directory)."""
    if isinstance(location, str):  # a storage URI: Ray's storage reported it
        where = f"the artifacts storage {location}"
    else:
        disk = mount_point(location)
        try:
            free = f", {shutil.disk_usage(disk).free // 1024} KiB free"
        except OSError:
            free = ""
        where = f"the disk of {location} (file system mounted at {disk}{free})"
    return DiskFullError(f"no space left on {where}: experiment '{name}' stopped; free space "
                         f"there (or choose another --artifacts) and continue with "
                         f"{resume_hint}")
