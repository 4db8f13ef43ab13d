"""Loading a dataset through its plugin and fixing the train/val/test split from the seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.components import DataSplits, Examples
from automl.config.loader import locate
from automl.config.models import Experiment
from automl.errors import AutomlError, ConfigError, PluginError
from automl.registry import Registry
from automl.space import dataset_params


def prepare_data(config: Experiment, registry: Registry, base_dir: Path | None = None
                 ) -> DataSplits:
    """Load the experiment's dataset and split it (stratified, from ``config.seed``).

    Tabular features are standardised with statistics of the training split only; the statistics
    are kept in ``DataSplits.fitted``.
    """
    entry = registry.get("dataset", config.dataset.name, path="dataset.name")
    try:
        params = dataset_params(config, registry, base_dir)
    except ConfigError as exc:
        raise locate(exc, config) from None
    try:
        loaded = entry.create().load(params)  # type: ignore[attr-defined]
    except ConfigError as exc:
        raise locate(exc, config) from None
    except AutomlError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise PluginError(f"plugin '{entry.plugin}', dataset '{entry.name}': failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc
    where = f"dataset '{entry.name}' (plugin '{entry.plugin}')"
    if isinstance(loaded, Examples):
        _check_examples(loaded.x, loaded.y, loaded.spec.num_classes, where)
        splits = stratified_split(loaded, config.dataset.split.val, config.dataset.split.test,
                                  config.seed)
    elif isinstance(loaded, DataSplits):
        splits = loaded
        for part in ("train", "val", "test"):
            _check_examples(getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}"),
                            splits.spec.num_classes, f"{where}, {part} split")
    else:
        raise PluginError(f"{where}: load() returned {type(loaded).__name__}; expected "
                          "automl.components.Examples or DataSplits")
    if splits.spec.kind == "tabular":
        splits = standardise(splits)
    return splits


def _check_examples(x: Any, y: Any, num_classes: int, where: str) -> None:
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise PluginError(f"{where}: x and y must be numpy arrays")
    if len(x) != len(y):
        raise ConfigError(f"{where}: {len(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise ConfigError(f"{where}: no examples")
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{where}: labels must be integers 0..num_classes-1, got {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ConfigError(f"{where}: labels must lie in 0..{num_classes - 1}, found "
                          f"{int(y.min())}..{int(y.max())}")
    if len(np.unique(y)) < 2:
        raise ConfigError(f"{where}: only one class present; classification needs at least two")


def stratified_split(data: Examples, val: float, test: float, seed: int) -> DataSplits:
    """Split per class so every split keeps the class proportions; deterministic in ``seed``."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(data.y))
    counts = np.bincount(data.y)
    stratify = data.y if counts[counts > 0].min() >= 3 else None
    rest, test_idx = train_test_split(indices, test_size=test, random_state=seed,
                                      stratify=stratify)
    rest_stratify = data.y[rest] if stratify is not None else None
    train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test), random_state=seed + 1,
                                          stratify=rest_stratify)
    return DataSplits(data.x[train_idx], data.y[train_idx], data.x[val_idx], data.y[val_idx],
                      data.x[test_idx], data.y[test_idx], data.spec)


def standardise(splits: DataSplits) -> DataSplits:
    """Scale every split with the training split's per-feature mean and std (and one-hot encode
    the features the dataset declares categorical, with the training split's categories),
    keeping what was fitted in ``fitted`` (an export saves it, so raw rows are transformed the
    same way at prediction)."""
    import dataclasses

    from automl.preprocessing import CATEGORICAL, fit_tabular
    from automl.preprocessing import standardise as scale

    categorical = [int(i) for i in splits.spec.extra.get(CATEGORICAL) or []]
    fitted = {**splits.fitted, **fit_tabular(splits.x_train, categorical)}
    x_train = scale(splits.x_train, fitted)
    spec = splits.spec
    if x_train.shape[1:] != tuple(spec.input_shape):
        spec = dataclasses.replace(spec, input_shape=tuple(x_train.shape[1:]))
    return DataSplits(x_train, splits.y_train, scale(splits.x_val, fitted), splits.y_val,
                      scale(splits.x_test, fitted), splits.y_test, spec, fitted)
