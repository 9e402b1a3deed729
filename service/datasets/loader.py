"""One dataset folder as tensors: uint8 images and int64 labels, checked for consistency.

Torch is imported when tensors are made, not with this module: the command line reads and
checks IDX files (``read_pair``) without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from service.datasets.catalog import Role
from service.datasets.download import DatasetUnavailable
from service.datasets.idx import IdxFormatError, read_idx

if TYPE_CHECKING:
    import torch

Images = np.ndarray[tuple[int, ...], np.dtype[np.uint8]]

IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class MnistSplit:
    """Images are uint8 ``[N, 28, 28]``, labels int64 ``[N]`` in 0..9."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def load_split(
    files: dict[Role, Path], train_samples: int | None = None, test_samples: int | None = None
) -> MnistSplit:
    """Read the four files (keeping the first ``*_samples`` of each split when given)."""
    try:
        parts = [
            _pair(files["train_images"], files["train_labels"], train_samples),
            _pair(files["test_images"], files["test_labels"], test_samples),
        ]
    except IdxFormatError as exc:
        raise DatasetUnavailable(f"{exc}; replace the file with the original IDX file") from exc
    (train_x, train_y), (test_x, test_y) = parts
    return MnistSplit(train_x, train_y, test_x, test_y)


def _pair(images_path: Path, labels_path: Path, limit: int | None) -> tuple[torch.Tensor, ...]:
    import torch

    images, labels = read_pair(images_path, labels_path)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return (
        torch.from_numpy(np.array(images, copy=True)),
        torch.from_numpy(labels.astype(np.int64)),
    )


def read_pair(images_path: Path, labels_path: Path) -> tuple[Images, Images]:
    """Images ``[N, 28, 28]`` and their labels ``[N]`` (uint8, 0..9), or ``IdxFormatError``."""
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if images.shape[1:] != IMAGE_SHAPE:
        raise IdxFormatError(f"{images_path}: images are {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    if labels.size and int(labels.max()) > 9:
        raise IdxFormatError(f"{labels_path}: labels must be 0..9")
    return images, labels
