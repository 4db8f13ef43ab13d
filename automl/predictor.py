"""Predicting with an exported model on raw inputs: ``automl.load_model(path).predict(rows)``.

:func:`load` reads an export (:mod:`automl.export`) safely (JSON metadata, weights with
``torch.load(weights_only=True)``, plugin files only when their sha256 matches) and returns a
:class:`Predictor`. It turns raw inputs into model inputs with the dataset's own ``encode`` and
the statistics fitted on the training split (:mod:`automl.preprocessing`), runs the model in the
export's format (native, TorchScript or ONNX) and reports class probabilities or labels through
one output transform (:mod:`automl.prediction_output`). It prints nothing; :meth:`predict_file`
reports progress as events (:mod:`automl.events`).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl import events
from automl.errors import ConfigError, PluginError
from automl.prediction_output import TaskOutput
from automl.preprocessing import Preprocessing
from automl.preprocessing import load as load_preprocessing
from automl.preprocessing import standardise

Runtime = Callable[[np.ndarray], np.ndarray]

__all__ = ["Predictor", "PredictionSummary", "load"]


@dataclass(frozen=True)
class PredictionSummary:
    rows: int
    output: Path
    elapsed_s: float


class Predictor:
    """An exported model with its preprocessing; see :func:`load`."""

    def __init__(self, path: Path, manifest: dict[str, Any], runtime: Runtime,
                 preprocessing: Preprocessing | None, dataset: Any,
                 output: TaskOutput) -> None:
        self.path = path
        self.manifest = manifest
        self.preprocessing = preprocessing
        self.output = output
        self._runtime = runtime
        self._dataset = dataset

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.output.spec.class_names)

    @property
    def format(self) -> str:
        return (self.manifest.get("runtime") or {}).get("format", "native")

    # ---- raw inputs -----------------------------------------------------------------------------

    def predict_proba(self, inputs: Any, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N x classes, float32) for raw ``inputs``: a pandas DataFrame (or a
        numpy array with the columns in the model's order) for a table model, a list of image
        paths for an image model, a list of strings for a text model. An export whose dataset
        declares no preprocessing takes prepared arrays only."""
        raws = list(self._batches(inputs, batch_size))
        if not raws:
            return np.empty((0, self.output.width), dtype=np.float32)
        return np.concatenate([self.predict_prepared(self.encode(raw)) for raw in raws])

    def predict(self, inputs: Any, batch_size: int = 256) -> np.ndarray:
        """The prediction of every input, as the task decides (a class name, a value, 0/1 per
        label; a mapping of target name to those for several targets); see
        :meth:`predict_proba` for the inputs."""
        return self.output.labels(self.predict_proba(inputs, batch_size))

    def encode(self, raw: Any) -> np.ndarray:
        """A batch of raw inputs as model inputs: the dataset's ``encode`` and automl's fitted
        standardisation."""
        prep = self.preprocessing
        if prep is None:
            return np.asarray(raw)
        try:
            x = self._dataset.encode(prep, raw)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"dataset '{self.manifest['dataset']['name']}': encode() raised "
                              f"{type(exc).__name__}: {exc}") from exc
        return standardise(x, prep.arrays)

    def predict_prepared(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Probabilities for model inputs prepared as training prepared them."""
        x = np.asarray(x)
        x = x.astype(np.float32) if np.issubdtype(x.dtype, np.floating) else x.astype(np.int64)
        parts = [self._runtime(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        if not parts:
            return np.empty((0, self.output.width), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32)

    def _batches(self, inputs: Any, batch_size: int) -> Iterator[Any]:
        from automl.raw_inputs import check_columns

        prep = self.preprocessing
        if prep is not None and prep.input == "table":
            import pandas as pd

            if isinstance(inputs, np.ndarray):
                columns = list(prep.settings["columns"])
                if inputs.ndim != 2 or inputs.shape[1] != len(columns):
                    raise ConfigError(f"a numpy array for this model needs shape (N, "
                                      f"{len(columns)}) (the columns {columns}), got "
                                      f"{inputs.shape}")
                inputs = pd.DataFrame(inputs, columns=columns)
            if not isinstance(inputs, pd.DataFrame):
                raise ConfigError("this model predicts on table rows: pass a pandas DataFrame or "
                                  f"a numpy array, not {type(inputs).__name__}")
            check_columns([str(c) for c in inputs.columns], prep, None, "the DataFrame")
            for start in range(0, len(inputs), batch_size):
                yield inputs.iloc[start:start + batch_size]
            return
        if prep is not None:
            kind = "image file paths" if prep.input == "images" else "strings"
            if isinstance(inputs, (str, bytes, os.PathLike)) or not hasattr(inputs, "__len__"):
                raise ConfigError(f"this model predicts on a list of {kind}, not "
                                  f"{type(inputs).__name__}")
            inputs = list(inputs)
        for start in range(0, len(inputs), batch_size):
            yield inputs[start:start + batch_size]

    # ---- files ----------------------------------------------------------------------------------

    def predict_file(self, input: str | Path, output: str | Path, *, batch_size: int = 256,
                     id_column: str | None = None,
                     listener: events.Listener = events.ignore) -> PredictionSummary:
        """Predict every input in ``input`` (a CSV/Parquet file or an image folder, see
        :mod:`automl.raw_inputs`) and write one CSV row per input to ``output``: the id column
        if the input has one, then the prediction columns. Reads ``batch_size`` inputs at a
        time; the file appears complete (temp file, then rename) or not at all.
        """
        from automl.raw_inputs import open_input

        if self.preprocessing is None:
            raise ConfigError(f"{self.path}: the model's dataset declares no raw-input "
                              "preprocessing, so it cannot predict from files")
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        started = time.perf_counter()
        source = open_input(input, self.preprocessing, id_column)
        target = Path(output).expanduser().absolute()
        if target.is_dir():
            raise ConfigError(f"output {target} is a folder; name a .csv file")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
        listener(events.PredictionStarted(str(source.path), source.total))
        done = 0
        try:
            for batch in source.batches(batch_size):
                try:
                    proba = self.predict_prepared(self.encode(batch.raw))
                except ConfigError as exc:
                    raise ConfigError(f"{source.path}: {exc} (data rows counted from 1 after "
                                      "the header)" if self.preprocessing.input != "images"
                                      else str(exc)) from None
                self._write(partial, batch, source.id_name, proba, header=done == 0)
                done += len(proba)
                listener(events.PredictionProgress(done, source.total))
            if done == 0:
                raise ConfigError(f"{source.path} has no data rows")
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        elapsed = time.perf_counter() - started
        listener(events.PredictionFinished(done, str(target), elapsed))
        return PredictionSummary(done, target, elapsed)

    def _write(self, path: Path, batch: Any, id_name: str | None, proba: np.ndarray,
               header: bool) -> None:
        import pandas as pd

        columns: dict[str, Any] = {id_name: batch.ids} if id_name else {}
        columns.update(self.output.table(proba))
        pd.DataFrame(columns).to_csv(path, mode="w" if header else "a", header=header,
                                     index=False)


# ---- loading ------------------------------------------------------------------------------------


def load(path: str | Path) -> Predictor:
    """Load an export for prediction, in this process, without the experiment or the database.

    Raises:
        ConfigError: not an automl export, one from a newer automl, a plugin file whose digest
            does not match, weights that are not plain tensors, a missing model file.
    """
    from automl.export import MANIFEST_FILE, export_plugin_source, read_manifest
    from automl.plugin_manager import build_plugins

    root = Path(path)
    if not root.exists():
        raise ConfigError(f"no such export: {root}")
    manifest = read_manifest(root)
    plugins = build_plugins(export_plugin_source(root, manifest))
    where = str(root / MANIFEST_FILE)
    prep, dataset = None, None
    if manifest.get("preprocessing"):
        prep = load_preprocessing(manifest["preprocessing"], root, where)
        name = (manifest.get("dataset") or {}).get("name")
        try:
            dataset = plugins.registry.get("dataset", name).create()
        except ConfigError:
            raise ConfigError(f"{where}: the model's dataset '{name}' is not registered by any "
                              "installed plugin; install the plugin that provides it") from None
    from automl.export import spec_from_dict
    from automl.multitask import task_for

    spec = spec_from_dict(manifest["spec"])
    output = TaskOutput(task_for(spec, plugins.registry), spec)
    return Predictor(root, manifest, _runtime(root, manifest, plugins, output), prep, dataset,
                     output)


def _runtime(root: Path, manifest: dict[str, Any], plugins: Any, output: TaskOutput) -> Runtime:
    runtime = manifest.get("runtime") or {"format": "native"}
    form = runtime.get("format")
    if form == "native":
        return _native(root, manifest, plugins, output)
    file = root / str(runtime.get("file"))
    if not file.is_file() or not file.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"{root}: the model file {runtime.get('file')} is missing")
    if form == "torchscript":
        return _torchscript(file)
    if form == "onnx":
        return _onnx(file)
    raise ConfigError(f"{root / 'model.json'}: unknown runtime format '{form}'")


def _native(root: Path, manifest: dict[str, Any], plugins: Any, output: TaskOutput) -> Runtime:
    import torch

    from automl.export import native_module

    module = native_module(root, manifest, plugins)
    logits = manifest.get("output") != "probabilities"

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = module(torch.as_tensor(x)).float()
            return (output.task.predict(y, output.spec).float() if logits else y).numpy()

    return run


def _torchscript(file: Path) -> Runtime:
    import torch

    try:
        module = torch.jit.load(str(file), map_location="cpu").eval()
    except (RuntimeError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot load TorchScript model {file}: {first}") from None

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.as_tensor(x)).float().numpy()

    return run


def _onnx(file: Path) -> Runtime:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"{file} is an ONNX model; install the onnx extra to run it: pip "
                          "install 'automl[onnx]'") from None
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many threads as torch uses
    try:
        session = onnxruntime.InferenceSession(str(file), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        raise ConfigError(f"cannot load ONNX model {file}: {exc}") from None
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run
