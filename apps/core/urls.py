"""The task log panels, mounted at /dashboard/tasks/ (namespace "tasks") by apps.py."""
from django.urls import path

from apps.core import views

urlpatterns = [
    path("", views.tasks, name="index"),
    path("all", views.tasks_all, name="all"),
    path("<str:record_id>/", views.task_detail, name="task"),
]
