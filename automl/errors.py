"""Errors that end a command with one clear message instead of a traceback.

Every error the platform raises on purpose derives from :class:`AutomlError`. The CLI prints its
message and exits with :attr:`AutomlError.exit_code`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable


class AutomlError(Exception):
    """Base of every expected failure: bad input, a broken plugin, an unusable database."""

    exit_code: int = 1


class ConfigError(AutomlError):
    """The experiment file is malformed; the message names the field path (and line if known)."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, source: str | None = None,
                 line: int | None = None) -> None:
        self.path = path
        self.source = source
        self.line = line
        self.detail = message
        where = source or ""
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = ": ".join(p for p in (where, path) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def located(self, source: str | None, line: int | None) -> "ConfigError":
        """The same error with the file (and line) filled in where it had none."""
        if self.source is not None or (source is None and line is None):
            return self
        return ConfigError(self.detail, path=self.path, source=source,
                           line=self.line if self.line is not None else line)


class PluginError(AutomlError):
    """A plugin failed to import, or one of its hooks raised or registered something invalid."""

    exit_code = 2


class StoreError(AutomlError):
    """The results database cannot be opened or does not hold what was asked for."""

    exit_code = 2


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the nearest valid name, or an empty string."""
    matches = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters so a huge value cannot flood a message."""
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxstring, shortener.maxother = 3, limit, limit
    text = shortener.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def valid_names(valid: Iterable[str]) -> str:
    names = sorted(str(v) for v in valid)
    return ", ".join(names) if names else "(none registered)"
