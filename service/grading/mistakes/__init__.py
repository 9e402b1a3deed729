"""The catalogue of known mistakes, one module per family of losses.

Each entry is a :class:`~service.grading.mistakes.base.Mistake`: a code, the losses it
concerns, a description, a message and a small example; adding a mistake is adding an entry
to one of the ``MISTAKES`` tuples below.
"""

from __future__ import annotations

from service.grading.mistakes import (
    binary,
    cross_entropy,
    divergence,
    numerics,
    params,
    reductions,
    regression,
    shapes,
)
from service.grading.mistakes.base import Mistake

CATALOGUE: tuple[Mistake, ...] = (
    *reductions.MISTAKES,
    *params.MISTAKES,
    *regression.MISTAKES,
    *cross_entropy.MISTAKES,
    *binary.MISTAKES,
    *divergence.MISTAKES,
    *shapes.MISTAKES,
    *numerics.MISTAKES,
)
BY_CODE = {mistake.code: mistake for mistake in CATALOGUE}
assert len(BY_CODE) == len(CATALOGUE), "two mistakes share a code"
