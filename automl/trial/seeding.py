"""Per-trial seeds derived from the experiment seed and the trial's parameters."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from typing import Any


def derive_seed(experiment_seed: int, params: Mapping[str, Any]) -> int:
    """A 31-bit seed that depends only on the experiment seed and the sampled parameters, so
    rerunning the same configuration reproduces the same trial."""
    payload = json.dumps({"seed": experiment_seed, "params": dict(sorted(params.items()))},
                         sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(payload.encode()).digest()[:4], "big") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
