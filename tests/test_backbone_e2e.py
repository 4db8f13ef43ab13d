"""A pretrained backbone fine-tuned on an image folder, run as a user runs it: digits written as
PNG files, ResNet-18 weights in a local folder (a fresh init standing in for torchvision's
pretrained weights, which cannot be downloaded here), the same search with the weights and
without (from scratch) side by side: the same seed samples the same configurations, so each
pretrained trial has a scratch twin. Then an export predicts on raw image files without the
weights folder. A missing weights file is one clear error before Ray starts."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import unavailable

pytestmark = pytest.mark.slow

EXPERIMENT = """\
name: {name}
seed: 0
dataset: {{name: image_folder, params: {{path: imgs, size: 8, grayscale: true}}}}
architecture:
  backbone:
    weights: {weights}      # a folder of <backbone>.pth files; null: from scratch
    frozen_epochs: {{low: 0, high: 1}}
training: {{epochs: 2, fine_tune_epochs: 0, lr: 0.003, optimizer: adamw, batch_size: 32}}
search: {{num_trials: 2, sampler: random, early_stopping: none, max_concurrent: 2}}
"""


@pytest.fixture
def image_folder(in_tmp: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    if importlib.util.find_spec("torchvision") is None:
        unavailable("torchvision is not installed (the vision extra)")
    bunch = load_digits()
    for digit in range(3):
        for i in np.flatnonzero(bunch.target == digit)[:30]:
            folder = in_tmp / "imgs" / f"digit{digit}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (bunch.images[i] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    return in_tmp


def run(automl_cmd, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*automl_cmd, *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def test_pretrained_and_scratch_side_by_side_then_predict_on_image_files(image_folder,
                                                                          automl_cmd):
    import torch

    from automl_plugins.architectures.backbone_zoo import torchvision_models

    root = image_folder
    (root / "weights").mkdir()
    torch.manual_seed(0)
    torch.save(torchvision_models().resnet18(weights=None).state_dict(),
               root / "weights" / "resnet18.pth")
    for name, weights in (("bb", "weights"), ("scratch", "null")):
        (root / f"{name}.yaml").write_text(EXPERIMENT.format(name=name, weights=weights))
        done = run(automl_cmd, "run", f"{name}.yaml", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr

    def trials(name: str) -> list[dict]:
        shown = run(automl_cmd, "show", name, "--json", cwd=root)
        assert shown.returncode == 0, shown.stderr
        found = json.loads(shown.stdout)["trials"]
        assert len(found) == 2 and all(t["status"] == "completed" for t in found)
        return sorted(found, key=lambda t: t["number"])

    key = "architecture.backbone.weights"
    for pretrained, scratch in zip(trials("bb"), trials("scratch")):
        assert Path(pretrained["params"][key]) == root / "weights" and \
            scratch["params"][key] is None
        assert {k: v for k, v in pretrained["params"].items() if k != key} == \
            {k: v for k, v in scratch["params"].items() if k != key}  # twins
        assert pretrained["metrics"]["val/log_loss"] != scratch["metrics"]["val/log_loss"]

    # a trial that started from the weights predicts on raw image files, and its export does
    # not need the weights any more
    first = run(automl_cmd, "export", "bb", "--out", "with", "--trial", "1", cwd=root)
    assert first.returncode == 0, first.stdout + first.stderr
    shutil.rmtree(root / "weights")
    got = predict(automl_cmd, root / "with", root / "imgs", root)
    assert len(got) == len(list((root / "imgs").rglob("*.png")))
    assert set(got["prediction"]) <= {"digit0", "digit1", "digit2"}


def predict(automl_cmd, export: Path, source: Path, root: Path) -> pd.DataFrame:
    elsewhere = root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    out = elsewhere / f"{export.name}.csv"
    done = run(automl_cmd, "predict", str(export), str(source), "-o", str(out), cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    return pd.read_csv(out)


def test_a_missing_weights_file_is_one_error_before_the_search(image_folder, automl_cmd):
    root = image_folder
    (root / "exp.yaml").write_text(EXPERIMENT.format(name="nofile", weights="absent/r18.pth"))
    done = run(automl_cmd, "run", "exp.yaml", cwd=root)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    assert "architecture.backbone.weights" in done.stderr
    assert f"no weights file {root / 'absent' / 'r18.pth'}" in done.stderr
    assert "automl_plugins.architectures.backbone" in done.stderr
    # embedded Ray starts while the data loads and the models are checked; nothing is written
    assert "trial running" not in done.stdout
    assert not (root / "automl.db").exists()
