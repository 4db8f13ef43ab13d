"""What every component has in common: a name, a description and declared parameters."""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from automl.params import Param


@dataclass(frozen=True)
class ParamDef:
    """A parameter a component accepts.

    Args:
        default: the default search space (``FloatRange(0.0, 0.5)``) or ``Fixed(value)``.
        type: the Python type(s) every value must have; checked against YAML overrides.
        help: one line for ``automl plugins`` and the docs.
        required: the experiment must set it (``default`` is then ``Fixed(None)``).
        is_path: a file or directory; a relative value is resolved against the directory of the
            experiment file before the component sees it.
        init_only: only initialises a model before it trains (pretrained weights to start from):
            rebuilding a trained model to load its saved weights (an export) passes None, so an
            exported model does not need the file.
    """

    default: Param
    type: type | tuple[type, ...]
    help: str = ""
    required: bool = False
    is_path: bool = False
    init_only: bool = False


class Component(ABC):
    """Base of every component kind. Subclasses set ``name`` and may declare ``params``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[Mapping[str, ParamDef]] = {}

    @classmethod
    def defaults(cls) -> dict[str, Param]:
        return {key: spec.default for key, spec in cls.params.items()}


DATA_KINDS = ("image", "tabular", "text")
