from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class VolumesConfig(appconfig.StratusAppConfig):
    name = "apps.volumes"
    verbose_name = "Block Storage (Cinder)"
    quota_service = "volume"
    quotas = (  # Cinder's default limits (-1: unlimited)
        Quota("volumes", 10, "Volumes", "Volumes", chart=True),
        Quota("gigabytes", 1000, "Size of all volumes and snapshots", "Volume storage", unit="GiB",
              chart=True),
        Quota("snapshots", 10, "Volume snapshots", "Volume snapshots", chart=True),
        Quota("per_volume_gigabytes", -1, "Size of the largest volume", "Volume size", unit="GiB"),
    )
    dashboard_urls = "apps.volumes.urls"
    panels = (
        Panel("Volumes", "Volumes", "volumes:index", icon="volume", order=10),
        Panel("Volumes", "Snapshots", "volumes:snapshots", icon="volume", order=20),
        Panel("Admin", "Storage backends", "volumes:backends", admin_only=True, icon="stack", order=44),
        Panel("Admin", "Volume types", "volumes:types", admin_only=True, icon="volume", order=45),
    )

    def ready(self) -> None:
        super().ready()
        from apps.identity import quotas
        from apps.volumes.selectors import TYPE_QUOTAS, volume_type_quota_names

        labels = {"volumes": ("Volumes of type {}", "count"), "gigabytes": ("Volume storage of type {}", "GiB"),
                  "snapshots": ("Snapshots of type {}", "count")}
        for name in TYPE_QUOTAS:  # Cinder's per volume type quotas, one family per resource
            label, unit = labels.get(name, (f"{name.capitalize()} of type {{}}", "count"))
            quotas.register_family(name, names=volume_type_quota_names, default=-1, service="volume",
                                   description=f"{name.capitalize()} of volume type {{}}", label=label, unit=unit)

    def project_holdings(self, *, project_id: str) -> list[str]:
        from apps.volumes import selectors

        return selectors.project_holdings(project_id=project_id)
