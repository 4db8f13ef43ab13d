"""A trial validated by k-fold cross-validation (see :mod:`automl.validation`).

The trial pools the training and validation rows, trains one model per fold (``folds x repeats``
models, in lockstep: every epoch trains each fold model once) and reports, every epoch, each
objective as the mean of its folds' validation values, so an early-stopping scheduler stops a
k-fold trial as it stops a hold-out one. Each fold model has its own batch-order generator
(the derived seed plus the fold's index); the models are built one after another from the seeded
global generator. Pruning and fine-tuning apply to every fold model.

What the trial keeps:

* ``val_proba``/``val_y`` in ``predictions.npz``: the out-of-fold predictions over all pooled
  rows and their targets (the ensemble stage fits weights and checks its guard on them);
* ``test_proba``: the final model's test predictions;
* ``model.pt``: the final model. With ``final: folds`` (the default) the fold models together, as
  :func:`automl.weighted_models.weighted_models` with equal weights (``trial.json`` records
  ``folds``: their number, so exports rebuild the same module); with ``final: refit`` one model
  trained again, with the same parameters and epochs, on all pooled rows.

The final ``val/<metric>`` values are the means over folds of the fold models' values after
pruning (and quantization); model-only metrics (``model/params``, size, latency) are of the final
model (every fold model of a fold ensemble counts).

With a quantization step every model is quantized after pruning and fine-tuning, each calibrated
on its own training rows (:func:`automl.trial.quantization.quantize_models`: all or none), and
the held-out, out-of-fold and test predictions are the quantized models'. ``model.pt`` then holds
the float final model and ``quantized.pt`` the quantized one (for a fold ensemble, the ensemble of
the separately quantized fold models, which exports rebuild fold model by fold model).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from automl.search_data import SearchSplits
from automl.trial.context import TrialContext
from automl.trial.quantization import measure_device, quantization_facts, quantize_models
from automl.trial.trainable import (
    Reporter, TrialSetup, _cpu_copy, build_model, finish, new_trainer, prune_and_fine_tune,
)
from automl.validation import assign_folds, out_of_fold


def train_folds(config: dict[str, Any], context: TrialContext, data: SearchSplits,
                report: Reporter, trial_id: str, setup: TrialSetup) -> dict[str, float]:
    """Train and score one configuration by k-fold cross-validation; returns the final
    metrics."""
    import torch

    from automl.trial.evaluation import score

    kfold = context.validation
    assert kfold is not None
    device, task, spec, groups = setup.device, setup.task, setup.spec, setup.metrics
    y_all = np.concatenate([data.y_train, data.y_val])
    pairs = assign_folds(len(y_all), kfold.folds, kfold.repeats, context.seed,
                         task.stratify(y_all))
    x_all = torch.as_tensor(np.concatenate([data.x_train, data.x_val])).to(device.device)
    y_tensor = torch.as_tensor(y_all).to(device.device)

    def trainer(index: int, rows: np.ndarray) -> Any:
        generator = torch.Generator(device=device.device).manual_seed(setup.seed + index)
        index_rows = torch.as_tensor(rows, device=x_all.device)
        return new_trainer(setup, context, build_model(setup, x_all), x_all[index_rows],
                           y_tensor[index_rows], generator)

    members = [trainer(i, fit) for i, (fit, _) in enumerate(pairs)]
    model_values: dict[str, float] | None = None
    train_s = 0.0
    for epoch in range(1, context.epochs + 1):
        tick = time.perf_counter()
        if setup.raw_epochs is not None:  # raw augmentations, then encoding, every epoch
            for i, (member, (fit, _)) in enumerate(zip(members, pairs)):
                member.set_inputs(torch.as_tensor(setup.raw_epochs.inputs(epoch, fit, i)
                                                  ).to(device.device))
        losses = [t.epoch() for t in members]
        train_s += time.perf_counter() - tick
        held_out = _held_out([t.model for t in members], pairs, x_all, context, setup)
        if model_values is None or setup.trains_itself:  # gradient steps keep the structure
            model_values = score(groups.epoch_model_only, y_all, np.empty(0),
                                 _cpu_copy(_fold_ensemble([t.model for t in members], setup)),
                                 spec, "val")
        epoch_metrics = {"train/loss": float(np.mean(losses)), **model_values,
                         **_mean([score(groups.epoch_per_split, y_all[held], proba, None, spec,
                                        "val") for proba, (_, held) in zip(held_out, pairs)])}
        setup.plugins.call("automl_epoch_finished", trial_id=trial_id, params=dict(config),
                           epoch=epoch, metrics=dict(epoch_metrics))
        report({**epoch_metrics, **setup.common, "epoch": epoch}, None)

    params_before = sum(p.numel() for t in members for p in t.model.parameters())
    for t in members:
        model, fine_tune_s = prune_and_fine_tune(setup, t, context)
        t.model = model.to(device.device)
        train_s += fine_tune_s
    models = [t.model for t in members]
    calibration = [x_all[torch.as_tensor(fit, device=x_all.device)] for fit, _ in pairs]
    if kfold.final == "refit":
        every_row = np.arange(len(y_all))
        refit = trainer(len(pairs), every_row)
        tick = time.perf_counter()
        for epoch in range(1, context.epochs + 1):
            if setup.raw_epochs is not None:
                refit.set_inputs(torch.as_tensor(setup.raw_epochs.inputs(
                    epoch, every_row, len(pairs))).to(device.device))
            refit.epoch()
        train_s += time.perf_counter() - tick
        params_before = sum(p.numel() for p in refit.model.parameters())
        model, fine_tune_s = prune_and_fine_tune(setup, refit, context)
        train_s += fine_tune_s
        models.append(model.to(device.device))
        calibration.append(x_all)
    float_models = list(models)
    tick = time.perf_counter()  # each model calibrated on its own training rows
    quantized = quantize_models(setup.registry, setup.plan, models, calibration,
                                int(setup.plan.training["batch_size"]))
    if setup.plan.quantizer is not None:
        setup.timer.add("quantize", time.perf_counter() - tick)
    first = quantized[0]
    run_on = first.device or device.device  # int8 kernels run on the CPU
    measured_on = measure_device(first)
    models = [q.model.to(run_on) for q in quantized]
    fold_models = models[:len(pairs)]
    held_out = _held_out(fold_models, pairs, x_all.to(run_on), context, setup,
                         first.quantizer is None)
    fold_scores = _mean([score(groups.per_split, y_all[held], proba, _cpu_copy(m), spec, "val")
                         for proba, (_, held), m in zip(held_out, pairs, fold_models)])
    x_test = torch.as_tensor(data.x_test).to(run_on)
    if kfold.final == "refit":
        final_model, float_final = models[-1], float_models[-1]
        test_proba = _predict(final_model, x_test, context, setup, first.quantizer is None)
    else:
        test_proba = task.combine(np.full(len(models), 1.0 / len(models)),
                                  [_predict(m, x_test, context, setup, first.quantizer is None)
                                   for m in models])
        final_model = _fold_ensemble(models, setup).to(run_on)
        float_final = _fold_ensemble(float_models, setup) if first.quantizer else None
    structure = score(groups.model_only, y_all, np.empty(0), final_model.to(measured_on).eval(),
                      spec, "val")
    final_model = final_model.cpu().eval()
    final = {**fold_scores, **structure, **quantization_facts(setup.plan, first, measured_on)}
    record = {"params": dict(config), "seed": setup.seed, "metrics": final,
              "plan": setup.plan.__dict__, "spec": vars(spec),
              "validation": {"kfold": vars(kfold), "rows": len(y_all)},
              **({"folds": len(pairs)} if kfold.final == "folds" else {}),
              **({"not_applied": [first.skipped]} if first.skipped else {})}
    predictions = {"val_proba": out_of_fold(held_out, pairs, len(y_all)).astype(np.float32),
                   "val_y": y_all, "test_proba": np.asarray(test_proba, dtype=np.float32)}
    return finish(setup, context, report, final_model, predictions, record, final,
                  params_before, train_s,
                  float_final.cpu().eval() if float_final is not None and first.quantizer
                  else None)


def _predict(model: Any, x: Any, context: TrialContext, setup: TrialSetup,
             amp: bool = True) -> np.ndarray:
    """``model``'s predictions of ``x``; ``amp``: in the trial's mixed precision, when it has
    one (never for a quantized model)."""
    from automl.trial.training import predict

    return predict(model, x, context.eval_batch_size, setup.task, setup.spec,
                   setup.device.amp and amp).cpu().numpy()


def _held_out(models: list[Any], pairs: list[tuple[np.ndarray, np.ndarray]],
              x_all: Any, context: TrialContext, setup: TrialSetup,
              amp: bool = True) -> list[np.ndarray]:
    """Each fold model's predictions on the rows its fold holds out."""
    import torch

    return [_predict(m, x_all[torch.as_tensor(held, device=x_all.device)], context, setup, amp)
            for m, (_, held) in zip(models, pairs)]


def _fold_ensemble(models: list[Any], setup: TrialSetup) -> Any:
    from automl.weighted_models import weighted_models

    return weighted_models(models, [1.0 / len(models)] * len(models), setup.task, setup.spec)


def _mean(scores: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]} if scores else {}


__all__ = ["train_folds"]
