"""One sentence per check that a student can act on."""

from __future__ import annotations

import math

from service.grading.compare import Index
from service.grading.quantity import Quantity


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinity" if value > 0 else "-infinity"
    return f"{value:.6g}"


def position(index: Index) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def shape(dims: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def matched(quantity: Quantity) -> str:
    tolerance = quantity.tolerance.describe()
    if quantity.expected.ndim == 0:
        return f"the {quantity.label} matches the reference ({tolerance})"
    count = quantity.expected.size
    return f"the {quantity.label} matches the reference at all {count} elements ({tolerance})"


def mismatched(quantity: Quantity, reveal: bool) -> str:
    comparison = quantity.comparison
    assert comparison is not None
    label = quantity.label
    if quantity.expected.ndim == 0:
        got = number(comparison.submitted_at_worst)
        if comparison.non_finite:
            return f"the {label} is {got} but the reference is finite"
        if not reveal:
            return (
                f"the {label} is not within {quantity.tolerance.describe()} of the reference: "
                f"got {got}"
            )
        return (
            f"the {label} differs by {number(comparison.max_abs_error)}: expected "
            f"{number(comparison.expected_at_worst)}, got {got}"
        )
    where = position(comparison.max_abs_error_at)
    got = number(comparison.submitted_at_worst)
    head = f"the {label} differs at {comparison.mismatched} of {comparison.elements} elements"
    if comparison.non_finite:
        first = position(comparison.first_non_finite_at or ())
        return (
            f"{head}; {comparison.non_finite} of them are NaN or infinite where the reference "
            f"is finite, the first at {first}"
        )
    if not reveal:
        return f"{head}; the largest error is at {where}, where you have {got}"
    return (
        f"{head}; the largest error {number(comparison.max_abs_error)} is at {where}: "
        f"expected {number(comparison.expected_at_worst)}, got {got}"
    )


def wrong_shape(label: str, expected: tuple[int, ...], submitted: tuple[int, ...]) -> str:
    return f"the {label} has shape {shape(submitted)} but must have shape {shape(expected)}"


def missing(label: str, path: str) -> str:
    return f"the {label} is missing from the submission (expected at {path})"


def unreadable(label: str, reason: str) -> str:
    return f"the {label} could not be read: {reason}"


def no_gradient(name: str, available: list[str]) -> str:
    given = ", ".join(available) if available else "none"
    return (
        f"there is no gradient with respect to {name!r} in this problem; the differentiable "
        f"inputs given are: {given}"
    )


def unknown_field(path: str) -> str:
    return f"{path!r} is not part of a submission; submit 'loss' and 'grad' (by input name)"
