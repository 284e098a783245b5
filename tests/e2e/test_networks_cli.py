"""Neutron with the real `openstack` CLI, as the demo user: the seed's flow (network, subnet,
router with a gateway on `public`, an SSH rule, a port with a floating IP), the errors a user sees,
and delete. Each CLI call costs about a second of start-up, so the lists and shows around the flow,
the clean-up of a rule an earlier test may have left, and the setup of the error test go through
openstacksdk in-process (test_networks_sdk.py has the SDK's breadth)."""
from __future__ import annotations

import json
import secrets
import subprocess

import pytest

pytestmark = pytest.mark.e2e


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _json(result: subprocess.CompletedProcess) -> dict | list:
    return json.loads(result.stdout)


def test_seed_flow_as_demo(live_cloud):
    def os_(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = live_cloud.openstack(*args, user="demo", check=False)
        if check:
            assert result.returncode == 0, (args, result.stderr[-3000:])
        return result

    demo = live_cloud.sdk(user="demo")
    net, sub, router, port = _name("n"), _name("s"), _name("r"), _name("p")
    network = _json(os_("network", "create", net, "-f", "json"))
    assert network["name"] == net and network["status"] == "ACTIVE" and network["mtu"] == 1450
    subnet = _json(os_("subnet", "create", "--network", net, "--subnet-range", "10.0.0.0/24", sub, "-f", "json"))
    assert subnet["cidr"] == "10.0.0.0/24" and subnet["gateway_ip"] == "10.0.0.1"
    assert subnet["allocation_pools"] in ([{"start": "10.0.0.2", "end": "10.0.0.254"}], "10.0.0.2-10.0.0.254")
    _json(os_("router", "create", router, "-f", "json"))
    os_("router", "add", "subnet", router, sub)
    os_("router", "set", "--external-gateway", "public", router)
    shown = _json(os_("router", "show", router, "-f", "json"))
    gateway = shown["external_gateway_info"]
    assert gateway["network_id"] == demo.network.find_network("public", ignore_missing=False).id
    assert gateway["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    # the session's cloud is shared: drop an SSH rule an earlier test may have left in demo's default group
    default = demo.network.find_security_group("default", project_id=demo.current_project_id, ignore_missing=False)
    for existing in demo.network.security_group_rules(security_group_id=default.id, protocol="tcp",
                                                      direction="ingress"):
        if (existing.port_range_min, existing.port_range_max) == (22, 22):
            demo.network.delete_security_group_rule(existing)
    rule = _json(os_("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "default",
                     "-f", "json"))
    assert rule["port_range_min"] == 22 and rule["port_range_max"] == 22 and rule["protocol"] == "tcp"
    duplicate = os_("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "default",
                    check=False)
    assert duplicate.returncode != 0 and "409" in duplicate.stderr, duplicate.stderr
    fip = _json(os_("floating", "ip", "create", "public", "-f", "json"))
    assert fip["floating_ip_address"].startswith("172.24.4.") and fip["port_id"] is None
    created_port = _json(os_("port", "create", "--network", net, port, "-f", "json"))
    fixed = created_port["fixed_ips"]
    fixed_ip = fixed[0]["ip_address"] if isinstance(fixed, list) else fixed.split("'ip_address': '")[1].split("'")[0]
    assert fixed_ip.startswith("10.0.0.")
    os_("floating", "ip", "set", "--port", port, fip["floating_ip_address"])
    associated = _json(os_("floating", "ip", "show", fip["id"], "-f", "json"))
    assert associated["port_id"] == created_port["id"] and associated["fixed_ip_address"] == fixed_ip
    assert associated["router_id"] == shown["id"]

    # lists and shows by name (the CLI's network list; the rest in-process)
    assert net in [n["Name"] for n in _json(os_("network", "list", "-f", "json"))]
    assert sub in [s.name for s in demo.network.subnets()]
    assert port in [p.name for p in demo.network.ports()]
    assert router in [r.name for r in demo.network.routers()]
    assert fip["id"] in [f.id for f in demo.network.ips()]
    assert "default" in [g.name for g in demo.network.security_groups()]
    assert rule["id"] in [r.id for r in demo.network.security_group_rules(security_group_id=default.id)]
    assert demo.network.find_port(port, ignore_missing=False).id == created_port["id"]
    assert demo.network.find_subnet(sub, ignore_missing=False).id == subnet["id"]

    # a router interface cannot go while a floating IP needs it
    busy = os_("router", "remove", "subnet", router, sub, check=False)
    assert busy.returncode != 0 and "409" in busy.stderr

    os_("floating", "ip", "unset", "--port", fip["floating_ip_address"])
    os_("floating", "ip", "delete", fip["id"])
    os_("port", "delete", port)
    demo.network.delete_security_group_rule(rule["id"])
    demo.network.update_router(shown["id"], external_gateway_info={})
    os_("router", "remove", "subnet", router, sub)
    os_("router", "delete", router)
    os_("subnet", "delete", sub)
    os_("network", "delete", net)
    gone = os_("network", "show", net, check=False)
    assert gone.returncode != 0 and ("No Network found" in gone.stderr or "404" in gone.stderr), gone.stderr


def test_errors_reach_the_cli(live_cloud):
    demo = live_cloud.sdk(user="demo")
    net = demo.network.create_network(name=_name("n"))
    demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.9.0.0/29", enable_dhcp=False,
                               name=_name("s"))
    try:
        taken = live_cloud.openstack("port", "create", "--network", net.id, "--fixed-ip", "ip-address=10.9.0.1",
                                     _name("p"), user="demo", check=False)
        assert taken.returncode != 0 and "409" in taken.stderr, taken.stderr
        not_ext = live_cloud.openstack("floating", "ip", "create", net.id, user="demo", check=False)
        assert not_ext.returncode != 0 and "400" in not_ext.stderr, not_ext.stderr
        admin_only = live_cloud.openstack("network", "create", "--share", _name("n"), user="demo", check=False)
        assert admin_only.returncode != 0 and "403" in admin_only.stderr, admin_only.stderr
    finally:
        demo.network.delete_network(net)
