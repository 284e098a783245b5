"""The Nova v2.1 API's routes (mounted at /compute/ by portal/urls.py)."""
from django.urls import re_path

from apps.compute.api import views as v

S = r"/?$"
V = r"^v2\.1/"
FLAVOR = r"flavors/(?P<flavor_id>[^/]+)"

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v2\.1/?$", v.Version.as_view()),
    re_path(r"^v2/?$", v.LegacyVersion.as_view()),
    re_path(V + r"flavors" + S, v.Flavors.as_view()),
    re_path(V + r"flavors/detail" + S, v.FlavorsDetail.as_view()),
    re_path(V + FLAVOR + r"/action" + S, v.FlavorAction.as_view()),
    re_path(V + FLAVOR + r"/os-flavor-access" + S, v.FlavorAccessList.as_view()),
    re_path(V + FLAVOR + r"/os-extra_specs" + S, v.FlavorExtraSpecs.as_view()),
    re_path(V + FLAVOR + r"/os-extra_specs/(?P<key>[^/]+)" + S, v.FlavorExtraSpec.as_view()),
    re_path(V + FLAVOR + S, v.FlavorDetail.as_view()),
    re_path(V + r"os-keypairs" + S, v.KeyPairs.as_view()),
    re_path(V + r"os-keypairs/(?P<name>[^/]+)" + S, v.KeyPairDetail.as_view()),
    re_path(V + r"os-availability-zone" + S, v.AvailabilityZones.as_view()),
    re_path(V + r"os-availability-zone/detail" + S, v.AvailabilityZonesDetail.as_view()),
    re_path(V + r"os-quota-sets/(?P<project_id>[^/]+)/defaults" + S, v.QuotaSetDefaults.as_view()),
    re_path(V + r"os-quota-sets/(?P<project_id>[^/]+)/detail" + S, v.QuotaSetDetail.as_view()),
    re_path(V + r"os-quota-sets/(?P<project_id>[^/]+)" + S, v.QuotaSet.as_view()),
    re_path(V + r"os-quota-class-sets/(?P<class_name>[^/]+)" + S, v.QuotaClassSet.as_view()),
    re_path(V + r"limits" + S, v.Limits.as_view()),
    re_path(V + r"os-server-groups" + S, v.ServerGroups.as_view()),
    re_path(V + r"os-server-groups/(?P<group_id>[^/]+)" + S, v.ServerGroupDetail.as_view()),
]

from apps.compute.api import urls_admin, urls_servers  # noqa: E402

urlpatterns += urls_servers.urlpatterns + urls_admin.urlpatterns
