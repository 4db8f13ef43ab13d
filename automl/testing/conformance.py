"""Conformance tests every component of a kind must pass (in the spirit of Optuna's
``optuna/testing/pytest_samplers.py``).

Usage in a plugin package's tests::

    from automl.testing import ArchitectureConformance

    class TestTiny(ArchitectureConformance):
        @pytest.fixture
        def component(self):
            return Tiny

Optional fixtures to override: ``spec`` (the :class:`DataSpec` to build for; default: a small
spec of the first kind in ``component.data_kinds``) and, for datasets, ``dataset_params``.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest

from automl.components import (
    Architecture, Augmentation, Component, DataSpec, DataSplits, Dataset, Ensembler, EvalContext,
    ExampleReader, Examples, Metric, Pruner, Quantizer, RawAugmentation, Streamed, Strategy, Task,
)
from automl.params import Choice, Fixed, FloatRange, IntRange
from automl.registry import KINDS, Registry

#: parameters of a component sampled for the checks: its low and high corners plus random draws
SAMPLES = 3


def example_spec(kind: str, num_classes: int = 3, output_size: int = 0) -> DataSpec:
    """A small data spec of each kind for building components in tests; ``output_size`` other
    than 0 asks for that many outputs, as a task other than classification does."""
    if output_size:
        from dataclasses import replace

        return replace(example_spec(kind, num_classes), output_size=output_size, num_classes=0,
                       class_names=(), task="regression",
                       target_names=tuple(f"t{i}" for i in range(output_size)))
    if kind == "image":
        return DataSpec("image", (1, 8, 8), num_classes, tuple(map(str, range(num_classes))))
    if kind == "text":
        return DataSpec("text", (12,), num_classes, tuple(map(str, range(num_classes))),
                        extra={"vocab_size": 200, "pad_token_id": 0, "mask_token_id": 3})
    return DataSpec("tabular", (5,), num_classes, tuple(map(str, range(num_classes))))


def example_batch(spec: DataSpec, n: int = 8, seed: int = 0) -> tuple[Any, Any]:
    """Inputs and int labels matching ``spec`` (torch tensors)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    if spec.kind == "text":
        x = torch.randint(4, int(spec.extra.get("vocab_size", 200)), (n, *spec.input_shape),
                          generator=g)
        x[:, -2:] = int(spec.extra.get("pad_token_id", 0))
    else:
        x = torch.rand((n, *spec.input_shape), generator=g)
    y = torch.arange(n) % spec.num_classes
    return x, y


def sample_params(component: type[Component], seed: int = 0) -> list[dict[str, Any]]:
    """Parameter sets from the declared defaults: all-low, all-high, then random draws."""
    rng = np.random.default_rng(seed)

    def pick(param: Any, how: str) -> Any:
        if isinstance(param, Fixed):
            return param.value
        if isinstance(param, Choice):
            options = list(param.options)
            return options[0] if how == "low" else options[-1] if how == "high" else \
                options[int(rng.integers(len(options)))]
        if isinstance(param, IntRange):
            if how in ("low", "high"):
                return param.low if how == "low" else param.high
            return int(rng.integers(param.low, param.high + 1))
        if isinstance(param, FloatRange):
            if how in ("low", "high"):
                return param.low if how == "low" else param.high
            if param.log:
                return float(math.exp(rng.uniform(math.log(param.low), math.log(param.high))))
            return float(rng.uniform(param.low, param.high))
        raise TypeError(f"unknown parameter space {param!r}")

    return [{k: pick(d.default, how) for k, d in component.params.items()}
            for how in ("low", "high", *["random"] * SAMPLES)]


class _ComponentChecks:
    kind: str

    @pytest.fixture
    def component(self) -> type[Component]:  # pragma: no cover - supplied by the subclass
        raise NotImplementedError("supply a `component` fixture returning the component class")

    def test_registers_cleanly(self, component: type[Component]) -> None:
        registry = Registry()
        entry = registry.add(self.kind, component, "conformance")
        assert entry.name == component.name
        assert isinstance(component.description, str) and component.description, \
            "give the component a one-line description"
        assert issubclass(component, KINDS[self.kind][0])

    def test_instances_pickle_for_ray_workers(self, component: type[Component]) -> None:
        clone = pickle.loads(pickle.dumps(component()))
        assert type(clone).__name__ == component.__name__

    def test_declared_params_have_helpful_docs(self, component: type[Component]) -> None:
        for key, spec in component.params.items():
            assert spec.help, f"parameter '{key}' has no help text"


class _BuildsForSpec(_ComponentChecks):
    @pytest.fixture
    def spec(self, component: Any) -> DataSpec:
        return example_spec(component.data_kinds[0])


class ArchitectureConformance(_BuildsForSpec):
    """Checks for :class:`automl.components.Architecture` plugins."""

    kind = "architecture"

    def test_builds_outputs_for_every_declared_corner(self, component: type[Architecture],
                                                      spec: DataSpec) -> None:
        import torch

        x, _ = example_batch(spec)
        for params in sample_params(component):
            model = component().build(dict(params), spec)
            assert isinstance(model, torch.nn.Module)
            model.eval()
            with torch.no_grad():
                out = model(x)
            assert tuple(out.shape) == (len(x), spec.output_size), f"params {params}"
            assert torch.isfinite(out).all()

    def test_builds_the_output_size_the_task_asks_for(self, component: type[Architecture],
                                                      spec: DataSpec) -> None:
        """Not the number of classes: ``spec.output_size`` (here two regression targets)."""
        import torch

        other = example_spec(spec.kind, output_size=2)
        x, _ = example_batch(spec)
        model = component().build(dict(sample_params(component)[0]), other).eval()
        with torch.no_grad():
            out = model(x)
        assert tuple(out.shape) == (len(x), 2), (
            "build spec.output_size outputs (the task's head size), not spec.num_classes")

    def test_trains_a_step(self, component: type[Architecture], spec: DataSpec) -> None:
        import torch
        import torch.nn.functional as F

        torch.manual_seed(0)
        x, y = example_batch(spec, n=16)
        if component.trains_itself:
            self._fits_itself(component, spec, x, y)
            return
        model = component().build(dict(sample_params(component)[2]), spec)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        assert params, "the model has no trainable parameters"
        before = [p.detach().clone() for p in params]
        optimizer = torch.optim.SGD(params, lr=0.1)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        assert all(p.grad is None or torch.isfinite(p.grad).all() for p in params)
        optimizer.step()
        assert any(not torch.equal(b, p.detach()) for b, p in zip(before, params))

    @staticmethod
    def _fits_itself(component: type[Architecture], spec: DataSpec, x: Any, y: Any) -> None:
        """An architecture that trains itself yields one fitted module per epoch, whose
        ``state_dict`` loads into a freshly built (unfitted) module."""
        import io

        import torch
        import torch.nn.functional as F

        params = dict(sample_params(component)[2])
        targets = F.one_hot(y, spec.num_classes).float().numpy()
        fitted = list(component().fit(params, spec, x.numpy(), targets, 2, 0))
        assert len(fitted) == 2, "fit() must yield one model per epoch"
        buffer = io.BytesIO()
        torch.save(fitted[-1].state_dict(), buffer)
        buffer.seek(0)
        clone = component().build(params, spec).eval()
        clone.load_state_dict(torch.load(buffer, weights_only=True))
        with torch.no_grad():
            out = fitted[-1].eval()(x)
            assert tuple(out.shape) == (len(x), spec.output_size)
            assert torch.isfinite(out).all()
            assert torch.allclose(out, clone(x), atol=1e-6)

    def test_state_dict_round_trips_safely(self, component: type[Architecture], spec: DataSpec,
                                           tmp_path: Any) -> None:
        import torch

        x, _ = example_batch(spec)
        params = sample_params(component)[2]
        model = component().build(dict(params), spec).eval()
        torch.save(model.state_dict(), tmp_path / "model.pt")
        clone = component().build(dict(params), spec).eval()
        clone.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
        with torch.no_grad():
            assert torch.allclose(model(x), clone(x), atol=1e-6)

    def test_training_hooks_fit_the_model(self, component: type[Architecture],
                                          spec: DataSpec) -> None:
        """For an architecture declaring them (at its high corner): ``param_groups`` names only
        the model's parameters, with non-negative factors; through ``on_epoch_start`` every
        epoch trains, and a frozen parameter stays as it is."""
        import torch
        import torch.nn.functional as F

        from automl.trial.architecture_hooks import optimizer_groups

        if component.trains_itself or (
                component.param_groups is Architecture.param_groups
                and component.on_epoch_start is Architecture.on_epoch_start):
            return
        x, y = example_batch(spec, n=16)
        for params in sample_params(component)[1:2]:
            torch.manual_seed(0)
            architecture = component()
            model = architecture.build(dict(params), spec)
            own = {id(p) for p in model.parameters()}
            groups = architecture.param_groups(dict(params), model)
            for group in groups or []:
                assert all(id(p) in own for p in group["params"]), \
                    f"param_groups() names a parameter not in the model (params {params})"
                assert float(group.get("lr_factor", 1.0)) >= 0, f"params {params}"
            optimizer = torch.optim.SGD(
                optimizer_groups(model, groups, 0.1) if groups is not None
                else model.parameters(), lr=0.1)
            for epoch in (1, 2, 3):
                model.train()
                architecture.on_epoch_start(dict(params), model, epoch)
                frozen = [(p, p.detach().clone()) for p in model.parameters()
                          if not p.requires_grad]
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                assert torch.isfinite(loss), f"epoch {epoch}, params {params}"
                if loss.requires_grad:
                    loss.backward()
                    optimizer.step()
                assert all(torch.equal(p.detach(), before) for p, before in frozen), \
                    f"a frozen parameter changed in epoch {epoch} (params {params})"


class AugmentationConformance(_BuildsForSpec):
    """Checks for batch :class:`automl.components.Augmentation` plugins (raw ones:
    :class:`RawAugmentationConformance`)."""

    kind = "augmentation"

    def test_transforms_batches(self, component: type[Augmentation]) -> None:
        assert component.inputs == "batch", \
            "a raw augmentation is checked with RawAugmentationConformance"

    def _batch(self, spec: DataSpec) -> tuple[Any, Any]:
        import torch.nn.functional as F

        x, y = example_batch(spec, n=16)
        return x, F.one_hot(y, spec.num_classes).float()

    def test_keeps_shapes_dtypes_and_target_distributions(self, component: type[Augmentation],
                                                          spec: DataSpec) -> None:
        import torch

        x, y = self._batch(spec)
        for params in sample_params(component):
            g = torch.Generator().manual_seed(1)
            x2, y2 = component().apply(x.clone(), y.clone(), dict(params), g)
            assert x2.shape == x.shape and x2.dtype == x.dtype, f"params {params}"
            assert y2.shape == y.shape
            assert torch.allclose(y2.sum(dim=1), torch.ones(len(y)), atol=1e-5)
            if x.is_floating_point():
                assert torch.isfinite(x2).all()

    def test_deterministic_given_the_generator(self, component: type[Augmentation],
                                               spec: DataSpec) -> None:
        import torch

        x, y = self._batch(spec)
        params = dict(sample_params(component)[1])
        runs = [component().apply(x.clone(), y.clone(), params,
                                  torch.Generator().manual_seed(7)) for _ in range(2)]
        assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])

    def test_does_not_modify_its_input(self, component: type[Augmentation],
                                       spec: DataSpec) -> None:
        import torch

        x, y = self._batch(spec)
        x0, y0 = x.clone(), y.clone()
        component().apply(x, y, dict(sample_params(component)[1]), torch.Generator().manual_seed(0))
        assert torch.equal(x, x0) and torch.equal(y, y0)


#: English and Chinese texts raw augmentations are checked on (an empty one included)
EXAMPLE_TEXTS = (
    "the movie was great and the actors were wonderful",
    "the food was cold and the service was slow",
    "这部电影非常好看，演员的表演很精彩",
    "ok",
    "",
)


class RawAugmentationConformance(_ComponentChecks):
    """Checks for :class:`automl.components.RawAugmentation` plugins (text before encoding).

    Optional fixtures: ``raw_inputs`` (default: :data:`EXAMPLE_TEXTS`, English and Chinese) and
    ``required_params`` (values for parameters the experiment must set, such as checkpoint
    paths; default none)."""

    kind = "augmentation"

    @pytest.fixture
    def raw_inputs(self) -> list[Any]:
        return list(EXAMPLE_TEXTS)

    @pytest.fixture
    def required_params(self) -> dict[str, Any]:
        return {}

    def _params(self, component: type[RawAugmentation], required: dict[str, Any]
                ) -> list[dict[str, Any]]:
        return [{**p, **required} for p in sample_params(component)]

    def test_declares_raw_inputs(self, component: type[RawAugmentation]) -> None:
        assert issubclass(component, RawAugmentation) and component.inputs == "raw"

    def test_one_output_per_input_of_the_same_type(self, component: type[RawAugmentation],
                                                   raw_inputs: list[Any],
                                                   required_params: dict[str, Any]) -> None:
        for params in self._params(component, required_params):
            out = component().apply_raw(list(raw_inputs), dict(params),
                                        np.random.default_rng(1))
            assert len(out) == len(raw_inputs), f"params {params}"
            assert all(type(o) is type(i) for o, i in zip(out, raw_inputs)), f"params {params}"

    def test_deterministic_given_the_rng(self, component: type[RawAugmentation],
                                         raw_inputs: list[Any],
                                         required_params: dict[str, Any]) -> None:
        params = self._params(component, required_params)[1]
        runs = [component().apply_raw(list(raw_inputs), dict(params), np.random.default_rng(7))
                for _ in range(2)]
        assert runs[0] == runs[1]

    def test_does_not_modify_its_input(self, component: type[RawAugmentation],
                                       raw_inputs: list[Any],
                                       required_params: dict[str, Any]) -> None:
        given = list(raw_inputs)
        component().apply_raw(given, dict(self._params(component, required_params)[1]),
                              np.random.default_rng(0))
        assert given == list(raw_inputs)


class PrunerConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Pruner` plugins (on a small MLP and CNN)."""

    kind = "pruner"

    @staticmethod
    def _models() -> list[tuple[Any, DataSpec]]:
        from torch import nn

        image = example_spec("image")
        tabular = example_spec("tabular")
        mlp = nn.Sequential(nn.Flatten(), nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 16),
                            nn.ReLU(), nn.Linear(16, 3))
        cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
        return [(mlp, tabular), (cnn, image)]

    def test_prunes_fine_tunes_and_finalizes(self, component: type[Pruner]) -> None:
        import torch
        import torch.nn.functional as F

        for model, spec in self._models():
            x, y = example_batch(spec, n=16)
            params = {k: v for k, v in sample_params(component)[1].items()}
            pruned = component().prune(model, dict(params))
            optimizer = torch.optim.SGD(pruned.parameters(), lr=0.01)
            F.cross_entropy(pruned(x), y).backward()
            optimizer.step()
            final = component().finalize(pruned).eval()
            with torch.no_grad():
                assert tuple(final(x).shape) == (16, spec.num_classes)
            state = final.state_dict()
            assert not any(k.endswith(("_orig", "_mask")) for k in state), \
                "finalize must make pruning permanent (no masks left in the state dict)"

    def test_removes_weights(self, component: type[Pruner]) -> None:
        for model, _ in self._models():
            before = sum(int(p.count_nonzero()) for p in model.parameters())
            params = sample_params(component)[1]
            final = component().finalize(component().prune(model, dict(params)))
            after = sum(int(p.count_nonzero()) for p in final.parameters())
            assert after < before, f"{component.name} at {params} removed nothing"


class QuantizerConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Quantizer` plugins (on a small MLP and CNN): each
    model is quantized, or the quantizer says why not (``check`` or ``NotQuantizable``); a
    quantized model gives the float model's outputs within int8 rounding, and its ``state_dict``
    loads with ``weights_only=True`` into ``rebuild``'s structure and predicts the same. A
    quantizer for CUDA (``device = "cuda"``) on a machine without it is checked on the CPU, past
    its ``check`` (which refuses a model on the CPU), where torch has the kernels."""

    kind = "quantizer"

    def test_quantizes_or_says_why_and_reloads(self, component: type[Quantizer]) -> None:
        import io

        import torch

        from automl.components import NotQuantizable
        from automl.trial.artifacts import _cpu_state

        handled = 0
        for model, spec in PrunerConformance._models():
            model = model.eval()
            x, _ = example_batch(spec, n=32)
            params = dict(sample_params(component)[1])
            quantizer = component()
            stand_in = component.device == "cuda" and not torch.cuda.is_available()
            reason = None if stand_in else quantizer.check(model)
            if reason is not None:
                assert isinstance(reason, str) and reason, "check() returns a reason or None"
                continue
            try:
                quantized = quantizer.quantize(model, dict(params), [x[:16], x[16:]]).eval()
            except NotQuantizable as exc:
                assert str(exc), "NotQuantizable needs the reason as its message"
                continue
            handled += 1
            with torch.no_grad():
                expected, got = torch.softmax(model(x), 1), torch.softmax(quantized(x).float(), 1)
            assert (got - expected).abs().max() < 0.1, "the quantized model is another model"
            buffer = io.BytesIO()
            torch.save(_cpu_state(quantized), buffer)
            buffer.seek(0)
            rebuilt = component().rebuild(model, dict(params), x[:1]).eval()
            rebuilt.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
            with torch.no_grad():
                assert torch.allclose(rebuilt(x).float(), quantized(x).float())
        assert handled, f"{component.name} quantized neither the small MLP nor the small CNN"


class StrategyConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Strategy` plugins, on a small MLP learning a
    separable 3-class problem with the ``task`` fixture (default: the registered
    ``classification`` task): at each corner of its parameters the loop trains the model in
    place (a plain module of the same structure, finite losses, changed weights), records only
    the facts it declares, fine-tunes a replaced model, and repeats itself for the same seed."""

    kind = "strategy"

    @pytest.fixture
    def task(self) -> Task:
        from automl.plugin_manager import plugin_source, rebuild_plugins

        registry = rebuild_plugins(plugin_source([], autoload=False)).registry
        return registry.create("task", "classification")  # type: ignore[return-value]

    @staticmethod
    def _run(task: Task, seed: int = 0) -> Any:
        import torch
        from torch import nn

        from automl.components import TrainingRun
        from automl.trial.device import DevicePlan

        torch.manual_seed(seed)
        spec = example_spec("tabular")
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(120) % 3
        x = torch.randn(120, 5, generator=g) * 0.5 + nn.functional.one_hot(y, 5).float() * 2
        model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
        training = {"lr": 1e-2, "batch_size": 16, "optimizer": "adam", "weight_decay": 0.0,
                    "momentum": 0.9, "label_smoothing": 0.0}
        return TrainingRun(model, x, y, task, spec, training, [], DevicePlan("cpu", False, 1),
                           torch.Generator().manual_seed(seed), epochs=3, fine_tune_epochs=1)

    def test_declares_what_the_core_needs(self, component: type[Strategy]) -> None:
        assert isinstance(component.facts, tuple) and all(isinstance(f, str)
                                                          for f in component.facts)
        assert isinstance(component.kfold, bool) and isinstance(component.default, bool)
        assert isinstance(component.pruning, bool)
        assert isinstance(component.data_parallel, bool)

    def test_a_data_parallel_loop_trains_on_its_shard(self, component: type[Strategy],
                                                      task: Task, tmp_path: Any) -> None:
        """A strategy declaring ``data_parallel`` takes its rows from ``run.shard`` and its
        forward pass through ``shard.wrap`` (here rank 0 of 2 for the rows, in a real
        one-process gloo group for DDP)."""
        if not component.data_parallel:
            pytest.skip(f"{component.name} does not declare data_parallel")
        import torch
        import torch.distributed as dist

        from automl.trial.data_parallel import Shard

        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0,
                                world_size=1)
        try:
            run = self._run(task)
            run.shard = shard = Shard(0, 2, seed=0)
            loop = component().start(dict(sample_params(component)[0]), run)
            assert math.isfinite(loop.epoch())
            assert shard.rows == 60, f"{component.name} did not train on the shard's rows"
            assert shard.wrapped, f"{component.name} did not train through shard.wrap(model)"
            assert type(loop.model) is torch.nn.Sequential
        finally:
            dist.destroy_process_group()

    def test_trains_in_place_and_fine_tunes(self, component: type[Strategy],
                                            task: Task) -> None:
        import copy
        import math as _math

        import torch

        for params in sample_params(component)[:3]:
            run = self._run(task)
            before = copy.deepcopy(run.model.state_dict())
            loop = component().start(dict(params), run)
            losses = [loop.epoch() for _ in range(run.epochs)]
            assert all(isinstance(v, float) and _math.isfinite(v) for v in losses), losses
            assert type(loop.model) is torch.nn.Sequential, \
                "loop.model must stay the plain module (unwrap what the strategy wraps)"
            after = loop.model.state_dict()
            assert set(after) == set(before), "the model's structure changed"
            assert any(not torch.equal(before[k], after[k]) for k in before), \
                f"{component.name} at {params} left the weights unchanged"
            facts = dict(loop.facts())
            assert set(facts) <= set(component.facts), \
                f"facts {sorted(facts)} not declared in {component.name}.facts"
            assert all(_math.isfinite(float(v)) for v in facts.values()), facts
            replaced = copy.deepcopy(loop.model)
            loop.fine_tune(replaced, 0.1)
            assert _math.isfinite(loop.epoch())
            assert loop.model is replaced, "fine_tune continues with the model it is given"

    def test_same_seed_same_weights(self, component: type[Strategy], task: Task) -> None:
        import torch

        params = dict(sample_params(component)[0])
        states = []
        for _ in range(2):
            run = self._run(task, seed=3)
            loop = component().start(dict(params), run)
            for _ in range(2):
                loop.epoch()
            states.append(loop.model.state_dict())
        assert all(torch.equal(states[0][k], states[1][k]) for k in states[0]), \
            f"{component.name} is not deterministic for a given seed"


class MetricConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Metric` plugins."""

    kind = "metric"

    @staticmethod
    def _context(proba: np.ndarray, y: np.ndarray, task: str = "classification"
                 ) -> EvalContext:
        from torch import nn

        width = proba.shape[1]
        spec = example_spec("tabular", num_classes=width) if task == "classification" else \
            DataSpec("tabular", (5,), 0, task=task, output_size=width,
                     target_names=tuple(f"t{i}" for i in range(width)))
        model = nn.Sequential(nn.Linear(5, width)).eval()
        return EvalContext(y_true=y, proba=proba, model=model, spec=spec, split="val")

    @staticmethod
    def _case(component: type[Metric]) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
        """(task, targets, good predictions, bad predictions) for the metric's first built-in
        task: classification, regression or multilabel."""
        tasks = component.tasks or ("classification",)
        y_cls = np.arange(30) % 3
        if "classification" in tasks:
            return ("classification", y_cls, np.eye(3)[y_cls] * 0.98 + 0.01,
                    np.eye(3)[(y_cls + 1) % 3] * 0.98 + 0.01)
        if "regression" in tasks:
            y = np.linspace(-2.0, 3.0, 60).reshape(30, 2)
            return "regression", y, y + 0.01, -y
        if "multilabel" in tasks:
            y = np.stack([y_cls == 0, y_cls == 1, y_cls != 1], axis=1).astype(np.int64)
            return "multilabel", y, y * 0.98 + 0.01, (1 - y) * 0.98 + 0.01
        pytest.skip(f"no example case for tasks {tasks}; test the metric with your own")

    def test_returns_a_finite_float(self, component: type[Metric]) -> None:
        from dataclasses import replace

        task, y, good, bad = self._case(component)
        noisy = (good + bad) / 2
        ctx = self._context(noisy, y, task)
        if component.fact is not None:  # a training fact, as a strategy records it
            ctx = replace(ctx, facts={component.fact: 1.5})
        value = component().compute(ctx)
        assert isinstance(value, float) and math.isfinite(value)

    def test_prefers_perfect_predictions(self, component: type[Metric]) -> None:
        if component.model_only:
            pytest.skip("model-only metric")
        task, y, perfect, wrong = self._case(component)
        good = component().compute(self._context(perfect, y, task))
        bad = component().compute(self._context(wrong, y, task))
        assert (good > bad) if component.direction == "max" else (good < bad)

    def test_declares_what_the_core_needs(self, component: type[Metric]) -> None:
        from automl.components.metric import AGGREGATES, RECORDED

        assert component.direction in ("max", "min"), "direction must be 'max' or 'min'"
        assert component.recorded in RECORDED, f"recorded must be one of {RECORDED}"
        assert component.aggregate in AGGREGATES, f"aggregate must be one of {AGGREGATES}"
        assert isinstance(component.model_only, bool)
        assert isinstance(component.deterministic, bool)
        assert isinstance(component.tie_breaker, bool)
        assert component.tasks is None or (isinstance(component.tasks, tuple) and all(
            isinstance(t, str) for t in component.tasks)), "tasks: a tuple of task names or None"
        if component.model_only:
            assert component.aggregate != "predictions", (
                "a model-only metric has no predictions to combine: aggregate 'sum' or 'none'")
            assert not component.tie_breaker, "a tie-breaker must score predictions"
        assert component.fact is None or (component.model_only and isinstance(component.fact,
                                                                              str)), \
            "fact: None, or the training fact (a string) a model-only metric reads"


class DatasetConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Dataset` plugins. Supply ``dataset_params`` when the
    dataset needs any (files the test creates, for instance)."""

    kind = "dataset"

    @pytest.fixture
    def dataset_params(self) -> dict[str, Any]:
        return {}

    def _load(self, component: type[Dataset], dataset_params: dict[str, Any]) -> Any:
        defaults = {k: d.default.value for k, d in component.params.items()
                    if isinstance(d.default, Fixed)}
        return component().load({**defaults, **dataset_params})

    def test_loads_examples_matching_its_spec(self, component: type[Dataset],
                                              dataset_params: dict[str, Any]) -> None:
        loaded = self._load(component, dataset_params)
        assert isinstance(loaded, (Examples, DataSplits))
        spec = loaded.spec
        assert spec.kind == component.kind
        parts = [(loaded.x, loaded.y)] if isinstance(loaded, Examples) else [
            (loaded.x_train, loaded.y_train), (loaded.x_val, loaded.y_val),
            (loaded.x_test, loaded.y_test)]
        if isinstance(loaded, Examples) and loaded.encoder is not None:  # raw inputs kept
            assert loaded.x.ndim == 1, "raw inputs are a 1-D array (one per example)"
            pickle.loads(pickle.dumps(loaded.encoder))  # the encoder travels to the workers
            parts = [(loaded.encoder(list(loaded.x)), loaded.y),
                     (loaded.encoder(list(loaded.x[:3])), loaded.y[:3])]
        for x, y in parts:
            assert x.shape[1:] == spec.input_shape
            assert len(x) == len(y)
            if spec.task == "classification":
                assert np.issubdtype(y.dtype, np.integer)
                assert y.min() >= 0 and y.max() < spec.num_classes
            assert x.dtype == (np.int64 if spec.kind == "text" else np.float32)
        assert spec.task == component().task_name(
            {k: d.default.value for k, d in component.params.items()
             if isinstance(d.default, Fixed)}), "spec.task must equal task_name(params)"
        assert len(spec.class_names) in (0, spec.num_classes)

    def test_loading_is_deterministic(self, component: type[Dataset],
                                      dataset_params: dict[str, Any]) -> None:
        a = self._load(component, dataset_params)
        b = self._load(component, dataset_params)
        xa = a.x if isinstance(a, Examples) else a.x_train
        xb = b.x if isinstance(b, Examples) else b.x_train
        np.testing.assert_array_equal(xa, xb)

    def test_streams_the_rows_it_loads(self, component: type[Dataset],
                                       dataset_params: dict[str, Any]) -> None:
        """A dataset that streams (implements ``stream``): the same rows, targets and spec as
        ``load``; its reader reads inputs equal to ``load``'s, pickles without them, and a
        reader's ``read`` of sorted rows returns those rows in order."""
        import pickle

        if not component.streams():
            pytest.skip(f"dataset '{component.name}' does not stream")
        defaults = {k: d.default.value for k, d in component.params.items()
                    if isinstance(d.default, Fixed)}
        streamed = component().stream({**defaults, **dataset_params})
        loaded = self._load(component, dataset_params)
        assert isinstance(streamed, Streamed) and isinstance(streamed.reader, ExampleReader)
        assert isinstance(loaded, Examples), "a dataset that streams loads Examples"
        assert len(streamed.reader) == len(loaded.y) == len(streamed.targets)
        np.testing.assert_array_equal(streamed.targets, loaded.y)
        assert streamed.spec.input_shape == loaded.spec.input_shape
        assert streamed.spec.class_names == loaded.spec.class_names
        rows = np.arange(len(loaded.y))[::2]
        np.testing.assert_allclose(streamed.reader.read(rows), loaded.x[rows], atol=1e-6)
        assert len(pickle.dumps(streamed.reader)) < max(loaded.x.nbytes, 4096), \
            "the reader pickles to trial workers: it must not hold the examples"
        size = component().size_bytes({**defaults, **dataset_params})
        assert size is None or size > 0


class EnsemblerConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Ensembler` plugins."""

    kind = "ensembler"

    @staticmethod
    def _case(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
        """Three noisy candidates on 60 examples of 3 classes."""
        rng = np.random.default_rng(seed)
        y = np.arange(60) % 3
        probas = []
        for noise in (0.6, 0.9, 1.2):
            logits = np.eye(3)[y] * 2 + rng.normal(0, noise, (60, 3))
            e = np.exp(logits - logits.max(1, keepdims=True))
            probas.append(e / e.sum(1, keepdims=True))
        return probas, y

    @staticmethod
    def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
        return float(np.mean(proba.argmax(1) == y))

    def _fit(self, component: type[Ensembler], seed: int = 0) -> np.ndarray:
        probas, y = self._case()
        defaults = {k: d.default.value for k, d in component.params.items()
                    if isinstance(d.default, Fixed)}
        return np.asarray(component().fit(probas, y, self._accuracy, defaults, seed))

    def test_weights_are_a_distribution(self, component: type[Ensembler]) -> None:
        weights = self._fit(component)
        assert weights.shape == (3,)
        assert (weights >= 0).all() and np.isclose(weights.sum(), 1.0)

    def test_deterministic_for_a_seed(self, component: type[Ensembler]) -> None:
        np.testing.assert_allclose(self._fit(component, 3), self._fit(component, 3))

    def test_no_worse_than_the_best_single_on_its_fit_data(self, component: type[Ensembler]
                                                           ) -> None:
        probas, y = self._case()
        weights = self._fit(component)
        blended = np.tensordot(weights, np.stack(probas), axes=1)
        assert self._accuracy(y, blended) >= max(self._accuracy(y, p) for p in probas)


class TaskConformance(_ComponentChecks):
    """Checks for :class:`automl.components.Task` plugins. Supply ``task_case``: a
    ``(spec, y)`` pair of a data spec naming the task and valid targets for it (at least 30
    examples); the built-in tasks have one (:func:`example_task_case`)."""

    kind = "task"

    @pytest.fixture
    def task_case(self, component: type[Task]) -> tuple[DataSpec, np.ndarray]:
        return example_task_case(component.name)

    def _prepared(self, component: type[Task], task_case: Any) -> tuple[Task, DataSpec, Any]:
        from dataclasses import replace

        spec, y = task_case
        task = component()
        spec = task.prepare(spec, y)
        return task, replace(spec, output_size=int(task.output_size(spec))), y

    def test_accepts_valid_targets_and_splits_them(self, component: type[Task],
                                                   task_case: Any) -> None:
        task, spec, y = self._prepared(component, task_case)
        task.check_targets(y, spec, "conformance")
        train, val, test = task.split(y, spec, 0.2, 0.2, 0)
        together = np.sort(np.concatenate([train, val, test]))
        np.testing.assert_array_equal(together, np.arange(len(y)))  # a partition
        again = task.split(y, spec, 0.2, 0.2, 0)
        assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again)), \
            "the split must be deterministic in the seed"

    def test_refuses_invalid_targets_with_a_config_error(self, component: type[Task],
                                                         task_case: Any) -> None:
        from automl.errors import ConfigError

        task, spec, y = self._prepared(component, task_case)
        bad = np.asarray(y, dtype=np.float64).copy()
        bad.reshape(len(bad), -1)[3, 0] = np.nan
        with pytest.raises(ConfigError, match="conformance"):
            task.check_targets(bad, spec, "conformance")

    def test_loss_trains_and_predictions_fit_the_columns(self, component: type[Task],
                                                         task_case: Any) -> None:
        import torch

        task, spec, y = self._prepared(component, task_case)
        torch.manual_seed(0)
        outputs = torch.zeros((len(y), spec.output_size), requires_grad=True)
        targets = task.training_targets(torch.as_tensor(y), spec)
        loss = task.loss(outputs, targets, {"label_smoothing": 0.0})
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert outputs.grad is not None and outputs.grad.abs().sum() > 0
        predictions = task.predict(outputs.detach(), spec)
        assert tuple(predictions.shape) == (len(y), len(task.prediction_columns(spec)))
        combined = task.combine(np.array([0.5, 0.5]), [predictions.numpy()] * 2)
        np.testing.assert_allclose(combined, predictions.numpy(), rtol=1e-6)

    def test_a_soft_loss_is_least_at_the_teachers_predictions(self, component: type[Task],
                                                              task_case: Any) -> None:
        """A task that can be distilled (implements ``soft_loss``): the loss of a student whose
        predictions are its teacher's is below that of another student, at any temperature,
        and it has gradients."""
        import torch

        if not component.distills():
            pytest.skip(f"task '{component.name}' implements no soft_loss (not distillable)")
        task, spec, y = self._prepared(component, task_case)
        torch.manual_seed(0)
        raw = torch.randn((len(y), spec.output_size)) * 2
        teacher = task.predict(raw, spec).float()
        for temperature in (1.0, 4.0):
            student = raw.clone().requires_grad_(True)
            same = task.soft_loss(student, teacher, temperature)
            other = task.soft_loss(torch.zeros_like(raw), teacher, temperature)
            assert same.dim() == 0 and torch.isfinite(same)
            assert float(same.detach()) < float(other), "the teacher's own outputs must fit it best"
            task.soft_loss(student * 0.5, teacher, temperature).backward()
            assert student.grad is not None and student.grad.abs().sum() > 0


def example_task_case(name: str) -> tuple[DataSpec, np.ndarray]:
    """A spec and 60 valid targets for each built-in task."""
    rng = np.random.default_rng(0)
    if name == "classification":
        return DataSpec("tabular", (5,), 3, ("a", "b", "c")), np.arange(60) % 3
    if name == "regression":
        return (DataSpec("tabular", (5,), 0, task="regression", target_names=("p", "q")),
                rng.normal(100, 20, (60, 2)).astype(np.float32))
    if name == "multilabel":
        return (DataSpec("tabular", (5,), 0, task="multilabel", target_names=("x", "y", "z")),
                (rng.random((60, 3)) < 0.4).astype(np.int64))
    pytest.skip(f"no example targets for task '{name}': supply a task_case fixture")
