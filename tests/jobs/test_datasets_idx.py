"""The IDX reader and writer, and loading a dataset folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from service.datasets import DatasetUnavailable, load_split
from service.datasets.catalog import FILE_NAMES
from service.datasets.idx import IdxFormatError, encode_idx, parse_idx, read_idx, write_idx

from .conftest import FIXTURE


def test_round_trip(tmp_path: Path) -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name in ("x.gz", "x"):
        write_idx(tmp_path / name, images)
        assert np.array_equal(read_idx(tmp_path / name, 3), images)
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()) == (tmp_path / "x").read_bytes()


def test_rejects_malformed() -> None:
    good = encode_idx(np.zeros((3,), dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="magic"):
        parse_idx(b"\x00\x00\x0d\x01" + good[4:], 1)
    with pytest.raises(IdxFormatError, match="dimensions"):
        parse_idx(good, 3)
    with pytest.raises(IdxFormatError, match="bytes follow"):
        parse_idx(good[:-1], 1)
    with pytest.raises(IdxFormatError, match="too short"):
        parse_idx(b"\x00", 1)


def test_fixture_is_real_mnist() -> None:
    split = load_split({role: FIXTURE / name for role, name in FILE_NAMES.items()})
    assert split.train_images.shape == (1000, 28, 28)
    assert split.test_images.shape == (200, 28, 28)
    assert split.train_labels.dtype == split.test_labels.dtype == torch.int64
    assert set(split.train_labels.tolist()) == set(range(10))
    assert sum(p.stat().st_size for p in FIXTURE.glob("*.gz")) < 400_000


def test_load_split_caps_and_checks(tmp_path: Path) -> None:
    files = {role: FIXTURE / name for role, name in FILE_NAMES.items()}
    split = load_split(files, train_samples=10, test_samples=5)
    assert len(split.train_images) == 10 and len(split.test_labels) == 5
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DatasetUnavailable, match=r"bad\.gz"):
        load_split({**files, "train_images": bad})
    with pytest.raises(DatasetUnavailable, match="labels"):
        load_split({**files, "train_labels": files["test_labels"]})
