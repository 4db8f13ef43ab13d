"""Small data: automl's final model against the baselines a user would try first.

For each dataset (breast_cancer, wine, digits: accuracy; diabetes: RMSE) and seed, runs one
experiment through ``automl.run``: 5-fold cross-validation (``validation: {kfold: {folds: 5}}``),
the candidates of ``--architectures`` that suit the data (default linear, mlp and, on tabular
data, hist_gbt), a small budget, the ensemble stage, then the final evaluation, which scores the test split once. On the
same split (``automl.data.prepare_data``: the same rows, features standardised on the training
split) it fits scikit-learn's LogisticRegression / Ridge, SVC / SVR and HistGradientBoosting with
their default settings, each on the training rows and on the training and validation rows, and
scores them on the test rows.

Printed per dataset: each model's median test score over the seeds, its spread (min..max), and
its median's ratio to the best baseline's median (>= 1 means at least as good: accuracy ratios
are automl / baseline, RMSE ratios baseline / automl).

    python -m benchmarks.small_data_baselines [--quick] [--seeds N] [--datasets a,b]
        [--trials N] [--epochs N] [--architectures linear,mlp,hist_gbt] [--final folds|refit]
        [--folds K (0: hold-out validation)]

Default (3 seeds, 8 trials of 30 epochs, 5 folds): several minutes per dataset on 2 busy cores;
``--quick`` (1 seed, 3 trials of 10 epochs, wine and diabetes): about a minute per dataset.
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
from typing import Any

import numpy as np
import yaml

from benchmarks.harness import code_version, start_ray

SLOTS = 2
DATASETS = ("breast_cancer", "wine", "digits", "diabetes")
REGRESSION = {"diabetes"}


def experiment(dataset: str, seed: int, trials: int, epochs: int, architectures: list[str],
               final: str, registered: set[str], folds: int = 5) -> dict[str, Any]:
    spaces = {"linear": {}, "mlp": {"depth": {"low": 1, "high": 2},
                                    "width": {"low": 16, "high": 256, "log": True}},
              "hist_gbt": {}}
    metric = ("rmse", "min") if dataset in REGRESSION else ("accuracy", "max")
    return {
        "name": f"small_{dataset}_s{seed}", "seed": seed, "dataset": dataset,
        "objectives": [{"metric": metric[0], "mode": metric[1]}],
        "validation": ({"kfold": {"folds": folds, "repeats": 1, "final": final}} if folds
                       else "holdout"),
        "architecture": {a: spaces.get(a, {}) for a in architectures if a in registered},
        "training": {"epochs": epochs, "fine_tune_epochs": 0,
                     "lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True},
                     "weight_decay": {"low": 1.0e-6, "high": 1.0e-2, "log": True},
                     "batch_size": [16, 32, 64]},
        "search": {"num_trials": trials, "max_concurrent": SLOTS, "early_stopping": "none",
                   "startup_trials": max(1, trials // 2)},
    }


def baselines(data: Any, seed: int, regression: bool) -> dict[str, float]:
    """Test accuracy (or RMSE) of scikit-learn defaults fitted on train, and on train + val."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, mean_squared_error
    from sklearn.svm import SVC, SVR

    if regression:
        models = {"Ridge": lambda: Ridge(), "SVR": lambda: SVR(),
                  "HistGradientBoosting": lambda: HistGradientBoostingRegressor(random_state=seed)}
    else:
        models = {"LogisticRegression": lambda: LogisticRegression(max_iter=5000),
                  "SVC": lambda: SVC(),
                  "HistGradientBoosting": lambda: HistGradientBoostingClassifier(
                      random_state=seed)}
    sets = {"train": (data.x_train, data.y_train),
            "train+val": (np.concatenate([data.x_train, data.x_val]),
                          np.concatenate([data.y_train, data.y_val]))}
    out = {}
    for name, make in models.items():
        for label, (x, y) in sets.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make().fit(x.reshape(len(x), -1), y)
            pred = model.predict(data.x_test.reshape(len(data.x_test), -1))
            out[f"{name} ({label})"] = (
                float(np.sqrt(mean_squared_error(data.y_test, pred))) if regression
                else float(accuracy_score(data.y_test, pred)))
    return out


def run_seed(dataset: str, seed: int, args: argparse.Namespace, root: Path
             ) -> dict[str, float]:
    import automl
    from automl.config import load_experiment
    from automl.data import prepare_data
    from automl.evaluate import final_scores
    from automl.plugin_manager import load_plugins

    registry = load_plugins(autoload=False).registry
    kind = registry.get("dataset", dataset).cls.kind
    usable = {name for name in registry.names("architecture")  # e.g. no trees on digits images
              if kind in registry.get("architecture", name).cls.data_kinds}
    document = experiment(dataset, seed, args.trials, args.epochs, args.architectures,
                          args.final, usable, args.folds)
    path = root / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    db = f"sqlite:///{root / 'bench.db'}"
    automl.run(str(path), db=db, artifacts=str(root / "runs"))
    evaluation = final_scores(db, document["name"])  # the test split, scored once at the end
    key = "test/rmse" if dataset in REGRESSION else "test/accuracy"
    rows = {"automl best trial": evaluation.best().metrics[key]}
    ensemble = evaluation.ensemble()
    # the final model: the ensemble (the guard falls back to the best trial when it does not help)
    rows["automl final (ensemble)"] = ensemble.metrics[key] if ensemble is not None \
        else rows["automl best trial"]
    data = prepare_data(load_experiment(path).config, registry)
    rows.update(baselines(data, seed, dataset in REGRESSION))
    return rows


def table(dataset: str, per_model: dict[str, list[float]]) -> tuple[list[str], bool]:
    """Lines of the dataset's table and whether the goal (automl final >= best baseline's
    median) was met."""
    regression = dataset in REGRESSION
    median = {name: statistics.median(v) for name, v in per_model.items()}
    baseline_names = [n for n in per_model if not n.startswith("automl")]
    best = (min if regression else max)(baseline_names, key=median.__getitem__)
    lines = [f"{dataset} ({'test RMSE, lower is better' if regression else 'test accuracy'})",
             f"  {'model':40s} {'median':>8s} {'min..max':>17s} {'ratio':>7s}"]
    for name, values in per_model.items():
        ratio = median[best] / median[name] if regression else median[name] / median[best]
        lines.append(f"  {name:40s} {median[name]:8.4f} {min(values):8.4f}..{max(values):<8.4f}"
                     f"{ratio:7.3f}{'  <- best baseline' if name == best else ''}")
    final = median["automl final (ensemble)"]
    met = final <= median[best] if regression else final >= median[best]
    lines.append(f"  goal (automl final median {'<=' if regression else '>='} {best}'s): "
                 f"{'met' if met else 'MISSED'} ({final:.4f} vs {median[best]:.4f})")
    return lines, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--datasets", default=None,
                        help=f"default {','.join(DATASETS)}; quick: wine (classification) and "
                             "diabetes (regression)")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--architectures", default="linear,mlp,hist_gbt")
    parser.add_argument("--final", choices=("folds", "refit"), default="folds")
    parser.add_argument("--folds", type=int, default=5, help="0: validation: holdout")
    args = parser.parse_args()
    args.architectures = args.architectures.split(",")
    args.datasets = args.datasets or ("wine,diabetes" if args.quick else ",".join(DATASETS))
    args.trials = args.trials or (3 if args.quick else 8)
    args.epochs = args.epochs or (10 if args.quick else 30)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    start_ray(SLOTS)
    started = time.perf_counter()
    report: list[str] = []
    with tempfile.TemporaryDirectory(prefix="automl-bench-") as tmp:
        for dataset in args.datasets.split(","):
            per_model: dict[str, list[float]] = {}
            tick = time.perf_counter()
            for seed in seeds:
                for name, value in run_seed(dataset, seed, args, Path(tmp)).items():
                    per_model.setdefault(name, []).append(value)
            lines, _ = table(dataset, per_model)
            lines.append(f"  ({time.perf_counter() - tick:.0f} s for {len(seeds)} seeds)")
            print("\n".join(lines), flush=True)
            report += lines
    print(f"\nsmall data baselines, seeds {seeds}, {args.trials} trials x {args.epochs} epochs, "
          f"{f'{args.folds} folds (final: {args.final})' if args.folds else 'holdout'}, "
          f"architectures {args.architectures}; "
          f"{code_version()}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs; {time.perf_counter() - started:.0f} s")
    print("\n".join(report))


if __name__ == "__main__":
    main()
