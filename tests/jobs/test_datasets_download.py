"""Downloads against a local HTTP server: good files, corrupted files, no server at all."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from service.datasets import DatasetSpec, DatasetUnavailable, ensure_dataset
from service.datasets.catalog import FILE_NAMES, MNIST, ROLES

from .conftest import FIXTURE, FileServer

FILES = {name: (FIXTURE / name).read_bytes() for name in FILE_NAMES.values()}


def fixture_spec(mirrors: tuple[str, ...] = ()) -> DatasetSpec:
    """MNIST's layout with the fixture's checksums, so the local server serves 'good' files."""
    md5 = {role: hashlib.md5(FILES[FILE_NAMES[role]]).hexdigest() for role in ROLES}
    return DatasetSpec("mnist", md5, mirrors, MNIST.classes)


def test_downloads_verifies_and_writes(
    tmp_path: Path, serve_files: Callable[[dict[str, bytes]], FileServer]
) -> None:
    server = serve_files(FILES)
    progress: list[tuple[str, int, int | None]] = []
    folder = tmp_path / "data" / "mnist"
    paths = ensure_dataset(
        fixture_spec((server.url,)), folder, progress=lambda *a: progress.append(a)
    )
    assert {p.name for p in paths.values()} == set(FILE_NAMES.values())
    for path in paths.values():
        assert path.read_bytes() == FILES[path.name]
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILE_NAMES.values())  # no .part
    assert progress and progress[-1][1] == progress[-1][2]
    # Present files are used as they are: no second download.
    count = len(server.requests)
    ensure_dataset(fixture_spec((server.url,)), folder)
    assert len(server.requests) == count


def test_corrupted_file_is_rejected_and_next_mirror_used(
    tmp_path: Path, serve_files: Callable[[dict[str, bytes]], FileServer]
) -> None:
    name = FILE_NAMES["train_images"]
    corrupted = dict(FILES)
    corrupted[name] = FILES[name][:-10] + b"0123456789"
    bad, good = serve_files(corrupted), serve_files(FILES)
    folder = tmp_path / "mnist"
    ensure_dataset(fixture_spec((bad.url, good.url)), folder)
    assert (folder / name).read_bytes() == FILES[name]
    assert any(r.endswith(name) for r in good.requests)


def test_checksum_failure_fails_with_advice(
    tmp_path: Path, serve_files: Callable[[dict[str, bytes]], FileServer]
) -> None:
    name = FILE_NAMES["test_labels"]
    corrupted = dict(FILES)
    corrupted[name] = b"\x00" + FILES[name][1:]
    server = serve_files(corrupted)
    folder = tmp_path / "mnist"
    with pytest.raises(DatasetUnavailable) as info:
        ensure_dataset(fixture_spec((server.url,)), folder)
    message = str(info.value)
    assert "checksum mismatch" in message and name in message
    # Clients read this message: it names the folder by its setting, never the server's path.
    assert "the mnist/ folder of LOSS_SERVICE_DATA_DIR" in message
    assert str(tmp_path) not in message
    # Nothing half-written or wrong under the final name, no temporary file left behind.
    assert not (folder / name).exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_offline_fails_with_advice(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DatasetUnavailable) as info:
        ensure_dataset(fixture_spec((f"http://127.0.0.1:{port}/",)), tmp_path / "m", timeout_s=2)
    message = str(info.value)
    assert "unreachable" in message
    assert all(name in message for name in FILE_NAMES.values())


def test_http_error_is_reported(
    tmp_path: Path, serve_files: Callable[[dict[str, bytes]], FileServer]
) -> None:
    server = serve_files({})
    with pytest.raises(DatasetUnavailable, match="HTTP 404"):
        ensure_dataset(fixture_spec((server.url,)), tmp_path / "m")


def test_official_checksums_are_the_published_ones() -> None:
    assert MNIST.md5["train_images"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert len({*MNIST.md5.values()}) == 4
