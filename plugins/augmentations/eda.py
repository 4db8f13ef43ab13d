"""EDA (Wei & Zou, 2019, "Easy Data Augmentation"): synonym replacement, random insertion,
random swap and random deletion of words, on raw text before tokenisation.

Each epoch a text is augmented with probability ``p``; an augmented text of ``n`` words gets, in
this order, ``max(1, int(synonym * n))`` synonym replacements, ``max(1, int(insertion * n))``
insertions of a synonym of one of its words at a random position, ``max(1, int(swap * n))``
swaps of two words, and loses each word with probability ``deletion`` (at least one word stays).
A strength of 0 turns its operation off. Words and synonyms: :mod:`automl_plugins.augmentations.lexicons`
(English and Chinese).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

import automl
from automl.components import ParamDef, RawAugmentation
from automl.errors import ConfigError
from automl.params import Fixed, FloatRange
from automl_plugins.augmentations.lexicons import (
    EmbeddingNeighbours, Lexicon, is_chinese, join_words, replaceable, words_of,
)


class Synonyms(Protocol):
    def synonyms(self, word: str) -> list[str]: ...


def changes(strength: float, n_words: int) -> int:
    """How many words an operation of ``strength`` changes in a text of ``n_words``."""
    return 0 if strength <= 0 or n_words == 0 else max(1, int(strength * n_words))


def synonym_replacement(words: list[str], n: int, source: Synonyms,
                        rng: np.random.Generator) -> list[str]:
    """Replace up to ``n`` distinct replaceable words that have synonyms by a random one."""
    out = list(words)
    candidates = [i for i, w in enumerate(words) if replaceable(w)]
    replaced = 0
    for i in rng.permutation(len(candidates)):
        if replaced >= n:
            break
        position = candidates[int(i)]
        options = source.synonyms(words[position])
        if options:
            out[position] = options[int(rng.integers(len(options)))]
            replaced += 1
    return out


def random_insertion(words: list[str], n: int, source: Synonyms,
                     rng: np.random.Generator) -> list[str]:
    """Insert ``n`` times a synonym of a random word (that has one) at a random position."""
    out = list(words)
    for _ in range(n):
        for _attempt in range(10):  # as in the reference implementation
            if not out:
                break
            options = source.synonyms(out[int(rng.integers(len(out)))])
            if options:
                out.insert(int(rng.integers(len(out) + 1)),
                           options[int(rng.integers(len(options)))])
                break
    return out


def random_swap(words: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """Swap two random positions, ``n`` times."""
    out = list(words)
    if len(out) < 2:
        return out
    for _ in range(n):
        i, j = (int(v) for v in rng.choice(len(out), size=2, replace=False))
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], p: float, rng: np.random.Generator) -> list[str]:
    """Drop each word with probability ``p``; keep one random word if all would go."""
    if p <= 0 or len(words) <= 1:
        return list(words)
    keep = rng.random(len(words)) >= p
    if not keep.any():
        return [words[int(rng.integers(len(words)))]]
    return [w for w, k in zip(words, keep) if k]


def eda(text: str, strengths: dict[str, float], source: Synonyms,
        rng: np.random.Generator) -> str:
    """``text`` after the four EDA operations with ``strengths`` (synonym, insertion, swap,
    deletion)."""
    words = words_of(text)
    chinese = is_chinese(text)
    n = len(words)
    words = synonym_replacement(words, changes(strengths["synonym"], n), source, rng)
    words = random_insertion(words, changes(strengths["insertion"], n), source, rng)
    words = random_swap(words, changes(strengths["swap"], n), rng)
    words = random_deletion(words, float(strengths["deletion"]), rng)
    return join_words(words, chinese)


class EDA(RawAugmentation):
    name = "eda"
    description = ("EDA on raw text: synonym replacement, random insertion, swap and deletion "
                   "(English and Chinese), before tokenisation")
    data_kinds: ClassVar[tuple[str, ...]] = ("text",)
    params = {
        "synonym": ParamDef(FloatRange(0.0, 0.3), float,
                            "fraction of words replaced by a synonym (0: off)"),
        "insertion": ParamDef(FloatRange(0.0, 0.3), float,
                              "fraction of words' count of synonyms inserted (0: off)"),
        "swap": ParamDef(FloatRange(0.0, 0.3), float, "fraction of words' count of swaps (0: off)"),
        "deletion": ParamDef(FloatRange(0.0, 0.3), float,
                             "probability that a word is deleted (0: off)"),
        "p": ParamDef(FloatRange(0.2, 1.0), float, "probability that a text is augmented"),
        "synonyms": ParamDef(Fixed("lexicon"), str,
                             "synonym source: lexicon (WordNet, Cilin) or embedding "
                             "(neighbours in embedding_checkpoint's input embeddings)"),
        "embedding_checkpoint": ParamDef(Fixed(None), (str, type(None)),
                                         "local transformers checkpoint for synonyms: embedding",
                                         is_path=True),
        "neighbours": ParamDef(Fixed(5), int, "synonyms per word with synonyms: embedding"),
    }

    def apply_raw(self, raw: Sequence[Any], params: dict[str, Any],
                  rng: np.random.Generator) -> list[Any]:
        strengths = {k: float(params[k]) for k in ("synonym", "insertion", "swap", "deletion")}
        for key, value in (*strengths.items(), ("p", float(params["p"]))):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key} must be in [0, 1], got {value}",
                                  path=f"augmentations.eda.{key}")
        source = synonym_source(params)
        chosen = rng.random(len(raw)) < float(params["p"])
        return [eda(str(text), strengths, source, rng) if pick else text
                for text, pick in zip(raw, chosen)]


def synonym_source(params: dict[str, Any]) -> Synonyms:
    how = params["synonyms"]
    if how == "lexicon":
        return Lexicon()
    if how == "embedding":
        if not params.get("embedding_checkpoint"):
            raise ConfigError("synonyms: embedding needs embedding_checkpoint (a local "
                              "transformers checkpoint directory)",
                              path="augmentations.eda.embedding_checkpoint")
        return EmbeddingNeighbours(str(params["embedding_checkpoint"]),
                                   int(params["neighbours"]))
    raise ConfigError(f"synonyms must be lexicon or embedding, got {how!r}",
                      path="augmentations.eda.synonyms")


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(EDA)
