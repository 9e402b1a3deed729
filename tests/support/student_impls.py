"""Wrong implementations as students write them (numpy), and their problems."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tests.support.students import (
    Problem,
    Submission,
    a,
    ce_problem,
    f32,
    grad,
    idx,
    log_sigmoid,
    log_softmax,
    loss,
    onehot,
    prm,
    sigmoid,
    softmax,
)

# ---------------------------------------------------------------------------------------------
# Wrong implementations


def ce_per(p: Problem) -> Any:
    x, y = a(p, "input"), idx(p)
    return -log_softmax(x)[np.arange(len(y)), y]


def ce_grad_mean(p: Problem) -> Any:
    x, y = a(p, "input"), idx(p)
    return (softmax(x) - onehot(y, x.shape[1])) / len(y)


def smooth_l1(d: np.ndarray, beta: float) -> Any:
    ad = np.abs(d)
    return np.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)


def huber(d: np.ndarray, delta: float) -> Any:
    ad = np.abs(d)
    return np.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta))


def bce_per(p: Problem, log: Callable[[np.ndarray], np.ndarray] = np.log) -> Any:
    x, y = a(p, "input"), a(p, "target")
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(y * log(x) + (1 - y) * log(1 - x))


def bcel_per(p: Problem, pos_weight: Any = 1.0, on_negative: bool = False) -> Any:
    x, y = a(p, "input"), a(p, "target")
    if on_negative:
        return -(y * log_sigmoid(x) + pos_weight * (1 - y) * log_sigmoid(-x))
    return -(pos_weight * y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x))


def kl_terms(p: Problem) -> Any:
    x, t = a(p, "input"), a(p, "target")
    if prm(p, "log_target"):
        return np.exp(t) * (t - x)
    return np.where(t > 0, t * (np.log(np.where(t > 0, t, 1)) - x), 0.0)


def ce_weighted(p: Problem, divide_by_n: bool) -> Any:
    x, y, w = a(p, "input"), idx(p), np.asarray(prm(p, "weight"))
    per = -w[y] * log_softmax(x)[np.arange(len(y)), y]
    return per.sum() / (len(y) if divide_by_n else w[y].sum())


def ce_ignore_over_n(p: Problem) -> Any:
    x, y = a(p, "input"), idx(p)
    keep = y != -100
    per = -log_softmax(x)[np.arange(len(y))[keep], y[keep]]
    return per.sum() / len(y)


def ce_ignored_problem(rng: np.random.Generator, size: int) -> Problem:
    problem = ce_problem(rng, size)
    problem["target"][2] = -100
    return problem


def ce_smoothed_over(p: Problem, others: int) -> Any:
    x, y = a(p, "input"), idx(p)
    eps, c = prm(p, "label_smoothing"), x.shape[1]
    oh = onehot(y, c)
    q = (1 - eps) * oh + eps / (c - others) * (1 - oh)
    return (-(q * log_softmax(x)).sum(1)).mean()


def ctc_problem(rng: np.random.Generator, size: int) -> Problem:
    t, n, c = [(5, 2, 4), (6, 3, 4)][size]
    lp = f32(log_softmax(rng.normal(0, 1, (t, n, c)), axis=2))
    targets = rng.integers(1, c, (n, 2))
    return {
        "loss": "ctc_loss",
        "log_probs": lp.tolist(),
        "targets": targets.tolist(),
        "input_lengths": [t] * n,
        "target_lengths": [2] * n,
    }


def ctc_batch_first(p: Problem) -> Submission:
    # Students rarely write CTC by hand: torch's gradient, returned batch first.
    lp = torch.tensor(p["log_probs"], dtype=torch.float64, requires_grad=True)
    value = F.ctc_loss(
        lp,
        torch.tensor(p["targets"]),
        torch.tensor(p["input_lengths"]),
        torch.tensor(p["target_lengths"]),
    )
    (g,) = torch.autograd.grad(value, lp)
    return grad(g.numpy().transpose(1, 0, 2), "log_probs")


def multi_margin_with_target(p: Problem) -> Submission:
    x, y = a(p, "input"), idx(p)
    margins = np.maximum(0, 1 - x[np.arange(len(y)), y][:, None] + x)  # the target class too
    return loss(margins.sum(1).mean() / x.shape[1])


def multi_margin_problem(rng: np.random.Generator, size: int) -> Problem:
    problem = ce_problem(rng, size)
    problem["loss"] = "multi_margin_loss"
    return problem


def triplet_problem(rng: np.random.Generator, size: int, **params: Any) -> Problem:
    n, d = [(3, 4), (5, 3)][size]
    problem: Problem = {
        "loss": "triplet_margin_loss",
        "anchor": f32(rng.normal(0, 1, (n, d))).tolist(),
        "positive": f32(rng.normal(0, 1, (n, d))).tolist(),
        "negative": f32(rng.normal(0, 1, (n, d))).tolist(),
    }
    if params:
        problem["params"] = params
    return problem


def triplet_squared(p: Problem) -> Submission:
    an, po, ne = a(p, "anchor"), a(p, "positive"), a(p, "negative")
    dp, dn = ((an - po) ** 2).sum(1), ((an - ne) ** 2).sum(1)
    return loss(np.maximum(0, dp - dn + 1.0).mean())


def triplet_margin_default(p: Problem) -> Submission:
    an, po, ne = a(p, "anchor"), a(p, "positive"), a(p, "negative")
    dp = np.sqrt(((an - po + 1e-6) ** 2).sum(1))
    dn = np.sqrt(((an - ne + 1e-6) ** 2).sum(1))
    return loss(np.maximum(0, dp - dn + 1.0).mean())  # margin 1, the default


def gaussian_problem(full: bool) -> Callable[..., Problem]:
    def make(rng: np.random.Generator, size: int) -> Problem:
        shape = [(5,), (3, 4)][size]
        return {
            "loss": "gaussian_nll_loss",
            "input": f32(rng.normal(0, 1, shape)).tolist(),
            "target": f32(rng.normal(0, 1, shape)).tolist(),
            "var": f32(rng.uniform(0.5, 2.0, shape)).tolist(),
            "params": {"full": full},
        }

    return make


def gaussian(p: Problem, full: bool, var_is_std: bool = False) -> Submission:
    x, y, v = a(p, "input"), a(p, "target"), a(p, "var")
    if var_is_std:
        v = v * v
    per = 0.5 * (np.log(v) + (x - y) ** 2 / v)
    if full:
        per = per + 0.5 * math.log(2 * math.pi)
    return loss(per.mean())


def poisson_problem(rng: np.random.Generator, size: int) -> Problem:
    shape = [(5,), (3, 4)][size]
    return {
        "loss": "poisson_nll_loss",
        "input": f32(rng.uniform(0.2, 3.0, shape)).tolist(),
        "target": f32(rng.integers(0, 5, shape)).tolist(),
        "params": {"log_input": False},
    }


def focal_problem(rng: np.random.Generator, size: int) -> Problem:
    shape = [(5,), (3, 4)][size]
    y = rng.integers(0, 2, shape).astype(np.float64)
    y.flat[0], y.flat[1] = 1.0, 0.0
    return {
        "loss": "sigmoid_focal_loss",
        "input": f32(rng.normal(0, 2, shape)).tolist(),
        "target": y.tolist(),
        "params": {"reduction": "mean", "gamma": 3.0},
    }


def focal(p: Problem, gamma: float, alpha_swapped: bool = False) -> Submission:
    x, y = a(p, "input"), a(p, "target")
    s = sigmoid(x)
    ce = -(y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x))
    pt = s * y + (1 - s) * (1 - y)
    alpha = 0.25
    at = (1 - alpha) * y + alpha * (1 - y) if alpha_swapped else alpha * y + (1 - alpha) * (1 - y)
    return loss((at * ce * (1 - pt) ** gamma).mean())


def hinge_problem(rng: np.random.Generator, size: int) -> Problem:
    shape = [(5,), (3, 4)][size]
    y = np.where(rng.uniform(size=shape) < 0.5, 1.0, -1.0)
    y.flat[0] = -1.0
    x = f32(rng.uniform(0.1, 1.8, shape))
    return {
        "loss": "hinge_embedding_loss",
        "input": x.tolist(),
        "target": y.tolist(),
        "params": {"margin": 2.5},
    }


def hinge(p: Problem, margin: float) -> Submission:
    x, y = a(p, "input"), a(p, "target")
    return loss(np.where(y == 1, x, np.maximum(0, margin - x)).mean())


def ranking_problem(rng: np.random.Generator, size: int) -> Problem:
    n = [5, 8][size]
    return {
        "loss": "margin_ranking_loss",
        "input1": f32(rng.normal(0, 1, n)).tolist(),
        "input2": f32(rng.normal(0, 1, n)).tolist(),
        "target": np.where(rng.uniform(size=n) < 0.5, 1.0, -1.0).tolist(),
        "params": {"margin": 0.75},
    }


def soft_margin_problem(rng: np.random.Generator, size: int) -> Problem:
    shape = [(5,), (3, 4)][size]
    return {
        "loss": "soft_margin_loss",
        "input": f32(rng.normal(0, 1.5, shape)).tolist(),
        "target": np.where(rng.uniform(size=shape) < 0.5, 1.0, -1.0).tolist(),
    }


def ctc_small(rng: np.random.Generator, size: int) -> Problem:
    t, n, c = [(4, 2, 3), (5, 2, 3)][size]
    lp = f32(log_softmax(rng.normal(0, 1, (t, n, c)), axis=2))
    return {
        "loss": "ctc_loss",
        "log_probs": lp.tolist(),
        "targets": [[1, 2], [2, 2]],
        "input_lengths": [t, t - 1],
        "target_lengths": [2, 1],
        "params": {"reduction": "sum"},
    }


def ctc_free_gradient(p: Problem) -> Submission:
    """d(-log p(targets)) / d(log_probs) with log_probs as free variables: minus the alignment
    posteriors, by brute force over every alignment (the problems are tiny)."""
    import itertools

    lp = np.asarray(p["log_probs"], dtype=np.float64)
    _, batch, classes = lp.shape
    out = np.zeros_like(lp)
    for b in range(batch):
        label = p["targets"][b][: p["target_lengths"][b]]
        length = p["input_lengths"][b]
        paths, scores = [], []
        for path in itertools.product(range(classes), repeat=length):
            collapsed = [c for i, c in enumerate(path) if c != 0 and (i == 0 or c != path[i - 1])]
            if collapsed == label:
                paths.append(path)
                scores.append(sum(lp[t, b, c] for t, c in enumerate(path)))
        weights = np.exp(np.asarray(scores) - np.logaddexp.reduce(scores))
        for path, w in zip(paths, weights, strict=True):
            for t, c in enumerate(path):
                out[t, b, c] -= w
    return grad(out, "log_probs")
