"""How often grading hints name the mistake: the evaluation set of tests/support/student_kinds.py.

Every kind of mistake is a wrong implementation written as a student would (numpy, float64),
run on two sizes of problem in float32 and float64, and graded through the real handler
(``grade_document``); so are the right answers (a float64 computation's rounding) and near
misses of them (three tolerances off at one element). Kinds the catalogue has no code for are
in the set too and count as misses.

    python benchmarks/eval_hints.py [--out benchmarks/results/hints.md]
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.hint_eval import Report, evaluate

COMMAND = "python benchmarks/eval_hints.py --out benchmarks/results/hints.md"


def render(report: Report) -> str:
    kinds = report.results
    without_code = [r for r in kinds if r.kind.code is None]
    lines = [
        "# Grading hints: evaluation",
        "",
        f"Command: `{COMMAND}`",
        "",
        f"{len(kinds)} kinds of mistake ({sum(r.kind.tested for r in kinds)} named by the unit "
        f"tests, {len(without_code)} with no code in the catalogue), each on two problem sizes "
        f"in float32 and float64: {report.submissions} wrong submissions, as many right "
        "answers and as many near misses.",
        "",
        "| measure | value | target |",
        "| --- | ---: | ---: |",
        f"| wrong submissions failed | {sum(r.failed for r in kinds)} of {report.submissions} "
        "| all |",
        f"| wrong submissions that get the right hint | {report.right} of "
        f"{report.submissions} ({report.recall:.1%}) | at least 80% |",
        f"| hints that name the right mistake | {report.right} of {report.hinted} "
        f"({report.precision:.1%}) | at least 95% |",
        f"| hints on right answers | {report.correct_hints} (of {report.submissions}; "
        f"{sum(r.correct_failed for r in kinds)} failed) | 0 |",
        f"| hints on near misses | {report.near_hints} (of {report.submissions}; "
        f"{sum(r.near_passed for r in kinds)} passed) | 0 |",
        "",
        "| kind of mistake | expected hint | submissions | right hint | other hints |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in kinds:
        code = f"`{r.kind.code}`" if r.kind.code else "(none in the catalogue)"
        other = ", ".join(sorted(set(r.wrong))) or ""
        lines.append(f"| {r.kind.name} | {code} | {r.submissions} | {r.right} | {other} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    warnings.simplefilter("ignore", UserWarning)  # kl_div's 'mean' warns on every call
    text = render(evaluate())
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
