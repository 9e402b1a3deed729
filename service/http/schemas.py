"""Pydantic models of what travels over HTTP that is shared by several routes.

Tensor fields are typed ``WireTensor``: their JSON Schema is the union of the four wire forms,
but pydantic does not walk them element by element (``SkipValidation``); the tensor codec
decodes and checks them, several times faster, with errors that name the element.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, Field, SkipValidation
from typing_extensions import TypeAliasType

from service.tensors.dtypes import DTypeName

NonFinite = Literal["NaN", "Infinity", "-Infinity"]
Element = Annotated[
    float | bool | NonFinite,
    Field(description="A number, a boolean, or a non-finite float as a string."),
]
if TYPE_CHECKING:  # mypy cannot follow the recursive alias; it is only for the JSON Schema
    NestedArray = list[Any]
else:
    NestedArray = TypeAliasType(
        "NestedArray",
        Annotated[
            list[Union[float, bool, NonFinite, "NestedArray"]],
            Field(description="A rectangular nested array, row-major."),
        ],
    )


class TensorData(BaseModel):
    """A tensor as its shape and a flat row-major list of its elements."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"shape": [2, 2], "dtype": "float32", "data": [1, 2, 3, 4]}]})  # fmt: skip

    shape: list[Annotated[int, Field(ge=0)]]
    dtype: DTypeName | None = Field(None, description="Default: inferred as for nested arrays.")
    data: list[Element]


class TensorBase64(BaseModel):
    """A tensor as raw little-endian, row-major bytes in standard base64 (RFC 4648)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"shape": [2], "dtype": "float32", "base64": "AACAPwAAAEA="}]})  # fmt: skip

    shape: list[Annotated[int, Field(ge=0)]]
    dtype: DTypeName
    base64: str


TensorWireForms: TypeAlias = float | bool | NonFinite | NestedArray | TensorData | TensorBase64
WireTensor = Annotated[
    SkipValidation[TensorWireForms],
    Field(description="A tensor in any of the four wire forms (API.md, 'Tensors on the wire')."),
]
Encoding = Literal["json", "base64"]


class LossResponse(BaseModel):
    """The loss and the gradients that were asked for."""

    loss: WireTensor = Field(
        description="A number for reduction 'mean'/'sum' (or 'batchmean'); a tensor for 'none'. "
        "With the json encoding, an empty tensor of two or more dimensions is an object "
        "{shape, dtype, data: []} so that its shape survives."
    )
    grad: dict[str, WireTensor] = Field(
        description="Gradient of the loss (of the sum of the unreduced losses for 'none') with "
        "respect to each input asked for, by input name; empty when none was asked for."
    )
    dtype: str = Field(description="The floating dtype the loss was computed in.")
    device: str = Field(description="The device that ran the computation, e.g. 'cpu', 'cuda:0'.")
    warnings: list[str] | None = Field(
        None,
        description="What torch warned about the inputs (e.g. a target broadcast to the "
        "input's shape, kl_div's 'mean'), in torch's words; present only when it warned.",
    )


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: 'body', then the field path.")
    msg: str = Field(description="What is wrong.")
    type: str = Field(description="A short machine-readable error kind.")


class Problem(BaseModel):
    """An RFC 9457 problem details object (media type application/problem+json)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = Field(
        None,
        description="One entry per field at fault, at most LOSS_SERVICE_MAX_PROBLEM_ERRORS "
        "(default 20).",
    )
    errors_omitted: int | None = Field(
        None, description="How many more errors there were beyond those listed."
    )


class ParamDescription(BaseModel):
    name: str
    type: Literal["float", "int", "bool", "str", "tensor"]
    default: Any
    description: str
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None


class InputDescription(BaseModel):
    name: str
    role: Literal["float", "index", "class_target"]
    role_description: str
    required: bool
    differentiable: bool
    description: str


class LossDescription(BaseModel):
    name: str
    summary: str
    formula: str
    source: str = Field(description="The Python function that computes it.")
    aliases: list[str]
    inputs: list[InputDescription]
    params: list[ParamDescription]
    differentiable: list[str]
    broadcast: list[str] = Field(
        description="The inputs and tensor params that torch broadcasts against the others when "
        "their shapes differ (for some losses with a warning, which the answer's `warnings` "
        "carry); the others must have the shapes torch requires (a 422 otherwise)."
    )
    endpoint: str
    notes: str = Field(
        "",
        description="Where the service's answer or params differ from calling the function "
        "itself (a param not offered, a torch answer corrected); empty when they do not.",
    )


class LossList(BaseModel):
    losses: list[LossDescription]
    aliases: dict[str, str] = Field(description="Alias -> loss name.")


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to ``model``'s schema in the OpenAPI document's components."""
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def request_body(schema: dict[str, Any], example: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that parses its own JSON body (so FastAPI cannot see it)."""
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"requestBody": {"required": True, "content": {"application/json": content}}}
