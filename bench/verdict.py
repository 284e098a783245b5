"""The table every benchmark ends with (issue 12): measure, anchor, Stratus, ratio, goal, PASS/FAIL.

The same columns as bench/token_validation.py prints, shared so `make bench` reads as one table:

    from bench.verdict import Verdict, print_verdicts
    print_verdicts([Verdict("scheduler, ms per placement", "Nova 355 ms", "1.4", 0.004, "<= 2 ms", True)])
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Verdict:
    measure: str
    anchor: str          # the anchor's figure (measured in the same run where one runs here), or "-"
    stratus: str         # Stratus's figure in this run
    ratio: float | None  # Stratus / anchor (None when there is no anchor)
    goal: str
    passed: bool


def print_verdicts(verdicts: list[Verdict]) -> None:
    """One row per measure, as a Markdown table."""
    rows = [("measure", "anchor", "Stratus", "ratio", "goal", "")]
    rows += [(v.measure, v.anchor, v.stratus, "-" if v.ratio is None else f"{v.ratio:.2g}x", v.goal,
              "PASS" if v.passed else "FAIL") for v in verdicts]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("| " + " | ".join("-" * width for width in widths) + " |")
