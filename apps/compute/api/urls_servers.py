"""Nova v2.1 routes for servers and their sub-resources (included by apps/compute/api/urls.py)."""
from django.urls import URLPattern, re_path  # noqa: F401

urlpatterns: list[URLPattern] = []
