"""The evaluation set: classification, kl_div, shapes, and mistakes without a code."""

from __future__ import annotations

import math

import numpy as np

from tests.support.student_cases import (
    MSE,
    MSE_NONE,
    _bce_swapped,
    _smoothing_others_only,
    bce_grad_unclamped,
    bce_log_eps,
    bcel_naive,
    big_bcel,
    big_ce,
    ce_naive,
    ce_smoothing_grad_free,
    ce_with_smoothing,
    d,
    kl_log_target_wrong,
    kl_logged_input,
    kl_swapped,
    l1_sign_one,
    l1_with_ties,
    mse_none_2d,
)
from tests.support.student_impls import (
    bce_per,
    bcel_per,
    ce_grad_mean,
    ce_per,
    ce_smoothed_over,
    ctc_batch_first,
    ctc_free_gradient,
    ctc_problem,
    ctc_small,
    focal,
    focal_problem,
    gaussian,
    gaussian_problem,
    multi_margin_problem,
    multi_margin_with_target,
    soft_margin_problem,
    triplet_problem,
    triplet_squared,
)
from tests.support.students import (
    Kind,
    a,
    bce_problem,
    bcel_problem,
    ce_problem,
    grad,
    idx,
    kl_problem,
    log_softmax,
    loss,
    onehot,
    sigmoid,
    softmax,
    square_ce,
)

KINDS: tuple[Kind, ...] = (
    # cross_entropy
    Kind(
        "cross_entropy of softmax",
        "softmax_before_cross_entropy",
        ce_problem,
        lambda p: loss(
            -log_softmax(softmax(a(p, "input")))[np.arange(len(p["target"])), idx(p)].mean()
        ),
    ),
    Kind(
        "nll_loss of probabilities",
        "nll_fed_probabilities",
        ce_problem,
        lambda p: loss(-softmax(a(p, "input"))[np.arange(len(p["target"])), idx(p)].mean()),
    ),
    Kind(
        "label smoothing ignored",
        "label_smoothing_ignored",
        ce_with_smoothing,
        lambda p: loss(ce_smoothing_grad_free(p)),
    ),
    Kind(
        "label smoothing over C - 1",
        "label_smoothing_over_c_minus_1",
        ce_with_smoothing,
        lambda p: loss(ce_smoothed_over(p, 1)),
    ),
    Kind(
        "label smoothing: eps/C to others only",
        None,
        ce_with_smoothing,
        lambda p: loss(_smoothing_others_only(p)),
        tested=False,
    ),
    Kind(
        "cross_entropy gradient: p",
        "gradient_without_target",
        ce_problem,
        lambda p: grad(softmax(a(p, "input")) / len(p["target"])),
    ),
    Kind(
        "cross_entropy gradient wrt p",
        "gradient_wrt_probabilities",
        ce_problem,
        lambda p: grad(
            -onehot(idx(p), a(p, "input").shape[1]) / softmax(a(p, "input")) / len(p["target"])
        ),
    ),
    Kind(
        "bce with logits gradient: sigmoid",
        "gradient_without_target",
        bcel_problem(),
        lambda p: grad(sigmoid(a(p, "input")) / d(p).size),
        tested=False,
    ),
    Kind(
        "cross_entropy: log10",
        "log_base",
        ce_problem,
        lambda p: loss(ce_per(p).mean() / math.log(10)),
    ),
    Kind("bce: log2", "log_base", bce_problem(), lambda p: loss(bce_per(p, np.log2).mean())),
    Kind(
        "bce with logits: log10",
        "log_base",
        bcel_problem(),
        lambda p: loss(bcel_per(p).mean() / math.log(10)),
        tested=False,
    ),
    Kind(
        "soft_margin: log2",
        "log_base",
        soft_margin_problem,
        lambda p: loss(np.log2(1 + np.exp(-a(p, "target") * a(p, "input"))).mean()),
        tested=False,
    ),
    # binary cross-entropy
    Kind(
        "bce: log(p + 1e-7)",
        "bce_log_eps",
        bce_problem(extremes=True),
        lambda p: loss(bce_log_eps(p, 1e-7)),
    ),
    Kind(
        "bce: clip 1e-12",
        "bce_log_eps",
        bce_problem(extremes=True),
        lambda p: loss(bce_log_eps(p, 1e-12, clip=True)),
        tested=False,
    ),
    Kind(
        "bce: unclamped log (none)",
        "bce_log_clamp",
        bce_problem(extremes=True, reduction="none"),
        lambda p: loss(bce_per(p)),
    ),
    Kind(
        "bce: unclamped gradient",
        "bce_log_clamp",
        bce_problem(extremes=True),
        lambda p: grad(bce_grad_unclamped(p)),
    ),
    Kind(
        "bce with logits of sigmoid",
        "sigmoid_before_bce_with_logits",
        bcel_problem(),
        lambda p: loss(bcel_per({**p, "input": sigmoid(a(p, "input")).tolist()}).mean()),
    ),
    Kind(
        "bce with logits: pos_weight ignored",
        "pos_weight_ignored",
        bcel_problem(pos_weight=lambda s, r: [3.0]),
        lambda p: loss(bcel_per(p).mean()),
    ),
    Kind(
        "bce with logits: pos_weight on negatives",
        "pos_weight_on_negative",
        bcel_problem(pos_weight=lambda s, r: [3.0]),
        lambda p: loss(bcel_per(p, 3.0, on_negative=True).mean()),
    ),
    Kind(
        "bce with logits: sigmoid then log",
        "softmax_not_fused",
        big_bcel,
        lambda p: loss(bcel_naive(p)),
    ),
    Kind(
        "cross_entropy: softmax then log (none)",
        "softmax_not_fused",
        big_ce,
        lambda p: loss(ce_naive(p)),
    ),
    # kl_div
    Kind(
        "kl_div: arguments swapped",
        "kl_args_swapped",
        kl_problem(reduction="batchmean"),
        lambda p: loss(kl_swapped(p)),
    ),
    Kind(
        "kl_div: log of the input",
        "kl_input_not_log",
        kl_problem(positive_input=True, reduction="batchmean"),
        lambda p: loss(kl_logged_input(p)),
    ),
    Kind(
        "kl_div: probabilities read as log-probabilities",
        "log_target_confused",
        kl_problem(reduction="batchmean"),
        lambda p: loss(kl_log_target_wrong(p)),
    ),
    # Shapes
    Kind(
        "cross_entropy gradient transposed",
        "transposed",
        ce_problem,
        lambda p: grad(ce_grad_mean(p).T),
    ),
    Kind(
        "cross_entropy square gradient transposed",
        "transposed",
        square_ce,
        lambda p: grad(ce_grad_mean(p).T),
    ),
    Kind("mse none: flattened", "flattened", MSE_NONE, lambda p: loss(mse_none_2d(p).reshape(-1))),
    Kind("mse: loss as [value]", "kept_dim", MSE, lambda p: loss([(d(p) ** 2).mean()])),
    Kind(
        "mse none: a kept dim",
        "kept_dim",
        MSE_NONE,
        lambda p: loss(mse_none_2d(p)[:, None, :]),
        tested=False,
    ),
    Kind("mse: per-element losses", "unreduced", MSE, lambda p: loss(d(p) ** 2)),
    Kind(
        "mse none: the mean", "reduced_when_none", MSE_NONE, lambda p: loss(mse_none_2d(p).mean())
    ),
    Kind("ctc: gradient batch first", "ctc_batch_first", ctc_problem, ctc_batch_first),
    Kind("ctc: gradient of free log_probs", "ctc_log_softmax", ctc_small, ctc_free_gradient),
    Kind("l1: sign(0) = 1", "subgradient_at_kink", l1_with_ties, lambda p: grad(l1_sign_one(p))),
    # Mistakes the catalogue has no code for (misses, counted)
    Kind(
        "multi_margin: target class counted",
        None,
        multi_margin_problem,
        multi_margin_with_target,
        tested=False,
    ),
    Kind("triplet: squared distances", None, triplet_problem, triplet_squared, tested=False),
    Kind(
        "gaussian_nll: var taken as std",
        None,
        gaussian_problem(False),
        lambda p: gaussian(p, False, True),
        tested=False,
    ),
    Kind(
        "sigmoid_focal: alpha on the wrong class",
        None,
        focal_problem,
        lambda p: focal(p, 3.0, True),
        tested=False,
    ),
    Kind(
        "bce: arguments swapped", None, bce_problem(), lambda p: loss(_bce_swapped(p)), tested=False
    ),
)
