"""The experiment section: what was searched, on what, with which budget, how far it got."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from typing import Any

from automl.report.gather import ReportData
from automl.report.section import Html, Section, fmt, table


def experiment_section(data: ReportData) -> Section:
    exp = data.experiment
    config = exp.config or {}
    dataset = config.get("dataset") or {}
    search = config.get("search") or {}
    rows: list[list[str]] = [
        ["name", exp.name],
        ["status", str(exp.status)],
        ["description", str(config.get("description") or "-")],
        ["seed", str(exp.seed)],
        ["objectives", ", ".join(f"{o.key} ({o.mode})" for o in data.objectives)],
        ["constraints", ", ".join(c.describe() for c in data.constraints)
         + " (trials outside them are never chosen)" if data.constraints else "none"],
        ["dataset", _dataset(dataset)],
        ["rows per split", _sizes(getattr(exp, "data_sizes", None))],
        ["budget", _budget(search)],
        ["search", f"sampler {search.get('sampler', '-')}, early stopping "
                   f"{search.get('early_stopping', '-')}, at most "
                   f"{search.get('max_concurrent', '-')} trials at once"],
        ["trials", _counts(data.counts()) or "none yet"],
        ["started", _time(exp.created_at)],
        ["finished", _time(exp.finished_at) if exp.finished_at else
         f"not yet ({exp.status}); report made {data.generated_at:%Y-%m-%d %H:%M:%S}"],
        ["wall time", _wall(exp.created_at, exp.finished_at or data.generated_at)],
        ["trial time", _trial_time(data)],
        ["automl version", exp.automl_version],
    ]
    if exp.error:
        rows.append(["error", exp.error.strip().splitlines()[-1]])
    parts = [table(["", ""], rows, table_id="experiment"),
             Html("<details><summary>configuration (as recorded)</summary><pre>"
                  + escape(json.dumps(config, indent=2, default=str)) + "</pre></details>")]
    return Section("experiment", "Experiment", parts=parts)


def _dataset(dataset: dict[str, Any]) -> str:
    split = dataset.get("split") or {}
    fractions = ", ".join(f"{k} {v}" for k, v in split.items())
    return f"{dataset.get('name', '-')}" + (f" (split: {fractions})" if fractions else "")


def _sizes(sizes: dict[str, int] | None) -> str:
    """``1077 train, 360 val, 360 test``, from the store where it records them (schema 3 on);
    older records have none."""
    if not sizes:
        return "not recorded in the store for this experiment"
    return ", ".join(f"{n} {part}" for part, n in sizes.items())


def _budget(search: dict[str, Any]) -> str:
    parts = [f"{search.get('num_trials', '-')} trials"]
    if search.get("time_budget_s"):
        parts.append(f"{fmt(float(search['time_budget_s']))} s")
    return ", ".join(parts)


def _counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return f"{total} ({shown})" if total else ""


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else "-"


def _wall(start: datetime, end: datetime) -> str:
    seconds = max((end - start).total_seconds(), 0.0)
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _trial_time(data: ReportData) -> str:
    durations = [t.record.duration_s for t in data.trials if t.record.duration_s is not None]
    if not durations:
        return "no trial finished yet"
    return (f"{sum(durations):.1f} s over {len(durations)} finished trials "
            f"(mean {sum(durations) / len(durations):.1f} s, longest {max(durations):.1f} s)")
