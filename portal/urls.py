"""Every service under one server, one prefix each (the catalog lists them)."""
from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from apps.compute.api.views import Versions as ComputeVersions
from apps.compute.views_console import console_vnc
from apps.identity.api.views import Version as IdentityVersion
from apps.identity.api.views import Versions as IdentityVersions
from apps.images.api.views import Versions as ImageVersions
from apps.objects.api.s3 import s3 as s3_view
from apps.orchestration.api.views import Versions as OrchestrationVersions
from apps.telemetry.api.alarms import Versions as AlarmingVersions
from apps.telemetry.api.views import Versions as TelemetryVersions
from apps.volumes.api.views import Versions as VolumeVersions


def root(request: HttpRequest) -> HttpResponse:  # noqa: ARG001
    return HttpResponseRedirect("/dashboard/")


urlpatterns = [
    path("", root),
    re_path(r"^identity/?$", IdentityVersions.as_view()),
    path("identity/v3/", include("apps.identity.api.urls")),
    re_path(r"^identity/v3$", IdentityVersion.as_view()),
    path("admin/", admin.site.urls),
    path("dashboard/", include("apps.dashboard.urls")),
    path("console/vnc/", console_vnc, name="console_vnc"),  # a noVNC console URL (os-remote-consoles)
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
    re_path(r"^image$", ImageVersions.as_view()),
    path("image/", include("apps.images.api.urls")),
    path("network/", include("apps.networks.api.urls")),
    re_path(r"^compute$", ComputeVersions.as_view()),
    path("compute/", include("apps.compute.api.urls")),
    path("metadata/", include("apps.compute.api.urls_metadata")),  # the guests' metadata service (via proxies)
    re_path(r"^volume$", VolumeVersions.as_view()),
    path("volume/", include("apps.volumes.api.urls")),
    path("object-store/", include("apps.objects.api.urls")),
    re_path(r"^metric$", TelemetryVersions.as_view()),
    path("metric/", include("apps.telemetry.api.urls")),
    re_path(r"^alarming$", AlarmingVersions.as_view()),
    path("alarming/", include("apps.telemetry.api.alarms_urls")),
    re_path(r"^s3(?:/(?P<rest>.*))?$", s3_view),  # the S3 face (apps/objects/api/s3.py)
    re_path(r"^orchestration$", OrchestrationVersions.as_view()),
    path("orchestration/", include("apps.orchestration.api.urls")),
    path("v1/nodes/", include("apps.compute.api.urls_nodes")),  # node enrolment (apps/compute/api/views_nodes.py)
]
