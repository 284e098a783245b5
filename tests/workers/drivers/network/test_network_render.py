"""What the driver writes: dnsmasq configuration, router NAT and security-group nftables scripts.
The nft scripts are also checked by the real nft (``nft -c``) in a namespace of the test's own."""
from __future__ import annotations

import subprocess
import uuid

import pytest

from lib.netmodel import (
    AllowedAddressPairSpec,
    FloatingIpSpec,
    RouteSpec,
    SecurityGroupSpec,
    bridge_name,
    dhcp_device_name,
    tap_name,
    vxlan_name,
)
from tests.network_lab import SKIP_REASON
from tests.workers.drivers.network.states import Cloud, new_id, rule
from workers.drivers.network import dhcp, firewall, router


def test_names_fit_linux_interface_names() -> None:
    some = str(uuid.uuid4())
    for name in (bridge_name(some), tap_name(some), dhcp_device_name(some), vxlan_name(16777215)):
        assert len(name) <= 15
    assert bridge_name(some) == "brq" + some[:11]
    assert tap_name(some) == "tap" + some[:11]


def test_dnsmasq_config_static_reservations_and_options() -> None:
    cloud = Cloud()
    ext, tenant = cloud.networks()
    subnet = tenant.subnets[0]
    tenant = type(tenant)(**{**tenant.__dict__, "subnets": (type(subnet)(**{
        **subnet.__dict__, "host_routes": (RouteSpec("192.168.50.0/24", "10.10.0.254"),)}),)})
    port = cloud.guest_port(new_id(), "10.10.0.5", "FA:16:3E:00:00:05", "a")
    other_net = cloud.ext_host("a")
    cfg = dhcp.render(tenant, (port, other_net, *cloud.network_ports()), 3600)
    assert cfg is not None
    assert f"--dhcp-range=set:subnet-{subnet.id},10.10.0.0,static,255.255.255.0,3600s" in cfg.args
    assert f"--interface={dhcp_device_name(cloud.dhcp_port)}" in cfg.args
    # reservations: the guest and the router interface, never the DHCP port itself nor another network's port
    assert "fa:16:3e:00:00:05,10.10.0.5,host-10-10-0-5\n" in cfg.hosts
    assert "10.10.0.1," in cfg.hosts and "10.10.0.2," not in cfg.hosts and "203.0.113" not in cfg.hosts
    tag = f"tag:subnet-{subnet.id}"
    assert f"{tag},option:router,10.10.0.1" in cfg.opts
    assert f"{tag},option:dns-server,192.0.2.53" in cfg.opts
    assert f"{tag},26,1450" in cfg.opts
    # host routes repeat the default route (a client that gets option 121 ignores option 3)
    assert f"{tag},option:classless-static-route,192.168.50.0/24,10.10.0.254,0.0.0.0/0,10.10.0.1" in cfg.opts
    assert cfg.devices == ((cloud.dhcp_port, "fa:16:3e:00:00:02", ("10.10.0.2/24",)),)
    # no subnet with DHCP: no dnsmasq
    assert dhcp.render(ext, (), 3600) is None
    # adding a port changes the hosts file only, never the command line (SIGHUP, not a restart)
    more = dhcp.render(tenant, (port, cloud.guest_port(new_id(), "10.10.0.6", "fa:16:3e:00:00:06", "b")), 3600)
    assert more is not None and more.args == cfg.args and more.hosts != cfg.hosts


def test_router_nat_rules() -> None:
    cloud = Cloud()
    fip = FloatingIpSpec(id=new_id(), floating_ip="203.0.113.20", fixed_ip="10.10.0.5", port_id=new_id())
    script = router.render("stratus", cloud.router_spec((fip,)))
    assert "ip daddr 203.0.113.20 dnat to 10.10.0.5" in script
    assert "ip saddr 10.10.0.5 snat to 203.0.113.20" in script
    assert "ip saddr { 10.10.0.0/24 } snat to 203.0.113.10" in script
    # floating SNAT comes before the router's SNAT
    assert script.index("snat to 203.0.113.20") < script.index("snat to 203.0.113.10")
    # a floating IP without a fixed IP (not associated yet) is left out, never half-written
    loose = FloatingIpSpec(id=new_id(), floating_ip="203.0.113.21", fixed_ip="", port_id="")
    assert "203.0.113.21" not in router.render("stratus", cloud.router_spec((fip, loose)))
    no_snat = router.render("stratus", cloud.router_spec((fip,), snat=False))
    assert "snat to 203.0.113.10" not in no_snat and "snat to 203.0.113.20" in no_snat


def _firewall_script() -> str:
    cloud = Cloud()
    other = new_id()
    port = cloud.guest_port(new_id(), "10.10.0.5", "fa:16:3e:00:00:05", "a", groups=(cloud.sg, other))
    port = type(port)(**{**port.__dict__, "allowed_address_pairs": (
        AllowedAddressPairSpec("10.10.0.100"), AllowedAddressPairSpec("192.168.7.0/24", "fa:16:3e:aa:bb:cc"))})
    rules = (rule("egress"), rule("egress", ethertype="IPv6"), rule("ingress", "tcp", 22, 22),
             rule("ingress", "udp", 1000, 2000, prefix="192.0.2.0/24"), rule("ingress", "icmp", 8, 0),
             rule("ingress", "6", 80, 80), rule("ingress", "icmpv6", ethertype="IPv6"),
             rule("ingress", "tcp", 443, 443, group=other), rule("ingress", "tcp", 5432, 5432, group=new_id()),
             rule("ingress", "112"), rule("ingress", "icmp", ethertype="IPv6"))
    groups = (SecurityGroupSpec(cloud.sg, rules, ("10.10.0.5",)),
              SecurityGroupSpec(other, (rule("ingress", group=cloud.sg),), ("10.10.0.7", "fd00::7")))
    open_port = cloud.guest_port(new_id(), "10.10.0.6", "fa:16:3e:00:00:06", "a", groups=())
    return firewall.render("t", [firewall.FirewallPort(1, port), firewall.FirewallPort(2, open_port)], groups)


def test_security_group_script() -> None:
    script = _firewall_script()
    assert "meta nfproto ipv4 meta l4proto tcp tcp dport 22 accept" in script
    assert "ip saddr 192.0.2.0/24 meta l4proto udp udp dport 1000-2000 accept" in script
    assert "meta l4proto icmp icmp type 8 icmp code 0 accept" in script
    assert "meta l4proto tcp tcp dport 80 accept" in script  # protocol number 6 is tcp
    assert "ip saddr @rg1_v4 meta l4proto tcp tcp dport 443 accept" in script
    assert "5432" not in script  # a remote group nobody knows matches nothing
    assert "meta l4proto 112 accept" in script
    assert "meta nfproto ipv6 meta l4proto icmp" not in script  # icmp for IPv6 never matches
    # anti-spoofing: own MAC and the pairs' MACs, own IP and the pairs' addresses
    assert "ether saddr != { fa:16:3e:00:00:05, fa:16:3e:aa:bb:cc } drop" in script
    assert "ip saddr != { 10.10.0.100, 10.10.0.5, 192.168.7.0/24 } drop" in script
    # the remote group's members, per family
    assert "elements = { 10.10.0.7 }" in script and "elements = { fd00::7 }" in script
    # a port whose groups are none still gets default drop ingress (port security on)
    assert "chain ingress2 {" in script


@pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "ok")
def test_scripts_are_valid_nftables() -> None:
    ns = f"snr{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cloud = Cloud()
        fip = FloatingIpSpec(id=new_id(), floating_ip="203.0.113.20", fixed_ip="10.10.0.5", port_id=new_id())
        for script in (_firewall_script(), router.render("t", cloud.router_spec((fip,)))):
            # the first apply (tables absent) and a replacement (tables present) both parse and load
            for _ in range(2):
                proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script,
                                      capture_output=True, text=True, check=False)
                assert proc.returncode == 0, proc.stderr
        listed = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"], capture_output=True,
                                text=True, check=True).stdout
        assert "table bridge t_l2" in listed and "table inet t_sg" in listed and "table ip t_nat" in listed
        delete = firewall.render_delete("t", [("bridge", "t_l2"), ("inet", "t_sg"), ("ip", "other")])
        assert subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=delete, capture_output=True,
                              text=True, check=False).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
