"""The table every benchmark ends with (issue 12): measure, anchor, Stratus, ratio, goal, PASS/FAIL.

The same columns as bench/token_validation.py prints, shared so `make bench` reads as one table: each
benchmark prints its rows, and appends them (JSON lines) to the file ``STRATUS_BENCH_VERDICTS`` names;
``python bench/verdict.py FILE`` then prints every row of the run as one table (exit 1 on a FAIL):

    from bench.verdict import Verdict, print_verdicts
    print_verdicts([Verdict("scheduler, ms per placement", "Nova 355 ms", "1.4", 0.004, "<= 2 ms", True)])
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass


@dataclass
class Verdict:
    measure: str
    anchor: str          # the anchor's figure (measured in the same run where one runs here), or "-"
    stratus: str         # Stratus's figure in this run
    ratio: float | None  # Stratus / anchor (None when there is no anchor)
    goal: str
    passed: bool


def print_verdicts(verdicts: list[Verdict]) -> None:
    """One row per measure, as a Markdown table; appended to ``$STRATUS_BENCH_VERDICTS`` when set."""
    collect = os.environ.get("STRATUS_BENCH_VERDICTS")
    if collect:
        with open(collect, "a", encoding="utf-8") as out:
            for verdict in verdicts:
                out.write(json.dumps(asdict(verdict)) + "\n")
    _table(verdicts)


def _table(verdicts: list[Verdict]) -> None:
    rows = [("measure", "anchor", "Stratus", "ratio", "goal", "")]
    rows += [(v.measure, v.anchor, v.stratus, "-" if v.ratio is None else f"{v.ratio:.2g}x", v.goal,
              "PASS" if v.passed else "FAIL") for v in verdicts]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
        if index == 0:
            print("| " + " | ".join("-" * width for width in widths) + " |")


def main(path: str) -> int:
    """Every row a run collected, as one table: 1 when a goal is missed (or no benchmark reported)."""
    try:
        with open(path, encoding="utf-8") as rows:
            verdicts = [Verdict(**json.loads(line)) for line in rows if line.strip()]
    except FileNotFoundError:
        verdicts = []
    print("\n## make bench: every measure of this run")
    _table(verdicts)
    return 0 if verdicts and all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
