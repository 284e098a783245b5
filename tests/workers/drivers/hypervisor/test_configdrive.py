"""Config drives: ISO9660 labelled config-2 in cloud-init's ConfigDrive layout, read back with isoinfo."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lib.configdrive import ConfigDriveSpec, build, write_tree
from tests.workers.drivers.hypervisor.conftest import needs_genisoimage, new_id

pytestmark = needs_genisoimage


def iso_file(iso: Path, path: str) -> bytes:
    return subprocess.run(["isoinfo", "-R", "-i", str(iso), "-x", path], capture_output=True, check=True).stdout


def make_spec() -> ConfigDriveSpec:
    return ConfigDriveSpec(
        uuid=new_id(), name="web-1", hostname="web-1", availability_zone="nova", launch_index=2,
        project_id="p1", public_keys={"k": "ssh-ed25519 AAAAC3Nza test@x"}, meta={"role": "web"},
        user_data=b"#cloud-config\nruncmd: [echo hi]\n",
        network_data={"links": [{"id": "tap1", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01",
                                 "mtu": 1450}],
                      "networks": [{"id": "network0", "type": "ipv4", "link": "tap1", "ip_address": "10.0.0.5",
                                    "netmask": "255.255.255.0", "routes": [], "network_id": new_id()}],
                      "services": [{"type": "dns", "address": "10.0.0.2"}]},
        fixed_ips=("10.0.0.5",))


def test_iso_has_label_and_documents(tmp_path: Path) -> None:
    spec = make_spec()
    iso = Path(build(spec, tmp_path / "inst" / "disk.config"))
    pvd = subprocess.run(["isoinfo", "-d", "-i", str(iso)], capture_output=True, text=True, check=True).stdout
    assert "Volume id: config-2" in pvd
    listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(iso)], capture_output=True, text=True,
                             check=True).stdout.split()
    for path in ("/openstack/latest/meta_data.json", "/openstack/latest/user_data",
                 "/openstack/latest/network_data.json", "/openstack/2012-08-10/meta_data.json",
                 "/openstack/2015-10-15/network_data.json", "/ec2/latest/meta-data.json"):
        assert path in listing
    assert "/openstack/2013-10-17/network_data.json" not in listing  # only since 2015-10-15
    md = json.loads(iso_file(iso, "/openstack/latest/meta_data.json"))
    assert md["uuid"] == spec.uuid and md["name"] == "web-1" and md["hostname"] == "web-1"
    assert md["launch_index"] == 2 and md["availability_zone"] == "nova" and md["meta"] == {"role": "web"}
    assert md["public_keys"] == {"k": "ssh-ed25519 AAAAC3Nza test@x"}
    assert iso_file(iso, "/openstack/latest/user_data") == spec.user_data
    nd = json.loads(iso_file(iso, "/openstack/latest/network_data.json"))
    assert nd["links"][0]["ethernet_mac_address"] == "fa:16:3e:00:00:01"
    assert nd["networks"][0]["ip_address"] == "10.0.0.5" and nd["services"][0]["address"] == "10.0.0.2"
    ec2 = json.loads(iso_file(iso, "/ec2/latest/meta-data.json"))
    assert ec2["instance-id"] == spec.uuid and ec2["local-ipv4"] == "10.0.0.5"
    assert not list(iso.parent.glob("*.part"))


def test_without_user_data_there_is_no_user_data_file(tmp_path: Path) -> None:
    spec = ConfigDriveSpec(uuid=new_id(), name="a", hostname="a")
    files = write_tree(spec, tmp_path / "tree")
    assert "openstack/latest/meta_data.json" in files
    assert not any(f.endswith("user_data") for f in files)
    assert "public_keys" not in json.loads((tmp_path / "tree/openstack/latest/meta_data.json").read_text())


def test_network_data_from_ports() -> None:
    from lib.configdrive import FixedIpInfo, PortInfo, network_data
    from lib.netmodel import tap_name

    p1, p2, net = new_id(), new_id(), new_id()
    nd = network_data([
        PortInfo(port_id=p1, mac="fa:16:3e:00:00:01", network_id=net, mtu=1450, fixed_ips=(
            FixedIpInfo("10.0.0.5", "10.0.0.0/24", "10.0.0.1", enable_dhcp=True, dns_nameservers=("10.0.0.2",)),
            FixedIpInfo("fd00::5", "fd00::/64", "fd00::1", ipv6_address_mode="slaac"))),
        PortInfo(port_id=p2, mac="fa:16:3e:00:00:02", network_id=net, fixed_ips=(
            FixedIpInfo("192.168.9.7", "192.168.9.0/24", "192.168.9.1", enable_dhcp=False,
                        dns_nameservers=("1.1.1.1",), host_routes=(("172.16.0.0/12", "192.168.9.254"),)),)),
    ])
    assert [link["id"] for link in nd["links"]] == [tap_name(p1), tap_name(p2)]
    assert nd["links"][0] == {"id": tap_name(p1), "vif_id": p1, "type": "phy",
                              "ethernet_mac_address": "fa:16:3e:00:00:01", "mtu": 1450}
    assert [n["type"] for n in nd["networks"]] == ["ipv4_dhcp", "ipv6_slaac", "ipv4"]
    static = nd["networks"][2]
    assert static["link"] == tap_name(p2) and static["ip_address"] == "192.168.9.7"
    assert static["netmask"] == "255.255.255.0"
    assert static["routes"] == [
        {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.9.1"},
        {"network": "172.16.0.0", "netmask": "255.240.0.0", "gateway": "192.168.9.254"}]
    assert nd["services"] == [{"type": "dns", "address": "10.0.0.2"}, {"type": "dns", "address": "1.1.1.1"}]
    assert json.loads(json.dumps(nd)) == nd
