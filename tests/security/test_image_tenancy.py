"""Images of one project never serve another's server, and the image properties that Nova writes
are Nova's alone.

- kernel_id / ramdisk_id: a boot image's properties name the kernel and ramdisk of a direct kernel
  boot. The node loaded them by id with no visibility check, so a tenant booted (and could then
  read back through its guest) ANOTHER project's private image. Every image a server uses must be
  readable by the server's project: checked at create and rebuild (400 "could not be found", as
  for any image the caller cannot see), and the node loads them only through
  ``images.selectors.image_get_for_project`` (a spawn with such a property faults).
- Reserved properties (``instance_uuid``, ``block_device_mapping``, ``bdm_v2``, ``root_device_name``,
  ``image_type``, ``base_image_ref``, ``owner_id``, ``user_id``, ...) are written by the compute
  services only: a user cannot set them on image create or update (Glance's 403 "reserved"), nor
  through createImage's metadata, and a snapshot does not inherit them from its base image. Before,
  a crafted image (instance_uuid = the tenant's own server, a block_device_mapping naming the
  VICTIM's volume snapshot) made the server's failed createImage cleanup delete the victim's
  snapshot under an admin service identity. The cleanup now deletes only snapshots of the server's
  own volumes, as a member of the server's project.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from apps.compute import states
from apps.compute.models import BlockDeviceMapping, Instance
from apps.compute.services.server_rebuild_resize import server_rebuild
from apps.compute.services.server_reports import server_spawned, server_task_failed
from apps.compute.services.server_snapshots import server_image_create
from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.images import selectors as image_selectors
from apps.images import services as image_services
from apps.images.models import Image
from tests.api_client import SeededCloud
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from tests.workers.compute.conftest import (  # noqa: F401
    make_instance,
    make_qcow2,
    needs_tools,
    node,
    server_spec,
    upload_image,
)
from workers import compute
from workers.drivers.hypervisor.layout import InstanceLayout


@pytest.fixture
def cloud_api() -> str:
    return "compute"


def build(inst, image_id):
    """build_domain of ``inst`` booting ``image_id``, with the spec the services would send."""
    return compute.build_domain(server_spec(inst.id, "rebuild", image_id),
                                InstanceLayout(compute.instances_path(), inst.id), [])


def _kernel(actor: Any, name: str = "vmlinuz", **data: Any) -> Image:
    return upload_image(actor, b"\x7fELF kernel of " + name.encode() * 64, disk_format="aki", name=name, **data)


def _root_naming(cloud: SeededCloud, tmp_path: Path, **parts: str) -> Image:
    """The caller's own boot image whose properties name ``parts`` (kernel_id / ramdisk_id)."""
    return upload_image(cloud.member_actor, make_qcow2(tmp_path / "root.qcow2"), name="root", **parts)


def _spawned(instance: Any) -> Any:
    server_spawned(instance_id=instance.id, host=instance.host, power_state=states.RUNNING)
    return reload(instance)


# ---- kernel_id / ramdisk_id ----------------------------------------------------------------------

@pytest.mark.parametrize("part", ["kernel_id", "ramdisk_id"])
@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_another_projects_private_kernel_is_refused_at_create(env: Env, tmp_path: Path, part: str,
                                                              visibility: str) -> None:
    secret = _kernel(env.cloud.other_actor, "secret", visibility=visibility)
    root = _root_naming(env.cloud, tmp_path, **{part: secret.id})
    with pytest.raises(BadRequest, match=f"Image {secret.id} could not be found"):
        env.boot(image_ref=root.id)
    assert not Instance.objects.filter(project_id=env.cloud.demo_project.id).exists()


def test_the_api_answers_400_for_a_foreign_kernel(env: Env, tmp_path: Path) -> None:
    secret = _kernel(env.cloud.other_actor, "secret", visibility="private")
    root = _root_naming(env.cloud, tmp_path, kernel_id=secret.id)
    response = Client().post("/compute/v2.1/servers", data=json.dumps({"server": {
        "name": "vm", "imageRef": root.id, "flavorRef": env.tiny.flavorid, "networks": [{"uuid": env.network.id}]}}),
        content_type="application/json", HTTP_X_AUTH_TOKEN=env.cloud.member_token)
    assert response.status_code == 400, response.content[:400]
    assert response.json()["badRequest"]["message"] == f"Image {secret.id} could not be found."


def test_kernels_the_project_may_read_boot(env: Env, tmp_path: Path) -> None:
    own = _kernel(env.cloud.member_actor, "own")
    public = _kernel(env.cloud.admin_actor, "public", visibility="public")
    shared = _kernel(env.cloud.other_actor, "shared", visibility="shared")
    image_services.member_create(actor=env.cloud.other_actor, image_id=shared.id, member_id=env.cloud.demo_project.id)
    for kernel in (own, public, shared):
        root = _root_naming(env.cloud, tmp_path, kernel_id=kernel.id, ramdisk_id=own.id)
        assert env.boot(image_ref=root.id).image_id == root.id


def test_another_projects_private_kernel_is_refused_at_rebuild(env: Env, tmp_path: Path) -> None:
    instance = _spawned(env.boot())
    secret = _kernel(env.cloud.other_actor, "secret", visibility="private")
    root = _root_naming(env.cloud, tmp_path, kernel_id=secret.id)
    for actor in (env.cloud.member_actor, env.cloud.admin_actor):  # an admin rebuilds for the server's project
        with pytest.raises(BadRequest, match=f"Image {secret.id} could not be found"):
            server_rebuild(actor=actor, server_id=instance.id, image_ref=root.id, request_id="rb")
    assert reload(instance).image_id == env.image.id and reload(instance).task_state is None


def test_image_get_for_project_is_the_projects_view(cloud: SeededCloud, image_dir: Any) -> None:
    private = _kernel(cloud.other_actor, "private", visibility="private")
    mine = _kernel(cloud.member_actor, "mine", visibility="private")
    demo, other = cloud.demo_project.id, cloud.other_project.id
    assert image_selectors.image_get_for_project(project_id=demo, image_id=mine.id) == mine
    assert image_selectors.image_get_for_project(project_id=other, image_id=private.id) == private
    for project_id, image in ((demo, private), (other, mine)):
        with pytest.raises(NotFound):
            image_selectors.image_get_for_project(project_id=project_id, image_id=image.id)


@needs_tools
def test_the_node_never_loads_a_kernel_the_servers_project_cannot_read(cloud: SeededCloud, node: Any, tmp_path: Path,  # noqa: F811
                                                                       image_dir: Any) -> None:
    """Smuggled past the API (the property changed after the server was made): the spawn faults and
    no byte of the other project's image reaches the node."""
    secret = _kernel(cloud.other_actor, "secret", visibility="private")
    own = _kernel(cloud.member_actor, "own")
    root = _root_naming(cloud, tmp_path, kernel_id=own.id)
    inst = make_instance(cloud, node, root)
    Image.objects.filter(pk=root.pk).update(properties={**root.properties, "kernel_id": secret.id})
    with pytest.raises(compute.SpawnError, match=f"Image {secret.id} could not be found"):
        build(inst, root.id)
    assert not (node.cache / secret.id).exists()
    Image.objects.filter(pk=root.pk).update(properties={**root.properties, "kernel_id": own.id,
                                                        "ramdisk_id": secret.id})
    inst = make_instance(cloud, node, root, name="vm2")
    with pytest.raises(compute.SpawnError, match=f"Image {secret.id} could not be found"):
        build(inst, root.id)
    assert not (node.cache / secret.id).exists()


# ---- reserved properties -------------------------------------------------------------------------

RESERVED = ["instance_uuid", "block_device_mapping", "bdm_v2", "root_device_name", "image_type", "base_image_ref",
            "owner_id", "user_id", "image_location", "image_state", "boot_roles"]


@pytest.mark.parametrize("key", RESERVED)
def test_a_request_cannot_set_a_reserved_property_on_create(cloud: SeededCloud, image_dir: Any, key: str) -> None:
    for actor in (cloud.member_actor, cloud.admin_actor):
        with pytest.raises(Forbidden, match=f"Attribute '{key}' is reserved"):
            image_services.image_create(actor=actor, name="crafted", disk_format="raw", container_format="bare",
                                        properties={key: "x"})
    response = Client().post("/image/v2/images", data=json.dumps({"name": "crafted", key: "x"}),
                             content_type="application/json", HTTP_X_AUTH_TOKEN=cloud.member_token)
    assert response.status_code == 403, response.content[:300]
    assert not Image.objects.filter(name="crafted").exists()


@pytest.mark.parametrize("key", RESERVED)
def test_a_request_cannot_add_replace_or_remove_a_reserved_property(cloud: SeededCloud, image_dir: Any,
                                                                    key: str) -> None:
    image = image_services.image_create(actor=cloud.member_actor, name="plain")
    Image.objects.filter(pk=image.pk).update(properties={key: "set by nova"})  # as a snapshot has it
    for op in (image_services.PatchOperation("add", key, "x"), image_services.PatchOperation("replace", key, "x"),
               image_services.PatchOperation("remove", key)):
        with pytest.raises(Forbidden, match="reserved"):
            image_services.image_update(actor=cloud.member_actor, image_id=image.id, operations=[op])
    assert Image.objects.get(pk=image.pk).properties == {key: "set by nova"}
    response = Client().patch(f"/image/v2/images/{image.id}",
                              data=json.dumps([{"op": "add", "path": f"/{key}", "value": "x"}]),
                              content_type="application/openstack-images-v2.1-json-patch",
                              HTTP_X_AUTH_TOKEN=cloud.member_token)
    assert response.status_code == 403, response.content[:300]


def test_free_form_properties_stay_free(cloud: SeededCloud, image_dir: Any) -> None:
    image = image_services.image_create(actor=cloud.member_actor, name="ok", properties={
        "kernel_id": "k", "hw_disk_bus": "virtio", "owner_specified.openstack.sha256": "0" * 64})
    assert image.properties["hw_disk_bus"] == "virtio"
    with pytest.raises(BadRequest):  # service_properties take only the services' own keys
        image_services.image_create(actor=cloud.member_actor, name="x",
                                    service_properties={"hw_disk_bus": "ide"})


def test_create_image_metadata_cannot_carry_a_reserved_property(env: Env) -> None:
    instance = _spawned(env.boot())
    for key in ("block_device_mapping", "bdm_v2", "instance_uuid"):
        with pytest.raises(BadRequest, match=key):
            server_image_create(actor=env.cloud.member_actor, server_id=instance.id, name="snap",
                                metadata={key: "True"}, request_id="snap")
    assert reload(instance).task_state is None


def test_a_snapshot_does_not_inherit_the_services_properties_of_its_base(env: Env) -> None:
    base = Image.objects.get(pk=env.image.pk)
    crafted = {"block_device_mapping": "[]", "bdm_v2": "True", "root_device_name": "/dev/vda",
               "instance_uuid": "someone-else", "image_type": "snapshot", "os_glance_importing_to_stores": "x",
               "hw_disk_bus": "virtio"}
    Image.objects.filter(pk=base.pk).update(properties={**base.properties, **crafted})
    instance = _spawned(env.boot())
    image_id = server_image_create(actor=env.cloud.member_actor, server_id=instance.id, name="snap", request_id="snap")
    props = Image.objects.get(pk=image_id).properties
    assert props["hw_disk_bus"] == "virtio"  # what a snapshot keeps
    assert props["instance_uuid"] == instance.id and props["image_type"] == "snapshot"
    assert not {"block_device_mapping", "bdm_v2", "root_device_name", "os_glance_importing_to_stores"} & set(props)


def _victim_snapshot(cloud: SeededCloud) -> Any:
    from apps.volumes import services as volume_services
    from apps.volumes.models import Snapshot, StorageBackend, Volume

    backend, _ = StorageBackend.objects.get_or_create(host="storage-a", defaults={"capacity_gb": 100, "free_gb": 100})
    volume = Volume.objects.create(project=cloud.other_project, user_id=cloud.other_actor.user_id, size=1,
                                   status="available", volume_type=volume_services.volume_type_default(),
                                   backend=backend)
    return Snapshot.objects.create(project=cloud.other_project, user_id=cloud.other_actor.user_id, volume=volume,
                                   size=1, status="available", name="victim's backup")


def test_a_crafted_image_cannot_make_the_cleanup_delete_another_projects_snapshot(env: Env) -> None:
    """The attack end to end: the tenant's image names its own server and the victim's snapshot,
    then the tenant's createImage fails and Nova cleans up "its" snapshots."""
    from apps.volumes.models import Snapshot

    victim = _victim_snapshot(env.cloud)
    instance = _spawned(env.boot())
    crafted = {"instance_uuid": instance.id, "bdm_v2": "True",
               "block_device_mapping": json.dumps([{"source_type": "snapshot", "destination_type": "volume",
                                                    "snapshot_id": victim.id, "boot_index": 0}])}
    with pytest.raises(Forbidden):  # the API refuses the crafted image outright
        image_services.image_create(actor=env.cloud.member_actor, name="bait", properties=crafted)
    # one made before (or smuggled into the rows) is still harmless: the cleanup acts on the server's own
    Image.objects.create(name="bait", owner=env.cloud.demo_project.id, properties=crafted)
    server_image_create(actor=env.cloud.member_actor, server_id=instance.id, name="snap", request_id="snap")
    server_task_failed(instance_id=instance.id, host=instance.host, message="boom")
    victim = Snapshot.objects.get(pk=victim.pk)
    assert victim.status == "available"
    assert not Image.objects.filter(name="bait").exists()  # the tenant's own queued image goes, as before


def test_the_cleanup_still_drops_the_servers_own_snapshots(env: Env) -> None:
    from apps.compute.services import boot_volumes
    from apps.volumes import services as volume_services
    from apps.volumes.models import Snapshot, StorageBackend, Volume

    instance = _spawned(env.boot())
    backend, _ = StorageBackend.objects.get_or_create(host="storage-a", defaults={"capacity_gb": 100, "free_gb": 100})
    volume = Volume.objects.create(project=env.cloud.demo_project, user_id=env.cloud.member_actor.user_id, size=1,
                                   status="in-use", volume_type=volume_services.volume_type_default(),
                                   backend=backend)
    BlockDeviceMapping.objects.create(instance=instance, volume_id=volume.id, device_name="/dev/vdb",
                                      source_type="volume", volume_size=1, status="attached")
    own = Snapshot.objects.create(project=env.cloud.demo_project, user_id=env.cloud.member_actor.user_id,
                                  volume=volume, size=1, status="available")
    victim = _victim_snapshot(env.cloud)
    image = Image(id="00000000-0000-0000-0000-0000000000aa", owner=env.cloud.demo_project.id, properties={
        "bdm_v2": "True", "block_device_mapping": json.dumps([{"snapshot_id": own.id}, {"snapshot_id": victim.id}])})
    boot_volumes.volume_snapshots_drop(image=image, instance=instance)
    assert Snapshot.objects.get(pk=victim.pk).status == "available"
    assert Snapshot.objects.get(pk=own.pk).status == "deleting"  # the storage agent removes it
