"""multi_margin_loss and multilabel_margin_loss, with torch's answer on an empty batch fixed.

On a batch of no samples (input of shape (0, C)) torch's kernels return uninitialised memory
for 'mean' and 'sum'. Every other loss answers NaN for the mean of nothing and 0 for its sum;
these wrappers answer that too (torch's own 'none' answer, which checks the shapes, reduced
with mean or sum) and call torch unchanged for everything else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F


def _empty_batch_fixed(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    @functools.wraps(loss)
    def fixed(input: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        reduction = kwargs.get("reduction", "mean")
        if input.dim() == 2 and input.shape[0] == 0 and reduction in ("mean", "sum"):
            each = loss(input, target, *args, **{**kwargs, "reduction": "none"})
            return each.mean() if reduction == "mean" else each.sum()
        return loss(input, target, *args, **kwargs)

    return fixed


multi_margin_loss = _empty_batch_fixed(F.multi_margin_loss)
multilabel_margin_loss = _empty_batch_fixed(F.multilabel_margin_loss)
