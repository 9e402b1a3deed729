"""Sigmoid focal loss (Lin et al., 2017), as torchvision.ops.sigmoid_focal_loss defines it.

torchvision's wheel does not run beside the CPU torch this service pins, so the definition is
written out in plain torch, line for line the same computation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sigmoid_focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Compute the focal loss of logits against binary targets, down-weighting easy examples.

    Args:
        input (Tensor): Logits, any shape.
        target (Tensor): Binary targets (0 or 1, or soft labels in [0, 1]), same shape as input.
        alpha (float): Weight of the positive class in [0, 1]; a negative value turns
            weighting off. Default: 0.25
        gamma (float): Exponent of the modulating factor (1 - p_t) that down-weights easy
            examples. Default: 2
        reduction (str): 'none' | 'mean' | 'sum'. Default (as in torchvision): 'none'
    """
    p = torch.sigmoid(input)
    ce_loss = F.binary_cross_entropy_with_logits(input, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * target + (1 - alpha) * (1 - target)
        loss = alpha_t * loss
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"Invalid value for arg 'reduction': '{reduction}'")
