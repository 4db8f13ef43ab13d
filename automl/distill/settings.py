"""The ``distillation:`` section, checked against the registry before anything runs.

The students' space is the experiment's (its pruning, quantization and training spaces) with the
architectures ``distillation.architecture`` names (default: the experiment's), plus the two
parameters of the distillation loss, sampled per student: ``distill.temperature`` and
``distill.alpha``. Students must meet the experiment's constraints and
``distillation.constraints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from automl.config.loader import locate
from automl.config.models import Experiment
from automl.constraints import ConstraintSpec
from automl.errors import ConfigError
from automl.multitask import MULTITASK
from automl.params import Choice, FloatRange, IntRange, Param, check_kind, parse_param
from automl.registry import Registry
from automl.space import SearchSpace, constraint_specs

#: the sampled names of the distillation loss's parameters
TEMPERATURE, ALPHA = "distill.temperature", "distill.alpha"
#: the constant every student records: the teacher it learned from
TEACHER = "distill.teacher"
#: the constant a student of an augmented transfer set records: how its synthetic rows were made
AUGMENT = "distill.augment"


@dataclass
class StudentSpace(SearchSpace):
    """The experiment's space for students: its own dimensions, then the loss's two."""

    temperature: Param = field(default_factory=lambda: FloatRange(1.0, 8.0))
    alpha: Param = field(default_factory=lambda: FloatRange(0.3, 0.9))
    #: what the students learn from (recorded with each: ``distill.teacher``)
    teacher: str = ""
    #: the synthetic rows they also learn from, e.g. ``munge x2`` (``distill.augment``; empty:
    #: none, and nothing is recorded)
    augment: str = ""

    def define(self, trial: Any) -> dict[str, Any]:
        constants = super().define(trial)
        if self.teacher:
            constants[TEACHER] = self.teacher
        if self.augment:
            constants[AUGMENT] = self.augment
        for name, param in ((TEMPERATURE, self.temperature), (ALPHA, self.alpha)):
            value = param.suggest(trial, name)
            if not param.searched:
                constants[name] = value
        return constants

    def rows(self) -> list[tuple[str, str]]:
        rows = [*super().rows(), (TEMPERATURE, self.temperature.describe()),
                (ALPHA, self.alpha.describe())]
        return [*rows, (AUGMENT, self.augment)] if self.augment else rows


@dataclass(frozen=True)
class DistillationSettings:
    trials: int
    space: StudentSpace
    #: the distillation section's own bounds (the space's constraints hold both theirs and the
    #: experiment's)
    constraints: list[ConstraintSpec]
    #: the experiment, as its students are run: their architectures, every constrained metric
    #: recorded
    config: Experiment
    #: ``distillation.augment``: how synthetic rows are made ("none": no row) and how many, as a
    #: multiple of the training rows
    augment: str = "none"
    augment_size: float = 1.0


def resolve_distillation(config: Experiment, space: SearchSpace, registry: Registry
                         ) -> DistillationSettings | None:
    """The checked settings of ``config.distillation``; None when it runs no trial."""
    section = config.distillation
    if section.trials == 0:
        return None
    try:
        return _resolve(config, space, registry)
    except ConfigError as exc:
        raise locate(exc, config) from None


def _resolve(config: Experiment, space: SearchSpace, registry: Registry
             ) -> DistillationSettings:
    from automl.space import _build_space, experiment_dir

    section = config.distillation
    if space.task == MULTITASK:
        raise ConfigError("distillation applies to single-target experiments; this dataset has "
                          f"several targets ({', '.join(space.targets)})", path="distillation")
    task = registry.get("task", space.task)
    if not task.cls.distills():  # type: ignore[attr-defined]
        raise ConfigError(f"task '{space.task}' (plugin '{task.plugin}') does not implement "
                          "soft_loss(), the loss a student learns its teacher's predictions "
                          "with", path="distillation")
    try:
        own = constraint_specs(section.constraints, registry, space.task, {})
    except ConfigError as exc:
        raise ConfigError(exc.detail, path=f"distillation.{exc.path}") from None
    students = config.model_copy(update={
        "architecture": section.architecture or config.architecture,
        "constraints": {**section.constraints, **config.constraints}})
    try:
        base = _build_space(students.model_copy(update={"constraints": config.constraints}),
                            registry, experiment_dir(config))
    except ConfigError as exc:
        if exc.path and exc.path.startswith("architecture") and section.architecture:
            raise ConfigError(exc.detail, path=f"distillation.{exc.path}") from None
        raise
    for name in base.architectures:
        arch = registry.get("architecture", name)
        if arch.cls.trains_itself:  # type: ignore[attr-defined]
            where = "distillation.architecture" if section.architecture else "architecture"
            raise ConfigError(f"architecture '{name}' trains itself (no gradient steps), so it "
                              "cannot learn from a teacher's predictions; list the students' "
                              "architectures in distillation.architecture",
                              path=f"{where}.{name}")
    temperature = _loss_param(section.temperature, "distillation.temperature", 0.0, None)
    alpha = _loss_param(section.alpha, "distillation.alpha", 0.0, 1.0)
    fields = {name: getattr(base, name) for name in SearchSpace.__dataclass_fields__}
    fields["constraints"] = [*base.constraints, *own]
    augment = section.augment
    label = "" if augment.method == "none" else f"{augment.method} x{augment.size:g}"
    return DistillationSettings(section.trials,
                                StudentSpace(**fields, temperature=temperature, alpha=alpha,
                                             augment=label),
                                own, students, augment.method, augment.size)


def _loss_param(raw: Any, path: str, low: float, high: float | None) -> Param:
    param = parse_param(raw, path)
    check_kind(param, (int, float), path)
    if isinstance(param, (FloatRange, IntRange)):
        values = [param.low, param.high]
    else:
        values = list(param.options) if isinstance(param, Choice) else [param.value]  # type: ignore[union-attr]
    for value in values:
        outside = value > high if high is not None else value <= low
        if isinstance(value, bool) or value < low or outside:
            bound = f"in [{low:g}, {high:g}]" if high is not None else f"above {low:g}"
            raise ConfigError(f"must be {bound}, got {value!r}", path=path)
    return param
