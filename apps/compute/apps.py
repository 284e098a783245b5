from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class ComputeConfig(appconfig.StratusAppConfig):
    name = "apps.compute"
    verbose_name = "Compute (Nova)"
    quota_service = "compute"
    quotas = (  # Nova's default limits (-1: unlimited)
        Quota("instances", 10, "Instances", "Instances", chart=True),
        Quota("cores", 20, "Instance vCPUs", "vCPUs", chart=True),
        Quota("ram", 51200, "Instance RAM", "RAM", unit="MiB", chart=True),
        Quota("key_pairs", 100, "Key pairs per user", "Key pairs"),
        Quota("server_groups", 10, "Server groups", "Server groups"),
        Quota("server_group_members", 10, "Servers per server group", "Server group members"),
        Quota("metadata_items", 128, "Metadata items per instance", "Metadata items"),
        Quota("injected_files", 5, "Injected files per instance", "Injected files"),
        Quota("injected_file_content_bytes", 10240, "Size of an injected file", "Injected file size",
              unit="bytes"),
        Quota("injected_file_path_bytes", 255, "Length of an injected file's path", "Injected file path",
              unit="bytes"),
        Quota("fixed_ips", -1, "Fixed IP addresses", "Fixed IPs"),
    )
    dashboard_urls = "apps.compute.urls"
    panels = (
        Panel("Compute", "Instances", "compute:instances", icon="server", order=10),
        Panel("Compute", "Key pairs", "compute:keypairs", icon="key", order=40),
        Panel("Admin", "All instances", "compute:all_instances", admin_only=True, icon="server", order=35),
        Panel("Admin", "Flavors", "compute:flavors", admin_only=True, icon="server", order=40),
        Panel("Admin", "Hypervisors", "compute:hypervisors", admin_only=True, icon="stack", order=41),
        Panel("Admin", "Compute services", "compute:services", admin_only=True, icon="activity", order=42),
        Panel("Admin", "Usage", "compute:usage", admin_only=True, icon="chart", order=43),
        Panel("Admin", "Node enrolment", "compute:node_tokens", admin_only=True, icon="key", order=42),
    )

    def on_bootstrap(self, *, result: dict) -> None:  # noqa: ARG002 (the hook's signature)
        """The usual flavors (idempotent)."""
        from apps.compute import services

        services.flavor_defaults_ensure()

    def project_holdings(self, *, project_id: str) -> list[str]:
        from apps.compute.selectors import servers as selectors

        return selectors.project_holdings(project_id=project_id)
