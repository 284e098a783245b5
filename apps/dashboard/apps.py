from apps.core import appconfig
from apps.dashboard.panels import Panel


class DashboardConfig(appconfig.StratusAppConfig):
    name = "apps.dashboard"
    verbose_name = "Dashboard"
    panels = (Panel("Project", "Overview", "dashboard:overview", icon="overview", order=0),)

    def ready(self) -> None:
        super().ready()
        from django.contrib.auth.signals import user_logged_out

        from apps.dashboard.consumers import close_session_sockets

        def on_logout(sender: object, request: object, **kwargs: object) -> None:
            session = getattr(request, "session", None)
            close_session_sockets(getattr(session, "session_key", None))

        user_logged_out.connect(on_logout, dispatch_uid="stratus-dashboard-close-sockets", weak=False)
