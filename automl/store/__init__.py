"""The results database: one source of truth for experiments and trials."""

from automl.store.store import (
    EnsembleRecord, ExperimentRecord, Store, TrialRecord, default_db_url, safe_url,
)

__all__ = ["EnsembleRecord", "ExperimentRecord", "Store", "TrialRecord", "default_db_url",
           "safe_url"]
