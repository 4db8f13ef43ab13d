"""Round-trip translation of texts through local seq2seq checkpoints, cached on disk.

:class:`RoundTrip` translates texts with a forward checkpoint (source language -> pivot) and back
with a backward one (pivot -> source), both loaded with ``from_pretrained`` from local
directories (MarianMT or any ``AutoModelForSeq2SeqLM``; nothing is downloaded), greedy or beam
search, no sampling: a text's round trip is a function of the text, the checkpoints and the
generation settings. Results are cached in an SQLite file under ``cache_dir``, keyed by the
SHA-256 of the checkpoints' files, the settings and the text, so a dataset is translated once:
later epochs, trials and runs read the cache, and a checkpoint is only loaded for texts the cache
lacks.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automl.errors import ConfigError

CACHE_FILE = "back_translation.sqlite"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "automl" / "back_translation"


@functools.lru_cache(maxsize=16)
def checkpoint_digest(path: str, _mtime_ns: int) -> str:
    """SHA-256 of a checkpoint directory's files (names and contents)."""
    digest = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _digest_of(path: str, where: str) -> str:
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"no checkpoint directory at {path}", path=where)
    latest = max((p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()), default=0)
    return checkpoint_digest(str(root.resolve()), latest)


class RoundTrip:
    """Texts -> forward checkpoint -> backward checkpoint, with the on-disk cache.

    ``prefixes`` are prepended to the input of each direction (a target-language token such as
    ``>>de<<`` for multilingual Marian checkpoints). ``models_loaded`` counts the checkpoints
    this instance loaded (none when the cache holds every text).
    """

    def __init__(self, forward: str, backward: str, cache_dir: str | Path | None = None,
                 prefixes: tuple[str, str] = ("", ""), batch_size: int = 16,
                 max_length: int = 128, num_beams: int = 1,
                 where: str = "augmentations.back_translation") -> None:
        self.checkpoints = (str(forward), str(backward))
        self.prefixes = prefixes
        self.batch_size, self.max_length, self.num_beams = batch_size, max_length, num_beams
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        digests = [_digest_of(forward, f"{where}.forward"),
                   _digest_of(backward, f"{where}.backward")]
        self._namespace = json.dumps([digests, list(prefixes), max_length, num_beams])
        self._memo: dict[str, str] = {}
        self.models_loaded = 0

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._namespace}\0{text}".encode()).hexdigest()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        keys = [self.key(t) for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._memo]
        if missing:
            self._memo.update(self._read(missing))
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in self._memo))
        if todo:
            pivot = self._translate(self.checkpoints[0], [self.prefixes[0] + t for t in todo])
            back = self._translate(self.checkpoints[1], [self.prefixes[1] + t for t in pivot])
            fresh = {self.key(t): b for t, b in zip(todo, back)}
            self._write(fresh)
            self._memo.update(fresh)
        return [self._memo[k] for k in keys]

    def _translate(self, checkpoint: str, texts: list[str]) -> list[str]:
        import torch
        import transformers
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        try:
            with warnings.catch_warnings():  # Marian's tokenizer recommends sacremoses
                warnings.simplefilter("ignore", UserWarning)
                tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
            model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load a seq2seq checkpoint from {checkpoint}: {exc}"
                              ) from None
        self.models_loaded += 1
        model.eval()
        out: list[str] = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(texts[start:start + self.batch_size], return_tensors="pt",
                                  padding=True, truncation=True, max_length=self.max_length)
                generated = model.generate(**batch, max_new_tokens=self.max_length,
                                           num_beams=self.num_beams, do_sample=False)
                out.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
        return [t.strip() for t in out]

    def _connect(self) -> sqlite3.Connection:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.cache_dir / CACHE_FILE, timeout=60)
        db.execute("CREATE TABLE IF NOT EXISTS round_trips (key TEXT PRIMARY KEY, text TEXT)")
        return db

    def _read(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows = db.execute("SELECT key, text FROM round_trips WHERE key IN "
                                  f"({','.join('?' * len(chunk))})", chunk).fetchall()
                found.update(dict(rows))
        return found

    def _write(self, entries: dict[str, Any]) -> None:
        with self._connect() as db:  # one transaction: a cache never holds half a dataset
            db.executemany("INSERT OR REPLACE INTO round_trips VALUES (?, ?)",
                           list(entries.items()))
