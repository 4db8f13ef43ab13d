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
from automl.trial.quantization import (
    Quantized, example_input, measure_device, quantization_facts, quantize_model, quantize_models,
    rebuild_quantized,
)
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


# ---- k-fold trials: every fold model quantized, all or none ------------------------------------

def test_each_fold_model_is_calibrated_on_its_own_rows(registry) -> None:
    """Static int8 observes activation ranges on the rows each model trained on: the same float
    model calibrated on rows ten times wider gets ten times wider input quantization scales."""
    rows = torch.randn(64, 64, generator=torch.Generator().manual_seed(3))
    done = quantize_models(registry, plan("static_int8", calibration_batches=2), [mlp(), mlp()],
                           [rows, 10 * rows], 32)
    assert [d.quantizer for d in done] == ["static_int8"] * 2
    # the input's quantization scale: the first buffer named "<node>_scale_0" FX inserted
    scales = [float(next(v for k, v in d.model.state_dict().items() if k.endswith("_scale_0")))
              for d in done]
    assert scales[1] == pytest.approx(10 * scales[0], rel=1e-3)


def test_a_fold_model_the_quantizer_cannot_handle_keeps_every_fold_float(registry) -> None:
    """All or none: the second model has no calibration rows, so no model of the trial is
    quantized and each result carries that reason (the trial records it under not_applied)."""
    models = [mlp(), mlp(), mlp()]
    rows = torch.randn(32, 64)
    done = quantize_models(registry, plan("static_int8", calibration_batches=2), models,
                           [rows, rows[:0], rows], 16)
    assert [d.model for d in done] == models and {d.quantizer for d in done} == {None}
    assert {d.skipped for d in done} == {"quantizer 'static_int8': no calibration batch"}
    with pytest.raises(ValueError):  # one calibration set per model
        quantize_models(registry, plan("dynamic_int8"), models, [rows], 16)


@pytest.mark.parametrize("name", ["dynamic_int8", "static_int8"])
def test_a_quantized_fold_ensemble_reloads_as_the_trial_saved_it(registry, tmp_path: Path,
                                                                 name: str) -> None:
    """A k-fold trial's checkpoint: the float fold ensemble in model.pt, the ensemble of its
    separately quantized fold models in quantized.pt; the export's rebuild (per fold model, then
    combined) loads it with weights_only and predicts exactly as the trial's ensemble."""
    from automl.export import build_model
    from automl.trial.artifacts import write_trial_artifacts
    from automl.weighted_models import weighted_models

    spec = DataSpec("tabular", (64,), 10)
    params = {"depth": 1, "width": 32, "dropout": 0.0, "activation": "relu"}
    task = registry.create("task", "classification")
    torch.manual_seed(0)
    floats = [task.wrap(registry.create("architecture", "mlp").build(params, spec), spec,
                        {}).eval() for _ in range(3)]
    rows = torch.randn(96, 64, generator=torch.Generator().manual_seed(4))
    done = quantize_models(registry, plan(name, calibration_batches=2), floats,
                           [rows[:64], rows[32:], rows[16:80]], 16)
    assert {d.quantizer for d in done} == {name}
    thirds = [1 / 3] * 3
    trial_ensemble = weighted_models([d.model for d in done], thirds, task, spec).eval()
    write_trial_artifacts(tmp_path, weighted_models(floats, thirds, task, spec),
                          {"val_proba": np.zeros((1, 10), np.float32)}, {}, trial_ensemble)
    entry = {"architecture": "mlp", "architecture_params": params, "params": {}, "folds": 3,
             "quantizer": name, "quantizer_params": {"calibration_batches": 2}}
    rebuilt = build_model(registry, entry, spec, tmp_path / MODEL_FILE)
    x = torch.randn(50, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), trial_ensemble(x))


def test_kfold_with_quantization_is_a_valid_experiment(registry) -> None:
    space = build_space(parse_experiment(
        BASE + "quantization: [static_int8, none]\nvalidation: {kfold: {folds: 3}}"), registry)
    assert dict(space.rows())["quantization"] == "one of 'static_int8', 'none'"


# ---- where the final model runs, and its latency is measured -----------------------------------

def test_the_model_metrics_are_measured_where_the_quantized_model_runs() -> None:
    model = mlp()
    assert measure_device(Quantized(model)) == "cpu"  # float: the CPU, whatever trained it
    assert measure_device(Quantized(model, "dynamic_int8", None, "cpu")) == "cpu"
    assert measure_device(Quantized(model, "fp16", None, "cuda")) == "cuda"
    assert measure_device(Quantized(model, None, "quantizer 'fp16': needs CUDA")) == "cpu"
    assert quantization_facts(plan(None), Quantized(model), "cpu") == {}
    assert quantization_facts(plan("fp16"), Quantized(model, "fp16", None, "cuda"), "cuda") == {
        "model/quantized": 1.0, "model/on_cuda": 1.0}
    assert quantization_facts(plan("fp16"), Quantized(model, None, "why"), "cpu") == {
        "model/quantized": 0.0, "model/on_cuda": 0.0}


class _ReportsDevice(nn.Module):
    """A module whose parameters report ``device`` (no CUDA is needed to ask where it is)."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.where = torch.device(device)

    def parameters(self, recurse: bool = True):  # type: ignore[override]
        return iter([type("P", (), {"device": self.where})()])


def test_latency_is_timed_on_the_device_the_model_is_on() -> None:
    from automl_plugins.metrics.latency import measure_latency_ms, timing_device

    assert timing_device(mlp()) == "cpu"
    assert timing_device(nn.Sequential()) == "cpu"  # no parameters: the CPU
    assert timing_device(_ReportsDevice("cuda")) == "cuda"
    assert timing_device(_ReportsDevice("cpu")) == "cpu"
    buffered = nn.Module()
    buffered.register_buffer("b", torch.zeros(1, device="meta"))
    assert timing_device(buffered) == "cpu"  # only CUDA is timed off the CPU
    threads = torch.get_num_threads()
    assert measure_latency_ms(mlp(), DataSpec("tabular", (64,), 10), 1) > 0
    assert torch.get_num_threads() == threads


def test_show_says_where_a_quantized_model_runs() -> None:
    from automl.cli.render import _quantization
    from automl.store.store import TrialRecord, TrialStatus

    def shown(choice: str, metrics: dict[str, float]) -> str:
        return _quantization(TrialRecord(1, TrialStatus.COMPLETED, {"quantization": choice},
                                         metrics))

    assert shown("fp16", {"model/quantized": 1.0, "model/on_cuda": 1.0}) == "fp16 (cuda)"
    assert shown("dynamic_int8", {"model/quantized": 1.0, "model/on_cuda": 0.0}) == \
        "dynamic_int8 (cpu)"
    assert shown("fp16", {"model/quantized": 0.0, "model/on_cuda": 0.0}) == "fp16 (not applied)"
    assert shown("none", {}) == "none"
    assert shown("static_int8", {"model/quantized": 1.0}) == "static_int8"  # recorded before


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
