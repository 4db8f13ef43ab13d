"""Tune stoppers of a search."""

from __future__ import annotations

from ray.tune import Stopper

from automl.search.recorder import StoreRecorder


class StopSearch(Stopper):
    """Ends the search once a lifecycle hook has failed or a trial found the artifacts' disk
    full; the runner then raises the error."""

    def __init__(self, recorder: StoreRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self.stop_all()

    def stop_all(self) -> bool:
        return self.recorder.hook_error is not None or self.recorder.disk_full
