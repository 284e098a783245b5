"""The Cinder v3 API's routes (mounted at /volume/ by portal/urls.py)."""
from django.urls import re_path

from apps.volumes.api import views as v

S = r"/?$"
P = r"^v3/(?P<project_id>[^/]+)/"
VOL = r"volumes/(?P<volume_id>[^/]+)"
SNAP = r"snapshots/(?P<snapshot_id>[^/]+)"

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v3/?$", v.Version.as_view()),
    re_path(P + r"volumes$", v.Volumes.as_view()),
    re_path(P + r"volumes/detail" + S, v.VolumesDetail.as_view()),
    re_path(P + r"volumes/summary" + S, v.VolumeSummary.as_view()),
    re_path(P + VOL + r"/action" + S, v.VolumeAction.as_view()),
    re_path(P + VOL + r"/metadata" + S, v.VolumeMetadata.as_view()),
    re_path(P + VOL + r"/metadata/(?P<key>[^/]+)" + S, v.VolumeMetadataItem.as_view()),
    re_path(P + VOL + S, v.VolumeDetail.as_view()),
    re_path(P + r"snapshots$", v.Snapshots.as_view()),
    re_path(P + r"snapshots/detail" + S, v.SnapshotsDetail.as_view()),
    re_path(P + SNAP + r"/metadata" + S, v.SnapshotMetadata.as_view()),
    re_path(P + SNAP + r"/metadata/(?P<key>[^/]+)" + S, v.SnapshotMetadataItem.as_view()),
    re_path(P + SNAP + S, v.SnapshotDetail.as_view()),
    re_path(P + r"os-quota-sets/(?P<target>[^/]+)/defaults" + S, v.QuotaSetDefaults.as_view()),
    re_path(P + r"os-quota-sets/(?P<target>[^/]+)" + S, v.QuotaSet.as_view()),
    re_path(P + r"os-quota-class-sets/(?P<class_name>[^/]+)" + S, v.QuotaClassSet.as_view()),
    re_path(P + r"limits" + S, v.Limits.as_view()),
    re_path(P + r"types" + S, v.VolumeTypes.as_view()),
    re_path(P + r"types/default" + S, v.VolumeTypeDefault.as_view()),
    re_path(P + r"types/(?P<type_id>[^/]+)/extra_specs" + S, v.VolumeTypeExtraSpecs.as_view()),
    re_path(P + r"types/(?P<type_id>[^/]+)/extra_specs/(?P<key>[^/]+)" + S, v.VolumeTypeExtraSpec.as_view()),
    re_path(P + r"types/(?P<type_id>[^/]+)" + S, v.VolumeTypeDetail.as_view()),
    re_path(P + SNAP + r"/action" + S, v.SnapshotAction.as_view()),
    re_path(P + r"os-availability-zone" + S, v.AvailabilityZones.as_view()),
    re_path(P + r"scheduler-stats/get_pools" + S, v.Pools.as_view()),
    re_path(P + r"capabilities/(?P<hostname>[^/]+)" + S, v.Capabilities.as_view()),
    re_path(P + r"extensions" + S, v.Extensions.as_view()),
    re_path(P + r"attachments$", v.Attachments.as_view()),
    re_path(P + r"attachments/detail" + S, v.AttachmentsDetail.as_view()),
    re_path(P + r"attachments/(?P<attachment_id>[^/]+)/action" + S, v.AttachmentAction.as_view()),
    re_path(P + r"attachments/(?P<attachment_id>[^/]+)" + S, v.AttachmentDetail.as_view()),
    re_path(P + r".*$", v.Unknown.as_view()),
]
