"""Request models of each loss, generated from its catalogue spec (never written by hand)."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model
from pydantic_core import PydanticCustomError

from service.compute.devices import DEVICE_PATTERN
from service.http.schemas import Encoding, FloatDType, WireTensor, grad_schema
from service.losses.catalogue import ROLE_TEXT, LossSpec, ParamSpec
from service.losses.registry import catalogue

_KIND_TYPES: dict[str, Any] = {"float": float, "int": int, "bool": bool, "str": str}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _param_type(param: ParamSpec) -> Any:
    if param.kind == "tensor":
        return WireTensor | None
    if param.choices is not None:
        return Literal[param.choices]
    return _KIND_TYPES[param.kind]


def _param_field(param: ParamSpec) -> Any:
    description = param.description
    if param.kind == "tensor":
        description += " (floating point; cast to the request dtype)"
    return Field(
        param.default,
        description=description or None,
        ge=param.minimum,
        le=param.maximum,
    )


def _grad_choice(value: Any) -> Any:
    # Checked before the union, so a wrong type is one error at "grad" (not one per union
    # member), and 1 or "true" is not taken for true.
    if isinstance(value, bool) or (
        isinstance(value, list) and all(isinstance(name, str) for name in value)
    ):
        return value
    raise PydanticCustomError("grad_type", "must be false, true or a list of input names")


GradChoice = Annotated[bool | list[str], BeforeValidator(_grad_choice)]


class _Strict(BaseModel):
    # strict: 1.5 is not an int, "1" is not a number, 1 is not a boolean; ints are floats.
    model_config = ConfigDict(extra="forbid", strict=True)


class LossRequestBase(BaseModel):
    """Fields every loss request has besides its tensors and params."""

    model_config = ConfigDict(extra="forbid")

    grad: Annotated[GradChoice, WithJsonSchema(grad_schema(None))] = Field(False)
    dtype: FloatDType = Field("float32")
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)] = Field(
        "auto", description="auto (a GPU when one is available), cpu, cuda or cuda:N."
    )
    encoding: Encoding = Field("json", description="The form of tensors in the response.")


@cache
def params_model(spec: LossSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {p.name: (_param_type(p), _param_field(p)) for p in spec.params}
    return create_model(f"{_camel(spec.name)}Params", __base__=_Strict, **fields)


@cache
def request_model(spec: LossSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for spec_input in spec.inputs:
        description = f"{spec_input.description} [{ROLE_TEXT[spec_input.role]}]".strip()
        if spec_input.required:
            fields[spec_input.name] = (WireTensor, Field(description=description))
        else:
            fields[spec_input.name] = (WireTensor | None, Field(None, description=description))
    params = params_model(spec)
    fields["params"] = (params, Field(default_factory=params, description="Keyword arguments."))
    grad = Annotated[GradChoice, WithJsonSchema(grad_schema(spec.differentiable))]
    fields["grad"] = (grad, Field(False))
    return create_model(
        f"{_camel(spec.name)}Request",
        __base__=LossRequestBase,
        __doc__=f"{spec.summary}\n\nFormula: {spec.formula}",
        **fields,
    )


def all_request_models() -> list[type[BaseModel]]:
    return [request_model(spec) for spec in catalogue().values()]
