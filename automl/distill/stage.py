"""The distillation stage: student trials after the search and the ensemble.

Students are Ray Tune trials of the ordinary trainable (:func:`automl.trial.trainable.run_trial`)
with two differences: their training labels carry the teacher's predictions
(:mod:`automl.distill.student`), and their configurations come from the students' space
(:class:`~automl.distill.settings.StudentSpace`), sampled by their own in-memory Optuna study
seeded from the experiment's seed. Their rows are trials of kind ``distilled``, numbered after the
search's; the best feasible one (:func:`automl.results.best_student_of`) is scored on the test
split by the final evaluation, beside the best trial and the ensemble.

A student is always validated on the validation split, also in a k-fold experiment (the
teacher's fold models are averaged; only the training rows are distilled).

With ``distillation.augment``, synthetic rows made from the training inputs
(:mod:`automl.distill.augment`, seeded from the experiment's seed) follow the training rows; the
teacher predicts them on the driver as it predicts the training inputs, and they travel to the
students with the training split (the object store holds ``1 + size`` times the training inputs).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.distill.augment import check_augmentable, synthetic_inputs
from automl.distill.settings import TEACHER
from automl.distill.student import pack
from automl.distill.teacher import choose_teacher, teacher_predictions
from automl.events import (
    DistillationFinished, DistillationSkipped, DistillationStarted, Listener,
)
from automl.results import DISTILLED, best_student_of, students_of
from automl.search_data import SearchSplits
from automl.store import FINISHED, Store

if TYPE_CHECKING:
    from automl.distill.settings import DistillationSettings
    from automl.lifecycle import ExperimentInfo
    from automl.runner import Prepared

#: added to the experiment's seed for the students' sampler (the search's starts at the seed)
SAMPLER_OFFSET = 104_729
#: added to the experiment's seed for the synthetic rows of ``distillation.augment``
AUGMENT_OFFSET = 130_363


def distillation_stage(prepared: "Prepared", settings: "DistillationSettings",
                       data: SearchSplits, store: Store, experiment_id: int,
                       info: "ExperimentInfo", emit: Listener) -> None:
    """Run the student trials still missing (a resumed run counts those already finished)."""
    from ray import tune

    from automl.progress import ProgressEvents
    from automl.scheduler import build_tuner, make_searcher
    from automl.search.recorder import StoreRecorder
    from automl.search.stopper import StopSearch
    from automl.trial.context import TrialContext
    from automl.trial.trainable import run_trial

    config = prepared.loaded.config
    registry = prepared.plugins.registry
    started = time.monotonic()
    exp = store.experiment(config.name)
    budget = settings.trials - sum(1 for t in students_of(exp) if t.status in FINISHED)
    if budget <= 0:
        emit(DistillationSkipped(f"its {settings.trials} student trials have run"))
        return
    teacher = choose_teacher(exp)
    if teacher is None:
        emit(DistillationSkipped("no completed trial to learn from"))
        return
    check_augmentable(settings.augment, data.x_train, data.spec.kind)
    tick = time.monotonic()
    soft = teacher_predictions(exp, registry, teacher, data.x_train, data.spec,
                               config.training.eval_batch_size)
    x_train, synthetic = data.x_train, None
    if settings.augment != "none":
        made = synthetic_inputs(settings.augment, data.x_train, settings.augment_size,
                                config.seed + AUGMENT_OFFSET)
        synthetic = teacher_predictions(exp, registry, teacher, made, data.spec,
                                        config.training.eval_batch_size)
        x_train = np.concatenate([data.x_train, made])
    packed, labels = pack(data.y_train, soft, synthetic)
    emit(DistillationStarted(teacher.describe(), budget, time.monotonic() - tick))
    students = SearchSplits(x_train, packed, data.x_val, data.y_val, data.x_test, data.spec)
    space = dataclasses.replace(settings.space, teacher=teacher.describe())
    objectives = [(o.metric, o.mode) for o in space.objectives]
    context = dataclasses.replace(
        TrialContext.for_experiment(settings.config, objectives, prepared.plugins.source,
                                    registry),
        validation=None, student=labels)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, context=context, data=students),
        {"cpu": config.resources.cpu, "gpu": config.resources.gpu})
    recorder = StoreRecorder(store, experiment_id, info, prepared.plugins,
                             max(t.number for t in exp.trials) + 1, kind=DISTILLED)
    progress = ProgressEvents(recorder, space.objectives, budget, emit, (), space.constraints)
    searcher = make_searcher(space, config.search, config.seed + SAMPLER_OFFSET)
    tuner = build_tuner(trainable, config, space, searcher, budget, str(prepared.artifacts_dir),
                        [recorder, progress], stop=StopSearch(recorder))
    try:
        tuner.fit()
    finally:
        recorder.flush()
    if recorder.hook_error is not None:
        raise recorder.hook_error
    if recorder.disk_full:
        from automl.search.disk import disk_full_error

        raise disk_full_error(prepared.artifacts_dir, config.name,
                              f"automl run {prepared.loaded.path} --resume")
    done = store.experiment(config.name)
    best = best_student_of(done)
    key = space.objectives[0].key
    emit(DistillationFinished(best.number if best else None,
                              best.metrics.get(key) if best else None, key,
                              sum(1 for t in students_of(done) if t.status == "completed"),
                              time.monotonic() - started))


def check_distillation_data(settings: "DistillationSettings", data: Any, config: Any) -> None:
    """Before the search: refuse synthetic rows the loaded data cannot have (token ids, a
    streamed split), with the experiment file's line, before anything is written."""
    from automl.config.loader import locate
    from automl.errors import ConfigError

    try:
        check_augmentable(settings.augment, data.x_train, data.spec.kind)
    except ConfigError as exc:
        raise locate(exc, config) from None


def teacher_of(params: dict[str, Any]) -> str | None:
    """The teacher a student learned from, as its parameters record it."""
    value = params.get(TEACHER)
    return str(value) if value is not None else None
