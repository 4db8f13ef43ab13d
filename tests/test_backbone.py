"""The pretrained-backbone architecture: weights from local files (written here from a fresh
init), bad weights files, gradual unfreezing and the backbone's learning rate in real training,
and the architecture hooks' contract."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from automl.components import Architecture, DataSpec
from automl.errors import ConfigError, PluginError
from automl.plugin_manager import load_plugins
from automl.trial.architecture_hooks import ArchitectureHooks, optimizer_groups
from automl.trial.device import DevicePlan
from automl.trial.training import Trainer, make_optimizer
from tests.conftest import optional_module, unavailable

if importlib.util.find_spec("torchvision") is None:  # imported through backbone_zoo's shim
    unavailable("torchvision is not installed (the vision extra)")

from automl_plugins.architectures import backbone_zoo  # noqa: E402
from automl_plugins.architectures.backbone import (  # noqa: E402
    PretrainedBackbone, frozen_blocks_at,
)

REGISTRY = load_plugins(autoload=False).registry
SPEC = DataSpec("image", (1, 8, 8), 10, tuple(map(str, range(10))))
BASE = {"backbone": "resnet18", "weights": None, "image_size": 32, "frozen_blocks": 0,
        "frozen_epochs": 0, "backbone_lr_factor": 1.0, "normalize": True}


def build(**params):
    return PretrainedBackbone().build({**BASE, **params}, SPEC)


def save_fresh(name: str, path, seed: int = 1, **kwargs):
    """A torchvision model's whole state dict (classifier included), freshly initialised:
    what a user saves from torchvision's pretrained model, with other numbers."""
    torch.manual_seed(seed)
    models = backbone_zoo.torchvision_models()
    constructor = backbone_zoo.BACKBONES[name].constructor
    model = getattr(models, constructor)(**kwargs) if kwargs else \
        getattr(models, constructor)(weights=None)
    torch.save(model.state_dict(), path)
    return model.state_dict()


def test_unfreezing_schedule():
    # three blocks frozen for two epochs, then one block fewer per epoch
    assert [frozen_blocks_at(e, 3, 2) for e in range(1, 7)] == [3, 3, 2, 1, 0, 0]
    assert [frozen_blocks_at(e, 5, 0) for e in (1, 2, 5, 6)] == [4, 3, 0, 0]
    assert [frozen_blocks_at(e, 0, 3) for e in (1, 4)] == [0, 0]


@pytest.mark.parametrize("name", list(backbone_zoo.BACKBONES))
def test_every_backbone_builds_small_and_splits_into_blocks(name):
    model = build(backbone=name).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 8, 8))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    blocks = {backbone_zoo.block_of(name, k) for k, _ in model.body.named_parameters()}
    assert blocks == set(range(backbone_zoo.BLOCKS)), "every block holds parameters"


@pytest.mark.parametrize("as_folder", [False, True])
def test_loads_weights_from_a_file_or_a_folder(tmp_path, as_folder):
    saved = save_fresh("resnet18", tmp_path / "resnet18.pth")
    model = build(weights=str(tmp_path if as_folder else tmp_path / "resnet18.pth"))
    state = model.body.state_dict()
    assert torch.equal(state["conv1.weight"], saved["conv1.weight"])
    assert torch.equal(state["layer4.1.bn2.running_var"], saved["layer4.1.bn2.running_var"])
    assert model.head.out_features == 10  # the new head, not the file's 1000 classes
    scratch = build()
    assert not torch.equal(scratch.body.state_dict()["conv1.weight"], saved["conv1.weight"])


def test_vit_weights_at_224_load_at_a_smaller_size(tmp_path):
    saved = save_fresh("vit_tiny", tmp_path / "vit.pth", **dict(backbone_zoo.BACKBONES[
        "vit_tiny"].kwargs))
    model = build(backbone="vit_tiny", weights=str(tmp_path / "vit.pth"), image_size=32)
    state = model.body.state_dict()
    assert state["encoder.pos_embedding"].shape == (1, 5, 192)  # 2 x 2 patches + class token
    assert torch.equal(state["encoder.pos_embedding"][:, 0], saved["encoder.pos_embedding"][:, 0])
    assert torch.equal(state["conv_proj.weight"], saved["conv_proj.weight"])


def test_bad_weights_files_are_one_clear_message(tmp_path):
    def message(weights, **params) -> str:
        with pytest.raises(ConfigError) as info:
            build(weights=str(weights), **params)
        text = str(info.value)
        assert info.value.path == "architecture.backbone.weights"
        assert "automl_plugins.architectures.backbone" in text and "'backbone'" in text
        return text

    assert "no weights file" in message(tmp_path / "absent.pth")
    assert f"{tmp_path / 'resnet50.pth'}" in message(tmp_path, backbone="resnet50")  # a folder
    (tmp_path / "text.pth").write_text("not a checkpoint")
    assert "cannot read weights file" in message(tmp_path / "text.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    assert "holds a list, not a state dict" in message(tmp_path / "list.pth")
    save_fresh("resnet50", tmp_path / "r50.pth")  # another backbone's weights
    text = message(tmp_path / "r50.pth")
    assert f"{tmp_path / 'r50.pth'} does not fit backbone 'resnet18'" in text
    state = save_fresh("resnet18", tmp_path / "partial.pth")
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")},
               tmp_path / "partial.pth")
    assert "missing (e.g. layer4." in message(tmp_path / "partial.pth")


def test_bad_params_name_the_field():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet19'; valid: resnet18"):
        build(backbone="resnet19")
    with pytest.raises(ConfigError, match="multiple of 16 for vit_tiny, got 40") as info:
        build(backbone="vit_tiny", image_size=40)
    assert info.value.path == "architecture.backbone.image_size"


def digits(n: int = 64):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor((bunch.images[:n] / 16.0).astype(np.float32)[:, None])
    return x, torch.as_tensor(bunch.target[:n].astype(np.int64))


def test_gradual_unfreezing_and_backbone_lr_in_the_trainer():
    """Real training on digits through the trainer and the architecture's hooks: the frozen
    blocks stay, unfreeze one per epoch from the deepest, the backbone trains at its factor."""
    params = {**BASE, "frozen_blocks": 5, "frozen_epochs": 1, "backbone_lr_factor": 0.1}
    hooks = ArchitectureHooks.of(REGISTRY, "backbone", params)
    torch.manual_seed(0)
    model = PretrainedBackbone().build(params, SPEC)
    training = {"lr": 0.01, "weight_decay": 0.0, "optimizer": "adamw", "batch_size": 32}
    optimizer = make_optimizer(model, training, groups=hooks.param_groups(model))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.001, 0.01])
    assert len(optimizer.param_groups[1]["params"]) == 2  # the head's weight and bias
    x, y = digits()
    task = REGISTRY.create("task", "classification")
    trainer = Trainer(model, x, y, task, SPEC, training, [], DevicePlan("cpu", False, 1),
                      torch.Generator().manual_seed(0), hooks.on_epoch_start())

    def snapshot():
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def changed(before, prefix):
        return any(not torch.equal(v, before[k]) for k, v in model.state_dict().items()
                   if k.startswith(prefix) and v.is_floating_point())

    before = snapshot()
    trainer.epoch(optimizer)  # epoch 1: the whole backbone frozen, batch norms too
    assert changed(before, "head.") and not changed(before, "body.")
    before = snapshot()
    trainer.epoch(optimizer)  # epoch 2: layer4 free
    assert changed(before, "body.layer4.") and not changed(before, "body.layer3.")
    before = snapshot()
    trainer.epoch(optimizer)  # epoch 3: layer3 too
    assert changed(before, "body.layer3.") and not changed(before, "body.layer2.")
    assert not model.body.layer2[0].bn1.training and model.body.layer3[0].bn1.training


def test_optimizer_groups_keep_the_rest_at_the_base_rate():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    first = list(model[0].parameters())
    groups = optimizer_groups(model, [{"params": first, "lr_factor": 0.5},
                                      {"params": first}], 0.2)  # repeated: counted once
    assert [(len(g["params"]), g["lr"]) for g in groups] == [(2, 0.1), (2, 0.2)]
    assert optimizer_groups(model, [], 0.2)[0]["params"] == list(model.parameters())


class _Failing(Architecture):
    name = "failing_hooks"
    description = "test"

    def build(self, params, spec):
        return torch.nn.Linear(2, 2)

    def param_groups(self, params, model):
        return [{"params": list(model.parameters()), "lr_factor": -1}]

    def on_epoch_start(self, params, model, epoch):
        raise RuntimeError("no such block")


def test_hook_errors_name_the_plugin_and_the_hook():
    hooks = ArchitectureHooks(_Failing(), "my_plugin", "failing_hooks", {})
    with pytest.raises(PluginError, match="plugin 'my_plugin', architecture 'failing_hooks': "
                                          "param_groups\\(\\): lr_factor must be a non-neg"):
        hooks.param_groups(torch.nn.Linear(2, 2))
    call = hooks.on_epoch_start()
    with pytest.raises(PluginError, match="on_epoch_start\\(\\) raised RuntimeError: no such "
                                          "block \\(epoch 2\\)"):
        call(torch.nn.Linear(2, 2), 2)
    plain = ArchitectureHooks.of(REGISTRY, "mlp", {})
    assert plain.on_epoch_start() is None and plain.param_groups(torch.nn.Linear(2, 2)) is None


def test_the_docs_weights_one_liner_and_example_experiment(tmp_path, monkeypatch):
    """docs/experiment-yaml.md: the one-liner (a fresh init instead of 'DEFAULT', which would
    download) writes a file the YAML example's first configuration loads."""
    from PIL import Image

    from automl.runner import prepare
    from automl.trial.output_shape import first_configuration
    from tests.test_docs import code_blocks, section

    text = section("experiment-yaml.md", "#### Pretrained image backbones")
    (command,) = code_blocks(text, "bash")
    code = command.split('python -c "', 1)[1].rsplit('"', 1)[0]
    assert "weights='DEFAULT'" in code
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    backbone_zoo.torchvision_models()  # torchvision importable here (see backbone_zoo)
    exec(code.replace("weights='DEFAULT'", "weights=None"), {})
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10, 12), (40 * i, 90, 200)).save(
                tmp_path / "images" / label / f"{i}.png")
    (document,) = code_blocks(text, "yaml")
    (tmp_path / "exp.yaml").write_text(f"name: docs\n{document}")
    prepared = prepare(tmp_path / "exp.yaml")
    params = first_configuration(prepared.space.architectures["backbone"])
    assert params["weights"] == str(tmp_path / "weights")
    saved = torch.load(tmp_path / "weights" / "resnet18.pth", weights_only=True)
    model = prepared.plugins.registry.create("architecture", "backbone").build(
        params, DataSpec("image", (3, 32, 32), 2))
    assert torch.equal(model.body.state_dict()["layer1.0.conv1.weight"],
                       saved["layer1.0.conv1.weight"])


def test_the_plugin_guide_hooks_example_trains_as_it_says(tmp_path):
    """docs/plugins.md: the user architecture with both hooks, loaded from its file, trains its
    body at its factor and keeps it frozen for ``frozen_epochs``."""
    from tests.test_docs import code_blocks, section

    text = section("plugins.md", "### Fine-tuning hooks: `param_groups` and `on_epoch_start`")
    (block,) = code_blocks(text, "python")
    (tmp_path / "slow_body.py").write_text(block)
    registry = load_plugins(["slow_body.py"], base_dir=tmp_path, autoload=False).registry
    params = {"body_lr_factor": 0.1, "frozen_epochs": 1}
    hooks = ArchitectureHooks.of(registry, "slow_body", params)
    spec = DataSpec("tabular", (64,), 10)
    torch.manual_seed(0)
    model = registry.create("architecture", "slow_body").build(params, spec)
    training = {"lr": 0.05, "weight_decay": 0.0, "optimizer": "sgd", "momentum": 0.9,
                "batch_size": 32}
    optimizer = make_optimizer(model, training, groups=hooks.param_groups(model))
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.005, 0.05])
    x, y = digits()
    trainer = Trainer(model, x.reshape(len(x), -1), y, REGISTRY.create("task", "classification"),
                      spec, training, [], DevicePlan("cpu", False, 1),
                      torch.Generator().manual_seed(0), hooks.on_epoch_start())
    body = model[0].weight.detach().clone()
    trainer.epoch(optimizer)
    assert torch.equal(model[0].weight, body)  # frozen in epoch 1
    trainer.epoch(optimizer)
    assert not torch.equal(model[0].weight, body)


@pytest.mark.slow
def test_torchscript_and_onnx_exports_of_a_backbone_match_eager(tmp_path):
    """What ``automl export --format torchscript|onnx`` does to the model (trace; ONNX with a
    dynamic batch), on 8 x 8 one-channel inputs resized inside the model."""
    from automl.export import _export_onnx

    onnxruntime = optional_module("onnxruntime", "the onnx extra is not installed")
    model = build(backbone="mobilenet_v3_small").eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
        traced = torch.jit.trace(model, x[:1], check_trace=False)
        torch.testing.assert_close(traced(x), expected, atol=1e-5, rtol=1e-4)
    _export_onnx(model, x[:1], tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    (got,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=1e-3)
