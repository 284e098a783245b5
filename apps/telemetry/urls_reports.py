"""The Reports panel, mounted at /dashboard/reports/ (namespace "reports") by apps.py: the schedules
(create on the index, edit, run now, delete) and their runs (downloads of CSV, HTML and PDF)."""
from apps.dashboard.routes import Resource, urls
from apps.telemetry import views_reports

urlpatterns = urls(
    views_reports,
    Resource("runs", "run", "run_id", new=("act",), actions=("delete", "download/<str:kind>=download")),
    Resource("", "schedule", "schedule_id", new=("act",), actions=("edit", "run", "delete")),
)
