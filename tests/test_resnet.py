"""The built-in ResNet architecture: shapes, size and real training on digits."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from automl.components import DataSpec
from automl.config import parse_experiment
from automl.data import prepare_data
from automl.plugin_manager import BUILTIN_PLUGINS, load_plugins
from automl.trial.device import DevicePlan
from automl.trial.training import Trainer, make_optimizer, predict_proba

MODULE = "automl_plugins.architectures.resnet"


@pytest.fixture(scope="module")
def registry():
    return load_plugins([MODULE] if MODULE not in BUILTIN_PLUGINS else [],
                        autoload=False).registry


def build(registry, spec, **params):
    return registry.create("architecture", "resnet").build(
        {"blocks": 2, "width": 16, "dropout": 0.0, **params}, spec)


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_for_images(registry):
    entry = registry.get("architecture", "resnet")
    assert entry.plugin == MODULE
    assert entry.cls.data_kinds == ("image",)
    assert set(entry.cls.params) == {"blocks", "width", "dropout"}


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 5, 7)])
@pytest.mark.parametrize("blocks", [1, 4])
def test_output_shape(registry, shape, blocks):
    model = build(registry, DataSpec("image", shape, 7), blocks=blocks).eval()
    with torch.no_grad():
        assert model(torch.randn(3, *shape)).shape == (3, 7)


def test_downsamples_while_the_image_is_at_least_4_pixels(registry):
    model = build(registry, DataSpec("image", (1, 8, 8), 10), blocks=4)
    sizes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
             for m in model if type(m).__name__ == "BasicBlock"]
    model.eval()(torch.randn(2, 1, 8, 8))
    for hook in hooks:
        hook.remove()
    assert sizes == [(16, 8, 8), (32, 4, 4), (64, 2, 2), (64, 2, 2)]


def test_param_count_grows_with_width_and_blocks(registry):
    spec = DataSpec("image", (3, 32, 32), 10)
    widths = [count(build(registry, spec, width=w)) for w in (16, 32, 64)]
    assert widths == sorted(widths) and len(set(widths)) == 3
    assert count(build(registry, spec, blocks=3)) > count(build(registry, spec, blocks=2))


def test_model_pickles(registry):
    model = build(registry, DataSpec("image", (1, 8, 8), 10))
    copy = pickle.loads(pickle.dumps(model))
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(copy.eval()(x), model.eval()(x))


def test_trains_on_digits(registry):
    torch.manual_seed(0)
    config = parse_experiment("name: t\ndataset: digits\narchitecture: cnn\n")
    data = prepare_data(config, registry)
    model = build(registry, data.spec, blocks=2, width=16, dropout=0.1)
    training = {"lr": 3e-3, "weight_decay": 1e-5, "optimizer": "adam", "momentum": 0.9,
                "batch_size": 32, "label_smoothing": 0.0}
    trainer = Trainer(model, torch.as_tensor(data.x_train), torch.as_tensor(data.y_train),
                      registry.create("task", data.spec.task), data.spec, training, [], DevicePlan("cpu", False, 1),
                      torch.Generator().manual_seed(0))
    optimizer = make_optimizer(model, training)
    losses = [trainer.epoch(optimizer) for _ in range(3)]
    assert losses[-1] < losses[0]
    proba = predict_proba(model, torch.as_tensor(data.x_val), 512).numpy()
    accuracy = float(np.mean(proba.argmax(axis=1) == data.y_val))
    assert accuracy > 0.8
