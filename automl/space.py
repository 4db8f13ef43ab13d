"""The experiment's search space, checked against the registry, as an Optuna define-by-run function.

The space is conditional: an architecture's (or pruner's) parameters exist only in trials that
chose it, and an augmentation's strengths only where it is enabled. Sampled values are named

* ``architecture`` and ``architecture.<name>.<param>``
* ``augmentation.<name>.enabled`` and ``augmentation.<name>.<param>``
* ``pruning`` and ``pruning.<name>.<param>`` (``pruning: none`` means no pruning)
* ``quantization`` and ``quantization.<name>.<param>`` (``none``: the model stays float32)
* ``strategy`` and ``strategy.<name>.<param>`` (only with ``strategy:``; without it the trial
  trains with the registered default strategy and nothing is sampled)
* ``training.<param>``
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.components import ParamDef
from automl.config.loader import locate
from automl.config.models import OPTIMIZERS, Experiment, Objective
from automl.multitask import MULTITASK, split_metric_name, task_space
from automl.errors import ConfigError, PluginError, did_you_mean, short_repr
from automl.params import Choice, Fixed, FloatRange, IntRange, Param, check_kind, parse_param
from automl.registry import Registry

if TYPE_CHECKING:
    import optuna

    from automl.constraints import ConstraintSpec

NO_PRUNING = "none"
NO_QUANTIZATION = "none"
_TRAINING_PARAMS: dict[str, ParamDef] = {
    "lr": ParamDef(FloatRange(1e-4, 1e-2, log=True), float, "learning rate"),
    "batch_size": ParamDef(Choice((32, 64, 128)), int, "training batch size"),
    "optimizer": ParamDef(Choice(("adam", "adamw")), str, f"one of {', '.join(OPTIMIZERS)}"),
    "weight_decay": ParamDef(FloatRange(1e-6, 1e-3, log=True), float, "L2 penalty"),
    "momentum": ParamDef(Fixed(0.9), float, "SGD momentum (sgd only)"),
    "label_smoothing": ParamDef(Fixed(0.0), float, "label smoothing of the loss"),
}


@dataclass(frozen=True)
class ObjectiveSpec:
    metric: str
    mode: str
    #: ``val`` for a metric of predictions; ``model`` for a model-only metric (one value a trial)
    scope: str = "val"

    @property
    def key(self) -> str:
        """The result key the searcher reads: the validation value of the metric, or the model's
        value for a model-only metric."""
        return f"{self.scope}/{self.metric}"


@dataclass
class SearchSpace:
    """A validated search space; :meth:`define` is the define-by-run function."""

    architectures: dict[str, dict[str, Param]]
    augmentations: dict[str, dict[str, Param]]
    pruners: dict[str, dict[str, Param]]
    training: dict[str, Param]
    objectives: list[ObjectiveSpec] = field(default_factory=list)
    #: after the objectives, what ranks trials equal on every objective (declared by metrics)
    tie_breakers: list[ObjectiveSpec] = field(default_factory=list)
    #: every metric a trial records: objectives, ``record:``, metrics recorded always
    recorded: list[str] = field(default_factory=list)
    #: the registered task of the dataset's targets
    task: str = ""
    #: a multi-task experiment's loss parameters (weighting, per-target weights)
    task_params: dict[str, Param] = field(default_factory=dict)
    #: a multi-task experiment's targets and their tasks
    targets: dict[str, str] = field(default_factory=dict)
    #: hard bounds on recorded values (``constraints:``); see :mod:`automl.constraints`
    constraints: list["ConstraintSpec"] = field(default_factory=list)
    #: quantizers to choose among after pruning (``quantization:``; ``none`` keeps float32)
    quantizers: dict[str, dict[str, Param]] = field(default_factory=dict)
    #: training strategies to choose among (``strategy:``); empty: the default strategy
    strategies: dict[str, dict[str, Param]] = field(default_factory=dict)

    def define(self, trial: "optuna.Trial") -> dict[str, Any]:
        """Suggest one configuration; returns the fixed values, as OptunaSearch expects."""
        constants: dict[str, Any] = {}

        def take(name: str, param: Param) -> Any:
            value = param.suggest(trial, name)
            if not param.searched:
                constants[name] = value
            return value

        arch = take("architecture", Choice(tuple(self.architectures)))
        for key, param in self.architectures[arch].items():
            take(f"architecture.{arch}.{key}", param)
        for aug, params in self.augmentations.items():
            if take(f"augmentation.{aug}.enabled", params["enabled"]):
                for key, param in params.items():
                    if key != "enabled":
                        take(f"augmentation.{aug}.{key}", param)
        if self.pruners:
            pruner = take("pruning", Choice(tuple(self.pruners)))
            for key, param in self.pruners.get(pruner, {}).items():
                take(f"pruning.{pruner}.{key}", param)
        if self.quantizers:  # after pruning: an experiment without it samples as before
            quantizer = take("quantization", Choice(tuple(self.quantizers)))
            for key, param in self.quantizers.get(quantizer, {}).items():
                take(f"quantization.{quantizer}.{key}", param)
        if self.strategies:  # an experiment without it samples as before
            strategy = take("strategy", Choice(tuple(self.strategies)))
            for key, param in self.strategies[strategy].items():
                take(f"strategy.{strategy}.{key}", param)
        for key, param in self.training.items():
            take(f"training.{key}", param)
        if self.task_params:  # weights are sampled for fixed weighting, learned otherwise
            if take("multitask.weighting", self.task_params["weighting"]) == "fixed":
                for key, param in self.task_params.items():
                    if key != "weighting":
                        take(f"multitask.{key}", param)
        return constants

    def rows(self) -> list[tuple[str, str]]:
        """(name, description) of every dimension, for ``automl validate``."""
        out = [("architecture", Choice(tuple(self.architectures)).describe())]
        for arch, params in self.architectures.items():
            out += [(f"architecture.{arch}.{k}", p.describe()) for k, p in params.items()]
        for aug, params in self.augmentations.items():
            out += [(f"augmentation.{aug}.{k}", p.describe()) for k, p in params.items()]
        if self.pruners:
            out.append(("pruning", Choice(tuple(self.pruners)).describe()))
            for pruner, params in self.pruners.items():
                out += [(f"pruning.{pruner}.{k}", p.describe()) for k, p in params.items()]
        if self.quantizers:
            out.append(("quantization", Choice(tuple(self.quantizers)).describe()))
            for quantizer, params in self.quantizers.items():
                out += [(f"quantization.{quantizer}.{k}", p.describe()) for k, p in params.items()]
        if self.strategies:
            out.append(("strategy", Choice(tuple(self.strategies)).describe()))
            for strategy, params in self.strategies.items():
                out += [(f"strategy.{strategy}.{k}", p.describe()) for k, p in params.items()]
        out += [(f"training.{k}", p.describe()) for k, p in self.training.items()]
        out += [(f"multitask.{k}", p.describe()) for k, p in self.task_params.items()]
        return out


@dataclass(frozen=True)
class TrialPlan:
    """One sampled configuration, structured for the trial."""

    architecture: str
    architecture_params: dict[str, Any]
    augmentations: list[tuple[str, dict[str, Any]]]
    pruner: str | None
    pruner_params: dict[str, Any]
    training: dict[str, Any]
    #: a multi-task experiment's sampled loss parameters (``multitask.*``)
    task_params: dict[str, Any] = field(default_factory=dict)
    #: the quantizer applied after pruning (None: the model stays float32)
    quantizer: str | None = None
    quantizer_params: dict[str, Any] = field(default_factory=dict)
    #: the training strategy (None: the registered default strategy)
    strategy: str | None = None
    strategy_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any], order: Sequence[str] = ()) -> "TrialPlan":
        """Structure a sampled configuration; augmentations apply in ``order`` (the experiment
        file's order), then any others in the order they appear."""
        arch = flat["architecture"]
        augs: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            parts = key.split(".")
            if parts[0] == "augmentation" and len(parts) == 3 and parts[2] != "enabled":
                augs.setdefault(parts[1], {})[parts[2]] = value
        names = _ordered_augmentations(flat)
        names = [n for n in order if n in names] + [n for n in names if n not in order]
        enabled = [name for name in names if flat.get(f"augmentation.{name}.enabled")]
        pruner = flat.get("pruning")
        pruner = None if pruner in (None, NO_PRUNING) else pruner
        quantizer = flat.get("quantization")
        quantizer = None if quantizer in (None, NO_QUANTIZATION) else quantizer
        strategy = flat.get("strategy")
        return cls(
            architecture=arch,
            architecture_params=_section(flat, f"architecture.{arch}."),
            augmentations=[(name, augs.get(name, {})) for name in enabled],
            pruner=pruner,
            pruner_params=_section(flat, f"pruning.{pruner}.") if pruner else {},
            quantizer=quantizer,
            quantizer_params=_section(flat, f"quantization.{quantizer}.") if quantizer else {},
            strategy=strategy,
            strategy_params=_section(flat, f"strategy.{strategy}.") if strategy else {},
            training=_section(flat, "training."),
            task_params=_section(flat, "multitask."),
        )


def _section(flat: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}


def _ordered_augmentations(flat: Mapping[str, Any]) -> list[str]:
    seen: list[str] = []
    for key in flat:
        parts = key.split(".")
        if parts[0] == "augmentation" and len(parts) == 3 and parts[1] not in seen:
            seen.append(parts[1])
    return seen


def build_space(config: Experiment, registry: Registry, base_dir: Path | None = None
                ) -> SearchSpace:
    """Check every component name and parameter against the registry and build the space.

    Raises:
        ConfigError: unknown component or parameter (with the nearest valid name), a value of the
            wrong type, or a component that does not apply to the dataset's kind of data; the
            message names the experiment file and line when the config was loaded from one.
    """
    try:
        return _build_space(config, registry, base_dir or experiment_dir(config))
    except ConfigError as exc:
        raise locate(exc, config) from None


def experiment_dir(config: Experiment) -> Path:
    """Where relative paths in the experiment point from: the file's directory (or the cwd)."""
    source = config._source  # noqa: SLF001 - set by the loader
    return Path(source).resolve().parent if source else Path.cwd()


def resolve_path(value: Any, base_dir: Path, path: str) -> Any:
    """Resolve a path parameter: relative to ``base_dir``; ``package:NAME/sub/dir`` is a folder
    inside the installed package NAME (a model or data that a package ships)."""
    if not isinstance(value, str):
        return value
    if value.startswith("package:"):
        package, _, rest = value[len("package:"):].partition("/")
        try:
            spec = importlib.util.find_spec(package) if package else None
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"'{value}': no installed package '{package}'", path=path)
        return str(Path(next(iter(spec.submodule_search_locations))) / rest)
    candidate = Path(value).expanduser()
    return str(candidate if candidate.is_absolute() else (base_dir / candidate).resolve())


def _resolve_param(param: Param, base_dir: Path, path: str) -> Param:
    if isinstance(param, Fixed):
        return Fixed(resolve_path(param.value, base_dir, path))
    if isinstance(param, Choice):
        return Choice(tuple(resolve_path(o, base_dir, path) for o in param.options))
    return param


def _build_space(config: Experiment, registry: Registry, base_dir: Path) -> SearchSpace:
    dataset = registry.get("dataset", config.dataset.name, path="dataset.name")
    _check_dataset_params(dataset.cls.params, config.dataset.params)
    data_kind = dataset.cls.kind  # type: ignore[attr-defined]
    task = experiment_task(config, registry, base_dir)
    targets = experiment_targets(config, registry, base_dir) if task == MULTITASK else {}
    if config.multitask and not targets:
        raise ConfigError(f"the dataset has one target (task '{task}'); multitask: configures "
                          "the loss of a dataset with several targets", path="multitask")
    task_params = task_space(list(targets), config.multitask, "multitask") if targets else {}

    architectures = {}
    for name, overrides in config.architecture.items():
        path = f"architecture.{name}"
        entry = registry.get("architecture", name, path=path)
        if data_kind not in entry.cls.data_kinds:  # type: ignore[attr-defined]
            raise ConfigError(f"architecture '{name}' works on {list(entry.cls.data_kinds)} data, "
                              f"but dataset '{dataset.name}' is {data_kind} data", path=path)
        architectures[name] = _component_params(entry.cls.params, overrides, path, base_dir)

    augmentations = {}
    for name, overrides in config.augmentations.items():
        path = f"augmentations.{name}"
        entry = registry.get("augmentation", name, path=path)
        if data_kind not in entry.cls.data_kinds:  # type: ignore[attr-defined]
            raise ConfigError(f"augmentation '{name}' works on {list(entry.cls.data_kinds)} data, "
                              f"but dataset '{dataset.name}' is {data_kind} data", path=path)
        rest = {k: v for k, v in overrides.items() if k != "enabled"}
        enabled = parse_param(overrides.get("enabled", [True, False]), f"{path}.enabled")
        check_kind(enabled, bool, f"{path}.enabled")
        for target_task in (set(targets.values()) or {task}):
            _check_task(entry, target_task, path)
        augmentations[name] = {"enabled": enabled,
                               **_component_params(entry.cls.params, rest, path, base_dir)}

    pruners = _optional_steps(config.pruning, "pruning", "pruner", registry, base_dir)
    quantizers = _optional_steps(config.quantization, "quantization", "quantizer", registry,
                                 base_dir)

    strategies = _strategies(config, registry, base_dir, architectures)

    training = {}
    raw_training = config.training.model_dump()
    for key, spec in _TRAINING_PARAMS.items():
        param = parse_param(raw_training[key], f"training.{key}")
        check_kind(param, spec.type, f"training.{key}")
        training[key] = param
    _check_training_values(training)

    objectives = []
    first, first_task = next(iter(targets.items())) if targets else (None, task)
    default = registry.get("task", first_task).cls.default_objective  # type: ignore[attr-defined]
    listed = config.objectives if "objectives" in config.model_fields_set or default is None \
        else [Objective(metric=default[0] if first is None else f"{first}/{default[0]}",
                        mode=default[1])]  # type: ignore[arg-type]
    for index, objective in enumerate(listed):
        path = f"objectives[{index}].metric"
        metric = metric_entry(registry, objective.metric, task, targets, path)
        objectives.append(ObjectiveSpec(objective.metric, objective.mode or metric.cls.direction,  # type: ignore[attr-defined]
                                        "model" if metric.cls.model_only else "val"))  # type: ignore[attr-defined]
    for index, name in enumerate(config.record):
        metric_entry(registry, name, task, targets, f"record[{index}]")
    constraints = constraint_specs(config.constraints, registry, task, targets)
    _check_facts(config, registry, strategies,
                 [o.metric for o in objectives] + list(config.record)
                 + constrained_metrics(constraints))
    return SearchSpace(architectures, augmentations, pruners, training, objectives,
                       [] if targets else tie_breakers(registry, task),
                       recorded_metrics(objectives,
                                        [*config.record, *constrained_metrics(constraints)],
                                        registry, task, targets),
                       task, task_params, targets, constraints, quantizers, strategies)


def constraint_specs(constraints: Mapping[str, Any], registry: Registry, task: str,
                     targets: Mapping[str, str]) -> list["ConstraintSpec"]:
    """The experiment's ``constraints``, each a registered metric or a model fact."""
    from automl.constraints import MODEL_FACTS, ConstraintSpec

    specs = []
    for name, bound in constraints.items():
        path = f"constraints.{name}"
        if name in MODEL_FACTS:
            specs.append(ConstraintSpec(name, "model", bound.min, bound.max, additive=True))
            continue
        try:
            metric = metric_entry(registry, name, task, targets, path)
        except ConfigError as exc:
            if split_metric_name(name)[0] is not None:
                raise
            raise ConfigError(f"{exc.detail}; or a fact of the saved model: "
                              f"{', '.join(MODEL_FACTS)}", path=path) from None
        specs.append(ConstraintSpec(name, "model" if metric.cls.model_only else "val",  # type: ignore[attr-defined]
                                    bound.min, bound.max,
                                    additive=metric.cls.aggregate == "sum"))  # type: ignore[attr-defined]
    return specs


def constrained_metrics(constraints: Sequence["ConstraintSpec"]) -> list[str]:
    """The registered metrics the constraints need every trial to record."""
    from automl.constraints import MODEL_FACTS

    return [c.metric for c in constraints if c.metric not in MODEL_FACTS]


def _optional_steps(section: Mapping[str, Any], name_of_section: str, kind: str,
                    registry: Registry, base_dir: Path) -> dict[str, dict[str, Param]]:
    """A section of components to choose one of after training (``pruning``, ``quantization``),
    where ``none`` means the step is skipped."""
    steps: dict[str, dict[str, Param]] = {}
    for name, overrides in section.items():
        path = f"{name_of_section}.{name}"
        if name == "none":
            if overrides:
                raise ConfigError(f"'none' (no {name_of_section}) takes no parameters", path=path)
            steps[name] = {}
            continue
        entry = registry.get(kind, name, path=path)
        steps[name] = _component_params(entry.cls.params, overrides, path, base_dir)
    return steps


def _strategies(config: Experiment, registry: Registry, base_dir: Path,
                architectures: Mapping[str, Any]) -> dict[str, dict[str, Param]]:
    """The ``strategy:`` section: strategies to choose among and their parameter spaces."""
    strategies: dict[str, dict[str, Param]] = {}
    for name, overrides in config.strategy.items():
        path = f"strategy.{name}"
        entry = registry.get("strategy", name, path=path)
        strategies[name] = _component_params(entry.cls.params, overrides, path, base_dir)
        if entry.cls.default:  # type: ignore[attr-defined]
            continue
        if config.validation.kfold is not None and not entry.cls.kfold:  # type: ignore[attr-defined]
            raise ConfigError(f"strategy '{name}' does not apply to k-fold validation; use "
                              "validation: holdout", path=path)
        if set(config.pruning) - {NO_PRUNING} and not entry.cls.pruning:  # type: ignore[attr-defined]
            raise ConfigError(f"strategy '{name}' does not fine-tune pruned models; use "
                              "pruning: none or leave pruning out", path=path)
        self_fitting = [a for a in architectures
                        if registry.get("architecture", a).cls.trains_itself]  # type: ignore[attr-defined]
        if self_fitting:
            raise ConfigError(f"architecture '{self_fitting[0]}' trains itself (no gradient "
                              f"steps); strategy '{name}' does not apply to it", path=path)
    return strategies


def _check_facts(config: Experiment, registry: Registry, strategies: Mapping[str, Any],
                 metrics: Sequence[str]) -> None:
    """A metric that reads a training fact (``epsilon``) needs every strategy the trials may
    choose to record it."""
    names = list(strategies) or [registry.default("strategy").name]
    for metric in metrics:
        fact = getattr(registry.get("metric", split_metric_name(metric)[1]).cls, "fact", None)
        if fact is None:
            continue
        lacking = [n for n in names if fact not in registry.get("strategy", n).cls.facts]  # type: ignore[attr-defined]
        if lacking:
            recording = [e.name for e in registry if e.kind == "strategy"
                         and fact in e.cls.facts]  # type: ignore[attr-defined]
            raise ConfigError(
                f"metric '{metric}' reads the training fact '{fact}', which strategy "
                f"'{lacking[0]}' does not record{'' if config.strategy else ' (the default)'}; "
                f"choose among strategies that do: {', '.join(recording) or '(none registered)'}",
                path=f"strategy.{lacking[0]}" if config.strategy else "strategy")


def metric_entry(registry: Registry, name: str, task: str, targets: Mapping[str, str],
                 path: str) -> Any:
    """The registered metric ``name`` names, checked against the task; with several targets a
    prediction metric is named per target (``price/rmse``)."""
    target, metric_name = split_metric_name(name)
    metric = registry.get("metric", metric_name, path=path)
    if target is not None:
        if target not in targets:
            raise ConfigError(f"'{name}' names target '{target}', but the dataset has "
                              f"{'targets ' + ', '.join(targets) if targets else 'one target'}"
                              f"{did_you_mean(target, targets) if targets else ''}", path=path)
        if metric.cls.model_only:  # type: ignore[attr-defined]
            raise ConfigError(f"metric '{metric_name}' depends only on the model; name it "
                              "without a target", path=path)
        _check_task(metric, targets[target], path, f"target '{target}'")
    elif targets and not metric.cls.model_only:  # type: ignore[attr-defined]
        raise ConfigError(f"the dataset has several targets ({', '.join(targets)}); name the "
                          f"target a metric is scored on, e.g. '{next(iter(targets))}/"
                          f"{metric_name}'", path=path)
    else:
        _check_task(metric, task, path)
    return metric


def experiment_targets(config: Experiment, registry: Registry, base_dir: Path | None = None
                       ) -> dict[str, str]:
    """A multi-task dataset's targets and their tasks, as the dataset declares them."""
    entry = registry.get("dataset", config.dataset.name, path="dataset.name")
    targets = dict(entry.create().target_tasks(dataset_params(config, registry, base_dir)))  # type: ignore[attr-defined]
    for name, task in targets.items():
        registry.get("task", task, path=f"dataset.params.targets.{name}.task")
    return targets


def experiment_task(config: Experiment, registry: Registry, base_dir: Path | None = None
                    ) -> str:
    """The registered task of the experiment's dataset, as the dataset declares it."""
    entry = registry.get("dataset", config.dataset.name, path="dataset.name")
    params = dataset_params(config, registry, base_dir)
    try:
        task = entry.create().task_name(params)  # type: ignore[attr-defined]
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{entry.plugin}', dataset '{entry.name}': task_name() raised "
                          f"{type(exc).__name__}: {exc}") from exc
    if task != MULTITASK:
        registry.get("task", task,
                     path="dataset.params.task" if "task" in params else "dataset.name")
    return task


def applies_to(cls: Any, task: str | None) -> bool:
    """Whether a metric or augmentation class declares it works for ``task`` (None: any)."""
    tasks = getattr(cls, "tasks", None)
    return task is None or tasks is None or task in tasks


def _check_task(entry: Any, task: str, path: str, whose: str = "the dataset") -> None:
    if not applies_to(entry.cls, task):
        raise ConfigError(f"{entry.kind} '{entry.name}' applies to {list(entry.cls.tasks)} "
                          f"targets, but {whose}'s task is '{task}'", path=path)


def tie_breakers(registry: Registry, task: str | None = None) -> list[ObjectiveSpec]:
    """The metric that declares ``tie_breaker = True`` (for ``task``, when given), in its own
    direction (at most one)."""
    declared = [e for e in registry if e.kind == "metric"
                and getattr(e.cls, "tie_breaker", False) and applies_to(e.cls, task)]
    if len(declared) > 1:
        named = ", ".join(f"'{e.name}' (plugin '{e.plugin}')" for e in declared)
        raise PluginError(f"metrics {named} each declare tie_breaker = True; at most one may")
    return [ObjectiveSpec(e.name, e.cls.direction) for e in declared]  # type: ignore[attr-defined]


def recorded_metrics(objectives: Sequence[ObjectiveSpec], record: Sequence[str],
                     registry: Registry, task: str | None = None,
                     targets: Mapping[str, str] | None = None) -> list[str]:
    """What every trial records, objectives first: the experiment's ``record:``, then each
    registered metric (of ``task``, when given) that declares ``recorded = "always"`` or is the
    tie-breaker; with several ``targets``, each target's such metrics (``price/rmse``) and the
    model-only ones recorded always."""
    names = [o.metric for o in objectives] + list(record)
    if targets:
        for target, target_task in targets.items():
            names += [f"{target}/{e.name}" for e in registry if e.kind == "metric"
                      and not e.cls.model_only and e.cls.tasks is not None  # type: ignore[attr-defined]
                      and applies_to(e.cls, target_task) and e.cls.recorded == "always"]  # type: ignore[attr-defined]
        names += [e.name for e in registry if e.kind == "metric"
                  and e.cls.model_only and e.cls.recorded == "always"]  # type: ignore[attr-defined]
        return list(dict.fromkeys(names))
    for entry in registry:
        if entry.kind == "metric" and applies_to(entry.cls, task) and (
                getattr(entry.cls, "recorded", "") == "always"
                or getattr(entry.cls, "tie_breaker", False)):
            names.append(entry.name)
    return list(dict.fromkeys(names))


def _component_params(declared: Mapping[str, ParamDef], overrides: Mapping[str, Any],
                      path: str, base_dir: Path) -> dict[str, Param]:
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"expected a mapping of parameters, got {short_repr(overrides)}",
                          path=path)
    params: dict[str, Param] = {}
    for key, value in overrides.items():
        if key not in declared:
            hint = did_you_mean(key, declared)
            valid = ", ".join(declared) or "(none)"
            raise ConfigError(f"unknown parameter '{key}'{hint}; valid parameters: {valid}",
                              path=f"{path}.{key}")
    for key, spec in declared.items():
        if spec.required and overrides.get(key) is None:
            raise ConfigError(_missing(key, spec), path=f"{path}.{key}")
        param = parse_param(overrides[key], f"{path}.{key}") if key in overrides else spec.default
        check_kind(param, spec.type, f"{path}.{key}")
        params[key] = _resolve_param(param, base_dir, f"{path}.{key}") if spec.is_path else param
    return params


def _check_dataset_params(declared: Mapping[str, ParamDef], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        path = f"dataset.params.{key}"
        if key not in declared:
            raise ConfigError(f"unknown parameter '{key}'{did_you_mean(key, declared)}; valid "
                              f"parameters: {', '.join(declared) or '(none)'}", path=path)
        check_kind(Fixed(value), declared[key].type, path)
    for key, spec in declared.items():
        if spec.required and values.get(key) is None:
            raise ConfigError(_missing(key, spec), path=f"dataset.params.{key}")


def _missing(key: str, spec: ParamDef) -> str:
    return f"required parameter '{key}' is not set" + (f" ({spec.help})" if spec.help else "")


def _check_training_values(training: dict[str, Param]) -> None:
    optimizer = training["optimizer"]
    options = optimizer.options if isinstance(optimizer, Choice) else (optimizer.value,)  # type: ignore[union-attr]
    for option in options:
        if option not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{option}'{did_you_mean(str(option), OPTIMIZERS)}"
                              f"; valid: {', '.join(OPTIMIZERS)}", path="training.optimizer")
    for key in ("lr", "batch_size"):
        param = training[key]
        values = (param.options if isinstance(param, Choice) else
                  (param.low,) if isinstance(param, (FloatRange, IntRange)) else (param.value,))  # type: ignore[union-attr]
        if any(v is None or v <= 0 for v in values):
            raise ConfigError("must be positive", path=f"training.{key}")


def dataset_params(config: Experiment, registry: Registry, base_dir: Path | None = None
                   ) -> dict[str, Any]:
    """The dataset's parameters: declared defaults (fixed) overridden by the experiment, with
    path parameters resolved against the experiment's directory."""
    entry = registry.get("dataset", config.dataset.name, path="dataset.name")
    declared = entry.cls.params
    params = {k: d.default.value for k, d in declared.items() if isinstance(d.default, Fixed)}
    params.update(config.dataset.params)
    base = base_dir or experiment_dir(config)
    return {k: resolve_path(v, base, f"dataset.params.{k}")
            if k in declared and declared[k].is_path else v for k, v in params.items()}
