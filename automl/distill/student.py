"""How a student trains on its teacher's predictions with the ordinary trial code.

The student's training labels carry the teacher's predictions beside them: :func:`pack` gives
each training row its label(s) followed by the teacher's predictions for that row, so any subset
or reordering of rows (the trainer's shuffled batches) keeps them together. In the trial,
:class:`StudentTask` wraps the experiment's task: its training targets are the task's targets
followed by the teacher's predictions (an augmentation that mixes targets, mixup, mixes both
alike), and its loss is

    (1 - alpha) * task.loss(outputs, labels) + alpha * task.soft_loss(outputs, teacher, T)

with ``T`` and ``alpha`` the student's sampled ``distill.temperature`` and ``distill.alpha``.
Everything else (predictions, metrics, splits) is the task's own.

With ``distillation.augment`` the training rows are followed by synthetic rows
(:mod:`automl.distill.augment`) that have the teacher's predictions and no label: their packed
rows carry a placeholder label (zeros) and a flag column, 1 for a real row and 0 for a synthetic
one, between the labels and the teacher's predictions. The labels' loss is then taken over the
batch's real rows only, weighed by their share of the batch, so that each real row contributes
``(1 - alpha) * label loss + alpha * soft loss`` and each synthetic row ``alpha * soft loss``
(a mixing augmentation mixes the flag too: a row counts as real when its flag is above 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.distill.settings import ALPHA, TEMPERATURE


@dataclass(frozen=True)
class StudentLabels:
    """How the packed training labels unpack: the labels' trailing shape and dtype. Travels to
    the trial in its context (``TrialContext.student``)."""

    shape: tuple[int, ...]  # one label's shape: () for a class index
    dtype: str
    #: whether synthetic rows follow (the packed rows then carry a real-row flag column)
    synthetic: bool = False

    @property
    def width(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def task(self, task: Any, params: dict[str, Any]) -> "StudentTask":
        """The trial's task for a student with the sampled ``params``."""
        return StudentTask(task, self, float(params[TEMPERATURE]), float(params[ALPHA]))


def pack(y: np.ndarray, teacher: np.ndarray, synthetic: np.ndarray | None = None
         ) -> tuple[np.ndarray, StudentLabels]:
    """Each row's label(s), then the teacher's predictions for it, as float32 columns. With
    ``synthetic`` (the teacher's predictions for synthetic rows), those rows follow the training
    rows, and a flag column (1: real, 0: synthetic) sits between labels and predictions."""
    if len(y) != len(teacher):
        raise ValueError(f"{len(y)} labels but {len(teacher)} teacher predictions")
    labels = StudentLabels(tuple(y.shape[1:]), str(y.dtype), synthetic is not None)
    flat = y.reshape(len(y), -1).astype(np.float32)
    if np.issubdtype(y.dtype, np.integer) and np.abs(y).max(initial=0) >= 2 ** 24:
        raise ValueError("labels above 2**24 do not survive float32 packing")
    soft = teacher.reshape(len(y), -1).astype(np.float32)
    if synthetic is None:
        return np.concatenate([flat, soft], axis=1), labels
    extra = synthetic.reshape(len(synthetic), -1).astype(np.float32)
    if extra.shape[1] != soft.shape[1]:
        raise ValueError(f"{soft.shape[1]} teacher columns for the training rows but "
                         f"{extra.shape[1]} for the synthetic rows")
    real = np.concatenate([flat, np.ones((len(y), 1), np.float32), soft], axis=1)
    made = np.concatenate([np.zeros((len(extra), flat.shape[1]), np.float32),
                           np.zeros((len(extra), 1), np.float32), extra], axis=1)
    return np.concatenate([real, made]), labels


class StudentTask:
    """The experiment's task, training on labels and teacher predictions together."""

    def __init__(self, task: Any, labels: StudentLabels, temperature: float, alpha: float
                 ) -> None:
        self.task = task
        self.labels = labels
        self.temperature = temperature
        self.alpha = alpha
        self._hard = 0  # columns of the task's own training targets

    def __getattr__(self, name: str) -> Any:  # predict, output_size, combine, ... as the task
        if name == "task":
            raise AttributeError(name)
        return getattr(self.task, name)

    def labels_of(self, packed: Any) -> Any:
        """The labels of packed rows, as the dataset gave them."""
        import torch

        width = self.labels.width
        hard = packed[:, :width].reshape((len(packed), *self.labels.shape))
        dtype = getattr(torch, self.labels.dtype.replace("numpy.", ""))
        return hard.round().to(dtype) if not dtype.is_floating_point else hard.to(dtype)

    def training_targets(self, packed: Any, spec: Any) -> Any:
        import torch

        hard = self.task.training_targets(self.labels_of(packed), spec).float()
        hard = hard.reshape(len(hard), -1)
        self._hard = hard.shape[1]
        return torch.cat([hard, packed[:, self.labels.width:].float()], dim=1)

    def loss(self, outputs: Any, targets: Any, training: dict[str, Any]) -> Any:
        hard, teacher = targets[:, :self._hard], targets[:, self._hard:]
        if not self.labels.synthetic:
            loss = self.task.soft_loss(outputs, teacher, self.temperature) * self.alpha
            if self.alpha < 1:
                loss = loss + (1 - self.alpha) * self.task.loss(outputs, hard, training)
            return loss
        real, teacher = teacher[:, 0] > 0.5, teacher[:, 1:]
        loss = self.task.soft_loss(outputs, teacher, self.temperature) * self.alpha
        if self.alpha < 1 and bool(real.any()):
            share = real.float().mean()
            loss = loss + (1 - self.alpha) * share * self.task.loss(outputs[real], hard[real],
                                                                     training)
        return loss
