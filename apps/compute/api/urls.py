"""The Nova v2.1 API's routes (mounted at /compute/ by portal/urls.py), from each resource's
declaration (apps/core/resources.Routes): flavors, key pairs, zones, quotas, server groups, servers
and their sub-resources, and the admin API (os-hypervisors, os-services, os-simple-tenant-usage)."""
from django.urls import re_path

from apps.compute.api import views as v
from apps.compute.api import views_admin as admin
from apps.compute.api import views_servers as servers
from apps.compute.api import views_volumes as volumes
from apps.core.resources import Routes, routes

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v2\.1/?$", v.Version.as_view()),
    re_path(r"^v2/?$", v.LegacyVersion.as_view()),
    *routes(
        r"^v2\.1/",
        Routes("flavors", v.Flavors, v.FlavorDetail, detail=True, action=v.FlavorAction,
               below={"os-flavor-access": v.FlavorAccessList, "os-extra_specs": v.FlavorExtraSpecs,
                      "os-extra_specs/{key}": v.FlavorExtraSpec}),
        Routes("os-keypairs", v.KeyPairs, v.KeyPairDetail, id="name"),
        Routes("os-availability-zone", v.AvailabilityZones, detail=True),
        Routes("os-quota-sets", member=v.QuotaSet, below={"defaults": v.QuotaSetDefaults, "detail": v.QuotaSetDetail}),
        Routes("os-quota-class-sets", member=v.QuotaClassSet, id="class_name"),
        ("limits", v.Limits),
        Routes("os-server-groups", v.ServerGroups, v.ServerGroupDetail),
        Routes("servers", servers.Servers, servers.ServerDetail, detail=True, action=servers.ServerAction, below={
            "metadata": servers.ServerMetadata, "metadata/{key}": servers.ServerMetadataItem,
            "ips": servers.ServerIps, "ips/{label}": servers.ServerIpsNetwork,
            "os-instance-actions": servers.ServerActions,
            "os-instance-actions/{request_id}": servers.ServerActionDetail,
            "tags": servers.ServerTags, "tags/{tag}": servers.ServerTag,
            "remote-consoles": servers.ServerRemoteConsoles,
            "os-volume_attachments": volumes.ServerVolumeAttachments,
            "os-volume_attachments/{volume_id}": volumes.ServerVolumeAttachment}),
        Routes("os-hypervisors", admin.Hypervisors, admin.HypervisorDetail, id="hypervisor_id", detail=True,
               beside={"statistics": admin.HypervisorStatistics, "{pattern}/search": admin.HypervisorSearch,
                       "{pattern}/servers": admin.HypervisorServers}, below={"uptime": admin.HypervisorUptime}),
        Routes("os-services", admin.Services, admin.ServiceDetail, id="service_id",
               beside={"(?P<action>enable|disable|disable-log-reason|force-down)": admin.ServiceAction}),
        Routes("os-simple-tenant-usage", admin.TenantUsages, admin.TenantUsage, id="project_id"),
    ),
]
