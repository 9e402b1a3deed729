"""The evaluation set: every kind of mistake, with the hint it should get."""

from __future__ import annotations

from tests.support import student_kinds_classification, student_kinds_regression
from tests.support.students import Kind

KINDS: tuple[Kind, ...] = (
    *student_kinds_regression.KINDS,
    *student_kinds_classification.KINDS,
)
