"""kl_div: which argument is which, and what is already a logarithm."""

from __future__ import annotations

import torch

from service.grading.mistakes.base import (
    Alternative,
    Example,
    Facts,
    Mistake,
    recomputed,
    reduce_like,
    some,
    variant,
)
from service.grading.quantity import Quantity
from service.grading.reference import Reference

Tensors = dict[str, torch.Tensor]

KL = {
    "loss": "kl_div",
    "input": [[-1.2, -0.4, -2.3], [-0.9, -1.6, -0.9]],
    "target": [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]],
    "params": {"reduction": "batchmean"},
}


def _log_target(reference: Reference) -> bool:
    return bool(reference.param("log_target"))


def _swapped(reference: Reference) -> list[Alternative]:
    log_target = _log_target(reference)

    def formula(t: Tensors) -> torch.Tensor:
        x, y = t["input"], t["target"]
        log_y = y if log_target else torch.log(y)
        return reduce_like(reference, torch.exp(x) * (x - log_y))

    return some(recomputed(reference, formula))


def _swapped_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} is KL(input || target), the arguments swapped: "
        "kl_div(input, target) takes the model's log-probabilities as input and computes "
        "sum target (log target - input), the divergence of the target from the model"
    )


def _input_positive(reference: Reference) -> bool:
    return bool((reference.tensors["input"] > 0).all())


def _input_logged(reference: Reference) -> list[Alternative]:
    log_target = _log_target(reference)

    def formula(t: Tensors) -> torch.Tensor:
        x, y = t["input"], t["target"]
        if log_target:
            per = torch.exp(y) * (y - torch.log(x))
        else:
            per = torch.xlogy(y, y) - y * torch.log(x)
        return reduce_like(reference, per)

    return some(recomputed(reference, formula))


def _input_logged_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    return (
        f"your {quantity.label} takes the log of input: kl_div expects input to be "
        "log-probabilities already (log_softmax output), not probabilities"
    )


def _other_log_target(reference: Reference) -> list[Alternative]:
    return some(variant(reference, log_target=not _log_target(reference)))


def _log_target_message(reference: Reference, quantity: Quantity, facts: Facts) -> str:
    if _log_target(reference):
        return (
            f"your {quantity.label} treats target as probabilities, but log_target=True: "
            "target holds log-probabilities, so the loss is exp(target) (target - input)"
        )
    return (
        f"your {quantity.label} treats target as log-probabilities, but log_target=False: "
        "target holds probabilities, so the loss is target (log(target) - input)"
    )


MISTAKES = (
    Mistake(
        "kl_args_swapped",
        "kl_div's arguments swapped: KL(input || target) instead of KL(target || input).",
        _swapped_message,
        Example(KL),
        losses=("kl_div",),
        recompute=_swapped,
    ),
    Mistake(
        "kl_input_not_log",
        "The log taken of kl_div's input, which is already a log-probability.",
        _input_logged_message,
        Example({**KL, "input": [[0.3, 0.6, 0.1], [0.4, 0.2, 0.4]]}),
        losses=("kl_div",),
        applies=_input_positive,
        recompute=_input_logged,
    ),
    Mistake(
        "log_target_confused",
        "kl_div's target read as probabilities where log_target=True says log-probabilities, "
        "or the other way round.",
        _log_target_message,
        Example(KL),
        losses=("kl_div",),
        recompute=_other_log_target,
    ),
)
