"""Real searches through automl.run: embedded Ray, real training on digits, a SQLite file."""

from __future__ import annotations

import hashlib
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import automl
from automl.store import Store
from automl.trial.artifacts import read_predictions, read_state_dict

pytestmark = pytest.mark.slow

TINY_PLUGIN = """
import json, os
from automl.components import Architecture, ParamDef
from automl.params import IntRange

class Tiny(Architecture):
    name = "tiny"
    description = "one hidden layer, from a file listed in the experiment"
    params = {"width": ParamDef(IntRange(8, 32), int, "hidden units")}

    def build(self, params, spec):
        import math
        from torch import nn
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(spec.input_shape), params["width"]),
                             nn.ReLU(), nn.Linear(params["width"], spec.num_classes))

class Boom(Architecture):
    name = "boom"
    def build(self, params, spec):
        raise RuntimeError("boom architecture always fails")

def automl_register_architectures(registrar):
    registrar.add(Tiny)
    registrar.add(Boom)

LOG = os.environ.get("AUTOML_TEST_HOOK_LOG", os.devnull)

def automl_trial_finished(experiment, trial):      # driver
    with open(LOG, "a") as f:
        f.write(json.dumps({"hook": "trial_finished", "pid": os.getpid(), "number": trial.number,
                            "status": trial.status, "metrics": trial.metrics}) + "\\n")

def automl_experiment_finished(experiment, status, best, evaluation):      # driver
    with open(LOG, "a") as f:
        f.write(json.dumps({"hook": "experiment_finished", "best": best and best.number,
                            "best_metrics": best and best.metrics,
                            "evaluated": evaluation and evaluation.best().trial,
                            "test": evaluation and evaluation.best().metrics}) + "\\n")

def automl_epoch_finished(trial_id, params, epoch, metrics):   # Ray worker
    with open(LOG, "a") as f:
        f.write(json.dumps({"hook": "epoch_finished", "pid": os.getpid(), "epoch": epoch,
                            "metrics": metrics}) + "\\n")
"""


@pytest.fixture(scope="module")
def hook_log(tmp_path_factory):
    return tmp_path_factory.mktemp("hooks") / "hooks.jsonl"


@pytest.fixture(scope="module")
def ray_local(hook_log):
    import os

    import ray

    from automl.ray_session import start_embedded_ray

    os.environ["AUTOML_TEST_HOOK_LOG"] = str(hook_log)  # before the workers start
    start_embedded_ray(2)
    yield
    ray.shutdown()


def experiment(tmp: Path, body: str, name: str = "exp.yaml") -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return path


def test_custom_plugin_file_architecture_is_searched(ray_local, hook_log, in_tmp):
    hook_log.write_text("")
    (in_tmp / "plugins").mkdir()
    (in_tmp / "plugins" / "tiny.py").write_text(TINY_PLUGIN)
    path = experiment(in_tmp, """
        name: custom
        seed: 3
        plugins: [plugins/tiny.py]
        dataset: digits
        architecture: {tiny: {}, mlp: {depth: 1, width: 32}}
        augmentations: {noise: {enabled: true, std: 0.05}}
        pruning: {magnitude: {ratio: 0.5}}
        training: {epochs: 3, fine_tune_epochs: 1, lr: 0.005, batch_size: 64, optimizer: adam}
        search: {num_trials: 6, sampler: random, early_stopping: none}
    """)
    result = automl.run(str(path))
    assert result.status == "completed"
    assert len(result.trials) == 6
    assert all(t.status == "completed" for t in result.trials)
    archs = {t.params["architecture"] for t in result.trials}
    assert "tiny" in archs

    store = Store(result.db_url, create=False)
    record = store.experiment("custom")
    tiny_file = str((in_tmp / "plugins" / "tiny.py").resolve())
    assert record.plugins["files"] == [tiny_file]
    assert record.plugins["digests"] == {tiny_file: hashlib.sha256(TINY_PLUGIN.encode()).hexdigest()}
    assert record.config["plugins"] == [tiny_file]  # resolved against the experiment file
    tiny = next(t for t in record.trials if t.params["architecture"] == "tiny")
    assert len(tiny.history) == 3
    assert tiny.metrics["val/accuracy"] > 0.5
    assert 0 < tiny.metrics["model/nonzero_params"] < tiny.metrics["model/params"] * 0.6

    # The checkpoint reloads safely (weights_only) into a rebuilt model and reproduces the stored
    # validation predictions; pruning was made permanent (no masks, half the weights zero).
    state = read_state_dict(tiny.checkpoint)
    assert not any(k.endswith("_orig") or k.endswith("_mask") for k in state)
    from automl.plugin_manager import load_plugins

    plugins = load_plugins(["plugins/tiny.py"], base_dir=in_tmp, autoload=False)
    from automl.data import prepare_data
    from automl.config import load_experiment

    config = load_experiment(path).config
    data = prepare_data(config, plugins.registry)
    model = plugins.registry.create("architecture", "tiny").build(
        {"width": tiny.params["architecture.tiny.width"]}, data.spec)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        proba = torch.softmax(model(torch.as_tensor(data.x_val)), dim=1).numpy()
    stored = read_predictions(tiny.checkpoint)
    np.testing.assert_allclose(proba, stored["val_proba"], atol=1e-5)
    np.testing.assert_array_equal(stored["val_y"], data.y_val)
    # Trials are scored on validation only and keep no test labels; the final evaluation scored
    # the best trial's stored test predictions against the test labels, exactly.
    assert "test_y" not in stored and not any(k.startswith("test/") for k in tiny.metrics)
    scored = record.evaluation.best()
    best = read_predictions(next(t for t in record.trials if t.number == scored.trial).checkpoint)
    accuracy = float((best["test_proba"].argmax(1) == data.y_test).mean())
    assert accuracy == scored.metrics["test/accuracy"]

    # lifecycle hooks: trial_finished on the driver, epoch_finished inside Ray workers
    events = [json.loads(line) for line in hook_log.read_text().splitlines()]
    finished = [e for e in events if e["hook"] == "trial_finished"]
    epochs = [e for e in events if e["hook"] == "epoch_finished"]
    assert sorted(e["number"] for e in finished) == list(range(6))
    # hooks see no per-trial test metric; the end of the run hands them the final evaluation
    assert not any(k.startswith("test/") for e in finished for k in e["metrics"])
    (ended,) = [e for e in events if e["hook"] == "experiment_finished"]
    assert ended["evaluated"] == ended["best"] == scored.trial
    assert ended["test"] == scored.metrics
    assert not any(k.startswith("test/") for k in ended["best_metrics"])
    assert len(epochs) == 6 * 3
    import os

    assert {e["pid"] for e in finished} == {os.getpid()}
    assert os.getpid() not in {e["pid"] for e in epochs}


def test_failing_trials_are_recorded_and_the_search_goes_on(ray_local, in_tmp):
    (in_tmp / "tiny.py").write_text(TINY_PLUGIN)
    path = experiment(in_tmp, """
        name: failing
        plugins: [tiny.py]
        dataset: digits
        architecture: [boom, tiny]
        training: {epochs: 2, fine_tune_epochs: 0}
        search: {num_trials: 8, sampler: random, early_stopping: none}
    """)
    result = automl.run(str(path))
    assert result.status == "completed"
    statuses = {t.params["architecture"]: set() for t in result.trials}
    for t in result.trials:
        statuses[t.params["architecture"]].add(t.status)
    assert statuses["boom"] == {"failed"}
    assert statuses["tiny"] == {"completed"}
    failed = next(t for t in result.trials if t.status == "failed")
    assert "plugin 'tiny', architecture 'boom': build() raised RuntimeError" in failed.error
    assert 'tiny.py", line' in failed.error  # the traceback reaches into the user's file
    assert "\x1b[" not in failed.error
    assert result.best is not None and result.best.params["architecture"] == "tiny"


def test_multi_objective_search_reports_a_pareto_front(ray_local, in_tmp):
    path = experiment(in_tmp, """
        name: pareto
        dataset: digits
        objectives:
          - {metric: accuracy, mode: max}
          - {metric: nonzero_params, mode: min}
        architecture: {mlp: {depth: 1}}
        pruning: {magnitude: {ratio: {low: 0.0, high: 0.9}}}
        training: {epochs: 3, fine_tune_epochs: 1}
        search: {num_trials: 6, sampler: nsga2, early_stopping: asha}
    """)
    result = automl.run(str(path))
    assert result.status == "completed"
    from automl.cli.render import experiment_json

    document = experiment_json(Store(result.db_url, create=False).experiment("pareto"))
    completed = [t for t in document["trials"] if t["status"] == "completed"]
    assert completed and document["pareto_front"]
    assert set(document["pareto_front"]) <= {t["number"] for t in completed}
    best = document["best"]
    assert best["metrics"]["val/accuracy"] == max(t["metrics"]["val/accuracy"] for t in completed)
    assert not any(k.startswith("test/") for t in document["trials"] for k in t["metrics"])
    # the final evaluation scored the best trial and every Pareto front member, on test
    scored = document["final_evaluation"]["scored"]
    assert scored[0]["trial"] == best["number"] and "best" in scored[0]["roles"]
    assert {s["trial"] for s in scored if "pareto" in s["roles"]} == set(document["pareto_front"])
    assert len({s["trial"] for s in scored}) == len(scored)  # each scored once
    assert all(0 < s["metrics"]["test/accuracy"] <= 1 for s in scored)


def test_a_failing_lifecycle_hook_stops_the_search_with_one_error(ray_local, in_tmp):
    (in_tmp / "bad_hook.py").write_text(
        "def automl_trial_finished(experiment, trial):\n"
        "    raise RuntimeError('webhook unreachable')\n")
    path = experiment(in_tmp, """
        name: bad-hook
        plugins: [bad_hook.py]
        dataset: digits
        architecture: {mlp: {depth: 1, width: 16}}
        training: {epochs: 2, fine_tune_epochs: 0}
        search: {num_trials: 6, sampler: random, early_stopping: none}
    """)
    from automl.errors import PluginError

    with pytest.raises(PluginError, match="plugin 'bad_hook', hook automl_trial_finished: "
                                          "RuntimeError: webhook unreachable"):
        automl.run(str(path))
    record = Store(f"sqlite:///{in_tmp / 'automl.db'}", create=False).experiment("bad-hook")
    assert record.status == "failed" and "webhook unreachable" in record.error
    assert {t.status for t in record.trials} <= {"completed", "interrupted"}
    assert len(record.trials) < 6  # the search stopped
    assert any(t.status == "completed" for t in record.trials)


FRAGILE_PLUGIN = """
import os
from automl.components import Architecture, ParamDef
from automl.params import Choice

class Fragile(Architecture):
    name = "fragile"
    description = "fine, or NaN outputs, or its worker process dies"
    params = {"mode": ParamDef(Choice(("ok", "nan", "die")), str, "how it behaves")}

    def build(self, params, spec):
        import math
        import torch
        from torch import nn
        mode = params["mode"]
        if mode == "die":
            os._exit(3)   # the Ray worker process dies mid-trial
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Flatten(),
                                          nn.Linear(math.prod(spec.input_shape), spec.num_classes))
            def forward(self, x):
                out = self.body(x)
                return out * float("nan") if mode == "nan" else out
        return Net()

def automl_register_architectures(registrar):
    registrar.add(Fragile)
"""


def test_nan_loss_and_killed_workers_are_failed_trials(ray_local, in_tmp):
    (in_tmp / "fragile.py").write_text(FRAGILE_PLUGIN)
    path = experiment(in_tmp, """
        name: fragile
        plugins: [fragile.py]
        dataset: digits
        architecture: fragile
        record: [latency64_ms]
        training: {epochs: 2, fine_tune_epochs: 0}
        search: {num_trials: 9, sampler: random, early_stopping: none}
        ensemble: false
    """)
    result = automl.run(str(path))
    assert result.status == "completed" and len(result.trials) == 9
    by_mode: dict[str, set] = {}
    for t in result.trials:
        by_mode.setdefault(t.params["architecture.fragile.mode"], set()).add(t.status)
    assert by_mode["ok"] == {"completed"}
    assert by_mode["nan"] == {"failed"} and by_mode["die"] == {"failed"}
    nan = next(t for t in result.trials if t.params["architecture.fragile.mode"] == "nan")
    assert "DivergedError" in nan.error and "training loss became nan" in nan.error
    died = next(t for t in result.trials if t.params["architecture.fragile.mode"] == "die")
    assert died.error  # Ray's account of the dead worker
    ok = next(t for t in result.trials if t.status == "completed")
    assert ok.metrics["model/saved_bytes"] > 0 and ok.metrics["model/params_before_pruning"] > 0
    assert ok.metrics["model/latency64_ms"] > 0


def test_a_full_artifacts_disk_stops_the_search_with_one_error_and_resumes(ray_local, in_tmp):
    """Artifacts on a small real tmpfs: trials fail with ENOSPC; the run ends with one error
    naming the disk and the path, the experiment is failed with that cause, and once there is
    space again ``--resume`` finishes it."""
    from automl.search.disk import DiskFullError
    from tests.mounts import tmpfs

    path = experiment(in_tmp, """
        name: full-disk
        dataset: digits
        architecture: {mlp: {depth: 1, width: 16}}
        training: {epochs: 2, fine_tune_epochs: 0}
        search: {num_trials: 12, sampler: random, early_stopping: none}
        ensemble: {enabled: true}
    """)
    with tmpfs(in_tmp / "disk", size="300k") as disk:
        with pytest.raises(DiskFullError) as info:
            automl.run(str(path), artifacts=str(disk))
        message = str(info.value)
        assert f"no space left on the disk of {disk} (file system mounted at {disk}" in message
        assert "--resume" in message and "Traceback" not in message
        record = Store(f"sqlite:///{in_tmp / 'automl.db'}", create=False).experiment("full-disk")
        assert record.status == "failed" and record.error == message
        failed = [t for t in record.trials if t.status == "failed"]
        assert failed and all("No space left on device" in t.error for t in failed)
        assert len(record.trials) < 12  # stopped, not run to the end on a full disk

        import subprocess

        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        result = automl.run(str(path), artifacts=str(disk), resume=True)
    assert result.status == "completed"
    record = Store(result.db_url, create=False).experiment("full-disk")
    assert len(record.trials) == 12 and record.ensemble is not None
