"""The results store: experiments and trials in any SQLAlchemy database (SQLite by default).

Only the driver writes (through :class:`automl.search.recorder.StoreRecorder`); readers such as
``automl show`` open their own connection. SQLite runs in WAL mode with a busy timeout so a reader
never blocks the writer. A PostgreSQL password can stay out of the URL: libpq's ``PGPASSWORD`` or
``~/.pgpass`` supply it. No message ever shows a password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, event, inspect, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automl import __version__
from automl.errors import StoreError
from automl.store.schema import (
    SCHEMA_VERSION, Base, EnsembleRow, EvaluationRow, ExperimentRow, Meta, TrialRow,
)
from automl.store.lease import Lease, lease_timeout
from automl.store.upgrade import can_upgrade, upgrade
from automl.store.status import ExperimentStatus, TrialStatus

DEFAULT_DB_FILE = "automl.db"
CONNECT_TIMEOUT_S = 10  # a PostgreSQL server that does not answer fails this fast


def default_db_url(directory: Path | None = None) -> str:
    return f"sqlite:///{(directory or Path.cwd()) / DEFAULT_DB_FILE}"


def open_existing_store(db: str | None = None) -> "Store":
    """An existing results database (``db``, else ./automl.db); never creates one."""
    url = db or default_db_url()
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        from automl.errors import StoreError

        raise StoreError(f"no database at {url[len('sqlite:///'):]} (run an experiment first, "
                         "or pass --db)")
    return Store(url, create=False)


def safe_url(url: str) -> str:
    """The URL with any password masked (also one given as a ``password`` query parameter, as
    libpq allows), for messages and for everything recorded; also when it does not parse."""
    try:
        parsed = make_url(url)
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "***"})
        return (parsed.render_as_string(hide_password=True)
                .replace("password=%2A%2A%2A", "password=***"))
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        head, at, rest = url.rpartition("@")
        if not at:
            return url
        scheme, sep, userinfo = head.partition("://") if "://" in head else ("", "", head)
        user, colon, _password = userinfo.partition(":")
        return f"{scheme}{sep}{user}:***@{rest}" if colon else url


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class TrialRecord:
    number: int
    status: TrialStatus
    params: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    node: str | None = None
    node_id: str | None = None
    device: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    checkpoint: str | None = None
    error: str | None = None
    tune_trial_id: str = ""
    #: ``search`` (a trial of the search) or ``distilled`` (a student of the distillation stage)
    kind: str = "search"


@dataclass
class EnsembleRecord:
    ensembler: str
    settings: dict[str, Any]
    metric: str
    members: list[int]
    weights: list[float]
    best_single: int
    scores: dict[str, dict[str, float]]
    note: str | None
    created_at: datetime
    id: int | None = None  # the row's id once stored (what an evaluation names)


@dataclass
class EvaluatedSubject:
    """One thing the final evaluation scored on the test split."""

    subject: str  # "trial" or "ensemble"
    trial: int | None  # the trial number (a trial)
    ensemble_id: int | None  # the ensemble's id (an ensemble)
    roles: list[str]  # "best", "pareto", "distilled" (a trial), "ensemble"
    metrics: dict[str, float]  # {"test/<metric>": value}


@dataclass
class EvaluationRecord:
    """A final evaluation: what was scored on the test split, and when."""

    number: int  # 1, 2, ... within the experiment
    created_at: datetime
    subjects: list[EvaluatedSubject]

    def best(self) -> EvaluatedSubject | None:
        """The best trial's scores."""
        return next((s for s in self.subjects if "best" in s.roles), None)

    def pareto(self) -> list[EvaluatedSubject]:
        """The Pareto front members' scores (multi-objective runs; else empty)."""
        return [s for s in self.subjects if "pareto" in s.roles]

    def ensemble(self) -> EvaluatedSubject | None:
        """The ensemble's scores."""
        return next((s for s in self.subjects if s.subject == "ensemble"), None)

    def distilled(self) -> EvaluatedSubject | None:
        """The best student's scores (the distillation stage's)."""
        return next((s for s in self.subjects if "distilled" in s.roles), None)


@dataclass
class ExperimentRecord:
    name: str
    status: ExperimentStatus
    seed: int
    config: dict[str, Any]
    objectives: list[dict[str, str]]
    plugins: dict[str, Any]
    automl_version: str
    artifacts_dir: str
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    trials: list[TrialRecord] = field(default_factory=list)
    ensembles: list[EnsembleRecord] = field(default_factory=list)
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    #: rows per split as the run loaded them (train, val, test); None for older records
    data_sizes: dict[str, int] | None = None

    @property
    def ensemble(self) -> EnsembleRecord | None:
        """The latest ensemble, if the stage has run."""
        return self.ensembles[-1] if self.ensembles else None

    @property
    def evaluation(self) -> EvaluationRecord | None:
        """The latest final evaluation, if one has run."""
        return self.evaluations[-1] if self.evaluations else None


class Store:
    """A connection to one results database."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Open the database at ``url``; with ``create``, make the tables where they are missing.

        Raises :class:`StoreError` when it cannot be reached, is not an automl database (and
        ``create`` is false) or was written with another schema version.
        """
        self.url = url
        self.engine = _engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        try:
            version = self._stored_version()
            if version is not None:
                self._check_version(version)  # before create_all touches a foreign schema
                self._add_missing_columns()
                if int(version) < SCHEMA_VERSION:
                    upgrade(self.engine, int(version), SCHEMA_VERSION)
            elif not create:
                raise StoreError(f"{safe_url(url)} is not an automl database")
            if create:
                Base.metadata.create_all(self.engine)
                with self._sessions.begin() as session:
                    if session.get(Meta, "schema_version") is None:
                        session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        except SQLAlchemyError as exc:
            self.engine.dispose()
            reason = _access_hint(url, _reason(exc))
            if "no password supplied" in reason:
                reason += " (give it in PGPASSWORD or ~/.pgpass, or in the URL)"
            raise StoreError(_scrub(f"cannot open database {safe_url(url)}: {reason}",
                                    url)) from None
        except StoreError:
            self.engine.dispose()
            raise

    def _stored_version(self) -> str | None:
        """The schema version the database records; None where it has no automl tables."""
        if not inspect(self.engine).has_table(Meta.__tablename__):
            return None
        with self._sessions() as session:
            row = session.get(Meta, "schema_version")
            return None if row is None else row.value

    def _add_missing_columns(self) -> None:
        """Columns added within schema version 1, added in place to a database that predates
        them (``config_hash``: the experiments of automl before ``--resume``)."""
        inspector = inspect(self.engine)
        if not inspector.has_table(ExperimentRow.__tablename__):
            return  # create_all makes it whole
        present = {c["name"] for c in inspector.get_columns(ExperimentRow.__tablename__)}
        if "config_hash" not in present:
            with self.engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {ExperimentRow.__tablename__} ADD COLUMN "
                                  "config_hash VARCHAR(64) NOT NULL DEFAULT ''"))

    def _check_version(self, version: str) -> None:
        where = safe_url(self.url)
        try:
            number = int(version)
        except ValueError:
            raise StoreError(f"{where} records an unknown schema version '{version}'; this "
                             f"automl ({__version__}) reads version {SCHEMA_VERSION}") from None
        if number > SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema version {number} from a newer automl; this automl "
                f"({__version__}) reads version {SCHEMA_VERSION}: upgrade automl "
                "(pip install -U automl), or use a new database (--db URL)")
        if number < SCHEMA_VERSION and not can_upgrade(number, SCHEMA_VERSION):
            raise StoreError(
                f"{where} has schema version {number} from an older automl; this automl "
                f"({__version__}) reads version {SCHEMA_VERSION} and cannot convert it: use a "
                "new database (--db URL), or read this one with the automl that wrote it")

    def close(self) -> None:
        self.engine.dispose()

    def lease(self, name: str, timeout_s: float | None = None) -> Lease:
        """The lease of experiment ``name``, to hold (``with``) while running it: raises
        :class:`automl.store.lease.LeaseHeld` when another live process runs it."""
        return Lease(self, name, lease_timeout() if timeout_s is None else timeout_s)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- writes (driver only) ------------------------------------------------------------

    def has_experiment(self, name: str) -> bool:
        with self._read() as session:
            return session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)) \
                is not None

    def ensure_new_name(self, name: str) -> None:
        """Raise :class:`StoreError` when an experiment of that name exists."""
        with self._read() as session:
            if session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)):
                raise StoreError(self._exists(name))

    def _exists(self, name: str) -> str:
        return (f"experiment '{name}' already exists in {safe_url(self.url)}; give this run "
                f"another name (--name NEW) or delete the old one (automl rm {name})")

    def create_experiment(self, *, name: str, seed: int, config: dict[str, Any],
                          objectives: list[dict[str, str]], plugins: dict[str, Any],
                          automl_version: str, artifacts_dir: str,
                          config_hash: str = "", data_sizes: dict[str, int] | None = None
                          ) -> int:
        with self._write() as session:
            if session.scalar(select(ExperimentRow.id).where(ExperimentRow.name == name)):
                raise StoreError(self._exists(name))
            row = ExperimentRow(name=name, status=ExperimentStatus.RUNNING, seed=seed,
                                config=config,
                                config_hash=config_hash, objectives=objectives, plugins=plugins,
                                automl_version=automl_version, artifacts_dir=artifacts_dir,
                                created_at=now(), data_sizes=data_sizes)
            session.add(row)
            session.flush()
            return row.id

    def finish_experiment(self, experiment_id: int, status: ExperimentStatus,
                          error: str | None = None) -> None:
        with self._write() as session:
            row = session.get(ExperimentRow, experiment_id)
            if row is not None:
                row.status = status
                row.finished_at = now()
                row.error = error

    def start_trial(self, experiment_id: int, number: int, tune_trial_id: str,
                    params: dict[str, Any], kind: str = "search") -> None:
        """Record a started trial (of ``kind``: ``search`` or ``distilled``); an
        ``interrupted`` row of the same number is restarted."""
        with self._write() as session:
            row = session.scalar(select(TrialRow).where(TrialRow.experiment_id == experiment_id,
                                                        TrialRow.number == number))
            if row is not None:
                if row.status != TrialStatus.INTERRUPTED:
                    raise StoreError(f"trial {number} of experiment {experiment_id} already "
                                     f"exists with status {row.status}")
                row.tune_trial_id, row.params = tune_trial_id, params
                row.status = TrialStatus.RUNNING
                row.metrics, row.history, row.error = {}, [], None
                row.started_at, row.finished_at, row.duration_s = now(), None, None
                return
            session.add(TrialRow(experiment_id=experiment_id, number=number,
                                 tune_trial_id=tune_trial_id, status=TrialStatus.RUNNING,
                                 params=params, kind=kind,
                                 metrics={}, history=[], started_at=now()))

    def reopen_experiment(self, name: str) -> tuple[int, list[int]]:
        """For ``--resume``: mark trials left ``running`` by a killed driver as ``interrupted``
        and the experiment as running again; returns its id and the interrupted numbers."""
        with self._write() as session:
            row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
            if row is None:
                raise StoreError(self._missing(name, session))
            interrupted = []
            for trial in row.trials:
                if trial.status in (TrialStatus.RUNNING, TrialStatus.INTERRUPTED):
                    trial.status = TrialStatus.INTERRUPTED
                    trial.finished_at = None
                    interrupted.append(trial.number)
            row.status, row.finished_at, row.error = ExperimentStatus.RUNNING, None, None
            return row.id, interrupted

    def interrupt_running(self, experiment_id: int) -> list[int]:
        """Mark trials still ``running`` when a search ends early as ``interrupted`` (a later
        ``--resume`` runs them again); returns their numbers."""
        with self._write() as session:
            rows = session.scalars(select(TrialRow).where(
                TrialRow.experiment_id == experiment_id,
                TrialRow.status == TrialStatus.RUNNING)).all()
            for row in rows:
                row.status = TrialStatus.INTERRUPTED
            return [row.number for row in rows]

    def config_hash(self, name: str) -> str:
        with self._read() as session:
            value = session.scalar(select(ExperimentRow.config_hash)
                                   .where(ExperimentRow.name == name))
            if value is None:
                raise StoreError(self._missing(name, session))
            return value

    def finish_trial(self, experiment_id: int, number: int, *, status: TrialStatus,
                     metrics: dict[str, float], history: list[dict[str, Any]],
                     seed: int | None, node: str | None, device: str | None,
                     checkpoint: str | None, error: str | None,
                     node_id: str | None = None) -> None:
        with self._write() as session:
            row = session.scalar(select(TrialRow).where(TrialRow.experiment_id == experiment_id,
                                                        TrialRow.number == number))
            if row is None:
                raise StoreError(f"trial {number} of experiment {experiment_id} was never started")
            row.status = status
            row.metrics = metrics
            row.history = history
            row.seed, row.node, row.node_id, row.device = seed, node, node_id, device
            row.checkpoint, row.error = checkpoint, error
            row.finished_at = now()
            row.duration_s = (row.finished_at - row.started_at).total_seconds()

    def record_history(self, experiment_id: int,
                       histories: dict[int, list[dict[str, Any]]]) -> int:
        """Write the epochs running trials reported so far, in one transaction: each trial's
        history is replaced by the given list (so writing the same epochs twice stores them
        once). Only ``running`` rows change: a trial finished, interrupted or deleted meanwhile
        keeps what was recorded for it. Returns the number of rows written.

        One Core ``UPDATE`` executed for many rows: an ORM session took ten times as long
        (1 ms against 0.1 ms for two trials on SQLite, ``benchmarks/store.py``)."""
        if not histories:
            return 0
        table = TrialRow.__table__
        statement = (update(table)
                     .where(table.c.experiment_id == bindparam("experiment"),
                            table.c.number == bindparam("trial"),
                            table.c.status == TrialStatus.RUNNING.value)
                     .values(history=bindparam("epochs", type_=table.c.history.type)))
        rows = [{"experiment": experiment_id, "trial": number, "epochs": history}
                for number, history in histories.items()]
        with _Guard(self.engine.begin(), self.url) as conn:
            return conn.execute(statement, rows).rowcount or 0

    def add_ensemble(self, name: str, record: EnsembleRecord) -> int:
        """Store an ensemble; returns its id (also set on ``record``)."""
        with self._write() as session:
            row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
            if row is None:
                raise StoreError(self._missing(name, session))
            ensemble = EnsembleRow(
                experiment_id=row.id, created_at=record.created_at, ensembler=record.ensembler,
                settings=record.settings, metric=record.metric, members=record.members,
                weights=record.weights, best_single=record.best_single, scores=record.scores,
                note=record.note)
            session.add(ensemble)
            session.flush()
            record.id = ensemble.id
            return ensemble.id

    def add_evaluation(self, name: str, subjects: list[EvaluatedSubject]) -> EvaluationRecord:
        """Record a final evaluation (its number follows the experiment's last one)."""
        from sqlalchemy import func

        with self._write() as session:
            row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
            if row is None:
                raise StoreError(self._missing(name, session))
            last = session.scalar(select(func.max(EvaluationRow.evaluation))
                                  .where(EvaluationRow.experiment_id == row.id))
            record = EvaluationRecord((last or 0) + 1, now(), subjects)
            for item in subjects:
                session.add(EvaluationRow(
                    experiment_id=row.id, evaluation=record.number, created_at=record.created_at,
                    subject=item.subject, trial_number=item.trial, ensemble_id=item.ensemble_id,
                    roles=item.roles, metrics=item.metrics))
            return record

    def delete_experiment(self, name: str) -> None:
        with self._write() as session:
            row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
            if row is None:
                raise StoreError(self._missing(name, session))
            session.delete(row)

    # ---- reads ---------------------------------------------------------------------------

    def experiments(self) -> list[ExperimentRecord]:
        with self._read() as session:
            rows = session.scalars(select(ExperimentRow).order_by(ExperimentRow.created_at)).all()
            return [_experiment(row, with_trials=True) for row in rows]

    def experiment(self, name: str) -> ExperimentRecord:
        with self._read() as session:
            row = session.scalar(select(ExperimentRow).where(ExperimentRow.name == name))
            if row is None:
                raise StoreError(self._missing(name, session))
            return _experiment(row, with_trials=True)

    def _missing(self, name: str, session: Session) -> str:
        from automl.errors import did_you_mean

        names = session.scalars(select(ExperimentRow.name)).all()
        return (f"no experiment named '{name}' in {safe_url(self.url)}"
                f"{did_you_mean(name, names)}")

    def _write(self) -> Any:
        return _Guard(self._sessions.begin(), self.url)

    def _read(self) -> Any:
        return _Guard(self._sessions(), self.url)


class _Guard:
    """A session context that turns database errors into :class:`StoreError`."""

    def __init__(self, ctx: Any, url: str) -> None:
        self._ctx, self._url = ctx, url

    def __enter__(self) -> Session:
        try:
            return self._ctx.__enter__()
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            self._ctx.__exit__(exc_type, exc, tb)
        except SQLAlchemyError as error:
            raise self._error(error) from None
        if isinstance(exc, SQLAlchemyError):  # raised inside the block (a lazy load, a query)
            raise self._error(exc) from None
        return False

    def _error(self, exc: SQLAlchemyError) -> StoreError:
        reason = _access_hint(self._url, _reason(exc))
        return StoreError(_scrub(f"database {safe_url(self._url)}: {reason}", self._url))


def _experiment(row: ExperimentRow, with_trials: bool) -> ExperimentRecord:
    record = ExperimentRecord(
        name=row.name, status=ExperimentStatus(row.status), seed=row.seed, config=row.config,
        objectives=row.objectives, plugins=row.plugins, automl_version=row.automl_version,
        artifacts_dir=row.artifacts_dir, created_at=row.created_at, finished_at=row.finished_at,
        error=row.error, data_sizes=row.data_sizes)
    if with_trials:
        record.trials = [TrialRecord(
            number=t.number, status=TrialStatus(t.status), params=t.params, metrics=t.metrics or {},
            history=t.history or [], seed=t.seed, node=t.node, node_id=t.node_id,
            device=t.device,
            started_at=t.started_at, finished_at=t.finished_at, duration_s=t.duration_s,
            checkpoint=t.checkpoint, error=t.error, tune_trial_id=t.tune_trial_id,
            kind=t.kind or "search")
            for t in row.trials]
        record.ensembles = [EnsembleRecord(
            ensembler=e.ensembler, settings=e.settings, metric=e.metric, members=e.members,
            weights=e.weights, best_single=e.best_single, scores=e.scores, note=e.note,
            created_at=e.created_at, id=e.id) for e in row.ensembles]
        record.evaluations = _evaluations(row.evaluations)
    return record


def _evaluations(rows: list[EvaluationRow]) -> list[EvaluationRecord]:
    grouped: dict[int, EvaluationRecord] = {}
    for r in rows:  # ordered by id: by evaluation, subjects in the order they were scored
        record = grouped.setdefault(r.evaluation, EvaluationRecord(r.evaluation, r.created_at, []))
        record.subjects.append(EvaluatedSubject(r.subject, r.trial_number, r.ensemble_id,
                                                list(r.roles), dict(r.metrics)))
    return sorted(grouped.values(), key=lambda e: e.number)


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"not a database URL: '{safe_url(url)}' (expected e.g. "
                         "sqlite:///automl.db or postgresql+psycopg://user@host/db)") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                parent = Path(database).expanduser().resolve().parent
                if not parent.is_dir():
                    raise StoreError(f"cannot open database {safe_url(url)}: directory {parent} "
                                     "does not exist")
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", sqlite_pragmas)
            return engine
        connect_args = {}
        if parsed.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        hint = " (pip install 'automl[postgres]')" if "postgres" in url else ""
        raise StoreError(_scrub(f"cannot use database {safe_url(url)}: {exc}{hint}",
                                url)) from None
    except ArgumentError as exc:
        raise StoreError(_scrub(f"cannot use database {safe_url(url)}: {exc}", url)) from None


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


_ACCESS_ERRORS = ("unable to open database file", "readonly database")


def _access_hint(url: str, reason: str) -> str:
    """SQLite's "unable to open database file" and "attempt to write a readonly database",
    explained: which file or directory is read-only, and why reading needs write access."""
    if not any(text in reason for text in _ACCESS_ERRORS):
        return reason
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return reason
    if parsed.get_backend_name() != "sqlite" or not parsed.database or \
            parsed.database == ":memory:":
        return reason
    file = Path(parsed.database).expanduser().resolve()
    directory = file.parent
    if not file.exists():
        if not os.access(directory, os.W_OK):
            return (f"cannot create {file}: the directory {directory} is read-only; choose a "
                    "writable location (--db sqlite:///PATH)")
        return reason
    if not os.access(directory, os.W_OK):
        return (f"{file} is in a read-only directory ({directory}); the database is in SQLite's "
                f"WAL mode, where even a reader creates {file.name}-wal and {file.name}-shm "
                "next to it, so the directory must be writable (or copy the database somewhere "
                "writable and pass --db sqlite:///COPY)")
    if not os.access(file, os.W_OK):
        return (f"{file} is read-only; automl records into its database, so it needs write "
                "access to the file (make it writable, or copy it somewhere writable and "
                "pass --db sqlite:///COPY)")
    return reason


def _scrub(message: str, url: str) -> str:
    """The message without the password of ``url`` or of ``PGPASSWORD``, should a driver have
    echoed one (a connection string in an error, say)."""
    try:
        parsed = make_url(url)
        secrets = [parsed.password, parsed.query.get("password")]
    except (ArgumentError, ValueError):
        secrets = []
    secrets.append(os.environ.get("PGPASSWORD"))
    for secret in secrets:
        if secret:
            message = message.replace(str(secret), "***")
    return message
