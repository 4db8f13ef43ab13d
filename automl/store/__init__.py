"""The results database: one source of truth for experiments and trials (SQLAlchemy only: no
Ray, no trials, no plugins)."""

from automl.store.lease import Lease, LeaseHeld
from automl.store.status import FINISHED, ExperimentStatus, TrialStatus
from automl.store.store import (
    EnsembleRecord, EvaluatedSubject, EvaluationRecord, ExperimentRecord, Store, TrialRecord, default_db_url,
    open_existing_store, safe_url,
)

__all__ = ["FINISHED", "EnsembleRecord", "EvaluatedSubject", "EvaluationRecord",
           "ExperimentRecord", "ExperimentStatus", "Lease",
           "LeaseHeld", "Store", "TrialRecord", "TrialStatus", "default_db_url", "open_existing_store",
           "safe_url"]
