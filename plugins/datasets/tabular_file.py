"""Tabular data from a CSV or Parquet file: numeric feature columns and a label column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples, ParamDef
from automl.errors import ConfigError
from automl.params import Fixed
from automl.preprocessing import Preprocessing, table_values

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
    description = "tabular data from a CSV or Parquet file (numeric features, any label column)"
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
        table = frame[list(features)]
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

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
                              f"{params['path']}", path=PATH)
        y, names = encode_labels(frame[label], label)
        spec = DataSpec("tabular", (x.shape[1],), len(names), names,
                        extra={"feature_columns": [str(c) for c in features]})
        return Examples(x, y, spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: rows with the feature columns (any order; extra label column ignored)."""
        return Preprocessing("table", {"columns": list(spec.extra["feature_columns"]),
                                       "label_column": params["label_column"]})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        return table_values(raw, preprocessing.settings["columns"])


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(TabularFile)
