"""Running an experiment end to end: validate, load data, search, record, return the result.

Everything that can be wrong with the input is checked before Ray starts and before the database
gets an experiment row.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

import automl
from automl.config import LoadedExperiment, load_experiment
from automl.config.loader import locate
from automl.ensemble import EnsembleSettings, resolve_settings, run_ensemble_stage
from automl.errors import AutomlError, ConfigError
from automl.lifecycle import ExperimentInfo, TrialInfo
from automl.plugin_manager import Plugins, plugin_source, build_plugins
from automl.recorded import plugins_record, resolved_config
from automl.space import ObjectiveSpec, SearchSpace, build_space
from automl.results import best_trial, objectives_row
from automl.store import (
    FINISHED, ExperimentStatus, Store, TrialRecord, default_db_url, safe_url,
)



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

    @property
    def best(self) -> TrialRecord | None:
        return best_trial(self.trials, self.objectives, self.tie_breakers)


@dataclass
class Prepared:
    """A validated experiment, ready to run."""

    loaded: LoadedExperiment
    plugins: Plugins
    space: SearchSpace
    db_url: str
    artifacts_dir: Path | str  # a local directory or a storage URI
    ensemble: EnsembleSettings | None = None


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
        except ConfigError as exc:
            raise locate(exc, config) from None
    db_url = db or config.storage.db or default_db_url()
    artifacts_dir = artifacts_location(artifacts or config.storage.artifacts or "runs")
    return Prepared(loaded, plugins, space, db_url, artifacts_dir, ensemble)


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
RESUMABLE_CHANGES = ("description", "storage", "resources", "ensemble")
RESUMABLE_SEARCH_CHANGES = ("num_trials", "max_concurrent", "time_budget_s", "max_failures")


def search_hash(config: Any) -> str:
    """A hash of everything that defines the search; ``--resume`` refuses when it changed."""
    import hashlib
    import json

    document = config.model_dump(mode="json")
    for key in RESUMABLE_CHANGES:
        document.pop(key, None)
    for key in RESUMABLE_SEARCH_CHANGES:
        document["search"].pop(key, None)
    if not document.get("record"):  # added later: an unset field keeps older hashes
        document.pop("record", None)
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
                   name: str | None = None, console: Console | None = None,
                   verbose: bool = False, resume: bool = False) -> RunResult:
    """Run an experiment file; the Python form of ``automl run``.

    With ``resume=True`` an interrupted experiment of the same name continues: finished trials
    keep their rows and are not run again, the Optuna study (in the same database) continues from
    what it knew, trials the interruption cut short are run again from scratch with the same
    parameters under their old numbers, and the total number of trials stays the budget.
    """
    console = console or Console(highlight=False)
    overrides: dict[str, Any] = {}
    if max_trials is not None:
        overrides["search.num_trials"] = max_trials
    if name is not None:
        overrides["name"] = name
    prepared = prepare(path, overrides=overrides, db=db, artifacts=artifacts)
    config = prepared.loaded.config

    from automl.data import prepare_data
    from automl.ray_session import check_local_resources

    from automl.trial.output_shape import check_architectures

    data = prepare_data(config, prepared.plugins.registry)
    check_architectures(prepared.space.architectures, prepared.plugins.registry, data.x_train,
                        data.spec)
    check_artifacts_dir(prepared.artifacts_dir)
    if address is None:
        check_local_resources(config.resources.cpu, config.resources.gpu)
    with Store(prepared.db_url) as store, store.lease(config.name):  # one live run per name
        resumed = _check_resume(store, config) if resume else None
        if resume and resumed is None:
            console.print(f"nothing to resume: no experiment '{config.name}' in "
                          f"{safe_url(prepared.db_url)} (it was stopped before it began); "
                          "starting it")
        if resumed is None:
            store.ensure_new_name(config.name)  # refuse before Ray starts
        return _run(prepared, data, store, address, console, verbose, resumed)


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
    trials = store.experiment(config.name).trials
    finished = sum(1 for t in trials if t.status in FINISHED)
    return Resume(experiment_id, finished,
                  [t for t in trials if t.number in set(interrupted)],
                  max((t.number for t in trials), default=-1) + 1)


def _run(prepared: Prepared, data: Any, store: Store, address: str | None, console: Console,
         verbose: bool, resumed: Resume | None = None) -> RunResult:
    from automl.ray_session import check_resources, ray_session

    config = prepared.loaded.config
    started = time.monotonic()
    with ray_session(address, verbose=verbose):
        warning = check_resources(config.resources.cpu, config.resources.gpu,
                                  strict=address is None)
        if warning:
            console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
        recorded = resolved_config(config, prepared.plugins.registry, prepared.loaded.base_dir)
        if resumed is None:
            experiment_id = store.create_experiment(
                name=config.name, seed=config.seed, config=recorded,
                config_hash=search_hash(config),
                objectives=objectives_row(prepared.space.objectives,
                                          prepared.space.tie_breakers),
                plugins=plugins_record(prepared.plugins),
                automl_version=automl.__version__, artifacts_dir=str(prepared.artifacts_dir))
        else:
            experiment_id = resumed.experiment_id
            _reconcile_study(prepared, store)
        # Lifecycle hooks (and Tune's pickled callbacks, which hold this) see no password.
        info = ExperimentInfo(config.name, recorded, safe_url(prepared.db_url),
                              str(prepared.artifacts_dir))
        status, error = ExperimentStatus.FAILED, None
        try:
            prepared.plugins.call("automl_experiment_started", experiment=info)
            if resumed is not None:
                console.print(f"resuming [bold]{config.name}[/bold]: {resumed.finished} trials "
                              f"finished, {len(resumed.interrupted)} interrupted (run again), "
                              f"{max(config.search.num_trials - resumed.finished, 0)} to go")
            console.print(f"[bold]{config.name}[/bold]: {config.search.num_trials} trials, "
                          f"{len(prepared.space.architectures)} architecture(s), "
                          f"sampler {config.search.sampler}, early stopping "
                          f"{config.search.early_stopping}; results in "
                          f"{safe_url(prepared.db_url)}")
            _search(prepared, data, store, experiment_id, info, console, resumed)
            if prepared.ensemble is not None:
                ensemble_stage(store, config.name, prepared.plugins.registry, prepared.ensemble,
                               console, data.spec)
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
            best = best_trial(trials, objectives, prepared.space.tie_breakers)
            best_info = (TrialInfo(best.number, best.tune_trial_id, best.status, best.params,
                                   best.metrics) if best else None)
            if status != ExperimentStatus.INTERRUPTED:
                prepared.plugins.call("automl_experiment_finished", experiment=info,
                                      status=status, best=best_info)
    return RunResult(config.name, status, prepared.db_url, str(prepared.artifacts_dir),
                     prepared.space.objectives, trials, time.monotonic() - started,
                     prepared.space.tie_breakers)


def _reconcile_study(prepared: Prepared, store: Store) -> None:
    """Before a resumed search: the Optuna study agrees with the store (stale RUNNING trials of an
    older writer failed, trials the store finished but the study missed added)."""
    from automl.study import add_missing_trials, fail_stale_trials

    name = prepared.loaded.config.name
    fail_stale_trials(prepared.db_url, name)
    rows = [(t.status, t.params, t.metrics) for t in store.experiment(name).trials
            if t.status in FINISHED]
    add_missing_trials(prepared.db_url, name, prepared.space.define,
                       [o.key for o in prepared.space.objectives], rows)


def _search(prepared: Prepared, data: Any, store: Store, experiment_id: int,
            info: ExperimentInfo, console: Console, resumed: Resume | None = None) -> Any:
    from ray import tune

    from automl.progress import ProgressPrinter
    from automl.scheduler import build_tuner, make_searcher
    from automl.study import MirroredStorage
    from automl.search.recorder import StoreRecorder
    from automl.search.disk import caused_by_full_disk, disk_full_error
    from automl.search.stopper import StopSearch
    from automl.trial.context import TrialContext
    from automl.trial.trainable import run_trial

    config = prepared.loaded.config
    space = prepared.space
    registry = prepared.plugins.registry
    context = TrialContext.for_experiment(
        config, [(o.metric, o.mode) for o in space.objectives], prepared.plugins.source,
        registry)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, context=context, data=data),
        {"cpu": config.resources.cpu, "gpu": config.resources.gpu})
    budget = config.search.num_trials
    rerun: list[TrialRecord] = []
    first_number = 0
    if resumed is not None:
        budget = max(config.search.num_trials - resumed.finished, 0)
        rerun = resumed.interrupted[:budget]
        first_number = resumed.first_number
    if budget == 0:
        console.print("nothing left to run: the trial budget is spent")
        return None
    # The sampler reads the study in memory; each finished trial is written to the database
    # after the store has recorded it (the recorder's after_finish).
    study_storage = MirroredStorage(prepared.db_url, write_through=False)
    recorder = StoreRecorder(store, experiment_id, info, prepared.plugins, first_number,
                             reuse={t.number: t.params for t in rerun},
                             after_finish=study_storage.write_finished)
    printer = ProgressPrinter(recorder, space.objectives, budget, console)
    searched = {name for name, _ in space.rows()}
    # A resumed sampler gets a fresh seed: replaying the first run's random draws would propose
    # the configurations that already ran.
    searcher = make_searcher(
        space, config.search, config.seed + 7919 * first_number,
        storage=study_storage, name=config.name,
        points_to_evaluate=[{k: v for k, v in t.params.items() if k in searched} for t in rerun])
    tuner = build_tuner(trainable, config, space, searcher, budget,
                        str(prepared.artifacts_dir), [recorder, printer],
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
        study_storage.write_finished()
    if recorder.hook_error is not None:
        raise recorder.hook_error
    if recorder.disk_full:
        raise full_disk()
    return recorder


def ensemble_stage(store: Store, name: str, registry: Any, settings: EnsembleSettings,
                   console: Console, spec: Any = None) -> Any:
    """Run the ensemble stage on a finished search, store and print the result."""
    started = time.monotonic()
    outcome = run_ensemble_stage(store.experiment(name), registry, settings, spec)
    if outcome.record is None:
        console.print(f"ensemble: skipped ({outcome.skipped})")
        return outcome
    store.add_ensemble(name, outcome.record)
    record = outcome.record
    key = f"test/{record.metric}"
    ens, single = record.scores["ensemble"][key], record.scores["best_single"][key]
    members = ", ".join(f"#{n} {w:.2f}" for n, w in zip(record.members, record.weights))
    console.print(f"ensemble ({record.ensembler}, {len(outcome.candidates)} candidates, "
                  f"{time.monotonic() - started:.1f}s): members {members}; {key} "
                  f"{ens:.4g} vs best single #{record.best_single} {single:.4g} "
                  f"({ens - single:+.4g})", soft_wrap=True)
    if record.note:
        console.print(f"[yellow]{escape(record.note)}[/yellow]", soft_wrap=True)
    return outcome
