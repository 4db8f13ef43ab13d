"""The search layer's store recorder, driven with real Ray Tune trial objects and a real SQLite
store (no Ray cluster: the Tune controller's callback calls are made directly)."""

from __future__ import annotations

import pytest

from automl.lifecycle import ExperimentInfo
from automl.plugin_manager import load_plugins
from automl.search.recorder import StoreRecorder
from automl.store import Store, TrialStatus


@pytest.fixture
def recorder(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Store(url) as store:
        experiment_id = store.create_experiment(
            name="e", seed=0, config={}, objectives=[], plugins={}, automl_version="0",
            artifacts_dir=str(tmp_path))
        info = ExperimentInfo("e", {}, url, str(tmp_path))
        yield StoreRecorder(store, experiment_id, info, load_plugins(autoload=False))


def tune_trial(trial_id: str, config: dict):
    from ray.tune.experiment import Trial

    return Trial("run_trial", config=config, trial_id=trial_id, stub=True)


def test_a_trial_that_fails_before_its_start_callback_still_gets_a_failed_row(recorder,
                                                                              tmp_path):
    started = tune_trial("a0001", {"x": 1})
    recorder.on_trial_start(0, [started], started)
    lost = tune_trial("a0002", {"x": 2})  # Tune never reported its start
    recorder.on_trial_error(0, [started, lost], lost)
    recorder.on_trial_complete(0, [started, lost], started)

    trials = {t.number: t for t in recorder.store.experiment("e").trials}
    assert sorted(trials) == [0, 1]
    assert trials[0].status == TrialStatus.EARLY_STOPPED
    assert trials[1].status == TrialStatus.FAILED and trials[1].params == {"x": 2}
    assert trials[1].tune_trial_id == "a0002"
    assert trials[1].error == "trial failed (no error text was recorded by Ray)"
    assert [r.number for r in recorder.finished] == [1, 0]


def test_trials_are_numbered_in_the_order_tune_created_them_not_the_order_they_start(recorder):
    """With two trials at a time their actors start in either order; the numbers follow the
    searcher's order (Tune's list of trials), so the same seed numbers the same way."""
    first, second, third = (tune_trial(f"b000{i}", {"x": i}) for i in range(3))
    created = [first, second, third]
    recorder.on_trial_start(0, created[:2], second)  # the second actor was ready first
    recorder.on_trial_start(0, created[:2], first)
    recorder.on_trial_start(0, created, third)
    numbers = {t.params["x"]: t.number for t in recorder.store.experiment("e").trials}
    assert numbers == {0: 0, 1: 1, 2: 2}


def test_finished_trials_restored_on_resume_take_no_number(tmp_path):
    """On resume Tune lists the finished trials it restored first: they keep their rows and
    numbers; the new trials continue after them."""
    from ray.tune.experiment import Trial

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Store(url) as store:
        experiment_id = store.create_experiment(
            name="e", seed=0, config={}, objectives=[], plugins={}, automl_version="0",
            artifacts_dir=str(tmp_path))
        recorder = StoreRecorder(store, experiment_id, ExperimentInfo("e", {}, url,
                                                                      str(tmp_path)),
                                 load_plugins(autoload=False), first_number=2)
        restored = [tune_trial(f"c000{i}", {"x": i}) for i in range(2)]
        for trial in restored:
            trial.set_status(Trial.TERMINATED)
        new = tune_trial("c0009", {"x": 9})
        recorder.on_trial_start(0, [*restored, new], new)
        assert [(t.number, t.params) for t in store.experiment("e").trials] == [(2, {"x": 9})]
