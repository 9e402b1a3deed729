"""torchvision's box regression losses (GIoU, DIoU, CIoU), as torchvision.ops defines them.

torchvision's wheel does not run beside the CPU torch this service pins, so each definition is
written out in plain torch, the same computation step for step: boxes are ``(x1, y1, x2, y2)``
with ``0 <= x1 < x2`` and ``0 <= y1 < y2`` expected, in a last dimension of size 4; float16 and
bfloat16 boxes are computed in float32 (torchvision's ``_upcast_non_float``); an empty
``'mean'`` is 0 (torchvision's ``loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()``).
"""

from __future__ import annotations

import math

import torch


def _upcast_non_float(t: torch.Tensor) -> torch.Tensor:
    # torchvision: boxes that are not float32/float64 are computed in float32.
    if t.dtype not in (torch.float32, torch.float64):
        return t.float()
    return t


def _loss_inter_union(
    boxes1: torch.Tensor, boxes2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    # Intersection keypoints
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)
    intsctk = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
    return intsctk, unionk


def _diou_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    intsct, union = _loss_inter_union(boxes1, boxes2)
    iou = intsct / (union + eps)
    # smallest enclosing box
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    # The diagonal distance of the smallest enclosing box squared
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    # centers of boxes
    x_p = (x2 + x1) / 2
    y_p = (y2 + y1) / 2
    x_g = (x1g + x2g) / 2
    y_g = (y1g + y2g) / 2
    # The distance between boxes' centers squared.
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    loss = 1 - iou + (centers_distance_squared / diagonal_distance_squared)
    return loss, iou


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(
        f"Invalid Value for arg 'reduction': '{reduction} \n "
        "Supported reduction modes: 'none', 'mean', 'sum'"
    )


def generalized_box_iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    reduction: str = "none",
    eps: float = 1e-7,
) -> torch.Tensor:
    """Compute the generalized IoU loss 1 - GIoU of predicted boxes against target boxes.

    Args:
        boxes1 (Tensor): Predicted boxes (x1, y1, x2, y2), shape (..., 4).
        boxes2 (Tensor): Target boxes (x1, y1, x2, y2), shape (..., 4).
        reduction (str): 'none' | 'mean' | 'sum'. Default (as in torchvision): 'none'
        eps (float): Small number added to denominators to prevent division by zero.
            Default: 1e-7
    """
    boxes1 = _upcast_non_float(boxes1)
    boxes2 = _upcast_non_float(boxes2)
    intsctk, unionk = _loss_inter_union(boxes1, boxes2)
    iouk = intsctk / (unionk + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    # smallest enclosing box
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    miouk = iouk - ((area_c - unionk) / (area_c + eps))
    loss = 1 - miouk
    return _reduce(loss, reduction)


def distance_box_iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    reduction: str = "none",
    eps: float = 1e-7,
) -> torch.Tensor:
    """Compute the distance IoU loss 1 - IoU + d^2 / c^2 of predicted boxes against targets.

    Args:
        boxes1 (Tensor): Predicted boxes (x1, y1, x2, y2), shape (..., 4).
        boxes2 (Tensor): Target boxes (x1, y1, x2, y2), shape (..., 4).
        reduction (str): 'none' | 'mean' | 'sum'. Default (as in torchvision): 'none'
        eps (float): Small number added to denominators to prevent division by zero.
            Default: 1e-7
    """
    boxes1 = _upcast_non_float(boxes1)
    boxes2 = _upcast_non_float(boxes2)
    loss, _ = _diou_iou_loss(boxes1, boxes2, eps=eps)
    return _reduce(loss, reduction)


def complete_box_iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    reduction: str = "none",
    eps: float = 1e-7,
) -> torch.Tensor:
    """Compute the complete IoU loss (DIoU loss plus an aspect-ratio term) of predicted boxes.

    Args:
        boxes1 (Tensor): Predicted boxes (x1, y1, x2, y2), shape (..., 4).
        boxes2 (Tensor): Target boxes (x1, y1, x2, y2), shape (..., 4).
        reduction (str): 'none' | 'mean' | 'sum'. Default (as in torchvision): 'none'
        eps (float): Small number added to denominators to prevent division by zero.
            Default: 1e-7
    """
    boxes1 = _upcast_non_float(boxes1)
    boxes2 = _upcast_non_float(boxes2)
    diou_loss, iou = _diou_iou_loss(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    # width and height of boxes
    w_pred = x2 - x1
    h_pred = y2 - y1
    w_gt = x2g - x1g
    h_gt = y2g - y1g
    v = (4 / (math.pi**2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    loss = diou_loss + alpha * v
    return _reduce(loss, reduction)
