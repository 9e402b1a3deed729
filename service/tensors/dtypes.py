"""The dtypes a tensor can travel as, by their wire names and Open Inference Protocol spellings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from service.errors import InvalidInput, Loc


@dataclass(frozen=True)
class WireDType:
    name: str
    torch: torch.dtype
    # The numpy dtype whose bytes are this dtype's bytes (bfloat16 travels as raw uint16).
    numpy: np.dtype[np.generic]
    oip: str

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @property
    def is_float(self) -> bool:
        return self.torch.is_floating_point

    @property
    def is_bool(self) -> bool:
        return self.torch is torch.bool


def _d(name: str, tdtype: torch.dtype, ndtype: str, oip: str) -> WireDType:
    return WireDType(name, tdtype, np.dtype(ndtype).newbyteorder("<"), oip)


WIRE_DTYPES: tuple[WireDType, ...] = (
    _d("float16", torch.float16, "float16", "FP16"),
    _d("bfloat16", torch.bfloat16, "uint16", "BF16"),
    _d("float32", torch.float32, "float32", "FP32"),
    _d("float64", torch.float64, "float64", "FP64"),
    _d("int8", torch.int8, "int8", "INT8"),
    _d("int16", torch.int16, "int16", "INT16"),
    _d("int32", torch.int32, "int32", "INT32"),
    _d("int64", torch.int64, "int64", "INT64"),
    _d("uint8", torch.uint8, "uint8", "UINT8"),
    _d("bool", torch.bool, "bool", "BOOL"),
)

DTypeName = Literal[
    "float16", "bfloat16", "float32", "float64",
    "int8", "int16", "int32", "int64", "uint8", "bool",
    "FP16", "BF16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "BOOL",
]  # fmt: skip
FloatDTypeName = Literal[
    "float16", "bfloat16", "float32", "float64", "FP16", "BF16", "FP32", "FP64"
]

CANONICAL_DTYPES: tuple[str, ...] = tuple(d.name for d in WIRE_DTYPES)
CANONICAL_FLOAT_DTYPES: tuple[str, ...] = tuple(d.name for d in WIRE_DTYPES if d.is_float)


def oip_note(float_only: bool = False) -> str:
    """A sentence naming the Open Inference Protocol spellings, accepted but not enumerated."""
    dtypes = [d for d in WIRE_DTYPES if d.is_float or not float_only]
    spellings = ", ".join(f"{d.oip} ({d.name})" for d in dtypes)
    return f"The Open Inference Protocol spellings are accepted too: {spellings}."


_BY_NAME = {d.name: d for d in WIRE_DTYPES} | {d.oip: d for d in WIRE_DTYPES}
_BY_TORCH = {d.torch: d for d in WIRE_DTYPES}


def wire_dtype(name: object, loc: Loc) -> WireDType:
    """The dtype called ``name`` on the wire, or a 422 naming ``loc``."""
    if isinstance(name, str) and name in _BY_NAME:
        return _BY_NAME[name]
    known = ", ".join(d.name for d in WIRE_DTYPES)
    raise InvalidInput.at(
        loc, f"unknown dtype {name!r}; use one of {known} (or FP32-style spellings)", "dtype"
    )


def float_dtype(name: str, loc: Loc) -> WireDType:
    dtype = wire_dtype(name, loc)
    if not dtype.is_float:
        raise InvalidInput.at(loc, f"dtype must be a floating dtype, not {dtype.name}", "dtype")
    return dtype


def of_torch(dtype: torch.dtype) -> WireDType:
    return _BY_TORCH[dtype]
