"""Inference requests and responses of the Open Inference Protocol, JSON and binary.

A request body is a JSON object, optionally followed by the raw bytes of the inputs whose
``parameters`` give a ``binary_data_size`` (the binary tensor data extension); the
``Inference-Header-Content-Length`` header then says where the JSON ends. Raw bytes are
little-endian and row-major, as in the service's base64 form, and decode the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from service.errors import InvalidInput, MalformedBody
from service.tensors.codec import (
    ElementBudget,
    checked_shape,
    decode_raw,
    decode_rows,
    encode_tensor,
)
from service.tensors.dtypes import WireDType, of_torch, wire_dtype
from service.tensors.wirejson import dumps, loads

HEADER_LENGTH = "Inference-Header-Content-Length"
OIP_DTYPES = ("FP16", "BF16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "BOOL")
# Request parameters Triton's clients may send that ask for what a loss has no use for
# (sequences, scheduling); accepted and ignored. binary_data_output is read by the codec.
IGNORED_PARAMETERS = frozenset(
    {"sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers"}
)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None  # None: as the request's binary_data_output says


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: dict[str, torch.Tensor]
    parameters: dict[str, Any]
    outputs: tuple[RequestedOutput, ...] | None
    binary_output: bool


def split_body(body: bytes, header_length: str | None) -> tuple[Any, memoryview]:
    """The JSON header of a request, parsed, and the binary data after it."""
    view = memoryview(body)
    if header_length is None:
        return loads(body), view[:0]
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 <= length <= len(body):
        raise MalformedBody(
            f"{HEADER_LENGTH} must be an integer between 0 and the body's length "
            f"({len(body)}), got {header_length[:40]!r}"
        )
    return loads(view[:length]), view[length:]


def _dtype(name: Any, where: str) -> WireDType:
    if name == "BYTES":
        raise InvalidInput(f"{where}: BYTES tensors are not numbers; use one of {OIP_DTYPES}")
    if name not in OIP_DTYPES:
        raise InvalidInput(f"{where}: unknown datatype {str(name)[:40]!r}; use one of {OIP_DTYPES}")
    return wire_dtype(name, ())


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be a JSON object")
    return value


def decode_request(document: Any, binary: memoryview, budget: ElementBudget) -> InferRequest:
    """The inputs of a request as tensors, its parameters and the outputs it asks for."""
    request = _object(document, "the inference request")
    items = request.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidInput("inputs must be a non-empty list of tensors")
    parameters = _object(request.get("parameters", {}), "parameters")
    inputs: dict[str, torch.Tensor] = {}
    offset = 0
    for index, raw_item in enumerate(items):
        item = _object(raw_item, f"inputs[{index}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"inputs[{index}].name must be a string")
        where = f"input {name!r}"
        if name in inputs:
            raise InvalidInput(f"{where} is given twice")
        dtype = _dtype(item.get("datatype"), f"{where}: datatype")
        shape = checked_shape(item.get("shape"), (f"{where}: shape",), budget)
        size = _object(item.get("parameters", {}), f"{where}: parameters").get("binary_data_size")
        if size is None:
            if "data" not in item:
                raise InvalidInput(f"{where} needs data, or parameters.binary_data_size")
            inputs[name] = decode_rows(item["data"], shape, dtype, (f"{where}: data",), budget)
            continue
        if "data" in item:
            raise InvalidInput(f"{where} has both data and parameters.binary_data_size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"{where}: binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise InvalidInput(
                f"{where}: binary_data_size {size} runs past the end of the body "
                f"({len(binary) - offset} bytes of binary data left)"
            )
        inputs[name] = decode_raw(
            binary[offset : offset + size], shape, dtype, (f"{where}: binary_data_size",), "is"
        )
        offset += size
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary) - offset} bytes of binary data that no input's "
            "binary_data_size accounts for"
        )
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidInput("parameters.binary_data_output must be a boolean")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput("id must be a string")
    return InferRequest(
        id=request_id,
        inputs=inputs,
        parameters={
            k: v
            for k, v in parameters.items()
            if k not in IGNORED_PARAMETERS and k != "binary_data_output"
        },
        outputs=_requested_outputs(request.get("outputs")),
        binary_output=binary_output,
    )


def _requested_outputs(value: Any) -> tuple[RequestedOutput, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput("outputs must be a list")
    outputs: list[RequestedOutput] = []
    for index, raw_item in enumerate(value):
        item = _object(raw_item, f"outputs[{index}]")
        name = item.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"outputs[{index}].name must be a string")
        binary = _object(item.get("parameters", {}), f"output {name!r}: parameters").get(
            "binary_data"
        )
        if binary is not None and not isinstance(binary, bool):
            raise InvalidInput(f"output {name!r}: binary_data must be a boolean")
        outputs.append(RequestedOutput(name, binary))
    return tuple(outputs)


def raw_bytes(tensor: torch.Tensor) -> np.ndarray[Any, Any]:
    """The tensor's little-endian, row-major bytes, as a C-contiguous numpy array."""
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    tensor = tensor.contiguous()
    if tensor.dtype is torch.bfloat16:
        tensor = tensor.view(torch.uint16)
    array: np.ndarray[Any, Any] = tensor.numpy()
    return array if array.dtype.byteorder != ">" else array.astype(array.dtype.newbyteorder("<"))


def encode_response(
    header: dict[str, Any], outputs: Sequence[tuple[str, torch.Tensor, bool]]
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON header when binary data follows it.

    ``header`` holds the response's fields other than ``outputs``; each output is a name, its
    tensor and whether it travels as binary data.
    """
    entries: list[dict[str, Any]] = []
    chunks: list[np.ndarray[Any, Any]] = []
    for name, tensor, binary in outputs:
        entry: dict[str, Any] = {
            "name": name,
            "datatype": of_torch(tensor.dtype).oip,
            "shape": list(tensor.shape),
        }
        if binary:
            raw = raw_bytes(tensor)
            entry["parameters"] = {"binary_data_size": raw.nbytes}
            chunks.append(raw)
        else:
            entry["data"] = encode_tensor(tensor.reshape(-1), "json")
        entries.append(entry)
    text = dumps({**header, "outputs": entries})
    if not chunks:
        return text, None
    return b"".join([text, *(c.reshape(-1).view(np.uint8).data for c in chunks)]), len(text)
