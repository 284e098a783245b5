"""Gnocchi v1's routes (mounted at /metric/ by portal/urls.py)."""
from django.urls import re_path

from apps.telemetry.api import views as v

NAME = r"(?P<name>[^/]+)"
TYPE = r"(?P<type_name>[^/]+)"
RES = r"(?P<resource_id>[^/]+)"
MET = r"(?P<metric_id>[^/]+)"
NAMED = r"(?P<metric_name>[^/]+)"  # a metric by its name on a resource

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v1/?$", v.Versions.as_view()),
    re_path(r"^v1/capabilities/?$", v.Capabilities.as_view()),
    re_path(r"^v1/status/?$", v.Status.as_view()),
    re_path(r"^v1/archive_policy/?$", v.ArchivePolicies.as_view()),
    re_path(rf"^v1/archive_policy/{NAME}$", v.ArchivePolicyDetail.as_view()),
    re_path(r"^v1/archive_policy_rule/?$", v.ArchivePolicyRules.as_view()),
    re_path(rf"^v1/archive_policy_rule/{NAME}$", v.ArchivePolicyRuleDetail.as_view()),
    re_path(r"^v1/resource_type/?$", v.ResourceTypes.as_view()),
    re_path(rf"^v1/resource_type/{NAME}$", v.ResourceTypeDetail.as_view()),
    re_path(rf"^v1/resource/{TYPE}/?$", v.Resources.as_view()),
    re_path(rf"^v1/resource/{TYPE}/{RES}$", v.ResourceDetail.as_view()),
    re_path(rf"^v1/resource/{TYPE}/{RES}/history/?$", v.ResourceHistory.as_view()),
    re_path(rf"^v1/resource/{TYPE}/{RES}/metric/?$", v.ResourceMetrics.as_view()),
    re_path(rf"^v1/resource/{TYPE}/{RES}/metric/{NAMED}$", v.MetricDetail.as_view()),
    re_path(rf"^v1/resource/{TYPE}/{RES}/metric/{NAMED}/measures/?$", v.Measures.as_view()),
    re_path(rf"^v1/search/resource/{TYPE}/?$", v.ResourceSearch.as_view()),
    re_path(r"^v1/metric/?$", v.Metrics.as_view()),
    re_path(rf"^v1/metric/{MET}$", v.MetricDetail.as_view()),
    re_path(rf"^v1/metric/{MET}/measures/?$", v.Measures.as_view()),
    re_path(r"^v1/batch/metrics/measures/?$", v.BatchMetrics.as_view()),
    re_path(r"^v1/batch/resources/metrics/measures/?$", v.BatchResources.as_view()),
    re_path(r"^v1/aggregates/?$", v.Aggregates.as_view()),
    re_path(r"^v1/aggregation/metric/?$", v.AggregationMetric.as_view()),
    re_path(rf"^v1/aggregation/resource/{TYPE}/metric/{NAMED}/?$", v.AggregationResource.as_view()),
]
