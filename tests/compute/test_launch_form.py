"""The launch form's boot sources (image; image on a new volume with its size and delete-on-terminate;
volume; volume snapshot), server group, config drive, metadata rows and the inline key pair: what the form
gives ``server_create`` (the same typed arguments as the Nova API's parser), what the instances get, the
clear errors of bad input, and that another project's volumes, snapshots, server groups and key pairs
never appear nor may be named."""
from __future__ import annotations

import re
import secrets
from typing import Any

import pytest
from django.http import QueryDict

from apps.compute import services as compute_services
from apps.compute.block_devices import block_device
from apps.compute.forms import LaunchForm
from apps.compute.models import BlockDeviceMapping, Instance, KeyPair
from apps.volumes import services as volume_services
from apps.volumes.models import Volume
from tests.compute.test_dashboard_instances import D, client_for, messages_of
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=False)

CHOICES: dict[str, Any] = {
    "images": [("img", "cirros")], "flavors": [("1", "m1.tiny")], "networks": [("net", "private")],
    "security_groups": [("sg", "default")], "keypairs": [("mine", "mine")], "zones": [("nova", "nova")],
    "volumes": [("vol", "boot (1 GiB)")], "snapshots": [("snap", "s (1 GiB, of volume boot)")],
    "server_groups": [("grp", "spread (anti-affinity)")],
}


def _form(**data: Any) -> LaunchForm:
    query = QueryDict(mutable=True)
    for key, value in {"name": "vm", "count": "1", "flavor": "1", "source": "image", **data}.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    return LaunchForm(query, **CHOICES)


@pytest.mark.parametrize(("data", "image_ref", "device"), [
    ({"source": "image", "image": "img"}, "img", None),
    ({"source": "image_volume", "image": "img", "volume_size": "3", "delete_on_termination": "on"}, "",
     {"source_type": "image", "destination_type": "volume", "uuid": "img", "boot_index": 0, "volume_size": 3,
      "delete_on_termination": True}),
    ({"source": "volume", "volume": "vol", "volume_size": "9"}, "",
     {"source_type": "volume", "destination_type": "volume", "uuid": "vol", "boot_index": 0,
      "delete_on_termination": False}),
    ({"source": "snapshot", "snapshot": "snap"}, "",
     {"source_type": "snapshot", "destination_type": "volume", "uuid": "snap", "boot_index": 0,
      "delete_on_termination": False}),
])
def test_each_boot_source_gives_the_service_its_arguments(data: dict, image_ref: str, device: dict | None) -> None:
    """The same typed values as the Nova API's parser reads from the same mapping in a request body."""
    form = _form(**data)
    assert form.is_valid(), form.errors
    kwargs = form.server_kwargs()
    assert kwargs["image_ref"] == image_ref
    assert kwargs["block_devices"] == ([] if device is None else [block_device(device)])


def test_server_group_config_drive_and_metadata_rows() -> None:
    form = _form(image="img", server_group="grp", config_drive="on", metadata_key=["role", "", " tier "],
                 metadata_value=["web", "", " front "])
    assert form.is_valid(), form.errors
    kwargs = form.server_kwargs()
    assert (kwargs["group_id"], kwargs["config_drive"]) == ("grp", True)
    assert kwargs["metadata"] == {"role": "web", "tier": "front"}


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"source": "image"}, "image", "Choose the image to boot from."),
    ({"source": "image_volume", "image": "img"}, "volume_size", "Give the size of the new volume."),
    ({"source": "image_volume", "image": "img", "volume_size": "0"}, "volume_size", "greater than or equal to 1"),
    ({"source": "volume"}, "volume", "Choose the volume to boot from."),
    ({"source": "snapshot"}, "snapshot", "Choose the volume snapshot to boot from."),
    ({"source": "volume", "volume": "someone-elses"}, "volume", "Select a valid choice"),
    ({"source": "floppy"}, "source", "Select a valid choice"),
    ({"source": ""}, "source", "This field is required"),
    ({"image": "img", "server_group": "theirs"}, "server_group", "Select a valid choice"),
    ({"image": "img", "metadata_key": ["", "a"], "metadata_value": ["orphan", "1"]}, "metadata", "has no key"),
    ({"image": "img", "metadata_key": ["a", "a"], "metadata_value": ["1", "2"]}, "metadata", "given twice"),
    ({"image": "img", "metadata_key": ["k"], "metadata_value": ["v" * 256]}, "metadata", "longer than 255"),
])
def test_bad_input_is_a_clear_error(data: dict, field: str, message: str) -> None:
    form = _form(**data)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


# ---- through the page, on real rows --------------------------------------------------------------------

def _storage(env: Env, tmp_path: Any) -> None:
    root = tmp_path / "volumes"
    root.mkdir()
    volume_services.backend_report(host=f"store-{secrets.token_hex(3)}", capacity_gb=100, free_gb=100, path=str(root))


def _available_volume(actor: Any, name: str, *, bootable: bool = True) -> Volume:
    volume = volume_services.volume_create(actor=actor, size=1, name=name, bootable=bootable)
    volume_services.volume_created(volume_id=volume.id)
    return Volume.objects.get(pk=volume.id)


def _launch_data(env: Env, **extra: Any) -> dict[str, Any]:
    html = client_for("alice").get(D + "/instances/launch").content.decode()
    group = re.search(r'<input[^>]*name="security_groups" value="([^"]+)"[^>]*checked', html)
    assert group
    return {"name": "vm", "count": "1", "source": "image", "flavor": env.tiny.flavorid, "networks": [env.network.id],
            "security_groups": [group.group(1)], **extra}


def test_the_page_offers_only_the_projects_own(env: Env, tmp_path: Any) -> None:
    _storage(env, tmp_path)
    cloud = env.cloud
    boot = _available_volume(cloud.member_actor, "boot-vol")
    _available_volume(cloud.member_actor, "data-vol", bootable=False)
    snap = volume_services.snapshot_create(actor=cloud.member_actor, volume_id=boot.id, name="boot-snap")
    volume_services.snapshot_created(snapshot_id=snap.id)
    group = compute_services.server_group_create(actor=cloud.member_actor, name="spread", policy="anti-affinity")
    theirs_vol = _available_volume(cloud.other_actor, "their-vol")
    theirs_group = compute_services.server_group_create(actor=cloud.other_actor, name="their-group",
                                                        policy="affinity")
    compute_services.keypair_create(actor=cloud.other_actor, name="their-key")

    alice = client_for("alice")
    html = alice.get(D + "/instances/launch").content.decode()
    assert f'<option value="{boot.id}">boot-vol (1 GiB)</option>' in html
    assert "data-vol" not in html  # not bootable
    assert f'<option value="{snap.id}">boot-snap (1 GiB, of volume boot-vol)</option>' in html
    assert f'<option value="{group.id}">spread (anti-affinity)</option>' in html
    for foreign in (theirs_vol.id, "their-vol", theirs_group.id, "their-group", "their-key"):
        assert foreign not in html, foreign
    for field, value in (("volume", theirs_vol.id), ("server_group", theirs_group.id)):
        data = {**_launch_data(env, source="volume", volume=boot.id), field: value}
        refused = alice.post(D + "/instances/launch", data)
        assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()
    assert not Instance.objects.exists()


def test_boot_from_a_new_volume_with_group_config_drive_and_metadata(env: Env, tmp_path: Any) -> None:
    _storage(env, tmp_path)
    group = compute_services.server_group_create(actor=env.cloud.member_actor, name="spread", policy="anti-affinity")
    alice = client_for("alice")
    data = _launch_data(env, name="bfv", source="image_volume", image=env.image.id, volume_size="2",
                        delete_on_termination="on", server_group=group.id, config_drive="on",
                        metadata_key=["role", ""], metadata_value=["web", ""])
    response = alice.post(D + "/instances/launch", data, follow=True)
    assert "Launched 1 instance: bfv" in messages_of(response), response.content.decode()[:3000]
    instance = Instance.objects.get(name="bfv")
    assert (instance.image_id or "") == "" and instance.config_drive is True
    assert instance.server_group_id == group.id and instance.metadata == {"role": "web"}
    root = BlockDeviceMapping.objects.get(instance=instance)
    assert (root.boot_index, root.source_type, root.image_id, root.volume_size, root.delete_on_termination) == (
        0, "image", env.image.id, 2, True)
    volume = Volume.objects.get(pk=root.volume_id)
    assert (volume.size, volume.project_id, volume.image_id) == (2, env.cloud.demo_project.id, env.image.id)


def test_boot_from_a_volume_and_refusals_on_the_form(env: Env, tmp_path: Any) -> None:
    _storage(env, tmp_path)
    boot = _available_volume(env.cloud.member_actor, "boot-vol")
    alice = client_for("alice")
    response = alice.post(D + "/instances/launch", _launch_data(env, name="fromvol", source="volume", volume=boot.id),
                          follow=True)
    assert "Launched 1 instance: fromvol" in messages_of(response)
    root = BlockDeviceMapping.objects.get(instance__name="fromvol")
    assert (root.volume_id, root.boot_index, root.delete_on_termination) == (boot.id, 0, False)
    # a new volume smaller than the flavor's... or the image's: the service's refusal is shown, nothing made
    missing = alice.post(D + "/instances/launch", _launch_data(env, name="nosize", source="image_volume",
                                                               image=env.image.id))
    assert missing.status_code == 400 and "Give the size of the new volume." in missing.content.decode()
    assert not Instance.objects.filter(name="nosize").exists()


def test_key_pair_made_inline_keeps_the_form_and_offers_the_key_once(env: Env) -> None:
    alice = client_for("alice")
    data = _launch_data(env, name="typed-name", image=env.image.id, new_key_name="inline-key", create_keypair="1",
                        metadata_key=["role"], metadata_value=["db"])
    response = alice.post(D + "/instances/launch", data)
    html = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    keypair = KeyPair.objects.get(name="inline-key")
    assert "PRIVATE KEY" not in keypair.public_key
    assert 'download="inline-key.pem"' in html and "BEGIN RSA PRIVATE KEY" in html
    assert re.search(r'<option value="inline-key" selected>inline-key</option>', html)
    assert 'value="typed-name"' in html and 'value="role"' in html and 'value="db"' in html
    assert 'class="field-error"' not in html and not Instance.objects.exists()  # nothing launched, no errors
    again = alice.post(D + "/instances/launch", data)
    assert again.status_code == 400 and "already exists" in again.content.decode()
    assert 'id="keypair-error"' in again.content.decode() and "BEGIN RSA" not in again.content.decode()
    unnamed = alice.post(D + "/instances/launch", {**data, "new_key_name": ""})
    assert unnamed.status_code == 400 and "Name the new key pair." in unnamed.content.decode()
    # then launch with it
    launched = alice.post(D + "/instances/launch", {**_launch_data(env, name="withkey", image=env.image.id),
                                                    "key_name": "inline-key"}, follow=True)
    assert "Launched 1 instance: withkey" in messages_of(launched)
    assert Instance.objects.get(name="withkey").key_name == "inline-key"
