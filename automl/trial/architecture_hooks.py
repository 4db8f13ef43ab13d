"""An architecture's optional training hooks, bound to a trial's parameters.

:meth:`~automl.components.Architecture.param_groups` gives parts of the model their own learning
rate (a pretrained body trained slower than its new head) and
:meth:`~automl.components.Architecture.on_epoch_start` runs before every training epoch (gradual
unfreezing). An exception either raises is a :class:`~automl.errors.PluginError` naming the plugin,
the architecture and the hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from automl.components import Architecture
from automl.errors import PluginError


@dataclass(frozen=True)
class ArchitectureHooks:
    """The hooks of the architecture ``name`` (created from the registry) with ``params``."""

    architecture: Any
    plugin: str
    name: str
    params: dict[str, Any]

    @classmethod
    def of(cls, registry: Any, name: str, params: dict[str, Any]) -> "ArchitectureHooks":
        entry = registry.get("architecture", name)
        return cls(entry.create(), entry.plugin, name, dict(params))

    def _where(self, hook: str) -> str:
        return f"plugin '{self.plugin}', architecture '{self.name}': {hook}()"

    def param_groups(self, model: Any) -> list[dict[str, Any]] | None:
        """The architecture's parameter groups for ``model``, checked; None for one group."""
        try:
            groups = self.architecture.param_groups(dict(self.params), model)
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"{self._where('param_groups')} raised {type(exc).__name__}: "
                              f"{exc}") from exc
        if groups is None:
            return None
        if not isinstance(groups, list) or not all(
                isinstance(g, dict) and "params" in g for g in groups):
            raise PluginError(f"{self._where('param_groups')} must return None or a list of "
                              f"dicts with 'params', got {type(groups).__name__}")
        for group in groups:
            factor = group.get("lr_factor", 1.0)
            if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor < 0:
                raise PluginError(f"{self._where('param_groups')}: lr_factor must be a "
                                  f"non-negative number, got {factor!r}")
        return groups

    def on_epoch_start(self) -> Callable[[Any, int], None] | None:
        """What the trainer calls before each epoch; None when the architecture declares none."""
        if type(self.architecture).on_epoch_start is Architecture.on_epoch_start:
            return None

        def call(model: Any, epoch: int) -> None:
            try:
                self.architecture.on_epoch_start(dict(self.params), model, epoch)
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"{self._where('on_epoch_start')} raised "
                                  f"{type(exc).__name__}: {exc} (epoch {epoch})") from exc
        return call


def optimizer_groups(model: Any, groups: list[dict[str, Any]], lr: float
                     ) -> list[dict[str, Any]]:
    """torch parameter groups from an architecture's groups (``params``, ``lr_factor``): each at
    ``lr`` times its factor, then the model's parameters in no earlier group at ``lr``."""
    seen: set[int] = set()
    out = []
    for group in groups:
        params = [p for p in group["params"] if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            out.append({"params": params, "lr": lr * float(group.get("lr_factor", 1.0))})
    rest = [p for p in model.parameters() if id(p) not in seen]
    return out + ([{"params": rest, "lr": lr}] if rest else [])
