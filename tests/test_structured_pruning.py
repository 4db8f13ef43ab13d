"""The `structured` pruner and reloading structurally pruned checkpoints (automl.model_io).

Real components only: the registry's MLP and CNN trained on digits, real fine-tuning, real
artifact files.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import automl.config
from automl.data import prepare_data
from automl.errors import PluginError
from automl.model_io import load_state_dict_resizing, saved_size_bytes
from automl.plugin_manager import load_plugins
from automl.testing import PrunerConformance
from automl.trial.artifacts import read_state_dict, write_trial_artifacts
from automl.trial.training import predict_proba, train_on_cpu
from automl_plugins.metrics.latency import median_forward_ms
from automl_plugins.pruners.structured import StructuredL1, find_groups, prune_channels

TRAINING = {"lr": 3e-3, "batch_size": 64, "optimizer": "adam", "weight_decay": 1e-4,
            "momentum": 0.9, "label_smoothing": 0.0}
ARCHS = {
    "cnn": {"channels": 64, "depth": 2, "kernel": 3, "dropout": 0.1},
    "mlp": {"depth": 2, "width": 128, "dropout": 0.1, "activation": "relu"},
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two threads on a shared 2-core machine are slower and far noisier than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registry():
    try:
        plugins = load_plugins(["automl_plugins.pruners.structured"], autoload=False)
    except PluginError:  # once it is a built-in, naming it again is "loaded twice"
        plugins = load_plugins([], autoload=False)
    return plugins.registry


@pytest.fixture(scope="module")
def data(registry):
    config = automl.config.parse_experiment("name: t\ndataset: digits\narchitecture: cnn\n")
    return prepare_data(config, registry)


def build(registry, data, name: str, params: dict | None = None) -> nn.Module:
    torch.manual_seed(0)
    return registry.get("architecture", name).create().build(params or ARCHS[name], data.spec)


def train(model: nn.Module, data, epochs: int, lr_scale: float = 1.0, seed: int = 0) -> nn.Module:
    return train_on_cpu(model, data, TRAINING, epochs, lr_scale, seed)


def accuracy(model: nn.Module, data) -> float:
    proba = predict_proba(model, torch.as_tensor(data.x_test), 1024)
    return float((proba.argmax(1).numpy() == data.y_test).mean())


@pytest.fixture(scope="module")
def trained(registry, data):
    return {name: train(build(registry, data, name), data, epochs=8) for name in ARCHS}


def prune(registry, model: nn.Module, ratio: float, scope: str = "layer") -> nn.Module:
    pruner = registry.create("pruner", "structured")
    model = pruner.prune(model, {"ratio": ratio, "scope": scope})
    return pruner.finalize(model)


# -- the plugin ---------------------------------------------------------------------------------


def test_registered_with_description_and_params(registry):
    entry = registry.get("pruner", "structured")
    assert entry.cls.description
    assert set(entry.cls.params) == {"ratio", "scope"}
    assert entry.cls.params["ratio"].default.high == 0.7
    assert entry.cls.params["scope"].default.options == ("layer", "global")
    with pytest.raises(ValueError, match="ratio"):
        registry.create("pruner", "structured").prune(nn.Linear(2, 2), {"ratio": 1.0})
    with pytest.raises(ValueError, match="scope"):
        registry.create("pruner", "structured").prune(nn.Linear(2, 2),
                                                      {"ratio": 0.5, "scope": "nope"})


class TestConformance(PrunerConformance):
    """The same kit every pruner plugin passes."""

    @pytest.fixture
    def component(self):
        return StructuredL1


# -- the built-in models ------------------------------------------------------------------------


def test_cnn_halves_every_conv_and_fixes_bn_and_classifier(registry, data, trained):
    model = copy.deepcopy(trained["cnn"])
    before = n_params(model)
    pruned = prune(registry, model, 0.5)
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in pruned.modules() if isinstance(m, nn.BatchNorm2d)]
    linear = pruned[-1]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 32), (32, 64)]
    assert [c.weight.shape[:2] for c in convs] == [(32, 1), (64, 32)]
    assert [(n.num_features, n.running_mean.shape[0], n.bias.shape[0]) for n in norms] == [
        (32, 32, 32), (64, 64, 64)]
    assert (linear.in_features, linear.out_features) == (64, 10)  # classifier outputs kept
    expected = (1 * 32 * 9 + 2 * 32) + (32 * 64 * 9 + 2 * 64) + (64 * 10 + 10)
    assert n_params(pruned) == expected
    assert n_params(pruned) / before < 0.3  # conv weights shrink on both sides: ~(1 - 0.5)^2
    x = torch.as_tensor(data.x_test[:7])
    assert pruned(x).shape == (7, 10)


def test_mlp_halves_hidden_layers_only(registry, data, trained):
    model = copy.deepcopy(trained["mlp"])
    pruned = prune(registry, model, 0.5)
    sizes = [(m.in_features, m.out_features) for m in pruned if isinstance(m, nn.Linear)]
    assert sizes == [(64, 64), (64, 64), (64, 10)]
    assert n_params(pruned) == (64 * 64 + 64) + (64 * 64 + 64) + (64 * 10 + 10)
    assert pruned(torch.as_tensor(data.x_test[:3])).shape == (3, 10)


def test_ratio_zero_changes_nothing(registry, trained):
    model = copy.deepcopy(trained["cnn"])
    state = copy.deepcopy(model.state_dict())
    pruned = prune(registry, model, 0.0)
    assert all(torch.equal(state[k], v) for k, v in pruned.state_dict().items())


def test_global_scope_keeps_one_channel_per_layer_and_removes_the_ratio(registry, trained):
    model = copy.deepcopy(trained["cnn"])
    groups = prune_channels(model, 0.7, "global")
    prunable = [g for g in groups if not g.blocked]
    total = sum(g.channels for g in prunable)
    kept = sum(len(g.kept) for g in prunable)
    assert total - kept == int(0.7 * total)
    assert all(len(g.kept) >= 1 for g in prunable)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[1].in_channels == convs[0].out_channels == len(prunable[0].kept)


# -- exactness on constructed layers ------------------------------------------------------------


def test_keeps_exactly_the_highest_l1_channels_and_linear_blocks_after_flatten():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.Flatten(), nn.Linear(6 * 4 * 4, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():  # channel c gets L1 norm proportional to scale[c]
        scale = torch.tensor([3.0, 0.5, 6.0, 1.0, 0.2, 4.0])
        model[0].weight.copy_(torch.ones_like(model[0].weight) * scale[:, None, None, None])
        model[4].weight.copy_(torch.randn(5, 96) * torch.tensor([1.0, 9, 0.1, 3, 2])[:, None])
        model[1].running_mean.copy_(torch.arange(6.0))
    original = copy.deepcopy(model)
    prune_channels(model, 0.5)
    keep = torch.tensor([0, 2, 5])  # the three largest norms, in their original order
    assert torch.equal(model[0].weight, original[0].weight[keep])
    assert torch.equal(model[0].bias, original[0].bias[keep])
    assert torch.equal(model[1].running_mean, torch.tensor([0.0, 2.0, 5.0]))
    blocks = (keep[:, None] * 16 + torch.arange(16)).reshape(-1)  # 16 features per channel
    assert model[4].in_features == 48
    assert torch.equal(model[4].weight, original[4].weight[[1, 3, 4]][:, blocks])  # 2 of 5 go
    assert torch.equal(model[6].weight, original[6].weight[:, [1, 3, 4]])
    assert (model[6].in_features, model[6].out_features) == (3, 3)


def test_global_scope_prunes_where_norms_are_relatively_small_keeping_one_per_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 2))
    with torch.no_grad():
        model[0].weight.mul_(1e-3)[5] = 1.0  # one channel carries layer 0
        model[2].weight.copy_(torch.ones_like(model[2].weight)
                              * torch.linspace(1, 2, 8)[:, None, None, None])
    groups = prune_channels(model, 0.5, "global")  # 8 of the 16 channels go
    assert [g.kept for g in groups if not g.blocked] == [[5], [1, 2, 3, 4, 5, 6, 7]]
    assert (model[0].out_channels, model[2].in_channels, model[2].out_channels) == (1, 1, 7)
    assert model[5].in_features == 7 * 16


def dead_channels(model: nn.Module, conv: int, norm: int, channels: list[int]) -> None:
    """Make the listed output channels of model[conv] exactly zero after its BatchNorm."""
    with torch.no_grad():
        model[conv].weight[channels] = 0
        model[norm].weight[channels] = 0
        model[norm].bias[channels] = 0


def test_pruning_dead_channels_keeps_predictions_cnn(registry, data, trained):
    model = copy.deepcopy(trained["cnn"])  # conv 0 -> bn 1, conv 4 -> bn 5 (64, 128 channels)
    dead_channels(model, 0, 1, list(range(0, 64, 2)))
    dead_channels(model, 4, 5, list(range(1, 128, 2)))
    original = copy.deepcopy(model)
    x = torch.as_tensor(data.x_test)
    with torch.no_grad():
        before = model.eval()(x)
        prune_channels(model, 0.5)
        after = model.eval()(x)
    live0, live4 = list(range(1, 64, 2)), list(range(0, 128, 2))
    assert torch.equal(model[0].weight, original[0].weight[live0])  # exactly the dead ones went
    assert torch.equal(model[4].weight, original[4].weight[live4][:, live0])
    assert torch.equal(model[5].running_var, original[5].running_var[live4])
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_pruning_dead_channels_keeps_predictions_flatten_and_mlp(data, trained):
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * 64, 10)).eval()
    with torch.no_grad():  # non-trivial running statistics
        conv[1].running_mean.uniform_(-1, 1)
        conv[1].running_var.uniform_(0.5, 2)
    dead_channels(conv, 0, 1, [1, 4, 5, 6])
    mlp = copy.deepcopy(trained["mlp"])
    with torch.no_grad():
        for index, neurons in ((1, list(range(64))), (4, list(range(64, 128)))):
            mlp[index].weight[neurons] = 0
            mlp[index].bias[neurons] = 0
    x = torch.as_tensor(data.x_test)
    for model in (conv, mlp):
        with torch.no_grad():
            before = model(x)
            prune_channels(model, 0.5)
            after = model.eval()(x)
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    assert conv[0].out_channels == 4 and conv[5].in_features == 4 * 64
    assert [m.out_features for m in mlp if isinstance(m, nn.Linear)] == [64, 64, 10]


# -- accuracy after fine-tuning -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_short_fine_tune_recovers_accuracy(registry, data, trained, name):
    base = accuracy(trained[name], data)
    pruned = prune(registry, copy.deepcopy(trained[name]), 0.5)
    dropped = accuracy(pruned, data)
    train(pruned, data, epochs=2, lr_scale=0.1, seed=1)  # as the trial's fine-tune does
    tuned = accuracy(pruned, data)
    print(f"\n{name}: unpruned {base:.4f}, pruned 0.5 {dropped:.4f}, fine-tuned {tuned:.4f}")
    assert base > 0.9
    assert tuned >= base - 0.03


# -- models the analysis must not break ---------------------------------------------------------


class Residual(nn.Module):
    """Stem, an identity residual block, a projection block and global pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.a1 = nn.Conv2d(8, 8, 3, padding=1)
        self.a2 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 12, 3, padding=1)
        self.b2 = nn.Conv2d(12, 12, 3, padding=1)
        self.project = nn.Conv2d(8, 12, 1)
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.a2(torch.relu(self.a1(x))))
        x = torch.relu(self.b2(torch.relu(self.b1(x))) + self.project(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def test_residual_model_prunes_both_branches_consistently(data):
    torch.manual_seed(0)
    model = Residual().eval()
    x = torch.as_tensor(data.x_test[:5])
    groups = {tuple(sorted(g.producers)): g for g in find_groups(model)}
    assert ("a2", "stem.0") in groups and ("b2", "project") in groups  # the adds join producers
    prune_channels(model, 0.5)
    assert model.stem[0].out_channels == model.a2.out_channels == model.a1.in_channels == 4
    assert model.stem[1].num_features == 4
    assert model.b2.out_channels == model.project.out_channels == model.head.in_features == 6
    assert model.a1.out_channels == 4 and model.b1.out_channels == 6
    assert model(x).shape == (5, 10)


class Untouchable(nn.Module):
    """Things the analysis must leave alone: an add with the input, cat, a depthwise conv."""

    def __init__(self) -> None:
        super().__init__()
        self.lift = nn.Conv2d(1, 1, 3, padding=1)  # added to the input: input channels are fixed
        self.left = nn.Conv2d(1, 4, 3, padding=1)
        self.right = nn.Conv2d(1, 4, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = x + self.lift(x)
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        return self.head(self.depthwise(x).mean((2, 3)))


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
            x = x * 2
        return self.head(x.mean((2, 3)))


@pytest.mark.parametrize("cls", [Untouchable, Untraceable])
def test_layers_it_cannot_handle_are_left_alone(data, cls):
    torch.manual_seed(0)
    model = cls().eval()
    x = torch.as_tensor(data.x_test[:5])
    state = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        before = model(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prune_channels(model, 0.5)
    if cls is Untraceable:
        assert any("cannot trace" in str(w.message) for w in caught)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)


# -- reloading a pruned checkpoint --------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_save_build_fresh_load_resizing_round_trip(registry, data, trained, name, tmp_path):
    pruned = prune(registry, copy.deepcopy(trained[name]), 0.5).eval()
    write_trial_artifacts(tmp_path, pruned, {"x": np.zeros(1)}, {"params": ARCHS[name]})
    state = read_state_dict(tmp_path)
    fresh = build(registry, data, name)
    with pytest.raises(RuntimeError, match="size mismatch"):
        fresh.load_state_dict(state)
    loaded = load_state_dict_resizing(fresh, state).eval()
    assert [type(m) for m in loaded.modules()] == [type(m) for m in pruned.modules()]
    assert str(loaded) == str(pruned)  # the size attributes were updated too
    x = torch.as_tensor(data.x_test)
    with torch.no_grad():
        assert torch.equal(loaded(x), pruned(x))
    assert saved_size_bytes(loaded) == saved_size_bytes(pruned) < saved_size_bytes(trained[name])


def test_load_resizing_refuses_other_kernel_sizes_and_missing_keys():
    small = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="only channel counts"):
        load_state_dict_resizing(small, nn.Sequential(nn.Conv2d(1, 2, 5),
                                                      nn.BatchNorm2d(2)).state_dict())
    state = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).state_dict()
    del state["1.running_var"]
    with pytest.raises(RuntimeError, match="Missing key"):
        load_state_dict_resizing(small, state)


# -- speed (reported, not asserted) -------------------------------------------------------------


def test_report_batch64_cpu_latency(registry, data, trained):
    model = trained["cnn"]  # channels 64, depth 2
    pruned = prune(registry, copy.deepcopy(model), 0.5).eval()
    x = torch.as_tensor(data.x_test[:64])
    timings = [median_ms(m, x) for m in (model, pruned)]  # one thread (the module's fixture)
    print(f"\ncnn channels 64 depth 2, batch 64, 1 CPU thread: {timings[0]:.2f} ms -> "
          f"{timings[1]:.2f} ms at ratio 0.5 (x{timings[0] / timings[1]:.2f}); params "
          f"{n_params(model)} -> {n_params(pruned)}")


def median_ms(model: nn.Module, x: torch.Tensor, repeats: int = 30) -> float:
    return median_forward_ms(model, x, repeats)


# -- through the real trial ---------------------------------------------------------------------


def test_a_trial_prunes_fine_tunes_and_saves_a_reloadable_checkpoint(registry, data):
    from automl.plugin_manager import plugin_source, rebuild_plugins
    from automl.trial.context import TrialContext
    from automl.trial.trainable import train_and_evaluate

    source = plugin_source(["automl_plugins.pruners.structured"], autoload=False)
    try:
        rebuild_plugins(source)
    except PluginError:  # already a built-in
        source = plugin_source([], autoload=False)
    context = TrialContext(experiment="t", seed=5, plugins=source,
                           objectives=(("accuracy", "max"),),
                           metrics=("accuracy", "params", "nonzero_params"), epochs=2,
                           fine_tune_epochs=1, fine_tune_lr_factor=0.1, amp=False,
                           eval_batch_size=256, cpus=1, gpus=0)
    params = {"channels": 16, "depth": 2, "kernel": 3, "dropout": 0.1}
    config = {"architecture": "cnn", **{f"architecture.cnn.{k}": v for k, v in params.items()},
              "pruning": "structured", "pruning.structured.ratio": 0.5,
              "pruning.structured.scope": "layer", "training.lr": 0.005,
              "training.batch_size": 64, "training.optimizer": "adam",
              "training.weight_decay": 1e-5, "training.momentum": 0.9,
              "training.label_smoothing": 0.0}
    saved = {}

    def report(metrics, directory):
        if directory is not None:
            saved.update(read_state_dict(directory))

    from automl.search_data import separate

    final = train_and_evaluate(config, context, separate(data)[0], report)
    fresh = build(registry, data, "cnn", params)
    assert final["model/params"] < n_params(fresh) / 3
    loaded = load_state_dict_resizing(fresh, saved).eval()
    assert n_params(loaded) == final["model/params"]
    proba = predict_proba(loaded, torch.as_tensor(data.x_val), 1024)
    assert abs(float((proba.argmax(1).numpy() == data.y_val).mean())
               - final["val/accuracy"]) < 1e-9
