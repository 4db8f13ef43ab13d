"""Reproducing a recorded trial in this process, without Ray.

A trial is a function of its sampled parameters, the experiment's seed (the trial's own seed is
derived from both) and the data split (fixed by the same seed): :func:`rerun_trial` rebuilds the
plugins the experiment recorded, prepares the data from the recorded config, builds the
:class:`~automl.trial.context.TrialContext` the search gave the trial and runs
:func:`~automl.trial.trainable.train_and_evaluate` again. On the same hardware and software the
validation metrics and the predicted validation and test probabilities come out identical;
:class:`RerunResult` compares them. (Trials record no test metric: the final evaluation,
:mod:`automl.evaluate`, scores the test split; test metrics that older runs recorded per trial are
not compared.)

Metrics that measure time (latency) cannot reproduce: a model-only metric that gives two different
values for the same model (or whose class sets ``deterministic = False``) is shown but not
compared. The ``automl_epoch_finished`` hook runs in this process, with trial id
``rerun:<experiment>:<number>``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automl.components import DataSplits, DataSpec, EvalContext
from automl.search_data import SearchSplits, separate
from automl.errors import AutomlError, ConfigError, PluginError, StoreError
from automl.export import select_trial
from automl.multitask import split_metric_name, task_for
from automl.recorded import recorded_config, recorded_plugin_source
from automl.store import ExperimentRecord, TrialRecord

TOLERANCE = 1e-6
ALIGNMENT = 64  # bytes: how Ray's object store aligns the arrays a trial receives
SPLITS = ("val/", "model/")

#: Called with each epoch's report (``epoch``, ``train/loss``, validation objectives, ...).
EpochCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class MetricRow:
    """One metric, as recorded and as reproduced."""

    key: str
    recorded: float | None
    reproduced: float | None
    compared: bool = True  # False for timing metrics
    tolerance: float = TOLERANCE

    @property
    def difference(self) -> float | None:
        if self.recorded is None or self.reproduced is None:
            return None
        return self.reproduced - self.recorded

    @property
    def matches(self) -> bool:
        if self.recorded is None or self.reproduced is None:
            return False
        if math.isnan(self.recorded) and math.isnan(self.reproduced):
            return True
        return abs(self.reproduced - self.recorded) <= self.tolerance


@dataclass
class RerunResult:
    """The outcome of :func:`rerun_trial`."""

    experiment: str
    number: int
    seed: int
    recorded_seed: int | None
    rows: list[MetricRow] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: Largest difference between the recorded and reproduced validation and test probabilities
    #: (None when the recorded checkpoint with its predictions is gone).
    proba_difference: float | None = None
    tolerance: float = TOLERANCE

    @property
    def differing(self) -> list[str]:
        names = [r.key for r in self.rows if r.compared and not r.matches]
        if self.proba_difference is not None and not self.proba_difference <= self.tolerance:
            names.append("predicted probabilities")
        return names

    @property
    def reproduced(self) -> bool:
        """Every compared metric matches (and there was at least one to compare)."""
        return any(r.compared for r in self.rows) and not self.differing


def rerun_trial(exp: ExperimentRecord, number: int, *, on_epoch: EpochCallback | None = None,
                tolerance: float = TOLERANCE) -> RerunResult:
    """Train trial ``number`` of ``exp`` again from its recorded parameters and compare metrics.

    Raises:
        StoreError: no such trial, or it did not complete (nothing to compare).
        ConfigError: the trial used a GPU and none is visible here, or the data split differs
            from the recorded one (the dataset changed).
    """
    from automl.data import prepare_data
    from automl.plugin_manager import rebuild_plugins
    from automl.trial.artifacts import read_predictions
    from automl.trial.seeding import derive_seed
    from automl.trial.trainable import train_and_evaluate

    started = time.perf_counter()
    trial = select_trial(exp, number)
    if trial.kind != "search":
        raise StoreError(f"trial {number} of experiment '{exp.name}' is a {trial.kind} student of "
                         "the distillation stage; automl rerun trains the search's trials again "
                         "(a student also needs its teacher's predictions)")
    config = recorded_config(exp)
    source = recorded_plugin_source(exp)
    plugins = rebuild_plugins(source)
    _check_device(config.resources.gpu, trial)
    if config.resources.workers > 1:
        raise ConfigError(f"trial {trial.number} was trained data-parallel by "
                          f"{config.resources.workers} workers (resources.workers); automl rerun "
                          "trains in one process and cannot reproduce it", path="resources.workers")
    data = aligned_splits(prepare_data(config, plugins.registry))
    _check_split(trial, data.y_val)
    context = trial_context(exp, config, source, plugins.registry)

    predictions: dict[str, Any] = {}

    def report(metrics: dict[str, Any], directory: Path | None) -> None:
        if directory is not None:
            predictions.update(read_predictions(directory))
        elif on_epoch is not None:
            on_epoch(metrics)

    params = dict(trial.params)
    final = train_and_evaluate(params, context, data, report,
                               f"rerun:{exp.name}:{trial.number}")
    timing = timing_metrics(plugins.registry, context.metrics, params, data.spec)
    keys = [k for k in dict.fromkeys([*trial.metrics, *final])
            if k.startswith(SPLITS) and k.split("/", 1)[1] in context.metrics]

    def reproduced(key: str) -> float | None:
        # Runs recorded before model-only keys hold ``val/params`` where a trial now records
        # ``model/params``.
        return final.get(key, final.get(f"model/{key.split('/', 1)[1]}"))

    rows = [MetricRow(k, trial.metrics.get(k), reproduced(k),
                      compared=k.split("/", 1)[1] not in timing, tolerance=tolerance)
            for k in keys]
    return RerunResult(exp.name, trial.number, derive_seed(config.seed, params), trial.seed,
                       rows, time.perf_counter() - started,
                       _proba_difference(trial, predictions), tolerance)


def trial_context(exp: ExperimentRecord, config: Any, source: Any, registry: Any) -> Any:
    """The context :func:`automl.runner._search` gives every trial of this experiment."""
    from automl.trial.context import TrialContext

    # A rerun records what the run recorded, including metrics an older version recorded always.
    stored = {k.split("/", 1)[1] for t in exp.trials for k in t.metrics if k.startswith(SPLITS)}
    record = [*config.record, *sorted(stored & set(registry.names("metric")))]
    objectives = [(o["metric"], o["mode"]) for o in exp.objectives if not o.get("tie_breaker")]
    return TrialContext.for_experiment(
        config.model_copy(update={"record": list(dict.fromkeys(record))}), objectives, source,
        registry)


def timing_metrics(registry: Any, names: tuple[str, ...], params: dict[str, Any],
                   spec: DataSpec) -> set[str]:
    """Metrics that cannot reproduce: a model-only metric that scores the same (fresh) model
    differently twice, or one whose class sets ``deterministic = False``."""
    import numpy as np

    from automl.space import TrialPlan

    timing: set[str] = set()
    model = None
    for name in names:
        entry = registry.get("metric", split_metric_name(name)[1])  # price/rmse -> rmse
        declared = getattr(entry.cls, "deterministic", None)
        if declared is not None or not entry.cls.model_only:
            if declared is False:
                timing.add(name)
            continue
        if model is None:
            plan = TrialPlan.from_flat(params)
            arch = registry.get("architecture", plan.architecture)
            task = task_for(spec, registry)
            model = task.wrap(arch.create().build(dict(plan.architecture_params),  # type: ignore[attr-defined]
                                                  task.body_spec(spec)),
                              spec, dict(plan.task_params)).eval()
        metric = entry.create()
        ctx = EvalContext(np.empty(0, dtype=np.int64), np.empty((0, spec.num_classes)), model,
                          spec, "val")
        try:
            first, second = float(metric.compute(ctx)), float(metric.compute(ctx))  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"plugin '{entry.plugin}', metric '{name}': compute() raised "
                              f"{type(exc).__name__}: {exc}") from exc
        if first != second:
            timing.add(name)
    return timing


def _proba_difference(trial: TrialRecord, reproduced: dict[str, Any]) -> float | None:
    import numpy as np

    from automl.trial.artifacts import PREDICTIONS_FILE, read_predictions

    if not trial.checkpoint or not (Path(trial.checkpoint) / PREDICTIONS_FILE).is_file():
        return None
    recorded = read_predictions(trial.checkpoint)
    worst = 0.0
    for key in ("val_proba", "test_proba"):
        if key not in recorded or key not in reproduced \
                or recorded[key].shape != reproduced[key].shape:
            return float("inf")
        difference = np.abs(recorded[key].astype(np.float64) - reproduced[key])
        worst = max(worst, float(difference.max(initial=0.0)))
    return worst


def _check_device(gpus: float, trial: TrialRecord) -> None:
    if gpus > 0:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"trial {trial.number} trained on a GPU (resources.gpu: {gpus:g}), "
                              "but CUDA is not available here; rerun it on a machine with a GPU")


def _check_split(trial: TrialRecord, y_val: Any) -> None:
    """Refuse early when the validation labels differ from the ones the trial was scored on."""
    import numpy as np

    from automl.ensemble.predictions import read_split

    if not trial.checkpoint or not Path(trial.checkpoint).is_dir():
        return
    try:
        _, recorded = read_split(trial.checkpoint, "val")
    except AutomlError:
        return
    if not np.array_equal(recorded, y_val):
        raise ConfigError(f"the data prepared from the recorded config differs from what trial "
                          f"{trial.number} was scored on ({len(recorded)} recorded validation "
                          f"labels vs {len(y_val)} now): has the dataset changed?")


def aligned_splits(data: Any) -> SearchSplits:
    """The search's view of the splits (no test labels) with every array copied to a 64-byte aligned buffer, as Ray's object store
    hands them to a trial: torch's vectorised CPU kernels round differently depending on the
    input's alignment, which through training changes results by up to 1e-5."""
    import numpy as np

    def aligned(array: np.ndarray) -> np.ndarray:
        buffer = np.empty(array.nbytes + 64, dtype=np.uint8)
        offset = (-buffer.ctypes.data) % 64
        out = buffer[offset:offset + array.nbytes].view(array.dtype).reshape(array.shape)
        out[...] = array
        return out

    search, _ = separate(data)
    if not isinstance(search, SearchSplits):  # streamed: read in batches, nothing to align
        return search  # type: ignore[return-value]
    return SearchSplits(aligned(search.x_train), aligned(search.y_train), aligned(search.x_val),
                        aligned(search.y_val), aligned(search.x_test), search.spec, search.raw)
