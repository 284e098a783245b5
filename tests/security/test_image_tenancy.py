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
from apps.compute.models import Instance
from apps.compute.services import servers as svc
from apps.core.errors import BadRequest, NotFound
from apps.images import selectors as image_selectors
from apps.images import services as image_services
from apps.images.models import Image
from tests.compute.helpers import Cloud
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from tests.workers.compute.conftest import make_instance, make_qcow2, needs_tools, node, upload_image  # noqa: F401
from workers import compute
from workers.drivers.hypervisor.layout import InstanceLayout


@pytest.fixture
def cloud(db: Any) -> Cloud:
    return Cloud()


def _kernel(actor: Any, name: str = "vmlinuz", **data: Any) -> Image:
    return upload_image(actor, b"\x7fELF kernel of " + name.encode() * 64, disk_format="aki", name=name, **data)


def _root_naming(cloud: Cloud, tmp_path: Path, **parts: str) -> Image:
    """The caller's own boot image whose properties name ``parts`` (kernel_id / ramdisk_id)."""
    return upload_image(cloud.member_actor, make_qcow2(tmp_path / "root.qcow2"), name="root", **parts)


def _spawned(instance: Any) -> Any:
    svc.server_spawned(instance_id=instance.id, host=instance.host, power_state=states.RUNNING)
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
            svc.server_action(actor=actor, server_id=instance.id, action="rebuild", body={"imageRef": root.id},
                              request_id="rb")
    assert reload(instance).image_id == env.image.id and reload(instance).task_state is None


def test_image_get_for_project_is_the_projects_view(cloud: Cloud, image_dir: Any) -> None:
    private = _kernel(cloud.other_actor, "private", visibility="private")
    mine = _kernel(cloud.member_actor, "mine", visibility="private")
    demo, other = cloud.demo_project.id, cloud.other_project.id
    assert image_selectors.image_get_for_project(project_id=demo, image_id=mine.id) == mine
    assert image_selectors.image_get_for_project(project_id=other, image_id=private.id) == private
    for project_id, image in ((demo, private), (other, mine)):
        with pytest.raises(NotFound):
            image_selectors.image_get_for_project(project_id=project_id, image_id=image.id)


@needs_tools
def test_the_node_never_loads_a_kernel_the_servers_project_cannot_read(cloud: Cloud, node: Any, tmp_path: Path,  # noqa: F811
                                                                       image_dir: Any) -> None:
    """Smuggled past the API (the property changed after the server was made): the spawn faults and
    no byte of the other project's image reaches the node."""
    secret = _kernel(cloud.other_actor, "secret", visibility="private")
    own = _kernel(cloud.member_actor, "own")
    root = _root_naming(cloud, tmp_path, kernel_id=own.id)
    inst = make_instance(cloud, node, root)
    Image.objects.filter(pk=root.pk).update(properties={**root.properties, "kernel_id": secret.id})
    with pytest.raises(compute.SpawnError, match=f"Image {secret.id} could not be found"):
        compute.build_domain(inst, [], InstanceLayout(compute.instances_path(), inst.id), root.id)
    assert not (node.cache / secret.id).exists()
    Image.objects.filter(pk=root.pk).update(properties={**root.properties, "kernel_id": own.id,
                                                        "ramdisk_id": secret.id})
    inst = make_instance(cloud, node, root, name="vm2")
    with pytest.raises(compute.SpawnError, match=f"Image {secret.id} could not be found"):
        compute.build_domain(inst, [], InstanceLayout(compute.instances_path(), inst.id), root.id)
    assert not (node.cache / secret.id).exists()
