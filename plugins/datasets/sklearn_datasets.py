"""Small real datasets shipped with scikit-learn: digits (8x8 images), breast_cancer, wine
(classification) and diabetes (regression)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples, ParamDef
from automl.params import Fixed
from automl.preprocessing import Preprocessing, table_values
from automl_plugins.datasets.tabular_file import multi_target_examples, parse_targets

LABEL = "target"  # the column a raw table of these datasets may hold the class in


class Digits(Dataset):
    name = "digits"
    description = "scikit-learn handwritten digits: 1797 grey 8x8 images, 10 classes"
    kind: ClassVar[str] = "image"

    def load(self, params: dict[str, Any]) -> Examples:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # N x 1 x 8 x 8 in [0, 1]
        spec = DataSpec("image", (1, 8, 8), 10, tuple(str(c) for c in bunch.target_names))
        return Examples(x, bunch.target.astype(np.int64), spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: a table of the 64 pixel values 0..16, columns as scikit-learn names them
        (``pixel_0_0`` .. ``pixel_7_7``, row-major), like ``load_digits(as_frame=True)``."""
        from sklearn.datasets import load_digits

        columns = [str(c) for c in load_digits().feature_names]
        return Preprocessing("table", {"columns": columns, "label_column": LABEL,
                                       "pixel_max": 16.0, "shape": [1, 8, 8]})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        settings = preprocessing.settings
        pixels = table_values(raw, settings["columns"], np.float64) / settings["pixel_max"]
        return pixels.astype(np.float32).reshape(-1, *settings["shape"])


class _SklearnTable(Dataset):
    loader: ClassVar[str]
    kind: ClassVar[str] = "tabular"
    params = {
        "targets": ParamDef(Fixed(None), (dict, type(None)), (
            "several targets learned together, from the columns (the class is column "
            "'target'): {name: {column: C, task: T}}; each target column leaves the features")),
        "drop_columns": ParamDef(Fixed(None), (list, type(None)),
                                 "feature columns left out (with targets)"),
    }

    def task_name(self, params: dict[str, Any]) -> str:
        return "multitask" if params.get("targets") is not None else "classification"

    def target_tasks(self, params: dict[str, Any]) -> dict[str, str]:
        if params.get("targets") is None:
            return {}
        return {name: task for name, (_, task) in parse_targets(params["targets"]).items()}

    def load(self, params: dict[str, Any]) -> Examples:
        import sklearn.datasets

        if params.get("targets") is not None:
            frame = getattr(sklearn.datasets, self.loader)(as_frame=True).frame
            return multi_target_examples(frame, parse_targets(params["targets"]),
                                         self._features(params), f"scikit-learn {self.name}")
        bunch = getattr(sklearn.datasets, self.loader)()
        x = bunch.data.astype(np.float32)  # standardised on the train split by automl.data
        spec = DataSpec("tabular", (x.shape[1],), len(bunch.target_names),
                        tuple(str(c) for c in bunch.target_names))
        return Examples(x, bunch.target.astype(np.int64), spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: a table with scikit-learn's feature names as columns (``as_frame=True``)."""
        return Preprocessing("table", {"columns": self._features(params), "label_column": LABEL})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        return table_values(raw, preprocessing.settings["columns"])

    def _features(self, params: dict[str, Any]) -> list[str]:
        """scikit-learn's feature names, less the target and dropped columns (with ``targets``)."""
        import sklearn.datasets

        columns = [str(c) for c in getattr(sklearn.datasets, self.loader)().feature_names]
        if params.get("targets") is None:
            return columns
        used = {c for names, _ in parse_targets(params["targets"]).values() for c in names}
        used |= set(params.get("drop_columns") or ())
        return [c for c in columns if c not in used]


class BreastCancer(_SklearnTable):
    name = "breast_cancer"
    description = "scikit-learn breast cancer Wisconsin: 569 rows, 30 features, 2 classes"
    loader = "load_breast_cancer"


class Wine(_SklearnTable):
    name = "wine"
    description = "scikit-learn wine: 178 rows, 13 features, 3 classes"
    loader = "load_wine"


class Diabetes(Dataset):
    name = "diabetes"
    description = ("scikit-learn diabetes: 442 rows, 10 features, one continuous target (disease "
                   "progression after one year)")
    kind: ClassVar[str] = "tabular"

    def task_name(self, params: dict[str, Any]) -> str:
        return "regression"

    def load(self, params: dict[str, Any]) -> Examples:
        from sklearn.datasets import load_diabetes

        bunch = load_diabetes()
        x = bunch.data.astype(np.float32)  # standardised on the train split by automl.data
        spec = DataSpec("tabular", (x.shape[1],), 0, task="regression",
                        target_names=("progression",),
                        extra={"feature_columns": list(bunch.feature_names)})
        return Examples(x, bunch.target.astype(np.float32), spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: a table with scikit-learn's feature names as columns (``as_frame=True``;
        the scaled values scikit-learn ships, not the original units)."""
        from sklearn.datasets import load_diabetes

        return Preprocessing("table", {"columns": [str(c) for c in load_diabetes().feature_names],
                                       "label_column": LABEL})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        return table_values(raw, preprocessing.settings["columns"])


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(Digits)
    registrar.add(BreastCancer)
    registrar.add(Wine)
    registrar.add(Diabetes)
