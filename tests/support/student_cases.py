"""More problems and wrong implementations of the evaluation set."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.support.student_impls import (
    ce_per,
)
from tests.support.students import (
    Problem,
    a,
    bcel_problem,
    ce_problem,
    idx,
    log_softmax,
    onehot,
    pair_problem,
    positive_weight,
    prm,
    sigmoid,
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
