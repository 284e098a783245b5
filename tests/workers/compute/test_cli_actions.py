"""Every server action through the real `openstack` CLI, down to a real compute node worker (its own
test-driver hypervisor) and back: boot with a config drive, soft and hard reboot, stop/start,
pause/unpause, suspend/resume, console log, snapshot into Glance, rebuild, resize revert and confirm,
delete; the node's files are checked on the way. The node has a host name of its own, so no other
test session's worker shares its queue."""
from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from tests.capabilities import opt_in_run
from tests.compute_nodes import node_row, start_compute_node
from tests.workers.compute.conftest import needs_tools
from workers.drivers.hypervisor import disk

pytestmark = [pytest.mark.e2e, needs_tools,
              opt_in_run("STRATUS_E2E_CLI_ACTIONS", "every action through the CLI takes about 2 minutes (the SDK and "
                                                                "tempest tests cover them in make test)")]


def test_every_action_through_the_cli(live_cloud, tmp_path: Path) -> None:
    host = f"w-{secrets.token_hex(4)}"
    node = start_compute_node(live_cloud.env, host, live_cloud.data_dir, with_control=True)

    def os_(*args: str, user: str = "demo") -> str:
        result = live_cloud.openstack(*args, user=user, check=False)
        assert result.returncode == 0, (args, result.stderr[-2000:], node.log.read_text()[-3000:])
        return result.stdout

    def wait(vm: str, status: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            shown = json.loads(os_("server", "show", vm, "-f", "json"))
            if shown["status"] == status:
                return shown
            assert time.monotonic() < deadline and shown["status"] != "ERROR", (shown, node.log.read_text()[-3000:])
            time.sleep(0.3)

    try:
        tag = secrets.token_hex(3)
        image, net, vm = f"img-{tag}", f"net-{tag}", f"vm-{tag}"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "t.qcow2"), "64M"], check=True)
        image_id = json.loads(os_("image", "create", "--file", str(tmp_path / "t.qcow2"), "--disk-format", "qcow2",
                                  "--container-format", "bare", image, "-f", "json"))["id"]
        os_("network", "create", net)
        os_("subnet", "create", "--network", net, "--subnet-range", "10.33.0.0/24", f"sub-{tag}")
        server_id = json.loads(os_("server", "create", "--image", image, "--flavor", "m1.tiny", "--network", net,
                                   "--config-drive", "true", vm, "-f", "json"))["id"]
        shown = wait(vm, "ACTIVE")
        assert shown["OS-EXT-STS:power_state"] in (1, "Running")
        files = Path(live_cloud.data_dir) / "nodes"
        homes = list(files.glob(f"*/instances/{server_id}"))
        assert len(homes) == 1, "the instance's files are on exactly one node"
        home = homes[0]
        assert disk.info(home / "disk", fmt="qcow2").chain[1].endswith(f"/image-cache/{image_id}")
        assert (home / "disk.config").is_file()

        for verb, status, power in ((("reboot",), "ACTIVE", 1), (("reboot", "--hard"), "ACTIVE", 1),
                                    (("stop",), "SHUTOFF", 4), (("start",), "ACTIVE", 1),
                                    (("pause",), "PAUSED", 3), (("unpause",), "ACTIVE", 1),
                                    (("suspend",), "SUSPENDED", 7), (("resume",), "ACTIVE", 1)):
            os_("server", *verb, vm)
            time.sleep(0.2)
            shown = wait(vm, status)
            assert shown["OS-EXT-STS:task_state"] is None and shown["OS-EXT-STS:power_state"] in (
                power, {1: "Running", 3: "Paused", 4: "Shutdown", 7: "Suspended"}[power]), (verb, shown)
        assert os_("console", "log", "show", vm).strip() == ""  # the test driver runs no guest

        os_("server", "image", "create", "--name", f"snap-{tag}", "--wait", vm)
        snap = json.loads(os_("image", "show", f"snap-{tag}", "-f", "json"))
        assert snap["status"] == "active" and snap["disk_format"] == "qcow2" and snap["size"] > 0
        assert not list(home.parent.glob(".snapshot-*"))

        os_("server", "rebuild", "--image", image, vm)
        wait(vm, "ACTIVE")
        os_("server", "resize", "--flavor", "m1.small", vm)
        wait(vm, "VERIFY_RESIZE")
        assert disk.info(home / "disk", fmt="qcow2").virtual_size == 20 * disk.GiB
        os_("server", "resize", "revert", vm)
        wait(vm, "ACTIVE")
        assert disk.info(home / "disk", fmt="qcow2").virtual_size == 1 * disk.GiB
        os_("server", "resize", "--flavor", "m1.small", vm)
        wait(vm, "VERIFY_RESIZE")
        os_("server", "resize", "confirm", vm)
        assert wait(vm, "ACTIVE")["flavor"].startswith("m1.small")

        os_("server", "delete", "--wait", vm)
        assert not home.exists()
    finally:
        node.stop()
        row = node_row(live_cloud.env["DATABASE_URL"], host)  # leave the shared cloud as found
        if row is not None:
            live_cloud.sdk().compute.delete(f"/os-services/{row[0]}")
