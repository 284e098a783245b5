"""The Cinder v3 API's routes (mounted at /volume/ by portal/urls.py), from each resource's
declaration (apps/core/resources.Routes)."""
from django.urls import re_path

from apps.core.resources import Routes, routes
from apps.volumes.api import views as v

P = r"^v3/(?P<project_id>[^/]+)/"
METADATA = "metadata/{key}"

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v3/?$", v.Version.as_view()),
    *routes(
        P,
        Routes("volumes", v.Volumes, v.VolumeDetail, detail=True, action=v.VolumeAction,
               beside={"summary": v.VolumeSummary},
               below={"metadata": v.VolumeMetadata, METADATA: v.VolumeMetadataItem}, collection_end="$"),
        Routes("snapshots", v.Snapshots, v.SnapshotDetail, detail=True,
               action=v.SnapshotAction, below={"metadata": v.SnapshotMetadata, METADATA: v.SnapshotMetadataItem},
               collection_end="$"),
        Routes("os-quota-sets", member=v.QuotaSet, below={"defaults": v.QuotaSetDefaults}),
        Routes("os-quota-class-sets", member=v.QuotaClassSet, id="class_name"),
        Routes("types", v.VolumeTypes, v.VolumeTypeDetail, beside={"default": v.VolumeTypeDefault},
               below={"extra_specs": v.VolumeTypeExtraSpecs, "extra_specs/{key}": v.VolumeTypeExtraSpec}),
        Routes("attachments", v.Attachments, v.AttachmentDetail, detail=True,
               action=v.AttachmentAction, collection_end="$"),
        Routes("capabilities", member=v.Capabilities, id="hostname"),
        ("limits", v.Limits), ("os-availability-zone", v.AvailabilityZones),
        ("scheduler-stats/get_pools", v.Pools), ("extensions", v.Extensions),
    ),
    re_path(P + r".*$", v.Unknown.as_view()),  # anything else under a project: Cinder's 404
]
