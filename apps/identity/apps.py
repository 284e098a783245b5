from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "apps.identity"
    label = "identity"
    verbose_name = "Identity (Keystone)"

    def ready(self) -> None:
        from apps.dashboard import panels

        panels.mount("identity", "apps.identity.urls")
        panels.register("Identity", "Projects", "identity:projects", admin_only=True, icon="projects", order=10)
        panels.register("Identity", "Users", "identity:users", admin_only=True, icon="users", order=20)
        panels.register("Identity", "Roles", "identity:roles", admin_only=True, icon="roles", order=30)
