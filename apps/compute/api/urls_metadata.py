"""The metadata service's routes (mounted at /metadata/ by portal/urls.py): every path below it."""
from django.urls import re_path

from apps.compute.api.views_metadata import MetadataView

urlpatterns = [re_path(r"^(?P<path>.*)$", MetadataView.as_view(), name="metadata")]
