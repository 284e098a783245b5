from apps.core import appconfig
from apps.dashboard.panels import Panel


class IdentityConfig(appconfig.StratusAppConfig):
    name = "apps.identity"
    verbose_name = "Identity (Keystone)"
    dashboard_urls = "apps.identity.urls"
    panels = (
        Panel("Identity", "Projects", "identity:projects", admin_only=True, icon="projects", order=10),
        Panel("Identity", "Users", "identity:users", admin_only=True, icon="users", order=20),
        Panel("Identity", "Roles", "identity:roles", admin_only=True, icon="roles", order=30),
        Panel("Identity", "Groups", "identity:groups", admin_only=True, icon="members", order=25),
        Panel("Identity", "Domains", "identity:domains", admin_only=True, icon="stack", order=40),
    )

    def ready(self) -> None:
        super().ready()
        from apps.identity import token_cache

        token_cache.connect()
