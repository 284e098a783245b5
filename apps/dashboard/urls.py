"""/dashboard/: the shell's own pages (namespace "dashboard": overview, login, the switcher, the user's
settings), then every component's panels,
mounted by the component itself with panels.mount() (namespace = its prefix, e.g. "identity")."""
from django.urls import include, path

from apps.dashboard import panels, views, views_settings

shell_patterns = [
    path("", views.overview, name="overview"),
    path("login", views.login_view, name="login"),
    path("logout", views.logout_view, name="logout"),
    path("switch", views.switch_project, name="switch"),
    path("settings/password", views_settings.password, name="password"),
    path("settings/api", views_settings.api_access, name="api_access"),
    path("settings/openrc", views_settings.openrc, name="openrc"),
    path("settings/clouds.yaml", views_settings.clouds_yaml, name="clouds_yaml"),
]

urlpatterns = [
    path("", include((shell_patterns, "dashboard"))),
    *[path(f"{m.prefix}/", include((m.module, m.namespace))) for m in panels.mounts()],
]
