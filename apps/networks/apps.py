from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class NetworksConfig(appconfig.StratusAppConfig):
    name = "apps.networks"
    verbose_name = "Networking (Neutron)"
    quota_service = "network"
    quotas = (  # Neutron's default limits (-1: unlimited)
        Quota("network", 100, "Networks", "Networks", chart=True),
        Quota("subnet", 100, "Subnets", "Subnets"),
        Quota("subnetpool", -1, "Subnet pools", "Subnet pools"),
        Quota("port", 500, "Ports", "Ports", chart=True,  # counted: creates share no usage row
              counter="apps.networks.selectors.port_quota_count"),
        Quota("router", 10, "Routers", "Routers", chart=True),
        Quota("floatingip", 50, "Floating IP addresses", "Floating IPs", chart=True),
        Quota("security_group", 10, "Security groups", "Security groups", chart=True),
        Quota("security_group_rule", 100, "Security group rules", "Security group rules"),
    )
    dashboard_urls = "apps.networks.urls"
    panels = (
        Panel("Network", "Network topology", "networks:topology", icon="network", order=5),
        Panel("Network", "Networks", "networks:index", icon="network", order=10),
        Panel("Network", "Ports", "networks:ports", icon="dot", order=20),
        Panel("Network", "Routers", "networks:routers", icon="stack", order=30),
        Panel("Network", "Floating IPs", "networks:floatingips", icon="cloud", order=40),
        Panel("Network", "Security groups", "networks:security_groups", icon="shield", order=50),
        Panel("Admin", "Network agents", "networks:agents", admin_only=True, icon="network", order=46),
    )

    def on_bootstrap(self, *, result: dict) -> None:
        """The external network ``public`` owned by the admin project."""
        from apps.networks import services

        services.public_network_ensure(project_id=result["projects"]["admin"].id)
