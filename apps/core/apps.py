from apps.core import appconfig
from apps.dashboard.panels import Panel


class CoreConfig(appconfig.StratusAppConfig):
    name = "apps.core"
    verbose_name = "Stratus core"
    dashboard_urls = "apps.core.urls"
    dashboard_prefix = "tasks"
    panels = (
        Panel("Project", "Tasks", "tasks:index", icon="activity", order=90),
        Panel("Admin", "Tasks", "tasks:all", admin_only=True, icon="activity", order=90),
    )
