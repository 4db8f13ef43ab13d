"""Tune stoppers of a search."""

from __future__ import annotations

from ray.tune import Stopper

from automl.search.recorder import StoreRecorder


class HookFailure(Stopper):
    """Ends the search once a lifecycle hook has failed; the runner then raises its error."""

    def __init__(self, recorder: StoreRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.recorder.hook_error is not None

    def stop_all(self) -> bool:
        return self.recorder.hook_error is not None
