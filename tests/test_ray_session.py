"""Embedded Ray: a new local instance every time, every process listening on loopback only."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.cluster_fixtures import LocalCluster

pytestmark = pytest.mark.slow

# Starts embedded Ray as automl does, runs a task and keeps an actor (a trial's process) alive,
# then prints every TCP socket in LISTEN state of the process and its descendants.
LISTENERS_SCRIPT = """
import json, os, sys, time
import ray
from automl.ray_session import start_embedded_ray
sys.path.insert(0, sys.argv[1])
from tests.test_ray_session import listening_sockets

start_embedded_ray(num_cpus=2)

@ray.remote
class Trial:
    def pid(self):
        return os.getpid()

@ray.remote
def task():
    return os.getpid()

actor = Trial.remote()
workers = {ray.get(actor.pid.remote()), ray.get(task.remote())}
time.sleep(1)
print(json.dumps({"driver": os.getpid(), "workers": sorted(workers),
                  "node_ip": ray.util.get_node_ip_address(),
                  "sockets": listening_sockets(os.getpid())}))
ray.shutdown()
"""


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6} (32-bit words in host byte order) as text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_sockets(root_pid: int) -> list[dict]:
    """TCP sockets in LISTEN state held by ``root_pid`` and its descendants (Linux /proc)."""
    owners: dict[str, tuple[int, str]] = {}
    for pid in _descendants(root_pid):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners[target[8:-1]] = (pid, name)
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in owners:  # 0A: LISTEN
                continue
            host, port = fields[1].split(":")
            pid, name = owners[fields[9]]
            found.append({"pid": pid, "process": name, "address": _address(host),
                          "port": int(port, 16)})
    return found


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def test_every_process_of_embedded_ray_listens_on_loopback_only() -> None:
    repo = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", LISTENERS_SCRIPT, repo], capture_output=True,
                          text=True, timeout=180, env=env, cwd=repo)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    sockets = report["sockets"]
    owners = {s["process"] for s in sockets}
    pids = {s["pid"] for s in sockets}
    # The processes that serve gRPC: GCS, raylet, the driver and the workers (task and actor).
    assert {"gcs_server", "raylet"} <= owners, sockets
    assert report["driver"] in pids and set(report["workers"]) <= pids, sockets
    assert [s for s in sockets if not _is_loopback(s["address"])] == []
    assert report["node_ip"] == "127.0.0.1"


def test_the_address_parser_reads_both_tables() -> None:
    assert _address("0100007F") == "127.0.0.1"
    assert _address("00000000") == "0.0.0.0"
    assert _is_loopback(_address("0000000000000000FFFF00000100007F"))  # ::ffff:127.0.0.1
    assert not _is_loopback(_address("00000000000000000000000000000000"))  # ::


@pytest.mark.cluster
def test_a_run_without_address_never_joins_a_running_cluster(tmp_path: Path,
                                                              automl_cmd) -> None:
    """``ray start`` leaves its address in Ray's temp dir, where a plain ``ray.init()`` finds
    and joins it; ``automl run`` without ``--address`` starts a new local instance instead."""
    from automl.store import Store

    cluster = LocalCluster(workers=0, cpus_per_node=2).start()
    ray_tmp = Path(tempfile.mkdtemp(prefix="rj-", dir="/tmp"))
    try:
        # Make the cluster's temp dir Ray's default one for the run, as `ray start` without
        # --temp-dir would have; the cluster's token is there too, so joining would succeed.
        (ray_tmp / "ray").symlink_to(cluster.root / "head")
        assert (ray_tmp / "ray" / "ray_current_cluster").exists()
        env = {**cluster.env, "RAY_TMPDIR": str(ray_tmp)}
        (tmp_path / "x.yaml").write_text("""
name: local-only
dataset: digits
architecture: {mlp: {depth: 1, width: 16}}
training: {epochs: 1, fine_tune_epochs: 0}
search: {num_trials: 2, sampler: random, early_stopping: none}
ensemble: {enabled: false}
""")
        db = f"sqlite:///{tmp_path / 'x.db'}"
        done = subprocess.run([*automl_cmd, "run", "x.yaml", "--db", db], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        trials = Store(db, create=False).experiment("local-only").trials
        nodes = {t.node_id for t in trials}
        assert len(trials) == 2 and None not in nodes
        assert nodes.isdisjoint(cluster.node_ids), (nodes, cluster.node_ids)
    finally:
        cluster.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
