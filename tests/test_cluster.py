"""The multi-node path: `automl run --address` on a real two-node Ray cluster; cluster.yaml.

The cluster is two `ray start` nodes on this machine (head + worker, one CPU each, token auth on),
as on real hardware except that both share a hostname and a file system. Trials are told apart by
their Ray node id; the shared file system stands in for the cluster's shared storage.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from automl.store import Store
from automl.trial.artifacts import read_predictions, read_state_dict
from tests.cluster_fixtures import LocalCluster
from tests.conftest import REPO, write_experiment

EXPERIMENT = """\
name: {name}
seed: 0
dataset: digits
objectives: [accuracy]
architecture:
  mlp: {{}}
pruning:
  magnitude: {{ratio: {{low: 0.0, high: 0.5}}}}
training:
  epochs: 2
  fine_tune_epochs: 1
search:
  num_trials: 6
  early_stopping: none
  max_concurrent: 2
resources: {{cpu: 1, gpu: 0}}
"""


@pytest.fixture
def ray_cluster():
    cluster = LocalCluster(workers=1, cpus_per_node=1)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_search_runs_on_both_nodes_of_a_cluster(ray_cluster, tmp_path, automl_cmd):
    assert len(ray_cluster.node_ids) == 2
    name = "cluster-digits"
    exp = write_experiment(tmp_path, EXPERIMENT.format(name=name))
    db = f"sqlite:///{tmp_path / 'x.db'}"
    runs = tmp_path / "runs"

    run = subprocess.run([*automl_cmd, "run", str(exp), "--address", ray_cluster.address,
                          "--db", db, "--artifacts", str(runs)], cwd=tmp_path,
                         env=ray_cluster.env, capture_output=True, text=True, timeout=180)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output + ray_cluster.logs()
    assert "Traceback" not in output

    show = subprocess.run([*automl_cmd, "show", name, "--db", db, "--json"], cwd=tmp_path,
                          env=ray_cluster.env, capture_output=True, text=True, timeout=120)
    assert show.returncode == 0, show.stderr
    document = json.loads(show.stdout)
    trials = document["trials"]
    assert document["experiment"]["status"] == "completed"
    assert len(trials) == 6
    assert [t["status"] for t in trials] == ["completed"] * 6, [t["error"] for t in trials]

    # Every trial ran on a node of this cluster, and both nodes ran trials.
    assert {t["node_id"] for t in trials} == set(ray_cluster.node_ids)
    assert {t["node"] for t in trials} == {socket.gethostname()}

    # Checkpoints written on either node are on the driver's (here: shared) file system.
    for trial in trials:
        assert trial["checkpoint"], trial
        path = Path(trial["checkpoint"])
        assert path.is_dir() and path.is_relative_to(runs.resolve() / name)
        assert (path / "model.pt").is_file() and (path / "predictions.npz").is_file()
        assert read_state_dict(path)
        predictions = read_predictions(path)
        assert "test_y" not in predictions  # trials keep no test labels
        assert predictions["test_proba"].shape == (360, 10)  # digits' test split
        assert json.loads((path / "trial.json").read_text())["params"] == trial["params"]
    best = document["best"]
    assert best["metrics"]["val/accuracy"] == max(t["metrics"]["val/accuracy"] for t in trials)


PACED_EPOCHS = """
import time


def automl_epoch_finished(trial_id, params, epoch, metrics):
    time.sleep(0.5)
"""


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_dead_worker_node_loses_no_trial_row(ray_cluster, tmp_path, automl_cmd):
    """kill -9 every process of the worker node mid-run: the trials placed there fail (with the
    cause), the search finishes on the head, and store rows == study trials == the budget."""
    import sqlite3
    import time

    import optuna

    name = "node-loss"
    # Each epoch is paced to half a second (a plugin's worker-side epoch hook), so a trial on
    # the worker node is still running when the node is killed (unpaced, a trial takes 0.3 s).
    (tmp_path / "pace.py").write_text(PACED_EPOCHS)
    exp = write_experiment(tmp_path, "plugins: [pace.py]\n" + EXPERIMENT.format(name=name)
                           .replace("num_trials: 6", "num_trials: 10")
                           .replace("epochs: 2", "epochs: 4"))
    db_file = tmp_path / "x.db"
    db = f"sqlite:///{db_file}"
    run = subprocess.Popen([*automl_cmd, "run", str(exp), "--address", ray_cluster.address,
                            "--db", db, "--artifacts", str(tmp_path / "runs")], cwd=tmp_path,
                           env=ray_cluster.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        on_worker = []
        while not on_worker:  # a trial ran on the worker node: kill it while the next works
            assert run.poll() is None, run.stdout.read() + ray_cluster.logs()
            assert time.monotonic() < deadline, "no trial ran on the worker node"
            time.sleep(0.5)
            if db_file.exists():
                with sqlite3.connect(db_file, timeout=30) as conn:
                    try:
                        on_worker = conn.execute(
                            "select number from automl_trials where node_id = ?",
                            (ray_cluster.node_ids[1],)).fetchall()
                    except sqlite3.OperationalError:
                        pass
        assert ray_cluster.kill_node("w0")
        output, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert "Traceback" not in output, output
    record = Store(db, create=False)
    trials = record.experiment(name).trials
    study = optuna.load_study(study_name=f"automl:{name}", storage=db)
    assert len(trials) == len(study.trials) == 10, (output, [(t.number, t.status) for t in trials])
    states = sorted(t.state.name for t in study.trials)
    statuses = sorted("FAIL" if t.status == "failed" else "COMPLETE" for t in trials)
    assert states == statuses, (states, statuses)
    failed = [t for t in trials if t.status == "failed"]
    assert failed and all(t.error for t in failed)  # the trials the node took with it
    assert record.experiment(name).status == "completed"


# ---- cluster.yaml --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def launcher_config() -> dict:
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_cluster_yaml_is_a_valid_launcher_config(launcher_config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    # The same defaults-merge and JSON-schema check that `ray up` does (no cloud calls).
    validate_config(prepare_config(copy.deepcopy(launcher_config)))

    types = launcher_config["available_node_types"]
    head = types[launcher_config["head_node_type"]]
    workers = [t for name, t in types.items() if name != launcher_config["head_node_type"]]
    assert "GPU" not in head["resources"]
    assert workers and all(t["min_workers"] >= 1 for t in workers)
    assert all(t["node_config"]["InstanceType"].startswith(("g", "p")) for t in workers)


def test_cluster_yaml_adapts_to_the_local_provider(launcher_config):
    """The on-premises variant that docs/cluster.md describes is also a valid config."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = copy.deepcopy(launcher_config)
    del config["available_node_types"], config["head_node_type"]
    config["provider"] = {"type": "local", "head_ip": "10.0.0.10",
                          "worker_ips": ["10.0.0.11", "10.0.0.12"]}
    config["auth"] = {"ssh_user": "ubuntu", "ssh_private_key": "~/.ssh/id_ed25519"}
    validate_config(prepare_config(config))


def test_cluster_yaml_keeps_ray_private_and_secrets_out(launcher_config):
    starts = launcher_config["head_start_ray_commands"] + launcher_config[
        "worker_start_ray_commands"]
    ray_starts = [c for c in starts if "ray start" in c]
    assert len(ray_starts) == 2
    for command in ray_starts:
        assert "--dashboard-host=127.0.0.1" in command
        assert "RAY_AUTH_MODE=token" in command and "--disable-usage-stats" in command
    text = (REPO / "cluster.yaml").read_text()
    assert "0.0.0.0" not in text
    assert not re.search(r"(PGPASSWORD|password)\s*[:=]\s*\S", text, re.IGNORECASE)


@pytest.mark.parametrize("kind", ["head", "worker"])
def test_cluster_yaml_installs_torch_before_the_project(launcher_config, kind):
    commands = launcher_config["setup_commands"] + launcher_config[f"{kind}_setup_commands"]
    torch = next(i for i, c in enumerate(commands) if re.match(r"pip install (\S+ )*torch\b", c))
    project = next(i for i, c in enumerate(commands) if "/automl[postgres]" in c)
    assert torch < project
    mounts = launcher_config["file_mounts"]
    assert any(local == "." and remote in commands[project] for remote, local in mounts.items())


def test_cluster_docs_cover_the_essentials():
    docs = (REPO / "docs" / "cluster.md").read_text()
    for needle in ("ray up cluster.yaml", "ray attach cluster.yaml", "--address auto",
                   "PGPASSWORD", "gpu: 0.5", "storage_path", "tests/test_cluster.py"):
        assert needle in docs, needle
