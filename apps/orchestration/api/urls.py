"""Heat v1's routes (mounted at /orchestration/ by portal/urls.py). A stack is named
``stacks/{name}/{id}`` (what the lookup's 302 points at) or, for the views below it, ``stacks/{name or id}``
too (answered directly instead of redirected)."""
from django.urls import re_path

from apps.orchestration.api import views as v

P = r"^v1/(?P<project_id>[^/]+)/"
SEG = r"[^/]+"
NAMED = rf"stacks/(?P<stack_name>{SEG})/(?P<stack_id>{SEG})"
REF = rf"stacks/(?P<ref>{SEG})"
BELOW = (
    (r"/template", v.StackTemplate), (r"/environment", v.StackEnvironment), (r"/files", v.StackFiles),
    (r"/outputs", v.StackOutputs), (rf"/outputs/(?P<key>{SEG})", v.StackOutput),
    (r"/resources", v.StackResources), (rf"/resources/(?P<resource_name>{SEG})", v.StackResourceDetail),
    (rf"/resources/(?P<resource_name>{SEG})/events", v.StackEvents),
    (rf"/resources/(?P<resource_name>{SEG})/signal", v.StackResourceSignal),
    (rf"/resources/(?P<resource_name>{SEG})/metadata", v.StackResourceMetadata),
    (rf"/resources/(?P<resource_name>{SEG})/events/(?P<event_id>{SEG})", v.StackEvent),
    (r"/events", v.StackEvents), (r"/actions", v.StackActions), (r"/abandon", v.StackAbandon),
    (r"/preview", v.StackUpdatePreview),
)

urlpatterns = [
    re_path(r"^/?$", v.Versions.as_view()),
    # the token-free signal URL (apps/orchestration/signals.py): a stack's id, a resource's (quoted) name
    re_path(r"^v1/signal/(?P<stack_id>[0-9a-f-]{36})/(?P<resource_name>[^?]+?)/?$", v.TokenSignal.as_view()),
    re_path(P + r"stacks/?$", v.Stacks.as_view()),
    re_path(P + r"stacks/preview/?$", v.StackPreview.as_view()),
    *[re_path(P + REF + sub + "/?$", view.as_view()) for sub, view in BELOW],
    *[re_path(P + NAMED + sub + "/?$", view.as_view()) for sub, view in BELOW],
    re_path(P + REF + "/?$", v.StackLookup.as_view()),
    re_path(P + NAMED + "/?$", v.StackDetail.as_view()),
    re_path(P + r"validate/?$", v.Validate.as_view()),
    re_path(P + r"template_versions/?$", v.TemplateVersions.as_view()),
    re_path(P + rf"template_versions/(?P<version>{SEG})/functions/?$", v.TemplateFunctions.as_view()),
    re_path(P + r"resource_types/?$", v.ResourceTypes.as_view()),
    re_path(P + rf"resource_types/(?P<type_name>{SEG})/template/?$", v.ResourceTypeTemplate.as_view()),
    re_path(P + rf"resource_types/(?P<type_name>{SEG})/?$", v.ResourceTypeDetail.as_view()),
    re_path(P + r"software_configs/?$", v.SoftwareConfigs.as_view()),
    re_path(P + rf"software_configs/(?P<config_id>{SEG})/?$", v.SoftwareConfigDetail.as_view()),
    re_path(P + r"software_deployments/?$", v.SoftwareDeployments.as_view()),
    re_path(P + rf"software_deployments/metadata/(?P<server_id>{SEG})/?$", v.SoftwareDeploymentMetadata.as_view()),
    re_path(P + rf"software_deployments/(?P<deployment_id>{SEG})/?$", v.SoftwareDeploymentDetail.as_view()),
    re_path(P + r".*$", v.Unknown.as_view()),
]
