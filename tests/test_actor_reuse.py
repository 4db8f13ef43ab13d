"""A trial's worker process killed with SIGKILL costs that trial, not the search's concurrency.

Regression test for issue 10 item 6: with Tune's actor reuse, every trial after a lost worker ran
alone (``max_concurrent: 2`` became 1), seen in the stored start and finish times. The fault is
real: a plugin's epoch hook kills its own Ray worker process with SIGKILL, once.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import automl
from automl.store import Store, TrialStatus

pytestmark = pytest.mark.slow

KILLER = textwrap.dedent('''\
    """Kill this Ray worker with SIGKILL at the last epoch of the first trial that reaches it."""
    import os
    import signal
    from pathlib import Path

    from automl import hookimpl

    MARK = Path(__file__).with_name("killed.pid")


    @hookimpl
    def automl_epoch_finished(trial_id, params, epoch, metrics):
        if epoch == EPOCHS and not MARK.exists():
            MARK.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    ''')

EPOCHS = 30
EXPERIMENT = textwrap.dedent(f"""\
    name: overlap
    seed: 5
    dataset: digits
    plugins: {{load: [killer.py]}}
    architecture: {{mlp: {{depth: 1, width: [16, 32]}}}}
    training: {{epochs: {EPOCHS}, fine_tune_epochs: 0, batch_size: 32}}
    search: {{num_trials: 10, sampler: random, early_stopping: none, max_concurrent: 2}}
    ensemble: false
    """)


def test_a_killed_worker_does_not_serialise_the_trials_after_it(tmp_path: Path) -> None:
    (tmp_path / "killer.py").write_text(KILLER.replace("EPOCHS", str(EPOCHS)))
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    result = automl.run(str(tmp_path / "exp.yaml"), db=db, artifacts=str(tmp_path / "runs"))
    assert (tmp_path / "killed.pid").exists(), "the fault was not injected"
    with Store(db) as store:
        trials = store.experiment("overlap").trials
    assert result.status == "completed"
    failed = [t for t in trials if t.status == TrialStatus.FAILED]
    assert len(failed) == 1 and "died" in (failed[0].error or ""), [t.error for t in failed]
    assert len(trials) == 10 and all(t.started_at and t.finished_at for t in trials)
    lost_at = failed[0].finished_at
    later = [t for t in trials if t.started_at > lost_at]
    overlapping = [t for t in later
                   if any(o is not t and o.started_at < t.finished_at and t.started_at < o.finished_at
                          for o in trials)]
    # Before the fix every later trial ran alone (0 or 1 of them overlapped another); with two
    # slots most do (short trials leave gaps between one trial's end and the next one's start, so
    # not all: measured 4 of 8 to 7 of 8).
    assert len(later) >= 6, [(t.number, t.started_at, t.finished_at) for t in trials]
    assert len(overlapping) >= len(later) // 2, \
        [(t.number, str(t.started_at), str(t.finished_at)) for t in trials]


def test_a_trial_keeps_its_starting_actor_and_others_go_to_tune() -> None:
    """The decision itself, on Tune's real controller method with its state laid out as Tune
    holds it (the race above decides only whether the end-to-end run reaches this state)."""
    from types import SimpleNamespace

    from ray.tune.execution.tune_controller import TuneController

    from automl.search import actor_reuse

    assert actor_reuse.install() and actor_reuse.install()  # idempotent
    created = {"starting", "ready"}
    calls: list[str] = []
    controller = SimpleNamespace(
        _trial_to_actor={"waits_for_process": "starting", "ready_trial": "ready",
                         "waits_for_resources": "requested"},
        _resetting_trials=set(), _started_actors={"ready"},
        _actor_manager=SimpleNamespace(is_actor_started=created.__contains__),
        _actor_cache=SimpleNamespace(has_cached_object=lambda request: calls.append(request)),
    )

    class Trial:  # hashable, as Tune's trials are
        def __init__(self, request: str) -> None:
            self.placement_group_factory = request

    def reuse(trial: str) -> bool:
        trial_obj = Trial(trial)
        controller._trial_to_actor[trial_obj] = controller._trial_to_actor.get(trial)
        return bool(TuneController._maybe_reuse_cached_actor(controller, trial_obj))

    assert reuse("waits_for_process") is False and calls == []  # kept: Tune is not asked
    reuse("waits_for_resources")  # a request without a process: Tune's own logic decides
    reuse("no_actor_yet")
    assert calls == ["waits_for_resources", "no_actor_yet"]
