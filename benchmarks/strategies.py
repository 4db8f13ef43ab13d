"""Training strategies: federated and differentially private training against the standard loop.

Each row is one trial at fixed parameters, run as a search runs it
(:func:`automl.trial.trainable.train_and_evaluate` on the experiment split of the dataset at
that seed, without test labels; the test accuracy is scored here from the trial's saved test
predictions). The built-in ``mlp`` (2 x 128, dropout 0.1) with Adam (lr 2e-3, batch 64):

* digits, federated (10 clients, half of them per round, 1 local epoch; a round per epoch)
  against the standard loop, with IID shares and Dirichlet alpha = 0.1 non-IID shares, FedAvg
  (mu = 0) and FedProx (mu = 0.01);
* breast_cancer and digits, ``dp_sgd`` at target epsilon 1, 3 and 8 (delta 1e-5, clipping norm
  1.0, the RDP accountant; the noise multiplier is solved for the target over the trial's
  epochs) against the non-private model; the epsilon the trial records is shown.

    python -m benchmarks.strategies [--quick] [--seeds N] [--epochs E]

Full mode (3 seeds, 30 epochs): 14 minutes on the shared 2-core machine (load average 19);
``--quick`` (1 seed, 3 epochs, digits federated IID and breast_cancer DP at epsilon 3 only):
about 50 s under that load, most of it start-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import environment_line

MLP = "mlp: {depth: 2, width: 128, dropout: 0.1, activation: relu}"
TRAINING = "{{epochs: {epochs}, fine_tune_epochs: 0, lr: 0.002, batch_size: 64, " \
           "optimizer: adam, weight_decay: 0.0}}"
FEDERATED = ("{{federated: {{clients: 10, client_fraction: 0.5, local_epochs: 1, "
             "split: {split}, alpha: 0.1, mu: {mu}}}}}")
PRIVATE = ("{{dp_sgd: {{target_epsilon: {epsilon}, max_grad_norm: 1.0, delta: 1.0e-5, "
           "noise_multiplier: 1.0}}}}")


def run_trial(dataset: str, strategy: str | None, epochs: int, seed: int,
              objectives: str = "[accuracy]") -> dict[str, float]:
    """One trial at fixed parameters; its final metrics plus ``test/accuracy``."""
    import numpy as np
    import optuna

    from automl.data import prepare_data
    from automl.runner import prepare
    from automl.search_data import separate
    from automl.trial.context import TrialContext
    from automl.trial.trainable import train_and_evaluate

    text = (f"name: s\nseed: {seed}\ndataset: {dataset}\nobjectives: {objectives}\n"
            f"architecture: {{{MLP}}}\ntraining: {TRAINING.format(epochs=epochs)}\n"
            + (f"strategy: {strategy}\n" if strategy else ""))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(text)
        prepared = prepare(path, db="sqlite://")
    config, registry = prepared.loaded.config, prepared.plugins.registry
    full = prepare_data(config, registry, prepared.loaded.base_dir)
    data = separate(full)[0]  # what a trial receives; the test labels stay here
    context = TrialContext.for_experiment(
        config, [(o.metric, o.mode) for o in prepared.space.objectives],
        prepared.plugins.source, registry)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params = prepared.space.define(optuna.create_study().ask())  # every value is fixed
    test: dict[str, float] = {}

    def report(metrics: dict[str, Any], checkpoint: Path | None) -> None:
        if checkpoint is not None:
            proba = np.load(checkpoint / "predictions.npz")["test_proba"]
            test["test/accuracy"] = float((proba.argmax(1) == full.y_test).mean())

    return {**train_and_evaluate(params, context, data, report), **test}


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    seeds = range(args.seeds or (1 if args.quick else 3))
    epochs = args.epochs or (3 if args.quick else 30)
    print(environment_line("strategies"))
    print(f"{len(seeds)} seed(s), {epochs} epochs (rounds); median test accuracy over seeds\n")

    federated = [("centralised (standard)", None)]
    splits = [("iid", "0.0")] if args.quick else [("iid", "0.0"), ("dirichlet", "0.0"),
                                                  ("dirichlet", "0.01")]
    federated += [(f"federated {'IID' if s == 'iid' else 'alpha=0.1'} "
                   f"{'FedAvg' if mu == '0.0' else 'FedProx mu=0.01'}",
                   FEDERATED.format(split=s, mu=mu)) for s, mu in splits]
    print("digits: federated (10 clients, 5 per round, 1 local epoch) vs centralised")
    print(f"{'strategy':<36} {'test acc':>9} {'val acc':>8}")
    for label, strategy in federated:
        rows = [run_trial("digits", strategy, epochs, seed) for seed in seeds]
        print(f"{label:<36} {median(rows, 'test/accuracy'):>9.3f} "
              f"{median(rows, 'val/accuracy'):>8.3f}", flush=True)

    print("\nDP-SGD (clip 1.0, delta 1e-5, RDP) vs non-private")
    print(f"{'dataset':<14} {'target eps':>10} {'recorded eps':>12} {'test acc':>9} "
          f"{'non-private':>11}")
    datasets = ["breast_cancer"] if args.quick else ["breast_cancer", "digits"]
    targets = [3.0] if args.quick else [1.0, 3.0, 8.0]
    for dataset in datasets:
        plain = median([run_trial(dataset, None, epochs, seed) for seed in seeds],
                       "test/accuracy")
        for epsilon in targets:
            rows = [run_trial(dataset, PRIVATE.format(epsilon=epsilon), epochs, seed,
                              "[accuracy, epsilon]") for seed in seeds]
            print(f"{dataset:<14} {epsilon:>10g} {median(rows, 'model/epsilon'):>12.2f} "
                  f"{median(rows, 'test/accuracy'):>9.3f} {plain:>11.3f}", flush=True)


if __name__ == "__main__":
    main()
