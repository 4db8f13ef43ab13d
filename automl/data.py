"""Loading a dataset through its plugin and fixing the train/val/test split from the seed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from automl.components import (
    DataSpec, DataSplits, ExampleReader, Examples, RawInputs, Streamed, Task,
)
from automl.config.loader import locate
from automl.config.models import Experiment
from automl.errors import AutomlError, ConfigError, PluginError
from automl.multitask import MULTITASK, targets_of, task_for
from automl.registry import Registry
from automl.space import dataset_params
from automl.stream_splits import StreamedSplits, split_streamed, standardise_streamed


def prepare_data(config: Experiment, registry: Registry, base_dir: Path | None = None
                 ) -> DataSplits | StreamedSplits:
    """Load the experiment's dataset and split it as its task says (from ``config.seed``).

    The task checks the targets, fits what it needs on the training targets (a regression's
    target scaling) and sets the spec's ``output_size``. Tabular features are standardised with
    statistics of the training split only; the statistics are kept in ``DataSplits.fitted``.

    A dataset streamed (``dataset.cache``, see :meth:`automl.components.Dataset.stream`) gives a
    :class:`~automl.stream_splits.StreamedSplits` instead: row indices and targets per split, the
    inputs left in the files for the trial workers to read.
    """
    entry = registry.get("dataset", config.dataset.name, path="dataset.name")
    try:
        params = dataset_params(config, registry, base_dir)
    except ConfigError as exc:
        raise locate(exc, config) from None
    dataset = entry.create()
    where = f"dataset '{entry.name}' (plugin '{entry.plugin}')"
    streamed = _streams(config, dataset, params, where)
    try:
        loaded = dataset.stream(params) if streamed else dataset.load(params)  # type: ignore[attr-defined]
    except ConfigError as exc:
        raise locate(exc, config) from None
    except AutomlError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{entry.plugin}', dataset '{entry.name}': failed to "
                          f"{'stream' if streamed else 'load'}: {type(exc).__name__}: {exc}"
                          ) from exc
    if streamed:
        return _split_streamed(loaded, config, registry, where)
    if not isinstance(loaded, (Examples, DataSplits)):
        raise PluginError(f"{where}: load() returned {type(loaded).__name__}; expected "
                          "automl.components.Examples or DataSplits")
    task = task_of(loaded.spec, registry, where)
    if isinstance(loaded, Examples):
        _check_examples(loaded.x, loaded.y, loaded.spec, task, where)
        train, val, test = task.split(loaded.y, loaded.spec, config.dataset.split.val,
                                      config.dataset.split.test, config.seed)
        x, y = loaded.x, loaded.y
        if loaded.encoder is not None:
            splits = encode_splits(x, y, (train, val, test), loaded, where)
        else:
            splits = DataSplits(x[train], y[train], x[val], y[val], x[test], y[test],
                                loaded.spec)
    else:
        splits = loaded
        for part in ("train", "val", "test"):
            _check_examples(getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}"),
                            splits.spec, task, f"{where}, {part} split")
    spec = task.prepare(splits.spec, splits.y_train)
    splits.spec = replace(spec, output_size=int(task_for(spec, registry).output_size(spec)))
    if splits.spec.kind == "tabular":
        splits = standardise(splits)
    return splits


def encode_splits(x: np.ndarray, y: np.ndarray, parts: tuple[Any, Any, Any],
                  loaded: Examples, where: str) -> DataSplits:
    """The splits of a dataset that keeps raw inputs: each split encoded once (the same model
    inputs as encoding them all at once), the raw training and validation inputs kept for raw
    augmentations."""
    encoder = loaded.encoder
    assert encoder is not None
    encoded = []
    for rows in parts:
        try:
            model_inputs = encoder(list(x[rows]))
        except AutomlError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"{where}: its encoder raised {type(exc).__name__}: {exc}"
                              ) from exc
        if not isinstance(model_inputs, np.ndarray) or len(model_inputs) != len(rows):
            raise PluginError(f"{where}: its encoder must return a numpy array with a row per "
                              f"raw input; got {type(model_inputs).__name__}")
        encoded.append(model_inputs)
    train, val, test = parts
    return DataSplits(encoded[0], y[train], encoded[1], y[val], encoded[2], y[test], loaded.spec,
                      raw=RawInputs(x[train], x[val], encoder))
def _streams(config: Experiment, dataset: Any, params: dict[str, Any], where: str) -> bool:
    """Whether to stream the dataset, as ``dataset.cache`` says (auto: when it can stream and
    its examples would take more than ``dataset.cache_limit_mb``)."""
    mode = config.dataset.cache
    if mode == "memory" or (mode == "auto" and not dataset.streams()):
        return False
    if mode == "stream":
        if not dataset.streams():
            raise ConfigError(f"{where} cannot stream (it declares no stream()); use cache: "
                              "memory or auto", path="dataset.cache")
    else:
        try:
            size = dataset.size_bytes(params)
        except ConfigError as exc:
            raise locate(exc, config) from None
        if size is None or size <= config.dataset.cache_limit_mb * 2 ** 20:
            return False
    if config.validation.kfold is not None:
        raise ConfigError("a streamed dataset is validated on its hold-out split only; k-fold "
                          "validation needs the examples in memory (dataset.cache: memory)",
                          path="validation")
    return True


def _split_streamed(loaded: Any, config: Experiment, registry: Registry, where: str
                    ) -> StreamedSplits:
    """A :class:`Streamed` dataset split by row index, its tabular standardisation fitted in one
    pass over the training rows (the inputs stay in the files)."""
    from automl.preprocessing import CATEGORICAL

    if not isinstance(loaded, Streamed):
        raise PluginError(f"{where}: stream() returned {type(loaded).__name__}; expected "
                          "automl.components.Streamed")
    if not isinstance(loaded.reader, ExampleReader):
        raise PluginError(f"{where}: Streamed.reader is {type(loaded.reader).__name__}; "
                          "expected an automl.components.ExampleReader")
    task = task_of(loaded.spec, registry, where)
    y = loaded.targets
    if not isinstance(y, np.ndarray):
        raise PluginError(f"{where}: Streamed.targets must be a numpy array")
    if len(y) != len(loaded.reader):
        raise ConfigError(f"{where}: {len(loaded.reader)} inputs but {len(y)} targets")
    if len(y) == 0:
        raise ConfigError(f"{where}: no examples")
    task.check_targets(y, loaded.spec, where)
    splits = split_streamed(loaded, task, config.dataset.split.val, config.dataset.split.test,
                            config.seed)
    spec = task.prepare(splits.spec, splits.y_train)
    splits.spec = replace(spec, output_size=int(task_for(spec, registry).output_size(spec)))
    splits.workers = config.dataset.stream_workers
    if splits.spec.kind == "tabular":
        categorical = [int(i) for i in splits.spec.extra.get(CATEGORICAL) or []]
        try:
            splits = standardise_streamed(splits, categorical)
        except ConfigError as exc:
            raise locate(exc, config) from None
    return splits


def task_of(spec: DataSpec, registry: Registry, where: str) -> Task:
    """The task component a data spec names (for several targets, their tasks composed)."""
    named = [t.task for t in targets_of(spec)] if spec.task == MULTITASK else [spec.task]
    for name in named:
        if name not in registry.names("task"):
            raise PluginError(f"{where}: the data's task '{name}' is not a registered task; "
                              f"registered: {', '.join(registry.names('task'))}")
    return task_for(spec, registry)


def _check_examples(x: Any, y: Any, spec: DataSpec, task: Task, where: str) -> None:
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise PluginError(f"{where}: x and y must be numpy arrays")
    if len(x) != len(y):
        raise ConfigError(f"{where}: {len(x)} inputs but {len(y)} targets")
    if len(y) == 0:
        raise ConfigError(f"{where}: no examples")
    task.check_targets(y, spec, where)


def standardise(splits: DataSplits) -> DataSplits:
    """Scale every split with the training split's per-feature mean and std (and one-hot encode
    the features the dataset declares categorical, with the training split's categories),
    keeping what was fitted in ``fitted`` (an export saves it, so raw rows are transformed the
    same way at prediction)."""
    from automl.preprocessing import CATEGORICAL, fit_tabular
    from automl.preprocessing import standardise as scale

    categorical = [int(i) for i in splits.spec.extra.get(CATEGORICAL) or []]
    fitted = {**splits.fitted, **fit_tabular(splits.x_train, categorical)}
    x_train = scale(splits.x_train, fitted)
    spec = splits.spec
    if x_train.shape[1:] != tuple(spec.input_shape):
        spec = replace(spec, input_shape=tuple(x_train.shape[1:]))
    return DataSplits(x_train, splits.y_train, scale(splits.x_val, fitted), splits.y_val,
                      scale(splits.x_test, fitted), splits.y_test, spec, fitted)
