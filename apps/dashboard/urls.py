"""/dashboard/: the shell's own pages (namespace "dashboard"), then every component's panels,
mounted by the component itself with panels.mount() (namespace = its prefix, e.g. "identity")."""
from django.urls import include, path

from apps.dashboard import panels, views

shell_patterns = [
    path("", views.overview, name="overview"),
    path("login", views.login_view, name="login"),
    path("logout", views.logout_view, name="logout"),
    path("switch", views.switch_project, name="switch"),
]

urlpatterns = [
    path("", include((shell_patterns, "dashboard"))),
    *[path(f"{m.prefix}/", include((m.module, m.namespace))) for m in panels.mounts()],
]
