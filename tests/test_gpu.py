"""GPU paths: device selection, AMP training, augmentations and pruning on CUDA.

Skipped on machines without CUDA (CI); run on a GPU machine to check the CUDA path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl.data import prepare_data
from automl.config import parse_experiment
from automl.plugin_manager import load_plugins
from automl.trial.device import select_device
from automl.trial.training import Trainer, make_optimizer, predict_proba

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_cuda_amp_training_with_augmentations_and_pruning():
    plugins = load_plugins(autoload=False)
    registry = plugins.registry
    config = parse_experiment("name: g\ndataset: digits\narchitecture: cnn\n")
    data = prepare_data(config, registry)
    device = select_device(gpus=0.5, cpus=1, amp=True)
    assert device.device == "cuda" and device.amp
    model = registry.create("architecture", "cnn").build(
        {"channels": 32, "depth": 2, "kernel": 3, "dropout": 0.1}, data.spec).cuda()
    generator = torch.Generator(device="cuda").manual_seed(0)
    training = {"lr": 3e-3, "batch_size": 64, "optimizer": "adam", "weight_decay": 0.0,
                "momentum": 0.9, "label_smoothing": 0.0}
    augs = [(registry.create("augmentation", "shift"), {"max_shift": 1, "p": 0.5}),
            (registry.create("augmentation", "noise"), {"std": 0.05})]
    trainer = Trainer(model, torch.as_tensor(data.x_train).cuda(),
                      torch.as_tensor(data.y_train).cuda(),
                      registry.create("task", data.spec.task), data.spec, training, augs, device,
                      generator)
    optimizer = make_optimizer(model, training)
    for _ in range(6):
        trainer.epoch(optimizer)
    proba = predict_proba(model, torch.as_tensor(data.x_val).cuda(), 512, amp=True)
    assert proba.device.type == "cuda"
    accuracy = float((proba.argmax(1).cpu().numpy() == data.y_val).mean())
    assert accuracy > 0.9

    pruner = registry.create("pruner", "magnitude")
    model = pruner.finalize(pruner.prune(model, {"ratio": 0.5}))
    weights = torch.cat([m.weight.flatten() for m in model.modules()
                         if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))])
    assert np.isclose(float((weights == 0).float().mean()), 0.5, atol=0.01)
