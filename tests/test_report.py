"""``automl report``: the data it gathers, the reason each empty section gives, the page it writes
(self-contained, written whole or not at all), its bad-input messages, and the page in a real
headless Chromium (tests/browser.py). The end-to-end run of a real experiment is in
tests/test_report_run.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import optional_module

optional_module("plotly", "plotly is not installed (pip install -e '.[report]')")

from automl.report import ReportError, build_report, report_sections, write_report  # noqa: E402
from automl.report.gather import best_so_far, error_parts, front_2d, gather  # noqa: E402
from automl.report.importance import importances_of, infer_distributions  # noqa: E402
from automl.report.section import Html  # noqa: E402
from automl.store import Store  # noqa: E402
from benchmarks.report_speed import write_synthetic_experiment  # noqa: E402
from tests.browser import assert_sound, open_report  # noqa: E402

ANCHORS = ["experiment", "trials", "history", "importance", "scores", "curves", "tradeoffs",
           "ensemble", "evaluation", "failures"]


def stored(tmp_path: Path, trials: int, name: str = "exp", **kwargs) -> tuple[str, object]:
    url = f"sqlite:///{tmp_path}/automl.db"
    write_synthetic_experiment(url, name, trials, **kwargs)
    with Store(url, create=False) as store:
        return url, store.experiment(name)


def sections_of(exp) -> dict:
    sections = report_sections(exp)
    assert [s.anchor for s in sections] == ANCHORS
    return {s.anchor: s for s in sections}


def figures(section) -> list:
    return [p for p in section.parts if not isinstance(p, Html)]


# ---- gathering ------------------------------------------------------------------------------


def test_front_2d_is_the_set_no_point_beats_on_both_axes():
    rng = random.Random(1)
    for _ in range(50):
        points = [(n, float(rng.randint(0, 6)), float(rng.randint(0, 6))) for n in range(25)]
        for x_mode in ("min", "max"):
            for y_mode in ("min", "max"):
                sx, sy = (1 if x_mode == "max" else -1), (1 if y_mode == "max" else -1)
                brute = sorted(n for n, x, y in points if not any(
                    sx * ox >= sx * x and sy * oy >= sy * y and (ox, oy) != (x, y)
                    for _, ox, oy in points))
                assert front_2d(points, x_mode, y_mode) == brute


def test_best_so_far_follows_the_mode():
    assert best_so_far([0.5, 0.7, 0.6, 0.9], "max") == [0.5, 0.7, 0.7, 0.9]
    assert best_so_far([3.0, 1.0, 2.0], "min") == [3.0, 1.0, 1.0]


def test_error_parts_of_a_traceback():
    trace = "Traceback (most recent call last):\n  File x\ntorch.OutOfMemoryError: CUDA out"
    assert error_parts(trace).kind == "OutOfMemoryError"
    assert error_parts(trace).message == "CUDA out"
    assert error_parts("killed by signal 9").kind is None
    assert error_parts(None).kind is None


def test_gather_reads_what_the_trials_recorded(tmp_path):
    _, exp = stored(tmp_path, 80)
    data = gather(exp)
    assert sorted(data.architectures) == ["cnn", "mlp"]
    assert data.augmentations == ["shift", "noise"]
    assert data.pruning_param == "ratio"  # pruning.magnitude.ratio, whatever the pruner
    assert {"model/latency_ms", "model/params", "model/nonzero_params"} == set(data.model_keys)
    assert sum(data.counts().values()) == 80 == len(data.trials)
    for view in data.trials:
        assert view.pruning_amount == view.record.params["pruning.magnitude.ratio"]
        assert view.augmentations["shift"] == view.record.params["augmentation.shift.enabled"]
        assert view.epochs == len(view.record.history)
    assert data.best is not None and data.best.status == "completed"
    assert data.direction("val/accuracy") == "max" and data.direction("model/params") == "min"


def test_distributions_are_inferred_from_the_values_with_the_configs_log_scale():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    params = [{"training.lr": 1e-3, "architecture": "mlp", "architecture.mlp.width": 64,
               "training.momentum": 0.9, "flag": True},
              {"training.lr": 1e-2, "architecture": "cnn", "training.momentum": 0.9,
               "flag": False, "architecture.mlp.width": 300}]
    config = {"training": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
              "architecture": {"mlp": {"width": {"low": 32, "high": 512}}}}
    found = infer_distributions(params, config)
    assert found["training.lr"] == FloatDistribution(1e-3, 1e-2, log=True)
    assert found["architecture.mlp.width"] == IntDistribution(64, 300)
    assert found["architecture"] == CategoricalDistribution(["cnn", "mlp"])
    assert found["flag"] == CategoricalDistribution([False, True])
    assert "training.momentum" not in found  # one value: not searched


# ---- sections -------------------------------------------------------------------------------


def test_a_finished_experiment_fills_every_section(tmp_path):
    _, exp = stored(tmp_path, 120)
    sections = sections_of(exp)
    for anchor, section in sections.items():
        assert section.empty is None, (anchor, section.empty)
    assert len(figures(sections["history"])) == 1  # one objective
    assert len(figures(sections["tradeoffs"])) == 3  # against each model/ value
    assert len(figures(sections["scores"])) == 2  # by architecture, by augmentation
    # the best trial is marked in the table, the one row so marked
    table = str(sections["trials"].parts[1])
    assert table.count('data-sort="best"') == 1
    best = gather(exp).best.number
    assert f'<td data-sort="{best}">{best}</td><td data-sort="completed">' in table
    # the history's best-so-far line is the running maximum of the completed trials
    completed, _stopped, line = figures(sections["history"])[0].data
    assert list(line.y) == best_so_far(list(completed.y), "max")
    # the learning curves: one trace per status, early-stopped ones dotted and marked where
    # they stopped
    curves = figures(sections["curves"])[0]
    names = [t.name for t in curves.data]
    assert names == ["completed", "early_stopped", "failed", "stopped early here"]
    assert curves.data[names.index("early_stopped")].line.dash == "dot"
    # the trade-offs are coloured by the sampled pruning ratio
    latency = next(f for f in figures(sections["tradeoffs"]) if "latency_ms" in f.layout.title.text)
    assert latency.data[0].marker.colorbar.title.text == "pruning ratio"
    assert latency.data[1].name == "Pareto front" and len(latency.data[1].x) >= 1


def test_importances_see_what_drives_the_score_and_assess_conditional_parameters(tmp_path):
    _, exp = stored(tmp_path, 300)
    data = gather(exp)
    done = data.completed()
    distributions = infer_distributions([t.record.params for t in done], exp.config)
    assessed, _ = importances_of(done, distributions, "val/accuracy", "max")
    # the synthetic score depends on lr, the architecture and the pruning ratio only
    top = sorted(assessed, key=assessed.get, reverse=True)[:3]
    assert "training.lr" in top
    assert "architecture.mlp.width" in assessed  # conditional: only the mlp trials have it
    assert "training.momentum" not in assessed  # fixed


def test_several_objectives_get_importances_and_history_each(tmp_path):
    objectives = [{"metric": "accuracy", "mode": "max"},
                  {"metric": "latency_ms", "mode": "min", "scope": "model"}]
    _, exp = stored(tmp_path, 100, objectives=objectives)
    sections = sections_of(exp)
    titles = [f.layout.title.text for f in figures(sections["importance"])]
    assert titles == ["Importance for accuracy (validation)", "Importance for latency_ms"]
    assert len(figures(sections["history"])) == 2
    front = gather(exp).pareto  # the front over both objectives
    assert front
    table = str(sections["trials"].parts[1])
    assert table.count("Pareto front</td>") == len(front)


def test_an_experiment_without_trials_says_why_each_section_is_empty(tmp_path):
    url = f"sqlite:///{tmp_path}/automl.db"
    with Store(url) as store:
        store.create_experiment(name="new", seed=0, config={}, objectives=[
            {"metric": "accuracy", "mode": "max"}], plugins={}, automl_version="x",
            artifacts_dir="/tmp")
        exp = store.experiment("new")
    sections = sections_of(exp)
    assert sections["experiment"].empty is None
    reasons = {anchor: s.empty for anchor, s in sections.items() if anchor != "experiment"}
    assert all(reasons.values()), reasons
    assert reasons["trials"] == "No trial has started yet."
    assert "need at least 5" in reasons["importance"]
    assert reasons["curves"] == "No trial has reported an epoch yet."
    assert "has not finished" in reasons["ensemble"]
    assert "still running" in reasons["evaluation"]
    assert reasons["failures"].startswith("No trial failed")
    page = build_report(exp)
    for reason in reasons.values():
        assert Html(reason).replace("'", "&#x27;") in page


def test_too_few_completed_trials_or_no_model_values_are_said(tmp_path):
    _, exp = stored(tmp_path, 6)
    for trial in exp.trials:
        trial.metrics = {k: v for k, v in trial.metrics.items() if not k.startswith("model/")}
    sections = sections_of(exp)
    completed = sum(t.status == "completed" for t in exp.trials)
    assert completed < 5
    assert sections["importance"].empty == (f"{completed} completed trial(s) with every "
                                            "objective; importances need at least 5.")
    assert "recorded no model-only value" in sections["tradeoffs"].empty


def test_a_running_experiment_shows_its_running_trials(tmp_path):
    _, exp = stored(tmp_path, 60, finished=False)
    assert exp.status == "running" and any(t.status == "running" for t in exp.trials)
    sections = sections_of(exp)
    curves = figures(sections["curves"])[0]
    ring = next(t for t in curves.data if t.name == "running: latest epoch")
    running = [t for t in exp.trials if t.status == "running"]
    assert sorted(ring.customdata) == sorted(t.number for t in running)
    assert "ensemble stage runs after the search" in sections["ensemble"].empty
    assert "still running" in sections["evaluation"].empty


# ---- the page -------------------------------------------------------------------------------


def test_the_page_inlines_plotly_once_and_fetches_nothing(tmp_path):
    from plotly.offline import get_plotlyjs

    _, exp = stored(tmp_path, 40)
    page = build_report(exp)
    assert page.count(get_plotlyjs()[:200]) == 1
    assert "<script src" not in page and "<link" not in page
    assert page.count('class="plotly-graph-div"') >= 8
    for anchor in ANCHORS:
        assert f'<section id="{anchor}">' in page


def test_the_report_is_written_whole_or_not_at_all(tmp_path):
    _, exp = stored(tmp_path, 20)
    target = tmp_path / "out" / "r.html"
    with pytest.raises(ReportError, match="directory .*out does not exist"):
        write_report(exp, target)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ReportError, match="cannot write the report"):
        write_report(exp, tmp_path / "afile" / "r.html")
    with pytest.raises(ReportError, match="is a directory"):
        write_report(exp, tmp_path)
    assert write_report(exp, tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---- the command ----------------------------------------------------------------------------


def report_command(capsys, monkeypatch, cwd: Path, *args: str) -> tuple[int, str, str]:
    """``automl report ARGS`` in ``cwd`` through the console-script entry point, in this
    process: (exit code, stdout, stderr)."""
    import sys

    from automl.cli.app import main

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["automl", "report", *args])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_the_command_writes_name_html_by_default(tmp_path, capsys, monkeypatch):
    url, _ = stored(tmp_path, 30, name="bench")
    code, out, err = report_command(capsys, monkeypatch, tmp_path, "bench", "--db", url)
    assert code == 0, err
    assert "report of 'bench' (30 trials, completed) written to bench.html" in out
    assert (tmp_path / "bench.html").stat().st_size > 1_000_000


@pytest.mark.parametrize("args, message", [
    (["nope"], "error: no experiment named 'nope' in sqlite:///"),
    (["bench", "-o", "afile/r.html"], "error: cannot write the report to afile/r.html: "
                                      "directory afile does not exist"),
    (["bench", "-o", "."], "error: cannot write the report to .: it is a directory"),
    (["bench", "--db", "sqlite:///missing.db"], "error: no database at missing.db"),
])
def test_bad_input_gives_one_message_and_no_file(tmp_path, capsys, monkeypatch, args, message):
    url, _ = stored(tmp_path, 5, name="bench")
    (tmp_path / "afile").write_text("x")
    if "--db" not in args:
        args = [*args, "--db", url]
    before = set(tmp_path.iterdir())
    code, _out, err = report_command(capsys, monkeypatch, tmp_path, *args)
    assert code == 2
    assert err.startswith(message), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert set(tmp_path.iterdir()) - before <= {tmp_path / "automl.db-wal",
                                                tmp_path / "automl.db-shm"}


# ---- in a browser ---------------------------------------------------------------------------


def _sort_and_filter(page) -> dict:
    """Sort the trials table by its first column (twice: descending), then filter it."""
    first = "() => document.querySelector('#trials-table tbody tr').cells[0].textContent"
    header = page.locator("#trials-table th").first
    header.click()
    header.click()
    descending = page.evaluate(first)
    page.select_option("#filter-status", "failed")
    failed = page.inner_text("#trials-shown")
    page.select_option("#filter-architecture", "mlp")
    both = page.inner_text("#trials-shown")
    visible = page.evaluate("() => Array.from(document.querySelectorAll('#trials-table tbody tr'))"
                            ".filter(r => r.style.display !== 'none')"
                            ".map(r => [r.dataset.status, r.dataset.architecture])")
    return {"descending": descending, "failed": failed, "both": both, "visible": visible}


def test_a_running_experiment_with_failures_opens_in_chromium(tmp_path):
    _, exp = stored(tmp_path, 150, finished=False)
    path = write_report(exp, tmp_path / "running.html")
    opened = open_report(path, tmp_path / "running.png", act=_sort_and_filter)
    assert_sound(opened)
    assert "running" in opened.text and "Failed trials by error type" in opened.text
    assert "No test-split scores yet" in opened.text
    assert "150 of 150 trials shown" in opened.text
    # the table sorts and filters in the page
    failed = [t for t in exp.trials if t.status == "failed"]
    failed_mlp = [t for t in failed if t.params["architecture"] == "mlp"]
    assert opened.acted["descending"] == "149"
    assert opened.acted["failed"] == f"{len(failed)} of 150 trials shown"
    assert opened.acted["both"] == f"{len(failed_mlp)} of 150 trials shown"
    assert opened.acted["visible"] == [["failed", "mlp"]] * len(failed_mlp)


def test_without_plotly_the_report_says_what_to_install(tmp_path, monkeypatch):
    import sys

    _, exp = stored(tmp_path, 5)
    monkeypatch.setitem(sys.modules, "plotly", None)  # as if it were not installed
    with pytest.raises(ReportError, match=r"needs plotly: pip install 'automl\[report\]'"):
        write_report(exp, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
