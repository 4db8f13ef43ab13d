"""Multi-task learning: several targets, each with its registered task, learned by one model.

A multi-task dataset's spec has ``task == MULTITASK`` and lists its targets in
``spec.extra["targets"]``: per target its name, task, the columns it occupies in ``y`` and the
sub-spec its task sees (classes, target names, what the task fitted). ``y`` is one float array
with every target's columns side by side (a class target holds its class index).

:class:`MultiTask` composes the targets' registered tasks into one task: the architecture maps a
batch to a feature vector of :data:`FEATURES` values (``spec.output_size`` as the body sees it), the
platform adds one head per target (ReLU, then a linear layer of the target's output size), and
the loss is the weighted sum of the targets' losses: weights sampled like any parameter
(``multitask.weight.<target>``) or learned by uncertainty weighting (Kendall, Gal and Cipolla,
2018: ``sum_t exp(-s_t) * L_t + s_t`` with a learned ``s_t`` per target), as
``multitask.weighting`` chooses. Predictions are every target's predictions side by side; metrics
are named per target (``price/rmse``) and read that target's columns only.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.components import DataSpec, EvalContext, Task
from automl.errors import ConfigError
from automl.params import Choice, FloatRange, Param

if TYPE_CHECKING:
    from automl.registry import Registry

MULTITASK = "multitask"
#: the width of the feature vector the architecture's body produces for the heads
FEATURES = 64
WEIGHTINGS = ("fixed", "uncertainty")
#: the default space of each target's loss weight (fixed weighting)
WEIGHT_SPACE = FloatRange(0.2, 5.0, log=True)


@dataclass(frozen=True)
class Target:
    """One target of a multi-task spec."""

    name: str
    task: str
    columns: tuple[int, int]  # [start, stop) in y
    spec: DataSpec

    def take(self, y: np.ndarray) -> np.ndarray:
        """This target's part of ``y``, as its task expects it (class labels as ints)."""
        part = np.asarray(y)[:, self.columns[0]:self.columns[1]]
        if self.spec.num_classes:
            return part[:, 0].astype(np.int64)
        return part


def targets_of(spec: DataSpec) -> list[Target]:
    out = []
    for entry in spec.extra.get("targets", []):
        sub = entry["spec"]
        out.append(Target(entry["name"], entry["task"], tuple(entry["columns"]),  # type: ignore[arg-type]
                          DataSpec(spec.kind, spec.input_shape, int(sub.get("num_classes", 0)),
                                   tuple(sub.get("class_names") or ()),
                                   dict(sub.get("extra") or {}), entry["task"],
                                   tuple(sub.get("target_names") or ()),
                                   int(sub.get("output_size", 0)))))
    return out


def target_entry(name: str, task: str, columns: tuple[int, int], spec: DataSpec
                 ) -> dict[str, Any]:
    """A target as recorded in ``spec.extra['targets']`` (JSON-serialisable)."""
    return {"name": name, "task": task, "columns": list(columns),
            "spec": {"num_classes": spec.num_classes, "class_names": list(spec.class_names),
                     "target_names": list(spec.target_names), "extra": dict(spec.extra),
                     "output_size": spec.output_size}}


def task_for(spec: DataSpec, registry: "Registry") -> Task:
    """The task a spec names: a registered one, or the composition of a multi-task spec."""
    if spec.task == MULTITASK:
        return MultiTask({t.name: registry.create("task", t.task)  # type: ignore[misc]
                          for t in targets_of(spec)}, spec)
    return registry.create("task", spec.task)  # type: ignore[return-value]


def split_metric_name(name: str) -> tuple[str | None, str]:
    """``"price/rmse"`` -> ``("price", "rmse")``; ``"params"`` -> ``(None, "params")``."""
    target, _, metric = name.rpartition("/")
    return (target or None), metric


class TargetMetric:
    """A registered metric scored on one target's columns of a multi-task prediction."""

    def __init__(self, metric: Any, target: Target) -> None:
        self.metric = metric
        self.target = target
        self.model_only = False
        self.direction = metric.direction

    def compute(self, ctx: EvalContext) -> float:
        start, stop = _output_columns(ctx.spec)[self.target.name]
        return self.metric.compute(EvalContext(
            self.target.take(ctx.y_true), np.asarray(ctx.proba)[:, start:stop], ctx.model,
            self.target.spec, ctx.split))


def create_metric(registry: "Registry", name: str, spec: DataSpec) -> Any:
    """The metric ``name`` names, per target (``price/rmse``) for a multi-task spec."""
    target, metric = split_metric_name(name)
    if target is None:
        return registry.create("metric", metric)
    found = {t.name: t for t in targets_of(spec)}
    return TargetMetric(registry.create("metric", metric), found[target])


def _output_columns(spec: DataSpec) -> dict[str, tuple[int, int]]:
    """Where each target's outputs (and predictions) lie: its heads in target order."""
    out, start = {}, 0
    for target in targets_of(spec):
        out[target.name] = (start, start + target.spec.output_size)
        start += target.spec.output_size
    return out


def task_space(targets: Sequence[str], overrides: Mapping[str, Any], path: str
               ) -> dict[str, Param]:
    """The searched loss parameters of a multi-task experiment (``multitask:`` in the YAML)."""
    from automl.params import check_kind, parse_param

    unknown = set(overrides) - {"weighting", "weights"}
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)}; valid: weighting, weights",
                          path=path)
    weighting = parse_param(overrides.get("weighting", list(WEIGHTINGS)), f"{path}.weighting")
    check_kind(weighting, str, f"{path}.weighting")
    options = weighting.options if isinstance(weighting, Choice) else (weighting.value,)  # type: ignore[attr-defined]
    bad = [o for o in options if o not in WEIGHTINGS]
    if bad:
        raise ConfigError(f"weighting {bad[0]!r} is not one of {list(WEIGHTINGS)}",
                          path=f"{path}.weighting")
    weights = overrides.get("weights") or {}
    if not isinstance(weights, Mapping):
        raise ConfigError("expected a mapping of target -> weight space", path=f"{path}.weights")
    for name in weights:
        if name not in targets:
            raise ConfigError(f"unknown target '{name}'; targets: {', '.join(targets)}",
                              path=f"{path}.weights.{name}")
    space: dict[str, Param] = {"weighting": weighting}
    for name in targets:
        param = parse_param(weights[name], f"{path}.weights.{name}") if name in weights \
            else WEIGHT_SPACE
        check_kind(param, float, f"{path}.weights.{name}")
        space[f"weight.{name}"] = param
    return space


class MultiTask(Task):
    """Several targets' tasks composed (see the module docs); built by :func:`task_for`."""

    name = MULTITASK
    description = "several targets, each with its task: shared body, one head per target"

    def __init__(self, tasks: Mapping[str, Task], spec: DataSpec) -> None:
        self.tasks = dict(tasks)
        self.spec = spec
        self.weights: dict[str, float] = {name: 1.0 for name in tasks}
        self.model: Any = None
        self.target_columns: dict[str, tuple[int, int]] = {}

    # -- the spec ------------------------------------------------------------------------------

    def prepare(self, spec: DataSpec, y_train: np.ndarray) -> DataSpec:
        entries = []
        for target in targets_of(spec):
            task = self.tasks[target.name]
            sub = task.prepare(target.spec, target.take(y_train))
            sub = replace(sub, output_size=int(task.output_size(sub)))
            entries.append(target_entry(target.name, target.task, target.columns, sub))
        return replace(spec, extra={**spec.extra, "targets": entries})

    def output_size(self, spec: DataSpec) -> int:
        return sum(t.spec.output_size or self.tasks[t.name].output_size(t.spec)
                   for t in targets_of(spec))

    def body_spec(self, spec: DataSpec) -> DataSpec:
        return replace(spec, output_size=FEATURES)

    def check_targets(self, y: np.ndarray, spec: DataSpec, where: str) -> None:
        for target in targets_of(spec):
            self.tasks[target.name].check_targets(target.take(y), target.spec,
                                                  f"{where}, target '{target.name}'")

    def split(self, y: np.ndarray, spec: DataSpec, val: float, test: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split as the first target's task splits (stratified by its classes, for instance)."""
        first = targets_of(spec)[0]
        return self.tasks[first.name].split(first.take(y), first.spec, val, test, seed)

    # -- the model -----------------------------------------------------------------------------

    def wrap(self, body: Any, spec: DataSpec, params: Mapping[str, Any]) -> Any:
        """Add one head per target on the body; read the sampled loss weighting."""
        from torch import nn

        weighting = str(params.get("weighting", "fixed"))
        self.weights = {name: float(params.get(f"weight.{name}", 1.0)) for name in self.tasks}
        sizes = [(t.name, t.spec.output_size) for t in targets_of(spec)]
        self.model = multi_head_class()(body, sizes, weighting == "uncertainty")
        return self.model

    def training_targets(self, y: Any, spec: DataSpec) -> Any:
        import torch

        parts = [self.tasks[t.name].training_targets(
            torch.as_tensor(t.take(y.cpu().numpy())).to(y.device), t.spec)
            for t in targets_of(spec)]
        self.target_columns = {}
        start = 0
        for t, part in zip(targets_of(spec), parts):
            self.target_columns[t.name] = (start, start + part.shape[1])
            start += part.shape[1]
        return torch.cat([p.float().reshape(len(y), -1) for p in parts], dim=1)

    def loss(self, outputs: Any, targets: Any, training: dict[str, Any]) -> Any:
        total = 0
        log_vars = getattr(self.model, "log_vars", None)
        columns = _output_columns(self.spec)
        for index, name in enumerate(self.tasks):
            o0, o1 = columns[name]
            t0, t1 = self.target_columns[name]
            loss = self.tasks[name].loss(outputs[:, o0:o1], targets[:, t0:t1], training)
            if log_vars is not None:
                total = total + (-log_vars[index]).exp() * loss + log_vars[index]
            else:
                total = total + self.weights[name] * loss
        return total

    def predict(self, outputs: Any, spec: DataSpec) -> Any:
        import torch

        columns = _output_columns(spec)
        return torch.cat([self.tasks[t.name].predict(outputs[:, slice(*columns[t.name])],
                                                     t.spec).float()
                          for t in targets_of(spec)], dim=1)

    def prediction_columns(self, spec: DataSpec) -> list[str]:
        return [f"{t.name}/{column}" for t in targets_of(spec)
                for column in self.tasks[t.name].prediction_columns(t.spec)]

    def decide(self, predictions: np.ndarray, spec: DataSpec) -> Any:
        """Target name -> that target's task's decision."""
        columns = _output_columns(spec)
        return {t.name: self.tasks[t.name].decide(predictions[:, slice(*columns[t.name])], t.spec)
                for t in targets_of(spec)}

    def prediction_table(self, predictions: np.ndarray, spec: DataSpec) -> dict[str, Any]:
        """Every target's own columns, named ``<target>/<column>``."""
        columns = _output_columns(spec)
        return {f"{t.name}/{name}": values for t in targets_of(spec)
                for name, values in self.tasks[t.name].prediction_table(
                    predictions[:, slice(*columns[t.name])], t.spec).items()}

    def combine(self, weights: np.ndarray, predictions: Sequence[np.ndarray]) -> np.ndarray:
        """Per head: each target's predictions combined by its task."""
        stacked = [np.asarray(p) for p in predictions]
        parts = []
        for name, (start, stop) in _output_columns(self.spec).items():
            parts.append(self.tasks[name].combine(weights, [p[:, start:stop] for p in stacked]))
        return np.concatenate(parts, axis=1)

    def agreement(self, a: np.ndarray, b: np.ndarray) -> float:
        """The mean of the targets' agreements."""
        return float(np.mean([self.tasks[name].agreement(a[:, s:e], b[:, s:e])
                              for name, (s, e) in _output_columns(self.spec).items()]))

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        first = targets_of(self.spec)[0]
        return self.tasks[first.name].stratify(first.take(y))


@functools.cache
def multi_head_class() -> type:
    """The multi-head module class (defined on first use: torch is imported lazily)."""
    import torch
    from torch import nn

    class MultiHeadModel(nn.Module):
        """A shared body, then one head per target; outputs side by side."""

        def __init__(self, body: nn.Module, sizes: Sequence[tuple[str, int]],
                     uncertainty: bool) -> None:
            super().__init__()
            self.body = body
            self.heads = nn.ModuleDict({name: nn.Sequential(nn.ReLU(), nn.Linear(FEATURES, size))
                                        for name, size in sizes})
            if uncertainty:
                self.log_vars = nn.Parameter(torch.zeros(len(sizes)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            features = self.body(x)
            return torch.cat([head(features) for head in self.heads.values()], dim=1)

    return MultiHeadModel
