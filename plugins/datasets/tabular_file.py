"""Tabular data from a CSV or Parquet file: numeric and categorical feature columns and one or
more target columns (a class label, 0/1 label columns, or continuous values for regression).

A feature column that is not numeric (text, booleans, pandas categories) is categorical: its
values become codes of the sorted distinct values in the file (missing: -1), declared in
``DataSpec.extra["categorical_features"]``, and automl one-hot encodes them with the categories
the training split holds (a category absent from the training split, or unknown at prediction,
gets all zeros). The codes' vocabulary is saved with an export (``settings["categories"]``).
Several targets (``targets:``) take numeric features only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples, ParamDef, Streamed
from automl.errors import ConfigError
from automl.params import Fixed
from automl.preprocessing import CATEGORICAL, Preprocessing, table_values

PATH = "dataset.params.path"


def read_table(path: str) -> Any:
    """Read a CSV or Parquet file into a pandas DataFrame, with errors that name the file."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"no such file: {file}", path=PATH)
    try:
        if file.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(file)
        return pd.read_csv(file)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for bad files
        raise ConfigError(f"cannot read {file}: {type(exc).__name__}: {exc}", path=PATH) from None


def encode_labels(values: Any, column: str, param: str = "label_column"
                  ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map label values to 0..K-1 (sorted), returning the codes and the class names."""
    import pandas as pd

    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ConfigError(f"label column '{column}' is empty in data row {row + 1}",
                          path=f"dataset.params.{param}")
    categories = pd.Categorical(values)
    names = tuple(str(c) for c in categories.categories)
    if len(names) < 2:
        raise ConfigError(f"label column '{column}' has a single class ({names[0]!r}); "
                          "classification needs at least two", path=f"dataset.params.{param}")
    return categories.codes.astype(np.int64), names


def require_columns(frame: Any, columns: list[str], param: str, path: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from automl.errors import did_you_mean

        hint = did_you_mean(missing[0], list(map(str, frame.columns)))
        raise ConfigError(f"column(s) {missing} not in {path}{hint}; columns: "
                          f"{', '.join(map(str, frame.columns))}", path=f"dataset.params.{param}")


def target_columns(params: dict[str, Any]) -> tuple[list[str], str]:
    """The target column(s) and the parameter that named them (``target`` or ``label_column``)."""
    for param in ("target", "label_column"):
        value = params.get(param)
        if value is None:
            continue
        columns = [value] if isinstance(value, str) else value
        if not columns or not all(isinstance(c, str) for c in columns):
            raise ConfigError(f"expected a column name or a list of column names, got {value!r}",
                              path=f"dataset.params.{param}")
        return list(columns), param
    raise ConfigError("required: the column to predict (or, for regression, a list of "
                      "columns); label_column is its older name", path="dataset.params.target")


def parse_targets(value: Any) -> dict[str, tuple[list[str], str]]:
    """``targets: {name: {column: C | columns: [..], task: T}}`` -> name -> (columns, task)."""
    path = "dataset.params.targets"
    if not isinstance(value, dict) or not value:
        raise ConfigError("expected a mapping of targets, each {column: NAME, task: TASK}",
                          path=path)
    out = {}
    for name, entry in value.items():
        where = f"{path}.{name}"
        if not isinstance(entry, dict) or not ({"column", "columns"} & set(entry)):
            raise ConfigError("expected {column: NAME, task: TASK} (or columns: [...])",
                              path=where)
        unknown = set(entry) - {"column", "columns", "task"}
        if unknown:
            raise ConfigError(f"unknown key(s) {sorted(unknown)}; valid: column, columns, task",
                              path=where)
        columns = entry.get("columns") or [entry["column"]]
        columns = [columns] if isinstance(columns, str) else list(columns)
        out[str(name)] = (columns, str(entry.get("task", "classification")))
    return out


def multi_target_examples(frame: Any, targets: dict[str, tuple[list[str], str]],
                          features: list[str], file: str) -> Examples:
    """Examples of several targets: each target's columns side by side in ``y`` (a class target
    as its class index), described in ``spec.extra['targets']``."""
    from dataclasses import replace

    from automl.multitask import MULTITASK, target_entry

    x = feature_matrix(frame, features, file)
    parts, entries, start = [], [], 0
    for name, (columns, task) in targets.items():
        require_columns(frame, columns, f"targets.{name}", file)
        if task == "classification":
            if len(columns) != 1:
                raise ConfigError(f"classification predicts one column; got {columns}",
                                  path=f"dataset.params.targets.{name}")
            codes, names = encode_labels(frame[columns[0]], columns[0], f"targets.{name}")
            part = codes[:, None].astype(np.float32)
            sub = DataSpec("tabular", (x.shape[1],), len(names), names, task=task)
        else:
            part = numeric_targets(frame, columns, task, f"targets.{name}")
            part = part.reshape(len(part), -1)
            sub = DataSpec("tabular", (x.shape[1],), 0, task=task,
                           target_names=tuple(map(str, columns)))
        entries.append(target_entry(name, task, (start, start + part.shape[1]), sub))
        parts.append(part)
        start += part.shape[1]
    spec = DataSpec("tabular", (x.shape[1],), 0, task=MULTITASK,
                    target_names=tuple(targets),
                    extra={"feature_columns": [str(c) for c in features], "targets": entries})
    return Examples(x, np.concatenate(parts, axis=1), replace(spec))


def feature_matrix(frame: Any, features: list[str], file: str) -> np.ndarray:
    """The numeric feature columns as float32, with errors naming the column or row."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    require_columns(frame, list(features), "feature_columns", file)
    if not features:
        raise ConfigError("no feature columns", path="dataset.params.feature_columns")
    table = frame[list(features)]
    non_numeric = [c for c in features
                   if not is_numeric_dtype(table[c]) or is_bool_dtype(table[c])]
    if non_numeric:
        raise ConfigError(f"feature column(s) {non_numeric} are not numeric; encode them or "
                          "leave them out with feature_columns",
                          path="dataset.params.feature_columns")
    x = table.to_numpy(dtype=np.float32)
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ConfigError(f"missing or infinite feature value in data row {row + 1} of "
                          f"{file}", path=PATH)
    return x


def numeric_targets(frame: Any, columns: list[str], task: str, param: str) -> np.ndarray:
    """Value (or 0/1 label) target columns as float32; the task checks the values."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    values = frame[columns]
    non_numeric = [c for c in columns
                   if not is_numeric_dtype(values[c]) or is_bool_dtype(values[c])]
    if non_numeric:
        raise ConfigError(f"target column(s) {non_numeric} are not numeric; a {task} target "
                          "must be numbers", path=f"dataset.params.{param}")
    y = values.to_numpy(dtype=np.float32)
    return y[:, 0] if len(columns) == 1 else y


class TabularFile(Dataset):
    name = "csv"
    description = ("tabular data from a CSV or Parquet file (numeric and categorical features; a "
                   "class column, label columns, or value columns for regression)")
    kind: ClassVar[str] = "tabular"
    params = {
        "path": ParamDef(Fixed(None), str, "the .csv or .parquet file", required=True,
                         is_path=True),
        "target": ParamDef(Fixed(None), (str, list, type(None)),
                           "the column to predict (regression: one column or a list)"),
        "label_column": ParamDef(Fixed(None), (str, type(None)),
                                 "older name of target (a single class column)"),
        "task": ParamDef(Fixed("classification"), str,
                         "the registered task of the target: classification, regression or "
                         "multilabel"),
        "targets": ParamDef(Fixed(None), (dict, type(None)),
                            "several targets learned together: {name: {column: C, task: T}}"),
        "feature_columns": ParamDef(Fixed(None), (list, type(None)),
                                    "feature columns (default: every column but the targets)"),
    }

    def task_name(self, params: dict[str, Any]) -> str:
        if params.get("targets") is not None:
            return "multitask"
        return str(params.get("task") or "classification")

    def target_tasks(self, params: dict[str, Any]) -> dict[str, str]:
        if params.get("targets") is None:
            return {}
        return {name: task for name, (_, task) in parse_targets(params["targets"]).items()}

    def load(self, params: dict[str, Any]) -> Examples:
        if params.get("targets") is not None:
            targets = parse_targets(params["targets"])
            frame = read_table(params["path"])
            used = {c for columns, _ in targets.values() for c in columns}
            features = params.get("feature_columns") or [c for c in frame.columns
                                                         if c not in used]
            return multi_target_examples(frame, targets, list(features), params["path"])
        targets, param = target_columns(params)
        task = self.task_name(params)
        if task == "classification" and len(targets) != 1:
            raise ConfigError(f"classification predicts one column; got {targets}",
                              path=f"dataset.params.{param}")
        frame = read_table(params["path"])
        if frame.empty and len(frame.columns):
            raise ConfigError(f"{params['path']} has a header but no data rows", path=PATH)
        require_columns(frame, targets, param, params["path"])
        features = params.get("feature_columns") or [c for c in frame.columns
                                                     if c not in targets]
        require_columns(frame, list(features), "feature_columns", params["path"])
        if not features:
            raise ConfigError("no feature columns", path="dataset.params.feature_columns")
        table = frame[list(features)].rename(columns=str)
        features = [str(c) for c in features]
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        categories = {c: sorted({str(v) for v in table[c].dropna()}) for c in features
                      if not is_numeric_dtype(table[c]) or is_bool_dtype(table[c])}
        prep = Preprocessing("table", {"columns": features, "categories": categories})
        table.index = range(1, len(table) + 1)
        try:
            x = self.encode(prep, table)
        except ConfigError as exc:
            raise ConfigError(f"{params['path']}: {exc} (data rows counted from 1)",
                              path=PATH) from None
        columns = prep.settings["columns"]
        extra: dict[str, Any] = {"feature_columns": columns}
        if categories:
            extra.update({CATEGORICAL: [columns.index(c) for c in categories],
                          "categories": categories})
        if task == "classification":
            y, names = encode_labels(frame[targets[0]], targets[0], param)
            return Examples(x, y, DataSpec("tabular", (x.shape[1],), len(names), names,
                                           extra=extra))
        y = numeric_targets(frame, targets, task, param)
        spec = DataSpec("tabular", (x.shape[1],), 0, task=task,
                        target_names=tuple(map(str, targets)), extra=extra)
        return Examples(x, y, spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: rows with the feature columns (any order; the label column ignored)."""
        if params.get("targets") is not None:
            labels = [c for columns, _ in parse_targets(params["targets"]).values()
                      for c in columns]
        else:
            labels = target_columns(params)[0]
        return Preprocessing("table", {"columns": list(spec.extra["feature_columns"]),
                                       "label_column": labels[0] if len(labels) == 1 else labels,
                                       "categories": dict(spec.extra.get("categories") or {})})

    def stream(self, params: dict[str, Any]) -> Streamed:
        """A Parquet file read a row group at a time: one pass here (the categorical columns'
        vocabulary, every feature value checked), then trial workers read the row groups."""
        from automl_plugins.datasets.parquet_stream import stream_parquet

        return stream_parquet(params, self.task_name(params))

    def size_bytes(self, params: dict[str, Any]) -> int | None:
        """float32 features of every row, from a Parquet file's metadata (a CSV: unknown)."""
        from automl_plugins.datasets.parquet_stream import PARQUET, parquet_file

        file = Path(params["path"])
        if file.suffix.lower() not in PARQUET or not file.is_file():
            return None
        metadata = parquet_file(file).metadata
        return int(metadata.num_rows) * max(int(metadata.num_columns) - 1, 1) * 4

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        return encode_table(preprocessing, raw)


def encode_table(preprocessing: Preprocessing, raw: Any) -> np.ndarray:
    """Numeric columns as float32; a categorical column's values as the codes of its
    vocabulary (missing or unknown: -1, one-hot all zeros)."""
    columns = list(preprocessing.settings["columns"])
    categories = preprocessing.settings.get("categories") or {}
    numeric = [c for c in columns if c not in categories]
    if not categories:
        return table_values(raw, columns)
    x = np.empty((len(raw), len(columns)), dtype=np.float32)
    if numeric:
        x[:, [columns.index(c) for c in numeric]] = table_values(raw, numeric)
    missing = [c for c in categories if c not in raw.columns]
    if missing:
        raise ConfigError(f"missing column(s) {missing}; the model needs {columns}")
    for column, vocabulary in categories.items():
        codes = {value: float(code) for code, value in enumerate(vocabulary)}
        values = raw[column]
        x[:, columns.index(column)] = [-1.0 if missing_value else codes.get(str(v), -1.0)
                                       for v, missing_value in zip(values, values.isna())]
    return x


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(TabularFile)
