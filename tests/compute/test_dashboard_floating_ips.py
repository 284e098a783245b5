"""A floating IP from the instance (its row and its page): the form offers the project's free floating
IPs and its pools by name and the instance's addresses by network name; associating an existing one or
allocating a new one goes through the networking services; disassociating from the instance page; bad
choices are errors on the form; another project's floating IPs never appear and cannot be named."""
from __future__ import annotations

import re

import pytest

from apps.networks import services as network_services
from apps.networks.models import FloatingIP
from apps.networks.services import Gateway
from tests.compute.test_dashboard_instances import D, client_for, messages_of, spawned
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=False)


def _routed(env: Env) -> None:
    """The private network reaches the public one through a router (what a floating IP needs)."""
    actor = env.cloud.member_actor
    router = network_services.router_create(actor=actor, name="r1",
                                            external_gateway_info=Gateway(network_id=env.cloud.public_id))
    subnet = env.network.subnets.get()
    network_services.router_interface_add(actor=actor, router_id=router.id, subnet_id=subnet.id)


def _options(html: str, name: str) -> dict[str, str]:
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    assert select, name
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(0)))


def test_associate_a_free_one_or_a_new_one_by_name_then_disassociate(env: Env) -> None:
    _routed(env)
    vm = spawned(env.boot(name="web"))
    free = network_services.floatingip_create(actor=env.cloud.member_actor, floating_network_id=env.cloud.public_id)
    theirs = network_services.floatingip_create(actor=env.cloud.other_actor, floating_network_id=env.cloud.public_id)
    alice = client_for("alice")

    listing = alice.get(D + "/instances/").content.decode()
    assert f'href="{D}/instances/{vm.id}/floating-ips/associate?next=' in listing
    page = alice.get(f"{D}/instances/{vm.id}/floating-ips/associate")
    html = page.content.decode()
    assert page.status_code == 200
    fips, ports = _options(html, "floating_ip"), _options(html, "port")
    assert fips == {free.id: f"{free.floating_ip_address} (public)",
                    f"new:{env.cloud.public_id}": "Allocate a new one from public"}
    assert theirs.id not in html and theirs.floating_ip_address not in html  # isolation
    ((port_choice, label),) = ports.items()
    assert re.fullmatch(r"private: 10\.0\.0\.\d+", label)
    fixed = label.split(": ")[1]

    done = alice.post(f"{D}/instances/{vm.id}/floating-ips/associate", {"floating_ip": free.id, "port": port_choice},
                      follow=True)
    assert f"Floating IP {free.floating_ip_address} now reaches instance web at {fixed}" in messages_of(done)
    assert (reload_fip := FloatingIP.objects.get(pk=free.id)).fixed_ip_address == fixed
    assert reload_fip.port_id == port_choice.split("@")[0]
    detail = alice.get(f"{D}/instances/{vm.id}/").content.decode()
    assert f'data-address="{free.floating_ip_address}"' in detail and f"private: {fixed}" in detail

    # one floating IP per fixed IP, as Neutron says: a second is a clear error on the form
    second = alice.post(f"{D}/instances/{vm.id}/floating-ips/associate",
                        {"floating_ip": f"new:{env.cloud.public_id}", "port": port_choice})
    assert second.status_code == 400 and 'role="alert"' in second.content.decode()
    assert "already has a floating IP" in second.content.decode(), second.content.decode()

    # disassociate from the instance page
    gone = alice.post(f"{D}/instances/{vm.id}/floating-ips/{free.id}/disassociate", follow=True)
    assert f"Disassociated floating IP {free.floating_ip_address} from instance web" in messages_of(gone)
    assert FloatingIP.objects.get(pk=free.id).port_id is None

    # then a new one, allocated from the pool in the same step, from the row (back to the list)
    new = alice.post(f"{D}/instances/{vm.id}/floating-ips/associate?next={D}/instances/",
                     {"floating_ip": f"new:{env.cloud.public_id}", "port": port_choice})
    assert new.status_code == 302 and new["Location"] == f"{D}/instances/"
    allocated = FloatingIP.objects.exclude(pk__in=[free.id, theirs.id]).get()
    assert allocated.project_id == env.cloud.demo_project.id and allocated.fixed_ip_address == fixed
    assert alice.post(f"{D}/instances/{vm.id}/floating-ips/{free.id}/disassociate").status_code == 404
    assert alice.post(f"{D}/instances/{vm.id}/floating-ips/{theirs.id}/disassociate").status_code == 404


def test_bad_choices_are_errors_and_change_nothing(env: Env) -> None:
    vm = spawned(env.boot(name="lonely"))  # no router: the pool cannot reach the instance's network
    theirs = network_services.floatingip_create(actor=env.cloud.other_actor, floating_network_id=env.cloud.public_id)
    alice = client_for("alice")
    url = f"{D}/instances/{vm.id}/floating-ips/associate"
    ports = _options(alice.get(url).content.decode(), "port")
    port_choice = next(iter(ports))
    foreign = alice.post(url, {"floating_ip": theirs.id, "port": port_choice})
    assert foreign.status_code == 400 and "Select a valid choice" in foreign.content.decode()
    missing = alice.post(url, {"floating_ip": f"new:{env.cloud.public_id}", "port": ""})
    assert missing.status_code == 400 and "This field is required" in missing.content.decode()
    unreachable = alice.post(url, {"floating_ip": f"new:{env.cloud.public_id}", "port": port_choice})
    assert unreachable.status_code == 400 and 'role="alert"' in unreachable.content.decode()
    assert "not reachable" in unreachable.content.decode() or "router" in unreachable.content.decode().lower()
    assert FloatingIP.objects.filter(project_id=env.cloud.demo_project.id).count() == 0
    assert FloatingIP.objects.get(pk=theirs.id).port_id is None


def test_another_projects_instance_and_a_reader(env: Env) -> None:
    _routed(env)
    vm = spawned(env.boot(name="web"))
    olga = client_for("olga")
    assert olga.get(f"{D}/instances/{vm.id}/floating-ips/associate").status_code == 404
    rita = client_for("rita")  # a reader sees no button and may not associate
    assert "associate-floating-ip" not in rita.get(f"{D}/instances/{vm.id}/").content.decode()
    ports = _options(rita.get(f"{D}/instances/{vm.id}/floating-ips/associate").content.decode(), "port")
    refused = rita.post(f"{D}/instances/{vm.id}/floating-ips/associate",
                        {"floating_ip": f"new:{env.cloud.public_id}", "port": next(iter(ports))})
    assert refused.status_code == 403 and not FloatingIP.objects.exists()
