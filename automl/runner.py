"""Running an experiment end to end: validate, load data, search, record, return the result.

Everything that can be wrong with the input is checked before the search starts and before the
database gets an experiment row: the experiment file before Ray starts; the data (and what the
data must fit: architectures' output shapes, streaming, raw inputs) while embedded Ray starts.
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import automl
from automl.callbacks import PLUGIN_NAME as CALLBACKS_PLUGIN, EnabledCallback, RunCallbacks
from automl.callbacks import resolve_callbacks
from automl.config import LoadedExperiment, load_experiment
from automl.config.loader import locate
from automl.constraints import ConstraintSpec
from automl.ensemble import EnsembleSettings, resolve_settings, run_ensemble_stage
from automl.errors import AutomlError, ConfigError
from automl.events import (
    BudgetSpent, DataLoaded, EnsembleFinished, EnsembleSkipped, Listener, RayStarting,
    ResumeStartsAnew, RunFinished, RunResumed, RunStarted, RunWarning, WarmStarted, ignore,
)
from automl.lifecycle import ExperimentInfo, TrialInfo
from automl.plugin_manager import Plugins, plugin_source, build_plugins
from automl.recorded import plugins_record, resolved_config
from automl.space import ObjectiveSpec, SearchSpace, build_space, metric_entry
from automl.results import best_trial, objectives_row, search_trials
from automl.search_data import SearchSplits, StreamedSearchSplits, TestLabels, separate
from automl.stream_splits import check_streamable
from automl.trial.data_parallel import check_data_parallel
from automl.store import (
    FINISHED, EvaluationRecord, ExperimentStatus, Store, TrialRecord, TrialStatus,
    default_db_url, safe_url,
)



if TYPE_CHECKING:
    from automl.distill import DistillationSettings
    from automl.search.warm_start import WarmStart


@dataclass
class RunResult:
    """What ``automl.run`` returns."""

    name: str
    status: ExperimentStatus
    db_url: str
    artifacts_dir: str
    objectives: list[ObjectiveSpec]
    trials: list[TrialRecord] = field(default_factory=list)
    elapsed_s: float = 0.0
    tie_breakers: list[ObjectiveSpec] = field(default_factory=list)
    #: the final evaluation this run made (test metrics of the best trial, Pareto front, ensemble)
    evaluation: EvaluationRecord | None = None
    #: hard bounds a trial must meet to be chosen (``constraints:``)
    constraints: list[ConstraintSpec] = field(default_factory=list)

    @property
    def best(self) -> TrialRecord | None:
        return best_trial(search_trials(self.trials), self.objectives, self.tie_breakers,
                          self.constraints)


@dataclass
class Prepared:
    """A validated experiment, ready to run."""

    loaded: LoadedExperiment
    plugins: Plugins
    space: SearchSpace
    db_url: str
    artifacts_dir: Path | str  # a local directory or a storage URI
    ensemble: EnsembleSettings | None = None
    callbacks: list[EnabledCallback] = field(default_factory=list)
    #: the distillation stage's settings; None when it runs no student
    distillation: "DistillationSettings | None" = None


def prepare(path: str | Path, *, overrides: dict[str, Any] | None = None,
            db: str | None = None, artifacts: str | None = None) -> Prepared:
    """Load, validate and resolve an experiment without running anything."""
    loaded = load_experiment(path, overrides)
    config = loaded.config
    plugins = build_plugins(plugin_source(config.plugins.load, loaded.base_dir,
                                          blocked=config.plugins.block))
    space = build_space(config, plugins.registry)
    ensemble = None
    if config.ensemble.enabled:
        try:
            ensemble = resolve_settings(config.ensemble, space.objectives, plugins.registry)
            metric_entry(plugins.registry, ensemble.metric, space.task, space.targets,
                         "ensemble.metric")
        except ConfigError as exc:
            raise locate(exc, config) from None
    try:
        callbacks = resolve_callbacks(config.callbacks, plugins.registry, loaded.base_dir)
    except ConfigError as exc:
        raise locate(exc, config) from None
    distillation = None
    if config.distillation.trials:
        from automl.distill import resolve_distillation

        distillation = resolve_distillation(config, space, plugins.registry)
    try:  # what several workers per trial cannot train (a streamed dataset: once it is loaded)
        check_data_parallel(config, space.architectures, space.strategies, plugins.registry,
                            False, distillation is not None)
    except ConfigError as exc:
        raise locate(exc, config) from None
    db_url = db or config.storage.db or default_db_url()
    artifacts_dir = artifacts_location(artifacts or config.storage.artifacts or "runs")
    return Prepared(loaded, plugins, space, db_url, artifacts_dir, ensemble, callbacks,
                    distillation)


def artifacts_location(value: str) -> Path | str:
    """A local directory (made absolute) or a URI such as ``s3://bucket/runs``, kept as is."""
    if "://" in value:
        return value
    return Path(value).expanduser().resolve()


def check_artifacts_dir(location: Path | str) -> None:
    """A local artifacts location must be a directory or creatable as one (URIs are Ray's)."""
    if isinstance(location, str):
        return
    existing = next((p for p in (location, *location.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"artifacts location {location} is not a directory ({existing} is a "
                          "file)", path="storage.artifacts")
    if existing is not None and not os.access(existing, os.W_OK):
        raise ConfigError(f"artifacts location {location} is not writable",
                          path="storage.artifacts")


#: Sections that may change between a run and its ``--resume`` (budgets, placement, reporting).
RESUMABLE_CHANGES = ("description", "storage", "resources", "ensemble", "callbacks",
                     "distillation")
#: ``warm_start`` only seeds a new study: a resumed one already holds what it carried over.
RESUMABLE_SEARCH_CHANGES = ("num_trials", "max_concurrent", "time_budget_s", "max_failures",
                            "warm_start")


def search_hash(config: Any) -> str:
    """A hash of everything that defines the search; ``--resume`` refuses when it changed."""
    import hashlib
    import json

    document = config.model_dump(mode="json")
    for key in RESUMABLE_CHANGES:
        document.pop(key, None)
    for key in RESUMABLE_SEARCH_CHANGES:
        document["search"].pop(key, None)
    for key in ("record", "multitask", "constraints", "quantization", "strategy"):  # added later:
        # unset keeps the hashes of files written before
        if not document.get(key):
            document.pop(key, None)
    document["dataset"].pop("stream_workers", None)  # how fast, not what: may change
    for key, value in {"cache": "auto", "cache_limit_mb": 1024.0}.items():  # added later: the
        if document["dataset"].get(key) == value:  # defaults keep the hashes of older files
            document["dataset"].pop(key)
    if document.get("validation") == "holdout":  # added later: the default keeps older hashes
        document.pop("validation")
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass
class Resume:
    """What a resumed run continues from."""

    experiment_id: int
    finished: int
    interrupted: list[TrialRecord]
    first_number: int


def run_experiment(path: str | Path, *, address: str | None = None, db: str | None = None,
                   artifacts: str | None = None, max_trials: int | None = None,
                   name: str | None = None, listener: Listener | None = None,
                   verbose: bool = False, resume: bool = False) -> RunResult:
    """Run an experiment file; the Python form of ``automl run``. Prints nothing: progress
    goes to ``listener`` as :mod:`automl.events` (the CLI renders them).

    With ``resume=True`` an interrupted experiment of the same name continues: finished trials
    keep their rows and are not run again, the Optuna study (in the same database) continues from
    what it knew, trials the interruption cut short are run again from scratch with the same
    parameters under their old numbers, and the total number of trials stays the budget. An
    experiment the database has no record of (a crash before its row was written) is started
    from the beginning.
    """
    emit = listener or ignore
    overrides: dict[str, Any] = {}
    if max_trials is not None:
        overrides["search.num_trials"] = max_trials
    if name is not None:
        overrides["name"] = name
    prepared = prepare(path, overrides=overrides, db=db, artifacts=artifacts)
    config = prepared.loaded.config

    from automl.ray_session import check_local_resources, ray_is_running, start_ray

    check_artifacts_dir(prepared.artifacts_dir)
    if address is not None or ray_is_running():
        return _with_data(prepared, _load_data(prepared, emit), address, emit, verbose, resume)
    check_local_resources(config.resources.cpu, config.resources.gpu,
                          config.resources.workers)
    # Embedded Ray starts (in this thread: Ray's processes must outlive the thread that starts
    # them) while the data loads in another; starting Ray is mostly waiting for its processes.
    with ThreadPoolExecutor(1, thread_name_prefix="automl-data") as pool:
        loading = pool.submit(_load_data, prepared, None)
        emit(RayStarting(None))
        start_ray(None, verbose=verbose)  # on failure, leaving the block waits for the loader
    import ray

    try:
        data = loading.result()  # the loader's error, if it failed
        emit(DataLoaded(config.dataset.name, data[0].sizes(), data[2]))
        return _with_data(prepared, data, address, emit, verbose, resume)
    finally:
        ray.shutdown()


def _load_data(prepared: Prepared, emit: Listener | None
               ) -> tuple[SearchSplits, TestLabels, float]:
    """The experiment's data, split into what the search may see and the test labels; checked
    against every architecture of the space. ``emit`` gets :class:`DataLoaded` (None: the
    caller emits it, from its own thread)."""
    from automl.data import prepare_data
    from automl.trial.output_shape import check_architectures
    from automl.trial.raw_augmentation import check_raw_inputs

    config = prepared.loaded.config
    loading = time.monotonic()
    # The search (trials, best-trial choice, ensemble) gets ``data`` without test labels; only
    # the final evaluation gets ``labels``, after the stages before it returned.
    data, labels = separate(prepare_data(config, prepared.plugins.registry))
    seconds = time.monotonic() - loading
    if emit is not None:
        emit(DataLoaded(config.dataset.name, data.sizes(), seconds))
    check_architectures(prepared.space.architectures, prepared.plugins.registry, data.x_train,
                        data.spec)
    check_raw_inputs([name for name in config.augmentations if getattr(
        prepared.plugins.registry.get("augmentation", name).cls, "inputs", "batch") == "raw"],
        data.raw, f"dataset '{config.dataset.name}'")
    if isinstance(data, StreamedSearchSplits):
        check_streamable(prepared.space.architectures, prepared.plugins.registry,
                         prepared.space.strategies, prepared.distillation is not None)
        check_data_parallel(config, prepared.space.architectures, prepared.space.strategies,
                            prepared.plugins.registry, True, prepared.distillation is not None)
    return data, labels, seconds


def _with_data(prepared: Prepared, loaded: tuple[SearchSplits, TestLabels, float],
               address: str | None, emit: Listener, verbose: bool, resume: bool) -> RunResult:
    config = prepared.loaded.config
    data, labels, _ = loaded
    if prepared.distillation is not None:  # what only the loaded data tells, before any write
        from automl.distill import check_distillation_data

        check_distillation_data(prepared.distillation, data, config)
    with Store(prepared.db_url) as store, store.lease(config.name):  # one live run per name
        resumed = _check_resume(store, config) if resume else None
        if resume and resumed is None:
            emit(ResumeStartsAnew(config.name, safe_url(prepared.db_url)))
        warm = None
        if resumed is None:
            store.ensure_new_name(config.name)  # refuse before the search starts
            if config.search.warm_start is not None:
                from automl.search.warm_start import plan_warm_start

                try:
                    warm = plan_warm_start(store, config.name, config.search.warm_start,
                                           prepared.space)
                except ConfigError as exc:
                    raise locate(exc, config) from None
        return _run(prepared, data, labels, store, address, emit, verbose, resumed, warm)


def _check_resume(store: Store, config: Any) -> Resume | None:
    """Refuse a resume that cannot continue the same search; reconcile stale rows. None when
    the experiment has no row yet (the run was stopped before it began): it simply starts."""
    from automl.errors import StoreError

    if not store.has_experiment(config.name):
        return None
    if store.config_hash(config.name) != search_hash(config):
        raise StoreError(f"experiment '{config.name}' was started with another search space or "
                         "training setup; --resume continues only the same experiment (budgets, "
                         "resources and storage may change). Run it under a new --name instead.")
    experiment_id, interrupted = store.reopen_experiment(config.name)
    everything = store.experiment(config.name).trials
    trials = search_trials(everything)  # interrupted students: the distillation stage's own
    finished = sum(1 for t in trials if t.status in FINISHED)
    return Resume(experiment_id, finished,
                  [t for t in trials if t.number in set(interrupted)],
                  max((t.number for t in everything), default=-1) + 1)


def _run(prepared: Prepared, data: SearchSplits | StreamedSearchSplits, labels: TestLabels, store: Store,
         address: str | None, emit: Listener, verbose: bool, resumed: Resume | None = None,
         warm: "WarmStart | None" = None) -> RunResult:
    from automl.evaluate import final_evaluation
    from automl.ray_session import check_resources, ray_is_running, ray_session

    config = prepared.loaded.config
    started = time.monotonic()
    if not ray_is_running():
        emit(RayStarting(address))
    with ray_session(address, verbose=verbose):
        warning = check_resources(config.resources.cpu, config.resources.gpu,
                                  config.resources.workers,
                                  strict=address is None)
        if warning:
            emit(RunWarning(warning))
        recorded = resolved_config(config, prepared.plugins.registry, prepared.loaded.base_dir)
        if resumed is None:
            experiment_id = store.create_experiment(
                name=config.name, seed=config.seed, config=recorded,
                config_hash=search_hash(config),
                objectives=objectives_row(prepared.space.objectives,
                                          prepared.space.tie_breakers,
                                          prepared.space.constraints,
                                          prepared.distillation.constraints
                                          if prepared.distillation else ()),
                plugins=plugins_record(prepared.plugins),
                automl_version=automl.__version__, artifacts_dir=str(prepared.artifacts_dir),
                data_sizes=data.sizes())
        else:
            experiment_id = resumed.experiment_id
            _reconcile_study(prepared, store)
        # Lifecycle hooks (and Tune's pickled callbacks, which hold this) see no password.
        info = ExperimentInfo(config.name, recorded, safe_url(prepared.db_url),
                              str(prepared.artifacts_dir))
        status, error = ExperimentStatus.FAILED, None
        evaluation = None
        callbacks = None
        if prepared.callbacks:  # an experiment without callbacks registers nothing
            callbacks = RunCallbacks(prepared.callbacks, prepared.plugins.registry, emit)
            prepared.plugins.manager.register(callbacks, name=CALLBACKS_PLUGIN)
        try:
            prepared.plugins.call("automl_experiment_started", experiment=info)
            if resumed is not None:
                emit(RunResumed(config.name, resumed.finished, len(resumed.interrupted),
                                max(config.search.num_trials - resumed.finished, 0)))
            emit(RunStarted(config.name, config.search.num_trials,
                            len(prepared.space.architectures), config.search.sampler,
                            config.search.early_stopping, safe_url(prepared.db_url),
                            config.search.time_budget_s))
            _search(prepared, data, store, experiment_id, info, emit, resumed, warm)
            if prepared.ensemble is not None:
                ensemble_stage(store, config.name, prepared.plugins.registry, prepared.ensemble,
                               emit, data.spec)
            if prepared.distillation is not None:  # students of the ensemble (or best trial)
                from automl.distill import distillation_stage

                distillation_stage(prepared, prepared.distillation, data, store, experiment_id,
                                   info, emit)
            # the search and the ensemble stage have returned: the test split, once
            evaluation = final_evaluation(store, config.name, prepared.plugins.registry,
                                          labels, data.spec, emit)
            status = ExperimentStatus.COMPLETED
        except KeyboardInterrupt:
            status, error = ExperimentStatus.INTERRUPTED, "interrupted by the user"
            raise
        except AutomlError as exc:
            error = str(exc)
            raise
        except Exception:
            error = traceback.format_exc()
            raise
        finally:
            # Trials cut short are not in the study: it holds finished trials only.
            store.interrupt_running(experiment_id)
            store.finish_experiment(experiment_id, status, error)
            trials = store.experiment(config.name).trials
            objectives = prepared.space.objectives
            best = best_trial(search_trials(trials), objectives, prepared.space.tie_breakers,
                              prepared.space.constraints)
            best_info = (TrialInfo(best.number, best.tune_trial_id, best.status, best.params,
                                   best.metrics, checkpoint=best.checkpoint) if best else None)
            try:
                if status != ExperimentStatus.INTERRUPTED:
                    prepared.plugins.call("automl_experiment_finished", experiment=info,
                                          status=status, best=best_info,
                                          evaluation=(store.experiment(config.name).evaluation
                                                      if status == ExperimentStatus.COMPLETED
                                                      else None))
            finally:
                if callbacks is not None:
                    callbacks.close()
                    prepared.plugins.manager.unregister(callbacks)
            counts: dict[str, int] = {}
            for trial in trials:
                counts[trial.status] = counts.get(trial.status, 0) + 1
            emit(RunFinished(config.name, status, time.monotonic() - started, counts))
    return RunResult(config.name, status, prepared.db_url, str(prepared.artifacts_dir),
                     prepared.space.objectives, trials, time.monotonic() - started,
                     prepared.space.tie_breakers,
                     evaluation or store.experiment(config.name).evaluation,
                     prepared.space.constraints)


def _reconcile_study(prepared: Prepared, store: Store) -> None:
    """Before a resumed search: the Optuna study agrees with the store (stale RUNNING trials of an
    older writer failed, trials the store finished but the study missed added)."""
    from automl.study import add_missing_trials, fail_stale_trials

    name = prepared.loaded.config.name
    fail_stale_trials(prepared.db_url, name)
    rows = [(t.status, t.params, t.metrics) for t in search_trials(store.experiment(name).trials)
            if t.status in FINISHED]
    add_missing_trials(prepared.db_url, name, prepared.space.define,
                       [o.key for o in prepared.space.objectives], rows)


def _search(prepared: Prepared, data: Any, store: Store, experiment_id: int,
            info: ExperimentInfo, emit: Listener, resumed: Resume | None = None,
            warm: "WarmStart | None" = None) -> Any:
    from ray import tune

    from automl.progress import ProgressEvents
    from automl.scheduler import build_tuner, make_searcher
    from automl.study import MirroredStorage
    from automl.search.recorder import StoreRecorder
    from automl.search.disk import caused_by_full_disk, disk_full_error
    from automl.search.stopper import StopSearch
    from automl.trial.context import TrialContext
    from automl.trial.data_parallel import trial_resources
    from automl.trial.trainable import run_trial

    config = prepared.loaded.config
    space = prepared.space
    registry = prepared.plugins.registry
    context = TrialContext.for_experiment(
        config, [(o.metric, o.mode) for o in space.objectives], prepared.plugins.source,
        registry)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, context=context, data=data),
        trial_resources(config.resources))
    budget = config.search.num_trials
    searched = {name for name, _ in space.rows()}
    rerun: list[TrialRecord] = []
    first_number = 0
    if resumed is not None:
        budget = max(config.search.num_trials - resumed.finished, 0)
        rerun = resumed.interrupted[:budget]
        first_number = resumed.first_number
    if budget == 0:
        emit(BudgetSpent(resumed.finished if resumed is not None else 0))
        return None
    queued = [{k: v for k, v in t.params.items() if k in searched} for t in rerun]
    if warm is not None:  # a new experiment: its study starts from the sources' trials
        from automl.search.warm_start import seed_study

        seed_study(prepared.db_url, config.name, space, warm)
        queued += warm.queued[:budget]
        emit(WarmStarted(warm.carried))
    # The sampler reads the study in memory; each finished trial is written to the database
    # after the store has recorded it (the recorder's after_finish).
    study_storage = MirroredStorage(prepared.db_url, write_through=False)
    recorder = StoreRecorder(store, experiment_id, info, prepared.plugins, first_number,
                             reuse={t.number: t.params for t in rerun},
                             after_finish=study_storage.write_finished)
    earlier = search_trials(store.experiment(config.name).trials) if resumed is not None else []
    progress = ProgressEvents(recorder, space.objectives, budget, emit, earlier,
                              space.constraints)
    # A resumed sampler gets a fresh seed: replaying the first run's random draws would propose
    # the configurations that already ran.
    searcher = make_searcher(
        space, config.search, config.seed + 7919 * first_number,
        storage=study_storage, name=config.name,
        points_to_evaluate=queued)
    tuner = build_tuner(trainable, config, space, searcher, budget,
                        str(prepared.artifacts_dir), [recorder, progress],
                        stop=StopSearch(recorder))

    def full_disk() -> Exception:
        return disk_full_error(prepared.artifacts_dir, config.name,
                               f"automl run {prepared.loaded.path} --resume")

    try:
        tuner.fit()
    except Exception as exc:
        # Tune itself may fail on the full disk (its state files, a truncated error file).
        if recorder.disk_full or caused_by_full_disk(exc):
            raise full_disk() from None
        raise
    finally:
        recorder.flush()  # running trials' last epochs, before the run marks them interrupted
        study_storage.write_finished()
    if recorder.hook_error is not None:
        raise recorder.hook_error
    if recorder.disk_full:
        raise full_disk()
    return recorder


def ensemble_stage(store: Store, name: str, registry: Any, settings: EnsembleSettings,
                   listener: Listener | None = None, spec: Any = None) -> Any:
    """Run the ensemble stage on a finished search and store the result; reports
    :class:`EnsembleFinished` or :class:`EnsembleSkipped`. ``spec`` is the run's DataSpec."""
    emit = listener or ignore
    started = time.monotonic()
    outcome = run_ensemble_stage(store.experiment(name), registry, settings, spec)
    _store_ensemble(store, name, outcome, emit, time.monotonic() - started)
    return outcome


def _store_ensemble(store: Store, name: str, outcome: Any, emit: Listener, elapsed_s: float
                    ) -> None:
    if outcome.record is None:
        emit(EnsembleSkipped(outcome.skipped))
        return
    store.add_ensemble(name, outcome.record)
    emit(EnsembleFinished(outcome.record, len(outcome.candidates), elapsed_s))


def ensemble_again(store: Store, name: str, overrides: dict[str, Any] | None = None,
                   listener: Listener | None = None) -> Any:
    """``automl ensemble``: the ensemble stage on a recorded experiment, its recorded
    ``ensemble:`` settings overridden by ``overrides``, with the plugins and the DataSpec the
    run had (the spec as its trials recorded it). A fitted ensemble is evaluated on the test split
    as a new final evaluation (earlier ones are kept): after the fit has returned, the test
    labels are prepared from the recorded config (before anything is stored, so a dataset that
    can no longer be loaded leaves no ensemble without its evaluation), then the ensemble is
    stored and evaluated."""
    from automl.evaluate import final_evaluation, load_test_labels

    from automl.config.models import EnsembleConfig
    from automl.export import recorded_plugins, trial_spec
    from automl.results import objectives_of

    exp = store.experiment(name)
    recorded = exp.config.get("ensemble", {}) or {}
    try:
        config = EnsembleConfig.model_validate({**recorded, **(overrides or {}),
                                                "enabled": True})
    except ValueError as exc:
        raise ConfigError(str(exc).splitlines()[-1] if str(exc) else "invalid option",
                          path="ensemble") from None
    plugins = recorded_plugins(exp)
    settings = resolve_settings(config, objectives_of(exp), plugins.registry)
    trained = next((t for t in exp.trials if t.status == TrialStatus.COMPLETED and t.checkpoint), None)
    spec = (trial_spec(exp, Path(trained.checkpoint), plugins.registry)
            if trained is not None and trained.checkpoint else None)
    emit = listener or ignore
    started = time.monotonic()
    outcome = run_ensemble_stage(exp, plugins.registry, settings, spec)
    fitted_s = time.monotonic() - started
    if outcome.record is None:
        _store_ensemble(store, name, outcome, emit, fitted_s)
        return outcome
    labels, data_spec = load_test_labels(exp, plugins.registry)  # the weights are final
    _store_ensemble(store, name, outcome, emit, fitted_s)
    final_evaluation(store, name, plugins.registry, labels, spec or data_spec, emit)
    return outcome
