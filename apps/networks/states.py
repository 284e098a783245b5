"""Neutron's status vocabulary for networks, ports, routers and floating IPs: ACTIVE once the node
has it in place, DOWN while it is not (a port without a bound device, a floating IP not associated)."""
from __future__ import annotations

ACTIVE = "ACTIVE"
DOWN = "DOWN"
STATUSES = (ACTIVE, DOWN)
