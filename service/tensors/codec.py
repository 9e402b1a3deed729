"""Decode wire tensors into torch tensors, and encode torch tensors for the wire.

The four forms (docs/contract.md, "Tensors on the wire"): a JSON scalar, a nested JSON array,
an object with a flat ``data`` list, and an object with ``base64`` bytes. Nested lists go
through numpy, which converts them several times faster than ``torch.tensor(list)``.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch

from service.errors import InvalidInput, Loc, PayloadTooLarge
from service.tensors.dtypes import WireDType, of_torch, wire_dtype

Encoding = Literal["json", "base64"]

NON_FINITE_IN: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_OBJECT_KEYS = {"shape", "dtype", "data", "base64"}


class ElementBudget:
    """Counts tensor elements across one request and stops it at the configured limit.

    It also carries the request's work budget (``work_limit``, None: unlimited), which the
    compute layer's cost estimate (``service.compute.cost``) charges before torch runs.
    """

    def __init__(self, limit: int, max_depth: int, work_limit: int | None = None) -> None:
        self.limit = limit
        self.max_depth = max_depth
        self.used = 0
        self.work_limit = work_limit
        self.work_used = 0

    def take(self, count: int, loc: Loc) -> None:
        self.used += count
        if self.used > self.limit:
            raise PayloadTooLarge.at(
                loc,
                f"the request's tensors hold more than {self.limit} elements "
                "(LOSS_SERVICE_MAX_TENSOR_ELEMENTS)",
            )


# ---------------------------------------------------------------------------------------------
# Decoding


def decode_tensor(
    value: Any, loc: Loc, float_dtype: torch.dtype, budget: ElementBudget
) -> torch.Tensor:
    """The tensor that ``value`` (any of the four forms) describes.

    Forms 1-2 infer their dtype: integers are int64, booleans bool, anything else ``float_dtype``.
    Forms 3-4 keep the dtype they state. Casting to a role's dtype is the caller's business.
    """
    if isinstance(value, dict):
        return _decode_object(value, loc, float_dtype, budget)
    if isinstance(value, torch.Tensor):  # decoded already (and counted) by a binary front end
        return value
    if isinstance(value, (list, int, float, str)):
        array = _nested_to_numpy(value, loc, budget)
        budget.take(array.size, loc)
        return _inferred_tensor(array, float_dtype)
    raise InvalidInput.at(
        loc,
        "expected a tensor: a number, a nested array, or an object with shape and data/base64",
        "tensor_type",
    )


def _inferred_tensor(array: np.ndarray[Any, Any], float_dtype: torch.dtype) -> torch.Tensor:
    if array.dtype.kind == "f":
        tensor = torch.from_numpy(array)
        return tensor if tensor.dtype is float_dtype else tensor.to(float_dtype)
    # kind 'i' (all integers) or 'b' (all booleans); numpy already made int64 / bool.
    return torch.from_numpy(array)


def _nested_to_numpy(value: Any, loc: Loc, budget: ElementBudget) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        array = None
    if array is None or array.dtype.kind not in "fiub":
        # Rare paths: non-finite strings, ragged rows, foreign objects, huge integers.
        return _nested_to_numpy_slow(value, loc, budget)
    if array.ndim > budget.max_depth:
        raise _too_deep(loc, budget.max_depth)
    if array.dtype.kind == "u":  # numpy chose uint64 for an integer above int64's range
        raise InvalidInput.at(loc, "integer out of the int64 range", "int_range")
    if array.dtype.kind == "i" and array.dtype != np.int64:
        array = array.astype(np.int64)
    return array


def _too_deep(loc: Loc, depth: int) -> InvalidInput:
    return InvalidInput.at(
        loc, f"tensor nested deeper than {depth} levels (LOSS_SERVICE_MAX_NESTING_DEPTH)", "depth"
    )


def _nested_to_numpy_slow(value: Any, loc: Loc, budget: ElementBudget) -> np.ndarray[Any, Any]:
    shape = _check_rectangular(value, loc, budget.max_depth)
    flat = list(_flat_scalars(value, loc))
    kinds = {type(x) for x in flat}
    if kinds and kinds <= {bool}:
        dtype: type = np.bool_
    elif kinds and kinds <= {int, bool}:
        if any(not -(2**63) <= int(x) < 2**63 for x in flat):
            raise InvalidInput.at(loc, "integer out of the int64 range", "int_range")
        dtype = np.int64
    else:
        dtype = np.float64
        flat = [NON_FINITE_IN[x] if isinstance(x, str) else x for x in flat]
    return np.asarray(flat, dtype=dtype).reshape(shape)


def _check_rectangular(value: Any, loc: Loc, max_depth: int) -> tuple[int, ...]:
    """The shape of a nested list, or a 422 at the first row whose length or depth differs."""

    def shape_of(node: Any, path: Loc, depth: int) -> tuple[int, ...]:
        if not isinstance(node, list):
            return ()
        if depth >= max_depth:
            raise _too_deep(loc, max_depth)
        if not node:
            return (0,)
        first = shape_of(node[0], (*path, 0), depth + 1)
        for index, item in enumerate(node[1:], start=1):
            other = shape_of(item, (*path, index), depth + 1)
            if other != first:
                raise InvalidInput.at(
                    (*loc, *path, index),
                    f"ragged array: this element has shape {list(other)} but element 0 "
                    f"beside it has shape {list(first)}; every row must have the same length",
                    "ragged",
                )
        return (len(node), *first)

    return shape_of(value, (), 0)


def _flat_scalars(value: Any, loc: Loc) -> Iterator[bool | int | float | str]:
    stack: list[tuple[Any, Loc]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(node))))
        elif isinstance(node, (bool, int, float)) or (
            isinstance(node, str) and node in NON_FINITE_IN
        ):
            yield node
        else:
            raise InvalidInput.at(
                (*loc, *path),
                f"expected a number, a boolean or one of 'NaN', 'Infinity', '-Infinity', "
                f"got {_describe(node)}",
                "element_type",
            )


def _describe(node: Any) -> str:
    if isinstance(node, str):
        return f"the string {node[:40]!r}"
    if node is None:
        return "null"
    return f"a JSON {'object' if isinstance(node, dict) else type(node).__name__}"


def _decode_object(
    value: dict[str, Any], loc: Loc, float_dtype: torch.dtype, budget: ElementBudget
) -> torch.Tensor:
    unknown = set(value) - _OBJECT_KEYS
    if unknown:
        raise InvalidInput.at(
            (*loc, sorted(unknown)[0]),
            "unknown key in a tensor object; use shape, dtype, and data or base64",
            "extra_forbidden",
        )
    shape = _shape(value.get("shape"), (*loc, "shape"), budget)
    count = math.prod(shape)
    has_data, has_bytes = "data" in value, "base64" in value
    if has_data == has_bytes:
        raise InvalidInput.at(
            loc, "a tensor object needs exactly one of 'data' (a flat list) or 'base64'", "form"
        )
    budget.take(count, loc)
    if has_bytes:
        if "dtype" not in value:
            raise InvalidInput.at((*loc, "dtype"), "required with base64 data", "missing")
        dtype = wire_dtype(value["dtype"], (*loc, "dtype"))
        return _from_base64(value["base64"], shape, dtype, (*loc, "base64"))
    data_loc = (*loc, "data")
    if not isinstance(value["data"], list):
        raise InvalidInput.at(data_loc, "data must be a flat JSON array", "list_type")
    array = _nested_to_numpy(value["data"], data_loc, budget)
    if array.ndim != 1:
        raise InvalidInput.at(data_loc, "data must be a flat (one-dimensional) list", "flat")
    if array.size != count:
        raise InvalidInput.at(
            data_loc,
            f"data has {array.size} elements but shape {list(shape)} needs {count}",
            "shape_mismatch",
        )
    array = array.reshape(shape)
    if "dtype" not in value:
        return _inferred_tensor(array, float_dtype)
    dtype = wire_dtype(value["dtype"], (*loc, "dtype"))
    return _cast_stated(array, dtype, data_loc)


def decode_rows(
    value: Any, shape: tuple[int, ...], dtype: WireDType, loc: Loc, budget: ElementBudget
) -> torch.Tensor:
    """A flat or nested JSON list of ``dtype`` values, in row-major order, for ``shape``."""
    if not isinstance(value, list):
        raise InvalidInput.at(loc, "data must be a JSON array", "list_type")
    array = _nested_to_numpy(value, loc, budget).reshape(-1)
    count = math.prod(shape)
    if array.size != count:
        raise InvalidInput.at(
            loc,
            f"data has {array.size} elements but shape {list(shape)} needs {count}",
            "shape_mismatch",
        )
    return _cast_stated(array.reshape(shape), dtype, loc)


def checked_shape(shape: Any, loc: Loc, budget: ElementBudget) -> tuple[int, ...]:
    """``shape`` as a tuple, checked (non-negative integers, depth and size limits), counted."""
    dims = _shape(shape, loc, budget)
    budget.take(math.prod(dims), loc)
    return dims


def _shape(shape: Any, loc: Loc, budget: ElementBudget) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput.at(loc, "shape must be a list of non-negative integers", "shape")
    if len(shape) > budget.max_depth:
        raise _too_deep(loc, budget.max_depth)
    # An empty tensor passes the element count, but numpy and torch overflow on a shape such
    # as [0, 2**62, 2**62]; its other dimensions must fit the limit as a non-empty one would.
    if math.prod(d for d in shape if d) > budget.limit:
        raise PayloadTooLarge.at(
            loc,
            f"shape {shape} is larger than {budget.limit} elements, not counting its empty "
            "dimensions (LOSS_SERVICE_MAX_TENSOR_ELEMENTS)",
        )
    return tuple(shape)


def _cast_stated(array: np.ndarray[Any, Any], dtype: WireDType, loc: Loc) -> torch.Tensor:
    if dtype.is_float:
        if array.dtype.kind not in "fiub":
            raise InvalidInput.at(loc, f"values must be numbers for dtype {dtype.name}")
        return torch.from_numpy(array.astype(np.float64, copy=False)).to(dtype.torch)
    if dtype.is_bool:
        if array.dtype.kind == "b" or (array.size and np.isin(array, (0, 1)).all()):
            return torch.from_numpy(array.astype(np.bool_))
        if array.size == 0:
            return torch.zeros(array.shape, dtype=torch.bool)
        raise InvalidInput.at(loc, "values must be booleans (or 0/1) for dtype bool", "bool")
    if array.dtype.kind == "f" and array.size:  # an empty list parses as float64
        raise InvalidInput.at(loc, f"values must be integers for dtype {dtype.name}", "int_type")
    info = np.iinfo(dtype.numpy.newbyteorder("="))  # type: ignore[type-var]
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise InvalidInput.at(
            loc, f"values out of range for {dtype.name} [{info.min}, {info.max}]", "int_range"
        )
    return torch.from_numpy(array.astype(dtype.numpy.newbyteorder("=")))


def _from_base64(text: Any, shape: tuple[int, ...], dtype: WireDType, loc: Loc) -> torch.Tensor:
    if not isinstance(text, str):
        raise InvalidInput.at(loc, "base64 must be a string", "string_type")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput.at(
            loc, f"not valid standard base64 (RFC 4648): {exc}", "base64"
        ) from exc
    return decode_raw(raw, shape, dtype, loc, "decodes to")


def decode_raw(
    raw: bytes | memoryview, shape: tuple[int, ...], dtype: WireDType, loc: Loc, what: str = "has"
) -> torch.Tensor:
    """The tensor whose little-endian, row-major bytes are ``raw`` (copied, so writable)."""
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput.at(
            loc,
            f"{what} {len(raw)} bytes but shape {list(shape)} of {dtype.name} needs "
            f"{expected} ({dtype.itemsize} bytes per element)",
            "base64_length",
        )
    array = np.frombuffer(raw, dtype=dtype.numpy).astype(dtype.numpy.newbyteorder("="))
    tensor = torch.from_numpy(array.reshape(shape))
    if dtype.torch is torch.bfloat16:
        tensor = tensor.view(torch.bfloat16)
    if dtype.is_bool and array.size and not torch.all(tensor.view(torch.uint8) <= 1):
        raise InvalidInput.at(loc, "bool bytes must be 0 or 1", "bool")
    return tensor


# ---------------------------------------------------------------------------------------------
# Encoding


def encode_tensor(tensor: torch.Tensor, encoding: Encoding) -> Any:
    """A value ``dumps`` turns into the wire form: nested JSON (numbers exactly as torch's
    ``tolist()`` gives them, non-finite as strings) or a base64 object.

    An empty tensor of two or more dimensions travels as ``{"shape", "dtype", "data": []}``:
    as a nested list a (0, 3) tensor would be ``[]``, which reads back as shape (0,).
    """
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if encoding == "base64":
        return encode_base64(tensor)
    if tensor.numel() == 0 and tensor.dim() > 1:
        return {"shape": list(tensor.shape), "dtype": of_torch(tensor.dtype).name, "data": []}
    if tensor.is_floating_point():
        if not bool(torch.isfinite(tensor).all()):
            return _with_non_finite_strings(tensor.tolist())
        # float64 so that each number prints as the double torch's tolist() gives.
        array = tensor.to(torch.float64).numpy()
    else:
        array = tensor.numpy()
    return array.item() if array.ndim == 0 else array


def encode_base64(tensor: torch.Tensor) -> dict[str, Any]:
    dtype = of_torch(tensor.dtype)
    contiguous = tensor.contiguous()
    if dtype.torch is torch.bfloat16:
        contiguous = contiguous.view(torch.uint16)
    raw = contiguous.numpy().astype(dtype.numpy, copy=False).tobytes()
    return {
        "shape": list(tensor.shape),
        "dtype": dtype.name,
        "base64": binascii.b2a_base64(raw, newline=False).decode("ascii"),
    }


def encode_scalar(value: float) -> float | str:
    """A Python float for JSON: finite as is, non-finite as the proto3 strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _with_non_finite_strings(node: Any) -> Any:
    if isinstance(node, list):
        return [_with_non_finite_strings(item) for item in node]
    return encode_scalar(node)
