"""Grade the evaluation set through the real handler and count the hints.

For every kind of mistake, size and dtype: the wrong submission (it should get the kind's
code), the right answer as a float64 computation gives it (no hint, passes), and a near miss
of the right answer, three tolerances off at one element (fails, no hint).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.grading.tolerances import tolerance_for
from service.http.grading_requests import grade_document
from service.settings import Settings
from service.tensors.dtypes import float_dtype
from tests.support.student_kinds import KINDS
from tests.support.students import SIZES, Kind, Problem, Submission


def wire(node: Any) -> Any:
    if isinstance(node, list):
        return [wire(item) for item in node]
    value = float(node)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def instances(kind: Kind) -> Iterator[Problem]:
    for size in SIZES:
        for dtype in kind.dtypes:
            seed = zlib.crc32(f"{kind.name}/{size}".encode())
            problem = kind.problem(np.random.default_rng(seed), size)
            yield {**problem, "dtype": dtype}


def graded(problem: Problem, submission: Submission, settings: Settings) -> dict[str, Any]:
    """The check of the one quantity submitted."""
    body = {**problem, "submission": {k: _wire_part(v) for k, v in submission.items()}}
    answer = grade_document(body, settings)
    path = "loss" if "loss" in submission else "grad." + next(iter(submission["grad"]))
    check: dict[str, Any] = next(c for c in answer["checks"] if c["quantity"] == path)
    return check


def _wire_part(value: Any) -> Any:
    return {k: wire(v) for k, v in value.items()} if isinstance(value, dict) else wire(value)


def right_answer(problem: Problem, submission: Submission, settings: Settings) -> Submission:
    """The right value of the submitted quantity, computed in float64 (as numpy would)."""
    answer = grade_document(
        {**problem, "dtype": "float64", "grad": True, "submission": {}}, settings
    )
    reference = answer["reference"]
    if "loss" in submission:
        return {"loss": np.asarray(reference["loss"], dtype=np.float64).tolist()}
    name = next(iter(submission["grad"]))
    return {"grad": {name: np.asarray(reference["grad"][name], dtype=np.float64).tolist()}}


def near_miss(problem: Problem, right: Submission) -> Submission:
    """The right answer three tolerances off at its first element."""
    tolerance = tolerance_for(float_dtype(problem["dtype"], ()).torch, None, None)
    key, inner = ("loss", None) if "loss" in right else ("grad", next(iter(right["grad"])))
    value = np.asarray(right[key] if inner is None else right[key][inner], dtype=np.float64)
    flat = value.reshape(-1).copy()
    flat[0] += 3 * (tolerance.atol + tolerance.rtol * abs(flat[0]))
    moved = flat.reshape(value.shape).tolist()
    return {key: moved} if inner is None else {key: {inner: moved}}


@dataclass
class KindResult:
    kind: Kind
    submissions: int = 0
    failed: int = 0
    right: int = 0
    wrong: list[str] = field(default_factory=list)  # codes of hints naming another mistake
    correct_hints: list[str] = field(default_factory=list)  # hints on right answers
    correct_failed: int = 0
    near_hints: list[str] = field(default_factory=list)
    near_passed: int = 0
    errors: list[str] = field(default_factory=list)


def evaluate_kind(kind: Kind, settings: Settings) -> KindResult:
    result = KindResult(kind)
    for problem in instances(kind):
        submission = kind.wrong(problem)
        check = graded(problem, submission, settings)
        result.submissions += 1
        result.failed += not check["passed"]
        codes = [hint["code"] for hint in check["hints"]]
        if kind.code is not None and codes == [kind.code]:
            result.right += 1
        elif codes:
            result.wrong.extend(codes)
        right = right_answer(problem, submission, settings)
        if problem["dtype"] == "float64":  # a last-digit difference
            right = _jitter(right)
        check = graded(problem, right, settings)
        result.correct_failed += not check["passed"]
        result.correct_hints.extend(hint["code"] for hint in check["hints"])
        exact = right_answer({**problem}, submission, settings)
        if problem["dtype"] == "float32":
            exact = _float32(exact)
        check = graded(problem, near_miss(problem, exact), settings)
        result.near_passed += check["passed"]
        result.near_hints.extend(hint["code"] for hint in check["hints"])
    return result


def _jitter(submission: Submission) -> Submission:
    return _map(submission, lambda v: v * (1 + 1e-13))


def _float32(submission: Submission) -> Submission:
    return _map(submission, lambda v: v.astype(np.float32).astype(np.float64))


def _map(submission: Submission, fn: Any) -> Submission:
    def one(value: Any) -> Any:
        return fn(np.asarray(value, dtype=np.float64)).tolist()

    if "loss" in submission:
        return {"loss": one(submission["loss"])}
    return {"grad": {k: one(v) for k, v in submission["grad"].items()}}


@dataclass
class Report:
    results: list[KindResult]

    @property
    def submissions(self) -> int:
        return sum(r.submissions for r in self.results)

    @property
    def right(self) -> int:
        return sum(r.right for r in self.results)

    @property
    def hinted(self) -> int:
        return self.right + sum(len(r.wrong) for r in self.results)

    @property
    def recall(self) -> float:
        return self.right / self.submissions if self.submissions else 0.0

    @property
    def precision(self) -> float:
        return self.right / self.hinted if self.hinted else 1.0

    @property
    def correct_hints(self) -> int:
        return sum(len(r.correct_hints) for r in self.results)

    @property
    def near_hints(self) -> int:
        return sum(len(r.near_hints) for r in self.results)


def evaluate(kinds: Iterable[Kind] = KINDS, settings: Settings | None = None) -> Report:
    settings = settings or Settings()
    return Report([evaluate_kind(kind, settings) for kind in kinds])
