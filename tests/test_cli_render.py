"""What `automl show`, `automl ls` and `automl run` print, from real store rows in a SQLite file.

No Ray: the rows are written through the store's own API, as the runner writes them.
"""

from __future__ import annotations

import io
import re
import sys
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console

from automl.cli.app import main
from automl.cli.live import EventPrinter
from automl.cli.render import experiments_table, print_experiment
from automl.events import EnsembleFinished, TrialFinished
from automl.store import EnsembleRecord, Store

TRIAL_STATUSES = ("running", "completed", "early_stopped", "failed", "interrupted")
EXPERIMENT_STATUSES = ("running", "completed", "failed", "interrupted")
EPOCHS = 4
GUARD = "guard: the fitted weights did not beat the best single trial"
PARAMS = {"architecture": "mlp", "architecture.mlp.width": 16, "pruning": "magnitude",
          "pruning.magnitude.ratio": 0.3}


def history(epochs: int) -> list[dict[str, float]]:
    return [{"epoch": e, "train/loss": 1.0 / e, "val/accuracy": 0.5 + e / 100}
            for e in range(1, epochs + 1)]


def record_experiment(store: Store, name: str, status: str) -> int:
    """An experiment holding a trial of every status, finished with ``status``."""
    exp = store.create_experiment(
        name=name, seed=0, config={"name": name, "training": {"epochs": EPOCHS}},
        objectives=[{"metric": "accuracy", "mode": "max"}], plugins={},
        automl_version="test", artifacts_dir="/nonexistent/runs")
    for number in range(5):
        store.start_trial(exp, number, f"t{number}", dict(PARAMS))
    final = {"val/accuracy": 0.95, "test/accuracy": 0.93, "val/params": 1210.0,
             "test/params": 1210.0, "model/params_before_pruning": 1210.0,
             "model/saved_bytes": 6921.0}
    finish = dict(seed=1, node="n", device="cpu", error=None)
    store.finish_trial(exp, 1, status="completed", metrics=final, history=history(EPOCHS),
                       checkpoint="/nonexistent/ckpt", **finish)
    store.finish_trial(exp, 2, status="early_stopped", metrics={"val/accuracy": 0.6},
                       history=history(2), checkpoint=None, **finish)
    store.finish_trial(exp, 3, status="failed", metrics={}, history=history(1),
                       checkpoint=None, **{**finish, "error": "Traceback\nValueError: [bad] x"})
    # trials 0 and 4 are cut short (as a time budget or Ctrl-C leaves them); a resumed run
    # then restarts trial 0, which is running
    assert store.interrupt_running(exp) == [0, 4]
    store.start_trial(exp, 0, "t0-again", dict(PARAMS))
    if status != "running":
        store.finish_experiment(exp, status, "RuntimeError: boom" if status == "failed" else None)
    return exp


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    store = Store(url)
    try:
        for status in EXPERIMENT_STATUSES:
            record_experiment(store, f"exp-{status}", status)
        store.add_ensemble("exp-completed", EnsembleRecord(
            ensembler="greedy", settings={}, metric="accuracy", members=[1], weights=[1.0],
            best_single=1, scores={"ensemble": {"val_check/accuracy": 0.9, "test/accuracy": 0.93},
                                   "best_single": {"val_check/accuracy": 0.9,
                                                   "test/accuracy": 0.93}},
            note=GUARD + "; the ensemble falls back to the best single trial",
            created_at=datetime(2026, 1, 1)))
    finally:
        store.close()
    return url


def experiment(db: str, name: str):  # noqa: ANN201
    store = Store(db, create=False)
    try:
        return store.experiment(name)
    finally:
        store.close()


def rendered(db: str, name: str, width: int = 200) -> str:
    out = io.StringIO()
    print_experiment(Console(file=out, width=width), experiment(db, name))
    return out.getvalue()


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["automl", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out + captured.err


def status_cells(text: str) -> list[str]:
    """The status cell of each row of the trials table."""
    return [m.group(1).strip() for m in re.finditer(r"^│\s*\d+\s*│\s*(\S+)", text, re.M)]


def test_the_store_holds_every_status(db: str) -> None:
    for status in EXPERIMENT_STATUSES:
        exp = experiment(db, f"exp-{status}")
        assert exp.status == status
        assert sorted(t.status for t in exp.trials) == sorted(TRIAL_STATUSES)


@pytest.mark.parametrize("status", EXPERIMENT_STATUSES)
def test_show_renders_every_status(db: str, status: str, monkeypatch, capsys) -> None:
    code, output = cli(monkeypatch, capsys, "show", f"exp-{status}", "--db", db)
    assert code == 0, output
    assert "Traceback" not in output
    assert f"status {status}" in output
    assert sorted(status_cells(output)) == sorted(TRIAL_STATUSES)


def test_ls_renders_every_experiment_status(db: str, monkeypatch, capsys) -> None:
    code, output = cli(monkeypatch, capsys, "ls", "--db", db)
    assert code == 0, output
    for status in EXPERIMENT_STATUSES:
        assert re.search(rf"exp-{status}\s*│\s*{status}\s*│", output), output


@pytest.mark.parametrize("status", EXPERIMENT_STATUSES)
def test_statuses_are_whole_at_80_columns(db: str, status: str) -> None:
    text = rendered(db, f"exp-{status}", width=80)
    assert max(len(line) for line in text.splitlines() if line[:1] in "┏┃┡│└") <= 80
    assert sorted(status_cells(text)) == sorted(TRIAL_STATUSES), text
    out = io.StringIO()
    Console(file=out, width=80).print(experiments_table(
        [experiment(db, f"exp-{s}") for s in EXPERIMENT_STATUSES]))
    for s in EXPERIMENT_STATUSES:
        assert re.search(rf"│\s*{s}\s*│", out.getvalue()), out.getvalue()


def test_pruning_ratio_only_for_trials_that_reached_pruning(db: str) -> None:
    rows = {int(m.group(1)): m.group(0) for m in
            re.finditer(r"^│\s*(\d+)\s*│.*$", rendered(db, "exp-completed"), re.M)}
    assert "magnitude 0.30" in rows[1]  # completed: pruned after its last epoch
    for number in (0, 2, 3, 4):  # running, early stopped, failed in epoch 1, interrupted
        assert "magnitude" not in rows[number], rows[number]


def test_a_trial_failing_after_its_last_epoch_shows_its_ratio(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = Store(url)
    try:
        exp = store.create_experiment(
            name="f", seed=0, config={"training": {"epochs": EPOCHS}},
            objectives=[{"metric": "accuracy", "mode": "max"}], plugins={},
            automl_version="test", artifacts_dir=str(tmp_path))
        store.start_trial(exp, 0, "t0", dict(PARAMS))
        store.finish_trial(exp, 0, status="failed", metrics={}, history=history(EPOCHS),
                           seed=1, node="n", device="cpu", checkpoint=None,
                           error="PluginError: pruner 'magnitude': prune() raised")
    finally:
        store.close()
    assert "magnitude 0.30" in rendered(url, "f")


def test_best_trial_shows_the_model_facts(db: str) -> None:
    text = rendered(db, "exp-completed")
    assert "model: params_before_pruning 1210, saved_bytes 6921" in text
    scores = text[text.index("best trial"):text.index("model:")]
    assert "params_before_pruning" not in scores and "saved_bytes" not in scores


def test_the_guard_note_is_printed_once_by_a_run(db: str) -> None:
    """`automl run` renders the ensemble event, then the report that holds the ensemble."""
    exp = experiment(db, "exp-completed")
    out = io.StringIO()
    console = Console(file=out, width=200)
    EventPrinter(console)(EnsembleFinished(exp.ensemble, candidates=2, elapsed_s=0.1))
    print_experiment(console, exp)
    assert out.getvalue().count(GUARD) == 1, out.getvalue()


def test_progress_lines_render_every_status() -> None:
    out = io.StringIO()
    printer = EventPrinter(Console(file=out, width=200))
    for number, status in enumerate(TRIAL_STATUSES):
        printer(TrialFinished(number, status, "mlp", {"val/accuracy": 0.5},
                              "ValueError: [red] x" if status == "failed" else None,
                              (0.5, 0), number + 1, 5, 1, 1, 1.0))
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == list(TRIAL_STATUSES)
    assert "ValueError: [red] x" in lines[3]
