"""Live results as a user sees them, end to end with real runs: ``automl run``'s live display on
a pseudo-terminal, ``automl show --watch`` following a real running experiment (and noticing a
killed one), and ``automl dashboard`` serving the study on loopback only."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path

import pytest

from automl.store import Store
from tests.cluster_fixtures import free_port
from tests.conftest import optional_module
from tests.test_resume import descendants

pytestmark = pytest.mark.slow

BOOM = """
from automl.components import Architecture

class Boom(Architecture):
    name = "boom"
    description = "fails in every trial"

    def build(self, params, spec):
        raise RuntimeError("boom")

def automl_register_architectures(registrar):
    registrar.add(Boom)
"""

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_on_terminal(cmd: list[str], cwd: Path, timeout: float = 400) -> tuple[int, str]:
    """Run ``cmd`` with stdin, stdout and stderr on a new pseudo-terminal (150 x 50); returns
    its exit code and everything it wrote, colour and cursor codes removed."""
    import pty

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERM")}
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm-256color"}, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), ANSI.sub("", out.decode(errors="replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_run_on_a_terminal_shows_live_progress_and_log_lines_on_request(in_tmp, automl_cmd):
    (in_tmp / "boom.py").write_text(BOOM)
    (in_tmp / "mixed.yaml").write_text(
        "name: mixed\nseed: 3\nplugins: [boom.py]\ndataset: digits\n"
        "architecture: {boom: {}, mlp: {depth: 1, width: 16}}\n"
        "training: {epochs: 3, fine_tune_epochs: 0}\n"
        "search: {num_trials: 5, sampler: random, early_stopping: none, max_concurrent: 2}\n"
        "ensemble: false\n")
    code, text = run_on_terminal([*automl_cmd, "run", "mixed.yaml"], in_tmp)
    assert code == 0, text[-3000:]
    record = Store(f"sqlite:///{in_tmp / 'automl.db'}", create=False).experiment("mixed")
    failed = sum(t.status == "failed" for t in record.trials)
    completed = [t for t in record.trials if t.status == "completed"]
    assert failed and completed, [t.status for t in record.trials]  # the seed gives both kinds
    best = max(completed, key=lambda t: t.metrics["val/accuracy"])
    # the live display: counts of the budget, elapsed and left, best so far, running trials
    assert re.search(r"0/5 done, [12] running, 0 failed · elapsed \d+:\d\d · left -", text), text
    assert (f"5/5 done, 0 running, {failed} failed · elapsed " in text)
    assert f"best val/accuracy {best.metrics['val/accuracy']:.4g} (#{best.number})" in text
    assert re.search(r"running\s+#\s+architecture\s+epoch\s+latest", text)
    assert "boom" in text and "RuntimeError" in text  # the failed trials, in the latest list
    assert not re.search(r"^\s*\d+\.\ds #\d+ ", text, re.M)  # not the one-line-per-trial log
    # the summary after the run, as without a terminal
    assert f"mixed  status completed  seed 3  trials 5 ({len(completed)} completed" in text

    code, text = run_on_terminal([*automl_cmd, "run", "mixed.yaml", "--name", "lines",
                                  "--max-trials", "2", "--log-lines"], in_tmp)
    assert code == 0, text[-3000:]
    assert re.search(r"^\s*\d+\.\ds #\d+\s+(completed|failed) .* 1/2 done, \d running, \d failed",
                     text, re.M), text
    assert "2/2 done" in text and "· elapsed" not in text


def experiment_status(db: Path, name: str) -> str | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            row = conn.execute("select status from automl_experiments where name = ?",
                               (name,)).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return None
    return row[0] if row else None


def running_histories(db: Path) -> list[int]:
    """The number of epochs stored for each running trial."""
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute("select history from automl_trials where status = 'running'")
        return [len(json.loads(r[0] or "[]")) for r in rows.fetchall()]


def kill_tree(proc: subprocess.Popen) -> None:
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


WATCHED = """
name: {name}
dataset: digits
architecture: {{mlp: {{depth: 3, width: 256}}}}
training: {{epochs: {epochs}, fine_tune_epochs: 0, batch_size: 16}}
search: {{num_trials: {trials}, early_stopping: none, max_concurrent: 1}}
ensemble: false
"""


def start_run(cwd: Path, automl_cmd: list[str], name: str, epochs: int,
              trials: int) -> subprocess.Popen:
    (cwd / f"{name}.yaml").write_text(WATCHED.format(name=name, epochs=epochs, trials=trials))
    run = subprocess.Popen([*automl_cmd, "run", f"{name}.yaml"], cwd=cwd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.monotonic() + 240
    while experiment_status(cwd / "automl.db", name) != "running":
        assert run.poll() is None, "the run ended before it was recorded"
        assert time.monotonic() < deadline, "the run was never recorded"
        time.sleep(0.2)
    return run


def test_show_watch_follows_a_running_experiment_until_it_ends(in_tmp, automl_cmd):
    db = in_tmp / "automl.db"
    epochs = 30
    run = start_run(in_tmp, automl_cmd, "watched", epochs, trials=2)
    watch = subprocess.Popen([*automl_cmd, "show", "watched", "--watch", "--interval", "0.3"],
                             cwd=in_tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        partial = []  # epochs stored for running trials, seen while they ran
        deadline = time.monotonic() + 400
        while watch.poll() is None:
            assert time.monotonic() < deadline, "the watch did not end"
            partial += [n for n in running_histories(db) if 0 < n < epochs]
            time.sleep(0.2)
        out, err = watch.communicate()
        assert run.wait(timeout=60) == 0
    finally:
        for proc in (run, watch):
            if proc.poll() is None:
                kill_tree(proc)
    assert watch.returncode == 0, err
    # running trials' epochs reached the store while they ran, in more than one batch
    assert len(set(partial)) >= 2, partial
    views = out.split("watched  status ")
    assert views[1].startswith("running")
    assert views[-1].startswith("completed  seed 0  trials 2 (2 completed)")
    assert re.search(r"│ running +│ mlp .* epoch \d+ │", out), out
    assert "running trials show their latest epoch's values" in out
    assert len(views) >= 4  # redrawn as it changed
    assert out.rstrip().endswith("└───────────────┴───────────────┴───────────────┘")


def test_show_watch_ends_when_the_run_was_killed(in_tmp, automl_cmd):
    db = in_tmp / "automl.db"
    run = start_run(in_tmp, automl_cmd, "killed", epochs=200, trials=1)
    deadline = time.monotonic() + 240
    while not running_histories(db):
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.2)
    kill_tree(run)
    done = subprocess.run([*automl_cmd, "show", "killed", "--watch", "--interval", "0.3"],
                          cwd=in_tmp, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "killed  status running" in done.stdout
    assert ("the run of 'killed' is gone (no live process holds it): it stays 'running' until "
            "it is resumed (automl run FILE --resume)") in done.stdout


@pytest.fixture(scope="module")
def two_objectives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished experiment with two objectives; returns its directory (automl.db there)."""
    directory = tmp_path_factory.mktemp("dash")
    (directory / "pair.yaml").write_text(
        "name: pair\ndataset: digits\n"
        "objectives: [{metric: accuracy, mode: max}, {metric: params, mode: min}]\n"
        "architecture: {mlp: {depth: 1, width: [16, 32]}}\n"
        "training: {epochs: 2, fine_tune_epochs: 0}\n"
        "search: {num_trials: 3, sampler: nsga2, early_stopping: none}\nensemble: false\n")
    script = Path(sys.executable).with_name("automl")
    done = subprocess.run([str(script), "run", "pair.yaml"], cwd=directory, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


def listening(port: int) -> set[str]:
    """The local addresses listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                found.add(address)
    return found


def serve(cmd: list[str], cwd: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not listening(port):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the dashboard never listened"
        time.sleep(0.2)
    return proc


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_dashboard_serves_the_study_with_metric_names_on_loopback_only(two_objectives,
                                                                        automl_cmd):
    optional_module("optuna_dashboard", "the dashboard extra is not installed")
    port = free_port()
    log = two_objectives / "dashboard.log"
    proc = serve([*automl_cmd, "dashboard", "pair", "--port", str(port)], two_objectives, port,
                 log)
    try:
        assert listening(port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0 nor any IPv6 address
        studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
        [study] = [s for s in studies if s["study_name"] == "automl:pair"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}")
        assert detail["objective_names"] == ["val/accuracy", "model/params"]
        assert detail["directions"] == ["maximize", "minimize"]
        assert len(detail["trials"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert (f"optuna-dashboard for pair (val/accuracy, model/params): "
            f"http://127.0.0.1:{port}/dashboard/studies/{study['study_id']}") in text
    assert "no authentication" not in text and "Traceback" not in text


def test_dashboard_on_another_host_warns_that_it_has_no_authentication(two_objectives,
                                                                      automl_cmd):
    optional_module("optuna_dashboard", "the dashboard extra is not installed")
    port = free_port()
    log = two_objectives / "public.log"
    proc = serve([*automl_cmd, "dashboard", "pair", "--port", str(port), "--host", "0.0.0.0"],
                 two_objectives, port, log)
    try:
        assert listening(port) == {"00000000"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = " ".join(log.read_text().split())
    assert ("warning: the dashboard listens on 0.0.0.0; it has no authentication: anyone who "
            "can reach this address and port can read the study and change it") in text
    missing = subprocess.run([*automl_cmd, "dashboard", "nope", "--port", str(port)],
                             cwd=two_objectives, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert "no experiment named 'nope'" in missing.stderr and "Traceback" not in missing.stderr
    with socket.socket() as taken:  # a port something else listens on
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        refused = subprocess.run([*automl_cmd, "dashboard", "pair", "--port", str(busy)],
                                 cwd=two_objectives, capture_output=True, text=True,
                                 timeout=120)
    assert refused.returncode == 1
    assert f"error: cannot serve the dashboard on 127.0.0.1:{busy}: Address already in use" \
        in refused.stderr and "Traceback" not in refused.stderr
