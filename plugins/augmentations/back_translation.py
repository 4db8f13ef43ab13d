"""Back-translation of raw text: replace a text by its round trip through a pivot language,
translated by local seq2seq checkpoints (see :mod:`automl_plugins.augmentations.translation`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import ParamDef, RawAugmentation
from automl.errors import ConfigError
from automl.params import Fixed, FloatRange

WHERE = "augmentations.back_translation"


class BackTranslation(RawAugmentation):
    name = "back_translation"
    description = ("replace a text by its round trip through local translation checkpoints "
                   "(e.g. MarianMT en->de, de->en), computed once and cached on disk")
    data_kinds: ClassVar[tuple[str, ...]] = ("text",)
    params = {
        "forward": ParamDef(Fixed(None), str, "local seq2seq checkpoint: source -> pivot language",
                            required=True, is_path=True),
        "backward": ParamDef(Fixed(None), str,
                             "local seq2seq checkpoint: pivot -> source language",
                             required=True, is_path=True),
        "forward_prefix": ParamDef(Fixed(""), str, "prepended to each source text (a target "
                                                   "language token such as '>>de<<')"),
        "backward_prefix": ParamDef(Fixed(""), str, "prepended to each pivot text"),
        "p": ParamDef(FloatRange(0.1, 0.5), float,
                      "probability that a text is replaced by its round trip"),
        "cache_dir": ParamDef(Fixed(None), (str, type(None)),
                              "cache directory (unset: $XDG_CACHE_HOME or ~/.cache, "
                              "/automl/back_translation)", is_path=True),
        "batch_size": ParamDef(Fixed(16), int, "texts per generate() call"),
        "max_length": ParamDef(Fixed(128), int, "tokens per text in and out"),
        "num_beams": ParamDef(Fixed(1), int, "beam width (1: greedy)"),
    }

    def apply_raw(self, raw: Sequence[Any], params: dict[str, Any],
                  rng: np.random.Generator) -> list[Any]:
        p = float(params["p"])
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"p must be in [0, 1], got {p}", path=f"{WHERE}.p")
        chosen = rng.random(len(raw)) < p
        # Every text is translated (once: cached), so later epochs and trials only read.
        translated = round_trip(str(params["forward"]), str(params["backward"]),
                                params.get("cache_dir"), str(params["forward_prefix"]),
                                str(params["backward_prefix"]), int(params["batch_size"]),
                                int(params["max_length"]), int(params["num_beams"])
                                )([str(t) for t in raw])
        return [new if pick else old for old, new, pick in zip(raw, translated, chosen)]


@functools.lru_cache(maxsize=4)
def round_trip(forward: str, backward: str, cache_dir: str | None, forward_prefix: str,
               backward_prefix: str, batch_size: int, max_length: int, num_beams: int) -> Any:
    """One :class:`RoundTrip` per setting in a worker process (its in-memory memo is reused by
    every epoch)."""
    from automl_plugins.augmentations.translation import RoundTrip

    return RoundTrip(forward, backward, cache_dir, (forward_prefix, backward_prefix),
                     batch_size, max_length, num_beams, where=WHERE)


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(BackTranslation)
