"""Names, not ids, on the networking pages (issue 11, item 3): a floating IP is mapped to the instance
by name (a link to its page) with its fixed IP, the associate form offers "instance: fixed IP on
network", a port says which instance or router it serves by name; the names come with the list's own
query (a constant number of queries whatever the length), and another project's instance named by a
port's device_id shows neither its name nor a link."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.networks import services as network_services
from apps.networks.services import Gateway
from tests.compute.test_dashboard_instances import client_for, spawned
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture  # noqa: F401
from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db(transaction=False)

N = "/dashboard/networks"
C = "/dashboard/compute"


def _routed(env: Env) -> Any:
    actor = env.cloud.member_actor
    router = network_services.router_create(actor=actor, name="edge",
                                            external_gateway_info=Gateway(network_id=env.cloud.public_id))
    network_services.router_interface_add(actor=actor, router_id=router.id, subnet_id=env.network.subnets.get().id)
    return router


def _fip_for(env: Env, instance: Any) -> Any:
    port = instance_port(instance)
    fixed = port.fixed_ips.get().ip_address
    return network_services.floatingip_create(actor=env.cloud.member_actor, floating_network_id=env.cloud.public_id,
                                              port_id=port.id, fixed_ip_address=fixed)


def instance_port(instance: Any) -> Any:
    from apps.networks.models import Port

    return Port.objects.get(device_id=instance.id)


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr data-id="{row_id}".*?</tr>', html, re.S)
    assert match, row_id
    return match.group(0)


def shown(html: str) -> str:
    """The text a person reads (no tags, no attributes)."""
    return re.sub(r"<[^>]*>", " ", html)


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_floating_ips_are_mapped_to_instances_by_name(env: Env) -> None:
    _routed(env)
    web = spawned(env.boot(name="web"))
    fip = _fip_for(env, web)
    alice = client_for("alice")
    html = alice.get(N + "/floating-ips/").content.decode()
    row = _row(html, fip.id)
    assert f'<a href="{C}/instances/{web.id}/" data-device="instance">web</a> <code>{fip.fixed_ip_address}</code>' \
        in row
    assert f'<a href="{N}/{env.cloud.public_id}/">public</a>' in row
    assert web.id[:8] not in shown(row) and fip.port_id[:8] not in shown(row)

    # the associate form: the instance by name, its fixed IP and the network's name
    free = network_services.floatingip_create(actor=env.cloud.member_actor, floating_network_id=env.cloud.public_id)
    db = spawned(env.boot(name="db"))
    form = alice.get(f"{N}/floating-ips/{free.id}/associate").content.decode()
    fixed = instance_port(db).fixed_ips.get().ip_address
    assert f">db: {fixed} on private</option>" in form
    assert db.id[:8] not in shown(form)


def test_floating_ip_list_costs_constant_queries(env: Env) -> None:
    _routed(env)
    alice = client_for("alice")
    _fip_for(env, spawned(env.boot(name="vm-0")))
    url = N + "/floating-ips/"
    alice.get(url)
    small = _count(alice, url)
    for i in range(1, 5):
        _fip_for(env, spawned(env.boot(name=f"vm-{i}")))
    assert _count(alice, url) == small
    html = alice.get(url).content.decode()
    assert all(f">vm-{i}</a>" in html for i in range(5))


def test_another_projects_instance_is_not_named(env: Env) -> None:
    web = spawned(env.boot(name="secret-web"))
    olga = env.cloud.other_actor
    network = network_services.network_create(actor=olga, name="olga-net")
    network_services.subnet_create(actor=olga, network_id=network.id, cidr="10.9.0.0/24", ip_version=4)
    # Neutron lets a port's owner write any device_id (without a compute owner): naming another
    # project's instance reveals nothing
    port = network_services.port_create(actor=olga, network_id=network.id, name="", device_id=web.id)
    olga_client = client_for("olga")
    for url in (N + "/ports/", N + "/floating-ips/", f"{N}/{network.id}/"):
        html = olga_client.get(url).content.decode()
        assert "secret-web" not in html and f"{C}/instances/{web.id}/" not in html, url
    assert port.id in olga_client.get(N + "/ports/").content.decode()


def _messages(response: Any) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>([^<]*)<', response.content.decode()))


def test_refusals_name_what_they_refuse_on_the_dashboard_and_keep_neutrons_words(env: Env) -> None:
    router = _routed(env)
    alice = client_for("alice")
    refused = alice.post(f"{N}/routers/{router.id}/delete", follow=True)
    assert "Router edge still has ports" in _messages(refused)
    assert router.id not in _messages(refused)
    refused = alice.post(f"{N}/{env.network.id}/delete", follow=True)
    assert "Unable to complete operation on network private." in _messages(refused)
    # the API words it as Neutron does, with the ids
    api = env.cloud.member.to("network")
    body = neutron_error(api.delete(f"/routers/{router.id}"), 409, "RouterInUse")
    assert body["message"] == f"Router {router.id} still has ports"
    body = neutron_error(api.delete(f"/networks/{env.network.id}"), 409, "NetworkInUse")
    assert f"network {env.network.id}." in body["message"]


def test_ports_name_the_instance_or_router_they_serve(env: Env) -> None:
    router = _routed(env)
    web = spawned(env.boot(name="web"))
    alice = client_for("alice")
    for url in (N + "/ports/", f"{N}/{env.network.id}/"):
        html = alice.get(url).content.decode()
        assert _row(html, instance_port(web).id).count(
            f'<a href="{C}/instances/{web.id}/" data-device="instance">web</a>') == 1, url
        interface = instance_port_of_router(router)
        assert f'<a href="{N}/routers/{router.id}/" data-device="router">edge</a>' in _row(html, interface.id), url
    url = N + "/ports/"
    alice.get(url)
    small = _count(alice, url)
    for i in range(4):
        spawned(env.boot(name=f"more-{i}"))
    assert _count(alice, url) == small


def instance_port_of_router(router: Any) -> Any:
    from apps.networks.models import Port

    return Port.objects.get(device_id=router.id, device_owner="network:router_interface")
