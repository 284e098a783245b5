"""The block storage panels, mounted at /dashboard/volumes/ (namespace "volumes") by apps.py; the paths, views
and URL names follow apps/dashboard/routes.py (volumes are the component's own collection: their URL names are
the actions alone)."""
from apps.dashboard.routes import Resource, urls
from apps.volumes import views

urlpatterns = urls(
    views,
    Resource("", "volume", "volume_id", name="", new=("create",), detail=True,
             actions=("extend", "snapshot", "attach", "detach", "delete")),
    Resource("snapshots", "snapshot", "snapshot_id", actions=("delete",)),
    pages={"backends/": "backends"},
)
