"""The search-space grammar."""

from __future__ import annotations

import optuna
import pytest

from automl.errors import ConfigError
from automl.params import Choice, Fixed, FloatRange, IntRange, check_kind, parse_param


@pytest.mark.parametrize("raw, expected", [
    (0.01, Fixed(0.01)),
    ("adam", Fixed("adam")),
    ([32, 64], Choice((32, 64))),
    ({"choice": ["a", "b"]}, Choice(("a", "b"))),
    ({"value": [16, 32]}, Fixed([16, 32])),
    ({"low": 1, "high": 4}, IntRange(1, 4)),
    ({"low": 1, "high": 64, "log": True}, IntRange(1, 64, log=True)),
    ({"low": 0.0, "high": 0.5}, FloatRange(0.0, 0.5)),
    ({"low": 1, "high": 2.5}, FloatRange(1.0, 2.5)),
    ({"low": 0.0, "high": 1.0, "step": 0.25}, FloatRange(0.0, 1.0, step=0.25)),
])
def test_parse(raw, expected):
    assert parse_param(raw, "x") == expected


@pytest.mark.parametrize("raw, message", [
    ({"low": 2, "high": 1}, "greater than high"),
    ({"low": 0, "high": 1, "log": True}, "log range needs low > 0"),
    ({"low": 1}, "needs both 'low' and 'high'"),
    ({"low": "a", "high": 2}, "'low' must be a number"),
    ({"low": 1, "high": 2, "log": "yes"}, "'log' must be true or false"),
    ({"lo": 1, "high": 2}, "unknown key"),
    ([], "at least one option"),
    ([1, 1], "repeat"),
    ([{"a": 1}], "must be numbers, strings"),
    ({"low": float("nan"), "high": 1.0}, "finite"),
])
def test_parse_errors_name_the_path(raw, message):
    with pytest.raises(ConfigError) as info:
        parse_param(raw, "training.lr")
    assert info.value.path == "training.lr"
    assert message in str(info.value)


def test_check_kind():
    check_kind(IntRange(1, 3), int, "p")
    check_kind(Fixed(3), float, "p")  # an int is a valid float
    with pytest.raises(ConfigError, match="expected int"):
        check_kind(FloatRange(0.5, 1.5), int, "p")
    with pytest.raises(ConfigError, match="expected str"):
        check_kind(Choice(("a", 3)), str, "p")
    with pytest.raises(ConfigError, match="expected int"):
        check_kind(Fixed(True), int, "p")


def test_suggest_respects_bounds_and_log():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        trial = study.ask()
        v = FloatRange(1e-4, 1e-1, log=True).suggest(trial, "lr")
        n = IntRange(2, 5).suggest(trial, "n")
        c = Choice(("x", "y")).suggest(trial, "c")
        assert 1e-4 <= v <= 1e-1 and 2 <= n <= 5 and c in ("x", "y")
        study.tell(trial, 0.0)
    assert isinstance(study.trials[0].distributions["lr"], optuna.distributions.FloatDistribution)
    assert study.trials[0].distributions["lr"].log


@pytest.mark.parametrize("raw", [{"low": 0.1, "high": 1.0, "log": True, "step": 1.0},
                                 {"low": 1, "high": 4, "step": 0},
                                 {"low": 1, "high": 8, "log": True, "step": 2}])
def test_impossible_steps_are_config_errors(raw):
    with pytest.raises(ConfigError):
        parse_param(raw, "p")
