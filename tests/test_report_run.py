"""``automl report`` as a user runs it, on a real experiment: while it runs and once it has
finished, each page opened in headless Chromium (no console error, nothing fetched, every plot
drew data, the screenshot is not blank)."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import pytest

from tests.browser import assert_sound, open_report
from tests.conftest import write_experiment

pytestmark = pytest.mark.slow

#: a user's plugin file: an architecture whose every trial fails
BOOM = """
from automl.components import Architecture

class Boom(Architecture):
    name = "boom"
    description = "fails in build()"

    def build(self, params, spec):
        raise MemoryError("boom: this architecture always fails")

def automl_register_architectures(registrar):
    registrar.add(Boom)
"""

EXPERIMENT = """
name: reported
seed: 0
plugins: [boom.py]
dataset: {name: digits, split: {val: 0.2, test: 0.2}}
objectives: [{metric: accuracy, mode: max}]
record: [latency_ms]
architecture:
  mlp: {depth: {low: 1, high: 2}, width: {low: 32, high: 256, log: true}}
  cnn: {channels: {low: 8, high: 24}, depth: 1}
  boom: {}
augmentations:
  shift: {max_shift: 1}
  noise: {std: {low: 0.01, high: 0.2, log: true}}
pruning:
  magnitude: {ratio: {low: 0.0, high: 0.7}}
training: {epochs: 4, fine_tune_epochs: 1, batch_size: [64]}
search: {sampler: random, early_stopping: asha, num_trials: 14, max_concurrent: 2}
resources: {cpu: 1, gpu: 0}
"""


def _state(db) -> tuple[str | None, int]:
    """The experiment's status and its number of finished trials (None before its row)."""
    if not db.exists():
        return None, 0
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            row = conn.execute("select id, status from automl_experiments where name = "
                               "'reported'").fetchone()
            if row is None:
                return None, 0
            (done,) = conn.execute("select count(*) from automl_trials where experiment_id = ? "
                                   "and status != 'running'", (row[0],)).fetchone()
            return row[1], done
    except sqlite3.OperationalError:  # the tables are being created
        return None, 0


def test_report_of_a_real_experiment_while_it_runs_and_when_it_has_finished(in_tmp, automl_cmd):
    (in_tmp / "boom.py").write_text(BOOM)
    path = write_experiment(in_tmp, EXPERIMENT)
    run = subprocess.Popen([*automl_cmd, "run", str(path)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and run.poll() is None:
            status, done = _state(in_tmp / "automl.db")
            if status == "running" and done >= 2:
                break
            time.sleep(0.5)
        assert run.poll() is None, "the run ended before a report could be made during it"
        live = subprocess.run([*automl_cmd, "report", "reported", "-o", "live.html"],
                              capture_output=True, text=True, timeout=300)
        assert live.returncode == 0, live.stdout + live.stderr
        assert "running" in live.stdout
        opened = open_report(in_tmp / "live.html", in_tmp / "live.png")
        assert_sound(opened)
        assert "status running" in opened.text
        assert "No test-split scores yet" in opened.text
        output, _ = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, output

    done = subprocess.run([*automl_cmd, "report", "reported"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "written to reported.html" in done.stdout
    opened = open_report(in_tmp / "reported.html", in_tmp / "reported.png")
    assert_sound(opened)
    show = subprocess.run([*automl_cmd, "show", "reported", "--json"], capture_output=True,
                          text=True, timeout=300)
    import json

    document = json.loads(show.stdout)
    trials = document["trials"]
    completed = [t for t in trials if t["status"] == "completed"]
    failed = [t for t in trials if t["status"] == "failed"]
    assert failed and all(t["params"]["architecture"] == "boom" for t in failed)
    text = opened.text
    # the sections with something to show show it; the plots' titles are drawn
    titles = [p["title"] for p in opened.plots]
    assert "accuracy (validation) by trial" in titles
    assert "accuracy (validation) per epoch" in titles
    assert "accuracy (validation) by architecture" in titles
    assert "accuracy (validation) against latency_ms" in titles
    assert "Failed trials by error type" in titles and "MemoryError" in text
    assert any(t.startswith("Test split (evaluation #1)") for t in titles)
    if len(completed) >= 5:
        assert "Importance for accuracy (validation)" in titles
    else:
        assert "importances need at least 5" in text
    if document["ensemble"] is not None:
        assert "Ensemble against the best single trial (validation)" in titles
    assert f"{len(trials)} of {len(trials)} trials shown" in text
