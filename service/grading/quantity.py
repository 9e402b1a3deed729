"""One submitted quantity beside its reference value: what checks and hints look at."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.compute.engine import LossResult
from service.grading.compare import Array, Comparison, all_close
from service.grading.reference import as_array
from service.grading.tolerances import Tolerance

LOSS = "loss"


@dataclass(frozen=True)
class Quantity:
    """``name`` is ``"loss"`` or the input a gradient is taken with respect to."""

    name: str
    expected: Array
    submitted: Array
    tolerance: Tolerance
    comparison: Comparison | None  # None when the shapes differ

    @property
    def is_loss(self) -> bool:
        return self.name == LOSS

    @property
    def label(self) -> str:
        return "loss" if self.is_loss else f"gradient with respect to {self.name}"

    @property
    def path(self) -> str:
        """Where it sits in a submission: ``loss`` or ``grad.<input>``."""
        return LOSS if self.is_loss else f"grad.{self.name}"

    def matches(self, alternative: Array | None) -> bool:
        return alternative is not None and all_close(alternative, self.submitted, self.tolerance)

    def mismatches_within(self, mask: Array | np.ndarray | None) -> bool:
        """Every mismatched element lies where ``mask`` is true (and something mismatches)."""
        comparison = self.comparison
        if mask is None or comparison is None or comparison.mismatched == 0:
            return False
        if mask.shape != comparison.mismatch_mask.shape:
            return False
        return not bool((comparison.mismatch_mask & ~mask.astype(bool)).any())

    def submitted_non_finite(self) -> bool:
        """Some element is NaN or infinite in the submission but finite in the reference."""
        return self.comparison is not None and self.comparison.non_finite > 0


def value_of(result: LossResult | None, name: str) -> Array | None:
    """The loss or a gradient out of ``result``."""
    if result is None:
        return None
    if name == LOSS:
        return as_array(result.loss)
    grad = result.grads.get(name)
    return None if grad is None else as_array(grad)
