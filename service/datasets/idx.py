"""The IDX file format of MNIST and Fashion-MNIST: a big-endian header, then raw uint8 data.

Header: two zero bytes, a type byte (0x08 for unsigned bytes), the number of dimensions, then
one big-endian uint32 per dimension. Files ending in ``.gz`` are gzip-compressed.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

UBYTE = 0x08


class IdxFormatError(ValueError):
    """The file is not a well-formed unsigned-byte IDX file of the expected kind."""


def read_idx(path: Path, ndim: int) -> np.ndarray[tuple[int, ...], np.dtype[np.uint8]]:
    """The uint8 array stored in ``path``; ``ndim`` is 3 for images and 1 for labels."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IdxFormatError(f"{path}: cannot read ({exc})") from exc
    return parse_idx(raw, ndim, str(path))


def parse_idx(
    raw: bytes, ndim: int, name: str = "<bytes>"
) -> np.ndarray[tuple[int, ...], np.dtype[np.uint8]]:
    if len(raw) < 4:
        raise IdxFormatError(f"{name}: too short to be an IDX file")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != UBYTE:
        raise IdxFormatError(f"{name}: not an unsigned-byte IDX file (bad magic number)")
    if dims != ndim:
        raise IdxFormatError(f"{name}: has {dims} dimensions, expected {ndim}")
    header = 4 + 4 * dims
    shape = struct.unpack(f">{dims}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise IdxFormatError(
            f"{name}: header announces shape {list(shape)} ({count} bytes) "
            f"but {len(raw) - header} bytes follow"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def encode_idx(array: np.ndarray[tuple[int, ...], np.dtype[np.uint8]]) -> bytes:
    header = struct.pack(">HBB", 0, UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def idx_file_bytes(
    array: np.ndarray[tuple[int, ...], np.dtype[np.uint8]], compressed: bool
) -> bytes:
    """The bytes of an IDX file holding ``array``; gzip-compressed reproducibly (level 9,
    mtime 0: the same array gives the same bytes) when ``compressed``."""
    data = encode_idx(array)
    return gzip.compress(data, compresslevel=9, mtime=0) if compressed else data


def write_idx(path: Path, array: np.ndarray[tuple[int, ...], np.dtype[np.uint8]]) -> None:
    """Write ``array`` as IDX (gzip-compressed, reproducibly, when ``path`` ends in .gz)."""
    path.write_bytes(idx_file_bytes(array, path.suffix == ".gz"))
