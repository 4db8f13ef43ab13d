"""The README's quickstart, run as a user runs it: the `automl` command in a fresh directory."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_quickstart_end_to_end(in_tmp, automl_cmd):
    run = subprocess.run([*automl_cmd, "run", str(REPO / "experiments" / "quickstart.yaml")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert "best trial" in run.stdout
    # what happens before the first trial finishes is said as it happens
    said = run.stdout.splitlines()
    # embedded Ray starts while the data loads
    assert said[0] == "starting embedded Ray ..." and said[1].startswith("dataset 'digits' loaded in")
    assert re.search(r"^\s*[\d.]+s 1 trial running 0/24 done$", run.stdout, re.M)
    # the best trial's model facts are shown, not dashes; the guard note (if any) once
    assert re.search(r"^model: nonzero_params \d+, params \d+, params_before_pruning \d+, saved_bytes \d+$", run.stdout, re.M)
    assert run.stdout.count("guard:") <= 1

    # every trial is in the SQLite file in the working directory
    with sqlite3.connect(in_tmp / "automl.db") as conn:
        (count,) = conn.execute("select count(*) from automl_trials").fetchone()
    assert count == 24

    show = subprocess.run([*automl_cmd, "show", "quickstart", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert show.returncode == 0, show.stderr
    document = json.loads(show.stdout)
    trials = document["trials"]
    assert len(trials) == 24 and document["experiment"]["status"] == "completed"
    assert {t["params"]["architecture"] for t in trials} == {"mlp", "cnn"}
    for aug in ("shift", "noise"):
        assert any(t["params"][f"augmentation.{aug}.enabled"] for t in trials)
    ratios = {round(t["params"]["pruning.magnitude.ratio"], 3) for t in trials}
    assert len(ratios) > 10
    assert all(t["status"] in ("completed", "early_stopped") for t in trials)

    best = document["best"]
    # test scores exist only in the final evaluation, made once after the search and ensemble
    assert not any(k.startswith("test/") for t in trials for k in t["metrics"])
    final = document["final_evaluation"]
    assert final["number"] == 1 and final["split"] == "test" and final["created_at"]
    best_test, ensemble_test = final["scored"]
    assert best_test["trial"] == best["number"] and best_test["roles"] == ["best"]
    assert best_test["metrics"]["test/accuracy"] >= 0.97
    # chosen on validation: no completed trial has a better validation accuracy
    completed = [t for t in trials if t["status"] == "completed"]
    assert best["metrics"]["val/accuracy"] == max(t["metrics"]["val/accuracy"] for t in completed)
    assert best["checkpoint"] and (in_tmp / "runs" / "quickstart").is_dir()

    # the ensemble stage ran after the search, on stored validation predictions
    ensemble = document["ensemble"]
    assert ensemble["ensembler"] == "greedy" and ensemble["best_single"] == best["number"]
    assert abs(sum(m["weight"] for m in ensemble["members"]) - 1) < 1e-9
    completed_numbers = {t["number"] for t in completed}
    assert {m["trial"] for m in ensemble["members"]} <= completed_numbers
    for side in ("ensemble", "best_single"):
        assert "val_check/accuracy" in ensemble["scores"][side]
        assert not any(k.startswith("test/") for k in ensemble["scores"][side])
    assert ensemble_test["subject"] == "ensemble" and ensemble_test["ensemble_id"] == ensemble["id"]
    assert "test/accuracy" in ensemble_test["metrics"]
    assert "ensemble" in run.stdout and "final evaluation #1 (test split" in run.stdout

    table = subprocess.run([*automl_cmd, "show", "quickstart"], capture_output=True, text=True,
                           timeout=120)
    assert table.returncode == 0 and "best trial" in table.stdout
    assert "best single" in table.stdout and "final evaluation #1" in table.stdout
    listing = subprocess.run([*automl_cmd, "ls"], capture_output=True, text=True, timeout=120)
    assert "quickstart" in listing.stdout

    again = subprocess.run([*automl_cmd, "run", str(REPO / "experiments" / "quickstart.yaml")],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2
    assert "already exists" in again.stderr and "Traceback" not in again.stderr
