"""What Gnocchi and Ceilometer ship: the archive policies, the default rule and the resource types
(ceilometer's gnocchi_resources.yaml), as plain data (the migration and bootstrap seed them)."""
from __future__ import annotations

from typing import Any

DAY = 86400
# the aggregations a rollup answers: Gnocchi's default set, then first/last
DEFAULT_AGGREGATION_METHODS = ["mean", "min", "max", "sum", "std", "count"]
AGGREGATION_METHODS = [*DEFAULT_AGGREGATION_METHODS, "first", "last"]


def _items(*pairs: tuple[int, int]) -> list[dict[str, int]]:
    return [{"granularity": g, "timespan": span, "points": span // g} for g, span in pairs]


ARCHIVE_POLICIES: list[dict[str, Any]] = [
    {"name": "bool", "back_window": 3600, "definition": _items((1, 365 * DAY)), "aggregation_methods": ["last"]},
    {"name": "low", "back_window": 0, "definition": _items((300, 30 * DAY)),
     "aggregation_methods": DEFAULT_AGGREGATION_METHODS},
    {"name": "medium", "back_window": 0, "definition": _items((60, 7 * DAY), (3600, 365 * DAY)),
     "aggregation_methods": DEFAULT_AGGREGATION_METHODS},
    {"name": "high", "back_window": 0, "definition": _items((1, 3600), (60, 7 * DAY), (3600, 365 * DAY)),
     "aggregation_methods": DEFAULT_AGGREGATION_METHODS},
    {"name": "ceilometer-low", "back_window": 0, "definition": _items((300, 30 * DAY)),
     "aggregation_methods": ["mean"]},
    {"name": "ceilometer-high", "back_window": 0, "definition": _items((1, 3600), (60, DAY), (3600, 365 * DAY)),
     "aggregation_methods": ["mean"]},
]
ARCHIVE_POLICY_RULES: list[dict[str, str]] = [{"name": "default", "metric_pattern": "*", "archive_policy": "low"}]


def _attr(kind: str = "string", *, required: bool = False) -> dict[str, Any]:
    if kind == "string":
        return {"type": "string", "required": required, "min_length": 0, "max_length": 255}
    return {"type": kind, "required": required}


RESOURCE_TYPES: dict[str, dict[str, Any]] = {
    "generic": {},
    "instance": {"flavor_id": _attr(required=True), "image_ref": _attr(), "host": _attr(required=True),
                 "display_name": _attr(required=True), "server_group": _attr(), "flavor_name": _attr()},
    "instance_disk": {"name": _attr(required=True), "instance_id": _attr("uuid", required=True)},
    "instance_network_interface": {"name": _attr(required=True), "instance_id": _attr("uuid", required=True)},
    "volume": {"display_name": _attr(), "volume_type": _attr()},
    "volume_provider": {"provider": _attr(required=True)},
    "image": {"name": _attr(), "container_format": _attr(), "disk_format": _attr()},
    "network": {},
    "stack": {},
    "swift_account": {},
    # the control tier's lifecycle records (apps.telemetry.services.lifecycle); Ceilometer files
    # snapshots under "volume" and floating IPs under "network": Stratus gives each its own type so a
    # usage report (and `openstack metric resource list --type snapshot`) tells them apart
    "snapshot": {"display_name": _attr(), "volume_id": _attr()},
    "floatingip": {"floating_ip_address": _attr(), "floating_network_id": _attr()},
    "router": {"name": _attr()},
    "host": {"host_name": _attr(required=True)},
    "host_disk": {"host_name": _attr(required=True), "device_name": _attr()},
    "host_network_interface": {"host_name": _attr(required=True), "device_name": _attr()},
    "ipmi": {},
}

# Attributes the lifecycle records keep on top of Ceilometer's (not required, so a resource made
# through the API without them stays valid): the quantities usage is computed from, and the status.
LIFECYCLE_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "instance": {"vcpus": _attr("number"), "memory_mb": _attr("number"), "root_gb": _attr("number"),
                 "ephemeral_gb": _attr("number"), "status": _attr()},
    "volume": {"size": _attr("number"), "status": _attr()},
    "snapshot": {"size": _attr("number"), "status": _attr()},
    "image": {"size": _attr("number"), "status": _attr()},
    "floatingip": {"status": _attr()},
    "router": {"status": _attr()},
    "swift_account": {"bytes": _attr("number"), "objects": _attr("number"), "containers": _attr("number")},
}


def resource_type_attributes(name: str) -> dict[str, Any]:
    """A seeded type's attributes: Ceilometer's, then the lifecycle's."""
    return {**RESOURCE_TYPES[name], **LIFECYCLE_ATTRIBUTES.get(name, {})}
