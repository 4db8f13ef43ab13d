"""Regression on scikit-learn's diabetes data: automl against scikit-learn baselines.

For each seed, runs experiments/diabetes_regression.yaml through ``automl.run`` (the seed sets the
split, the sampler and the trials' training seeds) and reads the best trial's and the ensemble's
test RMSE and R² (test split scored once, after everything was chosen on validation). In the same
run and on the same split (``automl.data.prepare_data``: the same rows, features standardised on
the training split), it fits scikit-learn's RidgeCV, HistGradientBoostingRegressor and
MLPRegressor with their default settings (``random_state`` = seed) on the training and
validation rows (the baselines choose nothing on validation, so they get those rows to learn
from) and scores them on the test rows.

    python -m benchmarks.diabetes_regression [--quick] [--seeds N]

Full mode (3 seeds, 20 trials of 40 epochs each): about 3 minutes on 2 cores; ``--quick``
(1 seed, 6 trials of 10 epochs): about 30 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

from benchmarks.harness import code_version, start_ray

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "experiments" / "diabetes_regression.yaml"
SLOTS = 2


def baselines(data, seed: int) -> dict[str, tuple[float, float]]:
    """Test (rmse, r2) of scikit-learn defaults fitted on the train and validation rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import mean_squared_error, r2_score
    from sklearn.neural_network import MLPRegressor

    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    models = {"RidgeCV": RidgeCV(),
              "HistGradientBoostingRegressor": HistGradientBoostingRegressor(random_state=seed),
              "MLPRegressor": MLPRegressor(random_state=seed)}
    out = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # defaults: max_iter=200
            model.fit(x, y)
        pred = model.predict(data.x_test)
        out[name] = (float(np.sqrt(mean_squared_error(data.y_test, pred))),
                     float(r2_score(data.y_test, pred)))
    return out


def run_seed(seed: int, quick: bool, root: Path) -> dict[str, tuple[float, float]]:
    import automl
    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.plugin_manager import load_plugins
    from automl.evaluate import final_scores

    document = yaml.safe_load(EXPERIMENT.read_text())
    document["seed"] = seed
    document["name"] = f"diabetes_s{seed}"
    if quick:
        document["search"]["num_trials"] = 6
        document["training"]["epochs"] = 10
    path = root / f"diabetes_s{seed}.yaml"
    path.write_text(yaml.safe_dump(document))
    db = f"sqlite:///{root / 'bench.db'}"
    automl.run(str(path), db=db, artifacts=str(root / "runs"))
    evaluation = final_scores(db, document["name"])  # the test split, scored once at the end
    best = evaluation.best().metrics
    rows = {"automl best trial": (best["test/rmse"], best["test/r2"])}
    if evaluation.ensemble() is not None:
        scores = evaluation.ensemble().metrics
        rows["automl ensemble"] = (scores["test/rmse"], scores["test/r2"])
    data = prepare_data(load_experiment(path).config, load_plugins(autoload=False).registry)
    rows.update(baselines(data, seed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    start_ray(SLOTS)
    started = time.perf_counter()
    per_model: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp:
        for seed in seeds:
            for name, value in run_seed(seed, args.quick, Path(tmp)).items():
                per_model.setdefault(name, []).append(value)
    elapsed = time.perf_counter() - started
    print(f"diabetes regression, seeds {seeds}, {'quick' if args.quick else 'full'} mode; "
          f"{code_version()}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {elapsed:.0f} s")
    print(f"{'model':32s} {'test RMSE':>18s} {'test R2':>18s}")
    for name, values in per_model.items():
        rmse = [v[0] for v in values]
        r2 = [v[1] for v in values]
        spread = len(values) > 1
        print(f"{name:32s} {statistics.mean(rmse):9.2f}"
              f"{f' ± {statistics.stdev(rmse):5.2f}' if spread else '':>9s} "
              f"{statistics.mean(r2):9.3f}{f' ± {statistics.stdev(r2):5.3f}' if spread else '':>9s}")
    best_baseline = max((n for n in per_model if not n.startswith("automl")),
                        key=lambda n: statistics.mean(v[1] for v in per_model[n]))
    automl_r2 = max(statistics.mean(v[1] for v in per_model[n]) for n in per_model
                    if n.startswith("automl"))
    baseline_r2 = statistics.mean(v[1] for v in per_model[best_baseline])
    print(f"goal (automl R2 >= best baseline's, {best_baseline}): "
          f"{'met' if automl_r2 >= baseline_r2 else 'missed'} "
          f"({automl_r2:.3f} vs {baseline_r2:.3f})")


if __name__ == "__main__":
    main()
