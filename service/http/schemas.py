"""Pydantic models of what travels over HTTP that is shared by several routes.

Tensor fields are typed ``WireTensor``: their JSON Schema is a reference to the ``Tensor``
component (``TENSOR_SCHEMAS``), written so that client generators can use it (variants told
apart by their JSON type, a loosely typed nested array, one object form, enums without
case-duplicates); pydantic does not walk them element by element (``SkipValidation``): the
tensor codec decodes and checks them, several times faster, with errors that name the element.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, WithJsonSchema
from typing_extensions import TypeAliasType

from service.tensors.dtypes import (
    CANONICAL_DTYPES,
    CANONICAL_FLOAT_DTYPES,
    FloatDTypeName,
    oip_note,
)

_REF = "#/components/schemas/{}"
NON_FINITE = ["NaN", "Infinity", "-Infinity"]

TENSOR_DESCRIPTION = (
    "A tensor in one of four forms, told apart by their JSON type: (1) a number, a boolean or "
    "a non-finite float as a string (a 0-d tensor); (2) a rectangular nested array of those, "
    "row-major, e.g. [[1, 2], [3, 4]]; (3)-(4) a TensorObject: {shape, dtype, data} with a flat "
    "row-major list of elements, or {shape, dtype, base64} with the raw little-endian bytes. "
    "Forms 1-3 without a dtype infer it: all-integer data is int64, booleans are bool, anything "
    "else is the request's float dtype. Non-finite floats travel as the strings "
    '"NaN", "Infinity" and "-Infinity", in requests and in responses.'
)
TENSOR_SCHEMAS: dict[str, dict[str, Any]] = {
    # No type and no oneOf: generators give it their "any JSON value" type. A oneOf with an
    # array member breaks openapi-generator's java (List<Object>.class) and typescript-fetch
    # (arrays become {}) templates; TensorObject is a model clients can build and send.
    "Tensor": {
        "title": "Tensor",
        "description": TENSOR_DESCRIPTION,
        "examples": [
            0.5,
            [[1, 2], [3, 4]],
            {"shape": [2, 2], "dtype": "float32", "data": [1, 2, 3, 4]},
        ],
    },
    "TensorObject": {
        "title": "TensorObject",
        "type": "object",
        "description": "A tensor as its shape, dtype and elements: exactly one of `data` (a flat "
        "row-major list of shape-product elements) or `base64` (the elements' raw bytes, "
        "little-endian, row-major, packed with no gaps, in standard base64 with `=` padding, "
        "RFC 4648; shape-product x itemsize bytes). A shape whose product differs from the "
        "number of elements is a 422 that names the field.",
        "properties": {
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "description": "The size of each dimension; [] for a 0-d tensor.",
            },
            "dtype": {
                "$ref": _REF.format("DType"),
                "description": "Required with base64. With data, optional: inferred as for "
                "nested arrays when omitted.",
            },
            "data": {
                "type": "array",
                "items": {},
                "description": "The elements, row-major: numbers, booleans, or the strings "
                '"NaN", "Infinity", "-Infinity".',
            },
            "base64": {"type": "string", "description": "The elements' raw bytes in base64."},
        },
        "required": ["shape"],
        "additionalProperties": False,
        "examples": [
            {"shape": [2, 2], "dtype": "float32", "data": [1, 2, 3, 4]},
            {"shape": [2], "dtype": "float32", "base64": "AACAPwAAAEA="},
        ],
    },
    "DType": {
        "title": "DType",
        "type": "string",
        "enum": list(CANONICAL_DTYPES),
        "description": f"A tensor's element type. {oip_note()}",
    },
}

# The tensor codec checks tensors; the schema is the component above.
if TYPE_CHECKING:  # the alias only names the schema; tensors are Any to pydantic and mypy
    Tensor = Any
else:
    Tensor = TypeAliasType("Tensor", Annotated[Any, WithJsonSchema(TENSOR_SCHEMAS["Tensor"])])
WireTensor = SkipValidation[Tensor]
# Validated against both spellings; the schema lists the canonical names only (generators reject
# enums whose values differ only by case), the description names the other spellings.
FloatDType = Annotated[
    FloatDTypeName,
    WithJsonSchema(
        {
            "type": "string",
            "enum": list(CANONICAL_FLOAT_DTYPES),
            "description": f"The floating dtype to compute in. {oip_note(float_only=True)}",
        }
    ),
]
Encoding = Literal["json", "base64"]


def grad_schema(names: tuple[str, ...] | list[str] | None) -> dict[str, Any]:
    """The schema of a ``grad`` field: false, true or a list of input names. Written without a
    oneOf (an array member breaks openapi-generator's java and typescript-fetch templates), so
    generators type it as any JSON value; the names are listed in the description."""
    which = f" ({', '.join(names)})" if names else ""
    return {
        "default": False,
        "description": "false: no gradients; true: the gradient of every differentiable input "
        f"given{which}; or a list of input names, e.g. {list(names[:1]) if names else []}.",
        "examples": [False, True, list(names[:1])] if names else [False],
    }


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
