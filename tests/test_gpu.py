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


def test_an_fp16_model_runs_and_is_timed_on_cuda():
    """The half-precision quantizer on a CUDA model: the trial measures its latency on CUDA
    (written without a GPU at hand: not yet run, see docs/experiment-yaml.md)."""
    from automl.components import DataSpec
    from automl.space import TrialPlan
    from automl.trial.quantization import measure_device, quantize_model
    from automl_plugins.metrics.latency import measure_latency_ms, timing_device

    registry = load_plugins(autoload=False).registry
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10)).cuda().eval()
    plan = TrialPlan("x", {}, [], None, {}, {}, quantizer="fp16", quantizer_params={})
    done = quantize_model(registry, plan, model, torch.randn(32, 64, device="cuda"), 16)
    assert done.quantizer == "fp16" and measure_device(done) == "cuda"
    assert timing_device(done.model) == "cuda"
    assert measure_latency_ms(done.model, DataSpec("tabular", (64,), 10), 64) > 0
    assert next(done.model.parameters()).device.type == "cuda"  # timed where it is
