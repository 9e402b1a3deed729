"""Loss-aware hints: the known mistakes of ``service.grading.mistakes`` confirmed by numbers.

A hint is given only when a mistake reproduces the submission: the submission matches what the
wrong implementation answers on this problem within the grading tolerance, and every element
that fails is one where the mistake's answer is clearly (``MARGIN`` tolerances) away from the
reference; or an input-based explanation accounts for every failing element. Hints never quote
reference values, so they are safe to pass to students.

Precision first. When more than one mistake reproduces a submission the numbers cannot tell
them apart, so no hint is given, unless one of them is declared a special case of the others
(``Mistake.refines``): then the most specific one is named.

Speed: what a mistake answers depends on the problem only, so it is computed once per problem
(and only when some submission fails); per failing submission the search compares a handful of
probe elements of every candidate at once, and compares in full only the candidates that pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.compute.engine import TORCH_INPUT_ERRORS
from service.grading.compare import Array, all_close
from service.grading.mistakes import CATALOGUE
from service.grading.mistakes.base import Alternative, Facts, Mistake
from service.grading.quantity import LOSS, Quantity
from service.grading.reference import Reference
from service.grading.tolerances import Tolerance

log = logging.getLogger("service.grading")

# A mistake explains a failing element only where its answer is this many tolerances away from
# the reference: a near miss of the reference is never blamed on a mistake.
MARGIN = 8.0
# Recomputing every mistake costs a few dozen evaluations of the loss, once per problem: above
# this many input elements only explanations and shape mistakes are tried, so that a large
# problem cannot make grading slow.
RECOMPUTE_ELEMENTS = 1 << 18
PROBES = 6  # evenly spaced elements compared before a full comparison, besides each
# candidate's most telling element
HINT_ERRORS = (*TORCH_INPUT_ERRORS, ArithmeticError, KeyError)


@dataclass(frozen=True)
class Hint:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class _Candidate:
    mistake: Mistake
    alternative: Alternative
    value: Array
    distinct: npt.NDArray[np.bool_]  # where it is clearly away from the reference


@dataclass(frozen=True)
class _Plan:
    candidates: list[_Candidate]
    probes: npt.NDArray[np.intp]
    probe_values: Array  # candidates x probes
    explainers: list[Mistake]


@dataclass(frozen=True)
class _Found:
    mistake: Mistake
    facts: Facts
    error: float  # how far the submission is from the mistake's answer (to pick a variant)


def hints_for(reference: Reference, quantity: Quantity) -> list[Hint]:
    """The hint the numbers support for a failed quantity of the right shape (or none)."""
    plan = _plan(reference, quantity.name, quantity.tolerance)
    found: list[_Found] = []
    if plan.candidates:
        tolerance = quantity.tolerance
        probed = quantity.submitted.reshape(-1)[plan.probes]
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.abs(probed - plan.probe_values) <= (
                tolerance.atol + tolerance.rtol * np.abs(plan.probe_values)
            )
        for index in np.flatnonzero(close.all(axis=1)):
            candidate = plan.candidates[int(index)]
            if quantity.matches(candidate.value) and quantity.mismatches_within(candidate.distinct):
                error = _error(candidate.value, quantity.submitted)
                found.append(_Found(candidate.mistake, candidate.alternative.facts, error))
    for mistake in plan.explainers:
        assert mistake.explain is not None
        try:
            facts = mistake.explain(reference, quantity)
        except HINT_ERRORS:
            _failed(mistake, reference)
            continue
        if facts is not None and _clearly_off(quantity):
            found.append(_Found(mistake, facts, 0.0))
    return _named(reference, quantity, found)


def shape_hints(
    reference: Reference, name: str, expected: Array, submitted: Array, tolerance: Tolerance
) -> list[Hint]:
    """The hint for a submission of the wrong shape whose values are right but arranged as a
    known mistake arranges them (transposed, flattened, a kept dimension, another reduction)."""
    quantity = Quantity(name, expected, submitted, tolerance, None)
    found: list[_Found] = []
    for mistake in CATALOGUE:
        if mistake.reshape is None or not mistake.concerns(reference, name):
            continue
        try:
            alternatives = mistake.reshape(reference, name, expected, submitted.shape)
        except HINT_ERRORS:
            _failed(mistake, reference)
            continue
        for alternative in alternatives:
            value = alternative.values.get(name)
            if value is not None and all_close(value, submitted, tolerance):
                found.append(_Found(mistake, alternative.facts, _error(value, submitted)))
    return _named(reference, quantity, found)


def _named(reference: Reference, quantity: Quantity, found: list[_Found]) -> list[Hint]:
    """One hint, or none when the numbers fit mistakes that are not special cases of one
    another (naming one of them would be a guess)."""
    if not found:
        return []
    specific = [item for item in found if not any(_refines(f.mistake, item.mistake) for f in found)]
    codes = {item.mistake.code for item in specific}
    if len(codes) != 1:
        return []
    best = min(specific, key=lambda item: item.error)
    try:
        message = best.mistake.message(reference, quantity, best.facts)
    except HINT_ERRORS:
        _failed(best.mistake, reference)
        return []
    return [Hint(best.mistake.code, message)]


def _refines(specific: Mistake, general: Mistake) -> bool:
    if specific.code == general.code:
        return False
    return general.code in specific.refines or "*" in specific.refines


def alternatives_of(reference: Reference, mistake: Mistake) -> list[Alternative]:
    """What ``mistake`` answers on this problem, computed at most once per problem."""
    key = f"alternatives:{mistake.code}"
    if key not in reference.memo:
        alternatives: list[Alternative] = []
        if mistake.recompute is not None:
            try:
                alternatives = mistake.recompute(reference)
            except HINT_ERRORS:
                _failed(mistake, reference)
        reference.memo[key] = alternatives
    cached: list[Alternative] = reference.memo[key]
    return cached


def _plan(reference: Reference, name: str, tolerance: Tolerance) -> _Plan:
    key = f"plan:{name}:{tolerance.rtol}:{tolerance.atol}"
    if key not in reference.memo:
        reference.memo[key] = _build_plan(reference, name, tolerance)
    plan: _Plan = reference.memo[key]
    return plan


def _build_plan(reference: Reference, name: str, tolerance: Tolerance) -> _Plan:
    expected = reference.loss if name == LOSS else reference.grads[name]
    finite = np.isfinite(expected)
    bound = tolerance.atol + tolerance.rtol * np.abs(expected)
    candidates: list[_Candidate] = []
    explainers: list[Mistake] = []
    small = sum(t.numel() for t in reference.tensors.values()) <= RECOMPUTE_ELEMENTS
    for mistake in CATALOGUE:
        if not mistake.concerns(reference, name):
            continue
        if mistake.explain is not None:
            explainers.append(mistake)
        if mistake.recompute is None or not small:
            continue
        for alternative in alternatives_of(reference, mistake):
            value = alternative.values.get(name)
            if value is None or value.shape != expected.shape:
                continue
            if not bool((np.isfinite(value) | ~finite).all()):
                continue  # NaN where the reference is finite is no evidence of this mistake
            with np.errstate(invalid="ignore", over="ignore"):
                distinct = np.abs(value - expected) > MARGIN * bound
            if distinct.any():
                candidates.append(_Candidate(mistake, alternative, value, distinct))
    flat_finite = np.flatnonzero(finite.reshape(-1))
    probes: set[int] = set()
    if flat_finite.size:
        step = max(1, flat_finite.size // PROBES)
        probes.update(int(i) for i in flat_finite[::step][:PROBES])
    for candidate in candidates:
        gap = np.where(candidate.distinct, np.abs(candidate.value - expected), 0.0).reshape(-1)
        probes.add(int(np.argmax(gap)))
    order = np.array(sorted(probes), dtype=np.intp)
    values = (
        np.stack([c.value.reshape(-1)[order] for c in candidates])
        if candidates
        else np.zeros((0, order.size))
    )
    return _Plan(candidates, order, values, explainers)


def _clearly_off(quantity: Quantity) -> bool:
    """Every failing element is at least ``MARGIN`` tolerances off (or not finite): a near
    miss is not explained by the inputs, however special the element it misses at."""
    comparison = quantity.comparison
    if comparison is None:
        return True
    tolerance = quantity.tolerance
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(quantity.submitted - quantity.expected)
        far = ~(diff <= MARGIN * (tolerance.atol + tolerance.rtol * np.abs(quantity.expected)))
    return not bool((comparison.mismatch_mask & ~far).any())


def _error(value: Array, submitted: Array) -> float:
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(value - submitted)
    finite = diff[np.isfinite(diff)]
    return float(finite.max()) if finite.size else 0.0


def _failed(mistake: Mistake, reference: Reference) -> None:
    # A hint is an extra: inputs a mistake did not foresee cost the hint, never the grade.
    log.warning("hint %s failed on %s", mistake.code, reference.spec_name, exc_info=True)
