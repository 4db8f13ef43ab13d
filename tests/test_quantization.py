"""Quantizers (torch.ao dynamic and static int8): the step after pruning, what a model it cannot
handle records instead, reloading a saved quantized model, and a real search that exports it."""

from __future__ import annotations

import io
import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from automl.components import DataSpec, EvalContext
from automl.config import parse_experiment
from automl.errors import ConfigError
from automl.plugin_manager import load_plugins
from automl.space import TrialPlan, build_space
from automl.store import Store
from automl.trial.artifacts import MODEL_FILE, QUANTIZED_FILE, TRIAL_FILE, _cpu_state
from automl.trial.quantization import example_input, quantize_model, rebuild_quantized
from tests.conftest import write_experiment


@pytest.fixture(scope="module")
def registry():
    return load_plugins(autoload=False).registry


def plan(name: str | None, **params) -> TrialPlan:
    return TrialPlan("x", {}, [], None, {}, {}, quantizer=name, quantizer_params=params)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 10)).eval()


def reloaded(registry, name, params, float_model, quantized, spec) -> nn.Module:
    """What an export does: rebuild from the float model, load the saved int8 state."""
    buffer = io.BytesIO()
    torch.save(_cpu_state(quantized), buffer)
    buffer.seek(0)
    rebuilt = rebuild_quantized(registry, name, params, float_model, example_input(spec))
    rebuilt.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    return rebuilt


@pytest.mark.parametrize("name, build, shape", [
    ("dynamic_int8", mlp, (64,)), ("static_int8", cnn, (1, 8, 8)), ("static_int8", mlp, (64,))])
def test_a_quantized_model_predicts_like_its_float_model_and_reloads_exactly(
        registry, name, build, shape) -> None:
    model = build()
    x = torch.randn(256, *shape, generator=torch.Generator().manual_seed(1))
    done = quantize_model(registry, plan(name, calibration_batches=4), model, x, 64)
    assert done.quantizer == name and done.skipped is None and done.device == "cpu"
    with torch.no_grad():
        expected = torch.softmax(model(x), 1)
        got = torch.softmax(done.model(x), 1)
    assert (got - expected).abs().max() < 0.05  # int8 rounding, not another model
    spec = DataSpec("image" if len(shape) == 3 else "tabular", shape, 10)
    again = reloaded(registry, name, {"calibration_batches": 4}, model, done.model, spec)
    with torch.no_grad():
        assert torch.equal(again(x), done.model(x))
    # the size metrics count the quantized model's weights as the float model's
    metrics = {e.name: e for e in registry if e.kind == "metric"}
    params = metrics["params"].create()
    counted = params.compute(EvalContext(np.empty(0), np.empty(0), done.model, spec, "val"))
    float_count = params.compute(EvalContext(np.empty(0), np.empty(0), model, spec, "val"))
    if name == "dynamic_int8":
        assert counted == float_count
    else:  # batch norm is folded into the convolution before it
        assert float_count - 32 <= counted <= float_count


def test_int8_weights_take_about_a_quarter_of_the_bytes(registry) -> None:
    def saved(model: nn.Module) -> int:
        buffer = io.BytesIO()
        torch.save(_cpu_state(model), buffer)
        return buffer.getbuffer().nbytes

    big = nn.Sequential(nn.Flatten(), nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512),
                        nn.ReLU(), nn.Linear(512, 10)).eval()
    done = quantize_model(registry, plan("dynamic_int8"), big, torch.randn(8, 64), 8)
    assert saved(done.model) < 0.3 * saved(big)


class Branchy(nn.Module):
    """Data-dependent control flow: FX graph mode cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.linear(x)
        return -self.linear(x)


def test_a_model_a_quantizer_cannot_handle_keeps_float32_with_the_reason(registry) -> None:
    x = torch.randn(32, 4)
    model = Branchy().eval()
    done = quantize_model(registry, plan("static_int8", calibration_batches=2), model, x, 16)
    assert done.quantizer is None and done.model is model
    assert done.skipped.startswith("quantizer 'static_int8': FX graph mode cannot trace")
    convs = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()).eval()
    done = quantize_model(registry, plan("dynamic_int8"), convs, torch.randn(4, 1, 5, 5), 2)
    assert done.skipped == ("quantizer 'dynamic_int8': the model has no Linear, LSTM or GRU "
                            "layer for dynamic int8")
    tokens = torch.ones(8, 5, dtype=torch.int64)
    embed = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(20, 2)).eval()
    done = quantize_model(registry, plan("static_int8", calibration_batches=1), embed, tokens, 4)
    assert done.skipped == "quantizer 'static_int8': the inputs are token ids, not float activations"
    assert quantize_model(registry, plan(None), model, x, 16).model is model


BASE = """
name: q
dataset: digits
architecture: [mlp, cnn]
"""


def test_quantization_is_a_searched_step_with_none_allowed(registry) -> None:
    space = build_space(parse_experiment(
        BASE + "quantization: {dynamic_int8: {}, static_int8: {calibration_batches: [4, 8]}, "
               "none: {}}"), registry)
    rows = dict(space.rows())
    assert rows["quantization"] == "one of 'dynamic_int8', 'static_int8', 'none'"
    assert rows["quantization.static_int8.calibration_batches"] == "one of 4, 8"
    flat = {"architecture": "mlp", "quantization": "static_int8",
            "quantization.static_int8.calibration_batches": 4}
    parsed = TrialPlan.from_flat(flat)
    assert (parsed.quantizer, parsed.quantizer_params) == ("static_int8",
                                                           {"calibration_batches": 4})
    assert TrialPlan.from_flat({"architecture": "mlp", "quantization": "none"}).quantizer is None
    assert "quantization" not in dict(build_space(parse_experiment(BASE), registry).rows())


@pytest.mark.parametrize("section, path, message", [
    ("quantization: {dynamic_int9: {}}", "quantization.dynamic_int9", "did you mean 'dynamic_int8'"),
    ("quantization: {static_int8: {batches: 4}}", "quantization.static_int8.batches",
     "calibration_batches"),
    ("quantization: {none: {x: 1}}", "quantization.none", "takes no parameters"),
    ("quantization: [static_int8]\nvalidation: {kfold: {folds: 3}}", "quantization",
     "k-fold"),
])
def test_bad_quantization_sections_name_their_field(registry, section, path, message) -> None:
    with pytest.raises(ConfigError) as info:
        build_space(parse_experiment(BASE + section), registry)
    assert path in str(info.value) and message in str(info.value), str(info.value)


EXPERIMENT = """
name: quantized
seed: 1
dataset: digits
architecture:
  cnn: {channels: 16, depth: 2, kernel: 3}
  mlp: {depth: 1, width: 64}
quantization: [dynamic_int8, static_int8, none]
training: {epochs: 2, fine_tune_epochs: 0}
search: {num_trials: 6, max_concurrent: 2, early_stopping: none, sampler: random}
ensemble: false
"""


@pytest.mark.slow
def test_a_search_with_quantization_saves_reloads_and_exports_the_quantized_model(
        in_tmp: Path, automl_cmd: list[str]) -> None:
    path = write_experiment(in_tmp, textwrap.dedent(EXPERIMENT))
    out = subprocess.run([*automl_cmd, "run", str(path)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    exp = Store("sqlite:///automl.db").experiment("quantized")
    quantized = 0
    for trial in exp.trials:
        checkpoint = Path(trial.checkpoint)
        record = json.loads((checkpoint / TRIAL_FILE).read_text())
        name = record["plan"]["quantizer"]
        assert name == (None if trial.params["quantization"] == "none"
                        else trial.params["quantization"])
        if name is None:
            assert not (checkpoint / QUANTIZED_FILE).exists()
            assert "model/quantized" not in trial.metrics
            continue
        quantized += 1
        assert trial.metrics["model/quantized"] == 1.0
        # the deployed size is the int8 state's (for models this small, per-tensor overhead
        # outweighs the int8 weights: test_int8_weights_take_a_quarter_of_the_bytes)
        assert trial.metrics["model/saved_bytes"] == (checkpoint / QUANTIZED_FILE).stat().st_size
        assert (checkpoint / MODEL_FILE).is_file()  # the float weights rebuild its structure
    assert quantized, "the seed gives quantized trials"
    best = next(t for t in exp.trials if t.number == exp.evaluation.best().trial)
    test_accuracy = exp.evaluation.best().metrics["test/accuracy"]
    for number in sorted({best.number, *(t.number for t in exp.trials
                                          if t.params["quantization"] != "none")})[:2]:
        for fmt in ("native", "torchscript"):
            target = in_tmp / f"export-{number}-{fmt}"
            done = subprocess.run([*automl_cmd, "export", "quantized", "--trial", str(number),
                                   "--out", str(target), "--format", fmt],
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
            assert "max abs prediction difference from the eager model 0" in done.stdout
            assert "Warning" not in done.stderr
            if number == best.number:
                assert f"test/accuracy {test_accuracy:.4g}" in done.stdout
    number = next(t.number for t in exp.trials if t.params["quantization"] != "none")
    refused = subprocess.run([*automl_cmd, "export", "quantized", "--trial", str(number),
                              "--out", str(in_tmp / "onnx"), "--format", "onnx"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--format onnx cannot hold a torch.ao quantized model" in refused.stdout + refused.stderr
    assert not (in_tmp / "onnx").exists()


# ---- half precision (fp16) ------------------------------------------------------------------

def test_fp16_on_a_cpu_trial_keeps_float32_with_the_reason(registry) -> None:
    """Without CUDA the trial's model is on the CPU: fp16 is not applied, never an error."""
    model = mlp()
    done = quantize_model(registry, plan("fp16"), model, torch.randn(32, 64), 16)
    assert done.quantizer is None and done.model is model and done.device is None
    assert done.skipped == ("quantizer 'fp16': half precision needs a CUDA device; this trial's "
                            "model is on the cpu (float16 on the CPU is slower than float32)")


def test_an_fp16_checkpoint_halves_the_model_and_reloads_as_an_export_rebuilds_it(
        registry, tmp_path: Path) -> None:
    """The conversion a CUDA trial makes, run on the CPU's float16 kernels: the saved state is
    half the float one, and the export's rebuild (``automl.export.build_model``: the float
    architecture, then the fp16 structure with the saved float16 state) predicts as the
    converted model did, close to the float model."""
    from automl.export import build_model
    from automl.trial.artifacts import write_trial_artifacts

    spec = DataSpec("tabular", (64,), 10)
    params = {"depth": 2, "width": 256, "dropout": 0.0, "activation": "relu"}
    torch.manual_seed(0)
    task = registry.create("task", "classification")
    float_model = task.wrap(registry.create("architecture", "mlp").build(params, spec), spec,
                            {}).eval()
    half = registry.create("quantizer", "fp16").quantize(float_model, {}, [])
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    assert {p.dtype for p in float_model.parameters()} == {torch.float32}  # a copy was halved
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = half(x)
        expected = float_model(x)
    assert got.dtype == torch.float32  # float32 in and out
    assert (torch.softmax(got, 1) - torch.softmax(expected, 1)).abs().max() < 5e-3
    write_trial_artifacts(tmp_path, float_model, {"val_proba": np.zeros((1, 10), np.float32)},
                          {}, half)
    sizes = {f: (tmp_path / f).stat().st_size for f in (MODEL_FILE, QUANTIZED_FILE)}
    assert sizes[QUANTIZED_FILE] < 0.55 * sizes[MODEL_FILE]
    entry = {"architecture": "mlp", "architecture_params": params, "params": {},
             "quantizer": "fp16", "quantizer_params": {}}
    rebuilt = build_model(registry, entry, spec, tmp_path / MODEL_FILE)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), got)


@pytest.mark.slow
def test_a_cpu_search_with_fp16_completes_and_records_why_it_stayed_float32(
        in_tmp: Path) -> None:
    import automl

    path = write_experiment(in_tmp, textwrap.dedent("""
        name: half
        dataset: digits
        architecture: {mlp: {depth: 1, width: 32}}
        quantization: [fp16]
        training: {epochs: 1, fine_tune_epochs: 0}
        search: {num_trials: 1, early_stopping: none}
        ensemble: false
        """))
    result = automl.run(str(path))
    assert result.status == "completed"
    (trial,) = result.trials
    assert trial.status == "completed" and trial.metrics["model/quantized"] == 0.0
    record = json.loads((Path(trial.checkpoint) / TRIAL_FILE).read_text())
    assert record["not_applied"] == [
        "quantizer 'fp16': half precision needs a CUDA device; this trial's model is on the cpu "
        "(float16 on the CPU is slower than float32)"]
    assert not (Path(trial.checkpoint) / QUANTIZED_FILE).exists()
