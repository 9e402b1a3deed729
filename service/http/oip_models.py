"""Wire models of the Open Inference Protocol's HTTP endpoints, for answers and the OpenAPI
document. Inference requests are parsed by ``service.oip.codec`` (binary data follows the JSON),
so ``InferRequest`` documents them without validating them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OipDataType = Literal[
    "FP16", "BF16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "BOOL"
]  # fmt: skip
# Parameter values the protocol allows: booleans, integers and strings (and numbers here,
# for float loss params such as margin).
ParameterValue = bool | int | float | str
FlatData = list[float | int | bool | str]


class OipError(BaseModel):
    error: str = Field(description="What is wrong with the request, in one sentence.")


class ServerMetadata(BaseModel):
    name: str = Field(examples=["loss-service"])
    version: str
    extensions: list[str] = Field(description="Protocol extensions supported.")


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str = Field(
        description="The datatype the service computes with; every numeric datatype is "
        "accepted and cast as the input's role says."
    )
    shape: list[int] = Field(description="-1: any size. A loss takes tensors of any rank.")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, ParameterValue] = Field(
        description="The loss's parameters (sent as request parameters) with their defaults, "
        "and grad (false)."
    )


class RepositoryModel(BaseModel):
    name: str
    version: str
    state: Literal["READY"]


class RepositoryIndex(BaseModel):
    models: list[RepositoryModel]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="An input of the loss (input, target, ...) or a tensor param.")
    shape: list[int]
    datatype: OipDataType
    parameters: dict[str, ParameterValue] | None = Field(
        None, description="binary_data_size: the tensor's bytes follow the JSON header."
    )
    data: FlatData | None = Field(
        None, description="Row-major values, flat (or nested); absent with binary data."
    )


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="loss, or grad_<input>.")
    parameters: dict[str, ParameterValue] | None = Field(
        None, description="binary_data: true to receive the output as binary data."
    )


class InferRequest(BaseModel):
    """An inference request. Request parameters: the loss's params (reduction, margin, ...),
    grad (true, false, or input names separated by commas), dtype, device, and
    binary_data_output. With binary inputs, the body is this JSON followed by their bytes and
    the Inference-Header-Content-Length header gives the JSON's length."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, ParameterValue] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = Field(
        None, description="The outputs wanted: loss and grad_<input> (all computed when absent)."
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: OipDataType
    parameters: dict[str, ParameterValue] | None = Field(
        None, description="binary_data_size: the output's bytes follow the JSON header."
    )
    data: FlatData | None = None


class InferResponse(BaseModel):
    """The answer. Parameters: dtype and device of the computation, and warnings (torch's
    warnings about the inputs, one per line) when torch gave any."""

    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, ParameterValue]
    outputs: list[ResponseOutput]
