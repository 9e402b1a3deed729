"""Element-wise comparison of a submitted tensor with the reference, as ``assert_close`` does.

An element matches when ``|submitted - expected| <= atol + rtol * |expected|``, when both are
the same infinity, or when both are NaN. Errors are measured in float64 with numpy: the
tensors here are small and numpy's per-call cost is a fraction of torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.grading.tolerances import Tolerance

Array = npt.NDArray[np.float64]
Index = tuple[int, ...]


@dataclass(frozen=True)
class Comparison:
    """How a submitted tensor of the right shape differs from the reference."""

    elements: int
    mismatched: int
    # Submitted NaN or infinity where the reference is finite (counted in ``mismatched`` too).
    non_finite: int
    first_non_finite_at: Index | None
    max_abs_error: float
    max_abs_error_at: Index
    max_rel_error: float
    max_rel_error_at: Index
    expected_at_worst: float
    submitted_at_worst: float
    mismatch_mask: npt.NDArray[np.bool_]

    @property
    def passed(self) -> bool:
        return self.mismatched == 0

    @property
    def mismatched_share(self) -> float:
        return self.mismatched / self.elements if self.elements else 0.0


def compare(expected: Array, submitted: Array, tolerance: Tolerance) -> Comparison:
    """Compare two float64 arrays of the same shape."""
    if expected.size == 0:
        empty = np.zeros(expected.shape, dtype=np.bool_)
        return Comparison(0, 0, 0, None, 0.0, (), 0.0, (), 0.0, 0.0, empty)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(submitted - expected)
        magnitude = np.abs(expected)
        close = diff <= tolerance.atol + tolerance.rtol * magnitude
        if np.isfinite(diff).all():  # the common case: no NaN or infinity anywhere
            abs_error = diff
        else:
            same = (submitted == expected) | (np.isnan(submitted) & np.isnan(expected))
            close |= same
            abs_error = np.where(same, 0.0, np.where(np.isnan(diff), np.inf, diff))
        rel_error = np.where(abs_error == 0.0, 0.0, abs_error / magnitude)
        rel_error[np.isnan(rel_error)] = np.inf  # an infinite error relative to an infinity
    mismatch = ~close
    mismatched = int(np.count_nonzero(mismatch))
    non_finite_mask = mismatch & ~np.isfinite(submitted) & np.isfinite(expected)
    non_finite = int(np.count_nonzero(non_finite_mask)) if mismatched else 0
    worst = _position(abs_error, int(np.argmax(abs_error)))
    return Comparison(
        elements=int(expected.size),
        mismatched=mismatched,
        non_finite=non_finite,
        first_non_finite_at=(
            _position(non_finite_mask, int(np.argmax(non_finite_mask))) if non_finite else None
        ),
        max_abs_error=float(abs_error[worst]),
        max_abs_error_at=worst,
        max_rel_error=float(rel_error.max()),
        max_rel_error_at=_position(rel_error, int(np.argmax(rel_error))),
        expected_at_worst=float(expected[worst]),
        submitted_at_worst=float(submitted[worst]),
        mismatch_mask=mismatch,
    )


def all_close(expected: Array, submitted: Array, tolerance: Tolerance) -> bool:
    """Whether every element matches (shapes must agree); for hints, which only need yes/no."""
    if expected.shape != submitted.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(submitted - expected)
        close = (diff <= tolerance.atol + tolerance.rtol * np.abs(expected)) | (
            submitted == expected
        )
        close |= np.isnan(submitted) & np.isnan(expected)
    return bool(close.all())


def _position(array: npt.NDArray[np.generic], flat_index: int) -> Index:
    return tuple(int(i) for i in np.unravel_index(flat_index, array.shape))
