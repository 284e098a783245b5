"""Nova v2.1 admin routes: os-hypervisors, os-services, os-simple-tenant-usage (included by
apps/compute/api/urls.py)."""
from django.urls import URLPattern, re_path  # noqa: F401

urlpatterns: list[URLPattern] = []
