"""Images in one sub-folder per class (PNG/JPEG), resized to a square."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import automl
from automl.components import DataSpec, Dataset, ExampleReader, Examples, ParamDef, Streamed
from automl.errors import ConfigError
from automl.params import Fixed
from automl.preprocessing import Preprocessing

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
        files, labels, classes = self._files(params)
        mode = "L" if params["grayscale"] else "RGB"
        x = read_images(files, int(params["size"]), mode, where="dataset.params.path")
        spec = DataSpec("image", tuple(x.shape[1:]), len(classes), tuple(classes))
        return Examples(x, np.asarray(labels, dtype=np.int64), spec)

    def stream(self, params: dict[str, Any]) -> Streamed:
        """The file list and the class of each file; trial workers decode the files."""
        files, labels, classes = self._files(params)
        size, mode = int(params["size"]), "L" if params["grayscale"] else "RGB"
        root = Path(params["path"])
        reader = ImageFiles(str(root), [str(f.relative_to(root)) for f in files], size, mode)
        spec = DataSpec("image", (1 if mode == "L" else 3, size, size), len(classes),
                        tuple(classes))
        return Streamed(reader, np.asarray(labels, dtype=np.int64), spec)

    def size_bytes(self, params: dict[str, Any]) -> int:
        """float32 pixels of every image once decoded (listing the files, reading none)."""
        files, _, _ = self._files(params)
        return len(files) * (1 if params["grayscale"] else 3) * int(params["size"]) ** 2 * 4

    def _files(self, params: dict[str, Any]) -> tuple[list[Path], list[int], list[str]]:
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
        images: list[Path] = []
        labels: list[int] = []
        for label, name in enumerate(classes):
            files = sorted(f for f in (root / name).iterdir() if f.suffix.lower() in SUFFIXES)
            if not files:
                raise ConfigError(f"class folder {root / name} holds no images "
                                  f"({', '.join(sorted(SUFFIXES))})", path="dataset.params.path")
            images.extend(files)
            labels.extend([label] * len(files))
        return images, labels, classes

    def preprocessing(self, params: dict[str, Any], spec: DataSpec) -> Preprocessing:
        """Raw input: image files, converted to the channel mode and resized like training."""
        return Preprocessing("images", {"size": int(params["size"]),
                                        "mode": "L" if params["grayscale"] else "RGB",
                                        "suffixes": sorted(SUFFIXES)})

    def encode(self, preprocessing: Preprocessing, raw: Any) -> np.ndarray:
        settings = preprocessing.settings
        return read_images(list(raw), settings["size"], settings["mode"])


class ImageFiles(ExampleReader):
    """Reads rows of an image folder: decodes and resizes the files of the rows asked for."""

    def __init__(self, root: str, files: list[str], size: int, mode: str) -> None:
        self.root, self.files, self.size, self.mode = root, files, size, mode

    def __len__(self) -> int:
        return len(self.files)

    def read(self, rows: np.ndarray) -> np.ndarray:
        root = Path(self.root)
        return read_images([root / self.files[int(i)] for i in rows], self.size, self.mode,
                           where="dataset.params.path")


def read_images(files: list, size: int, mode: str, where: str | None = None) -> np.ndarray:
    """N x C x size x size float32 in [0, 1]; an unreadable file is a ConfigError naming it."""
    from PIL import Image, UnidentifiedImageError

    images = []
    for file in files:
        try:
            with Image.open(file) as img:
                img = img.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                images.append(np.asarray(img, dtype=np.float32) / 255.0)
        except (UnidentifiedImageError, OSError) as exc:
            raise ConfigError(f"cannot read image {file}: {exc}", path=where) from None
    x = np.stack(images)
    x = x[:, None, :, :] if mode == "L" else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


@automl.hookimpl
def automl_register_datasets(registrar):
    registrar.add(ImageFolder)
