"""Training strategies: the loop that trains a trial's model (one reported step at a time)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from automl.components.base import Component

if TYPE_CHECKING:
    import torch
    from torch import nn

    from automl.components.augmentation import Augmentation
    from automl.components.dataset import DataSpec
    from automl.components.task import Task


@dataclass
class TrainingRun:
    """What a strategy trains, as the trial prepared it.

    Args:
        model: a fresh model of the trial's architecture with the task's heads, on the device.
        x: the training inputs, on the device.
        y: the training targets as the dataset gave them, on the device
            (``task.training_targets(y, spec)`` gives what the loss takes).
        task: the task (loss, predictions).
        spec: the data spec.
        training: the sampled ``training.*`` values (``lr``, ``batch_size``, ``optimizer``, ...).
        augmentations: the enabled augmentations and their sampled strengths, in order.
        device: the trial's device plan (``device.device``, ``device.amp``).
        generator: the trial's seeded generator (on the device); draw all randomness from it.
        epochs: how many times the trial will call :meth:`TrainingLoop.epoch` before pruning.
        fine_tune_epochs: how many more calls follow :meth:`TrainingLoop.fine_tune` (0: the
            trial does not prune).
        param_groups: the architecture's optimizer groups for a model
            (:meth:`Architecture.param_groups`, checked; None: one group), asked again for the
            pruned model; ``None`` when the trial has none to give.
        on_epoch_start: the architecture's hook (``model, epoch``) to call before each training
            epoch (:meth:`Architecture.on_epoch_start`), or None. The built-in ``standard``
            strategy applies both; ``federated`` and ``dp_sgd`` train every parameter at one
            rate.
        shard: this process's share of a data-parallel trial (``resources.workers`` > 1;
            :class:`automl.trial.data_parallel.Shard`): a strategy that declares
            ``data_parallel`` trains on ``shard.order(n, epoch, device)``'s rows only and
            runs the forward pass through ``shard.wrap(model)`` (gradients averaged over the
            ranks); ``None`` when one process trains the trial.
    """

    model: "nn.Module"
    x: "torch.Tensor"
    y: "torch.Tensor"
    task: "Task"
    spec: "DataSpec"
    training: dict[str, Any]
    augmentations: Sequence[tuple["Augmentation", dict[str, Any]]]
    device: Any
    generator: "torch.Generator"
    epochs: int
    fine_tune_epochs: int = 0
    param_groups: "Callable[[nn.Module], list[dict[str, Any]] | None] | None" = None
    on_epoch_start: "Callable[[nn.Module, int], None] | None" = None
    shard: Any = None


class TrainingLoop(ABC):
    """One model being trained; the trial calls :meth:`epoch` once per reported step and scores
    :attr:`model` after each.

    Attributes:
        model: the model being trained: a plain ``nn.Module`` of the architecture's structure
            (the trial predicts with it, prunes it, saves it), never a wrapper; the trial may
            set it to the finalised model after pruning.
    """

    model: "nn.Module"

    @abstractmethod
    def epoch(self) -> float:
        """One reported step (an epoch, a federated round); returns the mean training loss."""

    @abstractmethod
    def fine_tune(self, model: "nn.Module", lr_scale: float) -> None:
        """Continue with ``model`` (the pruned model) at the learning rate times ``lr_scale``;
        the trial then calls :meth:`epoch` ``fine_tune_epochs`` times."""

    def set_inputs(self, x: "torch.Tensor") -> None:
        """Train on ``x`` from the next epoch on: the same training rows, re-encoded (raw
        augmentations such as ``eda`` change the texts before tokenisation every epoch).
        Default: refused, for a loop that cannot take new inputs."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot take new training inputs each epoch, which raw "
            "augmentations (eda, back_translation) need; use the 'standard' strategy with them")

    def facts(self) -> Mapping[str, float]:
        """What the loop knows about how the model was trained so far, for model-only metrics
        that declare ``fact`` (``epsilon``: the privacy spent). Default: nothing."""
        return {}


class Strategy(Component):
    """A training strategy plugin: owns the loop that trains a trial's model (augmentations,
    pruning, quantization, metrics and export around it stay the same).

    Attributes:
        default: the strategy of an experiment without ``strategy:``. Exactly one registered
            strategy declares it (the built-in ``standard``).
        facts: the facts (:meth:`TrainingLoop.facts`) its loops record; an experiment that
            records a metric needing a fact (``Metric.fact``) must choose among strategies that
            record it.
        kfold: whether it applies to k-fold validation (``validation: kfold``).
        pruning: whether it fine-tunes pruned models (``pruning:``); pruners leave masks or
            smaller layers that a strategy's wrappers may not handle.
        streams: whether its loops train on a streamed dataset (``TrainingRun.x`` then reads
            batches from files: :class:`automl.trial.stream_inputs` rather than a tensor);
            default ``False``: an experiment that streams refuses the strategy.
        data_parallel: whether its loops honour ``TrainingRun.shard`` (a trial trained by
            several workers, ``resources.workers``); default ``False``: an experiment with
            workers refuses the strategy.
    """

    default: ClassVar[bool] = False
    facts: ClassVar[tuple[str, ...]] = ()
    kfold: ClassVar[bool] = True
    pruning: ClassVar[bool] = True
    streams: ClassVar[bool] = False
    data_parallel: ClassVar[bool] = False

    @abstractmethod
    def start(self, params: dict[str, Any], run: TrainingRun) -> TrainingLoop:
        """The loop training ``run.model`` with this strategy's sampled ``params``. Raise
        :class:`NotTrainable` for a model the strategy cannot train."""


class NotTrainable(Exception):
    """Raised by ``Strategy.start`` for a model the strategy cannot train (a layer it cannot
    handle); the message is the reason the trial records."""
