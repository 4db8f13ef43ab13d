"""The ``csv`` dataset's Parquet file streamed: targets and checks in one pass on the driver,
features read by row group in the trial workers (pyarrow), never the whole table in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.components import DataSpec, ExampleReader, Streamed
from automl.errors import ConfigError
from automl.preprocessing import CATEGORICAL, Preprocessing

from automl_plugins.datasets.tabular_file import (
    PATH, encode_labels, encode_table, numeric_targets, require_columns, target_columns,
)

PARQUET = (".parquet", ".pq")
#: rows per pass batch on the driver (memory stays about this many rows)
PASS_ROWS = 65_536


def parquet_file(path: Path) -> Any:
    """An open ``pyarrow.parquet.ParquetFile``; an unreadable file is a ConfigError naming it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"reading {path} needs pyarrow (pip install pyarrow)",
                          path=PATH) from None
    try:
        # pre_buffer off: a pre-buffering reader keeps every column chunk it has read until it
        # is closed (the whole file, by the end of a pass over it)
        return pq.ParquetFile(path, pre_buffer=False)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}: {exc}", path=PATH) from None


def stream_parquet(params: dict[str, Any], task: str) -> Streamed:
    """The :class:`Streamed` of a Parquet file with one target (``target``/``label_column``)."""
    file = Path(params["path"])
    if params.get("targets") is not None:
        raise ConfigError("several targets (targets:) are loaded in memory only; set "
                          "dataset.cache: memory", path="dataset.cache")
    if file.suffix.lower() not in PARQUET:
        raise ConfigError(f"{file} is not a Parquet file (.parquet, .pq): only Parquet files "
                          "stream; convert it or set dataset.cache: memory", path="dataset.cache")
    if not file.is_file():
        raise ConfigError(f"no such file: {file}", path=PATH)
    targets, param = target_columns(params)
    if task == "classification" and len(targets) != 1:
        raise ConfigError(f"classification predicts one column; got {targets}",
                          path=f"dataset.params.{param}")
    source = parquet_file(file)
    import pandas as pd

    header = pd.DataFrame(columns=source.schema_arrow.names)
    require_columns(header, targets, param, str(file))
    features = [str(c) for c in (params.get("feature_columns")
                                 or [c for c in header.columns if c not in targets])]
    require_columns(header, features, "feature_columns", str(file))
    if not features:
        raise ConfigError("no feature columns", path="dataset.params.feature_columns")
    if source.metadata.num_rows == 0:
        raise ConfigError(f"{file} has no data rows", path=PATH)
    if task == "classification":
        y, names = _class_codes(source, targets[0], param)
        spec = DataSpec("tabular", (len(features),), len(names), names)
    else:
        frame = source.read(columns=targets).to_pandas()  # the targets: a few values per row
        y = numeric_targets(frame, targets, task, param)
        spec = DataSpec("tabular", (len(features),), 0, task=task,
                        target_names=tuple(map(str, targets)))
        del frame
    categories = _categories(source, features)
    prep = Preprocessing("table", {"columns": features, "categories": categories})
    _check_features(source, prep, file)
    extra: dict[str, Any] = {"feature_columns": features}
    if categories:
        extra.update({CATEGORICAL: [features.index(c) for c in categories],
                      "categories": categories})
    from dataclasses import replace

    return Streamed(ParquetRows(str(file), prep), y, replace(spec, extra=extra))


def _class_codes(source: Any, column: str, param: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """What :func:`encode_labels` makes of the whole column (int64 codes of the sorted class
    names), read a batch at a time: the driver holds the codes, not the column's values."""
    import pandas as pd

    distinct, start = [], 0
    for batch in source.iter_batches(batch_size=PASS_ROWS, columns=[column]):
        values = batch.column(0).to_pandas()
        if values.isna().any():  # as encode_labels says it, the row counted in the file
            row = start + int(np.flatnonzero(values.isna().to_numpy())[0])
            raise ConfigError(f"label column '{column}' is empty in data row {row + 1}",
                              path=f"dataset.params.{param}")
        distinct.append(pd.Series(pd.unique(values)))
        start += len(values)
    classes = pd.concat(distinct, ignore_index=True).drop_duplicates()
    _, names = encode_labels(classes, column, param)  # refuses a single class
    categories = pd.Categorical(classes).categories
    codes = np.empty(start, dtype=np.int64)
    start = 0
    for batch in source.iter_batches(batch_size=PASS_ROWS, columns=[column]):
        values = batch.column(0).to_pandas()
        codes[start:start + len(values)] = pd.Categorical(values, categories=categories).codes
        start += len(values)
    return codes, names


def _categories(source: Any, features: list[str]) -> dict[str, list[str]]:
    """Each non-numeric feature column's sorted distinct values, in one pass over its column."""
    import pyarrow as pa

    schema = source.schema_arrow
    kinds = {c: schema.field(c).type for c in features}
    columns = [c for c, t in kinds.items()
               if pa.types.is_boolean(t) or not (pa.types.is_integer(t)
                                                 or pa.types.is_floating(t))]
    if not columns:
        return {}
    seen: dict[str, set[str]] = {c: set() for c in columns}
    for batch in source.iter_batches(batch_size=PASS_ROWS, columns=columns):
        frame = batch.to_pandas()
        for column in columns:
            seen[column].update(str(v) for v in frame[column].dropna().unique())
    return {c: sorted(seen[c]) for c in columns}


def _check_features(source: Any, prep: Preprocessing, file: Path) -> None:
    """Every feature value encodes (numeric and finite), checked batch by batch; the error
    names the data row (counted from 1)."""
    start = 1
    for batch in source.iter_batches(batch_size=PASS_ROWS, columns=prep.settings["columns"]):
        frame = batch.to_pandas()
        frame.index = range(start, start + len(frame))
        try:
            encode_table(prep, frame)
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc} (data rows counted from 1)", path=PATH) from None
        start += len(frame)


class ParquetRows(ExampleReader):
    """Reads feature rows of a Parquet file by row group (opened lazily in each process)."""

    def __init__(self, path: str, preprocessing: Preprocessing) -> None:
        self.path = path
        self.preprocessing = preprocessing
        metadata = parquet_file(Path(path)).metadata
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.chunk_rows = max(1, int(np.median(sizes)))
        self._file: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None}  # an open file does not travel

    def __len__(self) -> int:
        return int(self.starts[-1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        if self._file is None:
            self._file = parquet_file(Path(self.path))
        groups = np.unique(np.searchsorted(self.starts, rows, side="right") - 1)
        table = self._file.read_row_groups(groups.tolist(),
                                           columns=self.preprocessing.settings["columns"])
        sizes = self.starts[groups + 1] - self.starts[groups]
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # each group's first row in table
        group = np.searchsorted(self.starts, rows, side="right") - 1
        local = rows - self.starts[group] + offset[np.searchsorted(groups, group)]
        x = self._numeric(table, local)
        if x is not None:
            return x
        frame = table.take(local).to_pandas()
        frame.index = rows + 1
        return encode_table(self.preprocessing, frame)

    def _numeric(self, table: Any, local: np.ndarray) -> np.ndarray | None:
        """What :func:`encode_table` makes of the ``local`` rows of an all-numeric table with
        no missing value, converted column by column in numpy (no pandas frame); None when
        a column is categorical, boolean, has a null or a row a value that is not finite (the
        pandas path then encodes them, or names the row)."""
        import pyarrow as pa

        if self.preprocessing.settings.get("categories"):
            return None
        columns = table.columns
        if any(c.null_count or not (pa.types.is_integer(c.type) or pa.types.is_floating(c.type))
               for c in columns):
            return None
        x = np.empty((len(local), len(columns)), dtype=np.float32)
        for j, column in enumerate(columns):
            x[:, j] = column.to_numpy()[local]
        return x if np.isfinite(x).all() else None
