"""Resource types (plugins): ``base`` is the interface, each module registers its types."""
from apps.orchestration.plugins import (
    aodh,
    aws_network,
    cinder,
    glance,
    heat,
    neutron,
    neutron_floating,
    neutron_security,
    nova,
    nova_constraints,
    nova_misc,
    software,
    stacks,
    swift,
    wait,
)
from apps.orchestration.plugins.base import REGISTRY, Outcome, Plugin, PluginContext, ResourceFailed, plugin_for

__all__ = ["REGISTRY", "Outcome", "Plugin", "PluginContext", "ResourceFailed", "aodh", "aws_network", "cinder",
           "glance", "heat", "neutron", "neutron_floating", "neutron_security", "nova", "nova_constraints", "nova_misc",
           "plugin_for", "software", "stacks", "swift", "wait"]
