"""workers.taskrecord: how a task's end reads as its record's outcome (the hooks themselves run in a real
worker in tests/core/test_tasks.py)."""
from __future__ import annotations

from typing import Any

import pytest

from workers import taskrecord


@pytest.mark.parametrize(("state", "retval", "expected"), [
    ("SUCCESS", "spawned", (True, "")),
    ("SUCCESS", "failed", (False, "disk full")),
    ("SUCCESS", "error_extending", (False, "disk full")),
    ("SUCCESS", {"errors": ["a", "b"]}, (False, "a; b")),
    ("SUCCESS", {"errors": []}, (True, "")),
    ("FAILURE", ValueError("bad"), (False, "ValueError: bad")),
])
def test_outcome(state: str, retval: Any, expected: tuple[bool, str]) -> None:
    lines = [{"at": "", "level": "INFO", "message": "starting"}, {"at": "", "level": "ERROR", "message": "disk full"}]
    assert taskrecord.outcome(state, retval, lines) == expected
