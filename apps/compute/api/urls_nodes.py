"""Node enrolment (mounted at /v1/nodes/ by portal/urls.py)."""
from django.urls import re_path

from apps.compute.api import views_nodes

urlpatterns = [
    re_path(r"^enrol/?$", views_nodes.NodeEnrol.as_view()),
]
