from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Stratus core"

    def ready(self) -> None:
        from apps.dashboard import panels

        panels.mount("tasks", "apps.core.urls")
        panels.register("Project", "Tasks", "tasks:index", icon="activity", order=90)
        panels.register("Admin", "Tasks", "tasks:all", admin_only=True, icon="activity", order=90)
