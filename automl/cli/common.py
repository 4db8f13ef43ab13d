"""What every command shares: the console, the --db option's help, opening the results database."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console

from automl.errors import AutomlError

if TYPE_CHECKING:
    from automl.store import Store

DB_HELP = "SQLAlchemy database URL [default: sqlite:///automl.db in the current directory]"


class UsageError(AutomlError):
    """A command cannot go on as asked (e.g. a confirmation with no terminal to ask on)."""

    exit_code = 2


def console() -> Console:
    """Standard output; 160 columns when it is not a terminal (a file, a pipe, a test)."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def open_store(db: str | None) -> "Store":
    """An existing results database (``--db``, else ./automl.db); never creates one."""
    from automl.store import open_existing_store

    return open_existing_store(db)
