"""An image example's figure (matplotlib, written as a PNG): the input, its integrated gradients
and its occlusion attributions side by side; attributions in a diverging map centred on zero
(red: for the explained prediction, blue: against it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def image_figure(image: np.ndarray, gradients: np.ndarray, occlusion: np.ndarray, title: str,
                 path: Path) -> Path:
    """Write the figure of one example (C x H x W arrays) to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 2.8), dpi=80)
    axes = figure.subplots(1, 3)
    shown = _displayable(image)
    axes[0].imshow(shown, cmap="gray" if shown.ndim == 2 else None, interpolation="nearest")
    axes[0].set_title("input", fontsize=10)
    for ax, values, name in ((axes[1], gradients, "integrated gradients"),
                             (axes[2], occlusion, "occlusion")):
        heat = values.sum(axis=0)
        limit = float(np.abs(heat).max()) or 1.0
        drawn = ax.imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        figure.colorbar(drawn, ax=ax, fraction=0.046, pad=0.04)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def _displayable(image: np.ndarray) -> np.ndarray:
    """A C x H x W model input scaled to [0, 1]: one channel as a grey H x W image, three as
    H x W x 3, other counts averaged to grey."""
    picture = image.transpose(1, 2, 0) if image.shape[0] == 3 else image.mean(axis=0)
    low, high = float(picture.min()), float(picture.max())
    return (picture - low) / (high - low) if high > low else np.zeros_like(picture)
