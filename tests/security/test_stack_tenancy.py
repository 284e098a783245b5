"""Attacks through a stack on another project's compute and volume resources (issue 15): a template is
the attacker's text, and its resources act as the stack's owner. Naming olga's server, volume, port,
server group, key pair, private flavor or image (by id, or through a custom constraint) must fail the
resource (or refuse the stack, 400) with the owning app's NotFound/refusal, changing nothing of hers.

Each check fails if a plugin looks the id up unscoped (e.g. the model's table instead of the owner's
selector) or acts as anyone but the owner."""
from __future__ import annotations

from typing import Any

import pytest

from apps.compute import services as compute_services
from apps.compute.models import BlockDeviceMapping, Flavor, Instance, KeyPair
from apps.networks import services as net_services
from apps.networks.models import Port
from apps.orchestration import states
from apps.orchestration.models import Stack, StackResource
from apps.volumes import services as volume_services
from apps.volumes.models import Volume
from tests.compute.metadata_helpers import make_instance
from tests.orchestration.test_api import create, heat_error, run_walk
from tests.workers.compute.conftest import upload_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


def _reason(cloud: Any, name: str, resources: str) -> str:
    made = create(cloud.member, name, "heat_template_version: 2018-08-31\nresources:\n" + resources)
    assert run_walk(made["id"]) == states.CREATE_FAILED
    return StackResource.objects.get(stack_id=made["id"], state=states.CREATE_FAILED).status_reason


def test_a_stack_cannot_reach_another_projects_compute_and_volumes(cloud) -> None:
    olga = cloud.other_actor
    server = make_instance(cloud, name="victim", project=cloud.other_project)
    volume = volume_services.volume_create(actor=olga, size=1, name="victim-vol")
    net = net_services.network_create(actor=olga, name="victim-net")
    port = net_services.port_create(actor=olga, network_id=net.id)
    group = compute_services.server_group_create(actor=olga, name="victim-group", policy="affinity")
    compute_services.keypair_create(actor=olga, name="victim-key", public_key=None)
    private = compute_services.flavor_create(actor=cloud.admin_actor, name="victim-flavor", ram=64, vcpus=1, disk=1,
                                             is_public=False)
    compute_services.flavor_access_add(actor=cloud.admin_actor, flavor_id=private.flavorid,
                                       project_id=cloud.other_project.id)
    their_image = upload_image(olga, b"\0" * 512, disk_format="raw", name="victim-image", visibility="private")
    mine = upload_image(cloud.member_actor, b"\0" * 512, disk_format="raw", name="mine")
    Flavor.objects.create(flavorid="s1", name="s1.tiny", vcpus=1, memory_mb=64, root_gb=1)
    servers_before = Instance.objects.count()

    boot = f"""  vm:
    type: OS::Nova::Server
    properties:
      image: {mine.id}
      flavor: s1
"""
    cases = {
        "attach": (f"  a: {{type: OS::Cinder::VolumeAttachment, properties: {{instance_uuid: {server.id}, "
                   f"volume_id: {volume.id}}}}}\n"),
        "clone": f"  v: {{type: OS::Cinder::Volume, properties: {{source_volid: {volume.id}}}}}\n",
        "port": boot + f"      networks: [{{port: {port.id}}}]\n",
        "net": boot + f"      networks: [{{network: {net.id}}}]\n",
        "group": boot + f"      scheduler_hints: {{group: {group.id}}}\n",
        "flavor": f"  vm: {{type: OS::Nova::Server, properties: {{image: {mine.id}, flavor: {private.flavorid}}}}}\n",
        "image": f"  vm: {{type: OS::Nova::Server, properties: {{image: {their_image.id}, flavor: s1}}}}\n",
        "image-name": "  vm: {type: OS::Nova::Server, properties: {image: victim-image, flavor: s1}}\n",
        "key": boot + "      key_name: victim-key\n",
        "keyowner": f"  k: {{type: OS::Nova::KeyPair, properties: {{name: mine, user: {olga.user_id}}}}}\n",
    }
    for name, resources in cases.items():
        reason = _reason(cloud, name, resources)
        assert reason.split(":")[0].endswith(("NotFound", "BadRequest", "Forbidden")), (name, reason)
    assert Instance.objects.count() == servers_before
    assert not BlockDeviceMapping.objects.filter(volume_id=volume.id).exists()
    assert Volume.objects.get(pk=volume.id).attachments.count() == 0
    assert not Port.objects.get(pk=port.id).device_id
    assert KeyPair.objects.filter(name="mine").count() == 0
    assert Volume.objects.filter(project_id=cloud.demo_project.id).count() == 0

    # custom constraints look up as the owner: olga's ids are a 400, nothing made
    stacks = Stack.objects.count()
    for constraint, value in (("nova.server", server.id), ("cinder.volume", volume.id),
                              ("glance.image", their_image.id), ("nova.flavor", private.flavorid),
                              ("nova.keypair", "victim-key"), ("neutron.network", net.id),
                              ("neutron.network", "victim-net"), ("neutron.port", port.id)):
        template = (f"heat_template_version: 2018-08-31\nparameters:\n  p: {{type: string, constraints: "
                    f"[{{custom_constraint: {constraint}}}]}}\nresources: {{}}\n")
        body = heat_error(cloud.member.post("stacks", {"stack_name": "probe", "template": template,
                                                       "parameters": {"p": value}}), 400)
        assert constraint in body["error"]["message"], body
    assert Stack.objects.count() == stacks
    # ...and the owner's own pass
    own = net_services.network_create(actor=cloud.member_actor, name="own-net")
    template = ("heat_template_version: 2018-08-31\nparameters:\n  p: {type: string, constraints: "
                "[{custom_constraint: neutron.network}]}\nresources: {}\n")
    for value in (own.id, "own-net"):
        create(cloud.member, f"own-{value[:3]}", template, parameters={"p": value})
