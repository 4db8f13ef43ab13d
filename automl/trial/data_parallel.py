"""Data-parallel trials: one trial trained by ``resources.workers`` processes under Ray Train.

The Ray Tune trial (:func:`automl.trial.trainable.run_trial`) starts a Ray Train
``TorchTrainer`` with one worker per ``resources.workers`` (each with ``resources.cpu`` CPUs and
``resources.gpu`` GPUs; NCCL between GPUs, gloo on CPUs) and waits for it. Every worker runs the
trial's own function (:func:`automl.trial.trainable.train_and_evaluate`) with a :class:`Shard`:
the same seed and model, a disjoint share of the training rows each epoch
(``DistributedSampler``) and gradients averaged by ``DistributedDataParallel``. Rank 0 alone
scores the validation split, reports each epoch (relayed to Tune, so ASHA and the searcher see
the same results as from one process), prunes' results, quantizes, measures the model-only
metrics and writes the checkpoint, which the Tune trial reports as its final result. The saved
model is the plain module, never the DDP wrapper.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: metrics a data-parallel trial adds to its final result
WORKERS_KEY = "train/workers"
ROWS_KEY = "train/rows_rank{rank}"  # training rows one rank trained on in the last epoch
#: bytes of Ray's ``memory`` resource the waiting Tune trial of a data-parallel trial asks for
WAITING_TRIAL_MEMORY = 2 ** 20


@dataclass
class Shard:
    """One rank of a data-parallel trial: which rows it trains on and how gradients meet."""

    rank: int
    world: int
    seed: int
    #: training rows this rank got in the last epoch
    rows: int = 0
    _wrapped: Any = field(default=None, repr=False)

    @property
    def wrapped(self) -> bool:
        """Whether a model was wrapped for training (:meth:`wrap`)."""
        return self._wrapped is not None

    @property
    def leads(self) -> bool:
        """Rank 0 scores, reports and saves."""
        return self.rank == 0

    def order(self, n: int, epoch: int, device: Any) -> torch.Tensor:
        """This rank's rows of epoch ``epoch``, shuffled: a ``DistributedSampler`` over ``n``
        rows (every rank gets as many; the last rows repeat to even them out)."""
        import torch
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(n), num_replicas=self.world, rank=self.rank,
                                     shuffle=True, seed=self.seed, drop_last=False)
        sampler.set_epoch(epoch)
        order = torch.as_tensor(list(sampler), dtype=torch.long, device=device)
        self.rows = len(order)
        return order

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in ``DistributedDataParallel``, made again when the model changes (pruning
        and fine-tuning hand the loop a new module) or which of its parameters train does (an
        architecture's ``on_epoch_start`` unfreezing layers: DDP averages the gradients of the
        parameters that trained when it was made)."""
        import torch
        from torch.nn.parallel import DistributedDataParallel

        trains = tuple(p.requires_grad for p in model.parameters())
        if self._wrapped is None or self._wrapped[0] is not model or self._wrapped[1] != trains:
            on_gpu = next(model.parameters()).is_cuda
            self._wrapped = (model, trains, DistributedDataParallel(
                model, device_ids=[torch.cuda.current_device()] if on_gpu else None))
        return self._wrapped[2]

    def sum(self, *values: torch.Tensor) -> list[torch.Tensor]:
        """Each value summed over the ranks."""
        import torch
        import torch.distributed as dist

        stacked = torch.stack([v.float().reshape(()) for v in values])
        dist.all_reduce(stacked)
        return list(stacked.unbind())

    def gather(self, value: Any) -> list[Any]:
        """``value`` of every rank, in rank order."""
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out


def run_data_parallel(config: dict[str, Any], context: Any, data: Any, node_id: str,
                      trial_id: str) -> None:
    """In the Tune trial: train it with ``context.workers`` Ray Train workers, relay rank 0's
    epochs to Tune as they come and report its final result with the checkpoint."""
    import ray
    from ray import tune
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    gpu = context.gpus > 0
    per_worker = {"CPU": context.cpus, **({"GPU": context.gpus} if gpu else {})}
    storage = Path(tune.get_context().get_trial_dir()) / "workers"
    trainer = TorchTrainer(
        _worker, train_loop_config={"config": config, "context": context,
                                    "data": ray.put(data), "trial_id": trial_id},
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=context.workers, use_gpu=gpu,
                                     resources_per_worker=per_worker),
        run_config=RunConfig(name=f"trial-{trial_id}", storage_path=str(storage),
                             failure_config=FailureConfig(max_failures=0),
                             callbacks=[_epoch_relay()]))
    try:
        result = trainer.fit()
    except Exception as exc:  # noqa: BLE001 - a worker's own error is the trial's error
        raise _worker_error(exc) from None
    try:
        with result.checkpoint.as_directory() as checkpoint_dir:
            tune.report({**result.metrics, "node_id": node_id},
                        checkpoint=tune.Checkpoint.from_directory(checkpoint_dir))
    finally:
        shutil.rmtree(storage, ignore_errors=True)  # Tune keeps its own copy


def _worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: the trial's function on this rank's shard."""
    import ray
    import ray.train
    from ray.train.torch import get_device

    from automl.trial.seeding import derive_seed
    from automl.trial.trainable import train_and_evaluate

    import torch

    config, context = loop_config["config"], loop_config["context"]
    train_context = ray.train.get_context()
    if context.gpus > 0:
        torch.cuda.set_device(get_device())  # "cuda" is this rank's GPU from here on
    shard = Shard(train_context.get_world_rank(), train_context.get_world_size(),
                  derive_seed(context.seed, config))

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        checkpoint = (ray.train.Checkpoint.from_directory(str(checkpoint_dir))
                      if checkpoint_dir is not None else None)
        ray.train.report(metrics, checkpoint=checkpoint)

    train_and_evaluate(config, context, ray.get(loop_config["data"]), report,
                       loop_config["trial_id"], shard=shard)


def _epoch_relay() -> Any:
    """Ray Tune's relay of Ray Train reports, for the epochs only: the final report carries the
    checkpoint, which the Tune trial reports itself once training returns."""
    from ray.tune.integration.ray_train import TuneReportCallback

    class EpochRelay(TuneReportCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]],
                         checkpoint: Any) -> None:
            if checkpoint is None:
                super().after_report(run_context, metrics, checkpoint)

    return EpochRelay()


def _worker_error(exc: Exception) -> Exception:
    """The lowest failed rank's own exception (a worker's PluginError, DivergedError, ...: the
    trial records it as a one-process trial would), else Ray Train's failure itself."""
    failures = getattr(exc, "worker_failures", None)
    if not failures:
        return exc
    return failures[min(failures)]


def check_data_parallel(config: Any, architectures: Any, strategies: Any, registry: Any,
                        streamed: bool, distills: bool) -> None:
    """Refuse, before the search, what a trial trained by several workers
    (``resources.workers`` > 1) cannot do: k-fold validation, a strategy that does not declare
    ``data_parallel``, an architecture that fits itself, a streamed dataset, distillation."""
    from automl.errors import ConfigError

    workers = config.resources.workers
    if workers <= 1:
        return
    path = "resources.workers"
    if config.validation.kfold is not None:
        raise ConfigError(f"{workers} workers per trial do not apply to k-fold validation; use "
                          "validation: holdout or workers: 1", path=path)
    for name in list(strategies) or [registry.default("strategy").name]:
        entry = registry.get("strategy", name)
        if not getattr(entry.cls, "data_parallel", False):
            raise ConfigError(f"strategy '{name}' (plugin '{entry.plugin}') does not train "
                              f"data-parallel; remove it or set workers: 1", path=path)
    for name in architectures:
        entry = registry.get("architecture", name)
        if getattr(entry.cls, "trains_itself", False):
            raise ConfigError(f"architecture '{name}' (plugin '{entry.plugin}') fits itself "
                              "(no gradient steps to share between workers); remove it or set "
                              "workers: 1", path=path)
    if streamed:
        raise ConfigError("a streamed dataset is read by one process per trial; set "
                          "dataset.cache: memory or workers: 1", path=path)
    if distills:
        raise ConfigError("the distillation stage trains its students in one process; remove "
                          "distillation: or set workers: 1", path=path)


def trial_resources(resources: Any) -> dict[str, float]:
    """What the Tune trial itself asks Ray for: the whole trial with one worker; with several,
    no CPU or GPU (it waits while Ray Train's workers hold ``cpu``/``gpu`` each), only a token
    of memory, as Ray places nothing that asks for nothing."""
    if resources.workers > 1:
        return {"cpu": 0, "gpu": 0, "memory": WAITING_TRIAL_MEMORY}
    return {"cpu": resources.cpu, "gpu": resources.gpu}


def concurrent_trials(resources: Any) -> int | None:
    """How many data-parallel trials the cluster holds at once (Tune does not count the Ray
    Train workers' resources, so it must be told); None with one worker (Tune counts)."""
    if resources.workers <= 1:
        return None
    import ray

    total = ray.cluster_resources()
    fits = [total.get("CPU", 0.0) // (resources.cpu * resources.workers)]
    if resources.gpu > 0:
        fits.append(total.get("GPU", 0.0) // (resources.gpu * resources.workers))
    return max(1, int(min(fits)))
