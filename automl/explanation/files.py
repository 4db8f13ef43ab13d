"""Where explanations are written and read back.

An explanation is one directory::

    explanation.json   the :class:`~automl.explanation.result.Explanation` (format automl-explanation)
    explanation.html   a self-contained page of it (plotly.js and the figures inlined)
    examples/<row>.png an image example's figure: input, integrated gradients, occlusion

By default it lies in the experiment's artifacts directory,
``<artifacts>/explanations/<experiment>/<trial-N | ensemble>``, where ``automl report`` finds it.
It appears whole or not at all: written beside the target, then renamed into place (an earlier
explanation there is replaced).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from automl.errors import ConfigError, StoreError
from automl.explanation.result import FORMAT, FORMAT_VERSION, Explanation
from automl.store import ExperimentRecord

JSON_FILE, HTML_FILE, EXAMPLES_DIR = "explanation.json", "explanation.html", "examples"


def explanations_root(exp: ExperimentRecord) -> Path | None:
    """The folder holding the experiment's explanations by default; None when its artifacts are
    not on a local file system (a storage URI)."""
    if "://" in exp.artifacts_dir:
        return None
    return Path(exp.artifacts_dir) / "explanations" / exp.name


def default_directory(exp: ExperimentRecord, trial: int | None) -> Path:
    root = explanations_root(exp)
    if root is None:
        raise ConfigError(f"experiment '{exp.name}' keeps its artifacts at {exp.artifacts_dir}, "
                          "not in a local folder; name the output folder with -o DIR")
    return root / ("ensemble" if trial is None else f"trial-{trial}")


def check_target(target: Path) -> None:
    """Refuse a target that is a file, or a non-empty folder that is not an explanation."""
    if target.is_dir():
        if any(target.iterdir()) and not (target / JSON_FILE).is_file():
            raise ConfigError(f"output directory {target} exists, is not empty and holds no "
                              f"{JSON_FILE}; choose a new directory or empty it first")
    elif target.exists():
        raise ConfigError(f"output directory {target} exists and is not a directory")


def write(target: Path, fill: Callable[[Path], Explanation]) -> Explanation:
    """Make the explanation in a staging folder beside ``target`` (``fill`` writes its figures
    there and returns it), write its JSON and HTML, and move it into place."""
    from automl.explanation.page import render_explanation

    check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.partial"
    staging.mkdir()
    retired = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
    try:
        explanation = fill(staging)
        (staging / JSON_FILE).write_text(json.dumps(explanation.to_json(), indent=2) + "\n",
                                         encoding="utf-8")
        (staging / HTML_FILE).write_text(render_explanation(explanation, staging),
                                         encoding="utf-8")
        check_target(target)
        if target.exists():
            os.replace(target, retired)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    return Explanation.from_json(explanation.to_json(), target)


def read(directory: Path) -> Explanation:
    """The explanation in ``directory``."""
    path = directory / JSON_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT \
            or record.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{path} is not an explanation this automl reads (format {FORMAT} "
                         f"version {FORMAT_VERSION})")
    try:
        return Explanation.from_json(record, directory)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{path} does not hold a whole explanation: {exc}") from None


def saved_explanations(exp: ExperimentRecord) -> tuple[list[Explanation], list[str]]:
    """The experiment's explanations in their default place (trials by number, then the
    ensemble), and why any folder there could not be read."""
    root = explanations_root(exp)
    if root is None or not root.is_dir():
        return [], []
    found, problems = [], []
    for directory in sorted(root.iterdir()):
        if directory.is_dir() and not directory.name.startswith(".") \
                and (directory / JSON_FILE).is_file():
            try:
                found.append(read(directory))
            except StoreError as exc:
                problems.append(str(exc))
    return sorted(found, key=lambda e: (e.trial is None, e.trial or 0)), problems
