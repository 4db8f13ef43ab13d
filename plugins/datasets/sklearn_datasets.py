"""Small real datasets shipped with scikit-learn: digits (8x8 images), breast_cancer, wine."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples
from automl.preprocessing import Preprocessing, table_values

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

    def load(self, params: dict[str, Any]) -> Examples:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, self.loader)()
        x = bunch.data.astype(np.float32)  # standardised on the train split by automl.data
        spec = DataSpec("tabular", (x.shape[1],), len(bunch.target_names),
                        tuple(str(c) for c in bunch.target_names))
        return Examples(x, bunch.target.astype(np.int64), spec)

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: a table with scikit-learn's feature names as columns (``as_frame=True``)."""
        import sklearn.datasets

        columns = [str(c) for c in getattr(sklearn.datasets, self.loader)().feature_names]
        return Preprocessing("table", {"columns": columns, "label_column": LABEL})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        return table_values(raw, preprocessing.settings["columns"])


class BreastCancer(_SklearnTable):
    name = "breast_cancer"
    description = "scikit-learn breast cancer Wisconsin: 569 rows, 30 features, 2 classes"
    loader = "load_breast_cancer"


class Wine(_SklearnTable):
    name = "wine"
    description = "scikit-learn wine: 178 rows, 13 features, 3 classes"
    loader = "load_wine"


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(Digits)
    registrar.add(BreastCancer)
    registrar.add(Wine)
