"""Tables of the results database (SQLAlchemy 2.x declarative).

The column types behave the same on every backend: :class:`JSONValue` keeps NaN and infinities
(which PostgreSQL's ``json`` refuses), :class:`UTCDateTime` stores naive UTC whatever the server's
time zone, and :class:`CleanText` replaces NUL characters (which PostgreSQL's ``text`` refuses).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

#: 2: the final evaluation's table (``automl_evaluations``); 3: the experiment's rows per split
#: (``automl_experiments.data_sizes``); 4: each trial's kind (``automl_trials.kind``: ``search`` or
#: ``distilled``). :mod:`automl.store.upgrade` brings an older database up to date when it is
#: opened.
SCHEMA_VERSION = 4

_FLOAT_TAG = "$float"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class JSONValue(TypeDecorator):
    """JSON that round-trips NaN and +-inf (a diverged loss, a missing score) on every backend.

    SQLite stores Python's ``NaN``/``Infinity`` tokens as they are. Elsewhere (PostgreSQL's
    ``json`` accepts standard JSON only) a non-finite float is stored as ``{"$float": "nan"}``,
    ``"inf"`` or ``"-inf"`` and turned back into the float on reading.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value if dialect.name == "sqlite" else _encode(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return value if dialect.name == "sqlite" else _decode(value)


def _encode(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT_TAG: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and value.get(_FLOAT_TAG) in _NON_FINITE:
            return _NON_FINITE[value[_FLOAT_TAG]]
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


class UTCDateTime(TypeDecorator):
    """A naive UTC timestamp. An aware datetime is converted to UTC before it is stored: left
    aware, PostgreSQL would shift it into the server's zone and SQLite would drop the offset."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value


class CleanText(TypeDecorator):
    """Text without NUL characters, which PostgreSQL cannot store (a traceback may hold one)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value.replace("\x00", "\ufffd") if value else value


class Base(DeclarativeBase):
    pass


class Meta(Base):
    __tablename__ = "automl_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class ExperimentRow(Base):
    __tablename__ = "automl_experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, index=True)
    status: Mapped[str] = mapped_column(String(20))
    seed: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict] = mapped_column(JSONValue)
    config_hash: Mapped[str] = mapped_column(String(64), default="")
    objectives: Mapped[list] = mapped_column(JSONValue)
    plugins: Mapped[dict] = mapped_column(JSONValue)
    automl_version: Mapped[str] = mapped_column(String(40))
    artifacts_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    #: rows per split as the run loaded them ({"train": n, "val": n, "test": n}); None before 3
    data_sizes: Mapped[dict | None] = mapped_column(JSONValue, nullable=True)

    trials: Mapped[list["TrialRow"]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", order_by="TrialRow.number")
    ensembles: Mapped[list["EnsembleRow"]] = relationship(
        cascade="all, delete-orphan", order_by="EnsembleRow.id")
    evaluations: Mapped[list["EvaluationRow"]] = relationship(
        cascade="all, delete-orphan", order_by="EvaluationRow.id")


class TrialRow(Base):
    __tablename__ = "automl_trials"
    __table_args__ = (UniqueConstraint("experiment_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("automl_experiments.id",
                                                          ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    tune_trial_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict] = mapped_column(JSONValue)
    metrics: Mapped[dict] = mapped_column(JSONValue, default=dict)
    history: Mapped[list] = mapped_column(JSONValue, default=list)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(CleanText, nullable=True)
    #: what made the trial: ``search`` (the search stage) or ``distilled`` (a student of the
    #: distillation stage, :mod:`automl.distill`); ``search`` for rows from before version 4
    kind: Mapped[str] = mapped_column(String(20), default="search", server_default="search")

    experiment: Mapped[ExperimentRow] = relationship(back_populates="trials")


class EnsembleRow(Base):
    __tablename__ = "automl_ensembles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("automl_experiments.id",
                                                          ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ensembler: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict] = mapped_column(JSONValue)
    metric: Mapped[str] = mapped_column(String(100))
    members: Mapped[list] = mapped_column(JSONValue)  # trial numbers, in weight order
    weights: Mapped[list] = mapped_column(JSONValue)
    best_single: Mapped[int] = mapped_column(Integer)
    scores: Mapped[dict] = mapped_column(JSONValue)  # {"ensemble": {...}, "best_single": {...}}
    note: Mapped[str | None] = mapped_column(CleanText, nullable=True)


class EvaluationRow(Base):
    """One thing the final evaluation scored on the test split: a trial (the best one, a Pareto
    front member) or an ensemble. Rows of one evaluation share ``evaluation``, its number within
    the experiment (1, 2, ...: ``automl ensemble`` adds one; older ones are kept)."""

    __tablename__ = "automl_evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("automl_experiments.id",
                                                          ondelete="CASCADE"), index=True)
    evaluation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    subject: Mapped[str] = mapped_column(String(20))  # "trial" or "ensemble"
    trial_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ensemble_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    roles: Mapped[list] = mapped_column(JSONValue)  # "best", "pareto", "ensemble"
    metrics: Mapped[dict] = mapped_column(JSONValue)  # {"test/<metric>": value}


class LeaseRow(Base):
    """Who is running an experiment now: one live run per experiment name. The holder refreshes
    ``heartbeat_at``; a lease whose heartbeat is older than the timeout may be taken over. The
    table is created where missing (databases from before it open unchanged)."""

    __tablename__ = "automl_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    token: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
