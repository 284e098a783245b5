"""The live table (apps/dashboard/tables.py) through Django's test client, on the volume table:
sorting and paging through Cinder's selector (keyset pages, forwards and back, an unknown marker
is the first page), the name filter, the partial the live script fetches, and the action view: a
bulk action is one service call per row with each row's outcome (JSON for the script, messages
without it), a row's own button, a reader's refusal."""
from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from apps.identity import services as identity_services
from apps.volumes import services, states
from apps.volumes.models import Volume
from tests.api_client import SeededCloud
from tests.dashboard.conftest import sign_in
from tests.identity import factories

pytestmark = pytest.mark.django_db
D = "/dashboard/volumes"


def client_for(name: str) -> Client:
    client = Client()
    assert sign_in(client, name, factories.PASSWORD).status_code == 302
    return client


def _volumes(cloud: SeededCloud, count: int, *, prefix: str = "v") -> list[Volume]:
    identity_services.quota_set(actor=cloud.admin_actor, project_id=cloud.demo_project.id,
                                limits={"volumes": 100, "gigabytes": 1000})
    made = []
    for i in range(count):
        volume = services.volume_create(actor=cloud.member_actor, size=1 + i % 3, name=f"{prefix}{i:02d}")
        services.volume_created(volume_id=volume.id)
        made.append(volume)
    return made


def _names(html: str) -> list[str]:
    return re.findall(r'<tr data-id="[^"]+" data-name="([^"]*)"', html)


def test_sorting_paging_and_filtering_go_through_the_selector(cloud: SeededCloud) -> None:
    _volumes(cloud, 30)
    alice = client_for("alice")
    html = alice.get(f"{D}/?sort=name&dir=asc").content.decode()
    assert _names(html) == [f"v{i:02d}" for i in range(25)]
    assert 'aria-sort="ascending"' in html and 'data-page="next"' in html and 'data-page="previous"' not in html
    next_link = re.search(r'href="([^"]+)" data-table-nav data-page="next"', html).group(1).replace("&amp;", "&")
    second = alice.get(next_link).content.decode()
    assert _names(second) == [f"v{i:02d}" for i in range(25, 30)]
    assert 'data-page="next"' not in second and 'data-page="previous"' in second
    back = re.search(r'href="([^"]+)" data-table-nav data-page="previous"', second).group(1).replace("&amp;", "&")
    assert _names(alice.get(back).content.decode()) == [f"v{i:02d}" for i in range(25)]
    # descending by size, then the id; the partial is the table alone
    part = alice.get(f"{D}/?sort=size&dir=desc&partial=1").content.decode()
    assert "<html" not in part and 'id="volumes-table"' in part and len(_names(part)) == 25
    sizes = [int(s) for s in re.findall(r"<td>(\d+) GiB</td>", part)]
    assert sizes == sorted(sizes, reverse=True)
    # the filter is Cinder's name~; an unknown sort key is the default order; a gone marker the first page
    assert sorted(_names(alice.get(f"{D}/?q=v1").content.decode())) == [f"v{i}" for i in range(10, 20)]
    assert len(_names(alice.get(f"{D}/?sort=nope").content.decode())) == 25
    assert _names(alice.get(f"{D}/?sort=name&dir=asc&marker=gone").content.decode())[0] == "v00"
    assert "Nothing matches" in alice.get(f"{D}/?q=zzz").content.decode()


def test_bulk_action_is_one_call_per_row_each_with_its_outcome(cloud: SeededCloud) -> None:
    volumes = _volumes(cloud, 3)
    busy = volumes[2]
    services.volume_extend(actor=cloud.member_actor, volume_id=busy.id, new_size=5)  # extending: refused
    alice = client_for("alice")
    answer = alice.post(f"{D}/act", {"action": "delete", "ids": [v.id for v in volumes] + ["nope"]},
                        HTTP_ACCEPT="application/json")
    assert answer.status_code == 200, answer.content[:300]
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert [results[v.id]["ok"] for v in volumes] == [True, True, False]
    assert results[volumes[0].id]["message"] == "Deleting volume v00."
    assert "nope" in results["nope"]["message"] and not results["nope"]["ok"]
    assert {v.status for v in Volume.objects.filter(pk__in=[volumes[0].id, volumes[1].id])} == {states.DELETING}
    assert Volume.objects.get(pk=busy.id).status == states.EXTENDING
    # without the script: a message per row, back to the table
    other = _volumes(cloud, 1, prefix="w")[0]
    page = alice.post(f"{D}/act", {"action": "delete", "ids": [other.id], "next": f"{D}/?sort=name"}, follow=True)
    assert page.redirect_chain[-1][0] == f"{D}/?sort=name" and "Deleting volume w00." in page.content.decode()
    # an action the table does not have; a reader's rows are each refused
    assert alice.post(f"{D}/act", {"action": "drop", "ids": [other.id]},
                      HTTP_ACCEPT="application/json").status_code == 400
    rita = client_for("rita")
    refused = json.loads(rita.post(f"{D}/act", {"action": "delete", "ids": [busy.id]},
                                   HTTP_ACCEPT="application/json").content)["results"]
    assert refused[0]["ok"] is False
    html = rita.get(f"{D}/").content.decode()
    assert 'data-bulk-action="delete"' in html and 'data-select aria-label' not in html  # nothing selectable


def test_row_button_and_bulk_bar_render(cloud: SeededCloud) -> None:
    volume = _volumes(cloud, 1)[0]
    html = client_for("alice").get(f"{D}/").content.decode()
    assert f'name="ids" value="{volume.id}" form="volumes-bulk"' in html
    assert 'data-confirm="Delete volume v00?"' in html and 'action="/dashboard/volumes/act"' in html
    assert 'data-live="volume"' in html and "partial=1" in html


