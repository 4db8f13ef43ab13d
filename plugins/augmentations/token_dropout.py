"""Token dropout for text: replace a fraction `p` of the tokens by a mask token."""

from __future__ import annotations

from typing import Any, ClassVar

import automl
from automl.components import Augmentation, ParamDef
from automl.params import FloatRange, Fixed

PAD_TOKEN_ID = 0


class TokenDropout(Augmentation):
    name = "token_dropout"
    description = "replace non-padding tokens after position 0 by mask_token_id with probability p"
    data_kinds: ClassVar[tuple[str, ...]] = ("text",)
    params = {
        "p": ParamDef(FloatRange(0.05, 0.25), float, "probability that a token is masked"),
        "mask_token_id": ParamDef(Fixed(100), int, "token id written over dropped tokens "
                                                   "(100 is [UNK] in BERT vocabularies)"),
    }

    def apply(self, x, y, params: dict[str, Any], generator):
        import torch

        p = float(params["p"])
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if x.dim() != 2:
            raise ValueError(f"expected token ids of shape N x L, got {tuple(x.shape)}")
        if p == 0.0 or x.shape[1] < 2:
            return x, y
        drop = torch.rand(x.shape, generator=generator, device=generator.device) < p
        drop = drop.to(x.device) & (x != PAD_TOKEN_ID)
        drop[:, 0] = False  # position 0 holds [CLS]
        return x.masked_fill(drop, int(params["mask_token_id"])), y


@automl.hookimpl
def automl_register_augmentations(registrar):
    registrar.add(TokenDropout)
