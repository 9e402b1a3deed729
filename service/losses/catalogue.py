"""The loss catalogue: one ``LossSpec`` per loss, derived from the installed torch.

Each spec's tensor inputs, keyword params, their types and defaults come from the signature of
the ``torch.nn.functional`` function, and the param descriptions and summary from its
docstring; ``definitions.py`` adds only what torch cannot say (roles of inputs, which are
differentiable, allowed string values, formulas, range checks). The specs drive request
validation, ``GET /v1/losses`` and the OpenAPI schema.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

Role = Literal["float", "index", "class_target"]
ParamKind = Literal["float", "int", "bool", "str", "tensor"]
Tensors = dict[str, torch.Tensor]
Params = dict[str, Any]

DEPRECATED_PARAMS = frozenset({"size_average", "reduce"})
REDUCTIONS = ("none", "mean", "sum")

ROLE_TEXT: dict[Role, str] = {
    "float": "floating point; integers and booleans are cast to the request dtype",
    "index": "integers (class indices or lengths), range-checked",
    "class_target": "class indices (integers) or class probabilities (floats, same shape as input)",
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    role: Role
    description: str
    required: bool = True
    differentiable: bool = False
    # A plain number is accepted and broadcast the way torch treats a float there.
    scalar_ok: bool = False


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: ParamKind
    default: Any
    description: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


# A range check over the decoded (CPU) tensors and params, run before torch sees them.
Check = Callable[[Tensors, Params], None]
# Turns the decoded tensors and params into the call of the underlying function.
Call = Callable[[Tensors, Params], torch.Tensor]
# Work beyond the element-wise pass over the (broadcast) inputs, for losses whose cost grows
# faster than their inputs: (elements of work, the input that drives it, how it is counted).
ExtraWork = Callable[[Tensors, Params], tuple[int, str, str]]


@dataclass(frozen=True)
class LossSpec:
    name: str
    summary: str
    formula: str
    inputs: tuple[InputSpec, ...]
    params: tuple[ParamSpec, ...]
    call: Call
    check: Check | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""
    # What the service does differently from calling the function, or does not offer of it.
    notes: str = ""
    # Tensors (inputs or tensor params) torch broadcasts against the others when their shapes
    # differ; for some losses it warns, as the answer's ``warnings`` then say.
    broadcast: tuple[str, ...] = ()
    # Inputs and tensor params whose shapes the cost estimate broadcasts together (its element
    # count is the largest shape any of them could broadcast to).
    work_broadcast: tuple[str, ...] = ()
    extra_work: ExtraWork | None = None

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs if i.differentiable)

    def input(self, name: str) -> InputSpec:
        return next(i for i in self.inputs if i.name == name)

    def param(self, name: str) -> ParamSpec:
        return next(p for p in self.params if p.name == name)


@dataclass(frozen=True)
class LossOverrides:
    """What torch's signature and docstring do not say about a loss."""

    formula: str
    roles: Mapping[str, Role] = field(default_factory=dict)
    differentiable: tuple[str, ...] = ("input",)
    # Tensors with a default (None) that are inputs rather than params: optional, and may be
    # differentiable (e.g. linear_cross_entropy's linear_bias).
    optional_inputs: tuple[str, ...] = ()
    scalar_inputs: tuple[str, ...] = ()
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # Params that are not torch tensors/numbers on the wire (e.g. a distance function by name),
    # with their wire kind and default.
    replaced_params: Mapping[str, tuple[ParamKind, Any, str]] = field(default_factory=dict)
    # Params of the signature that cannot travel as JSON, with the reason (said in notes).
    omitted_params: Mapping[str, str] = field(default_factory=dict)
    adapt: Callable[[Tensors, Params], tuple[Tensors, Params]] | None = None
    # Computes instead of the torch function (same signature), where torch's answer is wrong.
    implementation: Callable[..., torch.Tensor] | None = None
    check: Check | None = None
    aliases: tuple[str, ...] = ()
    summary: str | None = None
    notes: str = ""
    broadcast: tuple[str, ...] = ()
    # None: every floating-point input and tensor param broadcast together.
    work_broadcast: tuple[str, ...] | None = None
    extra_work: ExtraWork | None = None


def derive_spec(name: str, fn: Callable[..., torch.Tensor], extra: LossOverrides) -> LossSpec:
    """The spec of ``fn`` from its signature and docstring, completed by ``extra``."""
    signature = inspect.signature(fn)
    hints = _type_hints(fn, signature)
    docs = parse_arg_docs(fn.__doc__ or "")
    inputs: list[InputSpec] = []
    params: list[ParamSpec] = []
    input_names: list[str] = []
    keyword_inputs: list[str] = []
    for pname, parameter in signature.parameters.items():
        if pname in DEPRECATED_PARAMS or pname in extra.omitted_params:
            continue
        is_input = (
            parameter.default is inspect.Parameter.empty or pname in extra.optional_inputs
        ) and pname not in extra.replaced_params
        if is_input:
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                keyword_inputs.append(pname)
            else:
                input_names.append(pname)
            inputs.append(
                InputSpec(
                    name=pname,
                    role=extra.roles.get(pname, "float"),
                    description=docs.get(pname, ""),
                    required=pname not in extra.optional_inputs,
                    differentiable=pname in extra.differentiable,
                    scalar_ok=pname in extra.scalar_inputs,
                )
            )
            continue
        if pname in extra.replaced_params:
            kind, default, text = extra.replaced_params[pname]
            description = text
        else:
            kind = _param_kind(hints.get(pname), pname, name)
            default = parameter.default
            description = docs.get(pname, "")
        low, high = extra.bounds.get(pname, (None, None))
        choices = extra.choices.get(pname, REDUCTIONS if pname == "reduction" else None)
        params.append(
            ParamSpec(pname, kind, default, description, choices, minimum=low, maximum=high)
        )

    work_broadcast = extra.work_broadcast
    if work_broadcast is None:
        work_broadcast = tuple(i.name for i in inputs if i.role == "float") + tuple(
            p.name for p in params if p.kind == "tensor"
        )
    adapt = extra.adapt
    compute = extra.implementation or fn

    def call(tensors: Tensors, given: Params) -> torch.Tensor:
        if adapt is not None:
            tensors, given = adapt(tensors, given)
        positional = [tensors.get(n) for n in input_names]
        keywords = {n: tensors[n] for n in keyword_inputs if n in tensors}
        return compute(*positional, **keywords, **given)

    return LossSpec(
        name=name,
        summary=extra.summary or first_sentence(fn.__doc__ or ""),
        formula=extra.formula,
        inputs=tuple(inputs),
        params=tuple(params),
        call=call,
        check=extra.check,
        aliases=extra.aliases,
        source=f"{fn.__module__}.{fn.__qualname__}",
        notes=" ".join(
            [extra.notes, *(f"{n}: {why}" for n, why in extra.omitted_params.items())]
        ).strip(),
        broadcast=extra.broadcast,
        work_broadcast=work_broadcast,
        extra_work=extra.extra_work,
    )


def _type_hints(fn: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """The annotations of ``fn``; one naming a type torch does not export at module level
    (e.g. ``'LinearCrossEntropyOptions | None'``) is left out rather than failing them all."""
    try:
        return typing.get_type_hints(fn)
    except NameError:
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    for pname, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # torch's own annotation text
            except NameError:
                continue
        if annotation is not inspect.Parameter.empty:
            hints[pname] = annotation
    return hints


def _param_kind(hint: Any, pname: str, loss: str) -> ParamKind:
    args = set(typing.get_args(hint)) - {type(None)} if _is_union(hint) else {hint}
    if torch.Tensor in args:
        return "tensor"
    for python_type, kind in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if python_type in args:
            return kind  # type: ignore[return-value]
    raise TypeError(f"{loss}: no wire type for param {pname!r} annotated {hint!r}")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


# ---------------------------------------------------------------------------------------------
# Docstrings: torch documents each argument in an "Args:" section.

_ARG_LINE = re.compile(r"^(\s*)(\w+)\s*\(([^)]*)\)\s*:\s*(.*)$")
_RST_ROLE = re.compile(r":(?:attr|math|class|func|meth|ref):`~?([^`]*)`")


def clean_rst(text: str) -> str:
    text = _RST_ROLE.sub(r"\1", text)
    text = re.sub(r"``'?([^`']*)'?``", r"'\1'", text)
    text = re.sub(r"`([^`<]*?)\s*<[^>]*>`__?", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def parse_arg_docs(doc: str) -> dict[str, str]:
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    except StopIteration:
        return {}
    found: dict[str, list[str]] = {}
    current: str | None = None
    indent = -1
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith(" "):
            break
        match = _ARG_LINE.match(line)
        if match and (indent < 0 or len(match.group(1)) == indent):
            indent = len(match.group(1))
            current = match.group(2)
            found[current] = [match.group(4)]
        elif line.strip() and current is not None and len(line) - len(line.lstrip()) > indent:
            found[current].append(line.strip())
        elif line.strip():
            break  # the next section (Shape:, Returns:, Examples::)
    return {name: clean_rst(" ".join(parts)) for name, parts in found.items()}


def first_sentence(doc: str) -> str:
    first = doc.strip().split("\n\n")[0]
    return clean_rst(first)
