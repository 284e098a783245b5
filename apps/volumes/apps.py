from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class VolumesConfig(appconfig.StratusAppConfig):
    name = "apps.volumes"
    verbose_name = "Block Storage (Cinder)"
    quota_service = "volume"
    quotas = (  # Cinder's default limits (-1: unlimited)
        Quota("volumes", 10, "Volumes"),
        Quota("gigabytes", 1000, "Volume and snapshot gigabytes"),
        Quota("snapshots", 10, "Volume snapshots"),
        Quota("per_volume_gigabytes", -1, "Largest volume (GB)"),
    )
    dashboard_urls = "apps.volumes.urls"
    panels = (
        Panel("Volumes", "Volumes", "volumes:index", icon="volume", order=10),
        Panel("Volumes", "Snapshots", "volumes:snapshots", icon="volume", order=20),
        Panel("Admin", "Storage Backends", "volumes:backends", admin_only=True, icon="stack", order=44),
    )

    def ready(self) -> None:
        super().ready()
        from apps.identity import quotas
        from apps.volumes.selectors import TYPE_QUOTAS, volume_type_quota_names

        for name in TYPE_QUOTAS:  # Cinder's per volume type quotas, one family per resource
            quotas.register_family(name, names=volume_type_quota_names, default=-1, service="volume",
                                   description=f"{name.capitalize()} of volume type {{}}")

    def project_holdings(self, *, project_id: str) -> list[str]:
        from apps.volumes import selectors

        return selectors.project_holdings(project_id=project_id)
