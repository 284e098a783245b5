"""Nova v2.1 admin routes: os-hypervisors, os-services, os-simple-tenant-usage (included by
apps/compute/api/urls.py)."""
from django.urls import URLPattern, re_path

from apps.compute.api import views_admin as v

S = r"/?$"
V = r"^v2\.1/"
HYP = r"os-hypervisors/"

urlpatterns: list[URLPattern] = [
    re_path(V + r"os-hypervisors" + S, v.Hypervisors.as_view()),
    re_path(V + HYP + r"detail" + S, v.HypervisorsDetail.as_view()),
    re_path(V + HYP + r"statistics" + S, v.HypervisorStatistics.as_view()),
    re_path(V + HYP + r"(?P<pattern>[^/]+)/search" + S, v.HypervisorSearch.as_view()),
    re_path(V + HYP + r"(?P<pattern>[^/]+)/servers" + S, v.HypervisorServers.as_view()),
    re_path(V + HYP + r"(?P<hypervisor_id>[^/]+)/uptime" + S, v.HypervisorUptime.as_view()),
    re_path(V + HYP + r"(?P<hypervisor_id>[^/]+)" + S, v.HypervisorDetail.as_view()),
    re_path(V + r"os-services" + S, v.Services.as_view()),
    re_path(V + r"os-services/(?P<action>enable|disable|disable-log-reason|force-down)" + S,
            v.ServiceAction.as_view()),
    re_path(V + r"os-services/(?P<service_id>[^/]+)" + S, v.ServiceDetail.as_view()),
    re_path(V + r"os-simple-tenant-usage" + S, v.TenantUsages.as_view()),
    re_path(V + r"os-simple-tenant-usage/(?P<project_id>[^/]+)" + S, v.TenantUsage.as_view()),
]
