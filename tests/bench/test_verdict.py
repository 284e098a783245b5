"""`make bench` prints one table: each benchmark's rows are collected (STRATUS_BENCH_VERDICTS) and
bench/verdict.py prints them together, failing when a goal is missed or nothing reported."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench import verdict


def test_rows_of_several_benchmarks_print_as_one_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    collected = tmp_path / "verdicts.jsonl"
    monkeypatch.setenv("STRATUS_BENCH_VERDICTS", str(collected))
    verdict.print_verdicts([verdict.Verdict("token validation", "bare 1,000 req/s", "480 req/s", 0.48, ">= 40 %",
                                            True)])
    verdict.print_verdicts([verdict.Verdict("port create", "-", "70 ports/s", None, ">= 150 ports/s", False)])
    capsys.readouterr()
    assert verdict.main(str(collected)) == 1  # one goal missed
    table = capsys.readouterr().out
    assert "| token validation" in table and "| port create" in table
    assert "0.48x" in table and "FAIL" in table and "PASS" in table


def test_all_passed_is_success_and_nothing_reported_is_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collected = tmp_path / "verdicts.jsonl"
    monkeypatch.setenv("STRATUS_BENCH_VERDICTS", str(collected))
    verdict.print_verdicts([verdict.Verdict("scheduler", "Nova 355 ms", "1.3 ms", 0.004, "<= 2 ms", True)])
    assert verdict.main(str(collected)) == 0
    assert verdict.main(str(tmp_path / "missing.jsonl")) == 1
