"""What a known mistake is: a named recomputation (or explanation) with a message.

A :class:`Mistake` is one entry of the catalogue. It says which losses and quantities it can
concern, a cheap test of whether the problem allows it at all (``applies``), and one of three
ways to confirm it from numbers:

- ``recompute``: the answers the wrong implementation gives on this problem (one or a few
  :class:`Alternative` s, e.g. one per logarithm base); a submission gets the hint when it
  matches one of them within the grading tolerance;
- ``reshape``: for a submission of the wrong shape, the reference rearranged into that shape
  the way the mistake does (transposed, flattened, a kept dimension);
- ``explain``: an input-based explanation (non-finite values exactly where the naive formula
  overflows, mismatches only at a kink) that returns the facts of its message or ``None``.

The search itself (which entries are tried, how matches are confirmed and ranked) lives in
``service.grading.hints``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from service.compute.engine import TORCH_INPUT_ERRORS
from service.grading.compare import Array
from service.grading.quantity import LOSS, Quantity
from service.grading.reference import Reference, as_array

Facts = Mapping[str, Any]
EVERY_LOSS: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alternative:
    """What one wrong implementation answers: the loss and/or gradients by input name."""

    values: dict[str, Array]
    facts: Facts = field(default_factory=dict)


Recompute = Callable[[Reference], list[Alternative]]
Reshape = Callable[[Reference, str, Array, tuple[int, ...]], list[Alternative]]
Explain = Callable[[Reference, Quantity], Facts | None]
Message = Callable[[Reference, Quantity, Facts], str]


def _always(reference: Reference) -> bool:
    return True


@dataclass(frozen=True)
class Example:
    """A small problem (a ``/v1/grade`` body without the submission) and the quantity the
    mistake shows in; the submission is the mistake's own recomputation unless ``submit``
    gives it (explanations and shape mistakes)."""

    problem: dict[str, Any]
    quantity: str = LOSS  # "loss" or an input name
    submit: Callable[[Reference], Array] | None = None


@dataclass(frozen=True)
class Mistake:
    code: str
    description: str  # what the student did, for the listing and the docs page
    message: Message
    example: Example
    losses: tuple[str, ...] = EVERY_LOSS
    on_loss: bool = True
    on_grad: bool = True
    applies: Callable[[Reference], bool] = _always
    recompute: Recompute | None = None
    reshape: Reshape | None = None
    explain: Explain | None = None
    # Codes this one is a special case of: when both are confirmed, only this one is named.
    refines: tuple[str, ...] = ()  # "*": every other code

    def concerns(self, reference: Reference, name: str) -> bool:
        """Whether this mistake can be behind a wrong ``name`` (loss or input) here."""
        if self.losses and reference.spec_name not in self.losses:
            return False
        if not (self.on_loss if name == LOSS else self.on_grad):
            return False
        key = f"applies:{self.code}"
        if key not in reference.memo:
            try:
                reference.memo[key] = bool(self.applies(reference))
            except (*TORCH_INPUT_ERRORS, ArithmeticError, KeyError):
                reference.memo[key] = False
        return bool(reference.memo[key])


# ---------------------------------------------------------------------------------------------
# Building alternatives


def values_of(
    reference: Reference, loss: torch.Tensor | None, grads: Mapping[str, Any]
) -> Alternative:
    values = {} if loss is None else {LOSS: as_array(loss)}
    values |= {name: as_array(g) for name, g in grads.items()}
    return Alternative(values)


def recomputed(
    reference: Reference,
    formula: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    facts: Facts | None = None,
    grads: bool = True,
) -> Alternative | None:
    """The loss ``formula`` computes from the problem's inputs, and its gradients by autograd
    with respect to every input the reference differentiates (None when torch refuses)."""
    names = [name for name in reference.grads if name in reference.tensors] if grads else []
    leaves = {name: t.detach().clone() for name, t in reference.tensors.items()}
    for name in names:
        leaves[name].requires_grad_(True)
    try:
        with torch.enable_grad():
            loss = formula(leaves)
            found: tuple[torch.Tensor | None, ...] = ()
            if names and loss.requires_grad:
                total = loss if loss.dim() == 0 else loss.sum()
                found = torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True)
    except TORCH_INPUT_ERRORS:
        return None
    values = {LOSS: as_array(loss)}
    for name, grad in zip(names, found, strict=False):
        values[name] = as_array(grad if grad is not None else torch.zeros_like(leaves[name]))
    return Alternative(values, dict(facts or {}))


def variant(reference: Reference, facts: Facts | None = None, **changes: Any) -> Alternative | None:
    """The answers to the same problem with some params changed."""
    result = reference.variant(**changes)
    if result is None:
        return None
    alternative = values_of(reference, result.loss, result.grads)
    return Alternative(alternative.values, dict(facts or {}))


def scaled(
    reference: Reference, factor: float, loss: bool = True, grads: bool = True, **facts: Any
) -> Alternative:
    """The reference times ``factor`` (a wrong constant: log base, delta, a factor 2)."""
    values: dict[str, Array] = {}
    if loss:
        values[LOSS] = reference.loss * factor
    if grads:
        values |= {name: g * factor for name, g in reference.grads.items()}
    return Alternative(values, facts)


def some(*alternatives: Alternative | None) -> list[Alternative]:
    return [a for a in alternatives if a is not None]


def reduce_like(
    reference: Reference, per_element: torch.Tensor, mean_count: Any = None
) -> torch.Tensor:
    """``per_element`` reduced as the problem's reduction asks ('mean' divides by the number of
    elements unless ``mean_count`` is given)."""
    reduction = reference.reduction
    if reduction == "none":
        return per_element
    if reduction == "sum":
        return per_element.sum()
    if reduction == "batchmean":
        return per_element.sum() / per_element.shape[0] if per_element.dim() else per_element
    return per_element.sum() / mean_count if mean_count is not None else per_element.mean()
