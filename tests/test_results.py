"""Picking the best trial and the Pareto front from stored trials (validation values only)."""

from __future__ import annotations

from automl.plugin_manager import load_plugins
from automl.results import best_of, best_trial, objectives_of, objectives_row, pareto_front
from automl.space import ObjectiveSpec, tie_breakers
from automl.store import TrialRecord

ACCURACY = [ObjectiveSpec("accuracy", "max")]
LOG_LOSS = [ObjectiveSpec("log_loss", "min")]


def trial(number: int, status: str = "completed", **metrics: float) -> TrialRecord:
    return TrialRecord(number=number, status=status, params={},
                       metrics={f"val/{k}": v for k, v in metrics.items()})


def test_the_best_validation_value_wins_and_test_values_are_never_read() -> None:
    trials = [trial(0, accuracy=0.90), trial(1, accuracy=0.95), trial(2, accuracy=0.93)]
    trials[0].metrics["test/accuracy"] = 1.0
    assert best_trial(trials, ACCURACY).number == 1


def test_accuracy_ties_go_to_the_declared_tie_breaker_then_the_earlier_trial() -> None:
    trials = [trial(0, accuracy=0.98, log_loss=0.30), trial(1, accuracy=0.98, log_loss=0.10),
              trial(2, accuracy=0.98, log_loss=0.10), trial(3, accuracy=0.97, log_loss=0.01)]
    assert best_trial(trials, ACCURACY, LOG_LOSS).number == 1
    assert best_trial(trials, ACCURACY).number == 0  # no tie-breaker: the earlier trial
    without_loss = [trial(0, accuracy=0.98), trial(1, accuracy=0.98)]
    assert best_trial(without_loss, ACCURACY, LOG_LOSS).number == 0


def test_the_tie_breaker_is_what_a_metric_declares() -> None:
    registry = load_plugins([], autoload=False).registry
    assert tie_breakers(registry) == LOG_LOSS  # log_loss declares tie_breaker = True, min


def test_a_stored_experiment_keeps_its_tie_breaker_apart_from_its_objectives() -> None:
    from types import SimpleNamespace

    trials = [trial(0, accuracy=0.98, log_loss=0.30), trial(1, accuracy=0.98, log_loss=0.10)]
    exp = SimpleNamespace(objectives=objectives_row(ACCURACY, LOG_LOSS), trials=trials)
    assert exp.objectives[-1] == {"metric": "log_loss", "mode": "min", "tie_breaker": True}
    assert objectives_of(exp) == ACCURACY
    assert best_of(exp).number == 1
    # an objective that is also the tie-breaker is stored once
    assert objectives_row(LOG_LOSS, LOG_LOSS) == [{"metric": "log_loss", "mode": "min"}]


def test_later_objectives_break_ties_before_the_tie_breaker() -> None:
    objectives = [ObjectiveSpec("accuracy", "max"), ObjectiveSpec("params", "min")]
    trials = [trial(0, accuracy=0.98, params=500, log_loss=0.1),
              trial(1, accuracy=0.98, params=100, log_loss=0.9)]
    assert best_trial(trials, objectives, LOG_LOSS).number == 1


def test_only_completed_trials_are_chosen() -> None:
    trials = [trial(0, "early_stopped", accuracy=0.99), trial(1, "failed"),
              trial(2, accuracy=0.5)]
    assert best_trial(trials, ACCURACY).number == 2
    assert best_trial([trial(0, "failed")], ACCURACY) is None


def test_pareto_front_keeps_the_undominated() -> None:
    objectives = [ObjectiveSpec("accuracy", "max"), ObjectiveSpec("params", "min")]
    trials = [trial(0, accuracy=0.9, params=10), trial(1, accuracy=0.95, params=50),
              trial(2, accuracy=0.85, params=60), trial(3, accuracy=0.95, params=40)]
    assert {t.number for t in pareto_front(trials, objectives)} == {0, 3}


def test_a_model_only_objective_is_stored_with_its_scope_and_read_back() -> None:
    from types import SimpleNamespace

    objectives = [ObjectiveSpec("accuracy", "max"), ObjectiveSpec("params", "min", "model")]
    row = objectives_row(objectives, LOG_LOSS)
    assert row[:2] == [{"metric": "accuracy", "mode": "max"},
                       {"metric": "params", "mode": "min", "scope": "model"}]
    exp = SimpleNamespace(objectives=row, trials=[])
    assert objectives_of(exp) == objectives
    assert [o.key for o in objectives_of(exp)] == ["val/accuracy", "model/params"]
    # a row written before scopes existed reads as a validation key, as it was recorded
    old = SimpleNamespace(objectives=[{"metric": "params", "mode": "min"}], trials=[])
    assert objectives_of(old)[0].key == "val/params"
