"""The telemetry panels, mounted at /dashboard/telemetry/ (namespace "telemetry") by apps.py; the paths,
views and URL names follow apps/dashboard/routes.py."""
from apps.dashboard.routes import Resource, urls
from apps.telemetry import views, views_alarms

urlpatterns = urls(views, pages={"instances/<str:server_id>/graphs": "instance_graphs",
                                 "admin/capacity/": "capacity", "usage/": "usage"}) + urls(
    views_alarms, Resource("alarms", "alarm", "alarm_id", detail=True, new=("act",), actions=("edit", "delete")))
