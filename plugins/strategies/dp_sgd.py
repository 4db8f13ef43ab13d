"""Differentially private SGD (Abadi et al. 2016) with Opacus: per-sample gradients clipped to
``max_grad_norm``, Gaussian noise of ``noise_multiplier x max_grad_norm`` added to their sum,
batches drawn by Poisson sampling (each row joins a step with probability batch/rows, the
sampling the accountant's bound assumes), the privacy spent tracked by Opacus's RDP or PRV
accountant and recorded as the ``epsilon`` fact at ``delta``.

Opacus computes per-sample gradients with hooks (:class:`opacus.GradSampleModule`); a layer that
mixes the examples of a batch (BatchNorm) has none, and the trial is refused with Opacus's
reason (:class:`~automl.components.NotTrainable`). Replacing such layers (Opacus's
``ModuleValidator.fix``: BatchNorm -> GroupNorm) would change the architecture's structure, which
exports and ``automl rerun`` rebuild from the architecture's own ``build``; it is not done.
Mixed precision is not used (float32 throughout). The hyperparameter search itself is not
accounted: ε is each trial's, as in the DP literature's per-run figures.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import automl
from automl.components import NotTrainable, ParamDef, Strategy, TrainingLoop, TrainingRun
from automl.params import Fixed, FloatRange

ACCOUNTANTS = ("rdp", "prv")
#: RDP orders searched for the tightest bound: fewer fractional orders than Opacus's default
#: (each costs a series; epsilon within 1% of the default's, 4x faster), and orders up to 256, as
#: few epochs at little noise (a large epsilon) find their best order above Opacus's largest (63)
RDP_ORDERS = [1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 4.5, *range(5, 64),
              80, 96, 128, 160, 192, 256]


class DPSGD(Strategy):
    name = "dp_sgd"
    description = ("differentially private SGD (Opacus): per-sample clipping, Gaussian noise, "
                   "Poisson-sampled batches; records epsilon")
    facts = ("epsilon",)
    kfold = False  # fold members share rows: their privacy composes in ways not accounted here
    pruning = False  # Opacus has no per-sample gradients for pruning's masked layers (buffers)
    params = {
        "noise_multiplier": ParamDef(FloatRange(0.5, 2.0), float,
                                     "noise std / max_grad_norm (unused with target_epsilon)"),
        "max_grad_norm": ParamDef(FloatRange(0.1, 5.0, log=True), float,
                                  "per-sample gradient clipping norm"),
        "target_epsilon": ParamDef(Fixed(None), (float, type(None)),
                                   "spend this epsilon over the trial's epochs: the noise "
                                   "multiplier is solved for it (null: use noise_multiplier)"),
        "delta": ParamDef(Fixed(1e-5), float, "delta of the (epsilon, delta) guarantee; keep it "
                          "below 1 / training rows"),
        "accountant": ParamDef(Fixed("rdp"), str, "privacy accountant: rdp or prv"),
    }

    def start(self, params: dict[str, Any], run: TrainingRun) -> TrainingLoop:
        try:
            import opacus  # noqa: F401
        except ImportError:
            raise ImportError("strategy 'dp_sgd' needs Opacus: pip install 'automl[privacy]'") \
                from None
        if params["accountant"] not in ACCOUNTANTS:
            raise ValueError(f"accountant '{params['accountant']}': use one of "
                             f"{', '.join(ACCOUNTANTS)}")
        if not 0 < float(params["delta"]) < 1:
            raise ValueError(f"delta must lie in (0, 1), got {params['delta']}")
        return PrivateLoop(params, run)


def _refuse_unsupported(model: Any) -> None:
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model.train(), strict=False)
    if errors:
        raise NotTrainable("Opacus cannot compute per-sample gradients here: "
                           + "; ".join(dict.fromkeys(str(e).strip() for e in errors)))


class PrivateLoop(TrainingLoop):
    """DP-SGD over ``run``: ``round(rows / batch_size)`` Poisson-sampled steps an epoch."""

    def __init__(self, params: Mapping[str, Any], run: TrainingRun) -> None:
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier

        _refuse_unsupported(run.model)
        self.model = run.model
        self.run = run
        self.targets = run.task.training_targets(run.y, run.spec)
        rows = len(run.x)
        self.batch = int(run.training["batch_size"])
        self.sample_rate = min(1.0, self.batch / max(rows, 1))
        self.steps = max(1, round(1 / self.sample_rate))
        self.delta = float(params["delta"])
        self.max_grad_norm = float(params["max_grad_norm"])
        self.accountant = create_accountant(params["accountant"])
        if params.get("target_epsilon") is not None:
            self.noise = float(get_noise_multiplier(
                target_epsilon=float(params["target_epsilon"]), target_delta=self.delta,
                sample_rate=self.sample_rate,
                steps=self.steps * (run.epochs + run.fine_tune_epochs),
                accountant=params["accountant"], **self._orders()))
        else:
            self.noise = float(params["noise_multiplier"])
        self.optimizer = self._optimizer(1.0)
        self._spent: tuple[int, float] = (0, 0.0)  # (steps, epsilon after them)

    def _optimizer(self, lr_scale: float) -> Any:
        from opacus.optimizers import DPOptimizer

        from automl.trial.training import make_optimizer

        return DPOptimizer(make_optimizer(self.model, self.run.training, lr_scale),
                           noise_multiplier=self.noise, max_grad_norm=self.max_grad_norm,
                           expected_batch_size=self.batch, generator=self.run.generator)

    def epoch(self) -> float:
        import torch
        from opacus import GradSampleModule

        from automl.trial.training import DivergedError

        run, x = self.run, self.run.x
        self.model.train()
        wrapped = GradSampleModule(self.model)  # per-sample gradient hooks, removed below
        total, seen = 0.0, 0
        try:
            for _ in range(self.steps):
                chosen = torch.rand(len(x), generator=run.generator,
                                    device=run.generator.device) < self.sample_rate
                idx = chosen.nonzero().flatten().to(x.device)
                self.optimizer.zero_grad(set_to_none=True)
                if len(idx) == 0:  # the step still happens: noise only
                    for p in self.model.parameters():
                        if p.requires_grad:
                            p.grad_sample = torch.zeros((1, *p.shape), device=p.device)
                else:
                    xb, yb = x[idx], self.targets[idx]
                    for aug, aug_params in run.augmentations:
                        xb, yb = aug.apply(xb, yb, aug_params, run.generator)
                    loss = run.task.loss(wrapped(xb), yb, run.training)
                    with warnings.catch_warnings():  # inputs need no gradient: Opacus's hooks
                        warnings.filterwarnings("ignore", "Full backward hook")  # still fire
                        loss.backward()
                    total += float(loss.detach()) * len(idx)
                    seen += len(idx)
                self.optimizer.step()
                self.accountant.step(noise_multiplier=self.noise, sample_rate=self.sample_rate)
        finally:
            self.optimizer.zero_grad(set_to_none=True)
            wrapped._close()  # noqa: SLF001 - removes the hooks and per-sample gradients
        mean = total / max(seen, 1)
        if not math.isfinite(mean):
            raise DivergedError(f"training loss became {mean} (lr={run.training['lr']:g})")
        return mean

    def fine_tune(self, model: Any, lr_scale: float) -> None:
        _refuse_unsupported(model)
        self.model = model
        self.optimizer = self._optimizer(lr_scale)  # the same accountant goes on counting

    def facts(self) -> dict[str, float]:
        steps = sum(entry[-1] for entry in self.accountant.history)  # (noise, rate, steps)
        if steps and steps != self._spent[0]:  # the accountant's bound takes a while
            self._spent = (steps, float(self.accountant.get_epsilon(delta=self.delta,
                                                                   **self._orders())))
        return {"epsilon": self._spent[1]}

    def _orders(self) -> dict[str, Any]:
        return {"alphas": RDP_ORDERS} if self.accountant.mechanism() == "rdp" else {}


@automl.hookimpl
def automl_register_strategies(registrar):
    registrar.add(DPSGD)
