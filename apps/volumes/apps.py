from django.apps import AppConfig

# Cinder's default limits (-1: unlimited)
QUOTAS = (
    ("volumes", 10, "Volumes"),
    ("gigabytes", 1000, "Volume and snapshot gigabytes"),
    ("snapshots", 10, "Volume snapshots"),
    ("per_volume_gigabytes", -1, "Largest volume (GB)"),
)


class VolumesConfig(AppConfig):
    name = "apps.volumes"
    label = "volumes"
    verbose_name = "Block Storage (Cinder)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.dashboard import panels
        from apps.identity import quotas, signals
        from apps.volumes.selectors import TYPE_QUOTAS, volume_type_quota_names

        for name, default, description in QUOTAS:
            quotas.register(name, default=default, service="volume", description=description)
        for name in TYPE_QUOTAS:  # Cinder's per volume type quotas, one family per resource
            quotas.register_family(name, names=volume_type_quota_names, default=-1, service="volume",
                                   description=f"{name.capitalize()} of volume type {{}}")
        signals.project_deleting.connect(_project_holdings, dispatch_uid="volumes-project-holdings")
        panels.mount("volumes", "apps.volumes.urls")
        panels.register("Volumes", "Volumes", "volumes:index", icon="volume", order=10)
        panels.register("Volumes", "Snapshots", "volumes:snapshots", icon="volume", order=20)
        panels.register("Admin", "Storage Backends", "volumes:backends", admin_only=True, icon="stack", order=44)


def _project_holdings(sender: object, *, project_id: str, **kwargs: object) -> list[str]:
    """Identity asks before it deletes a project: what of it this component still holds."""
    from apps.volumes import selectors

    return selectors.project_holdings(project_id=project_id)
