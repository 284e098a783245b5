"""The admins' flavor page: what Nova lets change of a flavor once created (its description, extra
specs, the projects of a private one; never its name or sizes), through the compute services; bad input
is a clear error on the form and changes nothing; members get a 403 page."""
from __future__ import annotations

import pytest
from django.test import Client

from apps.compute import services
from apps.compute.forms import ExtraSpecForm
from apps.compute.models import Flavor, FlavorAccess, FlavorExtraSpec
from apps.core.errors import BadRequest, Forbidden
from apps.identity import services as identity_services
from tests.api_client import SeededCloud
from tests.dashboard.conftest import signed_in
from tests.identity import factories

pytestmark = pytest.mark.django_db
F = "/dashboard/compute/flavors"


@pytest.fixture
def admin(cloud: SeededCloud) -> Client:
    return signed_in("admin", "admin-pw")


def test_description_edit_keeps_the_sizes(admin: Client) -> None:
    page = admin.get(f"{F}/1/")
    html = page.content.decode()
    assert page.status_code == 200 and "m1.tiny" in html and 'id="flavor-edit-form"' in html
    assert 'href="/dashboard/compute/flavors/1/"' in admin.get(f"{F}/").content.decode()
    response = admin.post(f"{F}/1/edit", {"description": "the smallest", "name": "renamed", "vcpus": 64})
    assert response.status_code == 302 and response["Location"] == f"{F}/1/"
    flavor = Flavor.objects.get(flavorid="1")
    assert (flavor.description, flavor.name, flavor.vcpus) == ("the smallest", "m1.tiny", 1)
    assert "the smallest" in admin.get(f"{F}/1/").content.decode()
    too_long = admin.post(f"{F}/1/edit", {"description": "x" * 65536})
    assert too_long.status_code == 400 and "at most 65535 characters" in too_long.content.decode()
    assert Flavor.objects.get(flavorid="1").description == "the smallest"


def test_extra_specs_set_and_delete(admin: Client) -> None:
    assert admin.post(f"{F}/1/specs", {"key": "hw:cpu_policy", "value": "dedicated"}).status_code == 302
    assert admin.post(f"{F}/1/specs", {"key": "hw:cpu_policy", "value": "shared"}).status_code == 302
    assert dict(FlavorExtraSpec.objects.filter(flavor__flavorid="1").values_list("key", "value")) == {
        "hw:cpu_policy": "shared"}
    page = admin.get(f"{F}/1/").content.decode()
    assert 'data-key="hw:cpu_policy"' in page and "shared" in page
    bad = admin.post(f"{F}/1/specs", {"key": "bad key!", "value": "x"})
    assert bad.status_code == 400 and "letters, digits" in bad.content.decode()
    empty = admin.post(f"{F}/1/specs", {"key": "hw:mem_page_size", "value": ""})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    assert FlavorExtraSpec.objects.filter(flavor__flavorid="1").count() == 1
    assert admin.post(f"{F}/1/specs/hw:cpu_policy/delete").status_code == 302
    assert not FlavorExtraSpec.objects.filter(flavor__flavorid="1").exists()
    assert admin.post(f"{F}/1/specs/hw:cpu_policy/delete").status_code == 404


def test_the_service_checks_a_key_too(cloud: SeededCloud) -> None:
    with pytest.raises(BadRequest, match="Invalid extra spec key"):
        services.flavor_extra_specs_set(actor=cloud.admin_actor, flavor_id="1", specs={"a b": "c"})
    assert not ExtraSpecForm({"key": "x" * 256, "value": "v"}).is_valid()


def test_private_flavor_access(cloud: SeededCloud, admin: Client) -> None:
    actor, other = cloud.admin_actor, cloud.other_project
    flavor = services.flavor_create(actor=actor, name="private", ram=64, vcpus=1, disk=1, is_public=False)
    url = f"{F}/{flavor.flavorid}"
    page = admin.get(url + "/").content.decode()
    assert "No project yet" in page and f'<option value="{other.id}">other</option>' in page
    assert admin.post(url + "/access/add", {"project": other.id}).status_code == 302
    assert FlavorAccess.objects.filter(flavor=flavor, project_id=other.id).exists()
    page = admin.get(url + "/").content.decode()
    assert f'data-project="{other.id}"' in page and f'<option value="{other.id}">' not in page
    unknown = admin.post(url + "/access/add", {"project": "nope"})
    assert unknown.status_code == 400 and "Select a valid choice" in unknown.content.decode()
    assert admin.post(f"{url}/access/{other.id}/remove").status_code == 302
    assert not FlavorAccess.objects.filter(flavor=flavor).exists()
    assert 'id="flavor-access"' not in admin.get(f"{F}/1/").content.decode()  # a public flavor has no list


def test_members_get_a_403_page_and_change_nothing(cloud: SeededCloud) -> None:
    demo = signed_in("demo", "demo-pw")
    assert demo.get(f"{F}/1/").status_code == 403
    assert demo.post(f"{F}/1/edit", {"description": "mine"}).status_code == 403
    assert demo.post(f"{F}/1/specs", {"key": "k", "value": "v"}).status_code == 403
    assert Flavor.objects.get(flavorid="1").description == ""
    assert not FlavorExtraSpec.objects.exists()
    _, member = identity_services.token_issue(auth=factories.password_auth("demo", "demo-pw", project="demo"))
    with pytest.raises(Forbidden):
        services.flavor_update(actor=member, flavor_id="1", description="x")
