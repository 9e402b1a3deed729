"""``loss-service datasets``: list, verify, download (from a local server), split."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from service import __main__ as entry
from service.datasets import DatasetSpec, load_split
from service.datasets.catalog import DATASETS, FILE_NAMES, MNIST, ROLES
from service.datasets.idx import read_idx, write_idx
from service.datasets.split import read_manifest, split_arrays

from .conftest import FIXTURE, FileServer

FILES = {name: (FIXTURE / name).read_bytes() for name in FILE_NAMES.values()}
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run ``loss-service datasets ARGS`` in this process with its data folder in tmp_path:
    (exit status, stdout, stderr)."""
    monkeypatch.setenv("LOSS_SERVICE_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            entry.main(["datasets", *args])
        out, err = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 1), out, err

    return run


def test_split_makes_a_dataset_a_job_can_read(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, _ = cli("list")
    assert code == 0
    assert out.splitlines()[1].split() == ["mnist", "missing", str(data / "mnist")]
    # The fixture holds 1,000 train-* and 200 t10k-* images: pooled, then split again.
    code, out, _ = cli("split", str(FIXTURE), "--test", "0.25", "--seed", "7")
    assert code == 0, out
    assert out == (
        f"mnist: 900 train and 300 test samples (shuffled with seed 7) written to "
        f"{data / 'mnist'} with split.json\n"
    )
    split = load_split({role: data / "mnist" / FILE_NAMES[role] for role in ROLES})
    assert (len(split.train_images), len(split.test_images)) == (900, 300)
    code, out, _ = cli("list")
    assert "complete: 900 train, 300 test" in out
    code, out, _ = cli("verify")
    assert code == 0
    assert out.count("MD5 matches split.json") == 4 and out.endswith("mnist: ok\n")


def test_the_split_is_the_same_for_the_same_seed(tmp_path: Path, cli: Cli) -> None:
    cli("split", str(FIXTURE), "--test", "200", "--seed", "3")
    first = {n: (tmp_path / "data" / "mnist" / n).read_bytes() for n in FILE_NAMES.values()}
    assert cli("split", str(FIXTURE), "--test", "200", "--seed", "3", "--force")[0] == 0
    again = {n: (tmp_path / "data" / "mnist" / n).read_bytes() for n in FILE_NAMES.values()}
    assert first == again
    manifest = read_manifest(tmp_path / "data" / "mnist")
    assert manifest is not None and manifest["seed"] == 3 and manifest["test"] == 200
    assert manifest["files"] == {n: hashlib.md5(b).hexdigest() for n, b in first.items()}


def test_in_order_keeps_the_file_order(tmp_path: Path, cli: Cli) -> None:
    code, out, _ = cli("split", str(FIXTURE), "--test", "200", "--in-order")
    assert code == 0 and "(in file order)" in out
    folder = tmp_path / "data" / "mnist"
    # train-* first, t10k-* last: the in-order split gives back the fixture's own files.
    for name in FILE_NAMES.values():
        assert gzip.decompress((folder / name).read_bytes()) == gzip.decompress(FILES[name])


def test_split_arrays_shuffles_with_numpy_legacy_stream() -> None:
    images = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28)
    labels = np.arange(10, dtype=np.uint8)
    _, train_y, _, test_y = split_arrays(images, labels, 3, seed=0)
    order = np.random.RandomState(0).permutation(10)
    assert list(train_y) + list(test_y) == list(order)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--test", "1.5"], "a fraction in (0, 1) or a count, not 1.5"),
        (["--test", "1200"], "between 1 and 1199 of the 1200 samples, not 1200"),
    ],
)
def test_split_refuses_bad_sizes(cli: Cli, args: list[str], message: str) -> None:
    code, _, err = cli("split", str(FIXTURE), *args)
    assert code == 1 and err.startswith("cannot split: ") and message in err
    assert len(err.splitlines()) == 1


def test_split_does_not_overwrite_without_force(cli: Cli, tmp_path: Path) -> None:
    assert cli("split", str(FIXTURE))[0] == 0
    code, _, err = cli("split", str(FIXTURE), "--seed", "1")
    assert code == 1 and "pass --force to replace them" in err
    code, _, err = cli("split", str(tmp_path / "nothing"))
    assert code == 1 and "no image/label file pair in" in err


def test_verify_finds_broken_and_changed_files(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "data" / "mnist"
    cli("split", str(FIXTURE), "--test", "200")
    labels = folder / FILE_NAMES["test_labels"]
    write_idx(labels, np.zeros(200, dtype=np.uint8))  # a valid file, not the one written
    code, out, _ = cli("verify", "mnist")
    assert code == 1
    assert "changed since `datasets split` wrote it" in out
    labels.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\xc8" + b"\x01" * 10))
    code, out, _ = cli("verify", "mnist")
    assert code == 1 and "header announces shape [200]" in out
    (folder / FILE_NAMES["train_images"]).unlink()
    code, out, _ = cli("verify")
    assert code == 1 and "missing" in out
    code, _, err = cli("verify", "cifar")
    assert code == 1 and "unknown dataset 'cifar'" in err


def test_download_from_a_local_mirror(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    serve_files: Callable[[dict[str, bytes]], FileServer],
) -> None:
    server = serve_files(FILES)
    # MNIST's layout with the fixture's checksums, so the local server serves 'good' files.
    md5 = {role: hashlib.md5(FILES[FILE_NAMES[role]]).hexdigest() for role in ROLES}
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", md5, (), MNIST.classes))
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (folder / FILE_NAMES["test_labels"]).write_bytes(FILES[FILE_NAMES["test_labels"]])
    code, out, err = cli("download", "mnist", "--mirror", server.url)
    assert code == 0, err
    assert out == f"mnist: 4 files in {folder} (3 downloaded, MD5 checked)\n"
    assert "train-images-idx3-ubyte.gz: " in err  # progress on stderr
    assert len(server.requests) == 3
    code, out, _ = cli("verify", "mnist")
    assert code == 0 and out.count("MD5 matches the published file") == 4
    assert read_idx(folder / FILE_NAMES["train_labels"], 1).shape == (1000,)


def test_download_with_wrong_checksums_fails_in_one_message(
    cli: Cli, tmp_path: Path, serve_files: Callable[[dict[str, bytes]], FileServer]
) -> None:
    server = serve_files(FILES)  # the fixture is not the published MNIST: checksums differ
    code, out, err = cli("download", "mnist", "--mirror", server.url)
    assert code == 1 and out == ""
    (message,) = [line for line in err.splitlines() if not line.startswith("  ")]
    assert "checksum mismatch" in message and "LOSS_SERVICE_DATA_DIR" in message
    assert not list((tmp_path / "data" / "mnist").iterdir())  # nothing half-written


def test_an_unknown_dataset_is_a_usage_error(cli: Cli) -> None:
    code, _, err = cli("download", "cifar")
    assert code == 2 and "invalid choice: 'cifar'" in err
