"""A real multi-node Ray cluster on this machine, started with ``ray start`` as on real hardware.

Each node is a separate ``ray start`` with its own temp dir (kept short: Ray's unix sockets live
under it and socket paths are limited to 107 bytes), its own process session and explicit ports,
so nothing collides with another test's embedded Ray. Token authentication is on, with a token
made for this cluster only (``RAY_AUTH_TOKEN_PATH``), never ``~/.ray/auth_token``.

Teardown kills only what this cluster started: the process groups of its ``ray start`` sessions
and anything whose command line names its temp dir. ``ray stop`` would kill every Ray on the
machine, so it is not used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE_BYTES = 200 * 1024**2

NODES_SCRIPT = """
import json, logging, sys
import ray
ray.init(address=sys.argv[1], logging_level=logging.ERROR, log_to_driver=False,
         include_dashboard=False)
print(json.dumps([{"id": n["NodeID"], "cpu": n["Resources"].get("CPU", 0)}
                  for n in ray.nodes() if n["Alive"]]))
ray.shutdown()
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalCluster:
    """A head and ``workers`` worker nodes, each with ``cpus_per_node`` CPUs and no GPU."""

    workers: int = 1
    cpus_per_node: int = 1
    root: Path = field(init=False)
    port: int = field(init=False)
    env: dict[str, str] = field(init=False)
    node_ids: list[str] = field(default_factory=list, init=False)
    _sessions: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
        self.port = free_port()
        token = self.root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        env = {k: v for k, v in os.environ.items()
               if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
        env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
                   RAY_AUTH_TOKEN_PATH=str(token), PYTHONUNBUFFERED="1")
        self.env = env

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 120) -> "LocalCluster":
        deadline = time.monotonic() + timeout
        common = ["--num-cpus", str(self.cpus_per_node), "--num-gpus", "0",
                  "--node-ip-address", "127.0.0.1", "--object-store-memory",
                  str(OBJECT_STORE_BYTES), "--dashboard-agent-listen-port", str(free_port()),
                  "--disable-usage-stats"]
        self._ray_start("head", ["--head", "--port", str(self.port), "--include-dashboard",
                                 "false", "--dashboard-host", "127.0.0.1", "--dashboard-port",
                                 str(free_port()), *common], deadline)
        for index in range(self.workers):
            common[common.index("--dashboard-agent-listen-port") + 1] = str(free_port())
            self._ray_start(f"w{index}", ["--address", self.address, "--dashboard-host",
                                          "127.0.0.1", *common], deadline)
        self.node_ids = self._wait_for_nodes(self.workers + 1, deadline)
        return self

    def _ray_start(self, name: str, args: list[str], deadline: float) -> None:
        temp_dir = self.root / name
        temp_dir.mkdir()
        log = self.root / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen([RAY, "start", "--temp-dir", str(temp_dir), *args],
                                    stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        # Its daemons stay in the session (and process group) this ``ray start`` leads.
        self._sessions.append(proc.pid)
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            raise RuntimeError(f"`ray start` ({name}) "
                               f"{'timed out' if code is None else f'exited {code}'}:\n"
                               f"{log.read_text()[-4000:]}")

    def _wait_for_nodes(self, count: int, deadline: float) -> list[str]:
        last = ""
        while time.monotonic() < deadline:
            run = subprocess.run([sys.executable, "-c", NODES_SCRIPT, self.address],
                                 capture_output=True, text=True, env=self.env,
                                 timeout=max(1.0, deadline - time.monotonic()))
            if run.returncode == 0:
                nodes = json.loads(run.stdout.strip().splitlines()[-1])
                if len(nodes) == count:
                    return sorted(n["id"] for n in nodes)
                last = f"{len(nodes)} alive node(s): {nodes}"
            else:
                last = run.stderr[-2000:]
            time.sleep(1)
        raise RuntimeError(f"cluster did not reach {count} alive nodes: {last}")

    def stop(self, grace: float = 3.0) -> None:
        """Stop every process this cluster started (workers first), then remove its files."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for sid in reversed(self._sessions):
                try:
                    os.killpg(sid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in self._processes():  # anything that left our process groups
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            end = time.monotonic() + (grace if sig == signal.SIGTERM else 5.0)
            while self._processes() and time.monotonic() < end:
                time.sleep(0.2)
            if not self._processes():
                break
        shutil.rmtree(self.root, ignore_errors=True)

    def kill_node(self, name: str) -> list[int]:
        """SIGKILL every process of node ``name`` (``w0``, ...): its raylet, object store and
        trial workers, as when the machine dies. Returns the pids killed."""
        index = [f"w{i}" for i in range(self.workers)].index(name) + 1
        session = self._sessions[index]
        marker = f"{self.root / name}/".encode()
        victims = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                pgrp = int(stat[stat.rindex(")") + 2:].split()[2])
                if pgrp == session or marker in (entry / "cmdline").read_bytes():
                    victims.append(int(entry.name))
            except (OSError, ValueError):
                pass
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return victims

    def _processes(self) -> list[int]:
        """Live (not zombie) processes in our process groups or naming our temp dir (Linux)."""
        groups = set(self._sessions)
        marker = f"{self.root}/".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
                state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
                if state == "Z":
                    continue
                if int(pgrp) in groups or marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, ValueError):
                pass
        return found

    def logs(self) -> str:
        """The ``ray start`` output of every node, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                         for p in sorted(self.root.glob("*.log")))
