"""Grade one submission against a reference: one check per quantity, a verdict and a score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInput, Loc
from service.grading import messages
from service.grading.compare import Array, Comparison, compare
from service.grading.hints import Hint, hints_for, shape_hints
from service.grading.quantity import LOSS, Quantity
from service.grading.reference import Reference, as_array
from service.grading.tolerances import Tolerance
from service.tensors.codec import ElementBudget, decode_tensor
from service.tensors.codec import encode_scalar as wire_number

SUBMISSION_FIELDS = ("loss", "grad")


@dataclass(frozen=True)
class Check:
    quantity: str  # "loss" or "grad.<input>"
    passed: bool
    # match, mismatch, non_finite, shape, missing, unreadable, no_gradient, unknown_field
    reason: str
    message: str
    tolerance: Tolerance
    hints: tuple[Hint, ...] = ()
    expected: Array | None = None
    submitted: Array | None = None
    comparison: Comparison | None = None

    def as_dict(self, reveal: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "quantity": self.quantity,
            "passed": self.passed,
            "reason": self.reason,
            "message": self.message,
            "hints": [hint.as_dict() for hint in self.hints],
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
        }
        expected, submitted, comparison = self.expected, self.submitted, self.comparison
        out["shape"] = {
            "expected": None if expected is None else list(expected.shape),
            "submitted": None if submitted is None else list(submitted.shape),
        }
        if comparison is None:
            return out
        if expected is not None and expected.ndim == 0:
            if reveal:
                out["expected"] = wire_number(comparison.expected_at_worst)
            out["submitted"] = wire_number(comparison.submitted_at_worst)
            if reveal:
                out["abs_error"] = wire_number(comparison.max_abs_error)
                out["rel_error"] = wire_number(comparison.max_rel_error)
            return out
        out |= {
            "elements": comparison.elements,
            "mismatched": comparison.mismatched,
            "mismatched_share": comparison.mismatched_share,
            "non_finite": comparison.non_finite,
        }
        if reveal:
            out["max_abs_error"] = wire_number(comparison.max_abs_error)
            out["max_rel_error"] = wire_number(comparison.max_rel_error)
        out["max_abs_error_at"] = list(comparison.max_abs_error_at)
        out["max_rel_error_at"] = list(comparison.max_rel_error_at)
        worst: dict[str, Any] = {"at": list(comparison.max_abs_error_at)}
        if reveal:
            worst["expected"] = wire_number(comparison.expected_at_worst)
        worst["submitted"] = wire_number(comparison.submitted_at_worst)
        out["worst"] = worst
        return out


@dataclass(frozen=True)
class Grade:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def score(self) -> float:
        if not self.checks:
            return 0.0
        return sum(check.passed for check in self.checks) / len(self.checks)

    def as_dict(self, reveal: bool) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "score": self.score,
            "checks": [check.as_dict(reveal) for check in self.checks],
        }


@dataclass
class _Submitted:
    values: dict[str, Array | str]  # by "loss" or input name: the array, or why unreadable
    unknown: list[str]


def grade(
    reference: Reference,
    submission: Any,
    tolerance: Tolerance,
    loc: Loc,
    budget: ElementBudget,
    reveal: bool,
) -> Grade:
    """Every check of one submission (``loc`` names it in messages about unreadable parts)."""
    if not isinstance(submission, dict):
        message = "the submission must be an object with 'loss' and/or 'grad'"
        return Grade((Check("submission", False, "unreadable", message, tolerance),))
    submitted = _read_submission(reference, submission, loc, budget)
    checks: list[Check] = [
        Check(path, False, "unknown_field", messages.unknown_field(path), tolerance)
        for path in submitted.unknown
    ]
    grads_given = [name for name in submitted.values if name != LOSS]
    if LOSS in submitted.values or not (grads_given or reference.asked_grads):
        checks.append(_check(reference, LOSS, submitted.values.get(LOSS), tolerance, reveal))
    for name in dict.fromkeys([*reference.asked_grads, *grads_given]):
        if name not in reference.grads:
            message = messages.no_gradient(name, list(reference.grads))
            checks.append(Check(f"grad.{name}", False, "no_gradient", message, tolerance))
            continue
        checks.append(_check(reference, name, submitted.values.get(name), tolerance, reveal))
    return Grade(tuple(checks))


def _check(
    reference: Reference, name: str, value: Array | str | None, tolerance: Tolerance, reveal: bool
) -> Check:
    expected = reference.loss if name == LOSS else reference.grads[name]
    path = LOSS if name == LOSS else f"grad.{name}"
    label = "loss" if name == LOSS else f"gradient with respect to {name}"
    if value is None:
        return Check(
            path, False, "missing", messages.missing(label, path), tolerance, expected=expected
        )
    if isinstance(value, str):
        return Check(
            path,
            False,
            "unreadable",
            messages.unreadable(label, value),
            tolerance,
            expected=expected,
        )
    if value.shape != expected.shape:
        hints = shape_hints(reference, name, expected, value, tolerance)
        message = messages.wrong_shape(label, expected.shape, value.shape)
        return Check(path, False, "shape", message, tolerance, tuple(hints), expected, value)
    comparison = compare(expected, value, tolerance)
    quantity = Quantity(name, expected, value, tolerance, comparison)
    if comparison.passed:
        return Check(
            path,
            True,
            "match",
            messages.matched(quantity),
            tolerance,
            (),
            expected,
            value,
            comparison,
        )
    reason = "non_finite" if comparison.non_finite else "mismatch"
    return Check(
        path,
        False,
        reason,
        messages.mismatched(quantity, reveal),
        tolerance,
        tuple(hints_for(reference, quantity)),
        expected,
        value,
        comparison,
    )


def _read_submission(
    reference: Reference, submission: dict[str, Any], loc: Loc, budget: ElementBudget
) -> _Submitted:
    values: dict[str, Array | str] = {}
    unknown = [key for key in submission if key not in SUBMISSION_FIELDS]
    if "loss" in submission:
        values[LOSS] = _read_tensor(reference, submission["loss"], (*loc, "loss"), budget)
    grads = submission.get("grad")
    if isinstance(grads, dict):
        for name, value in grads.items():
            values[str(name)] = _read_tensor(reference, value, (*loc, "grad", name), budget)
    elif grads is not None:
        unknown.append("grad (must be an object of tensors by input name)")
    return _Submitted(values, unknown)


def _read_tensor(reference: Reference, value: Any, loc: Loc, budget: ElementBudget) -> Array | str:
    try:
        tensor = decode_tensor(value, loc, reference.dtype, budget)
    except InvalidInput as exc:
        return exc.detail
    return as_array(tensor)
