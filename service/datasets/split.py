"""A train/test split made from the IDX files at hand, written as a dataset folder.

With only the MNIST test set (``t10k-*``, 10,000 images) a job cannot train: it needs ``train-*``
files too. ``make_split`` pools the image/label pairs found in a source folder, shuffles them
with a seed (or keeps the file order), and writes the four standard files into a dataset folder
(gzip level 9, mtime 0: the same inputs give the same bytes), with ``split.json`` recording the
sources, the parameters and each written file's MD5, so ``verify`` can check them later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.datasets.catalog import FILE_NAMES, Role
from service.datasets.download import local_file
from service.datasets.idx import idx_file_bytes
from service.datasets.loader import Images, read_pair

MANIFEST = "split.json"
PAIRS: tuple[tuple[Role, Role], ...] = (
    ("train_images", "train_labels"),
    ("test_images", "test_labels"),
)


class SplitError(ValueError):
    """The split cannot be made (no source files, a bad size, files in the way)."""


@dataclass(frozen=True)
class SplitResult:
    folder: Path
    train: int
    test: int
    files: dict[str, str]  # written file name -> MD5


def source_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """The (images, labels) file pairs present in ``folder``: ``train-*`` then ``t10k-*``."""
    pairs = []
    for images_role, labels_role in PAIRS:
        images, labels = local_file(folder, images_role), local_file(folder, labels_role)
        if images is not None and labels is not None:
            pairs.append((images, labels))
    return pairs


def test_count(total: int, test: float) -> int:
    """``test`` as a count: a fraction in (0, 1), or a whole number of samples."""
    if 0 < test < 1:
        count = round(total * test)
    elif test >= 1 and test == int(test):
        count = int(test)
    else:
        raise SplitError(f"the test part must be a fraction in (0, 1) or a count, not {test}")
    if not 1 <= count <= total - 1:
        raise SplitError(
            f"the test part must hold between 1 and {total - 1} of the {total} samples, not {count}"
        )
    return count


def split_arrays(
    images: Images, labels: Images, test: int, seed: int | None
) -> tuple[Images, Images, Images, Images]:
    """Train images, train labels, test images, test labels: the last ``test`` samples are the
    test part, after a shuffle by ``seed`` (numpy's ``RandomState``, whose stream numpy keeps
    stable across versions) or in file order when ``seed`` is None."""
    if seed is not None:
        order = np.random.RandomState(seed).permutation(len(images))
        images, labels = images[order], labels[order]
    cut = len(images) - test
    return images[:cut], labels[:cut], images[cut:], labels[cut:]


def make_split(
    source: Path, target: Path, *, test: float, seed: int | None, force: bool = False
) -> SplitResult:
    """Write a train/test split of the pairs in ``source`` into the dataset folder ``target``."""
    pairs = source_pairs(source)
    if not pairs:
        names = ", ".join(FILE_NAMES[role] for pair in PAIRS for role in pair)
        raise SplitError(f"no image/label file pair in {source} (looked for {names})")
    in_the_way = [path for path in _written_paths(target) if path.exists()]
    if in_the_way and not force:
        raise SplitError(
            f"{target} already holds {', '.join(p.name for p in in_the_way)}; "
            "pass --force to replace them"
        )
    read = [read_pair(images, labels) for images, labels in pairs]
    images = np.concatenate([pair[0] for pair in read])
    labels = np.concatenate([pair[1] for pair in read])
    count = test_count(len(images), test)
    parts = split_arrays(images, labels, count, seed)
    target.mkdir(parents=True, exist_ok=True)
    sources = {str(path.resolve()): file_md5(path) for pair in pairs for path in pair}
    written: dict[str, str] = {}
    roles: tuple[Role, ...] = ("train_images", "train_labels", "test_images", "test_labels")
    for role, array in zip(roles, parts, strict=True):
        name = FILE_NAMES[role]
        data = idx_file_bytes(array, compressed=True)
        _write_atomically(target / name, data)
        written[name] = hashlib.md5(data, usedforsecurity=False).hexdigest()
    manifest: dict[str, Any] = {
        "sources": sources,
        "samples": len(images),
        "train": len(images) - count,
        "test": count,
        "seed": seed,
        "shuffle": "numpy.random.RandomState(seed).permutation" if seed is not None else None,
        "files": written,
    }
    _write_atomically(target / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return SplitResult(target, len(images) - count, count, written)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's ``split.json``, or None when there is none (or it is unreadable)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _written_paths(target: Path) -> list[Path]:
    names = [*FILE_NAMES.values(), *(n.removesuffix(".gz") for n in FILE_NAMES.values())]
    return [target / name for name in names]


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would make it (mkstemp's is 0600)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
