from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class TelemetryConfig(appconfig.StratusAppConfig):
    name = "apps.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry (Gnocchi)"
    dashboard_urls = "apps.telemetry.urls"
    quota_service = "alarming"
    quotas = (  # Aodh's project_alarm_quota: every enabled alarm costs the evaluator a read each round
        Quota("alarms", 100, "Alarms", "Alarms"),
    )
    panels = (
        Panel("Admin", "Capacity", "telemetry:capacity", admin_only=True, icon="stack", order=47),
        Panel("Telemetry", "Usage", "telemetry:usage", icon="chart", order=10),
        Panel("Telemetry", "Alarms", "telemetry:alarms", icon="activity", order=20),
    )

    def ready(self) -> None:
        super().ready()
        from apps.dashboard import panels

        # the Reports panel has its own mount (/dashboard/reports/), beside whatever else telemetry mounts
        panels.mount("reports", "apps.telemetry.urls_reports", namespace="reports")
        panels.register("Telemetry", "Reports", "reports:index", icon="chart", order=50)

    def on_bootstrap(self, *, result: dict) -> None:  # noqa: ARG002
        from apps.telemetry import services

        services.archive_policy_defaults_ensure()
