"""The architecture's output shape, checked on one batch before any training.

A model must map a batch of N inputs to N x ``spec.output_size`` raw outputs (the task decides the
size: one logit per class for classification, one value per target for regression). A model built
against the older contract, one logit per class from ``spec.num_classes``, fits exactly when the
task is classification; for any other task the message says what to change. A wrong shape would otherwise
fail every trial deep inside the loss ("multi-target not supported"); here it is one line naming
the plugin, the architecture, the expected and the actual shape. The trial checks its own model;
the runner also builds each architecture's first configuration before Ray starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl.components import DataSpec
from automl.errors import ConfigError, PluginError
from automl.multitask import task_for
from automl.params import Choice, Fixed, FloatRange, IntRange, Param

#: examples in the batch the output is checked on (two: batch norm needs more than one)
CHECK_BATCH = 2


def check_output_shape(model: Any, batch: Any, spec: DataSpec, where: str) -> None:
    """Run ``model`` on ``batch`` and check the output is ``(len(batch), spec.output_size)``;
    ``where`` names the plugin and architecture. A forward pass that raises is a PluginError too.
    """
    try:
        out = _forward(model, batch)
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"{where}: the model's forward() raised {type(exc).__name__}: "
                          f"{exc}") from exc
    problem = _shape_problem(out, len(batch), spec)
    if problem:
        raise PluginError(f"{where}: {problem}")


def _forward(model: Any, batch: Any) -> Any:
    """One forward pass in eval mode without gradients; modes are restored afterwards. No random
    numbers are drawn (eval mode), so the trial that follows stays the same."""
    import torch

    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            return model(batch)
    finally:
        for module, training in modes:
            module.training = training


def _shape_problem(out: Any, n: int, spec: DataSpec) -> str | None:
    import torch

    expected = (n, spec.output_size)
    actual = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if actual == expected:
        return None
    got = f"shape {actual}" if actual is not None else f"a {type(out).__name__}, not a tensor"
    hint = ""
    if actual == (n, spec.num_classes) and spec.num_classes != spec.output_size:
        hint = ("; the model builds spec.num_classes outputs (the contract for classification "
                "only): build spec.output_size outputs instead, the size the task asks for")
    return (f"the model's output for a batch of {n} is {got}; expected {expected} "
            f"({spec.output_size} outputs per example for the '{spec.task}' task){hint}")


def first_configuration(params: Mapping[str, Param]) -> dict[str, Any]:
    """One valid configuration of a component: each parameter's fixed value, first option or
    lower bound."""
    out: dict[str, Any] = {}
    for key, param in params.items():
        if isinstance(param, Fixed):
            out[key] = param.value
        elif isinstance(param, Choice):
            out[key] = param.options[0]
        elif isinstance(param, (FloatRange, IntRange)):
            out[key] = param.low
    return out


def check_architectures(architectures: Mapping[str, Mapping[str, Param]], registry: Any,
                        x_train: Any, spec: DataSpec) -> None:
    """Before Ray starts: build each architecture's first configuration on the data spec and
    check its output on one training batch. A build that raises is left to the trials (another
    configuration may build), except a :class:`~automl.errors.ConfigError` (unusable input, such
    as a missing weights file); a wrong output shape would fail every trial and is refused
    here."""
    import torch

    batch = torch.as_tensor(x_train[:CHECK_BATCH])
    for name, params in architectures.items():
        entry = registry.get("architecture", name)
        body_spec = task_for(spec, registry).body_spec(spec)  # heads are the platform's
        with torch.random.fork_rng(devices=[]):  # building initialises weights at random
            try:
                out = _forward(entry.create().build(first_configuration(params), body_spec),
                               batch)
            except ConfigError:  # unusable input (a missing weights file) fails every trial
                raise
            except Exception:  # noqa: BLE001 - the trials report it with their configuration
                continue
        problem = _shape_problem(out, len(batch), body_spec)
        if problem:
            raise PluginError(f"plugin '{entry.plugin}', architecture '{name}' (first "
                              f"configuration): {problem}")
