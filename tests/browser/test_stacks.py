"""The Stacks panel in a real browser on the live cloud, with a control-queue worker (the orchestration
engine's walk): demo launches the example "random string + value" through the parameters form built from
the template (a value out of range refused on its field, a preview first), the open stacks list shows the
new stack reach CREATE_COMPLETE without a reload, the stack's page shows its outputs, masks the hidden
parameter and draws the topology; demo deletes it from the page and both pages follow the delete live.
Then an update through the form: the current template kept, the parameters filled with the stack's values
(the hidden one blank), a preview of the changes, the update followed live to UPDATE_COMPLETE."""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in
from tests.browser.test_screenshots import SHOTS
from tests.conftest import CeleryWorker, live_control_worker

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def control_worker(live_cloud: Any) -> Iterator[CeleryWorker]:
    """A control-queue worker for the live cloud (a stack's steps are control-queue tasks), 4 threads."""
    with live_control_worker(live_cloud, name="stacks", pool="threads", concurrency=4) as worker:
        yield worker


def _mark(page: Page) -> None:
    """A flag on the window, gone if the page is reloaded (what follows must come over the socket)."""
    page.evaluate("() => { window.notReloaded = true; }")


def _shot(page: Page, name: str) -> None:
    """For a reviewer, with the panels' screenshots (README: Screenshots)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"demo-desktop-{name}.png"), full_page=True)


def test_launch_watch_and_delete_a_stack(live_cloud: Any, control_worker: Any, new_page: Callable[[], Page]) -> None:
    name = f"demo-{secrets.token_hex(3)}"
    listing = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    listing.click("nav >> text=Stacks")
    expect(listing).to_have_url(f"{live_cloud.url}/dashboard/orchestration/stacks/")
    expect(listing.locator("html[data-live=live]")).to_have_count(1)
    _mark(listing)

    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.goto(f"{live_cloud.url}/dashboard/orchestration/stacks/")
    page.click("#launch-stack")
    page.check('input[name="source"][value="text"]')  # only the chosen source's field shows
    expect(page.locator("#id_template_text")).to_be_visible()
    expect(page.locator("#id_example")).to_be_hidden()
    page.check('input[name="source"][value="example"]')
    expect(page.locator("#id_template_text")).to_be_hidden()
    page.select_option("#id_example", "random_value")
    page.click("#template-next")
    # the parameters form, from the template: groups, a select, a password, bounds
    expect(page.locator('fieldset[data-group="Secret"]')).to_be_visible()
    expect(page.locator("#id_param_length")).to_have_attribute("max", "64")
    expect(page.locator("#id_param_pin")).to_have_attribute("type", "password")
    page.fill("#id_stack_name", name)
    page.fill("#id_param_greeting", "hi there")
    page.select_option("#id_param_classes", "hexdigits")
    page.fill("#id_param_pin", "9137")
    page.evaluate("() => document.getElementById('launch-form').noValidate = true")
    page.fill("#id_param_length", "5")  # the engine's own constraint refuses it, on the field
    page.click("#stack-launch")
    expect(page.locator(".field-error")).to_contain_text("Between 8 and 64 characters.")
    page.fill("#id_param_length", "20")
    page.fill("#id_param_pin", "9137")
    page.click("#stack-preview")
    expect(page.locator("#preview-table")).to_contain_text("OS::Heat::RandomString")
    _shot(page, "stack-launch")
    page.click("#stack-launch")
    expect(page.locator(".alert-success")).to_contain_text(f"Stack {name} launched")
    _mark(page)

    # the list, open all along, shows the new stack complete without a reload
    row = listing.locator(f'#stacks-table tr[data-name="{name}"]')
    expect(row.locator('[data-role="status"]')).to_have_text("CREATE_COMPLETE", timeout=20_000)
    assert listing.evaluate("() => window.notReloaded") is True

    expect(page.locator("#stack-state")).to_have_text("CREATE_COMPLETE", timeout=20_000)
    expect(page.locator("#stack-outputs")).to_contain_text("hi there, your secret has 20 characters")
    expect(page.locator("#stack-parameters")).to_contain_text("******")
    assert "9137" not in (page.locator("#stack-live").text_content() or "")
    page.click('a[data-tab-link="topology"]')
    topology = page.locator("#topology-svg")
    expect(topology).to_be_visible()
    expect(topology.locator("g.node")).to_have_count(3)
    expect(topology.locator("path.edge")).to_have_count(2)
    for node in ("secret", "message", "done"):
        expect(topology.locator(f'g.node[data-resource="{node}"]')).to_have_class("node status-complete")
    _shot(page, "stack-topology")
    for tab in ("overview", "topology", "resources", "events", "template"):  # a phone's width: nothing wider
        page.set_viewport_size({"width": 390, "height": 844})
        page.click(f'a[data-tab-link="{tab}"]')
        wider = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if wider > 0:
            _shot(page, f"phone-{tab}")
        assert wider <= 0, f"the {tab} tab is {wider}px wider than a phone"
    page.set_viewport_size({"width": 1360, "height": 860})
    page.click('a[data-tab-link="events"]')
    expect(page.locator("#stack-events-table")).to_contain_text("Stack CREATE completed successfully")
    page.click('a[data-tab-link="template"]')
    expect(page.locator("#template-text")).to_contain_text("OS::Heat::RandomString")

    page.click('a[data-tab-link="topology"]')
    page.click("#stack-delete")  # the confirmation is accepted (conftest)
    expect(page.locator(".alert-success")).to_contain_text(f"Deleting stack {name}")
    _mark(page)
    expect(page).to_have_url(re.compile(r"#topology$"))  # back on the tab it was deleted from
    expect(page.locator("#stack-state")).to_have_text("DELETE_COMPLETE", timeout=20_000)
    expect(page.locator("#stack-topology")).to_be_visible()  # the tab chosen stays chosen across refreshes
    expect(topology.locator('g.node[data-resource="done"]')).to_have_class("node status-deleted")
    assert page.evaluate("() => window.notReloaded") is True
    expect(row).to_have_count(0, timeout=20_000)
    assert listing.evaluate("() => window.notReloaded") is True


def test_update_a_stack_through_the_form(live_cloud: Any, control_worker: Any, new_page: Callable[[], Page]) -> None:
    name = f"upd-{secrets.token_hex(3)}"
    page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
    page.goto(f"{live_cloud.url}/dashboard/orchestration/stacks/launch")
    page.select_option("#id_example", "random_value")
    page.click("#template-next")
    page.fill("#id_stack_name", name)
    page.fill("#id_param_greeting", "hi there")
    page.fill("#id_param_pin", "9137")
    page.click("#stack-launch")
    expect(page.locator("#stack-state")).to_have_text("CREATE_COMPLETE", timeout=20_000)

    page.click("#stack-update")
    expect(page.locator('input[name="source"][value="existing"]')).to_be_checked()
    expect(page.locator("#id_template_text")).to_be_hidden()  # no text or file for the current template
    page.check('input[name="source"][value="text"]')
    expect(page.locator("#id_template_text")).to_be_visible()
    page.check('input[name="source"][value="existing"]')
    page.click("#template-next")
    # the stack's values, the hidden one blank (kept when left blank)
    expect(page.locator("#id_param_greeting")).to_have_value("hi there")
    expect(page.locator("#id_param_length")).to_have_value("16")
    expect(page.locator("#id_param_pin")).to_have_value("")
    expect(page.locator('fieldset[data-group="Other parameters"]')).to_contain_text(
        "Leave blank to keep the current value.")
    page.fill("#id_param_greeting", "good day")
    page.click("#update-preview")
    table = page.locator("#update-preview-table")
    expect(table.locator('tr[data-id="message"]')).to_have_attribute("data-change", "updated")
    expect(table.locator('tr[data-id="secret"]')).to_have_attribute("data-change", "unchanged")
    expect(page.locator("#id_param_greeting")).to_have_value("good day")
    _shot(page, "stack-update")
    page.click("#update-submit")
    expect(page.locator(".alert-success")).to_contain_text(f"Stack {name}: update started")
    expect(page.locator("#stack-state")).to_have_text("UPDATE_COMPLETE", timeout=20_000)
    expect(page.locator("#stack-outputs")).to_contain_text("good day, your secret has 16 characters")
    expect(page.locator("#stack-parameters")).to_contain_text("******")
    assert "9137" not in (page.locator("#stack-live").text_content() or "")

    page.click("#stack-delete")
    expect(page.locator("#stack-state")).to_have_text("DELETE_COMPLETE", timeout=20_000)
