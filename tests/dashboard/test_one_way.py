"""Issue 10: one way to do each thing in the dashboard's views and templates."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIEWS = list((ROOT / "apps").rglob("views*.py"))


def test_views_get_the_actor_only_through_actor_for() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in VIEWS
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"def _actor\(|request\.actor\b", line)]
    assert VIEWS and offenders == []


def test_one_form_template() -> None:
    copies = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("form.html"))
    assert copies == ["templates/dashboard/form.html"]
