"""Bringing a database written by an older automl up to the current schema version.

Each step takes a database from one version to the next inside one transaction (its tables and
the recorded ``schema_version`` change together), so an interrupted upgrade leaves the older,
still readable version. Data is never rewritten: an upgrade only adds.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text, update

from automl.store.schema import EvaluationRow, ExperimentRow, Meta, TrialRow


def _add_evaluations(conn: Connection) -> None:
    """1 -> 2: the final evaluation's table. Trials of a version-1 database keep the test
    metrics they recorded; no evaluation exists for them until one is run."""
    EvaluationRow.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]


def _add_data_sizes(conn: Connection) -> None:
    """2 -> 3: the rows per split of each experiment (unknown, NULL, for those already run)."""
    table = ExperimentRow.__tablename__
    if "data_sizes" not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN data_sizes JSON"))


def _add_trial_kind(conn: Connection) -> None:
    """3 -> 4: each trial's kind; every trial of an older database came from the search."""
    table = TrialRow.__tablename__
    if "kind" not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN kind VARCHAR(20) NOT NULL "
                          "DEFAULT 'search'"))


#: ``{from_version: step}``; a step upgrades to ``from_version + 1``.
STEPS: dict[int, Callable[[Connection], None]] = {1: _add_evaluations, 2: _add_data_sizes,
                                                  3: _add_trial_kind}


def can_upgrade(version: int, target: int) -> bool:
    return all(v in STEPS for v in range(version, target))


def upgrade(engine: object, version: int, target: int) -> None:
    """Run the steps from ``version`` to ``target``, each in its own transaction."""
    for current in range(version, target):
        with engine.begin() as conn:  # type: ignore[attr-defined]
            STEPS[current](conn)
            conn.execute(update(Meta).where(Meta.key == "schema_version")
                         .values(value=str(current + 1)))
