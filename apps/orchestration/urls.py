"""The orchestration panels, mounted at /dashboard/orchestration/ (namespace "orchestration") by apps.py; the
paths, views and URL names follow apps/dashboard/routes.py."""
from apps.dashboard.routes import Resource, urls
from apps.orchestration import views

urlpatterns = urls(
    views,
    Resource("stacks", "stack", "stack_id", new=("launch", "act"), detail=True,
             actions=("delete", "check", "suspend", "resume", "update")),
)
