"""How a raw input (a table row, an image file, a string) becomes a model input.

A dataset plugin declares it (:meth:`automl.components.Dataset.preprocessing`) as a
:class:`Preprocessing`: what a raw input is (``input``), a JSON-able record of ``settings`` its
:meth:`~automl.components.Dataset.encode` needs (column names and order, image size and channel
mode, text column and maximum length), ``arrays`` of numbers and ``files`` to bundle (a tokenizer
directory). automl adds what it fits on the training split itself, applied after ``encode``: the
standardisation of tabular inputs (``arrays["standardise_mean"]``, ``arrays["standardise_std"]``)
and the one-hot encoding of categorical features (see :func:`fit_tabular`). An export saves the record in ``model.json``, the arrays in ``preprocessing.npz``
(read with ``allow_pickle=False``) and the files under ``preprocessing/``.

The kinds of raw input, and the settings automl itself reads for each:

``table``
    rows with named columns (a CSV/Parquet file, a pandas DataFrame, or a numpy array whose columns
    are in ``settings["columns"]`` order). ``columns``: the feature columns, in the model's order
    (required); ``label_column``: a column an input file may hold and prediction ignores.
``images``
    image files (a folder, searched recursively, or a list of paths). ``suffixes``: the file
    name endings read (default: common image formats).
``texts``
    strings (a CSV/Parquet file's ``text_column``, or a list of strings). ``text_column``
    (required for files); ``label_column`` as for tables.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import ConfigError

INPUTS = ("table", "images", "texts")
ARRAYS_FILE = "preprocessing.npz"
FILES_DIR = "preprocessing"
MEAN, STD = "standardise_mean", "standardise_std"
NUMERIC, ONEHOT_COLUMNS = "numeric_features", "onehot_features"
ONEHOT_CODES, ONEHOT_SIZES = "onehot_codes", "onehot_sizes"
#: ``DataSpec.extra`` key: indices of the tabular features that hold category codes (ints >= 0,
#: -1 for missing or unknown); automl one-hot encodes them with the codes the training split has
CATEGORICAL = "categorical_features"


@dataclass(frozen=True)
class Preprocessing:
    """A dataset's recipe from raw input to model input (see the module docs).

    Args:
        input: ``"table"``, ``"images"`` or ``"texts"``: what one raw input is.
        settings: JSON-able values the dataset's ``encode`` reads (and the keys automl reads).
        arrays: named numpy arrays (numbers only; saved without pickling).
        files: name -> a file or directory to bundle with an export (e.g. a tokenizer); after
            loading an export, name -> its path inside the export.
    """

    input: str
    settings: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"Preprocessing.input must be one of {', '.join(INPUTS)}, got "
                             f"{self.input!r}")
        json.dumps(self.settings)  # TypeError now, not when an export is written

    def with_arrays(self, **arrays: np.ndarray) -> "Preprocessing":
        return Preprocessing(self.input, dict(self.settings), {**self.arrays, **arrays},
                             dict(self.files))


# ---- standardisation: fitted by automl on the training split ----------------------------------


def fit_standardisation(x_train: np.ndarray) -> dict[str, np.ndarray]:
    """Per-feature mean and standard deviation of the training split (std 0 becomes 1)."""
    mean = x_train.mean(axis=0, keepdims=True)
    std = x_train.std(axis=0, keepdims=True)
    std[std == 0] = 1.0
    return {MEAN: mean, STD: std}


def fit_tabular(x_train: np.ndarray, categorical: list[int]) -> dict[str, np.ndarray]:
    """What :func:`standardise` needs, fitted on the training split.

    Without categorical features: every feature's mean and std. With some: the numeric features'
    mean and std, and per categorical feature the codes the training split holds; each becomes
    one 0/1 column, in code order, after the numeric features. A code the training split does not
    hold (a category seen only in validation/test rows or at prediction, or a missing value, -1)
    gets all zeros.
    """
    if not categorical:
        return fit_standardisation(x_train)
    numeric = np.asarray([i for i in range(x_train.shape[1]) if i not in categorical],
                         dtype=np.int64)
    codes = [np.unique(x_train[:, i][x_train[:, i] >= 0]) for i in categorical]
    return {**fit_standardisation(x_train[:, numeric]), NUMERIC: numeric,
            ONEHOT_COLUMNS: np.asarray(categorical, dtype=np.int64),
            ONEHOT_CODES: np.concatenate(codes).astype(np.float32) if codes
            else np.empty(0, np.float32),
            ONEHOT_SIZES: np.asarray([len(c) for c in codes], dtype=np.int64)}


def standardise(x: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
    """``x`` transformed with what :func:`fit_tabular` fitted, as float32 (training and
    prediction both call this)."""
    if MEAN not in fitted:
        return x
    if ONEHOT_COLUMNS not in fitted:
        return ((x - fitted[MEAN]) / fitted[STD]).astype(np.float32, copy=False)
    blocks = [((x[:, fitted[NUMERIC]] - fitted[MEAN]) / fitted[STD]).astype(np.float32)]
    start = 0
    for column, size in zip(fitted[ONEHOT_COLUMNS], fitted[ONEHOT_SIZES]):
        kept = fitted[ONEHOT_CODES][start:start + size]
        blocks.append((x[:, column:column + 1] == kept[None, :]).astype(np.float32))
        start += size
    return np.ascontiguousarray(np.concatenate(blocks, axis=1))


# ---- saving with an export, loading back ------------------------------------------------------


def save(prep: Preprocessing, directory: Path) -> dict[str, Any]:
    """Write ``prep``'s arrays and files into an export directory; returns the manifest record."""
    record: dict[str, Any] = {"input": prep.input, "settings": prep.settings,
                              "arrays": sorted(prep.arrays), "files": {}}
    if prep.arrays:
        for name, value in prep.arrays.items():
            if not isinstance(value, np.ndarray) or value.dtype == object:
                raise ConfigError(f"preprocessing array '{name}' must be a numeric numpy array")
        np.savez(directory / ARRAYS_FILE, **prep.arrays)
    for name, source in prep.files.items():
        relative = f"{FILES_DIR}/{name}"
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if Path(source).is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
        record["files"][name] = relative
    return record


def load(record: dict[str, Any], directory: Path, where: str) -> Preprocessing:
    """The :class:`Preprocessing` an export's manifest ``record`` describes."""
    if not isinstance(record, dict) or record.get("input") not in INPUTS:
        raise ConfigError(f"{where}: 'preprocessing' must name an input kind "
                          f"({', '.join(INPUTS)})")
    arrays: dict[str, np.ndarray] = {}
    if record.get("arrays"):
        try:
            with np.load(directory / ARRAYS_FILE, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in record["arrays"]}
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"cannot read {directory / ARRAYS_FILE}: {exc}") from None
    inside = directory.resolve()
    files = {}
    for name, relative in (record.get("files") or {}).items():
        path = (directory / relative).resolve()
        if Path(relative).is_absolute() or not path.is_relative_to(inside) or not path.exists():
            raise ConfigError(f"{where}: preprocessing file '{relative}' is missing or outside "
                              f"the export directory {inside}")
        files[name] = str(path)
    return Preprocessing(record["input"], dict(record.get("settings") or {}), arrays, files)


# ---- helpers for a dataset's encode() ---------------------------------------------------------


def table_values(frame: Any, columns: list[str], dtype: Any = np.float32) -> np.ndarray:
    """``frame[columns]`` as a finite numeric array; a non-numeric, missing or infinite value is a
    :class:`ConfigError` naming the column and the row (the frame's index label)."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"missing column(s) {missing}; the model needs {columns}")
    for column in columns:
        values = frame[column]
        if is_bool_dtype(values) or not is_numeric_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = converted.isna() & values.notna()
            if is_bool_dtype(values) or bad.any():
                label = values.index[int(np.flatnonzero(bad.to_numpy())[0])] if bad.any() \
                    else values.index[0]
                found = values.loc[label]
                found = found.item() if isinstance(found, np.generic) else found
                raise ConfigError(f"column '{column}' must be numeric, found {found!r} "
                                  f"({values.dtype}) in row {label}")
    x = frame[list(columns)].apply(pd.to_numeric).to_numpy(dtype=dtype)
    finite = np.isfinite(x)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ConfigError(f"column '{columns[col]}' is missing or infinite in row "
                          f"{frame.index[row]}")
    return x
