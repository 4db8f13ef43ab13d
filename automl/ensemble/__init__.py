"""The ensemble stage: weights over the best trials' stored predictions, honestly scored."""

from automl.ensemble.stage import (
    EnsembleOutcome, EnsembleSettings, resolve_settings, run_ensemble_stage,
)

__all__ = ["EnsembleOutcome", "EnsembleSettings", "resolve_settings", "run_ensemble_stage"]
