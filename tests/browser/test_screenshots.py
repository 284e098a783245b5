"""Every dashboard panel, as demo and as admin, at 1400x900 and at a phone's width (390x844): no
console error (the favicon included), no page wider than the window, the admin sidebar inside a 900 px
window (scrolling what does not fit), and a screenshot of each written to var/screenshots/ (README.md,
"Screenshots") so that a reviewer can look at them all in one place."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SIZES = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    return SHOTS


@pytest.fixture
def page_at(browser: Browser) -> Iterator[Any]:
    contexts = []

    def make(size: str) -> tuple[Page, list[str]]:
        context = browser.new_context(viewport=SIZES[size])
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(f"{page.url}: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        page.on("response", lambda r: errors.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
        return page, errors

    yield make
    for context in contexts:
        context.close()


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/dashboard").lower()).strip("-") or "overview"


def _overflow(page: Page) -> int:
    """By how many pixels the page is wider than the window (0: it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("user", ["demo", "admin"])
def test_every_panel_renders_cleanly_and_is_photographed(live_cloud: Any, page_at: Any, shots: Path, user: str,
                                                         size: str) -> None:
    page, errors = page_at(size)
    signed_in(page, live_cloud, user, getattr(live_cloud, f"{user}_password"))
    links = page.eval_on_selector_all(".nav a", "links => links.map(a => a.getAttribute('href'))")
    assert "/dashboard/" in links and len(links) >= 8, links
    if user == "admin":
        assert any("/identity/" in link for link in links)
    problems = []
    for link in links:
        response = page.goto(f"{live_cloud.url}{link}")
        assert response is not None and response.status == 200, (link, response and response.status)
        expect(page.locator("h1")).to_be_visible()
        expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live")
        page.screenshot(path=str(shots / f"{user}-{size}-{_slug(link)}.png"), full_page=True)
        if (wider := _overflow(page)) > 0:
            problems.append(f"{link} is {wider}px wider than the {size} window")
    if size == "desktop":
        page.goto(f"{live_cloud.url}/dashboard/")
        fits = page.evaluate("(() => { const s = document.querySelector('.sidebar');"
                             " return [s.scrollHeight, s.clientHeight]; })()")
        # The sidebar stays inside the window; what does not fit scrolls inside it (the test below).
        assert fits[1] <= SIZES[size]["height"], f"the {user} sidebar is {fits[1]}px tall for {fits[0]}px of links"
    assert not errors, errors
    assert not problems, problems


def test_the_sidebar_scrolls_when_the_window_is_short(live_cloud: Any, page_at: Any) -> None:
    page, errors = page_at("desktop")
    page.set_viewport_size({"width": 1400, "height": 480})
    signed_in(page, live_cloud, "admin", live_cloud.admin_password)
    sidebar = page.locator(".sidebar")
    before = page.locator(".nav a").last.bounding_box()
    assert before is not None and before["y"] > 480  # below the window: the sidebar must scroll to it
    sidebar.hover()
    page.mouse.wheel(0, 2000)
    expect(page.locator(".nav a").last).to_be_in_viewport()
    assert not errors, errors
