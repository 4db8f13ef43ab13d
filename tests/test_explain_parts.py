"""The parts of automl explain that need no trained experiment: raw features back from the
fitted preprocessing, the token-embedding finder, the JSON round trip, writing whole or not at
all, the page's token colouring. The real models are in tests/test_explain.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl.errors import ConfigError
from automl.explanation import files
from automl.explanation.features import raw_features
from automl.explanation.result import Example, Explanation, FeatureImportance
from automl.preprocessing import fit_tabular, standardise


def explanation(**changes) -> Explanation:
    values = dict(experiment="e", subject="trial 2", trial=2, members=[2], weights=[1.0],
                  kind="text", split="validation", rows=10, metric="val/accuracy", mode="max",
                  baseline_score=0.9, methods=["integrated gradients"],
                  features=[FeatureImportance("a", 0.1, 0.01)],
                  examples=[Example(row=3, target="food", predicted="food", score=0.8,
                                    explained="food", tokens=[("[CLS]", 0.01), ("bread", 0.3),
                                                              ("<b>", -0.2)],
                                    attribution_total=0.11, convergence_delta=0.001)],
                  hyperparameters={"fanova": {"val/accuracy": {"training.lr": 1.0}}})
    return Explanation(**{**values, **changes})


@pytest.mark.parametrize("categorical", [[], [1, 3]])
def test_raw_features_are_what_the_preprocessing_turned_into_model_inputs(categorical):
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(50, 5)) * [1, 1, 10, 1, 3] + [0, 0, 5, 0, 1]
    for column in categorical:
        raw[:, column] = rng.integers(0, 4, size=50)
    fitted = fit_tabular(raw[:40], categorical)
    back = raw_features(standardise(raw, fitted), fitted)
    assert back.shape == raw.shape
    numeric = [i for i in range(5) if i not in categorical]
    np.testing.assert_allclose(back[:, numeric], raw[:, numeric], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(back[:, categorical], raw[:, categorical])
    np.testing.assert_allclose(standardise(back, fitted), standardise(raw, fitted), atol=1e-5)


def test_a_code_the_training_split_did_not_have_comes_back_as_missing():
    raw = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 1.0], [3.0, 7.0]])
    fitted = fit_tabular(raw[:3], [1])
    assert raw_features(standardise(raw, fitted), fitted)[:, 1].tolist() == [1, 2, 1, -1]


def test_the_token_embedding_is_the_one_that_looks_up_the_input_ids():
    import torch
    from torch import nn

    from automl.explanation.attributions import token_embeddings

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.positions = nn.Embedding(8, 4)
            self.tokens = nn.Embedding(30, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            where = torch.arange(ids.shape[1]).expand_as(ids)
            return self.head((self.tokens(ids) + self.positions(where)).mean(dim=1))

    model = Tiny()
    assert token_embeddings(model, torch.tensor([[5, 9, 0], [7, 2, 0]])) == [model.tokens]

    class NoEmbedding(nn.Module):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return ids.float()

    with pytest.raises(ConfigError, match="no embedding layer"):
        token_embeddings(NoEmbedding(), torch.tensor([[1, 2]]))


def test_json_round_trip():
    original = explanation()
    again = Explanation.from_json(original.to_json(), Path("/x"))
    assert again.directory == Path("/x")
    assert again.to_json() == original.to_json()
    assert again.examples[0].tokens[1] == ("bread", 0.3)


def test_an_explanation_is_written_whole_or_not_at_all(tmp_path):
    pytest.importorskip("plotly")
    target = tmp_path / "out"

    def broken(staging: Path) -> Explanation:
        (staging / "examples").mkdir()
        (staging / "examples" / "1.png").write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        files.write(target, broken)
    assert list(tmp_path.iterdir()) == []

    written = files.write(target, lambda staging: explanation())
    assert written.directory == target
    assert files.read(target).to_json() == explanation().to_json()
    page = (target / files.HTML_FILE).read_text()
    # tokens coloured by sign, escaped
    assert "rgba(220,38,38,0.80)\">bread</span>" in page
    assert "rgba(37,99,235,0.56)\">&lt;b&gt;</span>" in page
    # an earlier explanation is replaced; a folder of something else is refused
    files.write(target, lambda staging: explanation(rows=11))
    assert files.read(target).rows == 11
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no explanation.json"):
        files.write(other, lambda staging: explanation())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "out"]


def test_a_file_that_is_not_an_explanation_is_refused(tmp_path):
    from automl.errors import StoreError

    (tmp_path / files.JSON_FILE).write_text('{"format": "something"}')
    with pytest.raises(StoreError, match="not an explanation this automl reads"):
        files.read(tmp_path)


def test_the_report_finds_saved_explanations_and_says_which_it_cannot_read(tmp_path):
    pytest.importorskip("plotly")
    from types import SimpleNamespace

    from automl.report.explanation import explanations_section

    exp = SimpleNamespace(name="e", artifacts_dir=str(tmp_path))
    data = SimpleNamespace(experiment=exp)
    assert explanations_section(data) is None  # nothing explained: no section
    files.write(files.default_directory(exp, 2), lambda staging: explanation())
    files.write(files.default_directory(exp, None),
                lambda staging: explanation(subject="ensemble", trial=None))
    broken = files.explanations_root(exp) / "trial-5"
    broken.mkdir()
    (broken / files.JSON_FILE).write_text("{")
    section = explanations_section(data)
    html = "".join(section.parts[i] for i in range(len(section.parts))
                   if isinstance(section.parts[i], str))
    assert "cannot read" in html and "trial-5" in html
    assert html.index("<h3>trial 2</h3>") < html.index("<h3>ensemble</h3>")
    assert "bread" in html


def test_a_text_ensemble_interpolates_every_members_token_embedding_at_once():
    """Two real (untrained) token models combined as an ensemble is: integrated gradients through
    both embeddings together add up to the ensemble's prediction minus the baseline's."""
    pytest.importorskip("captum")
    import torch
    from torch import nn

    from automl.components import DataSpec, DataSplits
    from automl.explanation.attributions import explain_texts, predictions, token_embeddings
    from automl.explanation.subject import Subject
    from automl.multitask import task_for
    from automl.plugin_manager import load_plugins
    from automl.results import ObjectiveSpec
    from automl.weighted_models import weighted_models

    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = nn.Embedding(20, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            mask = (ids != 0).float().unsqueeze(-1)
            pooled = (self.tokens(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
            return self.head(torch.tanh(pooled))

    torch.manual_seed(0)
    registry = load_plugins(autoload=False).registry
    spec = DataSpec("text", (5,), 2, ("a", "b"), extra={"pad_token_id": 0, "mask_token_id": 1})
    members = [Bag(), Bag()]
    module = weighted_models(members, [0.25, 0.75], task_for(spec, registry), spec).eval()
    ids = np.array([[2, 5, 7, 0, 0], [3, 3, 9, 11, 0], [4, 6, 0, 0, 0]], dtype=np.int64)
    assert token_embeddings(module, torch.as_tensor(ids)) == [m.tokens for m in members]
    data = DataSplits(ids, np.array([0, 1, 0]), ids, np.array([0, 1, 1]), ids, np.array([0, 1, 0]),
                      spec)
    subject = Subject("ensemble", "ensemble", None, [1, 2], [0.25, 0.75], module, spec, data,
                      registry, ObjectiveSpec("accuracy", "max"), None)
    proba = predictions(module, ids)
    columns = proba.argmax(axis=1)
    found = explain_texts(subject, [0, 1, 2], columns, proba)
    for example, row in zip(found, ids):
        assert [t for t, _ in example.tokens] == [f"#{i}" for i in row if i != 0]
        assert abs(example.convergence_delta) < 1e-3
        assert example.explained == example.predicted
