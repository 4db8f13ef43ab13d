"""The statuses of trials and experiments, as stored (the values are the database's strings)."""

from __future__ import annotations

from enum import StrEnum


class TrialStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    EARLY_STOPPED = "early_stopped"  # stopped by the early-stopping scheduler
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # cut short by the end of the run; --resume runs it again


#: Trials that are done for good: they count against the budget and are never run again.
FINISHED = frozenset({TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED, TrialStatus.FAILED})


class ExperimentStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
