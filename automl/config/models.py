"""Typed models of the experiment file (pydantic). Shorthands are normalised before validation.

Component sections (``architecture``, ``augmentations``, ``pruning``) are mappings from a
registered component name to its parameter overrides; which names and parameters are valid is
checked against the plugin registry afterwards, in :mod:`automl.space`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, PrivateAttr, SerializerFunctionWrapHandler, field_validator,
    ValidationInfo, model_serializer, model_validator,
)

from automl.search import algorithms as search_algorithms

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
SAMPLERS = tuple(search_algorithms.SAMPLERS)
EARLY_STOPPING = tuple(search_algorithms.SCHEDULERS)
OPTIMIZERS = ("adam", "adamw", "sgd")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _component_mapping(value: Any) -> Any:
    """``mlp`` -> ``{mlp: {}}``; ``[mlp, cnn]`` -> ``{mlp: {}, cnn: {}}``; null params -> ``{}``."""
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: {} for v in value}
    if isinstance(value, dict):
        return {k: ({} if v is None else v) for k, v in value.items()}
    return value


class SplitConfig(Strict):
    val: float = Field(0.2, gt=0, lt=1, description="fraction of examples for validation")
    test: float = Field(0.2, gt=0, lt=1, description="fraction of examples for the final test")

    @model_validator(mode="after")
    def _leaves_training_data(self) -> "SplitConfig":
        if self.val + self.test >= 0.9:
            raise ValueError(f"val + test = {self.val + self.test:g} leaves under 10% for training")
        return self


class DatasetConfig(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    split: SplitConfig = Field(default_factory=SplitConfig)
    cache: Literal["auto", "memory", "stream"] = Field(
        "auto", description="memory: load every example on the driver; stream: trial workers "
        "read batches from the files; auto: stream when the dataset can and its examples would "
        "take more than cache_limit_mb")
    cache_limit_mb: float = Field(1024.0, gt=0, description="auto streams above this size")
    stream_workers: int = Field(0, ge=0, le=64, description="processes decoding a streamed "
                                "dataset's batches in each trial (0: the trial's own process)")


class Objective(Strict):
    metric: str
    mode: Literal["max", "min"] | None = None


class TrainingConfig(Strict):
    epochs: int = Field(10, ge=1, le=10_000)
    fine_tune_epochs: int = Field(2, ge=0, le=1_000)
    fine_tune_lr_factor: float = Field(0.1, gt=0, le=10,
                                       description="fine-tune learning rate = lr x this factor")
    lr: Any = {"low": 1.0e-4, "high": 1.0e-2, "log": True}
    batch_size: Any = [32, 64, 128]
    optimizer: Any = ["adam", "adamw"]
    weight_decay: Any = {"low": 1.0e-6, "high": 1.0e-3, "log": True}
    momentum: Any = 0.9
    label_smoothing: Any = 0.0
    amp: bool = False
    eval_batch_size: int = Field(1024, ge=1)


class WarmStartConfig(Strict):
    """``search.warm_start``: seed a new search with earlier experiments of the same database."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: list[str] = Field(alias="from", min_length=1,
                             description="earlier experiments in the same database")
    top_k: int = Field(3, ge=0, le=1000, description="best configurations of each source run "
                       "first (the new space's values; what it cannot hold is sampled)")
    observations: bool = Field(True, description="give the sampler the sources' finished trials "
                               "whose configuration the new space holds exactly")


class SearchConfig(Strict):
    sampler: Literal[SAMPLERS] = "tpe"  # type: ignore[valid-type]
    early_stopping: Literal[EARLY_STOPPING] = "asha"  # type: ignore[valid-type]
    num_trials: int = Field(20, ge=1, le=1_000_000)
    max_concurrent: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    grace_period: int | None = Field(None, ge=1, description="default: a quarter of the epochs")
    reduction_factor: float = Field(3.0, gt=1)
    max_failures: int = Field(0, ge=0, description="retries of a trial that raised")
    startup_trials: int = Field(8, ge=0, description="random trials before TPE models the space")
    warm_start: WarmStartConfig | None = None


class Resources(Strict):
    """What one trial asks for: ``cpu`` and ``gpu`` per worker process, ``workers`` processes
    training it data-parallel (:mod:`automl.trial.data_parallel`). ``gpu: N`` (N > 1, no
    ``workers``) is short for ``workers: N, gpu: 1``."""

    cpu: float = Field(1.0, gt=0, description="CPUs per worker")
    gpu: float = Field(0.0, ge=0, description="GPUs per worker (a fraction shares one)")
    workers: int = Field(1, ge=1, le=256, description="processes training one trial "
                         "data-parallel (Ray Train); 1: the trial trains in its own process")

    @model_validator(mode="before")
    @classmethod
    def _gpus_as_workers(cls, value: Any) -> Any:
        if isinstance(value, dict) and "workers" not in value:
            gpu = value.get("gpu")
            if (isinstance(gpu, (int, float)) and not isinstance(gpu, bool) and gpu > 1
                    and gpu == int(gpu)):
                return {**value, "gpu": 1.0, "workers": int(gpu)}
        return value

    @field_validator("gpu")
    @classmethod
    def _fraction_or_whole(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError("more than one GPU per trial must be a whole number")
        return value

    @field_validator("workers")
    @classmethod
    def _one_gpu_per_worker(cls, value: int, info: ValidationInfo) -> int:
        gpu = info.data.get("gpu", 0.0)
        if value > 1 and gpu not in (0, 1):
            raise ValueError(f"with {value} workers each worker takes one whole GPU of its own "
                             f"(NCCL cannot share one); set gpu: 1 (or 0), not {gpu:g}")
        if value == 1 and gpu > 1:
            raise ValueError(f"one worker trains on one GPU; for {gpu:g} set workers: {gpu:g} "
                             "with gpu: 1 (or gpu: N alone)")
        return value


class StorageConfig(Strict):
    db: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///automl.db")
    artifacts: str | None = Field(None, description="artifact directory; default ./runs")


class EnsembleConfig(Strict):
    """The ensemble stage that runs after the search (see docs/experiment-yaml.md)."""

    enabled: bool = True
    ensembler: str = Field("greedy", description="registered ensembler name")
    params: dict[str, Any] = Field(default_factory=dict, description="ensembler parameters")
    candidates: int = Field(8, ge=2, le=200, description="top-k completed trials considered")
    diversity: float | None = Field(
        None, gt=0, le=1, description="skip a candidate whose validation predictions agree with "
        "an already chosen one on more than this fraction of examples")
    holdout: float = Field(0.5, gt=0, lt=1, description="fraction of the validation split held "
                           "out to check the fitted weights")
    metric: str | None = Field(None, description="default: the first objective's metric")


class KFoldConfig(Strict):
    """``validation: {kfold: {...}}``: k-fold cross-validation over the train and validation rows."""

    folds: int = Field(5, ge=2, le=50, description="folds k: each trial trains k models")
    repeats: int = Field(1, ge=1, le=20, description="repetitions with other fold assignments")
    final: Literal["folds", "refit"] = Field(
        "folds", description="the trial's final model: the average of its fold models, or one "
        "model refitted on all train and validation rows")


class ValidationConfig(Strict):
    """``validation:``: ``holdout`` (the default: the validation split) or ``{kfold: {...}}``."""

    kfold: KFoldConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None or value == "holdout":
            return {}
        if value == "kfold":
            return {"kfold": {}}
        if isinstance(value, dict) and "kfold" in value and value["kfold"] is None:
            return {**value, "kfold": {}}
        if not isinstance(value, dict):
            raise ValueError("Input should be 'holdout', 'kfold' or a mapping {kfold: {folds: k, "
                             "repeats: r, final: folds|refit}}")
        return value

    @model_serializer(mode="wrap")
    def _holdout_as_word(self, handler: SerializerFunctionWrapHandler) -> Any:
        return "holdout" if self.kfold is None else handler(self)


class PluginsConfig(Strict):
    """``plugins:``: a list of modules and files to load, or ``{load: [...], block: [...]}``."""

    load: list[str] = Field(default_factory=list, description="plugin modules and files to load")
    block: list[str] = Field(default_factory=list,
                             description="plugin names not to load (built-in or installed)")

    @model_validator(mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, list):
            return {"load": value}
        if not isinstance(value, dict):
            raise ValueError("Input should be a valid list of plugin modules and files, or a "
                             "mapping {load: [...], block: [...]}")
        return value

    @model_serializer(mode="wrap")
    def _as_list_when_nothing_blocked(self, handler: SerializerFunctionWrapHandler) -> Any:
        # the list form as before, so recorded configs and search hashes do not change
        data = handler(self)
        return data["load"] if not self.block else data


class Bound(Strict):
    """One entry of ``constraints:``: ``{max: 1.0}``, ``{min: 0.9}`` or both."""

    min: float | None = Field(None, description="the value must be at least this")
    max: float | None = Field(None, description="the value must be at most this")

    @model_validator(mode="after")
    def _some_bound(self) -> "Bound":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self


class DistillationAugment(Strict):
    """Synthetic training rows the teacher labels for the students (``distillation.augment``):
    the augmented transfer set of Fakoor et al. 2020 (AutoGluon's distillation)."""

    method: Literal["none", "munge", "mixup"] = Field(
        "none", description="how synthetic rows are made from the training inputs: none, "
        "munge (Bucila et al. 2006: a row's features moved towards its nearest neighbour's) or "
        "mixup (convex mixes of two rows)")
    size: float = Field(1.0, gt=0, le=20, description="synthetic rows, as a multiple of the "
                        "training rows")


class DistillationConfig(Strict):
    """The distillation stage after the search and the ensemble (see docs/experiment-yaml.md):
    students learn from the teacher's predictions on the training split."""

    trials: int = Field(0, ge=0, le=1_000_000,
                        description="student trials (Ray Tune trials); 0: no distillation")
    architecture: dict[str, dict[str, Any]] | None = Field(
        None, description="the students' architectures and their parameter spaces, as the "
        "experiment's architecture section (default: the experiment's)")
    temperature: Any = Field({"low": 1.0, "high": 8.0},
                             description="softening of the teacher's predictions (searched)")
    alpha: Any = Field({"low": 0.3, "high": 0.9}, description="weight of the soft (teacher) "
                       "loss; 1 - alpha weighs the labels' loss (searched)")
    constraints: dict[str, Bound] = Field(
        default_factory=dict, description="bounds the students must meet besides the "
        "experiment's constraints (e.g. params: {max: 5000})")
    augment: DistillationAugment = Field(
        default_factory=DistillationAugment, description="synthetic rows the teacher labels, "
        "added to the students' training split (default: none)")

    @field_validator("architecture", mode="before")
    @classmethod
    def _components(cls, value: Any) -> Any:
        return None if value is None else _component_mapping(value)


class Experiment(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    seed: int = Field(0, ge=0, le=2**31 - 1)
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    dataset: DatasetConfig
    objectives: list[Objective] = Field(default_factory=lambda: [Objective(metric="accuracy")],
                                        min_length=1)
    record: list[str] = Field(
        default_factory=list, description="metrics every trial records besides the objectives "
        "and the metrics recorded always (e.g. latency_ms)")
    constraints: dict[str, Bound] = Field(
        default_factory=dict, description="bounds on recorded metrics (latency_ms, params, "
        "saved_bytes, ...): a trial outside them is infeasible, never chosen")
    architecture: dict[str, dict[str, Any]] = Field(min_length=1)
    augmentations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    pruning: dict[str, dict[str, Any]] = Field(default_factory=dict)
    quantization: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="quantizers to choose among after pruning; 'none' "
        "among them allows keeping float32")
    strategy: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="training strategies to choose among (standard, "
        "federated, dp_sgd, ...); absent: the default strategy, nothing sampled")
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    resources: Resources = Field(default_factory=Resources)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    callbacks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="callbacks that follow the run (experiment tracking): "
        "registered callback name -> options")
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    distillation: DistillationConfig = Field(default_factory=DistillationConfig)
    multitask: dict[str, Any] = Field(
        default_factory=dict, description="a multi-task dataset's loss: weighting (fixed, "
        "uncertainty) and per-target weight spaces")
    # Where the experiment was read from, so later checks (component names, parameters) can name
    # the file and line; set by automl.config.loader.
    _source: str | None = PrivateAttr(default=None)
    _key_lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("objectives", mode="before")
    @classmethod
    def _objective_shorthand(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            value = [value]
        if isinstance(value, list):
            return [{"metric": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("architecture", "augmentations", "pruning", "quantization", "callbacks",
                     "strategy", mode="before")
    @classmethod
    def _components(cls, value: Any) -> Any:
        if value is None:
            return {}
        return _component_mapping(value)

    @field_validator("ensemble", mode="before")
    @classmethod
    def _ensemble_shorthand(cls, value: Any) -> Any:
        if value is None or value is False:
            return {"enabled": False}
        if value is True:
            return {}
        return {"ensembler": value} if isinstance(value, str) else value

    @field_validator("record", mode="before")
    @classmethod
    def _record_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return [] if value is None else value

    @field_validator("record", mode="after")
    @classmethod
    def _distinct_record(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"record repeats a metric: {value}")
        return value

    @field_validator("objectives", mode="after")
    @classmethod
    def _distinct_objectives(cls, value: list[Objective]) -> list[Objective]:
        names = [o.metric for o in value]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives repeat a metric: {names}")
        return value


def is_valid_name(name: str) -> bool:
    return re.match(NAME_PATTERN, name) is not None
