"""Shipped classification experiments give the same trials as before the task plugin kind.

For each shipped classification experiment, two configurations are sampled from its search space
(Optuna's random sampler, the experiment seed) and trained for two epochs plus one fine-tune epoch
with :func:`automl.trial.trainable.train_and_evaluate`. The sampled parameters and every
deterministic metric must equal the values recorded in ``tests/data/classification_pins.json``,
which were measured on the code before tasks became plugins (commit fc13bea). Re-record with
``python -m tests.test_classification_unchanged`` only when a change is meant to move results.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PINS = Path(__file__).parent / "data" / "classification_pins.json"
EXPERIMENTS = ("wine.yaml", "breast_cancer_mlp.yaml", "quickstart.yaml", "digits_wide.yaml",
               "digits_resnet_structured.yaml")
SAMPLES = 2
#: measurements that vary between runs of the same model
UNSTABLE = ("latency",)


def measure(experiment: str) -> list[dict]:
    """The sampled parameters and final metrics of the pinned configurations."""
    import optuna

    from automl.data import prepare_data
    from automl.runner import prepare
    from automl.search_data import separate
    from automl.trial.context import TrialContext
    from automl.trial.trainable import train_and_evaluate

    prepared = prepare(ROOT / "experiments" / experiment, db="sqlite://")
    config = prepared.loaded.config
    registry = prepared.plugins.registry
    # what a trial receives: the search's data, without test labels
    data = separate(prepare_data(config, registry, prepared.loaded.base_dir))[0]
    context = TrialContext.for_experiment(
        config, [(o.metric, o.mode) for o in prepared.space.objectives],
        prepared.plugins.source, registry)
    context = dataclasses.replace(context, epochs=2, fine_tune_epochs=1, cpus=1, gpus=0,
                                  amp=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=config.seed))
    out = []
    for _ in range(SAMPLES):
        trial = study.ask()
        constants = prepared.space.define(trial)
        params = {**trial.params, **constants}
        metrics = train_and_evaluate(params, context, data, lambda m, d: None)
        out.append({"params": params,
                    "metrics": {k: v for k, v in sorted(metrics.items())
                                if not any(u in k for u in UNSTABLE)}})
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_shipped_experiment_gives_the_pinned_trials(experiment):
    pinned = json.loads(PINS.read_text())[experiment]
    measured = measure(experiment)
    for before, now in zip(pinned, measured, strict=True):
        assert now["params"] == before["params"]
        assert set(now["metrics"]) >= {k for k in before["metrics"] if not k.startswith("test/")}
        for key, value in before["metrics"].items():
            if key.startswith("test/"):  # trials no longer score the test split (issue 13)
                continue
            assert math.isclose(now["metrics"][key], value, rel_tol=1e-9, abs_tol=1e-12), key


if __name__ == "__main__":
    names = sys.argv[1:] or EXPERIMENTS
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    for name in names:
        pins[name] = measure(name)
    PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
