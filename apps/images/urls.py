"""The images panel, mounted at /dashboard/images/ (namespace "images") by apps.py; the paths, views and URL
names follow apps/dashboard/routes.py (images are the component's own collection: views and names are the
actions alone)."""
from apps.dashboard.routes import Resource, urls
from apps.images import views

urlpatterns = urls(views, Resource("", "", "image_id", new=("create", "act"), actions=(
    "upload", "edit", "share", "share/<str:member_id>/remove=unshare", "answer", "delete")))
