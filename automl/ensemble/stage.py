"""The ensemble stage: search weights over the best trials' stored validation predictions.

No retraining and no model loading: candidates are the top-k completed trials by the first
objective; their validation predictions are split (stratified, from the seed) into a part the
ensembler fits on and a held-out part that checks the fitted weights against the best single
trial. If the ensemble does not beat the best single trial on the held-out part, the guard falls
back to the best single trial. The stage never sees a test label (trial checkpoints hold none):
the final evaluation (:mod:`automl.evaluate`) scores the stored ensemble on the test split after
this stage has returned.

It runs in-process on the driver: a weight evaluation costs well under a millisecond, far below
Ray Tune's per-trial overhead (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.components import DataSpec, EvalContext, Task
from automl.config.models import EnsembleConfig
from automl.ensemble.predictions import CandidatePredictions
from automl.errors import ConfigError, PluginError, did_you_mean
from automl.multitask import create_metric, split_metric_name, targets_of, task_for
from automl.registry import Registry
from automl.constraints import ConstraintSpec, is_feasible, within_budget
from automl.results import best_of, constraints_of, objectives_of, search_trials
from automl.space import ObjectiveSpec, applies_to, tie_breakers
from automl.store import EnsembleRecord, ExperimentRecord, TrialRecord
from automl.store.store import now


@dataclass(frozen=True)
class EnsembleSettings:
    ensembler: str
    params: dict[str, Any]
    candidates: int
    diversity: float | None
    holdout: float
    metric: str
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {"ensembler": self.ensembler, "params": self.params,
                "candidates": self.candidates, "diversity": self.diversity,
                "holdout": self.holdout, "metric": self.metric, "mode": self.mode}


@dataclass
class EnsembleOutcome:
    record: EnsembleRecord | None
    skipped: str | None = None
    candidates: list[int] = field(default_factory=list)


def resolve_settings(config: EnsembleConfig, objectives: Sequence[ObjectiveSpec],
                     registry: Registry) -> EnsembleSettings:
    """Validate the ``ensemble:`` section against the registry."""
    entry = registry.get("ensembler", config.ensembler, path="ensemble.ensembler")
    declared = entry.cls.params
    for key in config.params:
        if key not in declared:
            raise ConfigError(f"unknown parameter '{key}'{did_you_mean(key, declared)}; valid "
                              f"parameters: {', '.join(declared) or '(none)'}",
                              path=f"ensemble.params.{key}")
    params = {k: d.default.value for k, d in declared.items() if hasattr(d.default, "value")}
    params.update(config.params)
    metric_name = config.metric or objectives[0].metric
    metric = registry.get("metric", split_metric_name(metric_name)[1], path="ensemble.metric")
    if metric.cls.model_only:  # type: ignore[attr-defined]
        raise ConfigError(f"metric '{metric_name}' depends only on the model; an ensemble needs a "
                          "metric of its predictions", path="ensemble.metric")
    mode = next((o.mode for o in objectives if o.metric == metric_name),
                metric.cls.direction)  # type: ignore[attr-defined]
    return EnsembleSettings(config.ensembler, params, config.candidates, config.diversity,
                            config.holdout, metric_name, mode)


def run_ensemble_stage(experiment: ExperimentRecord, registry: Registry,
                       settings: EnsembleSettings, spec: DataSpec | None = None
                       ) -> EnsembleOutcome:
    """Fit ensemble weights for a finished search and score them on the held-out part of
    validation; returns the record to store."""
    objectives = objectives_of(experiment)
    best = best_of(experiment)
    constraints = constraints_of(experiment)
    searched = search_trials(experiment.trials)  # never the distillation stage's students
    chosen = select_candidates(searched, objectives[0], settings, constraints)
    if best is None or len(chosen) < 2:
        return EnsembleOutcome(None, "fewer than two completed trials with predictions"
                               + (" that meet the constraints together" if constraints else ""))
    if best.number not in [c.number for c in chosen]:
        chosen = [best, *chosen[:-1]]
        if not within_budget([t.metrics for t in chosen], constraints):
            chosen = select_candidates(searched, objectives[0], settings, constraints,
                                       lead=best)
            if len(chosen) < 2:
                return EnsembleOutcome(None, "fewer than two completed trials with predictions "
                                       "that meet the constraints together")
    candidates = [CandidatePredictions.load(t.number, t.checkpoint or "") for t in chosen]
    num_classes = candidates[0].val_proba.shape[1]
    spec = spec or DataSpec("tabular", (0,), num_classes)
    task = task_for(spec, registry)
    candidates = _diverse(candidates, settings.diversity, task)  # type: ignore[arg-type]
    if len(candidates) < 2:
        return EnsembleOutcome(None, "the diversity filter left fewer than two candidates")
    y_val = candidates[0].val_y
    if any(not np.array_equal(c.val_y, y_val) for c in candidates):
        raise PluginError("candidates were trained on different validation splits; an ensemble "
                          "needs one experiment's trials")

    score = _scorer(registry, settings, spec)
    fit_idx, check_idx = holdout_split(y_val, settings.holdout, experiment.seed,
                                       task.stratify(y_val))  # type: ignore[attr-defined]
    entry = registry.get("ensembler", settings.ensembler)
    try:
        weights = np.asarray(entry.create().fit(  # type: ignore[attr-defined]
            [c.val_proba[fit_idx] for c in candidates], y_val[fit_idx], score,
            dict(settings.params), experiment.seed), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{entry.plugin}', ensembler '{entry.name}': fit() raised "
                          f"{type(exc).__name__}: {exc}") from exc
    if weights.shape != (len(candidates),) or (weights < 0).any() or weights.sum() <= 0 \
            or not np.isfinite(weights).all():
        raise PluginError(f"plugin '{entry.plugin}', ensembler '{entry.name}': fit() returned "
                          f"invalid weights {weights.tolist()}")
    weights = weights / weights.sum()

    best_index = [c.number for c in candidates].index(best.number)
    single = np.eye(len(candidates))[best_index]

    def blend(w: np.ndarray, probas: Sequence[np.ndarray]) -> np.ndarray:
        return task.combine(w, probas)  # type: ignore[attr-defined]

    val_probas = [c.val_proba for c in candidates]
    check = {"ensemble": score(y_val[check_idx], blend(weights, [p[check_idx] for p in val_probas])),
             "best_single": score(y_val[check_idx], val_probas[best_index][check_idx])}
    note = None
    if check["ensemble"] <= check["best_single"] and not np.array_equal(weights, single):
        note = ("guard: the fitted weights did not beat the best single trial on the held-out "
                "validation part; the ensemble falls back to the best single trial")
        weights = single

    # The ensemble metric, then every prediction metric recorded always (declared by the class).
    metric_names = list(dict.fromkeys([settings.metric, *(
        e.name for e in registry if e.kind == "metric" and e.cls.aggregate == "predictions"  # type: ignore[attr-defined]
        and not e.cls.model_only and e.cls.recorded == "always"  # type: ignore[attr-defined]
        and applies_to(e.cls, spec.task)), *(
        f"{t.name}/{e.name}" for t in targets_of(spec) for e in registry if e.kind == "metric"
        and e.cls.aggregate == "predictions" and not e.cls.model_only  # type: ignore[attr-defined]
        and e.cls.recorded == "always" and e.cls.tasks is not None  # type: ignore[attr-defined]
        and applies_to(e.cls, t.task))]))
    scores = {"ensemble": {}, "best_single": {}}
    for label, w in (("ensemble", weights), ("best_single", single)):
        for name in metric_names:
            value = _metric(registry, name, spec)
            scores[label][f"val_check/{name}"] = value(y_val[check_idx],
                                                       blend(w, [p[check_idx] for p in val_probas]))
    by_number = {t.number: t for t in chosen}
    members = [c.number for c, w in zip(candidates, weights) if w > 0]
    summed = [e.name for e in registry if e.kind == "metric"
              and e.cls.aggregate == "sum"]  # type: ignore[attr-defined]
    for size in summed:  # e.g. an ensemble's size and latency: its members' sum
        # model/<metric>; test/<metric> in experiments recorded before model-only keys
        key_name = next((k for k in (f"model/{size}", f"test/{size}")
                         if all(k in by_number[n].metrics for n in members)), None)
        if key_name is not None:
            scores["ensemble"][size] = float(sum(by_number[n].metrics[key_name] for n in members))
            scores["best_single"][size] = float(best.metrics.get(key_name, float("nan")))
    record = EnsembleRecord(
        ensembler=settings.ensembler, settings=settings.as_dict(), metric=settings.metric,
        members=[c.number for c, w in zip(candidates, weights) if w > 0],
        weights=[float(w) for w in weights if w > 0], best_single=best.number,
        scores=scores, note=note, created_at=now())
    return EnsembleOutcome(record, None, [c.number for c in candidates])


def select_candidates(trials: Sequence[TrialRecord], objective: ObjectiveSpec,
                      settings: EnsembleSettings,
                      constraints: Sequence[ConstraintSpec] = (),
                      lead: TrialRecord | None = None) -> list[TrialRecord]:
    """Top-k completed, feasible trials with stored predictions, best first by the first
    objective. With constraints on values an ensemble adds up (size, latency), a trial joins
    only while the candidates' sum stays within the bound, so whatever weights the ensembler
    fits, the ensemble meets the same budget as a single trial. ``lead`` (the best trial, when
    the ranking by the first objective alone put it elsewhere) is taken first."""
    done = [t for t in trials if t.status == "completed" and t.checkpoint
            and objective.key in t.metrics and is_feasible(t.metrics, constraints)]
    sign = -1 if objective.mode == "max" else 1
    done.sort(key=lambda t: (sign * t.metrics[objective.key], t.number))
    if lead is not None:
        done = [lead, *(t for t in done if t.number != lead.number)]
    chosen: list[TrialRecord] = []
    for trial in done:
        if len(chosen) == settings.candidates:
            break
        if within_budget([t.metrics for t in (*chosen, trial)], constraints):
            chosen.append(trial)
    return chosen


def holdout_split(y: np.ndarray, holdout: float, seed: int,
                  stratify: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fit part and the held-out check part of the validation split
    (stratified by ``stratify``, the task's groups of ``y``, when given)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(y))
    fit, check = train_test_split(indices, test_size=holdout, random_state=seed + 7,
                                  stratify=stratify)
    return np.sort(fit), np.sort(check)


def _diverse(candidates: list[CandidatePredictions], threshold: float | None, task: Task
             ) -> list[CandidatePredictions]:
    if threshold is None:
        return candidates
    kept: list[CandidatePredictions] = []
    for candidate in candidates:
        if all(task.agreement(candidate.val_proba, k.val_proba) <= threshold for k in kept):
            kept.append(candidate)
    return kept


def _metric(registry: Registry, name: str, spec: DataSpec, split: str = "val"
            ) -> Callable[[np.ndarray, np.ndarray], float]:
    metric = create_metric(registry, name, spec)

    def value(y: np.ndarray, proba: np.ndarray) -> float:
        return float(metric.compute(EvalContext(y, proba, None, spec, split)))  # type: ignore[attr-defined]

    return value


#: weight of the tie-breaker metric: far below one example's worth of accuracy on any split
TIE_BREAK = 1e-6


def _scorer(registry: Registry, settings: EnsembleSettings, spec: DataSpec
            ) -> Callable[[np.ndarray, np.ndarray], float]:
    """Higher is better, whatever the metric's direction.

    Step metrics such as accuracy tie on most weight changes of a small validation split; ties
    are broken by the metric that declares ``tie_breaker = True`` (log loss among the built-ins),
    scaled by :data:`TIE_BREAK`, so among weights of equal accuracy the better-calibrated blend
    wins, in fitting and in the held-out guard alike.
    """
    value = _metric(registry, settings.metric, spec)
    sign = 1.0 if settings.mode == "max" else -1.0
    tie = next((t for t in tie_breakers(registry, spec.task) if t.metric != settings.metric
                and not registry.get("metric", t.metric).cls.model_only), None)  # type: ignore[attr-defined]
    if tie is None:
        return lambda y, proba: sign * value(y, proba)
    tie_value = _metric(registry, tie.metric, spec)
    tie_sign = 1.0 if tie.mode == "max" else -1.0

    def score(y: np.ndarray, proba: np.ndarray) -> float:
        return sign * value(y, proba) + TIE_BREAK * tie_sign * tie_value(y, proba)

    return score
