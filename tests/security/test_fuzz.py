"""The fuzz battery (issue 9, section 4): every POST/PUT/PATCH of every API (identity, images,
networks, compute, volumes, telemetry; read from the URL resolver, so a new route joins by itself) is driven
with malformed bodies drawn by hypothesis: mutations of a valid body (wrong types, nulls, huge,
unicode, NUL and lone-surrogate strings, deep nesting, negative and huge numbers, unknown keys,
removed keys), any JSON value, bytes that are not JSON, and a wrong Content-Type. Every answer is
a 4xx in the API's own error format (or a 2xx when the body happens to be valid), never a 500, and
after a 4xx the database is unchanged (row counts and an md5 of every table of the cloud's apps).

The world the member routes need (a server, volume, snapshot, attachment, image, networks,
router, ...) is made once for the module, inside a transaction rolled back at the end; every case
runs in a savepoint rolled back after it, so each starts from the same world. Hypothesis is
derandomized (the same cases on every run) and the number of cases is printed at the end of the
run ("stratus fuzz: N cases ...").
"""
from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.security import fuzz_support as fz

# The test database is made for marked tests only; each test also runs in a savepoint of its own.
pytestmark = pytest.mark.django_db

ROUTES = fz.write_routes()
# hypothesis cases per route (on top of the fixed ones below); STRATUS_FUZZ_EXAMPLES=200 for a longer hunt
EXAMPLES = int(os.environ.get("STRATUS_FUZZ_EXAMPLES", "8"))
# derandomized (the same cases on every run) unless STRATUS_FUZZ_SEED picks other ones
SEED = int(os.environ["STRATUS_FUZZ_SEED"]) if os.environ.get("STRATUS_FUZZ_SEED") else None
MICROVERSION = {"nova": "compute latest", "cinder": "volume latest"}
BODY_TYPES = {"ImageDetail": "application/openstack-images-v2.1-json-patch",
              "ImageFile": "application/octet-stream", "ImageStage": "application/octet-stream"}
MEASURE = [{"timestamp": "2026-01-05T12:00:00", "value": 1.5}]
# Fixed cases every route gets, whatever hypothesis draws.
FIXED: list[tuple[bytes, str]] = [
    (b"", "application/json"), (b"{", "application/json"), (b"null", "application/json"),
    (b"NaN", "application/json"), (b"{\"a\": 1e999}", "application/json"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json"), (fz.encode({"a": fz.Deep(3000)}), "application/json"),
    (b"{\"\\u0000\": \"\\ud800\"}", "application/json"), (b"\xff\xfe", "application/json"),
    (b"<a/>", "application/xml"),
]


@dataclass
class World:
    token: str
    ids: dict[str, str]
    seeds: dict[str, list[Any]]
    sql: str
    baseline: dict[str, tuple[int, str]]
    client: Client = field(default_factory=Client)
    statuses: Counter = field(default_factory=Counter)
    valid: Counter = field(default_factory=Counter)


class Summary:
    """Prints the number of cases at the end of the run (a plugin registered by the fixture)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        total = sum(self.world.statuses.values())
        by_status = ", ".join(f"{count}x {status}" for status, count in sorted(self.world.statuses.items()))
        terminalreporter.write_line(
            f"stratus fuzz: {total} cases over {len(ROUTES)} write routes ({by_status}); "
            f"{sum(self.world.valid.values())} were valid bodies (2xx)")


def _build() -> tuple[dict[str, str], dict[str, list[Any]], str]:
    """The resources the member routes name, made through the services as a client would. Its own
    world, not the ``cloud`` fixture: it is built once per module (``world``), the fixture per test."""
    from django.utils import timezone

    from apps.compute import services as compute_services
    from apps.compute import states
    from apps.compute.models import ComputeNode, Flavor
    from apps.compute.services import server_reports, servers
    from apps.identity import services as identity
    from apps.identity.models import Role
    from apps.images import services as image_services
    from apps.networks import services as network_services
    from apps.networks.api import serializers as network_out
    from apps.networks.models import Network, NetworkAgent
    from apps.volumes import services as volume_services
    from apps.volumes.models import Snapshot, StorageBackend, Volume, VolumeType
    from tests.compute.test_servers_support import make_node
    from tests.identity import factories

    seed = factories.seed()
    admin = factories.admin_actor()
    token, _ = identity.token_issue(auth=factories.password_auth("admin", "admin-pw", project="admin"))
    admin_project = seed["projects"]["admin"]
    project = identity.project_create(actor=admin, name="fuzz-project")
    project2 = identity.project_create(actor=admin, name="fuzz-project2")
    domain = identity.domain_create(actor=admin, name="fuzz-domain")
    user = identity.user_create(actor=admin, name="fuzz-user", password="fuzz-pw-1", default_project_id=project.id)
    group = identity.group_create(actor=admin, name="fuzz-group")
    role = identity.role_create(actor=admin, name="fuzz-role")
    implied = identity.role_create(actor=admin, name="fuzz-implied")
    region = identity.region_create(actor=admin, region_id="FuzzRegion")
    service = identity.service_create(actor=admin, type="fuzz", name="fuzz")
    endpoint = identity.endpoint_create(actor=admin, service_id=service.id, interface="public",
                                        url="http://fuzz.invalid", region_id="RegionOne")
    admin_user_id = admin.user_id
    credential = identity.credential_create(actor=admin, user_id=admin_user_id, type="fuzz", blob="fuzz-blob")

    image = image_services.image_create(actor=admin, name="fuzz-image", disk_format="raw", container_format="bare",
                                        visibility="public")
    image = image_services.image_upload(actor=admin, image_id=image.id, chunks=[b"\0" * 4096])
    queued = image_services.image_create(actor=admin, name="fuzz-queued", disk_format="raw", container_format="bare",
                                         visibility="shared")
    image_services.member_create(actor=admin, image_id=queued.id, member_id=project.id)

    network = network_services.network_create(actor=admin, name="fuzz-net")
    subnet = network_services.subnet_create(actor=admin, network_id=network.id, cidr="10.77.0.0/24",
                                            ip_version=4, name="fuzz-subnet")
    network2 = network_services.network_create(actor=admin, name="fuzz-net2")
    subnet2 = network_services.subnet_create(actor=admin, network_id=network2.id, cidr="10.78.0.0/24",
                                             ip_version=4, name="fuzz-subnet2")
    public = Network.objects.filter(external=True).first()
    if public is None:
        public = network_services.network_create(actor=admin, name="fuzz-public", external=True, shared=False)
        network_services.subnet_create(actor=admin, network_id=public.id, cidr="203.0.113.0/24", ip_version=4)
    port = network_services.port_create(actor=admin, network_id=network.id, name="fuzz-port")
    router = network_services.router_create(actor=admin, name="fuzz-router")
    network_services.router_interface_add(actor=admin, router_id=router.id, subnet_id=subnet.id)
    fip = network_services.floatingip_create(actor=admin, floating_network_id=public.id)
    group_sg = network_services.security_group_create(actor=admin, name="fuzz-sg")
    rule = network_services.security_group_rule_create(actor=admin, security_group_id=group_sg.id,
                                                       direction="ingress", protocol="tcp",
                                                       port_range_min=22, port_range_max=22)
    pool = network_services.subnetpool_create(actor=admin, name="fuzz-pool", prefixes=["10.200.0.0/16"],
                                              default_prefixlen=24)
    agent = network_services.network_agent_report(host="fuzz-net-node", capable=True, hosts_dhcp_l3=True)
    agent_kind = network_out.agent_kinds(agent)[0][0]

    node = make_node("fuzz-node")
    flavor = Flavor.objects.get(name="m1.tiny")
    private_flavor = compute_services.flavor_create(actor=admin, name="fuzz-private", ram=64, vcpus=1, disk=1,
                                                    flavor_id="fuzz-private", is_public=False)
    [server] = servers.server_create(
        actor=admin, name="fuzz-vm", image_ref=image.id, flavor_ref=flavor.flavorid,
        networks=[{"uuid": network.id}], request_id=f"req-{uuid.uuid4()}")
    server_reports.server_spawned(instance_id=server.id, host=node.host, power_state=states.RUNNING)

    volume_services.backend_report(host="fuzz-store", capacity_gb=100, free_gb=90, path="/nonexistent")
    volume = volume_services.volume_create(actor=admin, size=1, name="fuzz-vol")
    volume2 = volume_services.volume_create(actor=admin, size=1, name="fuzz-vol2")
    Volume.objects.filter(pk__in=[volume.id, volume2.id]).update(status="available")
    snapshot = volume_services.snapshot_create(actor=admin, volume_id=volume.id, name="fuzz-snap")
    Snapshot.objects.filter(pk=snapshot.id).update(status="available")
    attachment = volume_services.attachment_create(actor=admin, volume_id=volume2.id, instance_uuid=server.id,
                                                   connector={"host": "fuzz-node"})
    volume_type = VolumeType.objects.first() or volume_services.volume_type_create(actor=admin, name="fuzz-type")
    from apps.telemetry import services as telemetry

    telemetry.archive_policy_create(actor=admin, name="fuzz-policy", definition=[{"granularity": 60, "points": 5}])
    telemetry.archive_policy_rule_create(actor=admin, name="fuzz-rule", metric_pattern="fuzz.*",
                                         archive_policy_name="fuzz-policy")
    telemetry_resource = telemetry.resource_create(actor=admin, type_name="instance", body={
        "id": str(uuid.uuid4()), "flavor_id": "1", "host": "fuzz-node", "display_name": "fuzz-res",
        "metrics": {"cpu_util": {"archive_policy_name": "low"}}})
    telemetry_metric = telemetry.metric_create(actor=admin, name="fuzz-metric", archive_policy_name="low")
    alarm_rule = {"metric": "cpu_util", "resource_type": "instance", "resource_id": str(telemetry_resource.id),
                  "threshold": 80, "comparison_operator": "gt", "aggregation_method": "mean", "granularity": 300,
                  "evaluation_periods": 2}
    fuzz_alarm = telemetry.alarm_create(actor=admin, name="fuzz-alarm", alarm_type="gnocchi_resources_threshold",
                                        rule=alarm_rule, alarm_actions=["log://"])
    # The world's compute, network and storage nodes stay up for the whole battery, which can outlast their
    # down times (60-75 s): their last heartbeat is dated an hour ahead, before the baseline is taken.
    # orchestration: a stack with a wait condition handle (the signal routes' resource; the update, its
    # preview and the stack actions' stack too), its walk run here
    from apps.orchestration import services as heat
    from apps.orchestration.models import StackResource
    from workers import orchestration as heat_tasks

    stack = heat.stack_create(actor=admin, name="fuzz-stack", template=HANDLE_TEMPLATE)
    heat.stack_advance(stack_id=stack.id)
    heat_tasks.resource_run(StackResource.objects.get(stack=stack, name="handle").id)
    heat_config = heat.software_config_create(actor=admin, body={"name": "fuzz-config", "config": "#!/bin/sh"})
    deployment = heat.software_deployment_create(actor=admin, body={"config_id": heat_config.id,
                                                                    "server_id": server.id})

    ahead = timezone.now() + timezone.timedelta(hours=1)
    ComputeNode.objects.filter(host="fuzz-node").update(last_heartbeat=ahead)
    NetworkAgent.objects.filter(host="fuzz-net-node").update(heartbeat_at=ahead)
    StorageBackend.objects.filter(host="fuzz-store").update(last_heartbeat=ahead)

    ids = {
        # identity
        "domains.pk": domain.id, "projects.pk": project.id, "users.pk": user.id, "groups.pk": group.id,
        "roles.pk": role.id, "regions.pk": region.id, "services.pk": service.id, "endpoints.pk": endpoint.id,
        "implies.implied_id": implied.id, "project_id": project.id, "domain_id": "default",
        "user_id": admin_user_id, "users.user_id": admin_user_id, "group_id": group.id,
        "role_id": Role.objects.get(name="reader").id, "tag": "fuzz-tag", "credentials.pk": credential.id,
        # images
        "images.image_id": queued.id, "members.member_id": project.id,
        # networks
        "quotas.project_id": project.id, "agents.pk": network_out.agent_id(agent, agent_kind),
        "v2.0.collection": "networks", "collection.pk": network.id, "networks.pk": network.id,
        "subnets.pk": subnet.id, "subnetpools.pk": pool.id, "ports.pk": port.id, "routers.pk": router.id,
        "floatingips.pk": fip.id, "security-groups.pk": group_sg.id, "security-group-rules.pk": rule.id,
        # compute
        "flavors.flavor_id": private_flavor.flavorid, "key": "fuzz-key", "os-quota-sets.project_id": project.id,
        "class_name": "default", "servers.server_id": server.id, "os-volume_attachments.volume_id": volume.id,
        "os-services.service_id": str(node.uuid),
        # volumes
        "v3.project_id": admin_project.id, "v1.project_id": admin_project.id,
        "volumes.volume_id": volume.id, "snapshots.snapshot_id": snapshot.id,
        "os-quota-sets.target": project.id, "types.type_id": volume_type.id,
        "attachments.attachment_id": attachment.id,
        # telemetry
        "archive_policy.name": "fuzz-policy", "archive_policy_rule.name": "fuzz-rule", "resource.type_name": "instance",
        "type_name.resource_id": str(telemetry_resource.id), "metric.metric_name": "cpu_util",
        "metric.metric_id": str(telemetry_metric.id), "alarms.alarm_id": str(fuzz_alarm.id),
        # orchestration
        "stacks.ref": stack.name, "stacks.stack_name": stack.name, "stack_name.stack_id": stack.id,
        "resources.resource_name": "handle", "signal.stack_id": stack.id, "stack_id.resource_name": "handle",
        "software_deployments.deployment_id": deployment.id, "software_configs.config_id": heat_config.id,
    }
    seeds: dict[str, list[Any]] = {
        # identity
        "AuthTokens": [{"auth": factories.password_auth_body("admin", "admin-pw", project="admin")}],
        "Domains": [{"domain": {"name": "fz-domain", "description": "d", "enabled": True}}],
        "DomainDetail": [{"domain": {"description": "d", "enabled": True}}],
        "Projects": [{"project": {"name": "fz-project", "domain_id": "default", "tags": ["a"], "enabled": True}}],
        "ProjectDetail": [{"project": {"description": "d", "enabled": True, "tags": ["b"]}}],
        "ProjectTags": [{"tags": ["a", "b"]}],
        "Users": [{"user": {"name": "fz-user", "password": "fz-pw-123", "domain_id": "default",
                            "default_project_id": project.id, "enabled": True, "email": "a@b.c"}}],
        "UserDetail": [{"user": {"description": "d", "enabled": True, "password": "fz-pw-456"}}],
        "UserPassword": [{"user": {"password": "fz-pw-789", "original_password": "fuzz-pw-1"}}],
        "AppCreds": [{"application_credential": {"name": "fz-ac", "description": "d", "roles": [{"name": "admin"}],
                                                 "expires_at": "2999-01-01T00:00:00", "unrestricted": False,
                                                 "access_rules": []}}],
        "Credentials": [{"credential": {"type": "fz", "user_id": admin_user_id, "blob": "b",
                                        "project_id": admin_project.id}}],
        "CredentialDetail": [{"credential": {"blob": "b2", "type": "fz2"}}],
        "Ec2Credentials": [{"tenant_id": admin_project.id}],
        "Groups": [{"group": {"name": "fz-group", "description": "d", "domain_id": "default"}}],
        "GroupDetail": [{"group": {"description": "d", "name": "fz-group2"}}],
        "Roles": [{"role": {"name": "fz-role", "description": "d", "options": {}}}],
        "RoleDetail": [{"role": {"description": "d", "name": "fz-role2"}}],
        "Regions": [{"region": {"id": "FzRegion", "description": "d", "parent_region_id": "RegionOne"}}],
        "RegionDetail": [{"region": {"description": "d"}}],
        "Services": [{"service": {"type": "fz", "name": "fz", "description": "d", "enabled": True}}],
        "keystone:ServiceDetail": [{"service": {"enabled": False, "name": "fz2"}}],
        "Endpoints": [{"endpoint": {"service_id": service.id, "interface": "internal", "url": "http://fz.invalid",
                                    "region_id": "RegionOne", "enabled": True}}],
        "EndpointDetail": [{"endpoint": {"url": "http://fz2.invalid", "interface": "admin"}}],
        # images
        "Images": [{"name": "fz-image", "disk_format": "qcow2", "container_format": "bare", "visibility": "private",
                    "min_disk": 1, "min_ram": 64, "tags": ["a"], "protected": False, "fz_property": "v"}],
        "ImageDetail": [[{"op": "replace", "path": "/name", "value": "n"},
                         {"op": "add", "path": "/fz_property", "value": "v"},
                         {"op": "replace", "path": "/min_ram", "value": 128}]],
        "ImageImport": [{"method": {"name": "glance-direct"}}, {"method": {"name": "web-download",
                                                                          "uri": "http://fz.invalid/x"}}],
        "Members": [{"member": project2.id}],
        "MemberDetail": [{"status": "accepted"}],
        # networks
        "Quota": [{"quota": {"network": 10, "port": 20, "subnet": -1}}],
        "AgentDetail": [{"agent": {"admin_state_up": True, "description": "d"}}],
        "AddRouterInterface": [{"subnet_id": subnet2.id}, {"port_id": port.id}],
        "RemoveRouterInterface": [{"subnet_id": subnet.id}],
        "Tags": [{"tags": ["a", "b"]}],
        "networks_collection": [{"network": {"name": "fz-net", "admin_state_up": True, "mtu": 1400,
                                             "port_security_enabled": True, "shared": False}}],
        "network_member": [{"network": {"name": "fz-net2", "description": "d", "mtu": 1300}}],
        "subnets_collection": [{"subnet": {"network_id": network2.id, "cidr": "10.79.0.0/24", "ip_version": 4,
                                           "allocation_pools": [{"start": "10.79.0.10", "end": "10.79.0.20"}],
                                           "dns_nameservers": ["8.8.8.8"], "enable_dhcp": True,
                                           "host_routes": [{"destination": "10.1.0.0/16", "nexthop": "10.79.0.1"}]}}],
        "subnet_member": [{"subnet": {"name": "s", "dns_nameservers": ["1.1.1.1"], "gateway_ip": "10.77.0.1"}}],
        "subnetpools_collection": [{"subnetpool": {"name": "fz-pool", "prefixes": ["10.210.0.0/16"],
                                                   "default_prefixlen": 24, "min_prefixlen": 8,
                                                   "max_prefixlen": 28}}],
        "subnetpool_member": [{"subnetpool": {"name": "fz-pool2", "prefixes": ["10.200.0.0/16", "10.201.0.0/16"]}}],
        "ports_collection": [{"port": {"network_id": network.id, "name": "fz-port",
                                       "fixed_ips": [{"subnet_id": subnet.id, "ip_address": "10.77.0.50"}],
                                       "security_groups": [group_sg.id], "dns_name": "fz",
                                       "allowed_address_pairs": [{"ip_address": "10.77.0.60"}]}}],
        "port_member": [{"port": {"name": "fz-port2", "admin_state_up": False, "security_groups": []}}],
        "routers_collection": [{"router": {"name": "fz-router",
                                           "external_gateway_info": {"network_id": public.id,
                                                                     "enable_snat": True}}}],
        "router_member": [{"router": {"name": "fz-router2", "routes": [{"destination": "10.5.0.0/16",
                                                                          "nexthop": "10.77.0.9"}]}}],
        "floatingips_collection": [{"floatingip": {"floating_network_id": public.id, "description": "d"}}],
        "floatingip_member": [{"floatingip": {"port_id": None, "description": "d"}}],
        "security_groups_collection": [{"security_group": {"name": "fz-sg", "description": "d",
                                                           "stateful": True}}],
        "security_group_member": [{"security_group": {"name": "fz-sg2", "description": "d"}}],
        "security_group_rules_collection": [{"security_group_rule": {
            "security_group_id": group_sg.id, "direction": "ingress", "protocol": "udp", "ethertype": "IPv4",
            "port_range_min": 53, "port_range_max": 53, "remote_ip_prefix": "10.0.0.0/8"}}],
        "security_group_rule_member": [{"security_group_rule": {"description": "d"}}],
        # compute
        "Flavors": [{"flavor": {"name": "fz-flavor", "ram": 64, "vcpus": 1, "disk": 1, "id": "fz-flavor",
                                "swap": 0, "rxtx_factor": 1.0, "os-flavor-access:is_public": True,
                                "OS-FLV-EXT-DATA:ephemeral": 0, "description": "d"}}],
        "FlavorAction": [{"addTenantAccess": {"tenant": project.id}}, {"removeTenantAccess": {"tenant": project.id}}],
        "FlavorExtraSpecs": [{"extra_specs": {"hw:cpu_policy": "shared", "fz": "v"}}],
        "FlavorExtraSpec": [{"fuzz-key": "v"}],
        "KeyPairs": [{"keypair": {"name": "fz-key", "type": "ssh"}}],
        "nova:QuotaSet": [{"quota_set": {"instances": 10, "cores": 20, "ram": 4096, "force": False}}],
        "nova:QuotaClassSet": [{"quota_class_set": {"instances": 10, "cores": 20}}],
        "ServerGroups": [{"server_group": {"name": "fz-group", "policy": "anti-affinity",
                                           "rules": {"max_server_per_host": 2}}},
                         {"server_group": {"name": "fz-group", "policies": ["affinity"]}}],
        "Servers": [{"server": {"name": "fz-vm", "imageRef": image.id, "flavorRef": flavor.flavorid,
                                "networks": [{"uuid": network.id}], "metadata": {"a": "b"},
                                "min_count": 1, "max_count": 1, "user_data": "aGVsbG8=",
                                "security_groups": [{"name": "default"}],
                                "block_device_mapping_v2": [{"boot_index": 0, "uuid": image.id,
                                                             "source_type": "image", "destination_type": "local"}]}},
                    {"server": {"name": "fz-vm", "imageRef": image.id, "flavorRef": flavor.flavorid,
                                "networks": [{"uuid": network.id}]}}],
        "ServerAction": [{"os-stop": None}, {"reboot": {"type": "SOFT"}}, {"resize": {"flavorRef": "2"}},
                         {"createImage": {"name": "fz-snap", "metadata": {"a": "b"}}},
                         {"rebuild": {"imageRef": image.id, "name": "n", "metadata": {}}},
                         {"addSecurityGroup": {"name": "default"}}, {"changePassword": {"adminPass": "x"}},
                         {"lock": {"locked_reason": "r"}},
                         {"pause": None}, {"shelve": None}, {"os-resetState": {"state": "error"}},
                         {"rescue": {"adminPass": "x", "rescue_image_ref": image.id}},
                         {"addFloatingIp": {"address": "203.0.113.5"}}, {"migrate": {"host": "fuzz-node"}},
                         {"os-migrateLive": {"host": None, "block_migration": "auto"}},
                         {"confirmResize": None}, {"trigger_crash_dump": None}],
        "ServerMetadata": [{"metadata": {"a": "b", "c": "d"}}],
        "ServerMetadataItem": [{"meta": {"fuzz-key": "v"}}],
        "ServerTags": [{"tags": ["a", "b"]}],
        "ServerVolumeAttachments": [{"volumeAttachment": {"volumeId": volume.id, "device": "/dev/vdb"}}],
        "ServerVolumeAttachment": [{"volumeAttachment": {"volumeId": volume2.id, "delete_on_termination": True}}],
        "ServerDetail": [{"server": {"name": "fz-vm2", "accessIPv4": "10.0.0.1"}}],
        "ServiceAction": [{"host": "fuzz-node", "binary": "nova-compute", "disabled_reason": "r",
                           "forced_down": True}],
        "nova:ServiceDetail": [{"status": "disabled", "disabled_reason": "r"}, {"forced_down": True}],
        # volumes
        "Volumes": [{"volume": {"size": 1, "name": "fz-vol", "description": "d", "metadata": {"a": "b"},
                                "volume_type": volume_type.name, "availability_zone": "nova"}},
                    {"volume": {"snapshot_id": snapshot.id}}, {"volume": {"size": 1, "imageRef": image.id}},
                    {"volume": {"source_volid": volume.id}}],
        "VolumeAction": [{"os-extend": {"new_size": 2}}, {"os-reset_status": {"status": "available"}},
                         {"os-set_bootable": {"bootable": True}},
                         {"os-attach": {"instance_uuid": server.id, "mountpoint": "/dev/vdb"}},
                         {"os-detach": {}}, {"os-reserve": {}}, {"os-unreserve": {}},
                         {"os-update_readonly_flag": {"readonly": True}},
                         {"os-volume_upload_image": {"image_name": "fz", "disk_format": "raw", "force": False}},
                         {"os-retype": {"new_type": volume_type.name}}, {"os-force_delete": {}},
                         {"os-initialize_connection": {"connector": {"host": "h"}}},
                         {"os-terminate_connection": {"connector": {"host": "h"}}},
                         {"os-begin_detaching": {}}, {"os-roll_detaching": {}}],
        "VolumeMetadata": [{"metadata": {"a": "b"}}],
        "VolumeMetadataItem": [{"meta": {"fuzz-key": "v"}}],
        "VolumeDetail": [{"volume": {"name": "n", "description": "d", "metadata": {"x": "y"}}}],
        "Snapshots": [{"snapshot": {"volume_id": volume.id, "name": "fz-snap", "force": True,
                                    "metadata": {"a": "b"}}}],
        "SnapshotMetadata": [{"metadata": {"a": "b"}}],
        "SnapshotMetadataItem": [{"meta": {"fuzz-key": "v"}}],
        "SnapshotDetail": [{"snapshot": {"name": "n", "description": "d"}}],
        "cinder:QuotaSet": [{"quota_set": {"volumes": 10, "gigabytes": 100, "snapshots": 5}}],
        "cinder:QuotaClassSet": [{"quota_class_set": {"volumes": 10, "gigabytes": 100}}],
        "VolumeTypes": [{"volume_type": {"name": "fz-type", "description": "d", "os-volume-type-access:is_public":
                                         True, "extra_specs": {"a": "b"}}}],
        "VolumeTypeExtraSpecs": [{"extra_specs": {"a": "b"}}],
        "VolumeTypeExtraSpec": [{"fuzz-key": "v"}],
        "VolumeTypeDetail": [{"volume_type": {"description": "d", "name": "fz-type2", "is_public": True}}],
        "SnapshotAction": [{"os-reset_status": {"status": "available"}}, {"os-force_delete": {}},
                           {"os-update_snapshot_status": {"status": "available", "progress": "90%"}}],
        "Attachments": [{"attachment": {"volume_uuid": volume.id, "instance_uuid": server.id,
                                        "connector": {"host": "h"}, "mode": "rw"}}],
        "AttachmentAction": [{"os-complete": {}}],
        "AttachmentDetail": [{"attachment": {"connector": {"host": "h", "initiator": "i"}}}],
        # telemetry
        "gnocchi:ArchivePolicies": [{"name": "fz-pol", "back_window": 0, "aggregation_methods": ["mean", "max"],
                                     "definition": [{"granularity": "1s", "timespan": "1 hour"}]}],
        "gnocchi:ArchivePolicyDetail": [{"definition": [{"granularity": 60, "points": 10}]}],
        "gnocchi:ArchivePolicyRules": [{"name": "fz-rule", "metric_pattern": "fz.*", "archive_policy_name": "low"}],
        "gnocchi:ArchivePolicyRuleDetail": [{"name": "fz-rule2"}],
        "gnocchi:ResourceTypes": [{"name": "fz-type", "attributes": {"size": {"type": "number", "required": False},
                                                                    "label": {"type": "string", "max_length": 20}}}],
        "gnocchi:Resources": [{"id": "fz-res", "flavor_id": "1", "host": "h", "display_name": "d",
                               "started_at": "2026-01-01T00:00:00",
                               "metrics": {"cpu": {"archive_policy_name": "low"}}}],
        "gnocchi:ResourceSearch": [{"and": [{"=": {"flavor_id": "1"}}, {">=": {"started_at": "2020-01-01"}}]}],
        "gnocchi:ResourceDetail": [{"display_name": "n", "flavor_id": "2", "ended_at": "2030-01-01T00:00:00"}],
        "gnocchi:ResourceMetrics": [{"mem": {"archive_policy_name": "low", "unit": "B"}}],
        "gnocchi:Metrics": [{"name": "fz", "unit": "B", "archive_policy_name": "low"}],
        "gnocchi:Measures": [MEASURE],
        "gnocchi:BatchMetrics": [{str(telemetry_metric.id): MEASURE}],
        "gnocchi:BatchResources": [{str(telemetry_resource.id): {"cpu_util": MEASURE}},
                                   {str(telemetry_resource.id): {"cpu_util": {"measures": MEASURE}}}],
        "gnocchi:AggregationResource": [{"=": {"flavor_id": "1"}}, {}],
        "aodh:Alarms": [{"name": "fz-alarm", "type": "gnocchi_resources_threshold", "severity": "moderate",
                         "gnocchi_resources_threshold_rule": alarm_rule, "alarm_actions": ["https://example.com/h"],
                         "time_constraints": [{"name": "tc", "start": "0 9 * * 1-5", "duration": 3600}]},
                        {"name": "fz-alarm2", "type": "gnocchi_aggregation_by_metrics_threshold",
                         "gnocchi_aggregation_by_metrics_threshold_rule": {
                             "metrics": [str(telemetry_metric.id)], "threshold": 1, "aggregation_method": "max"}}],
        "aodh:AlarmDetail": [{"name": "fz-alarm3", "type": "gnocchi_resources_threshold", "enabled": False,
                              "gnocchi_resources_threshold_rule": alarm_rule, "ok_actions": ["log://"]}],
        "aodh:AlarmState": ["ok", "alarm"],
        "aodh:AlarmQuery": [{"filter": '{"and": [{"=": {"name": "fuzz-alarm"}}, {"!=": {"state": "ok"}}]}',
                             "orderby": '[{"timestamp": "desc"}]', "limit": 3}],
        "aodh:AlarmHistoryQuery": [{"filter": '{"=": {"type": "creation"}}', "limit": 3}],
        "gnocchi:Aggregates": [{"operations": f"(aggregate max (metric (({telemetry_metric.id} mean))))"},
                               {"operations": "(metric cpu_util mean)", "resource_type": "instance",
                                "search": {"=": {"flavor_id": "1"}}}],
        "heat:Stacks": [{"stack_name": "fz", "template": HEAT_TEMPLATE, "parameters": {"n": 4}, "timeout_mins": 5,
                         "disable_rollback": False, "tags": "a,b", "environment": {"parameters": {"n": 5}}}],
        "heat:StackPreview": [{"stack_name": "fz", "template": HEAT_TEMPLATE, "parameters": {"n": 4}}],
        "heat:Validate": [{"template": HEAT_TEMPLATE, "environment": {"parameter_defaults": {"n": 3}}}],
        "heat:StackResourceSignal": [{"status": "SUCCESS", "reason": "r", "id": "fz", "data": {"a": [1, "b"]}},
                                     {"status": "FAILURE"}, {}],
        "heat:TokenSignal": [{"status": "SUCCESS", "reason": "r", "id": "fz", "data": "d"}],
        "heat:StackDetail": [{"template": HANDLE_TEMPLATE, "timeout_mins": 5, "disable_rollback": False,
                              "clear_parameters": ["n"], "tags": "x"}],
        "heat:StackLookup": [{"template": HANDLE_TEMPLATE, "environment": {"parameter_defaults": {"n": 7}}}],
        "heat:StackUpdatePreview": [{"template": HANDLE_TEMPLATE}],
        "heat:StackActions": [{"check": None}, {"suspend": None}, {"resume": None}, {"cancel_update": None}],
    }
    return ids, seeds, token


HANDLE_TEMPLATE = {"heat_template_version": "2018-08-31",
                   "resources": {"handle": {"type": "OS::Heat::WaitConditionHandle"}}}
HEAT_TEMPLATE = {"heat_template_version": "2018-08-31", "parameters": {"n": {"type": "number", "default": 8}},
                 "resources": {"r": {"type": "OS::Heat::RandomString", "properties": {"length": {"get_param": "n"}}},
                               "v": {"type": "OS::Heat::Value", "properties": {"value": {"get_attr": ["r", "value"]}}}},
                 "outputs": {"o": {"value": {"get_attr": ["v", "value"]}}}}


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, django_db_setup: None, django_db_blocker: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from apps.images import storage

    images = tmp_path_factory.mktemp("fuzz-images")
    with django_db_blocker.unblock(), override_settings(STRATUS_IMAGE_STORE="file",
                                                       STRATUS_IMAGE_DIR=str(images)):
        storage.reset()
        with transaction.atomic():
            ids, seeds, token = _build()
            sql = fz.snapshot_sql()
            # every case runs in a savepoint rolled back after it: each starts from this state
            world = World(token=token, ids=ids, seeds=seeds, sql=sql, baseline=fz.snapshot(sql))
            request.config.pluginmanager.register(Summary(world), "stratus-fuzz-summary")
            yield world
            transaction.set_rollback(True)
        storage.reset()


def send(world: World, route: fz.Route, body: bytes, content_type: str, *, latest: bool) -> None:
    """One case: the request in a savepoint that is rolled back, and every rule checked."""
    path = fz.route_path(route, world.ids)
    headers = {"HTTP_X_AUTH_TOKEN": world.token}
    if latest and route.api in MICROVERSION:
        headers["HTTP_OPENSTACK_API_VERSION"] = MICROVERSION[route.api]
    with transaction.atomic():
        try:
            response = world.client.generic(route.method, path, data=body, content_type=content_type, **headers)
        except Exception as exc:  # a 500: Django's test client re-raises what the view raised
            world.statuses[500] += 1
            raise AssertionError(f"{route.id} ({path}) raised {type(exc).__name__}: {exc!s:.300} "
                                 f"for {content_type} {body[:300]!r}") from exc
        status = response.status_code
        world.statuses[status] += 1
        where = f"{route.id} ({path}) answered {status} to {content_type} {body[:300]!r}"
        assert status < 500, f"{where}: {response.content[:500]!r}"
        if 200 <= status < 300:
            world.valid[route.id] += 1
        else:
            assert 400 <= status < 500, f"{where}: {response.content[:300]!r}"
            assert response.get("Content-Type", "").startswith("application/json"), where
            problem = fz.error_shape_problem(route.api, status, response.json())
            assert problem is None, f"{where}: {problem}"
            changed = fz.diff(world.baseline, fz.snapshot(world.sql))
            assert not changed, f"{where} but changed the database: {changed}"
        transaction.set_rollback(True)


def _seed(world: World, route: fz.Route) -> list[Any]:
    return world.seeds.get(f"{route.api}:{route.view}") or world.seeds.get(route.view) or [{}]


@pytest.mark.parametrize("route", ROUTES, ids=[route.id for route in ROUTES])
def test_fixed_malformed_bodies(world: World, route: fz.Route) -> None:
    """Each route, the same hand-picked bodies: empty, truncated, scalar, NaN, 100 000-deep nesting,
    lone surrogate, NUL, bytes that are not UTF-8, a form and XML; then each valid body with all its
    strings NUL-bearing, a lone surrogate or 70 000 characters long, and all its integers 2**70,
    -2**70 or -1."""
    for body, content_type in FIXED:
        send(world, route, body, content_type, latest=True)
    content_type = BODY_TYPES.get(route.view, "application/json")
    for poison in fz.POISONS:
        send(world, route, fz.encode(fz.poison(_seed(world, route)[0], **poison)), content_type, latest=True)


@pytest.mark.parametrize("route", ROUTES, ids=[route.id for route in ROUTES])
def test_fuzzed_bodies(world: World, route: fz.Route) -> None:
    """Each route, EXAMPLES bodies drawn by hypothesis from its valid bodies."""
    content_type = BODY_TYPES.get(route.view, "application/json")

    @settings(max_examples=EXAMPLES, derandomize=SEED is None, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @hypothesis_seed(SEED)
    @given(seed=st.sampled_from(_seed(world, route)), data=st.data(), latest=st.booleans())
    def case(seed: Any, data: st.DataObject, latest: bool) -> None:
        body, kind = data.draw(fz.request_body(seed))
        send(world, route, body, content_type if kind == "application/json" else kind, latest=latest)

    case()


def test_every_api_has_write_routes() -> None:
    """The resolver gives the battery routes of each of the five APIs (none silently dropped)."""
    assert {route.api for route in ROUTES} == set(fz.API_PREFIXES.values())
    assert len(ROUTES) > 100


def test_world_names_every_member_route(world: World) -> None:
    """Every route's path names a resource of the world (a route with an unknown id would answer 404
    before it parses a body, and fuzz nothing)."""
    missing = [route.id for route in ROUTES
               if "fuzz-unknown-id" in fz.route_path(route, world.ids) and ".*" not in route.regex]
    assert not missing, missing


@pytest.mark.parametrize("raw", [
    b"[" * 65 + b"]" * 65, b"[" * 100_000 + b"]" * 100_000, b"NaN", b"[Infinity]", b"{\"a\": -Infinity}",
    b"1e999", b"[-1e999]", b"\"a\\u0000b\"", b"{\"\\u0000\": 1}", b"\"\\ud800\"", b"[\"\\udfff\"]",
    b"\xff\xfe", b"9" * 5000, b"{", b"",
])
def test_parser_refuses(raw: bytes) -> None:
    """The shared parser (apps/core/parsers.py) refuses what no OpenStack body holds, with a ValueError
    that every API turns into its own 400."""
    from apps.core import parsers

    with pytest.raises(ValueError):
        parsers.loads(raw)


def test_parser_takes_what_bodies_hold() -> None:
    from apps.core import parsers

    assert parsers.loads(b"[" * 64 + b"]" * 64) is not None
    assert parsers.loads(b"{\"a\": [1, -2.5, 1e308, \"\\ud83d\\ude00 \\u00e9\", null, true]}") == {
        "a": [1, -2.5, 1e308, "\U0001f600 \u00e9", None, True]}
    assert parsers.loads("{\"name\": \"caf\u00e9\"}".encode()) == {"name": "caf\u00e9"}


# Routes whose valid bodies the world cannot take (and why); their mutations are still sent.
NO_VALID_BODY = {
    "PUT /identity/v3/regions/{pk}": "PUT creates a region with that id, and the world's exists (409)",
    "PUT /network/v2.0/security-group-rules/{pk}": "a rule cannot be updated (405)",
    "POST /image/v2/images/{image_id}/import": "glance-direct needs staged data, web-download a queued image",
    "PUT /image/v2/images/{image_id}/members/{member_id}": "only the member project sets its status, the battery "
                                                           "calls as the owner's admin",
    "PUT /compute/v2.1/servers/{server_id}/tags": "tags need 2.26, the compute API stops at 2.1",
    "PUT /compute/v2.1/os-services/{action} [force-down]": "force-down needs 2.11, the compute API stops at 2.1",
    "PUT /compute/v2.1/os-services/{service_id}": "needs 2.53, the compute API stops at 2.1",
    "PUT /compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}": "the world's server has no volume "
                                                                              "attached to swap",
    # a wait condition handle's token-free URL: its credential is the handle's own secret, never the Keystone
    # token the battery sends (a token there is refused: tests/security/test_heat_signals.py, which also
    # sends valid signals with the secret)
    "POST /orchestration/v1/signal/{stack_id}/{resource_name}": "the handle's secret, not a token, signs it",
    "PUT /orchestration/v1/signal/{stack_id}/{resource_name}": "the handle's secret, not a token, signs it",
}


def test_valid_bodies_are_valid(world: World) -> None:
    """The bodies the mutations start from reach the service and succeed (so a mutation is refused for
    what it changed, not for a wrong path or an invalid seed): each route with a seed of its own takes
    at least one of them with a 2xx."""
    refused = {}
    for route in ROUTES:
        seeds = world.seeds.get(f"{route.api}:{route.view}") or world.seeds.get(route.view)
        if not seeds or route.id in NO_VALID_BODY:
            continue
        answers = []
        for seed in seeds:
            with transaction.atomic():
                response = world.client.generic(
                    route.method, fz.route_path(route, world.ids), data=fz.encode(seed),
                    content_type=BODY_TYPES.get(route.view, "application/json"), HTTP_X_AUTH_TOKEN=world.token,
                    **({"HTTP_OPENSTACK_API_VERSION": MICROVERSION[route.api]} if route.api in MICROVERSION else {}))
                answers.append(response.status_code)
                transaction.set_rollback(True)
        if not any(200 <= status < 300 for status in answers):
            refused[route.id] = (answers, response.content[:160])
    assert not refused, "\n".join(f"{route}: {answer}" for route, answer in refused.items())
