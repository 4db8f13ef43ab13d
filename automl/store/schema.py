"""Tables of the results database (SQLAlchemy 2.x declarative)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 1


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
    config: Mapped[dict] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(String(64), default="")
    objectives: Mapped[list] = mapped_column(JSON)
    plugins: Mapped[dict] = mapped_column(JSON)
    automl_version: Mapped[str] = mapped_column(String(40))
    artifacts_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    trials: Mapped[list["TrialRow"]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", order_by="TrialRow.number")
    ensembles: Mapped[list["EnsembleRow"]] = relationship(
        cascade="all, delete-orphan", order_by="EnsembleRow.id")


class TrialRow(Base):
    __tablename__ = "automl_trials"
    __table_args__ = (UniqueConstraint("experiment_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("automl_experiments.id",
                                                          ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    tune_trial_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict] = mapped_column(JSON)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    history: Mapped[list] = mapped_column(JSON, default=list)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    checkpoint: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    experiment: Mapped[ExperimentRow] = relationship(back_populates="trials")


class EnsembleRow(Base):
    __tablename__ = "automl_ensembles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("automl_experiments.id",
                                                          ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    ensembler: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict] = mapped_column(JSON)
    metric: Mapped[str] = mapped_column(String(100))
    members: Mapped[list] = mapped_column(JSON)  # trial numbers, in weight order
    weights: Mapped[list] = mapped_column(JSON)
    best_single: Mapped[int] = mapped_column(Integer)
    scores: Mapped[dict] = mapped_column(JSON)  # {"ensemble": {...}, "best_single": {...}}
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
