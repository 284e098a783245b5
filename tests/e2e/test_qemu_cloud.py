"""A real cloud on one machine: a qemu guest booted through the whole path, with the real `openstack` CLI.

The live cloud gets ONE real compute node (a node worker on ``qemu:///system``, in an availability zone of
its own so the scheduler can only choose it) and this node's network agent, both on a test namespace
that plays the node: libvirtd runs inside it (``tests/qemu_support.Libvirtd``), so the guests' taps are
made there and the agent puts them into the tenant network's bridge; the namespace is also the external
network's gateway (172.24.4.1), from where the floating IP is pinged.

As the demo user: the guest's kernel and ramdisk (built from Debian packages, ``qemu_support.guest_image``)
are uploaded as aki/ari images referenced by a machine image's kernel_id/ramdisk_id; a network, subnet,
router to public, key pair; ``server create --wait`` with a config drive. The guest's init prints markers
on its serial console: its fixed IP (from the tenant's dnsmasq), hostname, instance id and key
fingerprint (read from the config drive), the instance id again as the metadata service answers it
(http://169.254.169.254 through the DHCP namespace's proxy), and its block devices. The floating IP
answers ping only while a security group rule allows ICMP. A Cinder volume (on the session's real storage
agent, ``storage_node``) is hot-plugged with ``server add volume``: the guest's init prints its block
devices again when they change, so the console shows the new disk come, and go after ``server remove
volume``. ``server delete`` leaves no domain, files, tap or claim.
Skipped (with the reason) when not root or without qemu/libvirtd.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portal.launcher import without_database
from tests.browser.qemu_guest import register_guest, start_qemu_node, stop_qemu_node, unregister_guest
from tests.capabilities import skip_missing
from tests.compute_nodes import ComputeNodeProcess
from tests.conftest import ROOT, CeleryWorker, Cloud
from tests.conftest import wait_for as shared_wait_for
from tests.network_lab import SKIP_REASON as NETNS_SKIP_REASON
from tests.network_lab import Lab, sh
from tests.qemu_support import GuestImage, Libvirtd, LibvirtdBusy, guest_image, skip_reason
from tests.storage_nodes import StorageNodeProcess

SKIP = skip_reason() or NETNS_SKIP_REASON
if SKIP:
    print(f"\n[qemu cloud test skipped] {SKIP}", file=sys.stderr)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(SKIP), reason=SKIP or "ok")]


@dataclass
class QemuCloud:
    cloud: Cloud
    host: str
    zone: str
    lab: Lab
    node_ns: str
    node: ComputeNodeProcess
    image: GuestImage
    storage: StorageNodeProcess
    workdir: Path
    timings: dict[str, float]


@pytest.fixture
def qemu_cloud(live_cloud: Cloud, storage_node: StorageNodeProcess,
               control_worker: CeleryWorker) -> Iterator[QemuCloud]:  # the network agent's pushes and reports
    timings: dict[str, float] = {}
    started = time.monotonic()
    image = guest_image()
    timings["image build"] = image.build_seconds
    workdir = Path(tempfile.mkdtemp(prefix="stratus-qemu-"))
    os.chmod(workdir, 0o755)  # dnsmasq drops to nobody
    lab = Lab(tag=f"sq{secrets.token_hex(3)}", workdir=workdir)
    libvirtd: Libvirtd | None = None
    agent: subprocess.Popen | None = None
    node: ComputeNodeProcess | None = None
    host = f"qemu-{lab.tag}"
    try:
        driver = lab.node("a", external_gateway=True)
        ns = lab.nodes["a"]
        try:
            libvirtd = Libvirtd(ns).start()
        except LibvirtdBusy as exc:
            skip_missing(str(exc))
        timings["libvirtd start"] = libvirtd.start_seconds
        if libvirtd.waited_seconds >= 1:
            timings["waited for another run's libvirtd"] = libvirtd.waited_seconds
        libvirtd.own_dir(workdir)
        libvirtd.own_dir(storage_node.root)  # the hot-plugged volume's file
        agent_env = dict(live_cloud.env, STRATUS_HOST=host, STRATUS_VTEP_IP=lab.vteps["a"],
                         STRATUS_NETWORK_NODE_NAMESPACE=ns,
                         STRATUS_NETWORK_NAMESPACE_PREFIX=driver.config.namespace_prefix,
                         STRATUS_NETWORK_STATE_DIR=driver.config.state_dir, STRATUS_NETWORK_EXTERNAL_GATEWAY="1",
                         STRATUS_DB_CONN_MAX_AGE="0", STRATUS_LOG_LEVEL="INFO")
        with open(workdir / "agent.log", "wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", f"network.{host}", "--pool=solo",
                 "-n", f"network.{host}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
                cwd=ROOT, env=without_database(agent_env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        zone = f"qemu-{lab.tag}"
        node = start_qemu_node(live_cloud, host, zone, workdir)
        timings["node ready"] = time.monotonic() - started
        yield QemuCloud(cloud=live_cloud, host=host, zone=zone, lab=lab, node_ns=ns, node=node, image=image,
                        storage=storage_node, workdir=workdir, timings=timings)
    finally:
        if node is not None:
            stop_qemu_node(live_cloud, node)
        if agent is not None:
            os.killpg(agent.pid, 15)
            try:
                agent.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, 9)
            with contextlib.suppress(Exception):  # its row too, where the API allows
                admin = live_cloud.sdk()
                for row in admin.network.agents(host=host):
                    admin.network.delete_agent(row)
        if libvirtd is not None:
            libvirtd.stop()
        if os.environ.get("STRATUS_KEEP_QEMU_LOGS"):
            shutil.copytree(workdir, os.environ["STRATUS_KEEP_QEMU_LOGS"], dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.qcow2", "disk*", "image-cache"))
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_qemu_guest_boots_through_the_whole_path(qemu_cloud: QemuCloud) -> None:
    """openstacksdk for the set-up (one CLI process costs seconds on a loaded machine), the real CLI for
    ``server create --wait``, ``console log show`` and ``server add|remove volume``."""
    qc = qemu_cloud
    cloud = qc.cloud
    test_started = time.monotonic()
    demo = cloud.sdk(user="demo")
    admin = cloud.sdk()

    def cli(*args: str) -> str:
        result = cloud.openstack(*args, user="demo", check=False)
        assert result.returncode == 0, (args, result.stderr[-3000:])
        return result.stdout

    def logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in (qc.workdir / "agent.log", qc.node.log) if p.exists())

    wait_for = functools.partial(shared_wait_for, details=logs)

    def ping(address: str) -> bool:
        return sh("ip", "netns", "exec", qc.node_ns, "busybox", "ping", "-c", "1", "-W", "1", address,
                  check=False, timeout=10).returncode == 0

    def hypervisor() -> Any:
        return next(h for h in admin.compute.hypervisors(details=True) if h.name == qc.host)

    def guest_disks() -> list[str]:
        """The block devices the guest reported last (its init prints them again whenever they change)."""
        out = demo.compute.get_server_console_output(made["server"])["output"] or ""
        lines = [line for line in out.splitlines() if line.startswith("STRATUS-BLOCK-DEVICES=")]
        return lines[-1].split("=", 1)[1].split() if lines else []

    tag = secrets.token_hex(3)
    wait_for(lambda: any(a.is_alive for a in admin.network.agents(host=qc.host)), "network agent alive")
    made: dict[str, Any] = {}
    try:
        # the guest, registered the way a user would: kernel + ramdisk images, a machine image naming them
        register_guest(demo, admin, qc.image, tag, made)
        assert demo.image.get_image(made["machine"].id).kernel_id == made["kernel"].id
        public = demo.network.find_network("public")
        made["net"] = demo.network.create_network(name=f"net-{tag}")
        made["sub"] = demo.network.create_subnet(network_id=made["net"].id, ip_version=4, cidr="10.77.0.0/24",
                                                 name=f"sub-{tag}")
        made["router"] = demo.network.create_router(name=f"router-{tag}",
                                                    external_gateway_info={"network_id": public.id})
        demo.network.add_interface_to_router(made["router"], subnet_id=made["sub"].id)
        made["key"] = demo.compute.create_keypair(name=f"key-{tag}")
        fingerprint = made["key"].fingerprint
        default_sg = next(demo.network.security_groups(name="default", project_id=demo.current_project_id))
        # the volume to hot-plug later, made on the real storage agent while the guest boots
        made["volume"] = demo.block_storage.create_volume(name=f"vol-{tag}", size=1)

        boot = time.monotonic()
        server = json.loads(cli("server", "create", "--image", f"machine-{tag}", "--flavor", f"guest-{tag}",
                                "--network", f"net-{tag}", "--key-name", f"key-{tag}", "--config-drive", "True",
                                "--availability-zone", qc.zone, "--wait", f"vm-{tag}", "-f", "json"))
        qc.timings["boot to ACTIVE"] = time.monotonic() - boot
        assert server["status"] == "ACTIVE", server
        server_id = server["id"]
        made["server"] = server_id
        assert admin.compute.get_server(server_id).compute_host == qc.host
        assert hypervisor().hypervisor_type == "QEMU"
        port = next(demo.network.ports(device_id=server_id))
        fixed_ip = port.fixed_ips[0]["ip_address"]

        # the domain is a real qemu (TCG) guest with the config drive on IDE and its tap in the node
        dom_xml = sh("virsh", "-c", "qemu:///system", "dumpxml", server_id).stdout
        assert "type='qemu'" in dom_xml and "bus='ide'" in dom_xml and "type='ethernet'" in dom_xml
        tap = "tap" + port.id[:11]
        assert sh("ip", "-n", qc.node_ns, "link", "show", tap, check=False).returncode == 0

        wait_for(lambda: "STRATUS-READY" in (demo.compute.get_server_console_output(server_id)["output"] or ""),
                 "the guest's markers on its console", timeout=150, interval=1)
        qc.timings["boot to console marker"] = time.monotonic() - boot
        out = cli("console", "log", "show", server_id)
        assert f"STRATUS-IP={fixed_ip}/24" in out, out[-3000:]
        assert f"STRATUS-HOSTNAME=vm-{tag}" in out, out[-3000:]
        assert f"STRATUS-UUID={server_id}" in out, out[-3000:]
        assert f"STRATUS-KEY-FINGERPRINT={fingerprint}" in out, out[-3000:]
        assert "STRATUS-SOURCE=config-drive" in out, out[-3000:]
        assert f"STRATUS-METADATA-SERVICE-UUID={server_id}" in out, out[-3000:]  # through the metadata proxy
        devices = next(line for line in out.splitlines() if line.startswith("STRATUS-BLOCK-DEVICES="))
        assert "vda" in devices.split("=", 1)[1].split() and "sr0" in devices, devices

        # the floating IP answers from the external network only while a rule allows ICMP
        made["fip"] = demo.network.create_ip(floating_network_id=public.id, port_id=port.id)
        fip = made["fip"].floating_ip_address
        rule = demo.network.create_security_group_rule(security_group_id=default_sg.id, direction="ingress",
                                                       ethertype="IPv4", protocol="icmp")
        wait_for(lambda: ping(fip), "floating IP answers ping once ICMP is allowed", timeout=60)
        demo.network.delete_security_group_rule(rule)
        wait_for(lambda: not ping(fip), "floating IP silent once the rule is gone", timeout=60)
        time.sleep(2)
        assert not ping(fip), "ICMP reached the guest without a rule allowing it"

        # a Cinder volume hot-plugged: the guest sees a new disk, then sees it go
        volume = demo.block_storage.wait_for_status(made["volume"], "available", failures=["error"], wait=60)
        volume_file = qc.storage.root / f"volume-{volume.id}.qcow2"
        assert volume_file.exists(), list(qc.storage.root.iterdir())
        before = guest_disks()
        attach = time.monotonic()
        cli("server", "add", "volume", server_id, volume.id)
        new = wait_for(lambda: [d for d in guest_disks() if d not in before], "the guest sees the new disk",
                       timeout=60)
        qc.timings["attach to guest sees disk"] = time.monotonic() - attach
        attachment = next(demo.compute.volume_attachments(server_id))
        assert attachment.volume_id == volume.id and attachment.device == f"/dev/{new[0]}", (attachment, new)
        assert demo.block_storage.get_volume(volume.id).status == "in-use"
        assert [v["id"] for v in demo.compute.get_server(server_id).attached_volumes] == [volume.id]
        assert str(volume_file) in sh("virsh", "-c", "qemu:///system", "dumpxml", server_id).stdout
        detach = time.monotonic()
        cli("server", "remove", "volume", server_id, volume.id)
        wait_for(lambda: new[0] not in guest_disks(), "the guest sees the disk go", timeout=60)
        qc.timings["detach to guest sees it go"] = time.monotonic() - detach
        demo.block_storage.wait_for_status(volume, "available", failures=["error"], wait=60)
        assert str(volume_file) not in sh("virsh", "-c", "qemu:///system", "dumpxml", server_id).stdout

        # delete: no domain, no files, no tap, no claim
        instance_dir = qc.workdir / "instances" / server_id
        assert instance_dir.exists()
        demo.network.delete_ip(made.pop("fip"))
        demo.compute.delete_server(server_id)
        demo.compute.wait_for_delete(demo.compute.get_server(server_id), wait=60)
        made.pop("server")
        assert server_id not in sh("virsh", "-c", "qemu:///system", "list", "--all", "--uuid").stdout
        assert not instance_dir.exists()
        wait_for(lambda: sh("ip", "-n", qc.node_ns, "link", "show", tap, check=False).returncode != 0, "tap gone",
                 timeout=30)
        assert hypervisor().vcpus_used == 0
        assert list(demo.network.ports(device_id=server_id)) == []
        demo.block_storage.delete_volume(made["volume"])
        demo.block_storage.wait_for_delete(made.pop("volume"), wait=60)
        assert not volume_file.exists()
    finally:
        for what, delete in (("fip", demo.network.delete_ip), ("server", demo.compute.delete_server)):
            if what in made:
                with contextlib.suppress(Exception):
                    delete(made[what])
        if "server" in made:
            with contextlib.suppress(Exception):
                demo.compute.wait_for_delete(demo.compute.get_server(made["server"]), wait=60)
        if "volume" in made:
            with contextlib.suppress(Exception):
                demo.block_storage.delete_volume(made["volume"], force=True)
        if "router" in made:
            with contextlib.suppress(Exception):
                demo.network.remove_interface_from_router(made["router"], subnet_id=made["sub"].id)
            with contextlib.suppress(Exception):
                demo.network.delete_router(made["router"])
        if "net" in made:
            with contextlib.suppress(Exception):
                demo.network.delete_network(made["net"])
        if "key" in made:
            with contextlib.suppress(Exception):
                demo.compute.delete_keypair(made["key"])
        unregister_guest(demo, admin, made)
    qc.timings["whole test"] = time.monotonic() - test_started
    print("\nqemu cloud timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in qc.timings.items()))
