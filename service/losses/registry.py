"""The catalogue as built from the installed torch: every loss, looked up by name or alias."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F

from service.errors import NotFound
from service.losses.boxes import (
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)
from service.losses.catalogue import LossSpec, derive_spec
from service.losses.definitions import GENERIC, OVERRIDES
from service.losses.focal import sigmoid_focal_loss

# Functions of torch.nn.functional that are losses without "_loss" in their name: every
# "*cross_entropy*" (cross_entropy, binary_cross_entropy[_with_logits], linear_cross_entropy)
# and these.
_LOSSES_BY_OTHER_NAME = ("kl_div",)
# The torchvision.ops losses, written out in plain torch.
ECOSYSTEM_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "sigmoid_focal_loss": sigmoid_focal_loss,
    "generalized_box_iou_loss": generalized_box_iou_loss,
    "distance_box_iou_loss": distance_box_iou_loss,
    "complete_box_iou_loss": complete_box_iou_loss,
}


def _is_loss_name(name: str) -> bool:
    return name.endswith("_loss") or "cross_entropy" in name or name in _LOSSES_BY_OTHER_NAME


def functional_losses() -> dict[str, Callable[..., torch.Tensor]]:
    """Every loss function the installed torch.nn.functional offers."""
    found: dict[str, Callable[..., torch.Tensor]] = {}
    for name in dir(F):
        if name.startswith("_") or not _is_loss_name(name):
            continue
        fn = getattr(F, name)
        if inspect.isfunction(fn):
            found[name] = fn
    return found


@cache
def catalogue() -> dict[str, LossSpec]:
    functions = functional_losses() | ECOSYSTEM_LOSSES
    return {
        name: derive_spec(name, fn, OVERRIDES.get(name, GENERIC))
        for name, fn in sorted(functions.items())
    }


@cache
def _names() -> dict[str, str]:
    names = {}
    for spec in catalogue().values():
        names[spec.name] = spec.name
        names[spec.name.lower()] = spec.name
        for alias in spec.aliases:
            names[alias] = spec.name
            names[alias.lower()] = spec.name
    return names


def resolve(name: str) -> LossSpec:
    """The spec of the loss called ``name`` (or one of its aliases), or a 404 listing them."""
    canonical = _names().get(name) or _names().get(name.lower())
    if canonical is None:
        known = sorted(catalogue())
        raise NotFound(
            f"unknown loss {name!r}; known losses: {', '.join(known)} "
            "(torch.nn class names such as MSELoss are accepted too)",
            extra={"known_losses": known},
        )
    return catalogue()[canonical]
