"""Federated averaging over simulated clients: FedAvg (McMahan et al. 2017) and FedProx (Li et
al. 2020, ``mu > 0``).

The training rows are shared out once among ``clients`` simulated clients: at random in equal
shares (``split: iid``) or, per class, in Dirichlet(``alpha``) proportions (``split:
dirichlet``; alpha 0.1 leaves most clients with one or two classes). Each trial epoch is
``rounds_per_epoch`` rounds (default 1; the trial's rounds are epochs x rounds_per_epoch, so the
number of rounds is searched while ASHA still steps once an epoch). In a round a
``client_fraction`` of the clients (at least one, drawn from the trial's generator)
each start from the global model, train ``local_epochs`` passes over their own rows with a fresh
optimizer of the trial's ``training`` settings (and augmentations), FedProx adding
``mu/2 ||w - w_global||^2`` to their loss; the global model becomes the average of their models
weighted by their rows (buffers too). The reported loss is that weighted mean of the clients'
last local epoch, in the epoch's last round. Fine-tuning after pruning runs further rounds with the pruned model.

The averaging runs inside the trial rather than in Flower (``flwr``): Flower's Ray-based
``start_simulation`` (deprecated since Flower 1.13) calls ``ray.init`` itself and places one Ray
actor per simulated client with its own ``client_resources``, and its replacement (``flwr run`` /
``run_simulation``) starts a SuperLink and a simulation process of its own. Inside a Ray Tune
trial either would compete with Tune for the trial's reserved CPUs (or GPU share) and escape its
accounting; K simulated clients on one small data set need no more than this loop, which also
keeps each round an epoch for ASHA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import automl
from automl.components import ParamDef, Strategy, TrainingLoop, TrainingRun
from automl.params import Choice, Fixed, FloatRange, IntRange

SPLITS = ("iid", "dirichlet")


class Federated(Strategy):
    name = "federated"
    description = ("federated averaging (FedAvg; FedProx with mu > 0) over simulated clients "
                   "holding IID or Dirichlet non-IID shares of the training rows")
    kfold = False
    params = {
        "clients": ParamDef(Fixed(10), int, "simulated clients K"),
        "split": ParamDef(Fixed("iid"), str, "how rows are shared: iid or dirichlet"),
        "alpha": ParamDef(Fixed(0.5), float, "Dirichlet concentration per class (split: "
                          "dirichlet); smaller is more skewed"),
        "client_fraction": ParamDef(FloatRange(0.3, 1.0), float,
                                    "fraction of clients trained each round"),
        "local_epochs": ParamDef(IntRange(1, 3), int, "epochs each chosen client trains a round"),
        "mu": ParamDef(Choice((0.0, 0.01, 0.1)), float, "FedProx proximal weight (0: FedAvg)"),
        "rounds_per_epoch": ParamDef(Fixed(1), int, "federated rounds per trial epoch (the "
                                     "trial's rounds: epochs x this)"),
    }

    def start(self, params: dict[str, Any], run: TrainingRun) -> TrainingLoop:
        if params["split"] not in SPLITS:
            raise ValueError(f"split '{params['split']}': use one of {', '.join(SPLITS)}")
        if int(params["clients"]) < 1 or float(params["alpha"]) <= 0:
            raise ValueError("clients must be at least 1 and alpha positive")
        if not 0 < float(params["client_fraction"]) <= 1 or float(params["mu"]) < 0:
            raise ValueError("client_fraction must lie in (0, 1] and mu be >= 0")
        if int(params.get("rounds_per_epoch", 1)) < 1:
            raise ValueError("rounds_per_epoch must be at least 1")
        return FederatedLoop(params, run)


def client_rows(labels: np.ndarray | None, rows: int, clients: int, split: str, alpha: float,
                rng: np.random.Generator) -> list[np.ndarray]:
    """Each client's row indices: equal random shares, or per-class Dirichlet proportions
    (``labels`` None: the rows are one class)."""
    if split == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(rows), clients)]
    labels = np.zeros(rows, dtype=np.int64) if labels is None else labels
    shares: list[list[np.ndarray]] = [[] for _ in range(clients)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha)))[:-1] * len(members))
        for client, part in enumerate(np.split(members, cuts.astype(int))):
            shares[client].append(part)
    return [np.sort(np.concatenate(parts)) for parts in shares]


class FederatedLoop(TrainingLoop):
    """One round per :meth:`epoch` (see the module docstring)."""

    def __init__(self, params: Mapping[str, Any], run: TrainingRun) -> None:
        import torch

        from automl.trial.training import Trainer

        self.run = run
        self.model = run.model
        self.params = dict(params)
        self.lr_scale = 1.0
        rng = np.random.default_rng(int(run.generator.initial_seed()))
        labels = run.task.stratify(run.y.cpu().numpy())
        shares = client_rows(labels, len(run.x), int(params["clients"]), params["split"],
                             float(params["alpha"]), rng)
        self.trainers: list[tuple[Trainer, int]] = []
        for rows in shares:
            if len(rows) < 2:  # a client with under two rows cannot make a batch
                continue
            index = torch.as_tensor(rows, device=run.x.device)
            self.trainers.append((Trainer(run.model, run.x[index], run.y[index], run.task,
                                          run.spec, run.training, run.augmentations, run.device,
                                          run.generator), len(rows)))
        self.per_round = max(1, round(float(params["client_fraction"]) * len(shares)))

    def epoch(self) -> float:
        for _ in range(int(self.params.get("rounds_per_epoch", 1))):
            loss = self.round()
        return loss

    def round(self) -> float:
        """One round of federated averaging; returns the clients' weighted mean loss."""
        import torch

        from automl.trial.training import make_optimizer

        model = self.model
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        order = torch.randperm(len(self.trainers), generator=self.run.generator,
                               device=self.run.generator.device).cpu()
        chosen = sorted(int(i) for i in order[:min(self.per_round, len(self.trainers))])
        summed: dict[str, torch.Tensor] = {}
        loss_sum, rows_sum = 0.0, 0
        for client in chosen:
            trainer, rows = self.trainers[client]
            model.load_state_dict(start)
            trainer.model = model
            optimizer = make_optimizer(model, self.run.training, lr_scale=self.lr_scale)
            if float(self.params["mu"]) > 0:
                _proximal(optimizer, model, float(self.params["mu"]))
            for _ in range(int(self.params["local_epochs"])):
                loss = trainer.epoch(optimizer)
            loss_sum += loss * rows
            rows_sum += rows
            for key, value in model.state_dict().items():
                summed[key] = summed.get(key, 0) + value.detach().double() * rows
        model.load_state_dict({k: (summed[k] / rows_sum).to(start[k].dtype) for k in start})
        return loss_sum / rows_sum

    def fine_tune(self, model: Any, lr_scale: float) -> None:
        self.model = model
        self.lr_scale = lr_scale


def _proximal(optimizer: Any, model: Any, mu: float) -> None:
    """FedProx: before each step add ``mu (w - w_global)``, the gradient of ``mu/2 ||w -
    w_global||^2``, to each parameter's gradient (``w_global``: the round's start)."""
    anchors = [(p, p.detach().clone()) for p in model.parameters() if p.requires_grad]

    def hook(opt: Any, args: Any, kwargs: Any) -> None:
        for param, anchor in anchors:
            if param.grad is not None:
                param.grad.add_(param.detach() - anchor, alpha=mu)

    optimizer.register_step_pre_hook(hook)


@automl.hookimpl
def automl_register_strategies(registrar):
    registrar.add(Federated)
