"""The Neutron v2.0 API's routes (mounted at /network/ by portal/urls.py), from each resource's
declaration (apps/core/resources.Routes; the generic resources from views.RESOURCES)."""
from django.urls import re_path

from apps.core.resources import Routes, routes
from apps.networks.api import views as v

TAGGED = "(?P<collection>[a-z-]+)/{pk}/tags"

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v2\.0/?$", v.Resources.as_view()),
    *routes(
        r"^v2\.0/",
        Routes("extensions", v.Extensions, v.Extension, id="alias"),
        Routes("quotas", v.Quotas, v.Quota, id="project_id",
               below={"default": v.QuotaDefault, "details": v.QuotaDetails}),
        Routes("agents", v.Agents, v.AgentDetail),
        Routes("routers", below={"add_router_interface": v.AddRouterInterface,
                                 "remove_router_interface": v.RemoveRouterInterface}),
        (TAGGED, v.Tags), (TAGGED + "/{tag}", v.Tag),
        *(Routes(path, v.Collection.of(resource), v.Member.of(resource)) for path, resource in v.RESOURCES.items()),
        end=r"(?:\.json)?/?$",  # clients send /x, /x/ and (old ones) /x.json
        ident=r"[^/]+?"),
    # Anything else is Neutron's JSON 404 (never Django's HTML page).
    re_path(r"^.*$", v.Unknown.as_view()),
]
