"""The Ray Tune function trainable: one trial from sampled parameters to a saved checkpoint.

Flow: rebuild plugins from the recorded list -> seed -> device -> architecture -> train (report each
epoch so the early-stopping scheduler can stop the trial) -> prune -> fine-tune -> finalise ->
score validation -> checkpoint with weights and predictions (validation with labels, test without:
the worker never has test labels, see :mod:`automl.search_data`) -> final report.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import PluginError
from automl.plugin_manager import rebuild_plugins
from automl.search_data import SearchSplits, StreamedSearchSplits
from automl.space import TrialPlan
from automl.trial.context import TrialContext
from automl.trial.timing import PhaseTimer

FINAL_KEY = "automl/final"

#: ``report(metrics, checkpoint_dir)``: called after every epoch (no directory) and once at the end
#: with the directory holding the trial's artifacts.
Reporter = Callable[[dict[str, Any], "Path | None"], None]


def run_trial(config: dict[str, Any], context: TrialContext, data: SearchSplits) -> None:
    """Entry point called by Ray Tune (through ``tune.with_parameters``)."""
    import ray
    from ray import tune

    node_id = ray.get_runtime_context().get_node_id()  # hostnames can repeat; node ids do not
    if context.workers > 1:  # Ray Train workers train it; this process relays their reports
        from automl.trial.data_parallel import run_data_parallel

        run_data_parallel(config, context, data, node_id,
                          tune.get_context().get_trial_id() or "local")
        return

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, "node_id": node_id}, checkpoint=checkpoint)

    train_and_evaluate(config, context, data, report,
                       tune.get_context().get_trial_id() or "local")


def train_and_evaluate(config: dict[str, Any], context: TrialContext, data: SearchSplits,
                       report: Reporter, trial_id: str = "local", shard: Any = None
                       ) -> dict[str, float]:
    """Train, prune, fine-tune and score one configuration on validation; returns the final
    metrics. With k-fold validation (``context.validation``) see :mod:`automl.trial.folds`.
    With a ``shard`` (:class:`automl.trial.data_parallel.Shard`) this is one rank of a
    data-parallel trial: it trains on its share of the rows; only rank 0 scores and reports
    (the other ranks report empty results at the same points) and returns the final metrics.

    Deterministic for a given configuration and experiment seed on the same hardware.
    """
    if not isinstance(data, (SearchSplits, StreamedSearchSplits)):  # not a DataSplits: it
        # would carry the test labels
        raise TypeError(f"a trial receives automl.search_data.SearchSplits (no test labels), "
                        f"not {type(data).__name__}")
    import torch

    from automl.multitask import task_for
    from automl.trial.device import select_device
    from automl.trial.evaluation import score
    from automl.trial.seeding import derive_seed, seed_everything
    from automl.trial.stream_inputs import trial_inputs
    from automl.trial.quantization import measure_device, quantization_facts, quantize_model
    from automl.trial.raw_augmentation import raw_epochs, split_augmentations
    from automl.trial.training import predict

    started = time.perf_counter()
    plugins = rebuild_plugins(context.plugins)
    registry = plugins.registry
    plan = TrialPlan.from_flat(config, context.augmentation_order)
    seed = derive_seed(context.seed, config)
    seed_everything(seed)
    device = select_device(context.gpus, context.cpus, context.amp)
    # each rank of a data-parallel trial draws its own augmentations
    generator = torch.Generator(device=device.device).manual_seed(
        seed + (shard.rank if shard is not None else 0))

    spec = data.spec
    task = task_for(spec, registry)
    if context.student is not None:  # learns from labels and a teacher's predictions
        task = context.student.task(task, config)
    augmentations = [(registry.create("augmentation", name), params)
                     for name, params in plan.augmentations]
    setup = TrialSetup(plugins, registry, plan, seed, device, task, spec,
                       split_augmentations(augmentations)[0],
                       MetricGroups.of(context, registry, spec), started,
                       {"node": socket.gethostname(), "device": device.device, "seed": seed,
                        "pid": os.getpid()}, raw_epochs=raw_epochs(augmentations, data.raw, seed))
    if context.validation is not None:
        from automl.trial.folds import train_folds

        return train_folds(config, context, data, report, trial_id, setup)

    x_train, x_val, x_test = trial_inputs(data, device.device)  # tensors, or streamed splits
    y_train = torch.as_tensor(data.y_train).to(device.device)
    groups = setup.metrics
    timer = setup.timer
    model_values: dict[str, float] | None = None
    trainer = new_trainer(setup, context, build_model(setup, x_train), x_train, y_train,
                          generator, shard)
    leads = shard is None or shard.leads
    timer.add("setup", time.perf_counter() - started)
    train_s = 0.0
    # model-only metrics reading the loop's facts (epsilon) change every epoch; the others
    # only with the model's structure
    fact_metrics = [m for m in groups.epoch_model_only if m[1].fact]
    for epoch in range(1, context.epochs + 1):
        tick = time.perf_counter()
        if setup.raw_epochs is not None:  # raw augmentations, then encoding, every epoch
            trainer.set_inputs(torch.as_tensor(setup.raw_epochs.inputs(epoch)
                                               ).to(device.device))
        loss = trainer.epoch()
        train_s += time.perf_counter() - tick
        if not leads:  # rank 0 scores and reports; the others report nothing at the same point
            report({}, None)
            continue
        with timer.phase("epoch_eval"):
            val_proba = predict(trainer.model, x_val, context.eval_batch_size, task, spec,  # type: ignore[arg-type]
                                device.amp)
            facts = trainer.facts() if fact_metrics else {}
            if model_values is None or setup.trains_itself:  # gradient steps keep the structure
                model_values = score(groups.epoch_model_only, data.y_val, np.empty(0),
                                     _cpu_copy(trainer.model), spec, "val", facts)
            elif fact_metrics:
                model_values = {**model_values,
                                **score(fact_metrics, data.y_val, np.empty(0),
                                        _cpu_copy(trainer.model), spec, "val", facts)}
            epoch_metrics = {"train/loss": loss, **model_values,
                             **score(groups.epoch_per_split, data.y_val,
                                     val_proba.cpu().numpy(), None, spec, "val")}
            plugins.call("automl_epoch_finished", trial_id=trial_id, params=dict(config),
                         epoch=epoch, metrics=dict(epoch_metrics))
            report({**epoch_metrics, **setup.common, "epoch": epoch}, None)

    params_before = sum(p.numel() for p in trainer.model.parameters())
    with timer.phase("prune"):
        model, fine_tune_s = prune_and_fine_tune(setup, trainer, context)
    timer.add("prune", -fine_tune_s)  # fine-tuning is training
    train_s += fine_tune_s
    timer.add("train", train_s)
    ranks = shard.gather(shard.rows) if shard is not None else None
    if not leads:
        report({}, None)
        return {}
    model = model.to(device.device)
    float_model = model
    with timer.phase("quantize"):
        quantized = quantize_model(registry, plan, model, x_train,
                                   int(plan.training["batch_size"]))
    model = quantized.model
    run_on = quantized.device or device.device  # int8 kernels run on the CPU
    amp = device.amp and quantized.quantizer is None
    with timer.phase("final_eval"):
        model = model.to(run_on)
        val_proba = predict(model, x_val.to(run_on), context.eval_batch_size, task, spec,  # type: ignore[arg-type]
                            amp).cpu().numpy()
        test_proba = predict(model, x_test.to(run_on), context.eval_batch_size, task, spec,  # type: ignore[arg-type]
                             amp).cpu().numpy()
        measured_on = measure_device(quantized)  # latency where the model will run
        structure = score(groups.model_only, data.y_val, val_proba,
                          model.to(measured_on).eval(), spec, "val", trainer.facts())
        cpu_model = model.cpu().eval()
        final = {**score(groups.per_split, data.y_val, val_proba, cpu_model, spec, "val"),
                 **structure}
    if ranks is not None:  # how many trained it, on how many rows each
        from automl.trial.data_parallel import ROWS_KEY, WORKERS_KEY

        final.update({WORKERS_KEY: float(len(ranks)),
                      **{ROWS_KEY.format(rank=r): float(n) for r, n in enumerate(ranks)}})
    final.update(quantization_facts(plan, quantized, measured_on))
    record = {"params": dict(config), "seed": seed, "metrics": final, "plan": plan.__dict__,
              "spec": vars(spec)}  # the DataSpec, with its task and output size
    predictions = {"val_proba": val_proba.astype(np.float32), "val_y": data.y_val,
                   "test_proba": test_proba.astype(np.float32)}
    if quantized.skipped:
        record["not_applied"] = [*record.get("not_applied", []), quantized.skipped]
    return finish(setup, context, report, cpu_model, predictions, record, final, params_before,
                  train_s, float_model.cpu().eval() if quantized.quantizer else None)


@dataclass(frozen=True)
class MetricGroups:
    """The trial's metrics: prediction metrics are scored per split; model-only metrics (size,
    latency) once per model structure, on a CPU copy in eval mode, recorded as
    ``model/<metric>``; the objectives among both are also scored every epoch."""

    per_split: list[tuple[str, Any, str]]
    model_only: list[tuple[str, Any, str]]
    epoch_per_split: list[tuple[str, Any, str]]
    epoch_model_only: list[tuple[str, Any, str]]

    @classmethod
    def of(cls, context: TrialContext, registry: Any, spec: Any) -> "MetricGroups":
        from automl.multitask import create_metric, split_metric_name

        metrics = [(name, create_metric(registry, name, spec),
                    registry.get("metric", split_metric_name(name)[1]).plugin)
                   for name in context.metrics]
        objective_names = {o for o, _ in context.objectives} | set(context.constrained)
        per_split = [m for m in metrics if not m[1].model_only]
        model_only = [m for m in metrics if m[1].model_only]
        return cls(per_split, model_only, [m for m in per_split if m[0] in objective_names],
                   [m for m in model_only if m[0] in objective_names])


@dataclass(frozen=True)
class TrialSetup:
    """What both validation schemes (hold-out here, k-fold in :mod:`automl.trial.folds`) start
    from: the rebuilt plugins, the plan, the derived seed, the device, the task and the
    components the plan names."""

    plugins: Any
    registry: Any
    plan: TrialPlan
    seed: int
    device: Any
    task: Any
    spec: Any
    augmentations: list[tuple[Any, dict[str, Any]]]  # batch augmentations
    metrics: MetricGroups
    started: float
    common: dict[str, Any]  # reported with every result: node, device, seed, pid
    #: seconds per phase, reported with the final metrics (``time/<phase>_s``)
    timer: PhaseTimer = field(default_factory=PhaseTimer)
    #: each epoch's training inputs when the plan enables raw augmentations
    #: (:class:`automl.trial.raw_augmentation.RawEpochs`), else None
    raw_epochs: Any = None

    @property
    def strategy(self) -> Any:
        """The registered strategy the plan names, or the default strategy."""
        if self.plan.strategy is None:
            return self.registry.default("strategy")
        return self.registry.get("strategy", self.plan.strategy)

    @property
    def trains_itself(self) -> bool:
        """The architecture fits its models itself (no gradient steps)."""
        return bool(self.registry.get("architecture", self.plan.architecture).cls.trains_itself)

    def not_applied(self) -> list[str]:
        """What the plan names that a self-trained architecture does not apply."""
        if not self.trains_itself:
            return []
        return ([f"augmentation '{a.name}'" for a, _ in self.augmentations]
                + ([f"pruner '{self.plan.pruner}' (and fine-tuning)"] if self.plan.pruner
                   else []))


def new_trainer(setup: TrialSetup, context: TrialContext, model: Any, x: Any, y: Any,
                generator: Any, shard: Any = None) -> Any:
    """The training loop of ``model`` on rows ``x``/``y``: the plan's strategy (the default
    strategy without one), or the architecture's own ``fit`` for one that trains itself
    (:class:`~automl.trial.training.SelfFitting`); ``shard``: this rank's share of a
    data-parallel trial (strategies declaring ``data_parallel`` honour it)."""
    from automl.components import NotTrainable, TrainingRun
    from automl.trial.architecture_hooks import ArchitectureHooks
    from automl.trial.training import SelfFitting

    plan = setup.plan
    if setup.trains_itself:
        arch = setup.registry.get("architecture", plan.architecture)
        return SelfFitting(arch.create(), f"plugin '{arch.plugin}', architecture '{arch.name}'",
                           dict(plan.architecture_params), model, x, y, setup.task, setup.spec,
                           plan.training, context.epochs, generator.initial_seed())
    entry = setup.strategy
    hooks = ArchitectureHooks.of(setup.registry, plan.architecture, plan.architecture_params)
    run = TrainingRun(model, x, y, setup.task, setup.spec, plan.training, setup.augmentations,
                      setup.device, generator, context.epochs,
                      context.fine_tune_epochs if plan.pruner else 0,
                      param_groups=hooks.param_groups, on_epoch_start=hooks.on_epoch_start(),
                      shard=shard)
    try:
        return _call(entry.plugin, f"strategy '{entry.name}'", "start", entry.create().start,
                     dict(plan.strategy_params), run)
    except PluginError as exc:
        if isinstance(exc.__cause__, NotTrainable):
            raise NotTrainableError(f"strategy '{entry.name}' cannot train architecture "
                                    f"'{plan.architecture}': {exc.__cause__}") from None
        raise


def build_model(setup: TrialSetup, x_check: Any) -> Any:
    """A fresh model of the trial's architecture with the task's heads, on the device, its output
    shape checked on ``x_check``."""
    from automl.trial.output_shape import CHECK_BATCH, check_output_shape

    arch = setup.registry.get("architecture", setup.plan.architecture)
    model = _call(arch.plugin, f"architecture '{arch.name}'", "build",
                  arch.create().build, dict(setup.plan.architecture_params),
                  setup.task.body_spec(setup.spec))
    model = setup.task.wrap(model, setup.spec,
                            dict(setup.plan.task_params)).to(setup.device.device)
    check_output_shape(model, x_check[:CHECK_BATCH], setup.spec,
                       f"plugin '{arch.plugin}', architecture '{arch.name}'")
    return model


def prune_and_fine_tune(setup: TrialSetup, trainer: Any, context: TrialContext
                        ) -> tuple[Any, float]:
    """Prune the trainer's model when the plan names a pruner, fine-tune and finalise it;
    returns the model and the seconds spent fine-tuning."""
    model, plan, train_s = trainer.model, setup.plan, 0.0
    if plan.pruner is None or setup.trains_itself:  # trees are kept whole (see not_applied)
        return model, train_s
    pruner_entry = setup.registry.get("pruner", plan.pruner)
    pruner = pruner_entry.create()
    where = f"pruner '{pruner_entry.name}'"
    model = _call(pruner_entry.plugin, where, "prune", pruner.prune, model,  # type: ignore[attr-defined]
                  dict(plan.pruner_params))
    model = model.to(setup.device.device)
    trainer.fine_tune(model, context.fine_tune_lr_factor)
    for _ in range(context.fine_tune_epochs):
        tick = time.perf_counter()
        trainer.epoch()
        train_s += time.perf_counter() - tick
    return _call(pruner_entry.plugin, where, "finalize", pruner.finalize, model), train_s


def finish(setup: TrialSetup, context: TrialContext, report: Reporter, cpu_model: Any,
           predictions: dict[str, np.ndarray], record: dict[str, Any], final: dict[str, float],
           params_before: int, train_s: float, float_model: Any = None) -> dict[str, float]:
    """Write the trial's artifacts and make the final report with them; returns the final
    metrics. ``float_model`` is the model before quantization, when ``cpu_model`` is the
    quantized one: both are saved (the float weights rebuild the quantized structure)."""
    from automl.trial.artifacts import MODEL_FILE, QUANTIZED_FILE, write_trial_artifacts

    if setup.not_applied():
        record = {**record, "not_applied": [*setup.not_applied(),
                                            *record.get("not_applied", [])]}
    with tempfile.TemporaryDirectory(prefix="automl-ckpt-") as tmp:
        with setup.timer.phase("artifacts"):
            if float_model is None:
                write_trial_artifacts(Path(tmp), cpu_model, predictions, record)
            else:
                write_trial_artifacts(Path(tmp), float_model, predictions, record, cpu_model)
        deployed = QUANTIZED_FILE if float_model is not None else MODEL_FILE
        model_facts = {"model/params_before_pruning": float(params_before),
                       "model/saved_bytes": float((Path(tmp) / deployed).stat().st_size)}
        setup.timer.add("trial", time.perf_counter() - setup.started)
        report({**final, **model_facts, **setup.common, "epoch": context.epochs, FINAL_KEY: 1,
                "train_s": train_s, "trial_s": time.perf_counter() - setup.started,
                **setup.timer.as_metrics()}, Path(tmp))
    return {**final, **model_facts}


class NotTrainableError(PluginError):
    """The trial's strategy cannot train the trial's model (the message says why)."""


def _cpu_copy(model: Any) -> Any:
    import copy

    return copy.deepcopy(model).cpu().eval()


def _call(plugin: str, what: str, method: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{plugin}', {what}: {method}() raised "
                          f"{type(exc).__name__}: {exc}") from exc
