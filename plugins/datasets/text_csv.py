"""Text classification from a CSV file, tokenised with a Hugging Face tokenizer from a local path.

The dataset keeps the raw strings (``Examples.x``) with a :class:`TextEncoder`: automl tokenises
each split once, and the training texts again each epoch after raw augmentations (EDA,
back-translation) when an experiment has some.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples, ParamDef
from automl.errors import ConfigError
from automl.params import Fixed
from automl.preprocessing import Preprocessing
from automl_plugins.datasets.tabular_file import encode_labels, read_table, require_columns


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """A tokenizer from a local directory only (nothing is downloaded)."""
    from transformers import AutoTokenizer

    if not Path(path).is_dir():
        raise ConfigError(f"no tokenizer directory at {path}", path="dataset.params.tokenizer")
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True,
                                             trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load a tokenizer from {path}: {exc}",
                          path="dataset.params.tokenizer") from None


class TextCSV(Dataset):
    name = "text_csv"
    description = "text classification from a CSV (text + label columns), tokenised locally"
    kind: ClassVar[str] = "text"
    params = {
        "path": ParamDef(Fixed(None), str, "the CSV file", required=True, is_path=True),
        "text_column": ParamDef(Fixed("text"), str, "column holding the text"),
        "label_column": ParamDef(Fixed("label"), str, "column holding the class"),
        "tokenizer": ParamDef(Fixed(None), str, "local Hugging Face tokenizer/model directory",
                              required=True, is_path=True),
        "max_length": ParamDef(Fixed(64), int, "tokens per example (truncated / padded)"),
    }

    def load(self, params: dict[str, Any]) -> Examples:
        frame = read_table(params["path"])
        text, label = params["text_column"], params["label_column"]
        require_columns(frame, [text], "text_column", params["path"])
        require_columns(frame, [label], "label_column", params["path"])
        max_length = int(params["max_length"])
        if not 4 <= max_length <= 4096:
            raise ConfigError(f"max_length must be in 4..4096, got {max_length}",
                              path="dataset.params.max_length")
        tokenizer = load_tokenizer(params["tokenizer"])
        texts = np.asarray(frame[text].fillna("").astype(str).tolist() or [], dtype=object)
        y, names = encode_labels(frame[label], label)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        spec = DataSpec("text", (max_length,), len(names), names, extra={
            "vocab_size": int(len(tokenizer)), "pad_token_id": int(pad),
            "mask_token_id": int(tokenizer.mask_token_id
                                 if tokenizer.mask_token_id is not None else pad),
            "tokenizer": str(params["tokenizer"])})
        return Examples(texts, y, spec, encoder=TextEncoder(tokenizer, max_length))

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: strings, tokenised by the training tokenizer (its files are bundled with an
        export) to ``max_length`` token ids."""
        return Preprocessing("texts", {"text_column": params["text_column"],
                                       "label_column": params["label_column"],
                                       "max_length": int(params["max_length"])},
                             files={"tokenizer": saved_tokenizer(params["tokenizer"])})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        path = preprocessing.files["tokenizer"]
        if getattr(self, "_tokenizer_path", None) != path:
            self._encoder = TextEncoder(load_tokenizer(path),
                                        int(preprocessing.settings["max_length"]))
            self._tokenizer_path = path
        return self._encoder([str(t) for t in raw])


#: Tokenizer path -> its files alone, saved once per process in a temporary directory that is
#: removed when the process exits (an export copies them; the model's weights stay behind).
_SAVED_TOKENIZERS: dict[str, "tempfile.TemporaryDirectory[str]"] = {}


def saved_tokenizer(path: str) -> str:
    """A directory holding only the tokenizer's files of ``path`` (a tokenizer or model dir)."""
    key = str(Path(path).resolve())
    if key not in _SAVED_TOKENIZERS:
        saved = tempfile.TemporaryDirectory(prefix="automl-tokenizer-")
        load_tokenizer(path).save_pretrained(saved.name)
        _SAVED_TOKENIZERS[key] = saved
    return _SAVED_TOKENIZERS[key].name


class TextEncoder:
    """Strings to ``max_length`` token ids (truncated, padded), picklable for trial workers."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, texts: Any) -> np.ndarray:
        return tokenize(self.tokenizer, [str(t) for t in texts], self.max_length)


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, max_length), dtype=np.int64)
    encoded = tokenizer(texts, truncation=True, max_length=max_length, padding="max_length",
                        return_tensors="np")
    return encoded["input_ids"].astype(np.int64)


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(TextCSV)
