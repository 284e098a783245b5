"""The images panel, mounted at /dashboard/images/ (namespace "images") by apps.py."""
from django.urls import path

from apps.images import views

urlpatterns = [
    path("", views.index, name="index"),
    path("create", views.create, name="create"),
    path("<str:image_id>/upload", views.upload, name="upload"),
    path("<str:image_id>/edit", views.edit, name="edit"),
    path("<str:image_id>/share", views.share, name="share"),
    path("<str:image_id>/share/<str:member_id>/remove", views.unshare, name="unshare"),
    path("<str:image_id>/answer", views.answer, name="answer"),
    path("<str:image_id>/delete", views.delete, name="delete"),
]
