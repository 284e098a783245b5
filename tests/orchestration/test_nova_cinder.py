"""OS::Nova::* , OS::Cinder::* and AWS::EC2::Instance through the compute and volumes apps' services,
in process: the engine's resource tasks run here (tests/orchestration/test_api.run_walk's way), and
what the services send on commit to the compute node (libvirt's test driver) and the storage agent is
taken off the broker's queues and run here with the real task bodies, as those workers would.

A stack of a network, a key pair, a server, a volume and an attachment goes CREATE_COMPLETE and its
delete leaves nothing in any service; a name change is in place, an image change replaces; a bad flavor,
another project's image or network fail the resource with the owning app's error; a member's
OS::Nova::Flavor gets compute's 403; custom constraints look values up as the stack's owner."""
from __future__ import annotations

import base64
import importlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from apps.compute.models import Flavor, Instance, KeyPair, ServerGroup
from apps.compute.services import nodes as node_services
from apps.networks.models import Network, Port
from apps.orchestration import services, states
from apps.orchestration.models import Stack, StackResource
from apps.orchestration.plugins import PluginContext, ResourceFailed
from apps.orchestration.plugins.nova import Server
from apps.volumes import services as volume_services
from apps.volumes.models import StorageBackend, Volume
from tests.control_reports import apply_control_reports
from tests.control_reports import run_storage_task as run
from tests.orchestration.test_api import create, heat_error, run_walk
from tests.workers.compute.conftest import (  # noqa: F401 - fixtures
    Node,
    make_qcow2,
    needs_tools,
    node,
    queued,
    upload_image,
)
from workers import compute, storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


@pytest.fixture
def flavor(db: None) -> Flavor:
    return Flavor.objects.create(flavorid="h1", name="h1.tiny", vcpus=1, memory_mb=256, root_gb=1)


@pytest.fixture
def up(node: Node, db: None) -> Node:  # noqa: F811
    """The test-driver node registered and up (the scheduler places servers on it)."""
    info = node.driver.node_info()
    node_services.compute_node_register(host=node.host, hypervisor_hostname=node.host, hypervisor_type="test",
                                        hypervisor_version=info.hypervisor_version, libvirt_uri=node.driver.uri,
                                        host_ip="127.0.0.1", vcpus=info.vcpus, memory_mb=info.memory_mb,
                                        local_gb=info.disk_gb)
    return node


@pytest.fixture
def store(cloud: Any, settings: Any, tmp_path: Path) -> str:
    """A storage backend whose agent's task bodies run here (volume files under tmp)."""
    settings.STRATUS_VOLUMES_DIR = str(tmp_path / "volumes")
    host = f"store-{secrets.token_hex(3)}"
    root = tmp_path / "volumes" / host
    root.mkdir(parents=True)
    volume_services.backend_report(host=host, capacity_gb=100, free_gb=100, path=str(root))
    StorageBackend.objects.exclude(host=host).update(last_heartbeat=None)
    return host


def _run_queued(queue: str) -> int:
    calls = queued(queue)
    for name, kwargs in calls:
        module, function = name.rsplit(".", 1)
        getattr(importlib.import_module(module), function)(**kwargs)
    return len(calls)


def drive(stack_id: str, capture: Any, node: Node, store: str | None = None) -> str:  # noqa: F811
    """The control worker, the compute node and the storage agent in turn until the stack settles."""
    from workers import orchestration as tasks

    with capture(execute=True):
        services.stack_advance(stack_id=stack_id)
    for _ in range(80):
        todo = list(StackResource.objects.filter(stack_id=stack_id, state__endswith="_IN_PROGRESS"))
        if not todo:
            break
        with capture(execute=True):
            for row in todo:
                tasks.resource_run(row.id)
        if store:
            _run_queued(storage.queue_for(store))
            apply_control_reports(only=storage.CONTROL)
        _run_queued(compute.queue_for(node.host))
    return Stack.objects.get(pk=stack_id).state


def rows(stack_id: str) -> dict[str, StackResource]:
    return {r.name: r for r in StackResource.objects.filter(stack_id=stack_id)}


WEB = """
heat_template_version: 2018-08-31
parameters:
  image: {type: string, constraints: [{custom_constraint: glance.image}]}
  flavor: {type: string, default: h1.tiny, constraints: [{custom_constraint: nova.flavor}]}
resources:
  net: {type: OS::Neutron::Net, properties: {name: heat-net}}
  sub: {type: OS::Neutron::Subnet, properties: {network: {get_resource: net}, cidr: 10.46.0.0/24}}
  key: {type: OS::Nova::KeyPair, properties: {name: heat-key, save_private_key: true}}
  server:
    type: OS::Nova::Server
    depends_on: sub
    properties:
      name: web-1
      image: {get_param: image}
      flavor: {get_param: flavor}
      key_name: {get_resource: key}
      networks: [{network: {get_resource: net}}]
      user_data_format: RAW
      user_data: |
        #!/bin/sh
        echo hello
      metadata: {role: web}
  vol: {type: OS::Cinder::Volume, properties: {size: 1, name: data, metadata: {tier: gold}}}
  att:
    type: OS::Cinder::VolumeAttachment
    properties: {instance_uuid: {get_resource: server}, volume_id: {get_resource: vol}}
outputs:
  ip: {value: {get_attr: [server, first_address]}}
  nets: {value: {get_attr: [server, networks, heat-net]}}
  private_key: {value: {get_attr: [key, private_key]}}
  size: {value: {get_attr: [vol, size]}}
  console: {value: {get_attr: [server, console_urls, novnc]}}
"""


@needs_tools
def test_server_volume_attachment_keypair_created_updated_and_deleted(
        cloud, up, flavor, store, tmp_path, django_capture_on_commit_callbacks) -> None:
    upload_image(cloud.member_actor, make_qcow2(tmp_path / "tiny.qcow2"), name="tiny")
    made = create(cloud.member, "web", WEB, parameters={"image": "tiny"}, disable_rollback=False)
    assert drive(made["id"], django_capture_on_commit_callbacks, up, store) == states.CREATE_COMPLETE
    found = rows(made["id"])
    assert {r.state for r in found.values()} == {states.CREATE_COMPLETE}
    server = Instance.objects.get(pk=found["server"].physical_id)
    assert (server.name, server.vm_state, server.project_id) == ("web-1", "active", cloud.demo_project.id)
    assert base64.b64decode(server.user_data).decode() == "#!/bin/sh\necho hello\n"
    assert server.key_name == "heat-key" and server.metadata == {"role": "web"}
    volume = Volume.objects.get(pk=found["vol"].physical_id)
    assert (volume.status, volume.name, volume.size) == ("in-use", "data", 1)
    assert list(volume.attachments.values_list("server_id", flat=True)) == [server.id]
    # the compute app shows them as the member's own
    assert cloud.member.to("compute").get(f"servers/{server.id}").json()["server"]["status"] == "ACTIVE"
    outputs = {o["output_key"]: o["output_value"]
               for o in cloud.member.get(f"stacks/web/{made['id']}").json()["stack"]["outputs"]}
    address = Port.objects.get(device_id=server.id).fixed_ips.get().ip_address
    assert outputs["ip"] == address and outputs["nets"] == [address] and outputs["size"] == 1
    assert outputs["private_key"].startswith("-----BEGIN")
    assert outputs["console"].endswith(f"/dashboard/compute/instances/{server.id}/console")

    # the update semantics: a name (or metadata) change is in place, an image change replaces
    props = Server.check({"name": "web-1", "image": "tiny", "flavor": "h1.tiny"})
    assert not Server.needs_replacement(props, {**props, "name": "web-2", "metadata": {"role": "db"}})
    assert Server.needs_replacement(props, {**props, "image": "other"})
    stack = Stack.objects.get(pk=made["id"])
    plugin = Server(PluginContext(stack_id=stack.id, stack_name=stack.name, resource_name="server",
                                  project_id=stack.project_id, user_id=stack.user_id,
                                  actor=services.owner_actor(stack)))
    outcome = plugin.update(server.id, {}, props, {**props, "name": "web-2", "metadata": {"role": "db"}})
    server.refresh_from_db()
    assert (server.name, server.metadata, outcome.attributes["name"]) == ("web-2", {"role": "db"}, "web-2")
    plugin.check_resource(server.id, {})
    # a new flavor resizes (confirmed once the node has done it); REPLACE as the policy replaces
    assert not Server.needs_replacement(props, {**props, "flavor": "h2"})
    assert Server.needs_replacement(props, {**props, "flavor": "h2", "flavor_update_policy": "REPLACE"})
    Flavor.objects.create(flavorid="h2", name="h2.small", vcpus=2, memory_mb=512, root_gb=1)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = plugin.update(server.id, {}, props, {**props, "flavor": "h2.small"})
    assert not outcome.done
    _run_queued(compute.queue_for(up.host))
    for _ in range(10):
        if outcome.done:
            break
        with django_capture_on_commit_callbacks(execute=True):
            outcome = plugin.check_update_complete(server.id, outcome.data, {})
        _run_queued(compute.queue_for(up.host))
    server.refresh_from_db()
    assert outcome.done and (server.flavor_ref, server.vcpus, server.vm_state) == ("h2", 2, "active")
    # suspend and resume through the compute app's power actions
    for action, shown in (("suspend", "suspended"), ("resume", "active")):
        for _ in range(5):
            with django_capture_on_commit_callbacks(execute=True):
                done = getattr(plugin, action)(server.id, {})
            if done:
                break
            _run_queued(compute.queue_for(up.host))
        server.refresh_from_db()
        assert done and server.vm_state == shown

    cloud.member.delete(f"stacks/web/{made['id']}")
    assert drive(made["id"], django_capture_on_commit_callbacks, up, store) == states.DELETE_COMPLETE
    assert not Instance.objects.filter(pk=server.id).exclude(vm_state="deleted").exists()
    assert not Volume.objects.filter(pk=volume.id).exists()
    assert not KeyPair.objects.filter(name="heat-key").exists()
    assert not Network.objects.filter(project_id=cloud.demo_project.id, name="heat-net").exists()
    assert not Port.objects.filter(device_id=server.id).exists()


CFN = """
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Subnet: {Type: String}
Resources:
  Box:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: tiny
      InstanceType: h1.tiny
      SubnetId: {Ref: Subnet}
      UserData: {'Fn::Base64': {'Fn::Join': ['', ['#!/bin/sh', "\\n", 'echo cfn']]}}
      Tags: [{Key: app, Value: cfn}]
Outputs:
  Private: {Value: {'Fn::GetAtt': [Box, PrivateIp]}}
  Zone: {Value: {'Fn::GetAtt': [Box, AvailabilityZone]}}
"""


@needs_tools
def test_ec2_instance_is_a_server(cloud, up, flavor, tmp_path, django_capture_on_commit_callbacks) -> None:
    from apps.networks import services as networks

    upload_image(cloud.member_actor, make_qcow2(tmp_path / "tiny.qcow2"), name="tiny")
    net = networks.network_create(actor=cloud.member_actor, name="cfn-net")
    subnet = networks.subnet_create(actor=cloud.member_actor, network_id=net.id, cidr="10.47.0.0/24")
    made = create(cloud.member, "cfn", CFN, parameters={"Subnet": subnet.id})
    assert drive(made["id"], django_capture_on_commit_callbacks, up) == states.CREATE_COMPLETE
    server = Instance.objects.get(pk=rows(made["id"])["Box"].physical_id)
    assert server.vm_state == "active" and server.metadata == {"app": "cfn"}
    assert base64.b64decode(server.user_data).decode() == "#!/bin/sh\necho cfn"
    address = Port.objects.get(device_id=server.id, network=net).fixed_ips.get().ip_address
    outputs = {o["output_key"]: o["output_value"]
               for o in cloud.member.get(f"stacks/cfn/{made['id']}").json()["stack"]["outputs"]}
    assert outputs == {"Private": address, "Zone": "nova"}
    cloud.member.delete(f"stacks/cfn/{made['id']}")
    assert drive(made["id"], django_capture_on_commit_callbacks, up) == states.DELETE_COMPLETE
    assert not Instance.objects.filter(pk=server.id).exclude(vm_state="deleted").exists()


def _failed_reason(cloud: Any, name: str, template: str, **parameters: Any) -> str:
    made = create(cloud.member, name, template, parameters=parameters)
    assert run_walk(made["id"]) == states.CREATE_FAILED
    return StackResource.objects.get(stack_id=made["id"], state=states.CREATE_FAILED).status_reason


BOOT = """
heat_template_version: 2018-08-31
parameters:
  image: {type: string}
  flavor: {type: string}
  network: {type: string, default: ""}
conditions:
  has_net: {not: {equals: [{get_param: network}, ""]}}
resources:
  vm:
    type: OS::Nova::Server
    properties:
      image: {get_param: image}
      flavor: {get_param: flavor}
      networks: {if: [has_net, [{network: {get_param: network}}], []]}
"""


def test_refusals_are_the_owning_apps_errors(cloud, flavor, tmp_path) -> None:
    from apps.networks import services as networks

    types = set(cloud.member.get("resource_types").json()["resource_types"])
    assert {"OS::Nova::Server", "OS::Nova::KeyPair", "OS::Nova::Flavor", "OS::Nova::ServerGroup", "AWS::EC2::Instance",
            "OS::Cinder::Volume", "OS::Cinder::VolumeAttachment"} <= types
    schema = cloud.member.get("resource_types/OS::Nova::Server").json()
    assert schema["properties"]["flavor"]["update_allowed"] and not schema["properties"]["image"]["update_allowed"]
    assert schema["properties"]["networks"]["schema"]["*"]["schema"]["network"]["type"] == "string"
    assert {"first_address", "networks", "console_urls", "show"} <= set(schema["attributes"])

    mine = upload_image(cloud.member_actor, make_qcow2(tmp_path / "a.qcow2"), name="mine")
    theirs = upload_image(cloud.other_actor, make_qcow2(tmp_path / "b.qcow2"), name="theirs", visibility="private")
    their_net = networks.network_create(actor=cloud.other_actor, name="their-net")
    before = Instance.objects.count()

    reason = _failed_reason(cloud, "badflavor", BOOT, image=mine.id, flavor="no-such-flavor")
    assert reason.startswith("NotFound") and "Flavor no-such-flavor could not be found" in reason, reason
    reason = _failed_reason(cloud, "theirimage", BOOT, image=theirs.id, flavor="h1")
    assert reason.startswith("NotFound") and theirs.id in reason, reason
    reason = _failed_reason(cloud, "theirnet", BOOT, image="mine", flavor="h1", network=their_net.id)
    assert "NotFound" in reason.split(":")[0] and their_net.id in reason, reason
    assert Instance.objects.count() == before


    # a server compute puts in ERROR (no node can take it) fails the resource with its fault; the
    # stack's delete removes it
    made = create(cloud.member, "nohost", """
heat_template_version: 2018-08-31
resources:
  vm: {type: OS::Nova::Server, properties: {image: mine, flavor: h1, networks: [{allocate_network: none}]}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    reason = StackResource.objects.get(stack_id=made["id"], name="vm").status_reason
    assert reason.startswith("ResourceInError") and "No valid host was found" in reason, reason
    errored = Instance.objects.get(pk=rows(made["id"])["vm"].physical_id)
    assert errored.vm_state == "error"
    stack = Stack.objects.get(pk=made["id"])
    plugin = Server(PluginContext(stack_id=stack.id, stack_name=stack.name, resource_name="vm",
                                  project_id=stack.project_id, actor=cloud.member_actor))
    with pytest.raises(ResourceFailed, match="ERROR"):
        plugin.check_resource(errored.id, {})
    cloud.member.delete(f"stacks/nohost/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not Instance.objects.filter(pk=errored.id).exclude(vm_state="deleted").exists()
    with pytest.raises(ResourceFailed, match="NotFound"):
        plugin.check_resource(errored.id, {})

    # a member's flavor: compute's own 403; a server group and a key pair are the member's
    made = create(cloud.member, "flavor", """
heat_template_version: 2018-08-31
resources:
  f: {type: OS::Nova::Flavor, properties: {ram: 512, vcpus: 1, name: heat-flavor}}
""")
    assert run_walk(made["id"]) == states.CREATE_FAILED
    assert StackResource.objects.get(stack_id=made["id"], name="f").status_reason.startswith("Forbidden")
    assert not Flavor.objects.filter(name="heat-flavor").exists()
    # ...an admin's is made (private, given to demo, with extra specs) and deleted with the stack
    made = create(cloud.admin, "flavor", f"""
heat_template_version: 2018-08-31
resources:
  f:
    type: OS::Nova::Flavor
    properties: {{ram: 512, vcpus: 1, name: heat-flavor, is_public: false, tenants: [{cloud.demo_project.id}],
                 extra_specs: {{"hw:cpu_policy": dedicated}}}}
""")
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    made_flavor = Flavor.objects.get(name="heat-flavor")
    assert not made_flavor.is_public and made_flavor.flavorid == rows(made["id"])["f"].physical_id
    shown = cloud.member.to("compute").get(f"flavors/{made_flavor.flavorid}/os-extra_specs").json()
    assert shown == {"extra_specs": {"hw:cpu_policy": "dedicated"}}  # demo was given it
    cloud.admin.delete(f"stacks/flavor/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not Flavor.objects.filter(name="heat-flavor").exists()

    # custom constraints: another project's image is not found for this owner (400, nothing made)
    constrained = """
heat_template_version: 2018-08-31
parameters:
  image: {type: string, constraints: [{custom_constraint: glance.image}]}
  flavor: {type: string, constraints: [{custom_constraint: nova.flavor}]}
resources:
  g: {type: OS::Nova::ServerGroup, properties: {policies: [affinity]}}
"""
    count = Stack.objects.count()
    body = heat_error(cloud.member.post("stacks", {"stack_name": "c1", "template": constrained,
                                                   "parameters": {"image": theirs.id, "flavor": "h1"}}), 400)
    assert "glance.image" in body["error"]["message"] and theirs.id in body["error"]["message"]
    body = heat_error(cloud.member.post("stacks", {"stack_name": "c2", "template": constrained,
                                                   "parameters": {"image": "mine", "flavor": "nope"}}), 400)
    assert "nova.flavor" in body["error"]["message"]
    assert Stack.objects.count() == count
    made = create(cloud.member, "c3", constrained, parameters={"image": "mine", "flavor": "h1.tiny"})
    assert run_walk(made["id"]) == states.CREATE_COMPLETE
    group = ServerGroup.objects.get(pk=rows(made["id"])["g"].physical_id)
    assert (group.policy, group.project_id) == ("affinity", cloud.demo_project.id)
    cloud.member.delete(f"stacks/c3/{made['id']}")
    assert run_walk(made["id"]) == states.DELETE_COMPLETE
    assert not ServerGroup.objects.filter(pk=group.id).exists()


def test_volume_delete_waits_for_the_storage_agent(cloud, store) -> None:
    """A volume's delete during its create (a rollback while the agent makes it) waits, then deletes."""
    from apps.orchestration.plugins.cinder import Volume as VolumePlugin

    plugin = VolumePlugin(PluginContext(stack_id="s", stack_name="s", resource_name="v",
                                        project_id=cloud.demo_project.id, actor=cloud.member_actor))
    made = plugin.create(VolumePlugin.check({"size": 1}))
    volume_id = made.physical_id
    assert Volume.objects.get(pk=volume_id).status == "creating"
    assert plugin.delete(volume_id, {}) is False  # not refused: waited for
    assert Volume.objects.get(pk=volume_id).status == "creating"
    run(storage.create_volume, volume_id=volume_id, size_gb=1, host=store)
    assert plugin.check_create_complete({}, made.data).done
    assert plugin.check_delete_complete(volume_id, {}) is False  # asked: the agent deletes
    assert Volume.objects.get(pk=volume_id).status == "deleting"
    run(storage.delete_volume, volume_id=volume_id, snapshot_ids=[], host=store)
    assert plugin.check_delete_complete(volume_id, {}) is True
    assert not Volume.objects.filter(pk=volume_id).exists()


def test_server_boot_arguments(cloud, flavor, tmp_path) -> None:
    """What OS::Nova::Server hands compute's server_create: software-config user_data, Nova's special
    networks, block device mappings (v2 and legacy) as compute's BlockDevice values."""
    from apps.orchestration import services as heat

    mine = upload_image(cloud.member_actor, make_qcow2(tmp_path / "a.qcow2"), name="mine")
    # user_data naming a software config (RAW or SOFTWARE_CONFIG) is that config's text; another
    # project's config id is only text
    config = heat.software_config_create(actor=cloud.member_actor, body={"config": "#cloud-config\n{}", "name": "c"})
    theirs_config = heat.software_config_create(actor=cloud.other_actor, body={"config": "secret"})
    plugin = Server(PluginContext(stack_id="s", stack_name="s", resource_name="vm", project_id=cloud.demo_project.id,
                                  actor=cloud.member_actor))
    for data_format, user_data, expected in (("SOFTWARE_CONFIG", config.id, "#cloud-config\n{}"),
                                             ("RAW", config.id, "#cloud-config\n{}"),
                                             ("HEAT_CFNTOOLS", config.id, config.id),
                                             ("SOFTWARE_CONFIG", theirs_config.id, theirs_config.id)):
        kwargs = plugin.boot(Server.check({"image": "mine", "flavor": "h1", "user_data": user_data,
                                           "user_data_format": data_format}))
        assert base64.b64decode(kwargs["user_data"]).decode() == expected, data_format
    kwargs = plugin.boot(Server.check({"image": "mine", "flavor": "h1", "networks": [{"allocate_network": "none"}]}))
    assert kwargs["networks"] == "none"
    volume = volume_services.volume_create(actor=cloud.member_actor, size=1, name="boot")
    kwargs = plugin.boot(Server.check({"flavor": "h1", "block_device_mapping_v2": [
        {"image": "mine", "volume_size": 2, "boot_index": 0, "delete_on_termination": True},
        {"volume_id": volume.id, "device_name": "vdb"}]}))
    root, data = kwargs["block_devices"]
    assert (root.source_type, root.destination_type, root.uuid, root.volume_size, root.boot_index,
            root.delete_on_termination) == ("image", "volume", mine.id, 2, 0, True)
    assert (data.source_type, data.uuid, data.device_name, data.boot_index) == ("volume", volume.id, "/dev/vdb", None)
    kwargs = plugin.boot(Server.check({"flavor": "h1", "block_device_mapping": [
        {"device_name": "vda", "volume_id": volume.id, "delete_on_termination": False}]}))
    [root] = kwargs["block_devices"]
    assert (root.source_type, root.uuid, root.boot_index, kwargs["image_ref"]) == ("volume", volume.id, 0, "")
