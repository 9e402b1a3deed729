"""Make sure a dataset folder holds its four files: download what is missing from mirrors.

Each file is streamed into a temporary file in the target folder while its MD5 is computed;
only a file whose checksum matches the published one is renamed into place (``os.replace``,
atomic on POSIX), so a crash, a cut connection or a corrupted mirror never leaves a partial or
wrong file under the final name. When every mirror fails, ``DatasetUnavailable`` says what was
tried and which files to put where.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from service.datasets.catalog import FILE_NAMES, ROLES, DatasetSpec, Role

CHUNK = 1 << 16
MAX_FILE_BYTES = 200 * 1024 * 1024

ProgressFn = Callable[[str, int, int | None], None]
"""Called with (file name, bytes so far, total bytes or None) while downloading."""


class DatasetUnavailable(Exception):
    """The dataset's files are missing and could not be downloaded."""


class DownloadCancelled(Exception):
    """``should_stop`` asked to stop while downloading."""


def local_file(folder: Path, role: Role) -> Path | None:
    """The file for ``role`` in ``folder``: the ``.gz`` name, or the same name uncompressed."""
    name = FILE_NAMES[role]
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def ensure_dataset(
    spec: DatasetSpec,
    folder: Path,
    mirrors: Sequence[str] | None = None,
    *,
    timeout_s: float = 30.0,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[Role, Path]:
    """The four files of ``spec`` in ``folder``, downloading the missing ones."""
    mirrors = tuple(mirrors) if mirrors else spec.mirrors
    found: dict[Role, Path] = {}
    failures: list[str] = []
    for role in ROLES:
        path = local_file(folder, role)
        if path is None:
            try:
                path = _download_one(spec, role, folder, mirrors, timeout_s, progress, should_stop)
            except DatasetUnavailable as exc:
                failures.append(str(exc))
                continue
        found[role] = path
    if failures:
        raise DatasetUnavailable(_advice(spec, folder, failures))
    return found


def _download_one(
    spec: DatasetSpec,
    role: Role,
    folder: Path,
    mirrors: Sequence[str],
    timeout_s: float,
    progress: ProgressFn | None,
    should_stop: Callable[[], bool],
) -> Path:
    name = spec.file_name(role)
    target = folder / name
    errors: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DatasetUnavailable(
            f"{name}: cannot create the folder {folder.name}/: {reason}"
        ) from exc
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            fetch_verified(url, target, spec.md5[role], timeout_s, progress, should_stop)
            return target
        except DownloadCancelled:
            raise
        except (OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    tried = "; ".join(errors) if errors else "no mirror configured"
    raise DatasetUnavailable(f"{name}: {tried}")


def fetch_verified(
    url: str,
    target: Path,
    md5: str,
    timeout_s: float = 30.0,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Download ``url`` to ``target`` atomically, or raise without touching ``target``."""
    digest = hashlib.md5(usedforsecurity=False)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := resp.read(CHUNK):
                if should_stop():
                    raise DownloadCancelled(url)
                done += len(chunk)
                if done > MAX_FILE_BYTES:
                    raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(target.name, done, total)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and done != total:
            raise ValueError(f"truncated: {done} of {total} bytes")
        got = digest.hexdigest()
        if got != md5:
            raise ValueError(f"checksum mismatch: MD5 {got}, expected {md5}")
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except urllib.error.HTTPError as exc:
        raise OSError(f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise OSError(f"unreachable ({exc.reason})") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _advice(spec: DatasetSpec, folder: Path, failures: list[str]) -> str:
    names = ", ".join(FILE_NAMES[role] for role in ROLES)
    hint = (
        " (on Debian/Ubuntu, `apt-get install dataset-fashion-mnist` puts them in "
        "/usr/share/datasets/fashion-mnist/)"
        if spec.name == "fashion-mnist"
        else ""
    )
    where = f"the {folder.name}/ folder of LOSS_SERVICE_DATA_DIR"
    return (
        f"dataset {spec.name!r} is not available: its files are missing from {where} and "
        f"could not be downloaded ({' | '.join(failures)}). Put the four IDX files {names} "
        f"into {where}{hint}, or set LOSS_SERVICE_DATA_DIR to a directory that has a "
        f"{spec.name}/ folder holding them."
    )
