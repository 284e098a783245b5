"""The network driver builds real networking in namespaces: DHCP, routing, SNAT, floating IPs,
security groups, VXLAN between two nodes, idempotence and recovery after a crash."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from lib.netmodel import (
    PORT_ACTIVE,
    PORT_DOWN,
    FloatingIpSpec,
    bridge_name,
    dhcp_namespace,
    router_namespace,
    tap_name,
    vxlan_name,
)
from tests.conftest import ROOT
from tests.network_lab import Lab, in_ns, needs_netns, sh, tcp_probe, tcp_server
from tests.workers.drivers.network.states import Cloud, new_id, rule
from workers.drivers.network import node

pytestmark = needs_netns

GUEST_MAC = "fa:16:3e:10:00:05"
GUEST_IP = "10.10.0.5"
FLOATING = "203.0.113.20"


def alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _links(ns: str) -> str:
    return sh("ip", "-n", ns, "-o", "link", "show").stdout


def test_guest_gets_dhcp_reaches_gateway_snat_floating_ip_and_security_groups(lab: Lab) -> None:
    cloud = Cloud()
    driver = lab.node("a")
    vtep = lab.vteps["a"]
    guest_port = new_id()
    guest = lab.guest("a", guest_port, GUEST_MAC)
    ext = lab.guest("a", cloud.ext_host_port, "fa:16:3e:00:01:01")
    ext.set_static("203.0.113.1/24")
    egress_all = rule("egress")
    icmp_in = rule("ingress", "icmp")
    ssh_in = rule("ingress", "tcp", 22, 22)
    ports = (cloud.guest_port(guest_port, GUEST_IP, GUEST_MAC, "a"), cloud.ext_host("a"))

    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec(),),
                        groups=(cloud.group(egress_all, icmp_in, members=(GUEST_IP,)),))
    t0 = time.monotonic()
    report = driver.apply(state)
    apply_s = time.monotonic() - t0
    assert report.applied and not report.errors, report.errors
    print(f"\n[figure] apply of a fresh node state (2 networks, DHCP, router, 2 ports): {apply_s:.2f} s")
    assert report.statuses[guest_port] == PORT_ACTIVE
    assert report.statuses[cloud.dhcp_port] == PORT_ACTIVE
    assert report.statuses[cloud.router_itf] == PORT_ACTIVE

    # DHCP: the reservation by MAC, with the subnet's router, DNS server and the network's MTU
    t0 = time.monotonic()
    lease = guest.dhcp()
    print(f"[figure] DHCP lease (udhcpc start → bound): {time.monotonic() - t0:.2f} s")
    assert lease.get("ip") == GUEST_IP, (lease, guest.addresses())
    assert lease.get("router") == "10.10.0.1"
    assert lease.get("dns") == "192.0.2.53"
    assert lease.get("mtu") == "1450"
    assert GUEST_IP in guest.addresses()

    # the gateway answers; the external host is reached through SNAT (it sees the gateway IP)
    assert guest.ping("10.10.0.1")
    tcp_server(lab, ext.ns, 8080, "ext")
    assert tcp_probe(guest.ns, "203.0.113.1", 8080) == "ext 203.0.113.10"

    # a floating IP: the external host reaches the guest on it; the guest leaves with it as source
    tcp_server(lab, guest.ns, 22, "guest")
    fip = FloatingIpSpec(id=new_id(), floating_ip=FLOATING, fixed_ip=GUEST_IP, port_id=guest_port)
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),),
                        groups=(cloud.group(egress_all, icmp_in, members=(GUEST_IP,)),))
    report = driver.apply(state)
    assert not report.errors, report.errors
    assert ext.ping(FLOATING)
    assert tcp_probe(guest.ns, "203.0.113.1", 8080) == f"ext {FLOATING}"
    # hairpin: another guest of the same network reaches the floating IP (the ping rule lets it in)
    neighbour_port = new_id()
    neighbour = lab.guest("a", neighbour_port, "fa:16:3e:10:00:06")
    ports = (*ports, cloud.guest_port(neighbour_port, "10.10.0.6", "fa:16:3e:10:00:06", "a", security=False))
    report = driver.apply(cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),),
                                      groups=(cloud.group(egress_all, icmp_in, members=(GUEST_IP,)),)))
    assert not report.errors, report.errors
    assert neighbour.dhcp().get("ip") == "10.10.0.6"
    assert neighbour.ping(FLOATING)
    # ... but its port 22 is closed by the security group (no rule for it)
    assert tcp_probe(ext.ns, FLOATING, 22) is None

    # a rule opens TCP 22 ...
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),),
                        groups=(cloud.group(egress_all, icmp_in, ssh_in, members=(GUEST_IP,)),))
    report = driver.apply(state)
    assert not report.errors, report.errors
    assert tcp_probe(ext.ns, FLOATING, 22) == "guest 203.0.113.1"
    # ... and removing it closes it again
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),),
                        groups=(cloud.group(egress_all, icmp_in, members=(GUEST_IP,)),))
    driver.apply(state)
    assert tcp_probe(ext.ns, FLOATING, 22) is None
    assert ext.ping(FLOATING)  # ICMP is still allowed by its rule

    # a rule that only lets a remote group in: the external host is not a member...
    from_group = rule("ingress", "tcp", 22, 22, group=cloud.sg)
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),),
                        groups=(cloud.group(egress_all, from_group, members=(GUEST_IP,)),))
    driver.apply(state)
    assert tcp_probe(ext.ns, FLOATING, 22) is None
    # ... until its address is among the group's members
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),),
                        groups=(cloud.group(egress_all, from_group, members=(GUEST_IP, "203.0.113.1")),))
    driver.apply(state)
    assert tcp_probe(ext.ns, FLOATING, 22) == "guest 203.0.113.1"

    # without port security everything passes
    open_port = cloud.guest_port(guest_port, GUEST_IP, GUEST_MAC, "a", security=False)
    state = cloud.state("a", vtep, ports=(open_port, cloud.ext_host("a")), routers=(cloud.router_spec((fip,)),),
                        groups=(cloud.group(),))
    driver.apply(state)
    assert tcp_probe(ext.ns, FLOATING, 22) == "guest 203.0.113.1"


def test_anti_spoofing_and_unknown_mac_gets_no_lease(lab: Lab) -> None:
    cloud = Cloud()
    driver = lab.node("a")
    vtep = lab.vteps["a"]
    good, stranger = new_id(), new_id()
    g1 = lab.guest("a", good, GUEST_MAC)
    g2 = lab.guest("a", stranger, "fa:16:3e:10:00:99")  # plugged, but its MAC has no reservation
    ports = (cloud.guest_port(good, GUEST_IP, GUEST_MAC, "a"),
             cloud.guest_port(stranger, "10.10.0.6", "fa:16:3e:10:00:06", "a"))
    groups = (cloud.group(rule("egress"), rule("ingress", "icmp")),)
    report = driver.apply(cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec(),), groups=groups))
    assert not report.errors, report.errors
    assert g1.dhcp().get("ip") == GUEST_IP
    assert g2.dhcp(tries=2) == {}  # wrong MAC: spoofing dropped, and no reservation anyway
    assert g1.ping("10.10.0.1")
    # only the MAC rule can drop this: the stranger uses its port's own address (the IP rule lets it
    # through) and needs no ARP (permanent neighbours on both sides); its MAC is not the port's
    g2.set_static("10.10.0.6/24")
    in_ns(g2.ns, "ip", "neigh", "replace", GUEST_IP, "lladdr", GUEST_MAC, "dev", "eth0", "nud", "permanent")
    in_ns(g1.ns, "ip", "neigh", "replace", "10.10.0.6", "lladdr", "fa:16:3e:10:00:99", "dev", "eth0",
          "nud", "permanent")
    assert not g2.ping(GUEST_IP, count=2)


def test_anti_spoofing_drops_a_wrong_ip_from_the_right_mac(lab: Lab) -> None:
    """Only the IP rule can drop this: the guest keeps its port's own MAC (the MAC rule lets it
    through) and needs no ARP (permanent neighbours on both sides, so the ARP rule is not reached);
    it pings with another address than its port's. Without the IP rule the ping succeeds."""
    cloud = Cloud()
    driver = lab.node("a")
    good, spoofer = new_id(), new_id()
    g1 = lab.guest("a", good, GUEST_MAC)
    g3 = lab.guest("a", spoofer, "fa:16:3e:10:00:08")
    ports = (cloud.guest_port(good, GUEST_IP, GUEST_MAC, "a"),
             cloud.guest_port(spoofer, "10.10.0.8", "fa:16:3e:10:00:08", "a"))
    groups = (cloud.group(rule("egress"), rule("ingress", "icmp")),)
    report = driver.apply(cloud.state("a", lab.vteps["a"], ports=ports, groups=groups))
    assert not report.errors, report.errors
    assert g1.dhcp().get("ip") == GUEST_IP
    assert g3.dhcp().get("ip") == "10.10.0.8"
    in_ns(g1.ns, "ip", "neigh", "replace", "10.10.0.7", "lladdr", "fa:16:3e:10:00:08", "dev", "eth0",
          "nud", "permanent")
    in_ns(g3.ns, "ip", "neigh", "replace", GUEST_IP, "lladdr", GUEST_MAC, "dev", "eth0", "nud", "permanent")
    assert g3.ping(GUEST_IP)  # from its own address: allowed
    in_ns(g3.ns, "ip", "-4", "addr", "flush", "dev", "eth0")  # (this flushes its neighbours too)
    g3.set_static("10.10.0.7/24")  # another address, same MAC
    in_ns(g3.ns, "ip", "neigh", "replace", GUEST_IP, "lladdr", GUEST_MAC, "dev", "eth0", "nud", "permanent")
    assert not g3.ping(GUEST_IP, count=2)


def test_two_nodes_reach_each_other_over_vxlan(lab: Lab) -> None:
    cloud = Cloud()
    a, b = lab.node("a"), lab.node("b")
    va, vb = lab.vteps["a"], lab.vteps["b"]
    pa, pb = new_id(), new_id()
    ga = lab.guest("a", pa, "fa:16:3e:20:00:0a")
    gb = lab.guest("b", pb, "fa:16:3e:20:00:0b")
    ports = (cloud.guest_port(pa, "10.10.0.10", "fa:16:3e:20:00:0a", "a"),
             cloud.guest_port(pb, "10.10.0.11", "fa:16:3e:20:00:0b", "b"))
    groups = (cloud.group(rule("egress"), rule("ingress", "icmp", group=cloud.sg),
                          members=("10.10.0.10", "10.10.0.11")),)
    tenant_only = (cloud.networks()[1],)
    # node a serves DHCP and routing; node b only has its guest
    ra = a.apply(cloud.state("a", va, ports=ports, groups=groups, peers=(vb,), routers=(cloud.router_spec(),)))
    rb = b.apply(cloud.state("b", vb, ports=ports, groups=groups, peers=(va,), dhcp_l3=False,
                             networks=tenant_only))
    assert not ra.errors and not rb.errors, (ra.errors, rb.errors)
    assert rb.statuses == {pb: PORT_ACTIVE}
    assert ra.statuses[pa] == PORT_ACTIVE and pb not in ra.statuses
    assert vxlan_name(cloud.vni) in _links(lab.nodes["b"])
    # the guest on node b gets its lease from dnsmasq on node a, across VXLAN
    assert gb.dhcp().get("ip") == "10.10.0.11"
    assert ga.dhcp().get("ip") == "10.10.0.10"
    assert ga.ping("10.10.0.11")
    assert gb.ping("10.10.0.10")
    assert gb.ping("10.10.0.1")  # the router on node a


def test_apply_is_idempotent_cleans_up_and_recovers_from_a_crash(lab: Lab) -> None:
    cloud = Cloud()
    driver = lab.node("a")
    vtep = lab.vteps["a"]
    node_ns = lab.nodes["a"]
    port = new_id()
    guest = lab.guest("a", port, GUEST_MAC)
    ports = (cloud.guest_port(port, GUEST_IP, GUEST_MAC, "a"),)
    groups = (cloud.group(rule("egress"), rule("ingress", "icmp")),)
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec(),), groups=groups)
    first = driver.apply(state)
    assert first.changes and not first.errors, first.errors
    t0 = time.monotonic()
    second = driver.apply(state)
    print(f"\n[figure] apply of an unchanged node state: {time.monotonic() - t0:.2f} s")
    assert second.changes == (), second.changes
    assert second.statuses == first.statuses

    prefix = driver.config.namespace_prefix
    dhcp_ns = prefix + dhcp_namespace(cloud.net)
    router_ns = prefix + router_namespace(cloud.router)
    namespaces = os.listdir("/run/netns")
    assert dhcp_ns in namespaces and router_ns in namespaces

    # crash: dnsmasq killed, the security group table deleted → the next apply converges
    pid = int((Path(driver.config.state_dir) / "dhcp" / cloud.net / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    in_ns(node_ns, "nft", "delete", "table", "inet", "stratus_sg")
    in_ns(router_ns, "nft", "delete", "table", "ip", "stratus_nat")
    time.sleep(0.1)
    third = driver.apply(state)
    assert not third.errors, third.errors
    assert any("dnsmasq" in c and "started" in c for c in third.changes), third.changes
    assert any("security group tables loaded" in c for c in third.changes), third.changes
    assert any("NAT loaded" in c for c in third.changes), third.changes
    assert driver.apply(state).changes == ()
    pid = int((Path(driver.config.state_dir) / "dhcp" / cloud.net / "pid").read_text())
    assert alive(pid)
    assert guest.dhcp().get("ip") == GUEST_IP

    # crash: the DHCP namespace deleted under a running dnsmasq (which lives on, unreachable)
    sh("ip", "netns", "delete", dhcp_ns)
    assert alive(pid)
    fourth = driver.apply(state)
    assert not fourth.errors, fourth.errors
    assert any("namespace that is gone" in c for c in fourth.changes), fourth.changes
    assert not alive(pid)
    pid = int((Path(driver.config.state_dir) / "dhcp" / cloud.net / "pid").read_text())
    assert alive(pid)
    assert driver.apply(state).changes == ()
    assert guest.ping("10.10.0.1")

    # a port added on the network → dnsmasq reloads its hosts (SIGHUP), no restart
    other = new_id()
    state2 = cloud.state("a", vtep, ports=(*ports, cloud.guest_port(other, "10.10.0.9", "fa:16:3e:10:00:09", "b")),
                         routers=(cloud.router_spec(),), groups=groups)
    changes = driver.apply(state2).changes
    assert any("SIGHUP" in c for c in changes) and not any("restarted" in c for c in changes), changes
    hosts = (Path(driver.config.state_dir) / "dhcp" / cloud.net / "host").read_text()
    assert "fa:16:3e:10:00:09,10.10.0.9" in hosts

    # the port removed → its device leaves the bridge, its status is no longer reported
    state3 = cloud.state("a", vtep, routers=(cloud.router_spec(),), groups=groups)
    report = driver.apply(state3)
    assert not report.errors, report.errors
    assert port not in report.statuses
    assert f"master {bridge_name(cloud.net)}" not in sh("ip", "-n", node_ns, "-o", "link", "show",
                                                        tap_name(port)).stdout

    # the router removed → its namespace is gone
    driver.apply(cloud.state("a", vtep, groups=groups))
    assert router_ns not in os.listdir("/run/netns")
    # the tenant network removed → its bridge, VXLAN device, DHCP namespace and dnsmasq are gone
    report = driver.apply(cloud.state("a", vtep, networks=(cloud.networks()[0],), groups=groups))
    assert not report.errors, report.errors
    links = _links(node_ns)
    assert bridge_name(cloud.net) not in links and vxlan_name(cloud.vni) not in links
    assert bridge_name(cloud.ext_net) in links
    assert dhcp_ns not in os.listdir("/run/netns")
    assert not alive(pid)

    # teardown removes the rest, and gives the node's lock back
    assert node.lock_path(driver.config).exists()
    driver.teardown()
    assert not node.lock_path(driver.config).exists()
    assert bridge_name(cloud.ext_net) not in _links(node_ns)
    assert not [n for n in os.listdir("/run/netns") if n.startswith(prefix)]


def test_admin_down_port_is_reported_down(lab: Lab) -> None:
    cloud = Cloud()
    driver = lab.node("a")
    port = new_id()
    lab.guest("a", port, GUEST_MAC)
    missing = new_id()  # bound here but no device yet (the guest is not started)
    down = cloud.guest_port(port, GUEST_IP, GUEST_MAC, "a")
    from dataclasses import replace

    report = driver.apply(cloud.state("a", lab.vteps["a"], dhcp_l3=False, networks=(cloud.networks()[1],),
                                      ports=(replace(down, admin_state_up=False),
                                             cloud.guest_port(missing, "10.10.0.8", "fa:16:3e:10:00:08", "a"))))
    assert not report.errors, report.errors
    assert report.statuses == {port: PORT_DOWN, missing: PORT_DOWN}


def test_capabilities_as_root_and_as_an_unprivileged_user(lab: Lab) -> None:
    import subprocess
    import sys

    caps = lab.node("a").capabilities(refresh=True)
    assert caps.capable, caps
    assert dict(caps.details)["ip netns add"] == "ok"
    # the same check as nobody: honest "no", with the reason, and apply reports every port DOWN
    code = (
        "from workers.drivers.network.driver import NetworkDriver, DriverConfig\n"
        "from lib.netmodel import NodeState, PortSpec, FixedIpSpec\n"
        "d = NetworkDriver(DriverConfig(state_dir='/nonexistent'))\n"
        "c = d.capabilities()\n"
        "p = PortSpec(id='p1', network_id='n1', mac='fa:16:3e:00:00:01', fixed_ips=(FixedIpSpec('s', '10.0.0.3'),),"
        " device_owner='compute:nova', device_id='i', binding_host='h')\n"
        "r = d.apply(NodeState(host='h', local_vtep='192.0.2.1', ports=(p,)))\n"
        "print(c.capable, '|', c.reason, '|', r.applied, r.statuses)\n"
    )
    root = str(ROOT)
    env = {"PYTHONPATH": root, "PATH": os.environ["PATH"]}
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                          capture_output=True, text=True, cwd=root, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    capable, reason, applied = (part.strip() for part in proc.stdout.split("|"))
    assert capable == "False"
    assert "not running as root" in reason
    assert applied == "False {'p1': 'DOWN'}"


def test_dnsmasq_rereads_reservations_on_sighup_even_from_a_private_state_dir(lab: Lab) -> None:
    private = lab.workdir / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    cloud = Cloud()
    driver = lab.node("a", state_dir=private / "state")
    vtep = lab.vteps["a"]
    first, second = new_id(), new_id()
    g1 = lab.guest("a", first, "fa:16:3e:30:00:01")
    g2 = lab.guest("a", second, "fa:16:3e:30:00:02")
    p1 = cloud.guest_port(first, "10.10.0.21", "fa:16:3e:30:00:01", "a", security=False)
    p2 = cloud.guest_port(second, "10.10.0.22", "fa:16:3e:30:00:02", "a", security=False)
    report = driver.apply(cloud.state("a", vtep, ports=(p1,)))
    assert not report.errors, report.errors
    assert g1.dhcp().get("ip") == "10.10.0.21"
    assert g2.dhcp(tries=2) == {}  # no reservation yet
    report = driver.apply(cloud.state("a", vtep, ports=(p1, p2)))
    assert any("SIGHUP" in c for c in report.changes), report.changes
    assert g2.dhcp().get("ip") == "10.10.0.22"


def test_scale_figures_ten_networks_forty_ports(lab: Lab) -> None:
    """Figures: a fresh apply and a no-op apply of a node with 10 networks (DHCP each), 1 router with
    10 interfaces and 40 secured ports (their devices are veths left in the node's namespace)."""
    from lib.netmodel import (
        DhcpPortSpec,
        FixedIpSpec,
        NetworkSpec,
        NodeState,
        PortSpec,
        RouterInterfaceSpec,
        RouterSpec,
        SecurityGroupSpec,
        SubnetSpec,
    )

    driver = lab.node("a")
    node_ns = lab.nodes["a"]
    sg = SecurityGroupSpec(new_id(), (rule("egress"), rule("ingress", "tcp", 22, 22), rule("ingress", "icmp")))
    networks, ports, interfaces = [], [], []
    for n in range(10):
        net_id, sub_id = new_id(), new_id()
        networks.append(NetworkSpec(id=net_id, vni=5000 + n, mtu=1450, external=False, admin_state_up=True,
                                    subnets=(SubnetSpec(id=sub_id, network_id=net_id, cidr=f"10.{n}.0.0/24",
                                                        ip_version=4, gateway_ip=f"10.{n}.0.1", enable_dhcp=True,
                                                        dhcp_port=DhcpPortSpec(new_id(), f"fa:16:3e:{n:02x}:00:02",
                                                                               f"10.{n}.0.2")),)))
        interfaces.append(RouterInterfaceSpec(port_id=new_id(), mac=f"fa:16:3e:{n:02x}:00:01", network_id=net_id,
                                              subnet_id=sub_id, ip=f"10.{n}.0.1", prefixlen=24))
        for i in range(4):
            pid = new_id()
            ports.append(PortSpec(id=pid, network_id=net_id, mac=f"fa:16:3e:{n:02x}:01:{i:02x}",
                                  fixed_ips=(FixedIpSpec(sub_id, f"10.{n}.0.{10 + i}"),), device_owner="compute:nova",
                                  device_id=new_id(), security_group_ids=(sg.id,), binding_host="a"))
            sh("ip", "-n", node_ns, "link", "add", tap_name(pid), "type", "veth", "peer", "name", f"g{n}x{i}")
            sh("ip", "-n", node_ns, "link", "set", f"g{n}x{i}", "up")
            sh("ip", "-n", node_ns, "link", "set", tap_name(pid), "up")
    state = NodeState(host="a", local_vtep=lab.vteps["a"], peers=("172.31.255.9",), networks=tuple(networks),
                      ports=tuple(ports), routers=(RouterSpec(new_id(), True, tuple(interfaces)),),
                      security_groups=(sg,), dhcp_l3=True)
    t0 = time.monotonic()
    first = driver.apply(state)
    fresh = time.monotonic() - t0
    assert not first.errors, first.errors
    assert sum(1 for s in first.statuses.values() if s == PORT_ACTIVE) == 40
    t0 = time.monotonic()
    again = driver.apply(state)
    noop = time.monotonic() - t0
    assert again.changes == (), again.changes
    print(f"\n[figure] 10 networks/10 dnsmasq/1 router with 10 interfaces/40 secured ports: fresh apply {fresh:.2f} s "
          f"({len(first.changes)} changes), no-op apply {noop:.2f} s")


def test_node_as_external_gateway_reaches_floating_ips_and_lets_guests_out(lab: Lab) -> None:
    """external_gateway: the node holds the external subnet's gateway (203.0.113.1) on its bridge,
    reaches floating IPs itself, and masquerades the external subnet towards its uplink."""
    cloud = Cloud()
    driver = lab.node("a", external_gateway=True)
    node_ns, vtep = lab.nodes["a"], lab.vteps["a"]
    # the node's uplink to "the internet": another namespace at 198.51.100.2, the node at .1
    internet = f"{lab.tag}-inet"
    lab.extra_ns.append(internet)
    sh("ip", "netns", "add", internet)
    sh("ip", "-n", node_ns, "link", "add", "uplink", "type", "veth", "peer", "name", "eth0", "netns", internet)
    sh("ip", "-n", node_ns, "addr", "add", "198.51.100.1/24", "dev", "uplink")
    sh("ip", "-n", node_ns, "link", "set", "uplink", "up")
    in_ns(internet, "ip", "addr", "add", "198.51.100.2/24", "dev", "eth0")
    in_ns(internet, "ip", "link", "set", "eth0", "up")
    in_ns(internet, "ip", "link", "set", "lo", "up")

    with_fip, without = new_id(), new_id()
    g1 = lab.guest("a", with_fip, GUEST_MAC)
    g2 = lab.guest("a", without, "fa:16:3e:10:00:07")
    ports = (cloud.guest_port(with_fip, GUEST_IP, GUEST_MAC, "a", security=False),
             cloud.guest_port(without, "10.10.0.7", "fa:16:3e:10:00:07", "a", security=False))
    fip = FloatingIpSpec(id=new_id(), floating_ip=FLOATING, fixed_ip=GUEST_IP, port_id=with_fip)
    state = cloud.state("a", vtep, ports=ports, routers=(cloud.router_spec((fip,)),))
    report = driver.apply(state)
    assert not report.errors, report.errors
    assert driver.apply(state).changes == ()
    assert "203.0.113.1/24" in sh("ip", "-n", node_ns, "-o", "addr", "show", "dev", bridge_name(cloud.ext_net)).stdout
    assert g1.dhcp().get("ip") == GUEST_IP and g2.dhcp().get("ip") == "10.10.0.7"

    # the node reaches the floating IP directly; the guest sees the node's gateway address
    tcp_server(lab, g1.ns, 2222, "g1")
    assert tcp_probe(node_ns, FLOATING, 2222) == "g1 203.0.113.1"
    # guests reach beyond the node, masqueraded by it
    tcp_server(lab, internet, 8081, "inet")
    assert tcp_probe(g2.ns, "198.51.100.2", 8081) == "inet 198.51.100.1"
    assert tcp_probe(g1.ns, "198.51.100.2", 8081) == "inet 198.51.100.1"

    # switched off: the address and the NAT table go away
    off = type(driver)(type(driver.config)(**{**driver.config.__dict__, "external_gateway": False}))
    report = off.apply(state)
    assert any("203.0.113.1/24 removed" in c for c in report.changes), report.changes
    assert any("external gateway NAT removed" in c for c in report.changes), report.changes
    assert tcp_probe(g2.ns, "198.51.100.2", 8081, timeout=1) is None


def test_one_agent_per_node_another_process_is_refused(lab: Lab) -> None:
    import subprocess
    import sys

    driver = lab.node("a")
    assert driver.capabilities(refresh=True).capable
    cfg = driver.config
    code = (
        "from workers.drivers.network.driver import NetworkDriver, DriverConfig\n"
        f"c = NetworkDriver(DriverConfig(node_namespace={cfg.node_namespace!r}, "
        f"namespace_prefix={cfg.namespace_prefix!r}, state_dir={cfg.state_dir!r})).capabilities()\n"
        "print(c.capable, '|', c.reason)\n"
        f"d = NetworkDriver(DriverConfig(node_namespace={cfg.node_namespace!r}, "
        f"namespace_prefix={cfg.namespace_prefix + 'x'!r}, state_dir={cfg.state_dir!r}))\n"
        "print(d.capabilities().capable)\n"
        "d.teardown()\n"
    )
    root = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60,
                          env={**os.environ, "PYTHONPATH": root}, check=False)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    capable, reason = (part.strip() for part in first.split("|", 1))
    assert capable == "False" and "another network agent already manages this node" in reason
    assert f"pid {os.getpid()}" in reason
    assert second == "True"  # another prefix is another (simulated) node


def test_ipv6_slaac_through_router_advertisements(lab: Lab) -> None:
    """A SLAAC subnet next to the IPv4 one: the router advertises its prefix, the guest configures
    its EUI-64 address (the one IPAM gave the port) and reaches the router over IPv6."""
    from dataclasses import replace as dc_replace

    from lib.netmodel import FixedIpSpec, RouterInterfaceSpec, SubnetSpec

    cloud = Cloud()
    driver = lab.node("a")
    v6_subnet, v6_itf = new_id(), new_id()
    ext, tenant = cloud.networks()
    tenant = dc_replace(tenant, subnets=(*tenant.subnets, SubnetSpec(
        id=v6_subnet, network_id=cloud.net, cidr="fd00:10::/64", ip_version=6, gateway_ip="fd00:10::1",
        enable_dhcp=True, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")))
    port_id = new_id()
    guest = lab.guest("a", port_id, GUEST_MAC)
    eui64 = "fd00:10::f816:3eff:fe10:5"  # from fa:16:3e:10:00:05
    port = cloud.guest_port(port_id, GUEST_IP, GUEST_MAC, "a")
    port = dc_replace(port, fixed_ips=(*port.fixed_ips, FixedIpSpec(v6_subnet, eui64)))
    r = cloud.router_spec()
    r = dc_replace(r, interfaces=(*r.interfaces, RouterInterfaceSpec(
        port_id=v6_itf, mac="fa:16:3e:00:00:61", network_id=cloud.net, subnet_id=v6_subnet, ip="fd00:10::1",
        prefixlen=64)))
    groups = (cloud.group(rule("egress"), rule("egress", ethertype="IPv6"), rule("ingress", "icmp"),
                          rule("ingress", "icmpv6", ethertype="IPv6")),)
    state = cloud.state("a", lab.vteps["a"], ports=(port,), routers=(r,), groups=groups, networks=(ext, tenant))
    in_ns(guest.ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad")
    report = driver.apply(state)
    assert not report.errors, report.errors
    assert any("IPv6 advertisements started" in c for c in report.changes), report.changes
    assert driver.apply(state).changes == ()
    # the guest solicits a router (link down/up) and configures its address from the prefix
    in_ns(guest.ns, "ip", "link", "set", "eth0", "down")
    in_ns(guest.ns, "ip", "link", "set", "eth0", "up")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and eui64 not in in_ns(guest.ns, "ip", "-6", "addr", "show", "dev",
                                                             "eth0").stdout:
        time.sleep(0.2)
    assert eui64 in in_ns(guest.ns, "ip", "-6", "addr", "show", "dev", "eth0").stdout
    ok = False
    while time.monotonic() < deadline and not ok:
        ok = in_ns(guest.ns, "busybox", "ping", "-6", "-c", "1", "-W", "1", "fd00:10::1", check=False).returncode == 0
    assert ok
    # the v4 side still works next to it
    assert guest.dhcp().get("ip") == GUEST_IP
    # the subnet's RA mode removed: the advertiser stops
    plain = dc_replace(tenant, subnets=(tenant.subnets[0], dc_replace(tenant.subnets[1], ipv6_ra_mode=None)))
    report = driver.apply(cloud.state("a", lab.vteps["a"], ports=(port,), routers=(r,), groups=groups,
                                      networks=(ext, plain)))
    assert any("stopped advertising" in c for c in report.changes), report.changes


def test_stateless_group_needs_rules_for_replies(lab: Lab) -> None:
    from dataclasses import replace as dc_replace

    cloud = Cloud()
    driver = lab.node("a")
    port_id = new_id()
    guest = lab.guest("a", port_id, GUEST_MAC)
    ext = lab.guest("a", cloud.ext_host_port, "fa:16:3e:00:01:01")
    ext.set_static("203.0.113.1/24")
    fip = FloatingIpSpec(id=new_id(), floating_ip=FLOATING, fixed_ip=GUEST_IP, port_id=port_id)
    ports = (cloud.guest_port(port_id, GUEST_IP, GUEST_MAC, "a"), cloud.ext_host("a"))
    group = cloud.group(rule("egress"), rule("ingress", "tcp", 22, 22))

    def apply(g: object) -> None:
        report = driver.apply(cloud.state("a", lab.vteps["a"], ports=ports, routers=(cloud.router_spec((fip,)),),
                                          groups=(g,)))  # type: ignore[arg-type]
        assert not report.errors, report.errors

    apply(group)
    assert guest.dhcp().get("ip") == GUEST_IP
    tcp_server(lab, guest.ns, 22, "guest")
    tcp_server(lab, ext.ns, 8080, "ext")
    # stateful: in on 22 (its answers go out as replies), out to 8080 (its answers come back as replies)
    assert tcp_probe(ext.ns, FLOATING, 22) == "guest 203.0.113.1"
    assert tcp_probe(guest.ns, "203.0.113.1", 8080) == f"ext {FLOATING}"
    # stateless: 22 still works (the egress rule lets the answers out); the answers from 8080 need an
    # ingress rule of their own, and there is none
    apply(dc_replace(group, stateful=False))
    assert tcp_probe(ext.ns, FLOATING, 22) == "guest 203.0.113.1"
    assert tcp_probe(guest.ns, "203.0.113.1", 8080, timeout=1) is None
    apply(dc_replace(group, stateful=False, rules=(*group.rules, rule("ingress", "tcp", prefix="203.0.113.1/32"))))
    assert tcp_probe(guest.ns, "203.0.113.1", 8080) == f"ext {FLOATING}"


def test_admin_down_router_keeps_its_ports_wired_but_forwards_nothing(lab: Lab) -> None:
    """As in Neutron, an administratively down router's interface and gateway ports stay ACTIVE (they are
    wired to their networks), but nothing is routed or NATed until it is up again."""
    from dataclasses import replace

    cloud = Cloud()
    driver = lab.node("a")
    vtep = lab.vteps["a"]
    guest_port = new_id()
    guest = lab.guest("a", guest_port, GUEST_MAC)
    ext = lab.guest("a", cloud.ext_host_port, "fa:16:3e:00:01:01")
    ext.set_static("203.0.113.1/24")
    ports = (cloud.guest_port(guest_port, GUEST_IP, GUEST_MAC, "a", security=False), cloud.ext_host("a"))
    fip = FloatingIpSpec(id=new_id(), floating_ip=FLOATING, fixed_ip=GUEST_IP, port_id=guest_port)
    up = cloud.router_spec((fip,))

    report = driver.apply(cloud.state("a", vtep, ports=ports, routers=(replace(up, admin_state_up=False),)))
    assert report.applied and not report.errors, report.errors
    assert report.statuses[cloud.router_itf] == PORT_ACTIVE
    assert guest.dhcp().get("ip") == GUEST_IP
    tcp_server(lab, ext.ns, 8080, "ext")
    assert tcp_probe(guest.ns, "203.0.113.1", 8080) is None  # no forwarding, no SNAT
    assert not ext.ping(FLOATING)  # no floating IP

    report = driver.apply(cloud.state("a", vtep, ports=ports, routers=(up,)))
    assert not report.errors, report.errors
    assert tcp_probe(guest.ns, "203.0.113.1", 8080) == f"ext {FLOATING}"
    assert ext.ping(FLOATING)
