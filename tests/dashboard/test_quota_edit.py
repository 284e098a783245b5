"""Admin quota editing (issue 11, item 6): Identity > Projects > Quotas shows every registered resource in
the overview's groups with its readable name, unit and usage; what is changed goes through identity's
quota_set (its refusals shown on the form), and a member reaches none of it."""
from __future__ import annotations

import re

import pytest
from django.db import transaction
from django.test import Client

from apps.identity import quotas, selectors, services
from apps.identity.models import QuotaLimit
from tests.api_client import SeededCloud


def _url(cloud: SeededCloud) -> str:
    return f"/dashboard/identity/projects/{cloud.demo_project.id}/quotas"


def _values(html: str) -> dict[str, str]:
    """{resource: the value its field shows}."""
    return dict(re.findall(r'<input type="text" name="(\w+)" value="([^"]*)"', html))


def test_limits_are_typed_and_read_in_their_units() -> None:
    assert quotas.exact_amount(51200, "MiB") == "50 GiB"
    assert quotas.exact_amount(1500, "MiB") == "1500 MiB"  # whole in MiB only: never rounded
    assert quotas.exact_amount(1 << 40, "bytes") == "1 TiB"
    assert quotas.exact_amount(-1, "GiB") == "unlimited"
    assert quotas.exact_amount(10) == "10"
    for value, unit in ((51200, "MiB"), (1500, "MiB"), (1 << 40, "bytes"), (1536, "bytes"), (1000, "GiB"),
                        (0, "MiB"), (-1, "bytes"), (7, "count")):
        assert quotas.parse_amount(quotas.exact_amount(value, unit), unit) == value
    assert quotas.parse_amount("64 GiB", "MiB") == 65536
    assert quotas.parse_amount("1.5 TiB", "bytes") == 3 << 39
    assert quotas.parse_amount("512", "MiB") == 512
    assert quotas.parse_amount("1,000", "count") == 1000
    assert quotas.parse_amount("Unlimited", "GiB") == quotas.parse_amount("-1", "count") == -1
    for text, unit in (("0.5", "GiB"), ("12 GiB", "count"), ("lots", "count"), ("3 PB", "GiB"), ("1.5", "count"),
                       ("1" * 40, "count")):
        with pytest.raises(ValueError):
            quotas.parse_amount(text, unit)


def test_the_form_shows_every_resource_by_group_with_names_units_and_usage(admin_client: Client,
                                                                          cloud: SeededCloud) -> None:
    with transaction.atomic():
        services.quota_reserve(project_id=cloud.demo_project.id, deltas={"ram": 2048, "instances": 1})
    response = admin_client.get(_url(cloud))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'<fieldset class="fieldset" data-group="(\w+)"', html) == ["Compute", "Network", "Storage",
                                                                                     "Orchestration", "Telemetry"]
    values = _values(html)
    assert set(quotas.registered()) <= set(values)
    assert (values["instances"], values["ram"], values["image_bytes"], values["gigabytes"]) == \
        ("10", "50 GiB", "1 TiB", "1000 GiB")
    assert values["fixed_ips"] == "unlimited"
    assert ">RAM (MiB)</label>" in html and ">Floating IPs</label>" in html and ">Image storage (bytes)</label>" in html
    assert "2 GiB in use" in html and "Floatingip" not in html
    compute = html.split('data-group="Compute"')[1].split("</fieldset>")[0]
    assert compute.index('name="instances"') < compute.index('name="cores"') < compute.index('name="ram"') \
        < compute.index('name="key_pairs"')
    projects = admin_client.get("/dashboard/identity/projects").content.decode()
    assert f'href="{_url(cloud)}"' in projects


def test_saving_writes_only_the_changed_limits_through_the_service(admin_client: Client,
                                                                   cloud: SeededCloud) -> None:
    demo = cloud.demo_project
    data = _values(admin_client.get(_url(cloud)).content.decode())
    data.update(instances="17", ram="64 GiB", floatingip="unlimited", image_bytes="1 GiB")
    response = admin_client.post(_url(cloud), data)
    assert response.status_code == 302 and response["Location"] == "/dashboard/identity/projects"
    limits = selectors.quota_limits(project=demo)
    assert (limits["instances"], limits["ram"], limits["floatingip"], limits["image_bytes"]) == (17, 65536, -1, 1 << 30)
    own = dict(QuotaLimit.objects.filter(project=demo).values_list("resource", "hard_limit"))
    assert own == {"instances": 17, "ram": 65536, "floatingip": -1, "image_bytes": 1 << 30}
    page = admin_client.get("/dashboard/identity/projects").content.decode()
    assert "Saved the quotas of project demo." in page
    assert _values(admin_client.get(_url(cloud)).content.decode())["ram"] == "64 GiB"


def test_the_services_refusals_and_bad_figures_show_on_the_form(admin_client: Client, cloud: SeededCloud) -> None:
    demo = cloud.demo_project
    with transaction.atomic():
        services.quota_reserve(project_id=demo.id, deltas={"instances": 3})
    data = _values(admin_client.get(_url(cloud)).content.decode())
    response = admin_client.post(_url(cloud), {**data, "instances": "2", "cores": "40"})
    assert response.status_code == 400
    assert b"must be greater than or equal to the 3 already used" in response.content
    response = admin_client.post(_url(cloud), {**data, "ram": "0.5 MiB", "cores": "lots", "volumes": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert "This limit counts whole MiB" in html and "Enter a whole number, or -1 for unlimited." in html
    assert "This field is required." in html and 'value="lots"' in html
    response = admin_client.post(_url(cloud), {**data, "cores": "-7"})
    assert response.status_code == 400 and b"must be -1 (unlimited) or more" in response.content
    assert not QuotaLimit.objects.filter(project=demo).exists()


def test_a_member_cannot_see_or_set_quotas(demo_client: Client, cloud: SeededCloud) -> None:
    url = _url(cloud)
    assert demo_client.get(url).status_code == 403
    assert demo_client.post(url, {"instances": "1000"}).status_code == 403
    assert not QuotaLimit.objects.filter(project=cloud.demo_project).exists()
    assert "/quotas" not in demo_client.get("/dashboard/").content.decode().split('id="content"')[0]


def test_an_unknown_project_is_a_404(admin_client: Client) -> None:
    assert admin_client.get("/dashboard/identity/projects/nope/quotas").status_code == 404
