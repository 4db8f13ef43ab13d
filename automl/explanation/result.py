"""What :func:`automl.explanation` returns, and its JSON form (``explanation.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: ``format`` of explanation.json, and the version this automl writes and reads
FORMAT, FORMAT_VERSION = "automl-explanation", 1


@dataclass(frozen=True)
class FeatureImportance:
    """One input feature's permutation importance: how much the objective metric worsens on the
    validation split when the feature's values are shuffled across rows."""

    feature: str
    mean: float
    std: float


@dataclass(frozen=True)
class Example:
    """One validation example with its attributions.

    ``image`` is the example's figure (a PNG path relative to the explanation directory: the
    input, integrated gradients and occlusion side by side); ``tokens`` pairs each token of a text
    with its attribution (padding left out)."""

    row: int  # the row of the validation split
    target: str | None  # the true class or value, as text
    predicted: str  # the predicted class (or value)
    score: float  # the explained prediction (the predicted class's probability, the value)
    explained: str  # the prediction column the attributions are for
    image: str | None = None
    tokens: list[tuple[str, float]] = field(default_factory=list)
    attribution_total: float = 0.0  # sum of the integrated gradients attributions
    convergence_delta: float = 0.0  # integrated gradients' completeness error for this example


@dataclass(frozen=True)
class Explanation:
    """An explained model: see :func:`automl.explanation.explain`.

    ``kind`` is the data kind (``tabular``: ``features`` hold permutation importances; ``image``
    and ``text``: ``examples`` hold attributions); ``hyperparameters`` maps an Optuna importance
    evaluator to metric -> parameter -> importance (each evaluator's importances sum to 1).
    ``directory`` is where it was written (None until then)."""

    experiment: str
    subject: str  # "trial 3" or "ensemble"
    trial: int | None
    members: list[int]
    weights: list[float]
    kind: str
    split: str  # always "validation": explanations never look at the test split
    rows: int  # validation rows used
    metric: str  # the objective metric (key) the importances are scored with
    mode: str  # its direction, "max" or "min"
    baseline_score: float | None  # that metric on the untouched validation rows
    methods: list[str]
    features: list[FeatureImportance] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    hyperparameters: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    directory: Path | None = None

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("directory")
        record["examples"] = [{**e, "tokens": [list(t) for t in e["tokens"]]}
                              for e in record["examples"]]
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **record}

    @classmethod
    def from_json(cls, record: dict[str, Any], directory: Path | None = None) -> "Explanation":
        values = {k: v for k, v in record.items() if k not in ("format", "format_version")}
        values["features"] = [FeatureImportance(**f) for f in values.get("features") or []]
        values["examples"] = [Example(**{**e, "tokens": [(str(t), float(a)) for t, a in
                                                        e.get("tokens") or []]})
                              for e in values.get("examples") or []]
        return cls(**values, directory=directory)


__all__ = ["Example", "Explanation", "FeatureImportance"]
