"""The panel registry: components add panels without touching the shell."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.dashboard import panels


@pytest.fixture
def extra() -> Iterator[None]:
    panels.register("Compute", "Not Mounted", "dashboard:overview_does_not_exist", icon="server")
    panels.register("Zeta", "Odd", "identity:roles", order=1)
    yield
    panels.unregister("dashboard:overview_does_not_exist")
    panels.register("Identity", "Roles", "identity:roles", admin_only=True, icon="roles", order=30)


def test_sections_are_ordered_and_admin_panels_hidden() -> None:
    admin = panels.nav(is_admin=True, path="/dashboard/identity/users/create")
    assert [s.name for s in admin][:1] == ["Project"]
    identity = next(s for s in admin if s.name == "Identity")
    assert [p.name for p in identity.panels] == ["Projects", "Users", "Groups", "Roles", "Domains"]
    assert [p.name for s in admin for p in s.panels if p.active] == ["Users"]
    member = panels.nav(is_admin=False, path="/dashboard/")
    assert [s.name for s in member][:1] == ["Project"] and "Identity" not in [s.name for s in member]
    assert member[0].panels[0].active
    # a page no panel lists (the user's settings) marks none, not the overview that prefixes every URL
    settings = panels.nav(is_admin=False, path="/dashboard/settings/password")
    assert not [p.name for s in settings for p in s.panels if p.active]


def test_unresolvable_panels_are_left_out_and_unknown_sections_go_last(extra: None) -> None:
    nav = panels.nav(is_admin=True)
    names = [s.name for s in nav]
    assert "Not Mounted" not in [p.name for s in nav for p in s.panels]  # its URLs are not mounted
    assert names[-1] == "Zeta"


def test_identity_mounts_its_urls() -> None:
    assert any(m.prefix == "identity" and m.namespace == "identity" for m in panels.mounts())
