"""Swift v1 (mounted at /object-store/ by portal/urls.py)."""
from django.urls import re_path

from apps.objects.api import views

urlpatterns = [
    re_path(r"^info/?$", views.info),
    re_path(r"^v1/(?P<rest>AUTH_.*)$", views.swift),
]
