"""The experiment's Optuna study, kept in the experiment's own database.

``optuna.load_study(study_name="automl:<name>", storage=<db url>)`` and ``optuna-dashboard <db
url>`` see every finished trial, and ``automl run --resume`` continues from what the study knew.

During a search the sampler does not read the database: :class:`MirroredStorage` keeps the study
in memory and writes each trial through to the database in one transaction when it finishes.
Optuna's RDB storage re-reads the study on every ask and commits on every parameter, which cost
16–33 ms a trial on the driver (``benchmarks/store.py``), more than everything else automl does
for a trial together.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import BaseStorage, InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from automl.errors import StoreError
from automl.search.warm_start import WARM_START_ATTR
from automl.store.store import safe_url

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.storages import RDBStorage
    from optuna.study._frozen import FrozenStudy


def study_name(experiment: str) -> str:
    """The Optuna study of an experiment, stored in the experiment's own database."""
    return f"automl:{experiment}"


def optuna_storage(db_url: str) -> "RDBStorage":
    """Optuna's RDB storage on the experiment database."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if db_url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    elif db_url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(db_url, engine_kwargs=kwargs)
    if db_url.startswith("sqlite"):
        # The pragmas automl's own store uses (WAL, synchronous=NORMAL): a commit without an
        # fsync of the whole database, and readers that do not block the writer.
        from sqlalchemy import event

        from automl.store.store import sqlite_pragmas

        event.listen(storage.engine, "connect", sqlite_pragmas)
        storage.engine.dispose()
    return storage


class MirroredStorage(BaseStorage):
    """An Optuna storage kept in memory whose finished trials are written to a database.

    It wraps an :class:`~optuna.storages.InMemoryStorage` through the public storage interface
    (every read goes to it) and mirrors studies and finished trials to Optuna's RDB storage.
    Creating (or loading) a study loads the database copy's finished trials, so a resumed search
    continues from what it knew. A trial reaches the database, with its parameters, values,
    intermediate values and attributes, once it has finished: at once, or with
    ``write_through=False`` when :meth:`write_finished` is called. A search uses the latter so
    that automl's store records a trial before the study does (see :func:`add_missing_trials`).
    Trials still running when the driver dies are not in the database: their configurations run
    again on ``--resume`` (the store marks them interrupted), so the study holds only what
    finished.

    The database URL (it may hold a password) lives only in this object's memory: Ray Tune
    pickles the searcher, and with it this storage, into the experiment directory, and a pickled
    copy keeps the studies and trials but neither the URL nor the connection. Such a copy reads
    as before; to write again it needs :meth:`attach` (a ``--resume`` builds a new storage from
    the URL the user gives again, so it never needs one).
    """

    def __init__(self, db_url: str, write_through: bool = True) -> None:
        self._memory = InMemoryStorage()
        self._where = safe_url(db_url)  # for messages, and all that a pickled copy keeps
        self._write_through_now = write_through
        self._rdb: RDBStorage | None = optuna_storage(db_url)
        self._rdb_study: dict[int, int] = {}  # in-memory study id -> database study id
        self._trial_study: dict[int, int] = {}  # trial id -> study id
        self._pending: list[tuple[int, int]] = []  # finished (study id, trial id), not written
        self._mirror_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_rdb"], state["_mirror_lock"]
        state["_pending"] = []  # a copy does not write what the original will
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._rdb = None  # no URL: attach() before writing
        self._mirror_lock = threading.Lock()

    def attach(self, db_url: str) -> None:
        """Give a pickled copy its database again (the URL is never pickled)."""
        self._rdb = optuna_storage(db_url)
        self._where = safe_url(db_url)

    @property
    def rdb(self) -> "RDBStorage":
        if self._rdb is None:
            raise StoreError(f"this copy of the study storage of {self._where} was unpickled: "
                             "the database URL is never pickled; call attach(url) to write")
        return self._rdb

    # -- studies -------------------------------------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection],
                         study_name: str | None = None) -> int:
        rdb = self.rdb
        try:
            rdb_id = rdb.create_new_study(directions, study_name)
            existed = False
        except optuna.exceptions.DuplicatedStudyError:
            assert study_name is not None
            rdb_id = rdb.get_study_id_from_name(study_name)
            stored = list(rdb.get_study_directions(rdb_id))
            if stored != list(directions):
                raise ValueError(
                    f"study {study_name!r} in {self._where} optimises "
                    f"{[d.name.lower() for d in stored]}, not "
                    f"{[d.name.lower() for d in directions]}") from None
            existed = True
        study_id = self._memory.create_new_study(directions, study_name)
        self._rdb_study[study_id] = rdb_id
        if existed:  # continue from what the database copy knew
            for key, value in rdb.get_study_user_attrs(rdb_id).items():
                self._memory.set_study_user_attr(study_id, key, value)
            for key, value in rdb.get_study_system_attrs(rdb_id).items():
                self._memory.set_study_system_attr(study_id, key, value)
            for trial in rdb.get_all_trials(rdb_id, deepcopy=False):
                if trial.state.is_finished():
                    trial_id = self._memory.create_new_trial(study_id, template_trial=trial)
                    self._trial_study[trial_id] = study_id
        return study_id

    def delete_study(self, study_id: int) -> None:
        self._memory.delete_study(study_id)
        rdb_id = self._rdb_study.pop(study_id, None)
        if rdb_id is not None:
            self.rdb.delete_study(rdb_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._memory.set_study_user_attr(study_id, key, value)
        self.rdb.set_study_user_attr(self._rdb_study[study_id], key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._memory.set_study_system_attr(study_id, key, value)
        self.rdb.set_study_system_attr(self._rdb_study[study_id], key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._memory.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._memory.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._memory.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._memory.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._memory.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._memory.get_all_studies()

    # -- trials --------------------------------------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = self._memory.create_new_trial(study_id, template_trial)
        self._trial_study[trial_id] = study_id
        if template_trial is not None and template_trial.state.is_finished():
            self._write_through(study_id, trial_id)  # study.add_trial of a finished trial
        return trial_id

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        changed = self._memory.set_trial_state_values(trial_id, state, values)
        if changed and state.is_finished():
            self._write_through(self._trial_study[trial_id], trial_id)
        return changed

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        self._memory.set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        self._memory.set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._memory.set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._memory.set_trial_system_attr(trial_id, key, value)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._memory.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def get_trial_number_from_id(self, trial_id: int) -> int:
        return self._memory.get_trial_number_from_id(trial_id)

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        return self._memory.get_trial_param(trial_id, param_name)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._memory.get_trial(trial_id)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._memory.get_all_trials(study_id, deepcopy=deepcopy, states=states)

    def get_n_trials(self, study_id: int,
                     state: tuple[TrialState, ...] | TrialState | None = None) -> int:
        return self._memory.get_n_trials(study_id, state)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return self._memory.get_best_trial(study_id)

    # -- writing to the database ---------------------------------------------------------------

    def _write_through(self, study_id: int, trial_id: int) -> None:
        with self._mirror_lock:
            self._pending.append((study_id, trial_id))
        if self._write_through_now:
            self.write_finished()

    def write_finished(self) -> int:
        """Write the finished trials not yet in the database; returns how many."""
        with self._mirror_lock:
            pending, self._pending = self._pending, []
            for study_id, trial_id in pending:
                self.rdb.create_new_trial(self._rdb_study[study_id],
                                          template_trial=self._memory.get_trial(trial_id))
        return len(pending)


def add_missing_trials(db_url: str, experiment: str, define: Callable[[Any], Any],
                       objectives: Sequence[str], rows: Iterable[tuple[str, dict[str, Any],
                                                                       dict[str, float]]]) -> int:
    """Add to the study the finished trials of automl's store that it lacks; returns how many.

    automl's store records a trial before the study does, so a driver killed between the two
    leaves the study one trial short. ``rows`` are the store's finished trials as
    ``(status, params, metrics)``; ``define`` is the search space's define-by-run function (it
    gives the parameters' distributions) and ``objectives`` the metric keys of the study's
    values. Rows are matched to study trials by their searched parameters, counting duplicates
    (a re-run of an interrupted trial has its parameters).
    """
    storage = optuna_storage(db_url)
    try:
        study = optuna.load_study(study_name=study_name(experiment), storage=storage)
    except KeyError:
        return 0
    have = Counter(_params_key(t.params) for t in study.get_trials(deepcopy=False)
                   if t.state.is_finished() and WARM_START_ATTR not in t.user_attrs)
    added = 0
    for status, params, metrics in rows:
        fixed = optuna.trial.FixedTrial(params)
        define(fixed)
        key = _params_key(fixed.params)
        if have[key] > 0:
            have[key] -= 1
            continue
        values = [metrics.get(k) for k in objectives]
        if status != "failed" and all(v is not None for v in values):
            trial = optuna.trial.create_trial(params=fixed.params,
                                              distributions=fixed.distributions,
                                              values=[float(v) for v in values])
        else:
            trial = optuna.trial.create_trial(params=fixed.params,
                                              distributions=fixed.distributions,
                                              state=TrialState.FAIL)
        study.add_trial(trial)
        added += 1
    return added


def _params_key(params: dict[str, Any]) -> str:
    import json

    return json.dumps(params, sort_keys=True, default=str)


def fail_stale_trials(db_url: str, experiment: str) -> int:
    """Mark Optuna trials left RUNNING in the database as FAIL; returns how many.

    :class:`MirroredStorage` writes only finished trials, so only a study written by a driver that
    used Optuna's RDB storage directly (an earlier automl, or a user's own script) has any.
    """
    storage = optuna_storage(db_url)
    try:
        study = optuna.load_study(study_name=study_name(experiment), storage=storage)
    except KeyError:
        return 0
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # noqa: SLF001
    return len(stale)


def delete_study(db_url: str, experiment: str) -> None:
    try:
        optuna.delete_study(study_name=study_name(experiment), storage=optuna_storage(db_url))
    except KeyError:
        pass
