"""The training loop: augmented mini-batches, the task's loss, optional AMP."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from automl.components import Augmentation, DataSpec, Task, TrainingLoop
from automl.trial.device import DevicePlan


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


def make_optimizer(model: nn.Module, training: dict[str, Any], lr_scale: float = 1.0,
                   groups: list[dict[str, Any]] | None = None) -> torch.optim.Optimizer:
    """The training's optimizer over ``model``; ``groups``: an architecture's
    :meth:`~automl.components.Architecture.param_groups` (see
    :func:`automl.trial.architecture_hooks.optimizer_groups`)."""
    from automl.trial.architecture_hooks import optimizer_groups

    lr = float(training["lr"]) * lr_scale
    wd = float(training["weight_decay"])
    name = training["optimizer"]
    params: Any = model.parameters() if groups is None else optimizer_groups(model, groups, lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd,
                               momentum=float(training["momentum"]), nesterov=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


class Trainer:
    """Trains one model on tensors already on the device (or on a streamed split's batches,
    read as it goes: :class:`automl.trial.stream_inputs.StreamInputs`)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: Task,
                 spec: DataSpec, training: dict[str, Any],
                 augmentations: Sequence[tuple[Augmentation, dict[str, Any]]],
                 device: DevicePlan, generator: torch.Generator,
                 on_epoch_start: Callable[[nn.Module, int], None] | None = None,
                 shard: Any = None) -> None:
        self.model = model
        self.x = x
        self.task = task
        self.targets = task.training_targets(y, spec)
        self.training = training
        self.augmentations = augmentations
        self.device = device
        self.generator = generator
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.amp)
        #: the architecture's ``on_epoch_start`` (``model, epoch``), run after ``model.train()``
        self.on_epoch_start = on_epoch_start
        self.epochs_started = 0
        #: this rank's share of a data-parallel trial (:mod:`automl.trial.data_parallel`)
        self.shard = shard

    def epoch(self, optimizer: torch.optim.Optimizer) -> float:
        """One pass over the training data; returns the mean loss."""
        self.model.train()
        self.epochs_started += 1
        if self.on_epoch_start is not None:
            self.on_epoch_start(self.model, self.epochs_started)
        # a data-parallel rank runs the forward pass through DDP (gradients averaged), wrapped
        # after the hook: it may unfreeze parameters
        net = self.model if self.shard is None else self.shard.wrap(self.model)
        batch = int(self.training["batch_size"])
        # Summed on the device: reading the loss every batch would stall a GPU once per batch.
        total = torch.zeros((), device=self.x.device)
        seen = 0
        for idx, xb in self.batches(batch):
            yb = self.targets[idx]
            for aug, params in self.augmentations:
                xb, yb = aug.apply(xb, yb, params, self.generator)
            with torch.autocast(device_type="cuda", enabled=self.device.amp):
                loss = self.task.loss(net(xb), yb, self.training)
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            total += loss.detach().float() * len(idx)
            seen += len(idx)
        if self.shard is not None:  # the mean over every rank's rows
            total, seen = self.shard.sum(total, torch.tensor(float(seen), device=total.device))
        mean = float(total) / max(float(seen), 1)
        if not math.isfinite(mean):
            raise DivergedError(f"training loss became {mean} (lr={self.training['lr']:g})")
        return mean

    def batches(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(row indices, inputs)`` of one epoch's shuffled mini-batches: of the tensor on the
        device, or read from a streamed split (:mod:`automl.trial.stream_inputs`)."""
        if not isinstance(self.x, torch.Tensor):
            yield from self.x.shuffled(batch, self.generator)
            return
        n = len(self.x)
        if self.shard is not None:  # this rank's rows (DistributedSampler)
            order = self.shard.order(n, self.epochs_started, self.x.device)
        else:
            order = torch.randperm(n, generator=self.generator, device=self.generator.device)
            order = order.to(self.x.device)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            if len(idx) < 2 and n > 1:
                continue  # a batch of one breaks batch norm
            yield idx, self.x[idx]


class GradientLoop(TrainingLoop):
    """A :class:`Trainer` and its optimizer as a training loop: one epoch per step; fine-tuning
    starts a new optimizer at the scaled learning rate."""

    def __init__(self, trainer: Trainer,
                 param_groups: Callable[[nn.Module], list[dict[str, Any]] | None] | None = None
                 ) -> None:
        self.trainer = trainer
        #: the architecture's optimizer groups for a model (None: one group)
        self.param_groups = param_groups
        self.optimizer = make_optimizer(trainer.model, trainer.training,
                                        groups=self._groups(trainer.model))

    def _groups(self, model: nn.Module) -> list[dict[str, Any]] | None:
        return self.param_groups(model) if self.param_groups is not None else None

    @property  # type: ignore[override]
    def model(self) -> nn.Module:
        return self.trainer.model

    @model.setter
    def model(self, model: nn.Module) -> None:
        self.trainer.model = model

    def epoch(self) -> float:
        return self.trainer.epoch(self.optimizer)

    def fine_tune(self, model: nn.Module, lr_scale: float) -> None:
        self.trainer.model = model
        self.optimizer = make_optimizer(model, self.trainer.training, lr_scale=lr_scale,
                                        groups=self._groups(model))

    def set_inputs(self, x: torch.Tensor) -> None:
        self.trainer.x = x


class SelfFitting(TrainingLoop):
    """The :class:`Trainer` interface for an architecture that trains itself (declares
    ``trains_itself``): each epoch takes the next model its ``fit`` yields; the optimizer is
    unused, augmentations do not apply. The loss reported is the task's loss on the training
    rows."""

    def __init__(self, architecture: Any, where: str, params: dict[str, Any], model: nn.Module,
                 x: torch.Tensor, y: torch.Tensor, task: Task, spec: DataSpec,
                 training: dict[str, Any], epochs: int, seed: int) -> None:
        self.model = model
        self.x = x
        self.task = task
        self.training = training
        self.where = where
        self.targets = task.training_targets(y, spec)
        self._fits = architecture.fit(dict(params), spec, x.cpu().numpy(),
                                      self.targets.cpu().numpy(), epochs, seed)

    def epoch(self) -> float:
        from automl.errors import PluginError

        try:
            fitted = next(self._fits, None)
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"{self.where}: fit() raised {type(exc).__name__}: {exc}") from exc
        if fitted is not None:  # past its epochs a fitted model stays as it is
            self.model = fitted.to(self.x.device).eval()
        with torch.no_grad():
            return float(self.task.loss(self.model(self.x), self.targets, self.training))

    def fine_tune(self, model: nn.Module, lr_scale: float) -> None:
        raise NotImplementedError("a self-fitting architecture is not pruned or fine-tuned")


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int, task: Task, spec: DataSpec,
            amp: bool = False) -> torch.Tensor:
    """The task's predictions (probabilities or values) for ``x``, in eval mode, batched."""
    model.eval()
    out = []
    batches = (x[start:start + batch_size] for start in range(0, len(x), batch_size)) \
        if isinstance(x, torch.Tensor) else x.ordered(batch_size)  # a streamed split
    for xb in batches:
        with torch.autocast(device_type="cuda", enabled=amp):
            raw = model(xb)
        out.append(task.predict(raw.float(), spec).float())
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int, amp: bool = False
                  ) -> torch.Tensor:
    """Class probabilities (softmax) of a classifier for ``x`` (benchmarks and tests)."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        with torch.autocast(device_type="cuda", enabled=amp):
            logits = model(x[start:start + batch_size])
        out.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(out) if out else torch.empty(0)


def train_on_cpu(model: nn.Module, data: Any, training: dict[str, Any], epochs: int,
                 lr_scale: float = 1.0, seed: int = 0, task: Task | None = None) -> nn.Module:
    """Train ``model`` on ``data.x_train``/``data.y_train`` on the CPU without augmentations
    (benchmarks and tests outside a trial); returns it in eval mode. ``task`` defaults to the
    registered task ``data.spec`` names (built-in plugins)."""
    if task is None:
        from automl.plugin_manager import plugin_source, rebuild_plugins

        registry = rebuild_plugins(plugin_source([], autoload=False)).registry
        task = registry.create("task", data.spec.task)  # type: ignore[assignment]
    trainer = Trainer(model, torch.as_tensor(data.x_train), torch.as_tensor(data.y_train),
                      task, data.spec, training, [], DevicePlan("cpu", False, 1),  # type: ignore[arg-type]
                      torch.Generator().manual_seed(seed))
    optimizer = make_optimizer(model, training, lr_scale=lr_scale)
    for _ in range(epochs):
        trainer.epoch(optimizer)
    return model.eval()
