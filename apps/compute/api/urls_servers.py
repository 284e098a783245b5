"""Nova v2.1 routes for servers and their sub-resources (included by apps/compute/api/urls.py)."""
from django.urls import URLPattern, re_path

from apps.compute.api import views_servers as v
from apps.compute.api import views_volumes as vv

S = r"/?$"
V = r"^v2\.1/"
SERVER = r"servers/(?P<server_id>[^/]+)"

urlpatterns: list[URLPattern] = [
    re_path(V + r"servers" + S, v.Servers.as_view()),
    re_path(V + r"servers/detail" + S, v.ServersDetail.as_view()),
    re_path(V + SERVER + r"/action" + S, v.ServerAction.as_view()),
    re_path(V + SERVER + r"/metadata" + S, v.ServerMetadata.as_view()),
    re_path(V + SERVER + r"/metadata/(?P<key>[^/]+)" + S, v.ServerMetadataItem.as_view()),
    re_path(V + SERVER + r"/ips" + S, v.ServerIps.as_view()),
    re_path(V + SERVER + r"/ips/(?P<label>[^/]+)" + S, v.ServerIpsNetwork.as_view()),
    re_path(V + SERVER + r"/os-instance-actions" + S, v.ServerActions.as_view()),
    re_path(V + SERVER + r"/os-instance-actions/(?P<request_id>[^/]+)" + S, v.ServerActionDetail.as_view()),
    re_path(V + SERVER + r"/tags" + S, v.ServerTags.as_view()),
    re_path(V + SERVER + r"/tags/(?P<tag>[^/]+)" + S, v.ServerTag.as_view()),
    re_path(V + SERVER + r"/os-volume_attachments" + S, vv.ServerVolumeAttachments.as_view()),
    re_path(V + SERVER + r"/os-volume_attachments/(?P<volume_id>[^/]+)" + S, vv.ServerVolumeAttachment.as_view()),
    re_path(V + SERVER + S, v.ServerDetail.as_view()),
]
