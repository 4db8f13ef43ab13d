"""Reading raw inputs for prediction in batches: a CSV/Parquet table, an image folder, a text CSV.

What a file must hold follows from the model's :class:`~automl.preprocessing.Preprocessing`:
a ``table`` needs exactly its ``columns`` (any order), a ``texts`` file its ``text_column``; both
may also hold the ``label_column`` (ignored) and an id column (``id`` unless named otherwise),
which is copied to the predictions. Any other column is an error, as is a missing one. An
``images`` input is a folder searched recursively for image files; a file's id is its path
relative to the folder. Files are read ``batch_size`` rows at a time, so memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.errors import ConfigError
from automl.preprocessing import Preprocessing

PARQUET = (".parquet", ".pq")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
DEFAULT_ID = "id"


@dataclass(frozen=True)
class RawBatch:
    """Consecutive inputs: their ids (None without an id column), the raw inputs as the dataset's
    ``encode`` takes them, and the 1-based data row (or file) number of the first."""

    ids: list[Any] | None
    raw: Any
    first: int


@dataclass(frozen=True)
class InputSource:
    """A checked input file or folder, ready to be read in batches."""

    path: Path
    prep: Preprocessing
    id_name: str | None  # the id column the predictions get (``file`` for images)
    total: int | None  # number of inputs, when known without reading them all
    files: tuple[Path, ...] = ()  # images

    def batches(self, batch_size: int) -> Iterator[RawBatch]:
        if self.prep.input == "images":
            for start in range(0, len(self.files), batch_size):
                chunk = self.files[start:start + batch_size]
                yield RawBatch([f.relative_to(self.path).as_posix() for f in chunk],
                               [str(f) for f in chunk], start + 1)
            return
        first = 1
        for frame in _read_chunks(self.path, batch_size):
            frame.index = range(first, first + len(frame))
            ids = frame[self.id_name].tolist() if self.id_name else None
            if self.prep.input == "texts":
                raw: Any = frame[self.prep.settings["text_column"]].fillna("").astype(str).tolist()
            else:
                raw = frame
            yield RawBatch(ids, raw, first)
            first += len(frame)


def open_input(path: str | Path, prep: Preprocessing, id_column: str | None = None
               ) -> InputSource:
    """Check that ``path`` holds what the model takes, before anything is predicted.

    Raises:
        ConfigError: naming the file and the problem: missing, empty, unreadable, a folder where
            a file is needed (or the reverse), a missing or an extra column, no image files.
    """
    source = Path(path)
    if not source.exists():
        raise ConfigError(f"no such file or folder: {source}")
    if prep.input == "images":
        return _image_folder(source, prep)
    if source.is_dir():
        raise ConfigError(f"{source} is a folder; this model predicts from a CSV or Parquet file "
                          f"({_needs(prep)})")
    if source.stat().st_size == 0:
        raise ConfigError(f"{source} is empty")
    columns, total = _header(source)
    id_name = check_columns(columns, prep, id_column, str(source))
    if total == 0:
        raise ConfigError(f"{source} has a header but no data rows")
    return InputSource(source, prep, id_name, total)


def check_columns(columns: list[str], prep: Preprocessing, id_column: str | None,
                  where: str) -> str | None:
    """Refuse missing and extra columns; returns the id column (None without one)."""
    settings = prep.settings
    needed = list(settings["columns"]) if prep.input == "table" else [settings["text_column"]]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ConfigError(f"{where}: missing column(s) {missing}; the model needs "
                          f"{_needs(prep)}")
    if id_column is not None and id_column not in columns:
        raise ConfigError(f"{where}: no id column '{id_column}'; columns: {', '.join(columns)}")
    id_name = id_column if id_column is not None else (DEFAULT_ID if DEFAULT_ID in columns
                                                       and DEFAULT_ID not in needed else None)
    labels = settings.get("label_column")  # one name, or a list (several target columns)
    labels = [labels] if isinstance(labels, str) else list(labels or [])
    allowed = {*needed, *labels, id_name}
    extra = [c for c in columns if c not in allowed]
    if extra:
        raise ConfigError(f"{where}: extra column(s) {extra} the model was not trained on; it "
                          f"takes {_needs(prep)}" + (f", the target column(s) {labels}" if labels
                                                     else "")
                          + " and an id column ('id', or name one with --id-column)")
    return id_name


def _needs(prep: Preprocessing) -> str:
    if prep.input == "table":
        return f"the columns {list(prep.settings['columns'])}"
    return f"a text column '{prep.settings['text_column']}'"


def _image_folder(source: Path, prep: Preprocessing) -> InputSource:
    if not source.is_dir():
        raise ConfigError(f"{source} is not a folder; this model predicts from a folder of "
                          "image files")
    suffixes = tuple(prep.settings.get("suffixes") or IMAGE_SUFFIXES)
    files = tuple(sorted(f for f in source.rglob("*")
                         if f.is_file() and f.suffix.lower() in suffixes))
    if not files:
        raise ConfigError(f"{source} holds no image files ({', '.join(suffixes)})")
    return InputSource(source, prep, "file", len(files), files)


def _header(path: Path) -> tuple[list[str], int | None]:
    """The column names and the number of data rows (CSV: counted lines, an upper bound when
    quoted values span lines)."""
    try:
        if path.suffix.lower() in PARQUET:
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            return [str(c) for c in meta.schema_arrow.names], int(meta.metadata.num_rows)
        import pandas as pd

        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as exc:  # noqa: BLE001 - pandas and pyarrow raise many types
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    lines = 0
    with open(path, "rb") as handle:
        last = b"\n"
        for block in iter(lambda: handle.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return columns, max(lines - 1, 0)


def _read_chunks(path: Path, batch_size: int) -> Iterator[Any]:
    try:
        if path.suffix.lower() in PARQUET:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
                yield batch.to_pandas()
            return
        import pandas as pd

        with pd.read_csv(path, chunksize=batch_size) as reader:
            yield from reader
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
