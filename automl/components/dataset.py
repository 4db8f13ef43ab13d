"""Datasets: load examples and describe their inputs and outputs."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from automl.components.base import Component

if TYPE_CHECKING:
    from automl.components.stream import Streamed
    from automl.preprocessing import Preprocessing


@dataclass(frozen=True)
class DataSpec:
    """What an architecture needs to know about the data.

    Args:
        kind: ``"image"`` (x is N x C x H x W float32), ``"tabular"`` (N x F float32) or
            ``"text"`` (N x L int64 token ids, as the dataset's encoder makes them from strings).
        input_shape: shape of one example, without the batch dimension.
        num_classes: number of classes (a classification task: labels are ints in
            ``range(num_classes)``); 0 for targets without classes.
        class_names: a readable name per class.
        extra: anything else (feature columns, a tokenizer, what the task fitted on the training
            targets).
        task: the registered task the targets belong to (see :class:`automl.components.Task`).
        target_names: the target columns (regression) or labels (multi-label), in target order.
        output_size: how many values the model outputs per example; set by the platform from
            the task (left 0, it is ``num_classes``). Architectures build ``output_size``
            outputs.
    """

    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    target_names: tuple[str, ...] = ()
    output_size: int = 0

    def __post_init__(self) -> None:
        if not self.output_size:
            object.__setattr__(self, "output_size", self.num_classes)


#: Raw inputs (a sequence of strings for text) to model inputs (an N x ... array).
Encoder = Callable[[Sequence[Any]], np.ndarray]


@dataclass
class Examples:
    """All examples of a dataset, before the platform splits them.

    With an ``encoder``, ``x`` holds raw inputs (a 1-D object array of strings for text) and the
    encoder turns any sequence of them into model inputs matching the spec (a picklable callable:
    it travels to the trial workers). automl encodes the splits once and keeps the raw training
    and validation inputs, so that raw augmentations
    (:class:`automl.components.augmentation.RawAugmentation`) can transform them each epoch
    before encoding.
    """

    x: np.ndarray
    y: np.ndarray
    spec: DataSpec
    encoder: Encoder | None = None


@dataclass(frozen=True)
class RawInputs:
    """The raw training and validation inputs of a dataset that keeps them, with its encoder."""

    train: np.ndarray
    val: np.ndarray
    encoder: Encoder


@dataclass
class DataSplits:
    """Fixed train/validation/test splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    spec: DataSpec
    #: what automl fitted on the training split (standardisation statistics), by name
    fitted: dict[str, np.ndarray] = field(default_factory=dict)
    #: the raw inputs behind ``x_train`` and ``x_val`` (datasets that keep them; see Examples)
    raw: RawInputs | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


class Dataset(Component):
    """A dataset plugin.

    ``load`` returns :class:`Examples` (the platform then splits them into train/val/test from the
    experiment seed, as the spec's task says: stratified by class for classification) or
    :class:`DataSplits` when the data comes with its own split. A dataset larger than memory
    also implements :meth:`stream` (and :meth:`size_bytes`): its inputs are then read by the
    trial workers, a batch at a time.
    Dataset parameters are fixed values, never searched.

    To let an exported model predict on raw inputs (``automl predict``, ``automl.load_model``),
    a dataset also says how a raw input becomes a model input: :meth:`preprocessing` returns the
    recipe as data (a :class:`automl.preprocessing.Preprocessing`) and :meth:`encode` applies it
    to a batch. Both run again when an export is loaded, with only the saved recipe, so ``encode``
    must not read the experiment's files.
    """

    kind: ClassVar[str] = "tabular"

    def task_name(self, params: dict[str, Any]) -> str:
        """The task of the targets this dataset loads with ``params`` (known before loading, so
        an experiment's metrics can be checked against it); must equal ``spec.task``."""
        return "classification"

    def target_tasks(self, params: dict[str, Any]) -> dict[str, str]:
        """For a dataset with several targets (``task_name`` returns ``"multitask"``): each
        target's name and registered task, in target order; empty otherwise."""
        return {}

    @abstractmethod
    def load(self, params: dict[str, Any]) -> Examples | DataSplits:
        """Load the data. Raise :class:`automl.errors.ConfigError` for unusable input."""

    def stream(self, params: dict[str, Any]) -> "Streamed":
        """The data without loading the inputs: every row's target, the spec, and a reader of
        the inputs by row that trial workers use (see :mod:`automl.components.stream`). A
        dataset that does not override it cannot stream (``dataset.cache: stream`` is refused;
        ``auto`` loads it). The rows must be those :meth:`load` returns, in the same order."""
        raise NotImplementedError(f"dataset '{self.name}' declares no stream()")

    def size_bytes(self, params: dict[str, Any]) -> int | None:
        """About how many bytes :meth:`load`'s inputs would take in memory, found without
        loading them (``dataset.cache: auto`` streams a dataset larger than
        ``dataset.cache_limit_mb``); ``None``: unknown (it is loaded)."""
        return None

    @classmethod
    def streams(cls) -> bool:
        """True when the dataset implements :meth:`stream`."""
        return cls.stream is not Dataset.stream

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> "Preprocessing | None":
        """How raw inputs become model inputs, for these ``params`` (``None``: the dataset does
        not say, and its exported models predict only on prepared arrays)."""
        return None

    def encode(self, preprocessing: "Preprocessing", raw: Any) -> np.ndarray:
        """A batch of raw inputs as model inputs, exactly as :meth:`load` makes them.

        ``raw`` is a pandas DataFrame holding ``settings["columns"]`` (input ``table``), a list of
        image file paths (``images``) or a list of strings (``texts``). automl applies its own
        fitted steps (tabular standardisation) afterwards. Raise
        :class:`automl.errors.ConfigError` naming the column, row or file for unusable input.
        """
        raise NotImplementedError(f"dataset '{self.name}' declares no encode()")
