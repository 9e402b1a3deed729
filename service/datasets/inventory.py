"""What the data folder holds: each dataset's files, their sizes, and whether they check out.

``survey`` is cheap (it reads each file's IDX header only); ``verify`` reads every file whole:
it checks the IDX layout and the pairing of images with labels (as a job does before training),
and compares each file's MD5 with the published one, or with the one ``split.json`` recorded
when ``loss-service datasets split`` wrote the file.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

from service.datasets.catalog import FILE_NAMES, ROLES, DatasetSpec, Role
from service.datasets.download import local_file
from service.datasets.idx import IdxFormatError
from service.datasets.loader import read_pair
from service.datasets.split import PAIRS, file_md5, read_manifest


@dataclass
class FileState:
    role: Role
    path: Path | None  # None: missing
    bytes: int = 0
    samples: int | None = None  # from the IDX header
    checksum: str = ""  # verify: what the MD5 matched (or did not)
    problem: str | None = None


@dataclass
class DatasetState:
    spec: DatasetSpec
    folder: Path
    files: dict[Role, FileState] = field(default_factory=dict)

    @property
    def present(self) -> int:
        return sum(1 for f in self.files.values() if f.path is not None)

    @property
    def complete(self) -> bool:
        return self.present == len(ROLES)

    @property
    def ok(self) -> bool:
        return self.complete and not any(f.problem for f in self.files.values())

    def samples(self, role: Role) -> int | None:
        return self.files[role].samples


def survey(spec: DatasetSpec, data_dir: Path) -> DatasetState:
    """The dataset's files in ``data_dir/<name>``, with the sample count of each header."""
    folder = data_dir / spec.name
    state = DatasetState(spec, folder)
    for role in ROLES:
        path = local_file(folder, role)
        entry = FileState(role, path)
        if path is not None:
            entry.bytes = path.stat().st_size
            try:
                entry.samples = _header_count(path)
            except (OSError, EOFError, ValueError, struct.error) as exc:
                entry.problem = f"unreadable IDX header ({exc})"
        state.files[role] = entry
    return state


def verify(spec: DatasetSpec, data_dir: Path) -> DatasetState:
    """``survey``, then every present file read whole, paired and checksummed."""
    state = survey(spec, data_dir)
    manifest = read_manifest(state.folder) or {}
    files = manifest.get("files")
    recorded: dict[str, str] = files if isinstance(files, dict) else {}
    for images_role, labels_role in PAIRS:
        images, labels = state.files[images_role], state.files[labels_role]
        if images.path is None or labels.path is None:
            continue
        try:
            read_pair(images.path, labels.path)
        except IdxFormatError as exc:
            for entry in (images, labels):
                entry.problem = entry.problem or str(exc)
    for entry in state.files.values():
        if entry.path is None:
            continue
        md5 = file_md5(entry.path)
        if entry.path.name == FILE_NAMES[entry.role] and md5 == spec.md5[entry.role]:
            entry.checksum = "MD5 matches the published file"
        elif entry.path.name in recorded:
            if md5 == recorded[entry.path.name]:
                entry.checksum = "MD5 matches split.json"
            else:
                entry.checksum = f"MD5 {md5}"
                entry.problem = entry.problem or (
                    f"changed since `datasets split` wrote it (split.json records "
                    f"{recorded[entry.path.name]})"
                )
        else:
            entry.checksum = f"MD5 {md5}, not the published file: checked as IDX only"
    return state


def _header_count(path: Path) -> int:
    """The first dimension in the IDX header (images or labels in the file)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(8)
    zero, _dtype, dims, count = struct.unpack(">HBBI", head)
    if zero != 0 or dims == 0:
        raise ValueError("bad magic number")
    return int(count)
