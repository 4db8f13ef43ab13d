"""Images in one sub-folder per class (PNG/JPEG), resized to a square."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, Examples, ParamDef
from automl.errors import ConfigError
from automl.params import Fixed

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


class ImageFolder(Dataset):
    name = "image_folder"
    description = "images in class-named sub-folders of `path`, resized to size x size"
    kind: ClassVar[str] = "image"
    params = {
        "path": ParamDef(Fixed(None), str, "folder with one sub-folder per class", required=True,
                         is_path=True),
        "size": ParamDef(Fixed(32), int, "images are resized to size x size pixels"),
        "grayscale": ParamDef(Fixed(False), bool, "convert to one channel"),
    }

    def load(self, params: dict[str, Any]) -> Examples:
        from PIL import Image, UnidentifiedImageError

        root = Path(params["path"])
        if not root.is_dir():
            raise ConfigError(f"no such folder: {root}", path="dataset.params.path")
        size = int(params["size"])
        if size < 4:
            raise ConfigError(f"size must be at least 4, got {size}", path="dataset.params.size")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        if len(classes) < 2:
            raise ConfigError(f"{root} needs at least two class sub-folders, found "
                              f"{classes or 'none'}", path="dataset.params.path")
        mode = "L" if params["grayscale"] else "RGB"
        images, labels = [], []
        for label, name in enumerate(classes):
            files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in SUFFIXES)
            if not files:
                raise ConfigError(f"class folder {root / name} holds no images "
                                  f"({', '.join(sorted(SUFFIXES))})", path="dataset.params.path")
            for file in files:
                try:
                    with Image.open(file) as img:
                        img = img.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                        images.append(np.asarray(img, dtype=np.float32) / 255.0)
                except (UnidentifiedImageError, OSError) as exc:
                    raise ConfigError(f"cannot read image {file}: {exc}",
                                      path="dataset.params.path") from None
                labels.append(label)
        x = np.stack(images)
        x = x[:, None, :, :] if mode == "L" else x.transpose(0, 3, 1, 2)
        spec = DataSpec("image", tuple(x.shape[1:]), len(classes), tuple(classes))
        return Examples(np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64), spec)


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(ImageFolder)
