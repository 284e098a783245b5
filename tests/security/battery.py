"""The isolation battery: every resource of every API declared once, and the cases it yields.

A declaration (``Resource``) says where a resource lives (its member path, its list paths), how the
seeded cloud makes one for project A (``make``: services, as a client's request would), how it is
updated and which actions it has (each with a body). ``cases()`` turns the table into pytest cases:

- ``outsider``: a member of project B gets the API's "not found" (in that API's error format) on
  show, update, delete and every action, and the row is unchanged in the database;
- ``list``: B never sees it in a list, nor through a filter (name, id, project...);
- ``marker``: B's list with ``marker=<A's id>`` answers as it does for an unknown marker (a 400/404 in
  the API's format), never a page positioned after A's row;
- ``reader``: a reader of project A gets 403 on every write, and nothing changes;
- ``admin``: the admin sees it (200); ``owner``: so does A's member (the control of the refusals).

Later APIs join by adding a ``Resource`` to ``RESOURCES`` and a line to ``World.build``.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.forms.models import model_to_dict
from django.test import Client

from tests.api_client import GLANCE_PATCH, JSON, OCTET, ApiClient


@dataclass(frozen=True)
class Call:
    """One request on a resource: ``path`` is appended to the member path (``""`` is the member)."""

    name: str
    method: str
    path: str = ""
    body: Any = None
    content_type: str = JSON
    write: bool = True          # a reader of the owning project must get 403
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Resource:
    api: str                    # identity | images | networks | compute | volumes | objects | telemetry | orchestration
    name: str
    member: str                 # path template: {id} the resource, {pid} the caller's project
    model: str                  # "app_label.Model" of its row (checked unchanged after a refused call)
    style: str                  # error format: keystone | glance | neutron | nova
    lists: tuple[str, ...] = ()  # list paths (templates like member)
    filters: tuple[str, ...] = ("name={name}",)  # query strings: {id} {name} {project}
    marker: bool = True
    update: Call | None = None
    delete: bool = True
    actions: tuple[Call, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    pk_field: str = "pk"
    admin_lists: tuple[str, ...] = ()  # lists only the admin may read (the admin is their control)
    admin: bool = True          # the admin shows it at ``member``
    reader: bool = True         # a reader of A is refused every write (not for a user's own resources)
    admin_query: str = ""       # what the admin adds to the member path to name A's resource
    # the status an outsider gets on a write: 404 (as if it did not exist); an admin-only operation
    # may answer 403 to every non-admin whatever the id (no oracle either way)
    outsider_write_status: int = 404
    outsider_status: dict[str, int] = field(default_factory=dict)  # per call name
    xfail: dict[str, str] = field(default_factory=dict)            # case id -> reason

    @property
    def key(self) -> str:
        return f"{self.api}.{self.name}"


# ---- the table -------------------------------------------------------------------------------------

C = "/compute/v2.1"
N = "/network/v2.0"
V = "/volume/v3/{pid}"
G = "/image/v2"
K = "/identity/v3"
NOVA_VERSION: tuple[tuple[str, str], ...] = ()
# ?user_id= on key pairs (an admin's look at another user's) counts from microversion 2.10
NOVA_KEYPAIR_VERSION = (("OpenStack-API-Version", "compute 2.10"),)
CINDER_VERSION = (("OpenStack-API-Version", "volume 3.44"),)


NEUTRON_TAGS = (Call("tags", "GET", "/tags", write=False), Call("tag-add", "PUT", "/tags/red"),
                Call("tags-replace", "PUT", "/tags", body={"tags": ["x"]}), Call("tag-delete", "DELETE", "/tags/red"))


def _neutron(name: str, collection: str, *, update: dict[str, Any] | None, filters: tuple[str, ...] = (),
             actions: tuple[Call, ...] = NEUTRON_TAGS, **kw: Any) -> Resource:
    return Resource(
        api="networks", name=name, member=f"{N}/{collection}/{{id}}", model=kw.pop("model"), style="neutron",
        lists=(f"{N}/{collection}",),
        filters=("id={id}", "project_id={project}", "tenant_id={project}", *filters),
        update=Call("update", "PUT", body={name: update}) if update is not None else None,
        actions=actions, xfail=kw.pop("xfail", {}), **kw)


def _actions(*pairs: tuple[str, Any]) -> tuple[Call, ...]:
    """``POST .../action {name: body}`` for each pair, and an unknown action (404 before 400)."""
    return (*(Call(f"action:{name}", "POST", "/action", body={name: body}) for name, body in pairs),
            Call("action:no-such-action", "POST", "/action", body={"no-such-action": {}}, write=False))


SERVER_ACTIONS = _actions(
    ("reboot", {"type": "SOFT"}), ("os-stop", None), ("os-start", None), ("pause", None), ("unpause", None),
    ("suspend", None), ("resume", None), ("lock", None), ("unlock", None),
    ("rebuild", {"imageRef": "{image}"}), ("resize", {"flavorRef": "2"}), ("confirmResize", None),
    ("revertResize", None), ("createImage", {"name": "snap"}), ("os-getConsoleOutput", {}),
    ("addSecurityGroup", {"name": "default"}), ("removeSecurityGroup", {"name": "default"}),
)

VOLUME_ACTIONS = _actions(
    ("os-extend", {"new_size": 2}), ("os-set_bootable", {"bootable": True}), ("os-reserve", {}),
    ("os-unreserve", {}), ("os-attach", {"instance_uuid": str(uuid.UUID(int=1)), "mountpoint": "/dev/vdb"}),
    ("os-detach", {}), ("os-volume_upload_image", {"image_name": "battery", "disk_format": "qcow2"}),
)

SNAPSHOT_ACTIONS = _actions(
    ("os-reset_status", {"status": "error"}), ("os-force_delete", {}),
    ("os-update_snapshot_status", {"status": "error"}),
)


def _metadata_calls(wrapper: str = "meta") -> tuple[Call, ...]:
    return (
        Call("metadata", "GET", "/metadata", write=False),
        Call("metadata-set", "POST", "/metadata", body={"metadata": {"k": "v2"}}),
        Call("metadata-replace", "PUT", "/metadata", body={"metadata": {"k": "v2"}}),
        Call("metadata-item", "GET", "/metadata/k", write=False),
        Call("metadata-item-set", "PUT", "/metadata/k", body={wrapper: {"k": "v3"}}),
        Call("metadata-item-delete", "DELETE", "/metadata/k"),
    )


IMAGE_UPDATE = Call("update", "PATCH", body=[{"op": "replace", "path": "/name", "value": "x"}],
                    content_type=GLANCE_PATCH)
IMAGE_ACTIONS = (Call("download", "GET", "/file", write=False),
                 Call("upload", "PUT", "/file", body=b"data", content_type=OCTET),
                 Call("stage", "PUT", "/stage", body=b"data", content_type=OCTET),
                 Call("import", "POST", "/import", body={"method": {"name": "glance-direct"}}),
                 Call("tasks", "GET", "/tasks", write=False),
                 Call("deactivate", "POST", "/actions/deactivate"),
                 Call("reactivate", "POST", "/actions/reactivate"),
                 Call("tag-add", "PUT", "/tags/red"), Call("tag-delete", "DELETE", "/tags/red"),
                 Call("members", "GET", "/members", write=False),
                 Call("member-add", "POST", "/members", body={"member": "{other_project}"}),
                 Call("member", "GET", "/members/{other_project}", write=False),
                 Call("member-update", "PUT", "/members/{other_project}", body={"status": "accepted"}),
                 Call("member-delete", "DELETE", "/members/{other_project}"))


SW = "/object-store/v1/AUTH_{project}"  # A's account, whoever asks
SW_JSON = (("Accept", "application/json"),)
OBJECT_STORE: tuple[Resource, ...] = (
    # A's container "iso-cont-a" (holding "iso-cont-a.txt", so that its listing names it)
    Resource(api="objects", name="container", member=f"{SW}/{{id}}", model="objects.Container", style="swift",
             pk_field="name", headers=SW_JSON, marker=False,
             lists=("/object-store/v1/AUTH_{pid}", SW), filters=("prefix={name}", "prefix=iso", "reverse=true"),
             update=Call("update", "POST", headers=(("X-Container-Meta-K", "x"),)),
             actions=(Call("head", "HEAD", write=False),
                      Call("acl-public", "POST", headers=(("X-Container-Read", ".r:*,.rlistings"),)),
                      Call("acl-write", "PUT", headers=(("X-Container-Write", "*:*"),)),
                      Call("put-object", "PUT", "/new", body=b"data", content_type=OCTET),
                      Call("delimited", "GET", "?delimiter=/&prefix=iso", write=False))),
    # A's object "iso-cont-a.txt" in it
    Resource(api="objects", name="object", member=f"{SW}/iso-cont-a/{{id}}", model="objects.Object",
             style="swift", pk_field="name", headers=SW_JSON, marker=False,
             lists=(f"{SW}/iso-cont-a",),
             filters=("prefix={name}", "prefix=iso&delimiter=/", "marker=a"),
             update=Call("update", "POST", headers=(("X-Object-Meta-K", "x"),)),
             actions=(Call("head", "HEAD", write=False),
                      Call("range", "GET", headers=(("Range", "bytes=0-3"),), write=False),
                      Call("overwrite", "PUT", body=b"mine now", content_type=OCTET),
                      Call("copy", "COPY", headers=(("Destination", "iso-cont-a/copied"),)),
                      # into the caller's own account (B's container): the source is not B's to read
                      Call("copy-out", "COPY", headers=(("Destination", "iso-cont-b/stolen"),
                                                        ("Destination-Account", "AUTH_{pid}")), write=False),
                      Call("manifest", "GET", "?multipart-manifest=get", write=False),
                      Call("expire", "POST", headers=(("X-Delete-After", "1"),)))),
)


M = "/metric/v1"  # Gnocchi
AODH = "/alarming/v2"
MEASURE = [{"timestamp": "2026-01-05T12:00:00", "value": 1.0}]
TELEMETRY: tuple[Resource, ...] = (
    # A's instance resource "iso-res-a" (display_name) with its metric cpu_util
    Resource(api="telemetry", name="resource", member=f"{M}/resource/instance/{{id}}", model="telemetry.Resource",
             style="gnocchi", lists=(f"{M}/resource/instance", f"{M}/resource/generic"),
             filters=("details=true", "sort=display_name:asc", "filter=display_name%3D%27{name}%27"),
             update=Call("update", "PATCH", body={"display_name": "x"}),
             actions=(Call("history", "GET", "/history", write=False), Call("metrics", "GET", "/metric", write=False),
                      Call("metric-show", "GET", "/metric/cpu_util", write=False),
                      Call("measures-show", "GET", "/metric/cpu_util/measures", write=False),
                      Call("measures-add", "POST", "/metric/cpu_util/measures", body=MEASURE),
                      Call("metric-add", "POST", "/metric", body={"m2": {}}),
                      Call("metric-delete", "DELETE", "/metric/cpu_util"))),
    # A's metric "iso-metric-a" (not on a resource)
    Resource(api="telemetry", name="metric", member=f"{M}/metric/{{id}}", model="telemetry.Metric", style="gnocchi",
             lists=(f"{M}/metric",), filters=("name={name}", "archive_policy_name=low"),
             actions=(Call("measures-show", "GET", "/measures", write=False),
                      Call("measures-show-max", "GET", "/measures?aggregation=max&granularity=300", write=False),
                      Call("measures-add", "POST", "/measures", body=MEASURE))),
    # A's alarm "iso-alarm-a" on A's resource (Aodh)
    Resource(api="telemetry", name="alarm", member=f"{AODH}/alarms/{{id}}", model="telemetry.Alarm", style="aodh",
             lists=(f"{AODH}/alarms",),
             filters=("q.field=name&q.op=eq&q.value={name}", "q.field=alarm_id&q.op=eq&q.value={id}",
                      "q.field=project_id&q.op=eq&q.value={project}", "q.field=all_projects&q.op=eq&q.value=true",
                      "sort=name:asc"),
             update=Call("update", "PUT", body={"severity": "critical", "enabled": False}),
             actions=(Call("state", "GET", "/state", write=False), Call("state-set", "PUT", "/state", body="ok"),
                      Call("history", "GET", "/history", write=False))),
)


H = "/orchestration/v1/{pid}"  # Heat
ISO_TEMPLATE = {"heat_template_version": "2016-10-14", "resources": {"r": {"type": "OS::Heat::RandomString",
                                                                        "properties": {"length": 9}}}}
ORCHESTRATION: tuple[Resource, ...] = (
    # A's stack "iso-stack-a" (created: a RandomString "r", an output "o"), at /stacks/{name}/{id}
    Resource(api="orchestration", name="stack", member=f"{H}/stacks/iso-stack-a/{{id}}", model="orchestration.Stack",
             style="heat", lists=(f"{H}/stacks",), filters=("name={name}", "id={id}", "tenant={project}",
                                                             "project_id={project}", "show_deleted=true"),
             actions=(Call("template", "GET", "/template", write=False),
                      Call("environment", "GET", "/environment", write=False),
                      Call("files", "GET", "/files", write=False), Call("outputs", "GET", "/outputs", write=False),
                      Call("output-show", "GET", "/outputs/o", write=False),
                      Call("resources", "GET", "/resources", write=False),
                      Call("resource-show", "GET", "/resources/r", write=False),
                      Call("resource-events", "GET", "/resources/r/events", write=False),
                      Call("events", "GET", "/events", write=False),
                      Call("update-put", "PUT", body={"template": ISO_TEMPLATE}),
                      Call("update-preview", "PUT", "/preview", body={"template": ISO_TEMPLATE}),
                      Call("check", "POST", "/actions", body={"check": None}),
                      Call("suspend", "POST", "/actions", body={"suspend": None}),
                      Call("cancel-update", "POST", "/actions", body={"cancel_update": None}),
                      Call("abandon", "DELETE", "/abandon")),
             update=Call("update", "PATCH", body={"parameters": {}})),
    # the same stack named by its id alone (what the lookup resolves: /stacks/{id}/<below>)
    Resource(api="orchestration", name="stack-by-id", member=f"{H}/stacks/{{id}}/events", model="orchestration.Stack",
             style="heat", marker=False, delete=False),
    # A's software config "iso-config-a" (listed, shown, deleted; never updated) and its deployment to
    # the server id "iso-server-a" (shown, updated, deleted; the server's metadata)
    Resource(api="orchestration", name="software-config", member=f"{H}/software_configs/{{id}}",
             model="orchestration.SoftwareConfig", style="heat", lists=(f"{H}/software_configs",), filters=()),
    Resource(api="orchestration", name="software-deployment", member=f"{H}/software_deployments/{{id}}",
             model="orchestration.SoftwareDeployment", style="heat", marker=False,
             lists=(f"{H}/software_deployments", f"{H}/software_deployments/metadata/iso-server-a"),
             filters=("server_id=iso-server-a",),
             update=Call("update", "PUT", body={"status": "FAILED", "status_reason": "x"})),
)


RESOURCES: tuple[Resource, ...] = (
    # ---- identity
    Resource(api="identity", name="project", member=f"{K}/projects/{{id}}", model="identity.Project",
             style="keystone", lists=(f"{K}/projects", f"{K}/auth/projects"), filters=("name={name}",),
             admin_lists=(f"{K}/projects",),
             marker=False, update=Call("update", "PATCH", body={"project": {"description": "x"}}),
             outsider_write_status=403, outsider_status={"tag-add": 404, "user-roles": 403},
             actions=(Call("tags", "GET", "/tags", write=False), Call("tag-add", "PUT", "/tags/red"),
                      Call("user-roles", "GET", "/users/{user}/roles", write=False))),
    Resource(api="identity", name="application_credential",
             member=f"{K}/users/{{user}}/application_credentials/{{id}}", model="identity.ApplicationCredential",
             style="keystone", lists=(f"{K}/users/{{user}}/application_credentials",
                                      f"{K}/users/{{self}}/application_credentials"),
             marker=False, outsider_write_status=403, outsider_status={"show": 403}),
    # the same credential asked for under the outsider's own user: as unknown there too
    Resource(api="identity", name="application_credential_under_self",
             member=f"{K}/users/{{self}}/application_credentials/{{id}}", model="identity.ApplicationCredential",
             style="keystone", marker=False, reader=False, admin=False),
    # Keystone's credentials (an EC2 key of A's member): a user's own, so no reader case; another
    # user's is not found in /credentials, refused (403) under the owner's user path like Keystone
    Resource(api="identity", name="credential", member=f"{K}/credentials/{{id}}", model="identity.Credential",
             style="keystone", lists=(f"{K}/credentials",), filters=("user_id={user}", "type=ec2"),
             marker=False, reader=False,
             update=Call("update", "PATCH", body={"credential": {"user_id": "{self}", "blob": "x"}})),
    Resource(api="identity", name="ec2_credential", member=f"{K}/users/{{user}}/credentials/OS-EC2/{{id}}",
             model="identity.Credential", style="keystone",
             lists=(f"{K}/users/{{user}}/credentials/OS-EC2", f"{K}/users/{{self}}/credentials/OS-EC2"),
             marker=False, outsider_write_status=403, outsider_status={"show": 403}),
    Resource(api="identity", name="ec2_credential_under_self",
             member=f"{K}/users/{{self}}/credentials/OS-EC2/{{id}}", model="identity.Credential",
             style="keystone", marker=False, reader=False, admin=False),
    # ---- images
    Resource(api="images", name="image", member=f"{G}/images/{{id}}", model="images.Image", style="glance",
             lists=(f"{G}/images",),
             filters=("name={name}", "id={id}", "owner={project}", "visibility=private", "visibility=all",
                      "member_status=all"),
             update=IMAGE_UPDATE, actions=IMAGE_ACTIONS),
    # another project's image shared with A (A accepted): still nothing to B
    Resource(api="images", name="shared_image", member=f"{G}/images/{{id}}", model="images.Image", style="glance",
             lists=(f"{G}/images",), reader=False,
             filters=("name={name}", "id={id}", "owner={project}", "visibility=private", "visibility=all",
                      "member_status=all", "visibility=shared", "member_status=accepted"),
             update=IMAGE_UPDATE, actions=IMAGE_ACTIONS),
    # ---- networks
    _neutron("network", "networks", model="networks.Network", update={"name": "x"},
             filters=("name={name}", "shared=False")),
    _neutron("subnet", "subnets", model="networks.Subnet", update={"name": "x"},
             filters=("name={name}", "network_id={network}", "cidr=10.77.0.0/24")),
    _neutron("subnetpool", "subnetpools", model="networks.SubnetPool", update={"name": "x"},
             filters=("name={name}",)),
    _neutron("port", "ports", model="networks.Port", update={"name": "x"},
             filters=("name={name}", "network_id={network}", "device_id={device}", "mac_address={mac}",
                      "fixed_ips=subnet_id={subnet}")),
    _neutron("router", "routers", model="networks.Router", update={"name": "x"}, filters=("name={name}",),
             actions=(*NEUTRON_TAGS,
                      Call("add_router_interface", "PUT", "/add_router_interface", body={"subnet_id": "{subnet}"}),
                      Call("remove_router_interface", "PUT", "/remove_router_interface",
                           body={"subnet_id": "{subnet}"}))),
    _neutron("floatingip", "floatingips", model="networks.FloatingIP", update={"description": "x"},
             filters=("floating_ip_address={fip}", "floating_network_id={external}")),
    _neutron("security_group", "security-groups", model="networks.SecurityGroup", update={"name": "x"},
             filters=("name={name}",)),
    _neutron("security_group_rule", "security-group-rules", model="networks.SecurityGroupRule", update=None,
             filters=("security_group_id={group}", "port_range_min=4242"), actions=()),
    # ---- compute
    Resource(api="compute", name="server", member=f"{C}/servers/{{id}}", model="compute.Instance", style="nova",
             lists=(f"{C}/servers", f"{C}/servers/detail"), headers=NOVA_VERSION,
             filters=("name={name}", "uuid={id}", "all_tenants=1", "all_tenants=True&project_id={project}",
                      "project_id={project}", "tenant_id={project}", "ip=10.78.",
                      "reservation_id={reservation}"),
             update=Call("update", "PUT", body={"server": {"name": "x"}}),
             actions=(*SERVER_ACTIONS, *_metadata_calls(),
                      Call("ips", "GET", "/ips", write=False), Call("ips-network", "GET", "/ips/{network_name}",
                                                                   write=False),
                      Call("instance-actions", "GET", "/os-instance-actions", write=False),
                      Call("instance-action", "GET", "/os-instance-actions/{request_id}", write=False),
                      Call("volume-attachments", "GET", "/os-volume_attachments", write=False),
                      Call("volume-attach", "POST", "/os-volume_attachments",
                           body={"volumeAttachment": {"volumeId": "{volume}"}}),
                      Call("volume-attachment", "GET", "/os-volume_attachments/{volume}", write=False),
                      Call("volume-detach", "DELETE", "/os-volume_attachments/{volume}"))),
    Resource(api="compute", name="keypair", member=f"{C}/os-keypairs/{{id}}", model="compute.KeyPair",
             style="nova", lists=(f"{C}/os-keypairs",), headers=NOVA_KEYPAIR_VERSION, pk_field="name",
             admin_query="?user_id={user}",
             filters=("user_id={user}",), marker=False, reader=False),  # a user's own: no reader case
    Resource(api="compute", name="server_group", member=f"{C}/os-server-groups/{{id}}", model="compute.ServerGroup",
             style="nova", lists=(f"{C}/os-server-groups",), headers=NOVA_VERSION,
             filters=("all_projects=True", "all_projects=1"), marker=False),
    # a private flavor A was given access to (the admin's): B neither sees it nor learns it exists
    Resource(api="compute", name="private_flavor", member=f"{C}/flavors/{{id}}", model="compute.Flavor", style="nova",
             lists=(f"{C}/flavors", f"{C}/flavors/detail"), headers=NOVA_VERSION, pk_field="flavorid",
             filters=("is_public=None", "is_public=false", "is_public=all", "minRam=1"),
             reader=False, outsider_write_status=403,
             actions=(Call("extra-specs", "GET", "/os-extra_specs", write=False),
                      Call("extra-spec", "GET", "/os-extra_specs/k", write=False),
                      Call("access", "GET", "/os-flavor-access", write=False),
                      Call("add-access", "POST", "/action", body={"addTenantAccess": {"tenant": "{other_project}"}}),
                      Call("extra-specs-set", "POST", "/os-extra_specs", body={"extra_specs": {"k": "x"}}))),
    # ---- volumes
    Resource(api="volumes", name="volume", member=f"{V}/volumes/{{id}}", model="volumes.Volume", style="nova",
             lists=(f"{V}/volumes", f"{V}/volumes/detail"), headers=CINDER_VERSION,
             filters=("name={name}", "id={id}", "all_tenants=1", "all_tenants=1&project_id={project}",
                      "metadata={{\"k\":\"v\"}}", "status=available"),
             update=Call("update", "PUT", body={"volume": {"name": "x"}}),
             actions=(*VOLUME_ACTIONS, *_metadata_calls())),
    Resource(api="volumes", name="snapshot", member=f"{V}/snapshots/{{id}}", model="volumes.Snapshot", style="nova",
             lists=(f"{V}/snapshots", f"{V}/snapshots/detail"), headers=CINDER_VERSION,
             filters=("name={name}", "volume_id={volume}", "all_tenants=1", "all_tenants=1&project_id={project}"),
             outsider_status={"action:os-reset_status": 403, "action:os-force_delete": 403},  # admin-only
             update=Call("update", "PUT", body={"snapshot": {"name": "x"}}),
             actions=(*SNAPSHOT_ACTIONS, *_metadata_calls())),
    *OBJECT_STORE,
    *TELEMETRY,
    *ORCHESTRATION,
    Resource(api="volumes", name="attachment", member=f"{V}/attachments/{{id}}", model="volumes.VolumeAttachment",
             style="nova", lists=(f"{V}/attachments", f"{V}/attachments/detail"), headers=CINDER_VERSION,
             filters=("volume_id={volume}", "instance_id={server}", "all_tenants=1"), marker=False,
             update=Call("update", "PUT", body={"attachment": {"connector": {"host": "h", "initiator": "i"}}}),
             actions=(Call("action:os-complete", "POST", "/action", body={"os-complete": {}}),)),
)


# ---- references: B's own requests that name A's resource -------------------------------------------
# A member of B names one of A's resources (``{ref}``) in a request on B's own: the answer is the one
# an id that names nothing gets (a 4xx in the API's format), and nothing is made or changed.

@dataclass(frozen=True)
class Reference:
    api: str
    name: str
    target: str                 # key of A's resource named by {ref}
    method: str
    path: str
    body: Any
    counts: tuple[str, ...]     # models whose number of rows must not change
    style: str
    headers: tuple[tuple[str, str], ...] = ()
    xfail: str = ""

    @property
    def id(self) -> str:
        return f"{self.api}.{self.name}:reference:{self.target}"


def _server_body(**extra: Any) -> dict[str, Any]:
    return {"server": {"name": "b-vm", "imageRef": "{image_public}", "flavorRef": "1",
                       "networks": [{"uuid": "{b_network}"}], **extra}}


REFERENCES: tuple[Reference, ...] = (
    # networks
    Reference("networks", "port-on-network", "networks.network", "POST", f"{N}/ports",
              {"port": {"network_id": "{ref}"}}, ("networks.Port",), "neutron"),
    Reference("networks", "port-on-subnet", "networks.subnet", "POST", f"{N}/ports",
              {"port": {"network_id": "{b_network}", "fixed_ips": [{"subnet_id": "{ref}"}]}}, ("networks.Port",),
              "neutron"),
    Reference("networks", "port-of-server", "compute.server", "POST", f"{N}/ports",
              {"port": {"network_id": "{b_network}", "device_id": "{ref}", "device_owner": "compute:nova"}},
              ("networks.Port",), "neutron"),
    Reference("networks", "subnet-on-network", "networks.network", "POST", f"{N}/subnets",
              {"subnet": {"network_id": "{ref}", "cidr": "10.99.0.0/24", "ip_version": 4}}, ("networks.Subnet",),
              "neutron"),
    Reference("networks", "subnet-from-pool", "networks.subnetpool", "POST", f"{N}/subnets",
              {"subnet": {"network_id": "{b_network}", "subnetpool_id": "{ref}", "ip_version": 4}},
              ("networks.Subnet",), "neutron"),
    Reference("networks", "router-interface-subnet", "networks.subnet", "PUT",
              f"{N}/routers/{{b_router}}/add_router_interface", {"subnet_id": "{ref}"},
              ("networks.Port", "networks.Router"), "neutron"),
    Reference("networks", "router-interface-port", "networks.port", "PUT",
              f"{N}/routers/{{b_router}}/add_router_interface", {"port_id": "{ref}"},
              ("networks.Port", "networks.Router"), "neutron"),
    Reference("networks", "router-interface-remove", "networks.subnet", "PUT",
              f"{N}/routers/{{b_router}}/remove_router_interface", {"subnet_id": "{ref}"},
              ("networks.Port", "networks.Router"), "neutron"),
    Reference("networks", "port-security-group", "networks.security_group", "POST", f"{N}/ports",
              {"port": {"network_id": "{b_network}", "security_groups": ["{ref}"]}}, ("networks.Port",), "neutron"),
    Reference("networks", "port-update-security-group", "networks.security_group", "PUT", f"{N}/ports/{{b_port}}",
              {"port": {"security_groups": ["{ref}"]}}, ("networks.Port",), "neutron"),
    Reference("networks", "router-gateway", "networks.network", "PUT", f"{N}/routers/{{b_router}}",
              {"router": {"external_gateway_info": {"network_id": "{ref}"}}}, ("networks.Port",), "neutron"),
    Reference("networks", "floatingip-update-port", "networks.port", "PUT", f"{N}/floatingips/{{b_fip}}",
              {"floatingip": {"port_id": "{ref}"}}, ("networks.FloatingIP",), "neutron"),
    Reference("networks", "floatingip-to-port", "networks.port", "POST", f"{N}/floatingips",
              {"floatingip": {"floating_network_id": "{external}", "port_id": "{ref}"}}, ("networks.FloatingIP",),
              "neutron"),
    Reference("networks", "rule-remote-group", "networks.security_group", "POST", f"{N}/security-group-rules",
              {"security_group_rule": {"security_group_id": "{b_group}", "direction": "ingress",
                                       "remote_group_id": "{ref}"}}, ("networks.SecurityGroupRule",), "neutron"),
    Reference("networks", "rule-in-group", "networks.security_group", "POST", f"{N}/security-group-rules",
              {"security_group_rule": {"security_group_id": "{ref}", "direction": "ingress"}},
              ("networks.SecurityGroupRule",), "neutron"),
    # compute
    Reference("compute", "server-image", "images.image", "POST", f"{C}/servers",
              _server_body(imageRef="{ref}"), ("compute.Instance",), "nova"),
    Reference("compute", "server-private-flavor", "compute.private_flavor", "POST", f"{C}/servers",
              _server_body(flavorRef="{ref}"), ("compute.Instance",), "nova"),
    Reference("compute", "server-network", "networks.network", "POST", f"{C}/servers",
              _server_body(networks=[{"uuid": "{ref}"}]), ("compute.Instance", "networks.Port"), "nova"),
    Reference("compute", "server-port", "networks.port", "POST", f"{C}/servers",
              _server_body(networks=[{"port": "{ref}"}]), ("compute.Instance",), "nova"),
    Reference("compute", "server-keypair", "compute.keypair", "POST", f"{C}/servers",
              _server_body(key_name="{ref}"), ("compute.Instance",), "nova"),
    Reference("compute", "server-security-group", "networks.security_group", "POST", f"{C}/servers",
              _server_body(security_groups=[{"name": "{ref}"}]), ("compute.Instance",), "nova"),
    Reference("compute", "server-group-hint", "compute.server_group", "POST", f"{C}/servers",
              {**_server_body(), "os:scheduler_hints": {"group": "{ref}"}}, ("compute.Instance",), "nova"),
    Reference("compute", "server-boot-volume", "volumes.volume", "POST", f"{C}/servers",
              _server_body(imageRef="", block_device_mapping_v2=[
                  {"boot_index": 0, "uuid": "{ref}", "source_type": "volume", "destination_type": "volume"}]),
              ("compute.Instance",), "nova"),
    Reference("compute", "server-rebuild-image", "images.image", "POST", f"{C}/servers/{{b_server}}/action",
              {"rebuild": {"imageRef": "{ref}"}}, ("compute.Instance",), "nova"),
    Reference("compute", "server-attach-volume", "volumes.volume", "POST",
              f"{C}/servers/{{b_server}}/os-volume_attachments", {"volumeAttachment": {"volumeId": "{ref}"}},
              ("volumes.VolumeAttachment",), "nova"),
    # volumes
    Reference("volumes", "volume-from-volume", "volumes.volume", "POST", f"{V}/volumes",
              {"volume": {"size": 1, "source_volid": "{ref}"}}, ("volumes.Volume",), "nova"),
    Reference("volumes", "volume-from-snapshot", "volumes.snapshot", "POST", f"{V}/volumes",
              {"volume": {"size": 1, "snapshot_id": "{ref}"}}, ("volumes.Volume",), "nova"),
    Reference("volumes", "volume-from-image", "images.image", "POST", f"{V}/volumes",
              {"volume": {"size": 1, "imageRef": "{ref}"}}, ("volumes.Volume",), "nova"),
    Reference("volumes", "snapshot-of-volume", "volumes.volume", "POST", f"{V}/snapshots",
              {"snapshot": {"volume_id": "{ref}"}}, ("volumes.Snapshot",), "nova"),
    Reference("volumes", "attachment-of-volume", "volumes.volume", "POST", f"{V}/attachments",
              {"attachment": {"volume_uuid": "{ref}", "instance_uuid": "{b_server}"}}, ("volumes.VolumeAttachment",),
              "nova", CINDER_VERSION),
    # reads that name A's project or user: the answer an unknown one gets (none of A's figures)
    Reference("compute", "quota-set", "identity.project", "GET", f"{C}/os-quota-sets/{{ref}}", None, (), "nova"),
    Reference("compute", "quota-set-detail", "identity.project", "GET", f"{C}/os-quota-sets/{{ref}}/detail", None,
              (), "nova"),
    Reference("compute", "limits", "identity.project", "GET", f"{C}/limits?tenant_id={{ref}}", None, (), "nova"),
    Reference("compute", "usage", "identity.project", "GET", f"{C}/os-simple-tenant-usage/{{ref}}", None, (),
              "nova"),
    Reference("compute", "keypairs-of-user", "identity.user", "GET", f"{C}/os-keypairs?user_id={{ref}}", None, (),
              "nova", headers=NOVA_KEYPAIR_VERSION),
    Reference("networks", "quota", "identity.project", "GET", f"{N}/quotas/{{ref}}", None, (), "neutron"),
    Reference("networks", "quota-details", "identity.project", "GET", f"{N}/quotas/{{ref}}/details", None, (),
              "neutron"),
    Reference("volumes", "quota-set", "identity.project", "GET", f"{V}/os-quota-sets/{{ref}}?usage=True", None,
              (), "nova"),
    Reference("volumes", "project-in-path", "identity.project", "GET", "/volume/v3/{ref}/volumes/detail", None,
              (), "nova"),
    Reference("volumes", "limits", "identity.project", "GET", f"{V}/limits?project_id={{ref}}", None, (), "nova"),
    Reference("identity", "role-assignments", "identity.project", "GET",
              f"{K}/role_assignments?scope.project.id={{ref}}", None, (), "keystone"),
    Reference("identity", "user-projects", "identity.user", "GET", f"{K}/users/{{ref}}/projects", None, (),
              "keystone"),
    Reference("identity", "user", "identity.user", "GET", f"{K}/users/{{ref}}", None, (), "keystone"),
    Reference("identity", "project-users-roles", "identity.project", "GET",
              f"{K}/projects/{{ref}}/users/{{self}}/roles", None, (), "keystone"),
    # (Cinder's os-attach and attachment create take any instance_uuid as bookkeeping on the caller's
    # own volume, A's server or none, with the same answer either way, as Cinder does; Nova's mapping,
    # which plugs disks, never reads it: not declared.)
    # telemetry: B's resource with A's metric, B's batches and aggregates naming A's metric or resource
    Reference("telemetry", "resource-with-metric", "telemetry.metric", "POST", f"{M}/resource/generic",
              {"id": "iso-res-b2", "metrics": {"m": "{ref}"}}, ("telemetry.Resource", "telemetry.Metric"), "gnocchi"),
    Reference("telemetry", "batch-metric", "telemetry.metric", "POST", f"{M}/batch/metrics/measures",
              {"{ref}": MEASURE}, ("telemetry.Measure", "telemetry.Rollup"), "gnocchi"),
    Reference("telemetry", "aggregates-metric", "telemetry.metric", "POST", f"{M}/aggregates",
              {"operations": "(metric {ref} mean)"}, (), "gnocchi"),
    Reference("telemetry", "batch-resource", "telemetry.resource", "POST", f"{M}/batch/resources/metrics/measures",
              {"{ref}": {"cpu_util": MEASURE}}, ("telemetry.Measure", "telemetry.Metric"), "gnocchi"),
    Reference("telemetry", "batch-resource-create", "telemetry.resource", "POST",
              f"{M}/batch/resources/metrics/measures?create_metrics=true",
              {"{ref}": {"new": MEASURE}}, ("telemetry.Measure", "telemetry.Metric"), "gnocchi"),
    # B's alarms on A's resource or metric: refused as an unknown one (an alarm reads only its own project)
    Reference("telemetry", "alarm-on-resource", "telemetry.resource", "POST", f"{AODH}/alarms",
              {"name": "b-on-res", "type": "gnocchi_resources_threshold", "gnocchi_resources_threshold_rule": {
                  "metric": "cpu_util", "resource_type": "generic", "resource_id": "{ref}", "threshold": 1,
                  "aggregation_method": "mean"}}, ("telemetry.Alarm", "telemetry.AlarmChange"), "aodh"),
    Reference("telemetry", "alarm-on-metric", "telemetry.metric", "POST", f"{AODH}/alarms",
              {"name": "b-on-metric", "type": "gnocchi_aggregation_by_metrics_threshold",
               "gnocchi_aggregation_by_metrics_threshold_rule": {"metrics": ["{ref}"], "threshold": 1,
                                                                 "aggregation_method": "mean"}},
              ("telemetry.Alarm", "telemetry.AlarmChange"), "aodh"),
    Reference("telemetry", "alarm-query", "telemetry.alarm", "POST", f"{AODH}/query/alarms",
              {"filter": "{{\"=\": {{\"alarm_id\": \"{ref}\"}}}}"}, (), "aodh"),
    Reference("telemetry", "alarm-history-query", "telemetry.alarm", "POST", f"{AODH}/query/alarms/history",
              {"filter": "{{\"=\": {{\"alarm_id\": \"{ref}\"}}}}"}, (), "aodh"),
)


# The same request naming B's own resource instead succeeds: the refusal above is about A's resource,
# not a body that is wrong anyway.
CONTROLS: dict[str, str] = {
    "port-on-network": "{b_network}", "port-on-subnet": "{b_subnet}", "subnet-on-network": "{b_network}",
    "subnet-from-pool": "{b_pool}", "router-interface-subnet": "{b_subnet}", "router-interface-port": "{b_port}",
    "port-security-group": "{b_group}", "port-update-security-group": "{b_group}", "router-gateway": "{external}",
    "rule-remote-group": "{b_group}", "rule-in-group": "{b_group}", "server-image": "{image_public}",
    "server-private-flavor": "1",
    "server-network": "{b_network}", "server-port": "{b_port}", "server-keypair": "iso-key-b",
    "server-security-group": "iso-sg-b", "server-group-hint": "{b_server_group}",
    "server-rebuild-image": "{image_public}", "server-attach-volume": "{b_volume}",
    "volume-from-volume": "{b_volume}", "volume-from-snapshot": "{b_snapshot}", "volume-from-image": "{image_public}",
    "snapshot-of-volume": "{b_volume}", "attachment-of-volume": "{b_volume}",
    "resource-with-metric": "{b_metric}", "batch-metric": "{b_metric}", "aggregates-metric": "{b_metric}",
    "batch-resource": "{b_resource}", "batch-resource-create": "{b_resource}",
    "alarm-on-resource": "{b_resource}", "alarm-on-metric": "{b_metric}",
}


# ---- a reader of A creates nothing in A ------------------------------------------------------------

@dataclass(frozen=True)
class ReaderCreate:
    api: str
    name: str
    path: str
    body: Any
    counts: tuple[str, ...]
    style: str
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.api}.{self.name}:reader:create"


READER_CREATES: tuple[ReaderCreate, ...] = (
    ReaderCreate("images", "image", f"{G}/images", {"name": "r", "disk_format": "raw", "container_format": "bare"},
                 ("images.Image",), "glance"),
    ReaderCreate("networks", "network", f"{N}/networks", {"network": {"name": "r"}}, ("networks.Network",),
                 "neutron"),
    ReaderCreate("networks", "subnet", f"{N}/subnets",
                 {"subnet": {"network_id": "{network}", "cidr": "10.98.0.0/24", "ip_version": 4}},
                 ("networks.Subnet",), "neutron"),
    ReaderCreate("networks", "subnetpool", f"{N}/subnetpools",
                 {"subnetpool": {"name": "r", "prefixes": ["10.250.0.0/16"]}}, ("networks.SubnetPool",), "neutron"),
    ReaderCreate("networks", "port", f"{N}/ports", {"port": {"network_id": "{network}"}}, ("networks.Port",),
                 "neutron"),
    ReaderCreate("networks", "router", f"{N}/routers", {"router": {"name": "r"}}, ("networks.Router",), "neutron"),
    ReaderCreate("networks", "floatingip", f"{N}/floatingips", {"floatingip": {"floating_network_id": "{external}"}},
                 ("networks.FloatingIP",), "neutron"),
    ReaderCreate("networks", "security_group", f"{N}/security-groups", {"security_group": {"name": "r"}},
                 ("networks.SecurityGroup",), "neutron"),
    ReaderCreate("networks", "security_group_rule", f"{N}/security-group-rules",
                 {"security_group_rule": {"security_group_id": "{group}", "direction": "egress"}},
                 ("networks.SecurityGroupRule",), "neutron"),
    ReaderCreate("compute", "server", f"{C}/servers",
                 {"server": {"name": "r", "imageRef": "{image}", "flavorRef": "1",
                             "networks": [{"uuid": "{network}"}]}}, ("compute.Instance",), "nova"),
    ReaderCreate("compute", "server_group", f"{C}/os-server-groups",
                 {"server_group": {"name": "r", "policies": ["affinity"]}}, ("compute.ServerGroup",), "nova"),
    ReaderCreate("volumes", "volume", f"{V}/volumes", {"volume": {"size": 1, "name": "r"}}, ("volumes.Volume",),
                 "nova"),
    ReaderCreate("volumes", "snapshot", f"{V}/snapshots", {"snapshot": {"volume_id": "{volume}"}},
                 ("volumes.Snapshot",), "nova"),
    ReaderCreate("volumes", "attachment", f"{V}/attachments",
                 {"attachment": {"volume_uuid": "{volume}", "instance_uuid": "{server}"}},
                 ("volumes.VolumeAttachment",), "nova", CINDER_VERSION),
    ReaderCreate("telemetry", "resource", f"{M}/resource/instance",
                 {"id": "r-res", "flavor_id": "1", "host": "h", "display_name": "r"}, ("telemetry.Resource",),
                 "gnocchi"),
    ReaderCreate("telemetry", "metric", f"{M}/metric", {"name": "r"}, ("telemetry.Metric",), "gnocchi"),
    ReaderCreate("telemetry", "alarm", f"{AODH}/alarms",
                 {"name": "r", "type": "gnocchi_aggregation_by_metrics_threshold",
                  "gnocchi_aggregation_by_metrics_threshold_rule": {"metrics": ["{b_metric}"], "threshold": 1,
                                                                    "aggregation_method": "mean"}},
                 ("telemetry.Alarm",), "aodh"),
    ReaderCreate("orchestration", "stack", f"{H}/stacks",
                 {"stack_name": "r", "template": {"heat_template_version": "2016-10-14",
                                                  "resources": {"n": {"type": "OS::Heat::None"}}}},
                 ("orchestration.Stack", "orchestration.Event"), "heat"),
)


# ---- the dashboard: B's member signed in, A's resources in the panels' URLs ----------------------------

@dataclass(frozen=True)
class Page:
    target: str                 # key of A's resource in ``path``'s {id}
    method: str
    path: str
    data: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"dashboard:{self.method} {self.path}".replace("{id}", f"<{self.target}>")


D = "/dashboard"
PAGES: tuple[Page, ...] = (
    Page("compute.server", "GET", f"{D}/compute/instances/{{id}}/"),
    Page("compute.server", "POST", f"{D}/compute/instances/{{id}}/action", {"action": "reboot"}),
    Page("compute.server", "POST", f"{D}/compute/instances/{{id}}/delete"),
    Page("compute.server", "GET", f"{D}/compute/instances/{{id}}/console"),
    Page("compute.server", "GET", f"{D}/compute/instances/{{id}}/actions/{{request_id}}"),
    Page("compute.server", "GET", f"{D}/compute/instances/{{id}}/volumes/"),
    Page("compute.server", "POST", f"{D}/compute/instances/{{id}}/volumes/attach", {"volume_id": "{b_volume}"}),
    Page("volumes.volume", "POST", f"{D}/compute/instances/{{b_server}}/volumes/{{id}}/detach"),
    Page("compute.keypair", "POST", f"{D}/compute/keypairs/{{id}}/delete"),
    Page("identity.project", "GET", f"{D}/identity/projects/{{id}}/edit"),
    Page("identity.project", "POST", f"{D}/identity/projects/{{id}}/delete"),
    Page("identity.project", "GET", f"{D}/identity/projects/{{id}}/members"),
    Page("identity.user", "GET", f"{D}/identity/users/{{id}}/edit"),
    Page("identity.user", "POST", f"{D}/identity/users/{{id}}/delete"),
    Page("images.image", "GET", f"{D}/images/{{id}}/edit"),
    Page("images.image", "POST", f"{D}/images/{{id}}/edit", {"name": "x"}),
    Page("images.image", "POST", f"{D}/images/{{id}}/share", {"member": "{other_project}"}),
    Page("images.image", "POST", f"{D}/images/{{id}}/answer", {"status": "accepted"}),
    Page("images.image", "POST", f"{D}/images/{{id}}/delete"),
    Page("networks.port", "GET", f"{D}/networks/ports/{{id}}/edit"),
    Page("networks.port", "POST", f"{D}/networks/ports/{{id}}/delete"),
    Page("networks.subnet", "GET", f"{D}/networks/subnets/{{id}}/edit"),
    Page("networks.subnet", "POST", f"{D}/networks/subnets/{{id}}/delete"),
    Page("networks.router", "GET", f"{D}/networks/routers/{{id}}/"),
    Page("networks.router", "POST", f"{D}/networks/routers/{{id}}/edit", {"name": "x"}),
    Page("networks.router", "POST", f"{D}/networks/routers/{{id}}/interfaces/add", {"subnet_id": "{b_subnet}"}),
    Page("networks.subnet", "POST", f"{D}/networks/routers/{{b_router}}/interfaces/add", {"subnet_id": "{id}"}),
    Page("networks.router", "POST", f"{D}/networks/routers/{{id}}/delete"),
    Page("networks.floatingip", "POST", f"{D}/networks/floating-ips/{{id}}/associate", {"port_id": "{b_port}"}),
    Page("networks.port", "POST", f"{D}/networks/floating-ips/{{b_fip}}/associate", {"port_id": "{id}"}),
    Page("networks.floatingip", "POST", f"{D}/networks/floating-ips/{{id}}/release"),
    Page("networks.security_group", "GET", f"{D}/networks/security-groups/{{id}}/"),
    Page("networks.security_group", "POST", f"{D}/networks/security-groups/{{id}}/rules/add",
         {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp"}),
    Page("networks.security_group", "POST", f"{D}/networks/security-groups/{{id}}/rules/act",
         {"action": "delete", "ids": "x"}),
    Page("networks.security_group", "POST", f"{D}/networks/security-groups/{{id}}/delete"),
    Page("networks.network", "GET", f"{D}/networks/{{id}}/"),
    Page("networks.network", "POST", f"{D}/networks/{{id}}/edit", {"name": "x"}),
    Page("networks.network", "POST", f"{D}/networks/{{id}}/subnets/create",
         {"name": "x", "cidr": "10.97.0.0/24", "ip_version": "4"}),
    Page("networks.network", "POST", f"{D}/networks/{{id}}/delete"),
    Page("volumes.snapshot", "POST", f"{D}/volumes/snapshots/{{id}}/delete"),
    Page("volumes.volume", "GET", f"{D}/volumes/{{id}}/"),
    Page("volumes.volume", "POST", f"{D}/volumes/{{id}}/extend", {"new_size": "2"}),
    Page("volumes.volume", "POST", f"{D}/volumes/{{id}}/snapshot", {"name": "x"}),
    Page("volumes.volume", "POST", f"{D}/volumes/{{id}}/attach", {"server_id": "{b_server}"}),
    Page("volumes.volume", "POST", f"{D}/volumes/{{id}}/delete"),
    Page("core.task", "GET", f"{D}/tasks/{{id}}/"),
    Page("telemetry.report_schedule", "GET", f"{D}/reports/{{id}}/edit"),
    Page("telemetry.report_schedule", "POST", f"{D}/reports/{{id}}/edit",
         {"name": "x", "frequency": "daily", "recipients": "bob@example.com"}),
    Page("telemetry.report_schedule", "POST", f"{D}/reports/{{id}}/run"),
    Page("telemetry.report_schedule", "POST", f"{D}/reports/{{id}}/delete"),
    Page("telemetry.report_run", "GET", f"{D}/reports/runs/{{id}}/download/csv"),
    Page("telemetry.report_run", "GET", f"{D}/reports/runs/{{id}}/download/html"),
    Page("telemetry.report_run", "GET", f"{D}/reports/runs/{{id}}/download/pdf"),
    Page("telemetry.report_run", "POST", f"{D}/reports/runs/{{id}}/delete"),
)


def run_page(world: World, page: Page) -> None:
    """B's member in the dashboard gets what an unknown id gets (a 404, or the same redirect), and
    nothing of A's changes; A's name never shows."""
    resource = next((r for r in RESOURCES if r.key == page.target), None)
    rid = world.ids[page.target]
    stranger = _stranger(rid)
    before = world.row(resource) if resource else None
    client = world.dashboard

    def send(value: str) -> Any:
        path = world.fill(page.path.replace("{id}", value), world.outsider)
        data = {k: world.fill(v.replace("{id}", value), world.outsider) for k, v in page.data.items()}
        return client.get(path) if page.method == "GET" else client.post(path, data)

    response = send(rid)
    assert response.status_code in (302, 400, 403, 404), (response.status_code, response.content[:300])
    if rid != world.names[page.target]:  # (a key pair's id is its name, echoed as an unknown one's is)
        assert world.names[page.target].encode() not in response.content, response.content[:300]
    unknown = send(stranger)
    assert response.status_code == unknown.status_code, (response.status_code, unknown.status_code)
    if response.status_code == 302:
        assert response["Location"] == unknown["Location"].replace(stranger, rid)
    if resource is not None:
        assert world.row(resource) == before, "a refused dashboard request changed the row"


# ---- callers -------------------------------------------------------------------------------------

@dataclass
class Caller:
    name: str
    token: str
    project_id: str
    user_id: str

    def call(self, method: str, path: str, body: Any = None, *, content_type: str = JSON,
             headers: tuple[tuple[str, str], ...] = ()) -> Any:
        """``path`` is whole (any API's); a ``bytes`` body is sent as it is."""
        raw = body if isinstance(body, bytes) else None
        return ApiClient(self.token).call(method, path, None if raw is not None else body, raw=raw,
                                          content_type=content_type, headers=dict(headers))


def assert_error(style: str, response: Any, status: int) -> None:
    """``status`` in the error format of the API (``style``), as apps.core.api renders it (Swift: swob's
    small HTML page, none for a HEAD)."""
    assert response.status_code == status, (response.status_code, response.content[:400])
    if style == "swift":
        assert response.content == b"" or (response.content.startswith(b"<html><h1>")
                                           and response["Content-Type"].startswith("text/html")), response.content
        assert response["X-Trans-Id"].startswith("tx"), response.headers
        return
    body = response.json()
    if style == "nova":
        assert len(body) == 1, body
        (error,) = body.values()
        assert set(error) == {"code", "message"} and error["code"] == status and error["message"], body
    elif style == "neutron":
        assert set(body) == {"NeutronError"} and body["NeutronError"]["message"], body
    elif style == "glance":
        assert set(body) == {"code", "title", "message"} and body["code"] == status, body
    elif style == "gnocchi":
        assert set(body) == {"code", "title", "description"} and body["code"] == status, body
    elif style == "aodh":
        assert set(body) == {"error_message"} and body["error_message"]["faultstring"], body
    elif style == "heat":
        assert set(body) == {"code", "title", "explanation", "error"} and body["code"] == status, body
        assert set(body["error"]) == {"type", "message", "traceback"} and body["error"]["message"], body
    else:
        assert set(body) == {"error"} and body["error"]["code"] == status and body["error"]["message"], body


# ---- the seeded cloud the cases run against -------------------------------------------------------

@dataclass
class World:
    """Project A (member alice, reader rita) owning one of every resource, project B (member bob),
    and the admin. ``ids[key]`` is A's resource of each declaration; ``values`` fills templates."""

    member: Caller
    reader: Caller
    outsider: Caller
    admin: Caller
    ids: dict[str, str]
    names: dict[str, str]
    values: dict[str, str]
    dashboard: Client = field(default_factory=Client)  # B's member signed in to the dashboard

    def fill(self, template: Any, caller: Caller, resource_id: str = "") -> Any:
        if isinstance(template, bytes) or template is None:
            return template
        if isinstance(template, str):
            return template.format(id=resource_id, pid=caller.project_id, self=caller.user_id, **self.values)
        if isinstance(template, dict):
            return {self.fill(k, caller, resource_id): self.fill(v, caller, resource_id) for k, v in template.items()}
        if isinstance(template, list):
            return [self.fill(v, caller, resource_id) for v in template]
        return template

    def row(self, resource: Resource) -> list[dict[str, Any]]:
        """A's row of ``resource`` as the database holds it (compared before and after a refused call)."""
        model = django_apps.get_model(resource.model)
        lookup = {resource.pk_field: self.ids[resource.key]}
        if resource.name == "keypair":
            lookup["user_id"] = self.member.user_id
        if resource.name.startswith("ec2_credential"):  # named by its access key, its row by the key's hash
            lookup = {"pk": hashlib.sha256(self.ids[resource.key].encode()).hexdigest()}
        return [model_to_dict(obj) | {"updated_at": getattr(obj, "updated_at", None)}
                for obj in model.objects.filter(**lookup)]


# ---- the cases -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    kind: str         # outsider | list | marker | reader | admin
    resource: Resource
    call: Call | None = None
    list_path: str = ""
    query: str = ""

    @property
    def id(self) -> str:
        detail = self.call.name if self.call else (self.list_path.rsplit("/", 1)[-1] + (f"?{self.query}"
                                                                                          if self.query else ""))
        return f"{self.resource.key}:{self.kind}:{detail}"


def member_calls(resource: Resource) -> Iterator[Call]:
    yield Call("show", "GET", write=False)
    if resource.update is not None:
        yield resource.update
    yield from resource.actions
    if resource.delete:
        yield Call("delete", "DELETE")


def cases(resources: tuple[Resource, ...] = RESOURCES,
          references: tuple[Reference, ...] = REFERENCES) -> Iterator[Any]:
    """Every case of the battery, as ``pytest.param``s (xfail marks from the declarations)."""
    for page in PAGES:
        yield pytest.param(page, id=page.id)
    for create in READER_CREATES:
        yield pytest.param(create, id=create.id)
    for ref in references:
        marks = [pytest.mark.xfail(strict=True, reason=ref.xfail)] if ref.xfail else []
        yield pytest.param(ref, id=ref.id, marks=marks)
    for resource in resources:
        built: list[Case] = []
        for call in member_calls(resource):
            built.append(Case("outsider", resource, call))
            if call.write and resource.reader:
                built.append(Case("reader", resource, call))
        for list_path in resource.lists:
            built.append(Case("list", resource, list_path=list_path))
            built.append(Case("owner-list", resource, list_path=list_path))
            for query in resource.filters:
                built.append(Case("list", resource, list_path=list_path, query=query))
            if resource.marker:
                built.append(Case("marker", resource, list_path=list_path))
        built.append(Case("owner", resource, Call("show", "GET", write=False)))
        if resource.admin:
            built.append(Case("admin", resource, Call("show", "GET", write=False)))
        for case in built:
            marks = []
            reason = resource.xfail.get(case.id.split(":", 1)[1]) or resource.xfail.get(case.kind)
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            yield pytest.param(case, id=case.id, marks=marks)


def _stranger(rid: str) -> str:
    """An id like ``rid`` that names nothing."""
    if len(rid) == 36 and rid.count("-") == 4:
        return str(uuid.uuid4())
    if len(rid) == 32:
        return uuid.uuid4().hex
    return f"no-such-{uuid.uuid4().hex[:8]}"


def _same_answer(response: Any, unknown: Any, rid: str, stranger: str) -> None:
    """``response`` (about A's ``rid``) is the answer the API gives about an id that names nothing."""
    assert response.status_code == unknown.status_code, (response.status_code, unknown.status_code,
                                                         unknown.content[:300])
    assert response.content == unknown.content.replace(stranger.encode(), rid.encode()), (
        response.content[:300], unknown.content[:300])


def _content(response: Any) -> bytes:
    """The body, streamed (Swift's object GETs) or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def _request(world: World, caller: Caller, case: Case, call: Call, rid: str | None = None) -> Any:
    resource = case.resource
    rid = rid or world.ids[resource.key]
    path = world.fill(resource.member, caller, rid) + world.fill(call.path, caller, rid)
    headers = tuple((k, world.fill(v, caller, rid)) for k, v in resource.headers + call.headers)
    return caller.call(call.method, path, world.fill(call.body, caller, rid), content_type=call.content_type,
                       headers=headers)


def _counts(models: tuple[str, ...]) -> list[int]:
    return [django_apps.get_model(m).objects.count() for m in models]


def run_reference(world: World, ref: Reference) -> None:
    rid = world.ids[ref.target]
    stranger = _stranger(rid)
    b = world.outsider
    before = _counts(ref.counts)

    def send(value: str) -> Any:
        body = world.fill(json.loads(json.dumps(ref.body).replace("{ref}", value)), b)
        return b.call(ref.method, world.fill(ref.path.replace("{ref}", value), b), body, headers=ref.headers)

    response = send(rid)
    if ref.counts:  # a request that would make something is refused
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:400])
    assert response.status_code < 500, (response.status_code, response.content[:400])
    if response.status_code >= 400:
        assert_error(ref.style, response, response.status_code)
    assert _counts(ref.counts) == before, "a request naming another project's resource made something"
    _same_answer(response, send(stranger), rid, stranger)
    if ref.name in CONTROLS:
        control = send(world.fill(CONTROLS[ref.name], b))
        assert control.status_code < 400, ("the control request failed", control.status_code, control.content[:400])


def run_reader_create(world: World, create: ReaderCreate) -> None:
    before = _counts(create.counts)
    reader = world.reader
    response = reader.call("POST", world.fill(create.path, reader), world.fill(create.body, reader),
                           headers=create.headers)
    assert_error(create.style, response, 403)
    assert _counts(create.counts) == before, "a reader made something"


def run(world: World, case: Case | Reference | ReaderCreate | Page) -> None:
    if isinstance(case, Reference):
        run_reference(world, case)
        return
    if isinstance(case, Page):
        run_page(world, case)
        return
    if isinstance(case, ReaderCreate):
        run_reader_create(world, case)
        return
    resource = case.resource
    rid = world.ids[resource.key]
    if case.kind in ("outsider", "reader"):
        assert case.call is not None
        caller = world.outsider if case.kind == "outsider" else world.reader
        before = world.row(resource)
        assert before, f"A's {resource.key} is missing"
        response = _request(world, caller, case, case.call)
        if case.kind == "reader":
            status = 403
        elif case.call.name in resource.outsider_status:
            status = resource.outsider_status[case.call.name]
        else:
            status = 404 if not case.call.write else resource.outsider_write_status
        assert_error(resource.style, response, status)
        assert world.row(resource) == before, "a refused call changed the row"
        if case.kind == "outsider":
            stranger = _stranger(rid)
            _same_answer(response, _request(world, caller, case, case.call, stranger), rid, stranger)
    elif case.kind == "list":
        path = world.fill(case.list_path, world.outsider)
        query = case.query.replace("{name}", world.names[resource.key]).replace("{{", "\0").replace("}}", "\1")
        query = world.fill(query, world.outsider, rid)
        query = query.replace("\0", "{").replace("\1", "}")
        response = world.outsider.call("GET", f"{path}?{query}" if query else path, headers=resource.headers)
        assert response.status_code < 500, (response.status_code, response.content[:400])
        if response.status_code >= 400:
            assert_error(resource.style, response, response.status_code)
        if not response["Content-Type"].startswith("application/json"):
            listed = response.content.decode()
        elif isinstance(response.json(), list):  # Swift's listings
            listed = json.dumps(response.json())
        else:
            listed = json.dumps([v for v in response.json().values() if isinstance(v, list)]
                                if response.status_code == 200 else response.json())
        assert rid not in listed and world.names[resource.key] not in listed, listed[:600]
    elif case.kind == "marker":
        path = world.fill(case.list_path, world.outsider)
        stranger = _stranger(rid)
        unknown = world.outsider.call("GET", f"{path}?marker={stranger}", headers=resource.headers)
        response = world.outsider.call("GET", f"{path}?marker={rid}", headers=resource.headers)
        assert unknown.status_code in (400, 404), (unknown.status_code, unknown.content[:300])
        assert_error(resource.style, response, unknown.status_code)
        _same_answer(response, unknown, rid, stranger)  # no oracle in the message either
    elif case.kind == "owner-list":  # the control of the list cases: A's member finds it there
        caller = world.admin if case.list_path in resource.admin_lists else world.member
        response = caller.call("GET", world.fill(case.list_path, caller), headers=resource.headers)
        assert response.status_code == 200, (response.status_code, response.content[:400])
        assert rid.encode() in response.content, response.content[:400]
    elif case.kind == "owner":  # the control: A's member sees it (the refusals are about B, not a bad path)
        response = world.member.call("GET", world.fill(resource.member, world.member, rid), headers=resource.headers)
        assert response.status_code == 200, (response.status_code, response.content[:400])
        assert rid.encode() in _content(response)
    elif case.kind == "admin":
        admin = world.admin
        path = world.fill(resource.member, admin, rid)
        response = admin.call("GET", path + world.fill(resource.admin_query, admin, rid), headers=resource.headers)
        assert response.status_code == 200, (response.status_code, response.content[:400])
        assert rid.encode() in _content(response)
    else:  # pragma: no cover
        raise AssertionError(case.kind)
