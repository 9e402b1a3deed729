"""The tolerances a submission is compared with: ``torch.testing.assert_close``'s by default."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.testing._comparison import default_tolerances


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def describe(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"


def tolerance_for(dtype: torch.dtype, rtol: float | None, atol: float | None) -> Tolerance:
    """``assert_close``'s defaults for ``dtype``, each replaced by the one the request gives."""
    default_rtol, default_atol = default_tolerances(dtype)
    return Tolerance(
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
    )
