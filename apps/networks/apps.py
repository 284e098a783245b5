from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "apps.networks"
    label = "networks"
    verbose_name = "Networking (Neutron)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.dashboard import panels
        from apps.identity import quotas, signals

        # Neutron's default limits (-1: unlimited)
        for name, default, description in (
            ("network", 100, "Networks"),
            ("subnet", 100, "Subnets"),
            ("subnetpool", -1, "Subnet pools"),
            ("port", 500, "Ports"),
            ("router", 10, "Routers"),
            ("floatingip", 50, "Floating IPs"),
            ("security_group", 10, "Security groups"),
            ("security_group_rule", 100, "Security group rules"),
        ):
            quotas.register(name, default=default, service="network", description=description)
        signals.bootstrapped.connect(_public_network, dispatch_uid="networks-public-network")
        panels.mount("networks", "apps.networks.urls")
        panels.register("Network", "Network Topology", "networks:topology", icon="network", order=5)
        panels.register("Network", "Networks", "networks:index", icon="network", order=10)
        panels.register("Network", "Ports", "networks:ports", icon="dot", order=20)
        panels.register("Network", "Routers", "networks:routers", icon="stack", order=30)
        panels.register("Network", "Floating IPs", "networks:floatingips", icon="cloud", order=40)
        panels.register("Network", "Security Groups", "networks:security_groups", icon="shield", order=50)


def _public_network(sender: object, *, result: dict, **kwargs: object) -> None:
    """After identity's bootstrap: the external network ``public`` owned by the admin project."""
    from apps.networks import services

    services.public_network_ensure(project_id=result["projects"]["admin"].id)
