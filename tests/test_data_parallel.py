"""Data-parallel trials (``resources.workers``): the YAML, what is refused, DDP training on
disjoint shards with real gloo process groups, and one search as a user runs it."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from automl.config import parse_experiment
from automl.errors import ConfigError
from tests.conftest import write_experiment

TINY = textwrap.dedent("""\
    name: dp
    seed: 0
    dataset: wine
    architecture: {{mlp: {{depth: 1, width: 16}}}}
    training: {{epochs: 2, fine_tune_epochs: 0}}
    search: {{num_trials: 1, early_stopping: none}}
    resources: {resources}
    """)


# ---- the YAML -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, cpu, gpu, workers", [
    ("{cpu: 2}", 2.0, 0.0, 1),  # without workers: today's trial, one process
    ("{workers: 2}", 1.0, 0.0, 2),
    ("{workers: 4, cpu: 2, gpu: 1}", 2.0, 1.0, 4),
    ("{gpu: 2}", 1.0, 1.0, 2),  # shorthand: two workers with one GPU each
    ("{gpu: 0.25}", 1.0, 0.25, 1),  # a share of one GPU stays one process
])
def test_resources_workers_and_the_gpu_shorthand(text, cpu, gpu, workers):
    resources = parse_experiment(TINY.format(resources=text)).resources
    assert (resources.cpu, resources.gpu, resources.workers) == (cpu, gpu, workers)


@pytest.mark.parametrize("text, field, words", [
    ("{workers: 2, gpu: 0.5}", "resources.workers", "whole GPU of its own"),
    ("{workers: 2, gpu: 2}", "resources.workers", "set gpu: 1"),
    ("{workers: 1, gpu: 2}", "resources.workers", "set workers: 2"),
    ("{workers: 0}", "resources.workers", "greater than or equal to 1"),
    ("{gpu: 1.5}", "resources.gpu", "whole number"),
])
def test_bad_resources_name_the_field(text, field, words):
    with pytest.raises(ConfigError) as info:
        parse_experiment(TINY.format(resources=text), source="exp.yaml")
    assert info.value.path == field and words in str(info.value)


@pytest.mark.parametrize("extra, words", [
    ("validation: {kfold: {folds: 3}}\n", "k-fold validation"),
    ("strategy: {federated: {}}\n", "strategy 'federated'"),
    ("strategy: {standard: {}, dp_sgd: {}}\n", "strategy 'dp_sgd'"),
    ("architecture: {hist_gbt: {}}\n", "architecture 'hist_gbt'"),
    ("distillation: {trials: 1, architecture: {mlp: {depth: 1, width: 8}}}\n", "distillation"),
])
def test_what_workers_cannot_train_is_refused_before_the_search(tmp_path, extra, words):
    from automl.runner import prepare

    text = TINY.format(resources="{workers: 2}") + extra
    if extra.startswith("architecture"):
        text = text.replace("architecture: {mlp: {depth: 1, width: 16}}\n", "")
    path = write_experiment(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        prepare(path)
    assert info.value.path == "resources.workers", str(info.value)
    assert words in str(info.value) and "workers: 1" in str(info.value)
    prepare(write_experiment(tmp_path, text.replace("{workers: 2}", "{workers: 1}"), "ok.yaml"))


def test_a_config_without_workers_keeps_its_search_hash(tmp_path):
    from automl.runner import search_hash

    plain = parse_experiment(TINY.format(resources="{cpu: 1}"))
    assert search_hash(plain) == search_hash(parse_experiment(
        TINY.format(resources="{cpu: 1}").replace("resources: {cpu: 1}\n", "")))
    assert "workers" not in json.dumps(plain.model_dump(mode="json")["training"])


# ---- DDP on shards, two real gloo ranks ---------------------------------------------------------

def _rank(rank: int, world: int, port: int, out: str, batch_size: int) -> None:
    import torch.distributed as dist

    from automl.components import DataSpec
    from automl.trial.data_parallel import Shard
    from automl.trial.device import DevicePlan
    from automl.trial.training import GradientLoop, Trainer
    from automl_plugins.tasks.classification import Classification
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    x = torch.as_tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)[:176]  # even rows
    y = torch.as_tensor(y[:176])
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(13, 3))
    training = {"lr": 0.05, "batch_size": batch_size, "optimizer": "adam", "momentum": 0.0,
                "weight_decay": 0.0, "label_smoothing": 0.0}
    shard = Shard(rank, world, seed=7) if world > 1 else None
    trainer = Trainer(model, x, y, Classification(), DataSpec("tabular", (13,), 3), training, [],
                      DevicePlan("cpu", False, 1), torch.Generator().manual_seed(0), shard=shard)
    loop = GradientLoop(trainer)
    orders, losses = [], []
    for _ in range(2):
        if shard is not None:
            orders.append(shard.order(len(x), trainer.epochs_started + 1, "cpu").tolist())
        losses.append(loop.epoch())
    torch.save({"state": loop.model.state_dict(), "orders": orders, "losses": losses,
                "wrapped": type(loop.model).__name__,
                "rows": shard.rows if shard else len(x)}, f"{out}/rank{rank}.pt")
    if world > 1:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # two spawned processes import torch and automl: ~10 s on an idle machine
def test_two_ranks_train_disjoint_shards_and_match_one_full_batch_process(tmp_path):
    """With a batch as large as a shard, the gradients DDP averages over two equal halves are the
    full batch's gradient: two ranks end where one process on every row ends."""
    import torch.multiprocessing as mp

    (tmp_path / "two").mkdir()
    (tmp_path / "one").mkdir()
    mp.spawn(_rank, args=(2, _free_port(), str(tmp_path / "two"), 88), nprocs=2, join=True)
    _rank(0, 1, 0, str(tmp_path / "one"), 176)  # one process, one batch of all 176 rows
    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt") for r in (0, 1)]
    alone = torch.load(tmp_path / "one" / "rank0.pt")
    for epoch in range(2):  # each epoch the ranks split the rows between them, reshuffled
        first, second = (set(r["orders"][epoch]) for r in ranks)
        assert len(first) == len(second) == 88 and not first & second
        assert first | second == set(range(176))
    assert ranks[0]["orders"][0] != ranks[0]["orders"][1]
    for rank in ranks:
        assert rank["rows"] == 88 and rank["wrapped"] == "Sequential"  # the plain module
        assert rank["losses"] == pytest.approx(alone["losses"], rel=1e-5)  # all-reduced mean
        for name, value in rank["state"].items():
            torch.testing.assert_close(value, alone["state"][name], rtol=1e-5, atol=1e-6)


# ---- a search as a user runs it ------------------------------------------------------------------

E2E = textwrap.dedent("""\
    name: dp-wine
    seed: 3
    dataset: wine
    architecture: {mlp: {depth: 1, width: 32}}
    pruning: {magnitude: {ratio: 0.5}}
    training: {epochs: 3, fine_tune_epochs: 1, batch_size: 16, lr: 0.01}
    search: {num_trials: 1, sampler: random, early_stopping: none}
    ensemble: {enabled: false}
    resources: {workers: 2, cpu: 1}
    """)


@pytest.mark.slow
def test_two_workers_train_each_trial_and_the_model_exports_and_predicts(tmp_path, automl_cmd):
    from sklearn.datasets import load_wine

    from automl.store import Store
    from tests.test_predict_raw import predict_cli, test_indices

    write_experiment(tmp_path, E2E)
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    run = subprocess.run([*automl_cmd, "run", "exp.yaml", "--db", db], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    with Store(db, create=False) as store:
        record = store.experiment("dp-wine")
    trials = record.trials
    assert len(trials) == 1 and all(t.status == "completed" for t in trials)
    n_train = 178 - 2 * round(178 * 0.2)  # the rows left after the validation and test splits
    for trial in trials:
        # every epoch reported (by rank 0), with the same names as a one-process trial
        assert [h["epoch"] for h in trial.history if "val/accuracy" in h] == [1, 2, 3]
        assert all("train/loss" in h for h in trial.history if "val/accuracy" in h)
        # two workers, each trained on its half of the rows
        metrics = trial.metrics
        assert metrics["train/workers"] == 2
        assert metrics["train/rows_rank0"] == metrics["train/rows_rank1"] == math.ceil(
            n_train / 2)
        assert metrics["val/accuracy"] > 0.6 and metrics["model/nonzero_params"] > 0
        assert Path(trial.checkpoint).is_dir()
    best = record.evaluation.best().metrics["test/accuracy"]

    out = tmp_path / "model"
    exported = subprocess.run([*automl_cmd, "export", "dp-wine", "--out", str(out), "--db", db],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    frame = load_wine(as_frame=True).frame
    rows = test_indices(len(frame), frame["target"].to_numpy(), seed=3)
    frame.iloc[rows].to_csv(tmp_path / "rows.csv", index=False)
    got = predict_cli(automl_cmd, out, tmp_path / "rows.csv", tmp_path / "pred.csv",
                      cwd=tmp_path)
    manifest = json.loads((out / "model.json").read_text())
    truth = np.asarray(manifest["class_names"])[frame["target"].to_numpy()[rows]]
    assert float((got["prediction"].astype(str).to_numpy() == truth).mean()) == best


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_gpu_two_trains_each_trial_on_two_gpus_with_nccl(tmp_path, automl_cmd):
    """``gpu: 2``: two workers, one GPU each, NCCL between them (run on a multi-GPU machine)."""
    from automl.store import Store

    write_experiment(tmp_path, E2E.replace("{workers: 2, cpu: 1}", "{gpu: 2}")
                     .replace("training: {", "training: {amp: true, "))
    db = f"sqlite:///{tmp_path / 'automl.db'}"
    run = subprocess.run([*automl_cmd, "run", "exp.yaml", "--db", db], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    with Store(db, create=False) as store:
        (trial,) = store.experiment("dp-wine").trials
    assert trial.status == "completed" and trial.device == "cuda"
    assert trial.metrics["train/workers"] == 2 and trial.metrics["val/accuracy"] > 0.6
