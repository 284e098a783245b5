"""The identity panels, mounted at /dashboard/identity/ (namespace "identity") by apps.py."""
from django.urls import path

from apps.identity import views

urlpatterns = [
    path("", views.index, name="index"),
    path("projects", views.project_list, name="projects"),
    path("projects/create", views.project_create, name="project_create"),
    path("projects/<str:project_id>/edit", views.project_edit, name="project_edit"),
    path("projects/<str:project_id>/enabled", views.project_set_enabled, name="project_set_enabled"),
    path("projects/<str:project_id>/delete", views.project_delete, name="project_delete"),
    path("projects/<str:project_id>/members", views.project_members, name="project_members"),
    path("projects/<str:project_id>/members/remove", views.project_member_remove, name="project_member_remove"),
    path("users", views.user_list, name="users"),
    path("users/create", views.user_create, name="user_create"),
    path("users/<str:user_id>/edit", views.user_edit, name="user_edit"),
    path("users/<str:user_id>/enabled", views.user_set_enabled, name="user_set_enabled"),
    path("users/<str:user_id>/delete", views.user_delete, name="user_delete"),
    path("roles", views.role_list, name="roles"),
    path("roles/create", views.role_create, name="role_create"),
    path("roles/<str:role_id>/delete", views.role_delete, name="role_delete"),
]
