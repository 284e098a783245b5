"""The Neutron v2.0 API's routes (mounted at /network/ by portal/urls.py)."""
from django.urls import re_path

from apps.networks.api import views as v

S = r"(?:\.json)?/?$"  # clients send /x, /x/ and (old ones) /x.json
ID = r"(?P<pk>[^/]+?)"

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v2\.0/?$", v.Resources.as_view()),
    re_path(r"^v2\.0/extensions" + S, v.Extensions.as_view()),
    re_path(r"^v2\.0/extensions/(?P<alias>[^/]+?)" + S, v.Extension.as_view()),
    re_path(r"^v2\.0/quotas" + S, v.Quotas.as_view()),
    re_path(r"^v2\.0/quotas/(?P<project_id>[^/]+?)/default" + S, v.QuotaDefault.as_view()),
    re_path(r"^v2\.0/quotas/(?P<project_id>[^/]+?)/details" + S, v.QuotaDetails.as_view()),
    re_path(r"^v2\.0/quotas/(?P<project_id>[^/]+?)" + S, v.Quota.as_view()),
    re_path(r"^v2\.0/agents" + S, v.Agents.as_view()),
    re_path(rf"^v2\.0/agents/{ID}" + S, v.AgentDetail.as_view()),
    re_path(rf"^v2\.0/routers/{ID}/add_router_interface" + S, v.AddRouterInterface.as_view()),
    re_path(rf"^v2\.0/routers/{ID}/remove_router_interface" + S, v.RemoveRouterInterface.as_view()),
    re_path(rf"^v2\.0/(?P<collection>[a-z-]+)/{ID}/tags" + S, v.Tags.as_view()),
    re_path(rf"^v2\.0/(?P<collection>[a-z-]+)/{ID}/tags/(?P<tag>[^/]+?)" + S, v.Tag.as_view()),
]
for path, resource in v.RESOURCES.items():
    urlpatterns += [
        re_path(rf"^v2\.0/{path}" + S, v.Collection.of(resource)),
        re_path(rf"^v2\.0/{path}/{ID}" + S, v.Member.of(resource)),
    ]

# Anything else is Neutron's JSON 404 (never Django's HTML page).
urlpatterns.append(re_path(r"^.*$", v.Unknown.as_view()))
