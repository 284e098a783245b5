"""The block storage panels, mounted at /dashboard/volumes/ (namespace "volumes") by apps.py; the paths, views
and URL names follow apps/dashboard/routes.py (volumes are the component's own collection: their URL names are
the actions alone)."""
from apps.dashboard.routes import Resource, urls
from apps.volumes import views, views_types

urlpatterns = urls(
    views_types,
    Resource("types", "volume_type", "type_id", name="type", new=("create", "act"), detail=True,
             actions=("edit", "delete", "specs=spec_set", "specs/<str:key>/delete=spec_delete")),
) + urls(
    views,
    Resource("", "volume", "volume_id", name="", new=("create", "act"), detail=True,
             actions=("edit", "extend", "snapshot", "upload", "attach", "detach", "delete")),
    Resource("snapshots", "snapshot", "snapshot_id", new=("act",), actions=("delete",)),
    pages={"backends/": "backends"},
)
