from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "apps.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from apps.dashboard import panels
        from apps.dashboard.consumers import close_session_sockets

        def on_logout(sender: object, request: object, **kwargs: object) -> None:
            session = getattr(request, "session", None)
            close_session_sockets(getattr(session, "session_key", None))

        user_logged_out.connect(on_logout, dispatch_uid="stratus-dashboard-close-sockets", weak=False)

        panels.register("Project", "Overview", "dashboard:overview", icon="overview", order=0)
