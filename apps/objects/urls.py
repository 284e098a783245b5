"""The Object Store panel, mounted at /dashboard/objects/ (namespace "objects") by apps.py; the paths, views
and URL names follow apps/dashboard/routes.py. A container is named by its name; an object by its name in the
query (``?object=``), since object names hold any character, "/" and ".." included."""
from apps.dashboard.routes import Resource, urls
from apps.objects import views

urlpatterns = urls(
    views,
    Resource("containers", "container", "name", new=("create", "act"), detail=True,
             actions=("delete", "public", "upload", "download", "object", "tempurl", "objects/act=object_act")),
)
