"""Raw augmentations in the trial worker: each epoch, the raw training inputs (text before
tokenisation) go through the enabled raw augmentations in the experiment's order and are encoded
again by the dataset's encoder; the trainer then trains on those model inputs (batch
augmentations still apply to its batches).

Random draws come from a numpy generator seeded from the trial seed, the epoch and the member
(k-fold), not from the trainer's torch generator, so a trial without raw augmentations draws
exactly what it drew before they existed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl.components import RawAugmentation, RawInputs
from automl.errors import AutomlError, ConfigError, PluginError


def split_augmentations(augmentations: Sequence[tuple[Any, dict[str, Any]]]
                        ) -> tuple[list[tuple[Any, dict[str, Any]]],
                                   list[tuple[Any, dict[str, Any]]]]:
    """The (batch, raw) augmentations of a plan, each in the experiment's order."""
    batch = [(a, p) for a, p in augmentations if getattr(a, "inputs", "batch") != "raw"]
    raw = [(a, p) for a, p in augmentations if getattr(a, "inputs", "batch") == "raw"]
    return batch, raw


def check_raw_inputs(names: Sequence[str], raw: RawInputs | None, dataset: str) -> None:
    """Refuse raw augmentations on data whose dataset (named ``dataset``) keeps no raw inputs."""
    if names and raw is None:
        raise ConfigError(f"augmentation '{names[0]}' transforms raw inputs (text before "
                          f"tokenisation), but {dataset} keeps none (its load() "
                          "returns Examples without an encoder)", path=f"augmentations.{names[0]}")


@dataclass(frozen=True)
class RawEpochs:
    """Makes the model inputs of each epoch from the raw inputs ``raw`` (train, then val rows:
    k-fold members pick theirs by row index in that order)."""

    augmentations: list[tuple[RawAugmentation, dict[str, Any]]]
    raw: RawInputs
    seed: int

    def inputs(self, epoch: int, rows: np.ndarray | None = None, member: int = 0) -> np.ndarray:
        """Model inputs for ``epoch`` of the training rows (``rows`` of train+val for k-fold)."""
        texts = (self.raw.train if rows is None
                 else np.concatenate([self.raw.train, self.raw.val])[rows])
        rng = np.random.default_rng([self.seed, epoch, member])
        current: list[Any] = list(texts)
        for augmentation, params in self.augmentations:
            current = self._apply(augmentation, params, current, rng)
        try:
            return self.raw.encoder(current)
        except AutomlError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"the dataset's encoder raised {type(exc).__name__} on augmented "
                              f"inputs: {exc}") from exc

    @staticmethod
    def _apply(augmentation: RawAugmentation, params: dict[str, Any], raw: list[Any],
               rng: np.random.Generator) -> list[Any]:
        where = f"augmentation '{augmentation.name}'"
        try:
            out = augmentation.apply_raw(raw, dict(params), rng)
        except AutomlError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"{where}: apply_raw() raised {type(exc).__name__}: {exc}"
                              ) from exc
        if len(out) != len(raw):
            raise PluginError(f"{where}: apply_raw() returned {len(out)} inputs for {len(raw)}")
        return list(out)


def raw_epochs(augmentations: Sequence[tuple[Any, dict[str, Any]]], raw: RawInputs | None,
               seed: int) -> RawEpochs | None:
    """The per-epoch inputs maker, or None when the plan enables no raw augmentation."""
    _, raw_augs = split_augmentations(augmentations)
    if not raw_augs:
        return None
    check_raw_inputs([a.name for a, _ in raw_augs], raw, "the experiment's dataset")
    assert raw is not None
    return RawEpochs(raw_augs, raw, seed)
