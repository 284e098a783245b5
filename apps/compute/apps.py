from django.apps import AppConfig

# Nova's default limits (-1: unlimited)
QUOTAS = (
    ("instances", 10, "Instances"),
    ("cores", 20, "Instance vCPUs"),
    ("ram", 51200, "Instance RAM (MB)"),
    ("key_pairs", 100, "Key pairs per user"),
    ("server_groups", 10, "Server groups"),
    ("server_group_members", 10, "Servers per server group"),
    ("metadata_items", 128, "Metadata items per instance"),
    ("injected_files", 5, "Injected files per instance"),
    ("injected_file_content_bytes", 10240, "Bytes per injected file"),
    ("injected_file_path_bytes", 255, "Bytes per injected file path"),
    ("fixed_ips", -1, "Fixed IPs"),
)


class ComputeConfig(AppConfig):
    name = "apps.compute"
    label = "compute"
    verbose_name = "Compute (Nova)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.dashboard import panels
        from apps.identity import quotas, signals

        for name, default, description in QUOTAS:
            quotas.register(name, default=default, service="compute", description=description)
        signals.bootstrapped.connect(_default_flavors, dispatch_uid="compute-default-flavors")
        signals.project_deleting.connect(_project_holdings, dispatch_uid="compute-project-holdings")
        panels.mount("compute", "apps.compute.urls")
        panels.register("Compute", "Instances", "compute:instances", icon="server", order=10)
        panels.register("Compute", "Key Pairs", "compute:keypairs", icon="key", order=40)
        panels.register("Admin", "All Instances", "compute:all_instances", admin_only=True, icon="server", order=35)
        panels.register("Admin", "Flavors", "compute:flavors", admin_only=True, icon="server", order=40)
        panels.register("Admin", "Hypervisors", "compute:hypervisors", admin_only=True, icon="stack", order=41)
        panels.register("Admin", "Compute Services", "compute:services", admin_only=True, icon="activity",
                        order=42)
        panels.register("Admin", "Usage", "compute:usage", admin_only=True, icon="chart", order=43)


def _default_flavors(sender: object, *, result: dict, **kwargs: object) -> None:
    """After identity's bootstrap: the usual flavors (idempotent)."""
    from apps.compute import services

    services.flavor_defaults_ensure()


def _project_holdings(sender: object, *, project_id: str, **kwargs: object) -> list[str]:
    """Identity asks before it deletes a project: what of it this component still holds."""
    from apps.compute.selectors import servers as selectors

    return selectors.project_holdings(project_id=project_id)
