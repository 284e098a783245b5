"""Compute in the operators' console: shown, never written past the services (an instance's state,
claim and quota, a flavor in use, a node's claims); its actions call the compute services."""
import uuid

from django.contrib import admin

from apps.compute import models, services
from apps.compute.services import node_enrolment, server_lifecycle
from apps.compute.services import nodes as node_services
from apps.core.admin import ShownInline, ShownOnly, deletes, service_action


class FlavorAccessInline(ShownInline):
    model = models.FlavorAccess
    raw_id_fields = ("project",)


class FlavorExtraSpecInline(ShownInline):
    model = models.FlavorExtraSpec


@admin.register(models.Flavor)
class FlavorAdmin(ShownOnly):
    actions = [deletes(services.flavor_delete, {"flavor_id": "flavorid"}, "flavors")]
    list_display = ("name", "flavorid", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap", "is_public",
                    "disabled", "created_at")
    list_filter = ("is_public", "disabled")
    search_fields = ("name", "flavorid", "description")
    inlines = [FlavorAccessInline, FlavorExtraSpecInline]


@admin.register(models.FlavorAccess)
class FlavorAccessAdmin(ShownOnly):
    list_display = ("flavor", "project", "created_at")
    search_fields = ("flavor__name", "flavor__flavorid", "project__id", "project__name")
    raw_id_fields = ("flavor", "project")


@admin.register(models.FlavorExtraSpec)
class FlavorExtraSpecAdmin(ShownOnly):
    list_display = ("flavor", "key", "value", "updated_at")
    list_filter = ("key",)
    search_fields = ("flavor__name", "key", "value")
    raw_id_fields = ("flavor",)


@admin.register(models.KeyPair)
class KeyPairAdmin(ShownOnly):
    actions = [deletes(services.keypair_delete, {"name": "name", "user_id": "user_id"}, "key pairs")]
    list_display = ("name", "user", "type", "fingerprint", "created_at")
    list_filter = ("type",)
    search_fields = ("name", "fingerprint", "user__name", "user__id")
    readonly_fields = ("fingerprint", "created_at", "updated_at")
    raw_id_fields = ("user",)


@admin.register(models.ServerGroup)
class ServerGroupAdmin(ShownOnly):
    actions = [deletes(services.server_group_delete, "group_id", "server groups")]
    list_display = ("name", "id", "policy", "project", "user", "created_at")
    list_filter = ("policy",)
    search_fields = ("name", "id", "project__name", "project__id")
    raw_id_fields = ("project", "user")


@admin.register(models.ComputeNode)
class ComputeNodeAdmin(ShownOnly):
    """Compute nodes (registered by their agents). Operators enable or disable them here (the
    os-services service) or through the API; the claims (``*_used``) belong to the scheduler."""

    actions = [
        service_action("disable_nodes", "Disable selected compute services",
                       lambda actor, node: node_services.compute_service_update(
                           actor=actor, node_id=node.id, status="disabled", disabled_reason="Disabled by an operator"),
                       done="Disabled"),
        service_action("enable_nodes", "Enable selected compute services",
                       lambda actor, node: node_services.compute_service_update(actor=actor, node_id=node.id,
                                                                                status="enabled"),
                       done="Enabled"),
    ]

    list_display = ("host", "hypervisor_type", "availability_zone", "enabled", "forced_down", "last_heartbeat",
                    "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used", "running_vms")
    list_filter = ("enabled", "forced_down", "availability_zone", "hypervisor_type")
    search_fields = ("host", "hypervisor_hostname", "uuid", "host_ip")
    readonly_fields = ("uuid", "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms", "last_heartbeat",
                       "started_at", "created_at", "updated_at")


class InstanceTagInline(ShownInline):
    model = models.InstanceTag


class InstanceFaultInline(ShownInline):
    model = models.InstanceFault
    fields = ("created_at", "code", "message", "host")
    readonly_fields = ("created_at",)


@admin.register(models.Instance)
class InstanceAdmin(ShownOnly):
    """Servers. The state, the claim (``node``) and the quota change only through the server services:
    shown here, deleted through ``server_delete`` (the node destroys the domain, the quota is released)."""

    actions = [service_action("delete_instances", "Delete selected instances",
                              lambda actor, instance: server_lifecycle.server_delete(
                                  actor=actor, server_id=instance.id, request_id=f"req-{uuid.uuid4()}"),
                              done="Deleting")]

    list_display = ("name", "id", "project", "vm_state", "task_state", "power_state", "host", "flavor_ref",
                    "deleted", "created_at")
    list_filter = ("vm_state", "task_state", "deleted", "host", "locked")
    search_fields = ("name", "id", "project__name", "project__id", "host", "reservation_id", "image_id")
    raw_id_fields = ("project", "user", "server_group", "node")
    readonly_fields = ("vm_state", "task_state", "power_state", "node", "host", "vcpus", "memory_mb", "root_gb",
                       "ephemeral_gb", "swap", "flavor", "new_flavor", "attempts", "tried_hosts", "launched_at",
                       "terminated_at", "deleted", "deleted_at", "graphics", "created_at", "updated_at")
    inlines = [InstanceTagInline, InstanceFaultInline]


@admin.register(models.InstanceFault)
class InstanceFaultAdmin(ShownOnly):
    list_display = ("instance", "code", "message", "host", "created_at")
    list_filter = ("code", "host")
    search_fields = ("instance__id", "instance__name", "message")
    raw_id_fields = ("instance",)


@admin.register(models.InstanceTag)
class InstanceTagAdmin(ShownOnly):
    list_display = ("tag", "instance")
    search_fields = ("tag", "instance__id", "instance__name")
    raw_id_fields = ("instance",)


@admin.register(models.BlockDeviceMapping)
class BlockDeviceMappingAdmin(ShownOnly):
    list_display = ("volume_id", "instance", "device_name", "boot_index", "source_type", "status",
                    "delete_on_termination", "created_at")
    list_filter = ("source_type", "status", "delete_on_termination")
    search_fields = ("volume_id", "attachment_id", "instance__id", "instance__name")
    raw_id_fields = ("instance",)


class InstanceActionEventInline(ShownInline):
    model = models.InstanceActionEvent
    fields = ("event", "start_time", "finish_time", "result", "host", "traceback")


@admin.register(models.InstanceAction)
class InstanceActionAdmin(ShownOnly):
    list_display = ("action", "instance", "request_id", "user_id", "project_id", "start_time", "finish_time",
                    "message")
    list_filter = ("action", "message")
    search_fields = ("request_id", "instance__id", "instance__name", "user_id", "project_id")
    raw_id_fields = ("instance",)
    inlines = [InstanceActionEventInline]


@admin.register(models.ConsoleToken)
class ConsoleTokenAdmin(ShownOnly):
    """Console URLs given out: whose, for which server, until when, used or not (the token itself is
    never stored; its hash is not shown either)."""

    list_display = ("instance", "kind", "console_type", "user", "project", "created_at", "expires_at", "used_at")
    list_filter = ("kind", "console_type")
    search_fields = ("instance__id", "instance__name", "user__name", "project__name")
    list_select_related = ("instance", "user", "project")
    exclude = ("id",)


@admin.register(models.NodeToken)
class NodeTokenAdmin(ShownOnly):
    """Node enrolment tokens (made with ``manage.py node_token create``): for which node and role,
    until when, used from where, revoked. The token is never stored; its hash is not shown either.
    The operators revoke them here."""

    actions = [service_action("revoke_node_tokens", "Revoke selected node tokens",
                              lambda actor, token: node_enrolment.node_token_revoke(actor=actor, token_id=token.id),
                              done="Revoked")]
    list_display = ("name", "role", "created_by", "created_at", "expires_at", "used_at", "used_from", "revoked_at")
    list_filter = ("role",)
    search_fields = ("name", "id")
    exclude = ("token_hash",)


@admin.register(models.EnrolledNode)
class EnrolledNodeAdmin(ShownOnly):
    """Machines that joined with a node token, one row per role."""

    list_display = ("name", "role", "address", "enrolled_at")
    list_filter = ("role",)
    search_fields = ("name", "address")
