"""Wraps a transformers classifier so it maps token ids to logits like every architecture.

Kept apart from the plugin module so that importing the plugin does not import torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LogitsOnly(nn.Module):
    """Token ids in (padding = ``pad_token_id``), class logits out."""

    def __init__(self, model: Any, pad_token_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_token_id = pad_token_id

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_token_id).long()
        return self.model(input_ids=input_ids, attention_mask=mask).logits
