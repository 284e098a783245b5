from django.contrib import admin

from apps.compute import models


class FlavorAccessInline(admin.TabularInline):
    model = models.FlavorAccess
    extra = 0
    raw_id_fields = ("project",)


class FlavorExtraSpecInline(admin.TabularInline):
    model = models.FlavorExtraSpec
    extra = 0


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
