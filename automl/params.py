"""The search-space grammar: what a parameter may be in an experiment file or a component.

In YAML a parameter is written as

* a fixed value: ``lr: 0.01``
* a float or int range: ``lr: {low: 1.0e-4, high: 0.1, log: true}`` (ints give an int range;
  ``step`` is optional)
* a list of choices: ``batch_size: [32, 64, 128]`` (or ``{choice: [...]}``)
* a fixed list, when a list is the value itself: ``{value: [16, 32]}``

Components declare their defaults with the same classes (``FloatRange(0.0, 0.5)``), so the YAML can
narrow or fix any of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from automl.errors import ConfigError, short_repr

if TYPE_CHECKING:
    import optuna

Scalar = Union[None, bool, int, float, str]


@dataclass(frozen=True)
class Fixed:
    """A value that is not searched."""

    value: Any

    def suggest(self, trial: "optuna.Trial", name: str) -> Any:
        return self.value

    @property
    def searched(self) -> bool:
        return False

    def describe(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class FloatRange:
    """A float drawn from ``[low, high]``, on a log scale when ``log`` is true."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log, self.step)
        if self.log and self.step is not None:
            raise ValueError("a log range cannot have a step")

    def suggest(self, trial: "optuna.Trial", name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    @property
    def searched(self) -> bool:
        return self.low != self.high

    def describe(self) -> str:
        return f"float [{self.low:g}, {self.high:g}]" + (" log" if self.log else "") + (
            f" step {self.step:g}" if self.step else "")


@dataclass(frozen=True)
class IntRange:
    """An int drawn from ``[low, high]`` (inclusive)."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log, self.step)

    def suggest(self, trial: "optuna.Trial", name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    @property
    def searched(self) -> bool:
        return self.low != self.high

    def describe(self) -> str:
        return f"int [{self.low}, {self.high}]" + (" log" if self.log else "") + (
            f" step {self.step}" if self.step != 1 else "")


@dataclass(frozen=True)
class Choice:
    """One of a list of scalar values."""

    options: tuple[Scalar, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("a choice needs at least one option")
        for option in self.options:
            if option is not None and not isinstance(option, (bool, int, float, str)):
                raise ValueError("choice options must be numbers, strings, booleans or null, "
                                 f"got {short_repr(option)}")
        if len(set(map(repr, self.options))) != len(self.options):
            raise ValueError(f"choice options repeat: {short_repr(list(self.options))}")

    def suggest(self, trial: "optuna.Trial", name: str) -> Scalar:
        if len(self.options) == 1:
            return self.options[0]
        return trial.suggest_categorical(name, list(self.options))

    @property
    def searched(self) -> bool:
        return len(self.options) > 1

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


Param = Union[Fixed, FloatRange, IntRange, Choice]
PARAM_TYPES = (Fixed, FloatRange, IntRange, Choice)

_RANGE_KEYS = {"low", "high", "log", "step"}


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if isinstance(low, bool) or isinstance(high, bool):
        raise ValueError("range bounds must be numbers")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("range bounds must be finite numbers")
    if low > high:
        raise ValueError(f"low ({low}) is greater than high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got low={low}")
    if log and step not in (None, 1):
        raise ValueError("a log range cannot have a step")
    if step is not None and step <= 0:
        raise ValueError(f"step must be positive, got {step}")


def parse_param(raw: Any, path: str) -> Param:
    """Turn the YAML form of a parameter into a :data:`Param`, or raise :class:`ConfigError`."""
    try:
        if isinstance(raw, PARAM_TYPES):
            return raw
        if isinstance(raw, list):
            return Choice(tuple(raw))
        if isinstance(raw, dict):
            keys = set(raw)
            if keys == {"value"}:
                return Fixed(raw["value"])
            if keys == {"choice"}:
                if not isinstance(raw["choice"], list):
                    raise ValueError("'choice' must be a list")
                return Choice(tuple(raw["choice"]))
            if {"low", "high"} <= keys and keys <= _RANGE_KEYS:
                return _parse_range(raw)
            unknown = keys - _RANGE_KEYS - {"value", "choice"}
            if unknown:
                raise ValueError(
                    f"unknown key(s) {sorted(unknown)} in a parameter; write a fixed value, "
                    "a list of choices, {low, high[, log, step]}, {choice: [...]} or {value: ...}")
            raise ValueError(
                "a range needs both 'low' and 'high'" if keys & _RANGE_KEYS
                else f"cannot mix {sorted(keys)} in one parameter")
        return Fixed(raw)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path) from None


def _parse_range(raw: dict[str, Any]) -> Param:
    low, high = raw["low"], raw["high"]
    log = raw.get("log", False)
    step = raw.get("step")
    for key, value in (("low", low), ("high", high), ("step", step)):
        if (value is not None or key != "step") and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"'{key}' must be a number, got {short_repr(value)}")
    if not isinstance(log, bool):
        raise ValueError(f"'log' must be true or false, got {short_repr(log)}")
    if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)):
        if log and step is not None and step != 1:
            raise ValueError("a log range cannot have a step")
        return IntRange(low, high, log=log, step=1 if step is None else step)
    return FloatRange(float(low), float(high), log=log,
                      step=float(step) if step is not None else None)


def check_kind(param: Param, kind: type | tuple[type, ...], path: str) -> None:
    """Raise when ``param`` can produce a value that is not of ``kind`` (e.g. a float for an int)."""
    if isinstance(param, Fixed):
        values: tuple[Any, ...] = (param.value,)
    elif isinstance(param, Choice):
        values = param.options
    elif isinstance(param, IntRange):
        values = (param.low,)
    else:
        values = (param.low,)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for value in values:
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"expected {names}, got {short_repr(value)}", path=path)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"expected a finite number, got {value!r}", path=path)
