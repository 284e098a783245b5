"""The custom constraints ``nova.flavor``, ``nova.keypair``, ``nova.server``, ``glance.image`` and
``neutron.network``/``subnet``/``port``/``security_group`` that template parameters use, registered
when the plugins load: each looks the value up as the stack's owner (``_lookup``)."""
from __future__ import annotations

from typing import Any

from apps.orchestration.engine.parameters import custom_constraints
from apps.orchestration.plugins.nova_common import _is_uuid, _lookup, flavor_id, image_id, network_id


def _keypair(actor: Any, name: str) -> Any:
    from apps.compute import selectors

    return selectors.keypair_get(actor=actor, name=name)


def _server_ref(actor: Any, ref: str) -> Any:
    from apps.compute.selectors import servers
    from apps.core.errors import NotFound

    if _is_uuid(ref):
        return servers.server_get(actor=actor, server_id=ref)
    found = servers.server_list(actor=actor, query=servers.ServerQuery(name=f"^{_escape(ref)}$"), details=False)
    if not found:
        raise NotFound(f"Server {ref} could not be found.")
    return found[0]


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def _subnet(actor: Any, ref: str) -> Any:
    from apps.core.errors import NotFound
    from apps.networks import selectors as networks

    if _is_uuid(ref):
        return networks.subnet_get(actor=actor, subnet_id=ref)
    if networks.subnet_list(actor=actor).filter(name=ref).count() != 1:
        raise NotFound(f"Subnet {ref} could not be found.")
    return ref


def _port(actor: Any, ref: str) -> Any:
    from apps.networks import selectors as networks

    return networks.port_get(actor=actor, port_id=ref)


def _security_group(actor: Any, ref: str) -> Any:
    from apps.networks import selectors as networks

    return networks.security_group_by_name_or_id(actor=actor, ref=ref)


custom_constraints.register("nova.flavor", _lookup(flavor_id))
custom_constraints.register("neutron.network", _lookup(network_id))
custom_constraints.register("neutron.subnet", _lookup(_subnet))
custom_constraints.register("neutron.port", _lookup(_port))
custom_constraints.register("neutron.security_group", _lookup(_security_group))
custom_constraints.register("glance.image", _lookup(image_id))
custom_constraints.register("nova.keypair", _lookup(_keypair))
custom_constraints.register("nova.server", _lookup(_server_ref))
