from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class ComputeConfig(appconfig.StratusAppConfig):
    name = "apps.compute"
    verbose_name = "Compute (Nova)"
    quota_service = "compute"
    quotas = (  # Nova's default limits (-1: unlimited)
        Quota("instances", 10, "Instances"),
        Quota("cores", 20, "Instance vCPUs"),
        Quota("ram", 51200, "Instance RAM (MB)"),
        Quota("key_pairs", 100, "Key pairs per user"),
        Quota("server_groups", 10, "Server groups"),
        Quota("server_group_members", 10, "Servers per server group"),
        Quota("metadata_items", 128, "Metadata items per instance"),
        Quota("injected_files", 5, "Injected files per instance"),
        Quota("injected_file_content_bytes", 10240, "Bytes per injected file"),
        Quota("injected_file_path_bytes", 255, "Bytes per injected file path"),
        Quota("fixed_ips", -1, "Fixed IPs"),
    )
    dashboard_urls = "apps.compute.urls"
    panels = (
        Panel("Compute", "Instances", "compute:instances", icon="server", order=10),
        Panel("Compute", "Key Pairs", "compute:keypairs", icon="key", order=40),
        Panel("Admin", "All Instances", "compute:all_instances", admin_only=True, icon="server", order=35),
        Panel("Admin", "Flavors", "compute:flavors", admin_only=True, icon="server", order=40),
        Panel("Admin", "Hypervisors", "compute:hypervisors", admin_only=True, icon="stack", order=41),
        Panel("Admin", "Compute Services", "compute:services", admin_only=True, icon="activity", order=42),
        Panel("Admin", "Usage", "compute:usage", admin_only=True, icon="chart", order=43),
    )

    def on_bootstrap(self, *, result: dict) -> None:  # noqa: ARG002 (the hook's signature)
        """The usual flavors (idempotent)."""
        from apps.compute import services

        services.flavor_defaults_ensure()

    def project_holdings(self, *, project_id: str) -> list[str]:
        from apps.compute.selectors import servers as selectors

        return selectors.project_holdings(project_id=project_id)
