"""What every component has in common: a name, a description and declared parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from automl.params import Param


@dataclass(frozen=True)
class ParamDef:
    """A parameter a component accepts.

    Args:
        default: the default search space (``FloatRange(0.0, 0.5)``) or ``Fixed(value)``.
        type: the Python type(s) every value must have; checked against YAML overrides.
        help: one line for ``automl plugins`` and the docs.
    """

    default: Param
    type: type | tuple[type, ...]
    help: str = ""


class Component:
    """Base of every component kind. Subclasses set ``name`` and may declare ``params``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[Mapping[str, ParamDef]] = {}

    @classmethod
    def defaults(cls) -> dict[str, Param]:
        return {key: spec.default for key, spec in cls.params.items()}


DATA_KINDS = ("image", "tabular", "text")


def fixed_params(component: type[Component], values: Mapping[str, Any]) -> dict[str, Any]:
    """Fill a component's fixed (non-searched) defaults in around the given values."""
    out: dict[str, Any] = {}
    for key, spec in component.params.items():
        if key in values:
            out[key] = values[key]
        elif hasattr(spec.default, "value"):
            out[key] = spec.default.value  # type: ignore[union-attr]
    out.update({k: v for k, v in values.items() if k not in out})
    return out
