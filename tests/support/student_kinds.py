"""The evaluation set: every kind of mistake, with the hint it should get."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tests.support.students import (
    Kind,
    Problem,
    a,
    bce_per,
    bce_problem,
    bcel_per,
    bcel_problem,
    ce_grad_mean,
    ce_ignore_over_n,
    ce_ignored_problem,
    ce_per,
    ce_problem,
    ce_smoothed_over,
    ce_weighted,
    ctc_batch_first,
    ctc_free_gradient,
    ctc_problem,
    ctc_small,
    focal,
    focal_problem,
    gaussian,
    gaussian_problem,
    grad,
    hinge,
    hinge_problem,
    huber,
    idx,
    kl_problem,
    kl_terms,
    log_sigmoid,
    log_softmax,
    loss,
    multi_margin_problem,
    multi_margin_with_target,
    onehot,
    pair_problem,
    poisson_problem,
    positive_weight,
    prm,
    ranking_problem,
    sigmoid,
    smooth_l1,
    soft_margin_problem,
    softmax,
    square_ce,
    triplet_margin_default,
    triplet_problem,
    triplet_squared,
)

MSE = pair_problem("mse_loss")
MSE_SUM = pair_problem("mse_loss", reduction="sum")
MSE_NONE = pair_problem("mse_loss", shape2d=True, reduction="none")
MSE_W = pair_problem("mse_loss", weight=positive_weight)
L1 = pair_problem("l1_loss")
L1_SUM = pair_problem("l1_loss", reduction="sum")
L1_W = pair_problem("l1_loss", weight=positive_weight)
HUBER = pair_problem("huber_loss", delta=2.0)
SMOOTH = pair_problem("smooth_l1_loss", beta=0.5)
W3 = [0.5, 2.0, 1.0]


def ce_weight_problem(rng: np.random.Generator, size: int) -> Problem:
    problem = ce_problem(rng, size)
    classes = len(problem["input"][0])
    problem["params"] = {"weight": [0.5 + 0.75 * i for i in range(classes)]}
    return problem


def d(p: Problem) -> Any:
    return a(p, "input") - a(p, "target")


def mse_w_over_n(p: Problem) -> Any:
    w = np.asarray(p["params"]["weight"])
    return (w * d(p) ** 2).sum() / d(p).size


def l1_w_over_n(p: Problem) -> Any:
    w = np.asarray(p["params"]["weight"])
    return (w * np.abs(d(p))).sum() / d(p).size


def ce_smoothing_grad_free(p: Problem) -> Any:
    return ce_per(p).mean()


def bce_log_eps(p: Problem, eps: float, clip: bool = False) -> Any:
    x, y = a(p, "input"), a(p, "target")
    if clip:
        c = np.clip(x, eps, 1 - eps)
        return (-(y * np.log(c) + (1 - y) * np.log(1 - c))).mean()
    return (-(y * np.log(x + eps) + (1 - y) * np.log(1 - x + eps))).mean()


def bce_grad_unclamped(p: Problem) -> Any:
    x, y = a(p, "input"), a(p, "target")
    with np.errstate(divide="ignore", invalid="ignore"):
        return (-(y / x) + (1 - y) / (1 - x)) / x.size


def bce_grad_sum_unreduced(p: Problem) -> Any:
    x, y = a(p, "input"), a(p, "target")
    return (x - y) / (x * (1 - x)) / x.size


def bcel_naive(p: Problem) -> Any:
    x, y = a(p, "input"), a(p, "target")
    s = sigmoid(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(y * np.log(s) + (1 - y) * np.log(1 - s))


def big_bcel(rng: np.random.Generator, size: int) -> Problem:
    problem = bcel_problem()(rng, size)
    x = np.asarray(problem["input"])
    x.flat[0], x.flat[1] = -120.0, 150.0  # target 1 and 0: the naive logs overflow
    problem["input"] = x.tolist()
    problem["params"] = {"reduction": "none"}
    return problem


def big_ce(rng: np.random.Generator, size: int) -> Problem:
    problem = ce_problem(rng, size, reduction="none")
    problem["input"][1][0] = 800.0  # exp overflows even in float64
    return problem


def ce_naive(p: Problem) -> Any:
    x, y = a(p, "input"), idx(p)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(x)
        return -np.log((e / e.sum(1, keepdims=True))[np.arange(len(y)), y])


def kl_reduce(p: Problem, per: np.ndarray, how: str) -> Any:
    if how == "batchmean":
        return per.sum() / per.shape[0]
    return per.sum() if how == "sum" else per.mean()


def kl_swapped(p: Problem) -> Any:
    x, t = a(p, "input"), a(p, "target")
    log_t = t if prm(p, "log_target") else np.log(t)
    return kl_reduce(p, np.exp(x) * (x - log_t), prm(p, "reduction", "mean"))


def kl_logged_input(p: Problem) -> Any:
    x, t = a(p, "input"), a(p, "target")
    return kl_reduce(p, t * (np.log(t) - np.log(x)), prm(p, "reduction", "mean"))


def kl_log_target_wrong(p: Problem) -> Any:
    x, t = a(p, "input"), a(p, "target")
    return kl_reduce(p, np.exp(t) * (t - x), prm(p, "reduction", "mean"))  # t read as logs


def l1_sign_one(p: Problem) -> Any:
    x, y = a(p, "input"), a(p, "target")
    return np.where(x >= y, 1.0, -1.0) / x.size


def l1_with_ties(rng: np.random.Generator, size: int) -> Problem:
    problem = L1(rng, size)
    x, y = np.asarray(problem["input"]), np.asarray(problem["target"])
    y.flat[0], y.flat[2] = x.flat[0], x.flat[2]
    problem["target"] = y.tolist()
    return problem


def poisson(p: Problem, log_input: bool) -> Any:
    x, y = a(p, "input"), a(p, "target")
    per = np.exp(x) - y * x if log_input else x - y * np.log(x + 1e-8)
    return per.mean()


def ce_kdim_problem(rng: np.random.Generator, size: int) -> Problem:
    n, c, k = [(2, 3, 2), (3, 4, 3)][size]
    return {
        "loss": "cross_entropy",
        "input": rng.normal(0, 2, (n, c, k)).astype(np.float32).tolist(),
        "target": rng.integers(0, c, (n, k)).tolist(),
    }


def ce_kdim_sum(p: Problem) -> Any:
    x, y = a(p, "input"), idx(p)
    lp = log_softmax(x, 1)
    return -np.take_along_axis(lp, y[:, None, :], 1).sum()


def nll_problem(rng: np.random.Generator, size: int) -> Problem:
    problem = ce_problem(rng, size)
    problem["loss"] = "nll_loss"
    problem["input"] = log_softmax(np.asarray(problem["input"])).astype(np.float32).tolist()
    return problem


def ce_with_smoothing(rng: np.random.Generator, size: int) -> Problem:
    return ce_problem(rng, size, label_smoothing=0.2)


def mse_none_2d(p: Problem) -> Any:
    return d(p) ** 2


KINDS: tuple[Kind, ...] = (
    # The reduction
    Kind("mse: sum for mean", "sum_instead_of_mean", MSE, lambda p: loss((d(p) ** 2).sum())),
    Kind(
        "cross_entropy: sum for mean",
        "sum_instead_of_mean",
        ce_problem,
        lambda p: loss(ce_per(p).sum()),
    ),
    Kind(
        "cross_entropy (N, C, d): sum for mean",
        "sum_instead_of_mean",
        ce_kdim_problem,
        lambda p: loss(ce_kdim_sum(p)),
        tested=False,
    ),
    Kind(
        "nll_loss: sum for mean",
        "sum_instead_of_mean",
        nll_problem,
        lambda p: loss(-np.asarray(p["input"])[np.arange(len(p["target"])), idx(p)].sum()),
        tested=False,
    ),
    Kind("l1: mean for sum", "mean_instead_of_sum", L1_SUM, lambda p: loss(np.abs(d(p)).mean())),
    Kind("mse: gradient of the sum", "gradient_of_sum", MSE, lambda p: grad(2 * d(p))),
    Kind(
        "cross_entropy: gradient of the sum",
        "gradient_of_sum",
        ce_problem,
        lambda p: grad(ce_grad_mean(p) * len(p["target"])),
    ),
    Kind(
        "mse: gradient of the mean for sum",
        "gradient_of_mean",
        MSE_SUM,
        lambda p: grad(2 * d(p) / d(p).size),
    ),
    Kind(
        "kl_div: mean for batchmean",
        "mean_instead_of_batchmean",
        kl_problem(reduction="batchmean"),
        lambda p: loss(kl_terms(p).mean()),
    ),
    Kind(
        "kl_div: batchmean for mean",
        "batchmean_instead_of_mean",
        kl_problem(),
        lambda p: loss(kl_terms(p).sum() / len(p["input"])),
    ),
    Kind(
        "kl_div: sum for batchmean",
        "sum_instead_of_mean",
        kl_problem(reduction="batchmean"),
        lambda p: loss(kl_terms(p).sum()),
        tested=False,
    ),
    Kind(
        "cross_entropy with weight: over N",
        "mean_over_samples",
        ce_weight_problem,
        lambda p: loss(ce_weighted(p, True)),
    ),
    Kind(
        "cross_entropy with ignore_index: over N",
        "mean_over_samples",
        ce_ignored_problem,
        lambda p: loss(ce_ignore_over_n(p)),
    ),
    Kind("mse with weight: over N", "mean_over_samples", MSE_W, lambda p: loss(mse_w_over_n(p))),
    Kind(
        "l1 with weight: over N",
        "mean_over_samples",
        L1_W,
        lambda p: loss(l1_w_over_n(p)),
        tested=False,
    ),
    # Sign, weights, params
    Kind(
        "cross_entropy: log-likelihood",
        "sign_flipped",
        ce_problem,
        lambda p: loss(-ce_per(p).mean()),
    ),
    Kind("mse: gradient (y - x)", "sign_flipped", MSE, lambda p: grad(-2 * d(p) / d(p).size)),
    Kind(
        "bce with logits: gradient y - p",
        "sign_flipped",
        bcel_problem(),
        lambda p: grad((a(p, "target") - sigmoid(a(p, "input"))) / d(p).size),
        tested=False,
    ),
    Kind(
        "cross_entropy: weight ignored",
        "weight_ignored",
        ce_weight_problem,
        lambda p: loss(ce_per(p).mean()),
    ),
    Kind(
        "bce: weight ignored",
        "weight_ignored",
        bce_problem(weight=positive_weight),
        lambda p: loss(bce_per(p).mean()),
        tested=False,
    ),
    Kind("mse: weight ignored", "weight_ignored", MSE_W, lambda p: loss((d(p) ** 2).mean())),
    Kind(
        "cross_entropy: ignore_index=0 forgotten",
        "ignore_index_forgotten",
        lambda r, s: ce_problem(r, s, ignore_index=0),
        lambda p: loss(ce_per(p).mean()),
    ),
    Kind(
        "hinge_embedding: margin left at 1", "param_ignored", hinge_problem, lambda p: hinge(p, 1.0)
    ),
    Kind(
        "margin_ranking: margin left at 0",
        "param_ignored",
        ranking_problem,
        lambda p: loss(np.maximum(0, -a(p, "target") * (a(p, "input1") - a(p, "input2"))).mean()),
        tested=False,
    ),
    Kind(
        "triplet: margin left at 1",
        "param_ignored",
        lambda r, s: triplet_problem(r, s, margin=2.0),
        triplet_margin_default,
        tested=False,
    ),
    Kind(
        "sigmoid_focal: gamma left at 2",
        "param_ignored",
        focal_problem,
        lambda p: focal(p, 2.0),
        tested=False,
    ),
    Kind(
        "poisson_nll: log_input taken as True",
        "flag_flipped",
        poisson_problem,
        lambda p: loss(poisson(p, True)),
    ),
    Kind(
        "gaussian_nll: full ignored",
        "flag_flipped",
        gaussian_problem(True),
        lambda p: gaussian(p, False),
        tested=False,
    ),
    # Regression
    Kind("mse: RMSE", "rmse_instead_of_mse", MSE, lambda p: loss(np.sqrt((d(p) ** 2).mean()))),
    Kind("mse: absolute error", "absolute_error_in_mse", MSE, lambda p: loss(np.abs(d(p)).mean())),
    Kind(
        "mse: gradient without the 2",
        "mse_gradient_missing_2",
        MSE,
        lambda p: grad(d(p) / d(p).size),
    ),
    Kind("l1: squared error", "squared_error_in_mae", L1, lambda p: loss((d(p) ** 2).mean())),
    Kind(
        "huber: smooth_l1 formula",
        "huber_as_smooth_l1",
        HUBER,
        lambda p: loss(smooth_l1(d(p), 2.0).mean()),
    ),
    Kind(
        "smooth_l1: huber formula",
        "smooth_l1_as_huber",
        SMOOTH,
        lambda p: loss(huber(d(p), 0.5).mean()),
    ),
    Kind(
        "smooth_l1: beta inverted",
        "beta_confused",
        SMOOTH,
        lambda p: loss(smooth_l1(d(p), 2.0).mean()),
    ),
    Kind(
        "smooth_l1: no division by beta",
        "beta_confused",
        SMOOTH,
        lambda p: loss(np.where(np.abs(d(p)) < 0.5, 0.5 * d(p) ** 2, np.abs(d(p)) - 0.25).mean()),
        tested=False,
    ),
    Kind(
        "huber: delta left at 1",
        "param_ignored",
        HUBER,
        lambda p: loss(huber(d(p), 1.0).mean()),
        tested=False,
    ),
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


def _smoothing_others_only(p: Problem) -> Any:
    x, y = a(p, "input"), idx(p)
    eps, c = prm(p, "label_smoothing"), x.shape[1]
    oh = onehot(y, c)
    q = (1 - eps) * oh + eps / c * (1 - oh)
    return (-(q * log_softmax(x)).sum(1)).mean()


def _bce_swapped(p: Problem) -> Any:
    x, y = a(p, "input"), a(p, "target")
    with np.errstate(divide="ignore"):
        ly = np.maximum(np.log(y), -100)
        l1y = np.maximum(np.log(1 - y), -100)
    return (-(x * ly + (1 - x) * l1y)).mean()


__all__ = ["KINDS", "log_sigmoid"]
