"""The volume forms of the dashboard (issue 11, item 6): the admins' Volume types panel (list, create,
edit, extra specs, delete), the type chosen when a volume is created, and a volume's edit form (name,
description, bootable), all through the volumes services; members and another project get 403/404."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.volumes import selectors, services
from apps.volumes.models import Volume, VolumeType
from tests.api_client import SeededCloud
from tests.volumes.test_dashboard import available, client_for, messages_of

pytestmark = pytest.mark.django_db
D = "/dashboard/volumes"


def admin() -> Client:
    return client_for("admin", "admin-pw")


def test_volume_types_panel(cloud: SeededCloud) -> None:
    root = admin()
    page = root.get(f"{D}/types/")
    assert page.status_code == 200 and VolumeType.DEFAULT_NAME.encode() in page.content
    # a form error (no name) is the form's, nothing is made
    assert root.post(f"{D}/types/create", {"name": ""}).status_code == 400
    made = root.post(f"{D}/types/create", {"name": "fast", "description": "SSD", "is_public": "on"}, follow=True)
    vtype = VolumeType.objects.get(name="fast")
    assert made.redirect_chain[-1][0] == f"{D}/types/{vtype.id}/"
    assert "Created volume type fast." in messages_of(made)
    assert vtype.description == "SSD" and vtype.is_public
    # the service's refusal (a name taken) on the form
    taken = root.post(f"{D}/types/create", {"name": "fast"})
    assert taken.status_code == 400 and b"Volume Type fast already exists." in taken.content
    # extra specs: set, overwrite, delete (what the API reads)
    assert root.post(f"{D}/types/{vtype.id}/specs", {"key": "volume_backend_name", "value": "file"}).status_code == 302
    assert root.post(f"{D}/types/{vtype.id}/specs", {"key": "tier", "value": "gold"}).status_code == 302
    assert root.post(f"{D}/types/{vtype.id}/specs", {"key": "tier", "value": "silver"}).status_code == 302
    assert cloud.admin.get(f"types/{vtype.id}/extra_specs").json() == {
        "extra_specs": {"volume_backend_name": "file", "tier": "silver"}}
    detail = root.get(f"{D}/types/{vtype.id}/").content.decode()
    assert 'data-key="tier"' in detail and "silver" in detail and "data-confirm=\"Delete extra spec tier" in detail
    assert root.post(f"{D}/types/{vtype.id}/specs/tier/delete").status_code == 302
    assert VolumeType.objects.get(pk=vtype.id).extra_specs == {"volume_backend_name": "file"}
    gone = root.post(f"{D}/types/{vtype.id}/specs/tier/delete", follow=True)
    assert "has no extra specs with key tier" in messages_of(gone)
    # edit: name, description, visibility
    assert root.post(f"{D}/types/{vtype.id}/edit", {"name": "faster", "description": ""}).status_code == 302
    vtype.refresh_from_db()
    assert (vtype.name, vtype.description, vtype.is_public) == ("faster", None, False)
    # members: 403 pages, nothing changes
    alice = client_for("alice")
    assert alice.get(f"{D}/types/").status_code == 403
    assert alice.get(f"{D}/types/{vtype.id}/").status_code in (403, 404)
    assert alice.post(f"{D}/types/create", {"name": "mine"}).status_code == 403
    assert alice.post(f"{D}/types/{vtype.id}/specs", {"key": "k", "value": "v"}).status_code in (403, 404)
    assert alice.post(f"{D}/types/{vtype.id}/delete").status_code in (403, 404)
    assert not VolumeType.objects.filter(name="mine").exists() and "k" not in VolumeType.objects.get(
        pk=vtype.id).extra_specs
    # delete: not the default type, not one in use
    default = services.volume_type_default()
    refused = root.post(f"{D}/types/{default.id}/delete", follow=True)
    assert "Default volume type can not be deleted." in messages_of(refused)
    assert root.post(f"{D}/types/{vtype.id}/delete").status_code == 302
    assert not VolumeType.objects.filter(pk=vtype.id).exists()


def test_a_member_picks_a_type_when_creating_a_volume(cloud: SeededCloud) -> None:
    gold = services.volume_type_create(actor=cloud.admin_actor, name="gold")
    hidden = services.volume_type_create(actor=cloud.admin_actor, name="hidden", is_public=False)
    alice = client_for("alice")
    form = alice.get(f"{D}/").content.decode()
    assert f'value="{gold.id}"' in form and hidden.id not in form  # a private type is not offered
    assert alice.post(f"{D}/create", {"name": "typed", "size": "1", "volume_type": gold.id}).status_code == 302
    volume = Volume.objects.get(name="typed")
    assert volume.volume_type_id == gold.id
    assert alice.post(f"{D}/create", {"name": "plain", "size": "1"}).status_code == 302
    assert Volume.objects.get(name="plain").volume_type.name == VolumeType.DEFAULT_NAME
    # the type in use: the admins' list counts it and offers no delete button for it
    root = admin()
    listing = root.get(f"{D}/types/").content.decode()
    row = re.search(rf'<tr data-id="{gold.id}".*?</tr>', listing, re.S).group(0)  # type: ignore[union-attr]
    assert "<td>1</td>" in row and 'data-action="delete"' not in row
    refused = root.post(f"{D}/types/{gold.id}/delete", follow=True)
    assert "is still in use" in messages_of(refused)
    assert selectors.volume_type_usage(actor=cloud.admin_actor)[gold.id] == 1


def test_volume_edit(cloud: SeededCloud) -> None:
    volume = available(cloud.member_actor, "before")
    alice = client_for("alice")
    page = alice.get(f"{D}/{volume.id}/")
    assert f'href="{D}/{volume.id}/edit"' in page.content.decode()
    form = alice.get(f"{D}/{volume.id}/edit")
    assert form.status_code == 200 and b'value="before"' in form.content
    saved = alice.post(f"{D}/{volume.id}/edit", {"name": "after", "description": "data disk", "bootable": "on"},
                       follow=True)
    assert saved.redirect_chain[-1][0] == f"{D}/{volume.id}/" and "Saved volume after." in messages_of(saved)
    volume.refresh_from_db()
    assert (volume.name, volume.description, volume.bootable) == ("after", "data disk", True)
    body = cloud.member.get(f"volumes/{volume.id}").json()["volume"]
    assert (body["name"], body["description"], body["bootable"]) == ("after", "data disk", "true")
    assert alice.post(f"{D}/{volume.id}/edit", {"name": "after", "description": ""}).status_code == 302
    volume.refresh_from_db()
    assert volume.bootable is False and volume.description is None
    # too long a name is the form's error
    assert alice.post(f"{D}/{volume.id}/edit", {"name": "x" * 256}).status_code == 400
    # a reader: 403; another project: 404; nothing changes
    assert client_for("rita").post(f"{D}/{volume.id}/edit", {"name": "r"}).status_code == 403
    olga = client_for("olga")
    assert olga.get(f"{D}/{volume.id}/edit").status_code == 404
    assert olga.post(f"{D}/{volume.id}/edit", {"name": "o"}).status_code == 404
    assert Volume.objects.get(pk=volume.id).name == "after"
