"""Work that grows faster than a loss's inputs, counted before torch runs (the cost estimate).

Each function returns (elements of work, the input that drives it, how it was counted); the
compute layer's cost estimate adds it to the element-wise pass over the inputs.
"""

from __future__ import annotations

import torch

from service.losses.catalogue import Params, Tensors

# A cell of CTC's alignment lattice is a log-sum-exp of up to three neighbours (tens of
# nanoseconds), and the lattice of T x N x (2S + 1) cells is allocated whole, once forward and
# once more backward for the gradient.
CTC_CELL_WORK = 2


def ctc_lattice(tensors: Tensors, params: Params) -> tuple[int, str, str]:
    """ctc_loss: the T x N x (2 S + 1) lattice of alignments, S the longest target."""
    log_probs, targets = tensors["log_probs"], tensors["targets"]
    steps = int(log_probs.shape[0]) if log_probs.dim() else 1
    batch = int(log_probs.shape[1]) if log_probs.dim() == 3 else 1
    if targets.dim() == 2:
        longest = int(targets.shape[1])
    else:
        lengths = tensors.get("target_lengths")
        longest = int(targets.numel())
        if lengths is not None and lengths.numel() and not lengths.is_floating_point():
            longest = min(longest, max(0, int(lengths.max())))
    cells = steps * batch * (2 * longest + 1)
    return (
        cells * CTC_CELL_WORK,
        "targets",
        f"a lattice of {steps} x {batch} x (2 x {longest} + 1) = {cells} alignment cells",
    )


def multilabel_margin_pairs(tensors: Tensors, params: Params) -> tuple[int, str, str]:
    """multilabel_margin_loss: every target class against every class of its row."""
    input_, target = tensors["input"], tensors["target"]
    classes = int(input_.shape[-1]) if input_.dim() else 1
    if target.numel() == 0 or target.is_floating_point():
        return 0, "target", "no target classes"
    # Targets count up to the first -1 of each row.
    given = int((target >= 0).to(torch.int64).cumprod(dim=-1).sum())
    pairs = given * classes
    return pairs, "target", f"{given} target classes x {classes} classes = {pairs} pairs"


# A matrix product's multiply-add runs many times faster than an element-wise step (blocked,
# vectorised, cache-resident): this many of them count as one element of work.
MATMUL_STEPS_PER_ELEMENT = 32


def linear_logits(tensors: Tensors, params: Params) -> tuple[int, str, str]:
    """A linear layer before the loss (linear_cross_entropy): rows x classes logits, each a
    dot product over the hidden size, made whole before the loss reduces them."""
    input_, weight = tensors["input"], tensors["linear_weight"]
    hidden = int(input_.shape[-1]) if input_.dim() else 1
    rows = input_.numel() // max(1, hidden)
    outputs = weight.numel() // max(1, int(weight.shape[-1]) if weight.dim() else 1)
    logits = rows * outputs
    work = logits * 4 + logits * hidden // MATMUL_STEPS_PER_ELEMENT
    return (
        work,
        "linear_weight",
        f"{rows} x {outputs} = {logits} logits, each a dot product of {hidden} elements",
    )
