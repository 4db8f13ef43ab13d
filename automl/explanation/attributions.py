"""Attributions of image and text models with Captum, on validation examples.

Images: integrated gradients on the input pixels (baseline: an all-zero input) and occlusion
(patches set to zero, the change of the prediction measured). Texts: integrated gradients on
the token embeddings (:class:`captum.attr.LayerIntegratedGradients`), summed over the embedding
dimensions per token; the baseline is every token replaced by the mask token (the spec's
``extra["mask_token_id"]``, else the padding token ``extra["pad_token_id"]``), padding kept
where it is, so a model that derives its attention mask from the padding sees the same mask
along the whole path. An ensemble is explained through
its weighted predictions: for a text ensemble every member's token embedding is interpolated at
once. The attributions are for the prediction column each example's prediction picks (its
predicted class; a single value for regression).

Which examples: the most confidently right and the most confidently wrong ones (a regression:
the smallest and largest errors), half each.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.errors import ConfigError
from automl.explanation.result import Example

if TYPE_CHECKING:
    import torch
    from torch import nn

    from automl.explanation.subject import Subject

#: integrated gradients' steps between the baseline and the input
STEPS = 32
#: interpolated inputs run through the model at once
BATCH = 64


def predictions(module: "nn.Module", x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The module's predictions for prepared inputs (float32 or int64 token ids), batched."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            out.append(module(_tensor(x[start:start + batch])).float().numpy())
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def explained_columns(subject: "Subject", proba: np.ndarray) -> np.ndarray:
    """Per example, the prediction column to explain: the largest one of a classifier (its
    predicted class or most likely label), the only one of a single-value regression."""
    if subject.spec.class_names:
        return proba.argmax(axis=1)
    if proba.shape[1] != 1:
        raise ConfigError(f"this model predicts {proba.shape[1]} values per example; automl "
                          "explain attributes a single predicted value (or a class) only")
    return np.zeros(len(proba), dtype=np.int64)


def choose_examples(subject: "Subject", proba: np.ndarray, columns: np.ndarray,
                    count: int) -> list[int]:
    """Validation rows to show: the ``count // 2`` best and the rest worst predicted (for a
    classifier: most confidently right, most confidently wrong)."""
    y = subject.data.y_val
    rows = np.arange(len(proba))
    score = proba[rows, columns]
    if subject.spec.class_names:
        right = (y[rows, columns] >= 0.5) if y.ndim == 2 else (y == columns)
        rank = np.where(right, score, -score)
    else:
        rank = -np.abs(score - y.reshape(len(y), -1)[:, 0])
    order = [int(i) for i in np.argsort(-rank, kind="stable")]
    best, worst = order[:count // 2], order[::-1][:count - count // 2]
    return list(dict.fromkeys([*best, *[w for w in worst if w not in best]]))[:count]


def explain_images(subject: "Subject", rows: Sequence[int], columns: np.ndarray,
                   proba: np.ndarray, figures: Path) -> list[Example]:
    """Integrated gradients and occlusion for the image examples ``rows``; each example's
    figure is written to ``figures/<row>.png``."""
    import torch
    from captum.attr import IntegratedGradients, Occlusion

    from automl.explanation.figures import image_figure

    x = torch.as_tensor(subject.data.x_val[list(rows)]).float()
    targets = torch.as_tensor(columns[list(rows)])
    gradients = IntegratedGradients(subject.module)
    ig, delta = gradients.attribute(x, baselines=torch.zeros_like(x), target=targets,
                                    n_steps=STEPS, internal_batch_size=BATCH,
                                    return_convergence_delta=True)
    window = _window(tuple(x.shape[1:]))
    occluded = Occlusion(subject.module).attribute(
        x, sliding_window_shapes=window, strides=tuple(max(1, w // 2) for w in window),
        baselines=0.0, target=targets, perturbations_per_eval=BATCH)
    examples = []
    figures.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        relative = f"{figures.name}/{row}.png"
        described = _describe(subject, row, int(columns[row]), proba)
        image_figure(x[i].numpy(), ig[i].detach().numpy(), occluded[i].detach().numpy(),
                     f"row {row}: {described['title']}", figures.parent / relative)
        examples.append(Example(row=row, image=relative,
                                attribution_total=float(ig[i].sum()),
                                convergence_delta=float(delta[i]), **described["fields"]))
    return examples


def explain_texts(subject: "Subject", rows: Sequence[int], columns: np.ndarray,
                  proba: np.ndarray) -> list[Example]:
    """Integrated gradients on the token embeddings for the text examples ``rows``, one value
    per token (padding left out)."""
    import torch
    from captum.attr import LayerIntegratedGradients

    ids = torch.as_tensor(subject.data.x_val[list(rows)]).long()
    pad = int(subject.spec.extra.get("pad_token_id", 0))
    reference = int(subject.spec.extra.get("mask_token_id", pad))
    layers = token_embeddings(subject.module, ids[:2])
    # the padding stays (a model masks it by its id), every other token becomes the reference
    baseline = torch.where(ids == pad, ids, torch.full_like(ids, reference))
    with warnings.catch_warnings():  # the members' embeddings do not feed each other
        warnings.filterwarnings("ignore", message="Multiple layers provided")
        gradients = LayerIntegratedGradients(subject.module,
                                             layers if len(layers) > 1 else layers[0])
    found, delta = gradients.attribute(ids, baselines=baseline,
                                       target=torch.as_tensor(columns[list(rows)]),
                                       n_steps=STEPS, internal_batch_size=BATCH,
                                       return_convergence_delta=True)
    per_token = sum(a.detach().sum(dim=-1) for a in (found if isinstance(found, list)
                                                     else [found]))
    names = _token_names(subject, ids)
    examples = []
    for i, row in enumerate(rows):
        kept = [(names[i][j], float(per_token[i, j])) for j in range(ids.shape[1])
                if int(ids[i, j]) != pad]
        described = _describe(subject, row, int(columns[row]), proba)
        examples.append(Example(row=row, tokens=kept,
                                attribution_total=float(per_token[i].sum()),
                                convergence_delta=float(delta[i]), **described["fields"]))
    return examples


def token_embeddings(module: "nn.Module", ids: "torch.Tensor") -> list["nn.Module"]:
    """The embedding layers that look up the input token ids themselves (not positions or
    segment ids), found by running ``ids`` through ``module`` once: one per ensemble member."""
    import torch
    from torch import nn

    found: list[nn.Module] = []

    def record(layer: nn.Module, inputs: tuple[Any, ...]) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].shape == ids.shape \
                and torch.equal(inputs[0], ids):
            found.append(layer)

    hooks = [m.register_forward_pre_hook(record) for m in module.modules()
             if isinstance(m, nn.Embedding)]
    try:
        with torch.no_grad():
            module(ids)
    finally:
        for hook in hooks:
            hook.remove()
    if not found:
        raise ConfigError("this text model has no embedding layer (torch.nn.Embedding) that "
                          "looks up its input token ids; automl explain attributes texts through "
                          "their token embeddings")
    return list(dict.fromkeys(found))


def _token_names(subject: "Subject", ids: "torch.Tensor") -> list[list[str]]:
    """The tokens' text through the dataset's bundled tokenizer (its preprocessing file
    ``tokenizer``), else ``#<id>``."""
    prep = subject.preprocessing
    path = prep.files.get("tokenizer") if prep is not None else None
    if path:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return [tokenizer.convert_ids_to_tokens([int(t) for t in row]) for row in ids]
    return [[f"#{int(t)}" for t in row] for row in ids]


def _describe(subject: "Subject", row: int, column: int, proba: np.ndarray) -> dict[str, Any]:
    y = subject.data.y_val[row]
    value = float(proba[row, column])
    if subject.spec.class_names:
        classes = subject.spec.class_names
        if np.ndim(y) == 0:
            target = str(classes[int(y)])
        else:
            target = ", ".join(str(classes[i]) for i in np.flatnonzero(np.asarray(y) >= 0.5))
        predicted = explained = str(classes[column])
        title = f"true {target}, predicted {predicted} ({value:.2f})"
    else:
        target = f"{float(np.ravel(y)[0]):.4g}"
        predicted, explained = f"{value:.4g}", str(subject.columns[column])
        title = f"true {target}, predicted {predicted}"
    return {"title": title, "fields": {"target": target, "predicted": predicted, "score": value,
                                       "explained": explained}}


def _window(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Occlusion's patch: every channel, an eighth of the height and width (at least 2 pixels)."""
    channels, height, width = shape[0], shape[-2], shape[-1]
    return (channels, max(2, height // 8), max(2, width // 8))


def _tensor(x: np.ndarray) -> "torch.Tensor":
    import torch

    tensor = torch.as_tensor(x)
    return tensor.float() if tensor.is_floating_point() else tensor.long()
