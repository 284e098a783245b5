"""Issue 15's "Done when" with the real CLI on a live cloud (two test-driver compute nodes, a storage
node, a control worker): `openstack stack create -t web.yaml --parameter ... --wait` of a network, a
subnet, a router with a gateway and an interface, a security group, two servers each with a volume, a
floating IP and a wait condition (the test signals it as the guests' user_data would, with the handle's
curl_cli); `stack output show` gives the servers' addresses; `stack update --existing` renames a server
in place and replaces the other when its image changes (the events say which); `stack delete --wait`
leaves nothing in any service. A CloudFormation template with AWS::EC2::Instance and an EIP works too."""
from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VENV_BIN, CeleryWorker, live_control_worker, wait_for
from tests.e2e.test_orchestration_cli import stack

pytestmark = pytest.mark.e2e

WEB = """
heat_template_version: 2018-08-31
description: two web servers behind a router
parameters:
  image: {type: string, constraints: [{custom_constraint: glance.image}]}
  image2: {type: string, constraints: [{custom_constraint: glance.image}]}
  flavor: {type: string, default: m1.tiny, constraints: [{custom_constraint: nova.flavor}]}
  public_net: {type: string, default: public}
  web1_name: {type: string, default: web1}
  cidr: {type: string, default: 10.73.0.0/24}
resources:
  net: {type: OS::Neutron::Net}
  subnet:
    type: OS::Neutron::Subnet
    properties: {network: {get_resource: net}, cidr: {get_param: cidr}}
  router:
    type: OS::Neutron::Router
    properties: {external_gateway_info: {network: {get_param: public_net}}}
  iface:
    type: OS::Neutron::RouterInterface
    properties: {router: {get_resource: router}, subnet: {get_resource: subnet}}
  web_sg:
    type: OS::Neutron::SecurityGroup
    properties:
      rules:
        - {protocol: tcp, port_range_min: 80, port_range_max: 80}
        - {protocol: tcp, port_range_min: 22, port_range_max: 22}
        - {protocol: icmp}
  handle: {type: OS::Heat::WaitConditionHandle}
  ready:
    type: OS::Heat::WaitCondition
    depends_on: [web1, web2]
    properties: {handle: {get_resource: handle}, count: 2, timeout: 180}
  port1:
    type: OS::Neutron::Port
    properties: {network: {get_resource: net}, security_groups: [{get_resource: web_sg}]}
  web1:
    type: OS::Nova::Server
    properties:
      name: {get_param: web1_name}
      image: {get_param: image}
      flavor: {get_param: flavor}
      networks: [{port: {get_resource: port1}}]
      user_data_format: RAW
      user_data:
        str_replace:
          template: "#!/bin/sh\\nwc_notify --data-binary '{\\"status\\": \\"SUCCESS\\", \\"id\\": \\"web1\\"}'\\n"
          params: {wc_notify: {get_attr: [handle, curl_cli]}}
  web2:
    type: OS::Nova::Server
    properties:
      name: web2
      image: {get_param: image2}
      flavor: {get_param: flavor}
      networks: [{network: {get_resource: net}}]
      security_groups: [{get_resource: web_sg}]
      user_data_format: RAW
      user_data:
        str_replace:
          template: "#!/bin/sh\\nwc_notify --data-binary '{\\"status\\": \\"SUCCESS\\", \\"id\\": \\"web2\\"}'\\n"
          params: {wc_notify: {get_attr: [handle, curl_cli]}}
  vol1: {type: OS::Cinder::Volume, properties: {size: 1}}
  vol2: {type: OS::Cinder::Volume, properties: {size: 1}}
  attach1:
    type: OS::Cinder::VolumeAttachment
    properties: {instance_uuid: {get_resource: web1}, volume_id: {get_resource: vol1}}
  attach2:
    type: OS::Cinder::VolumeAttachment
    properties: {instance_uuid: {get_resource: web2}, volume_id: {get_resource: vol2}}
  fip:
    type: OS::Neutron::FloatingIP
    depends_on: iface
    properties: {floating_network: {get_param: public_net}, port_id: {get_resource: port1}}
outputs:
  web1_address: {value: {get_attr: [web1, first_address]}, description: web1's fixed address}
  web2_address: {value: {get_attr: [web2, first_address]}}
  public_address: {value: {get_attr: [fip, floating_ip_address]}}
  ready_data: {value: {get_attr: [ready, data]}}
  curl: {value: {get_attr: [handle, curl_cli]}}
"""

CFN = """
AWSTemplateFormatVersion: '2010-09-09'
Description: one instance with an elastic IP
Parameters:
  ImageId: {Type: String}
  SubnetId: {Type: String}
Resources:
  Web:
    Type: AWS::EC2::Instance
    Properties: {ImageId: {Ref: ImageId}, InstanceType: m1.tiny, SubnetId: {Ref: SubnetId}}
  Address:
    Type: AWS::EC2::EIP
    Properties: {InstanceId: {Ref: Web}}
Outputs:
  PublicIp: {Value: {Ref: Address}}
  PrivateIp: {Value: {'Fn::GetAtt': [Web, PrivateIp]}}
"""


@pytest.fixture(scope="module")
def heat_engine(live_cloud: Any) -> Iterator[CeleryWorker]:
    with live_control_worker(live_cloud, name="heat-web", pool="threads", concurrency=4) as worker:
        yield worker


def _images(cloud: Any, tmp_path: Path, tag: str, count: int = 2) -> list[str]:
    """``count`` tiny qcow2 images of demo's (through openstacksdk: the image CLI is tests/e2e/test_images_cli.py's)."""
    disk = tmp_path / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(disk), "64M"], check=True, capture_output=True)
    names = [f"web-{'ab'[i]}-{tag}" for i in range(count)]
    conn = cloud.sdk(user="demo")
    for name in names:
        conn.image.create_image(name=name, filename=str(disk), disk_format="qcow2", container_format="bare",
                                wait=True)
    return names


def _signal(curl: str, ident: str) -> None:
    """What each guest's user_data runs: the handle's curl_cli with its status (no Keystone token)."""
    done = subprocess.run(f"{curl} --data-binary '{{\"status\": \"SUCCESS\", \"id\": \"{ident}\"}}'", shell=True,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and " 200 " in done.stdout.splitlines()[0], (done.stdout, done.stderr)


def test_web_stack_with_the_cli(live_cloud: Any, compute_nodes: list, storage_node: Any, heat_engine: Any,
                                tmp_path: Path) -> None:
    cloud = live_cloud
    tag = secrets.token_hex(3)
    image_a, image_b = _images(cloud, tmp_path, tag)
    path = tmp_path / "web.yaml"
    path.write_text(WEB)
    name = f"web-{tag}"
    created = subprocess.Popen(  # `--wait` follows the events while the test plays the guests
        [str(VENV_BIN / "openstack"), "stack", "create", "-t", str(path), "--parameter", f"image={image_a}",
         "--parameter", f"image2={image_a}", "--wait", "--poll", "1", "--timeout", "10", "-f", "json", name],
        env=cloud.cli_env("demo"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conn = cloud.sdk(user="demo", project="demo")
    # once both servers are up the wait condition waits for their signals: send them as the guests would
    def handle_curl() -> str:
        assert created.poll() is None, created.communicate()
        response = conn.session.request(f"/stacks/{name}/resources/handle", "GET", raise_exc=False,
                                        endpoint_filter={"service_type": "orchestration", "interface": "public"})
        if response.status_code != 200 or response.json()["resource"]["resource_status"] != "CREATE_COMPLETE":
            return ""
        return response.json()["resource"]["attributes"].get("curl_cli", "")
    curl = wait_for(handle_curl, "the wait condition handle's curl_cli", timeout=240, interval=0.3)
    _signal(curl, "web1")
    _signal(curl, "web2")
    out, err = created.communicate(timeout=600)
    assert created.returncode == 0, (out[-3000:], err[-3000:])
    made = stack(cloud, "show", name)
    assert made["stack_status"] == "CREATE_COMPLETE", made
    outputs = {o["output_key"]: o["output_value"] for o in made["outputs"]}
    assert outputs["web1_address"].startswith("10.73.0.") and outputs["web2_address"].startswith("10.73.0.")
    assert stack(cloud, "output", "show", name, "web2_address")["output_value"] == outputs["web2_address"]
    assert json.loads(outputs["ready_data"]).keys() == {"web1", "web2"}
    assert outputs["public_address"]
    ids = {r["resource_name"]: r["physical_resource_id"] for r in stack(cloud, "resource", "list", name)}
    servers = {s.id: s for s in conn.compute.servers()}
    assert servers[ids["web1"]].name == "web1" and servers[ids["web1"]].status == "ACTIVE"
    assert conn.block_storage.get_volume(ids["vol1"]).status == "in-use"
    fip = conn.network.get_ip(ids["fip"])
    assert fip.floating_ip_address == outputs["public_address"] and fip.port_id == ids["port1"]

    # update --existing: web1 renamed in place (same server), web2's image changed: a new server replaces it
    update = cloud.openstack("stack", "update", "--existing", "--parameter", f"web1_name=web1-{tag}", "--parameter",
                             f"image2={image_b}", "--wait", name, user="demo", check=False)
    found = conn.orchestration.find_stack(name)
    assert update.returncode == 0 and found.status == "UPDATE_COMPLETE", (
        found.status_reason, [(e.resource_name, e.resource_status, e.resource_status_reason)
                              for e in conn.orchestration.stack_events(found)][-12:])
    after = {r.name: r.physical_resource_id for r in conn.orchestration.resources(found)}
    assert after["web1"] == ids["web1"] and conn.compute.get_server(ids["web1"]).name == f"web1-{tag}"
    assert after["web2"] != ids["web2"] and conn.compute.get_server(after["web2"]).image["id"] == \
        conn.image.find_image(image_b).id
    events = list(conn.orchestration.stack_events(found, resource_name="web2"))
    reasons = " ".join(e.resource_status_reason or "" for e in events)
    assert "replace" in reasons.lower(), events
    assert conn.compute.find_server(ids["web2"], ignore_missing=True) is None  # the old one is gone

    # delete: nothing left in any service
    cloud.openstack("stack", "delete", "--yes", "--wait", name, user="demo")
    assert conn.orchestration.find_stack(name) is None
    gone = {**ids, **after}
    assert not [s for s in conn.compute.servers() if s.id in (gone["web1"], gone["web2"], ids["web2"])]
    assert conn.network.find_network(ids["net"], ignore_missing=True) is None
    assert conn.network.find_router(ids["router"], ignore_missing=True) is None
    assert conn.network.find_security_group(ids["web_sg"], ignore_missing=True) is None
    assert conn.network.find_ip(ids["fip"], ignore_missing=True) is None
    assert conn.block_storage.find_volume(ids["vol1"], ignore_missing=True) is None
    assert conn.block_storage.find_volume(ids["vol2"], ignore_missing=True) is None


def test_cloudformation_instance_and_eip(live_cloud: Any, compute_nodes: list, heat_engine: Any,
                                         tmp_path: Path) -> None:
    cloud = live_cloud
    tag = secrets.token_hex(3)
    [image] = _images(cloud, tmp_path, tag, count=1)
    conn = cloud.sdk(user="demo", project="demo")
    net = conn.network.create_network(name=f"cfn-{tag}")
    subnet = conn.network.create_subnet(network_id=net.id, cidr="10.74.0.0/24", ip_version=4)
    router = conn.network.create_router(name=f"cfn-{tag}", external_gateway_info={
        "network_id": conn.network.find_network("public").id})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    path = tmp_path / "cfn.yaml"
    path.write_text(CFN)
    name = f"cfn-{tag}"
    made = stack(cloud, "create", "-t", str(path), "--parameter", f"ImageId={image}", "--parameter",
                 f"SubnetId={subnet.id}", "--wait", "--poll", "1", name)
    assert made["stack_status"] == "CREATE_COMPLETE", made
    outputs = {o["output_key"]: o["output_value"] for o in conn.orchestration.find_stack(name).outputs}
    assert outputs["PrivateIp"].startswith("10.74.0.") and outputs["PublicIp"]
    ip = next(conn.network.ips(floating_ip_address=outputs["PublicIp"]))
    assert ip.fixed_ip_address == outputs["PrivateIp"]
    # (`stack delete --wait` is the web stack's above: this one is deleted through openstacksdk)
    conn.orchestration.delete_stack(conn.orchestration.find_stack(name))
    wait_for(lambda: conn.orchestration.find_stack(name) is None, f"stack {name} deleted", timeout=60, interval=0.2)
    assert not list(conn.network.ips(floating_ip_address=outputs["PublicIp"]))
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(net)
