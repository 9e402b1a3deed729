"""Wrong implementations as students write them, in numpy, independent of the service's own
recomputations: the evaluation set of grading hints.

Each ``Kind`` is one mistake: a problem generator (two sizes) and the wrong answer computed from
the problem's numbers in float64 numpy. ``code`` is the hint the mistake should get, or None
where the catalogue has no code for it (those count as misses). ``tests.support.hint_eval``
grades every kind on every size and dtype through the real handler, plus the right answers
(rounded as a float64 computation is) and near misses of them, and counts the hints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
Problem = dict[str, Any]
Submission = dict[str, Any]

DTYPES = ("float32", "float64")
SIZES = (0, 1)


def f32(values: Any) -> Any:
    """Values a float32 problem can hold exactly (the same values serve float64)."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def softmax(x: np.ndarray, axis: int = 1) -> Any:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = 1) -> Any:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def sigmoid(x: np.ndarray) -> Any:
    return 1 / (1 + np.exp(-x))


def log_sigmoid(x: np.ndarray) -> Any:
    return -np.logaddexp(0, -x)


def onehot(y: np.ndarray, classes: int) -> Any:
    return np.eye(classes)[y]


def loss(value: Any) -> Submission:
    return {"loss": np.asarray(value, dtype=np.float64).tolist()}


def grad(value: np.ndarray, name: str = "input") -> Submission:
    return {"grad": {name: np.asarray(value, dtype=np.float64).tolist()}}


# ---------------------------------------------------------------------------------------------
# Problems


def ce_problem(rng: np.random.Generator, size: int, **params: Any) -> Problem:
    n, c = [(4, 3), (7, 5)][size]
    x = f32(rng.normal(0, 2, (n, c)))
    y = rng.integers(0, c, n)
    y[0], y[1] = 0, 1  # class 0 (ignore_index cases) and another class appear
    problem: Problem = {"loss": "cross_entropy", "input": x.tolist(), "target": y.tolist()}
    if params:
        problem["params"] = params
    return problem


def square_ce(rng: np.random.Generator, size: int) -> Problem:
    n = [3, 5][size]
    y = rng.integers(0, n, n)
    return {
        "loss": "cross_entropy",
        "input": f32(rng.normal(0, 2, (n, n))).tolist(),
        "target": y.tolist(),
    }


def pair_problem(name: str, shape2d: bool = False, **params: Any) -> Callable[..., Problem]:
    def make(rng: np.random.Generator, size: int) -> Problem:
        shape = [(5,), (3, 4)][size] if not shape2d else [(3, 2), (4, 3)][size]
        x = f32(rng.normal(0, 1.5, shape))
        y = f32(rng.normal(0, 1.5, shape))
        problem: Problem = {"loss": name, "input": x.tolist(), "target": y.tolist()}
        if params:
            problem["params"] = {
                k: (v(shape, rng) if callable(v) else v) for k, v in params.items()
            }
        return problem

    return make


def positive_weight(shape: tuple[int, ...], rng: np.random.Generator) -> Any:
    return f32(rng.uniform(0.2, 3.0, shape)).tolist()


def bce_problem(extremes: bool = False, **params: Any) -> Callable[..., Problem]:
    def make(rng: np.random.Generator, size: int) -> Problem:
        shape = [(5,), (3, 4)][size]
        p = f32(rng.uniform(0.05, 0.95, shape))
        y = rng.integers(0, 2, shape).astype(np.float64)
        if extremes:  # an exact 0 where the target is 1 and an exact 1 where it is 0
            p.flat[0], y.flat[0] = 0.0, 1.0
            p.flat[1], y.flat[1] = 1.0, 0.0
        problem: Problem = {
            "loss": "binary_cross_entropy",
            "input": p.tolist(),
            "target": y.tolist(),
        }
        if params:
            problem["params"] = {
                k: (v(shape, rng) if callable(v) else v) for k, v in params.items()
            }
        return problem

    return make


def bcel_problem(scale: float = 2.0, **params: Any) -> Callable[..., Problem]:
    def make(rng: np.random.Generator, size: int) -> Problem:
        shape = [(5,), (3, 4)][size]
        x = f32(rng.normal(0, scale, shape))
        y = rng.integers(0, 2, shape).astype(np.float64)
        y.flat[0], y.flat[1] = 1.0, 0.0
        problem: Problem = {
            "loss": "binary_cross_entropy_with_logits",
            "input": x.tolist(),
            "target": y.tolist(),
        }
        if params:
            problem["params"] = {
                k: (v(shape, rng) if callable(v) else v) for k, v in params.items()
            }
        return problem

    return make


def kl_problem(positive_input: bool = False, **params: Any) -> Callable[..., Problem]:
    def make(rng: np.random.Generator, size: int) -> Problem:
        n, c = [(2, 3), (4, 5)][size]
        logits = rng.normal(0, 1, (n, c))
        x = f32(softmax(logits) if positive_input else log_softmax(logits))
        t = softmax(rng.normal(0, 1, (n, c)))
        t = f32(np.log(t)) if params.get("log_target") else f32(t)
        problem: Problem = {"loss": "kl_div", "input": x.tolist(), "target": t.tolist()}
        if params:
            problem["params"] = params
        return problem

    return make


def a(problem: Problem, name: str) -> Any:
    return np.asarray(problem[name], dtype=np.float64)


def idx(problem: Problem, name: str = "target") -> Any:
    return np.asarray(problem[name], dtype=np.int64)


def prm(problem: Problem, name: str, default: Any = None) -> Any:
    return problem.get("params", {}).get(name, default)


def reduce(per: np.ndarray, reduction: str) -> Any:
    if reduction == "none":
        return per
    return np.asarray(per.sum() if reduction == "sum" else per.mean())


@dataclass(frozen=True)
class Kind:
    name: str
    code: str | None
    problem: Callable[[np.random.Generator, int], Problem]
    wrong: Callable[[Problem], Submission]
    tested: bool = True  # named by the unit tests (the evaluation runs every kind)
    dtypes: tuple[str, ...] = field(default=DTYPES)
