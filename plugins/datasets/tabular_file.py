"""Tabular data from a CSV or Parquet file: numeric and categorical feature columns, a label column.

A feature column that is not numeric (text, booleans, pandas categories) is categorical: its
values become codes of the sorted distinct values in the file (missing: -1), declared in
``DataSpec.extra["categorical_features"]``, and automl one-hot encodes them with the categories
the training split holds (a category absent from the training split, or unknown at prediction,
gets all zeros). The codes' vocabulary is saved with an export (``settings["categories"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples, ParamDef
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


def encode_labels(values: Any, column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map label values to 0..K-1 (sorted), returning the codes and the class names."""
    import pandas as pd

    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ConfigError(f"label column '{column}' is empty in data row {row + 1}",
                          path="dataset.params.label_column")
    categories = pd.Categorical(values)
    names = tuple(str(c) for c in categories.categories)
    if len(names) < 2:
        raise ConfigError(f"label column '{column}' has a single class ({names[0]!r}); "
                          "classification needs at least two", path="dataset.params.label_column")
    return categories.codes.astype(np.int64), names


def require_columns(frame: Any, columns: list[str], param: str, path: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        from automl.errors import did_you_mean

        hint = did_you_mean(missing[0], list(map(str, frame.columns)))
        raise ConfigError(f"column(s) {missing} not in {path}{hint}; columns: "
                          f"{', '.join(map(str, frame.columns))}", path=f"dataset.params.{param}")


class TabularFile(Dataset):
    name = "csv"
    description = ("tabular data from a CSV or Parquet file (numeric and categorical features, "
                   "any label column)")
    kind: ClassVar[str] = "tabular"
    params = {
        "path": ParamDef(Fixed(None), str, "the .csv or .parquet file", required=True,
                         is_path=True),
        "label_column": ParamDef(Fixed(None), str, "column holding the class", required=True),
        "feature_columns": ParamDef(Fixed(None), (list, type(None)),
                                    "feature columns (default: every other column)"),
    }

    def load(self, params: dict[str, Any]) -> Examples:
        frame = read_table(params["path"])
        if frame.empty and len(frame.columns):
            raise ConfigError(f"{params['path']} has a header but no data rows", path=PATH)
        label = params["label_column"]
        require_columns(frame, [label], "label_column", params["path"])
        features = params.get("feature_columns") or [c for c in frame.columns if c != label]
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
        y, names = encode_labels(frame[label], label)
        columns = prep.settings["columns"]
        extra: dict[str, Any] = {"feature_columns": columns}
        if categories:
            extra.update({CATEGORICAL: [columns.index(c) for c in categories],
                          "categories": categories})
        spec = DataSpec("tabular", (x.shape[1],), len(names), names, extra=extra)
        return Examples(x, y, spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: rows with the feature columns (any order; the label column ignored)."""
        return Preprocessing("table", {"columns": list(spec.extra["feature_columns"]),
                                       "label_column": params["label_column"],
                                       "categories": dict(spec.extra.get("categories") or {})})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
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
