from django.contrib import admin

from apps.compute import models
from apps.core.admin import Inline


class FlavorAccessInline(Inline):
    model = models.FlavorAccess
    raw_id_fields = ("project",)


class FlavorExtraSpecInline(Inline):
    model = models.FlavorExtraSpec


@admin.register(models.Flavor)
class FlavorAdmin(admin.ModelAdmin):
    list_display = ("name", "flavorid", "vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap", "is_public",
                    "disabled", "created_at")
    list_filter = ("is_public", "disabled")
    search_fields = ("name", "flavorid", "description")
    inlines = [FlavorAccessInline, FlavorExtraSpecInline]


@admin.register(models.FlavorAccess)
class FlavorAccessAdmin(admin.ModelAdmin):
    list_display = ("flavor", "project", "created_at")
    search_fields = ("flavor__name", "flavor__flavorid", "project__id", "project__name")
    raw_id_fields = ("flavor", "project")


@admin.register(models.FlavorExtraSpec)
class FlavorExtraSpecAdmin(admin.ModelAdmin):
    list_display = ("flavor", "key", "value", "updated_at")
    list_filter = ("key",)
    search_fields = ("flavor__name", "key", "value")
    raw_id_fields = ("flavor",)


@admin.register(models.KeyPair)
class KeyPairAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "type", "fingerprint", "created_at")
    list_filter = ("type",)
    search_fields = ("name", "fingerprint", "user__name", "user__id")
    readonly_fields = ("fingerprint", "created_at", "updated_at")
    raw_id_fields = ("user",)


@admin.register(models.ServerGroup)
class ServerGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "policy", "project", "user", "created_at")
    list_filter = ("policy",)
    search_fields = ("name", "id", "project__name", "project__id")
    raw_id_fields = ("project", "user")


@admin.register(models.ComputeNode)
class ComputeNodeAdmin(admin.ModelAdmin):
    """Compute nodes (registered by their agents). Operators enable/disable or force them down here or
    through os-services; the claims (``*_used``) belong to the scheduler."""

    list_display = ("host", "hypervisor_type", "availability_zone", "enabled", "forced_down", "last_heartbeat",
                    "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used", "running_vms")
    list_filter = ("enabled", "forced_down", "availability_zone", "hypervisor_type")
    search_fields = ("host", "hypervisor_hostname", "uuid", "host_ip")
    readonly_fields = ("uuid", "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms", "last_heartbeat",
                       "started_at", "created_at", "updated_at")


class InstanceTagInline(Inline):
    model = models.InstanceTag


class InstanceFaultInline(Inline):
    model = models.InstanceFault
    fields = ("created_at", "code", "message", "host")
    readonly_fields = ("created_at",)


@admin.register(models.Instance)
class InstanceAdmin(admin.ModelAdmin):
    """Servers. The state, the claim (``node``) and the quota change only through the server services;
    edit names and descriptions here, act on servers through the API or the dashboard."""

    list_display = ("name", "id", "project", "vm_state", "task_state", "power_state", "host", "flavor_ref",
                    "deleted", "created_at")
    list_filter = ("vm_state", "task_state", "deleted", "host", "locked")
    search_fields = ("name", "id", "project__name", "project__id", "host", "reservation_id", "image_id")
    raw_id_fields = ("project", "user", "server_group", "node")
    readonly_fields = ("vm_state", "task_state", "power_state", "node", "host", "vcpus", "memory_mb", "root_gb",
                       "ephemeral_gb", "swap", "flavor", "new_flavor", "attempts", "tried_hosts", "launched_at",
                       "terminated_at", "deleted", "deleted_at", "created_at", "updated_at")
    inlines = [InstanceTagInline, InstanceFaultInline]


@admin.register(models.InstanceFault)
class InstanceFaultAdmin(admin.ModelAdmin):
    list_display = ("instance", "code", "message", "host", "created_at")
    list_filter = ("code", "host")
    search_fields = ("instance__id", "instance__name", "message")
    raw_id_fields = ("instance",)


@admin.register(models.InstanceTag)
class InstanceTagAdmin(admin.ModelAdmin):
    list_display = ("tag", "instance")
    search_fields = ("tag", "instance__id", "instance__name")
    raw_id_fields = ("instance",)


@admin.register(models.BlockDeviceMapping)
class BlockDeviceMappingAdmin(admin.ModelAdmin):
    list_display = ("volume_id", "instance", "device_name", "boot_index", "source_type", "status",
                    "delete_on_termination", "created_at")
    list_filter = ("source_type", "status", "delete_on_termination")
    search_fields = ("volume_id", "attachment_id", "instance__id", "instance__name")
    raw_id_fields = ("instance",)


class InstanceActionEventInline(Inline):
    model = models.InstanceActionEvent
    fields = ("event", "start_time", "finish_time", "result", "host", "traceback")


@admin.register(models.InstanceAction)
class InstanceActionAdmin(admin.ModelAdmin):
    list_display = ("action", "instance", "request_id", "user_id", "project_id", "start_time", "finish_time",
                    "message")
    list_filter = ("action", "message")
    search_fields = ("request_id", "instance__id", "instance__name", "user_id", "project_id")
    raw_id_fields = ("instance",)
    inlines = [InstanceActionEventInline]
