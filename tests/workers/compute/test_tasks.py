"""The node tasks run in-process against a real test-driver node and real rows: each works from the
spec the server services would send, works on the node and reports to the control tasks (run in this
process, ``control_in_process``), which call the server services, whose state changes are checked
here together with what is left on the node."""
from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute.models import Instance, InstanceFault
from apps.images import services as image_services
from apps.images.models import Image
from apps.networks.models import Port
from tests.workers.compute.conftest import (
    add_port,
    make_instance,
    make_qcow2,
    needs_tools,
    network_syncs,
    node_spec,
    run_task,
    upload_image,
)
from workers import compute, compute_console
from workers.drivers.hypervisor import disk
from workers.drivers.hypervisor.layout import InstanceLayout
from workers.drivers.hypervisor.libvirt import NOSTATE, PAUSED, RUNNING, SHUTDOWN, SUSPENDED, tap_name

pytestmark = needs_tools


def layout_of(inst: Instance) -> InstanceLayout:
    return InstanceLayout(compute.instances_path(), inst.id)


def set_task(inst: Instance, task_state: str, vm_state: str | None = None, **fields) -> None:
    """The server services set the task_state when they accept an action, before sending the task."""
    Instance.objects.filter(pk=inst.id).update(task_state=task_state, **({"vm_state": vm_state} if vm_state else {}),
                                               **fields)


def spawned(cloud, node, image, **kw) -> Instance:
    inst = make_instance(cloud, node, image, **kw)
    assert run_task("spawn", inst.id, request_id="req-spawn") == "spawned"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("active", None, RUNNING)
    return inst


def test_spawn_then_destroy(cloud, node, image, network) -> None:
    inst = make_instance(cloud, node, image, config_drive=True)
    port = add_port(cloud, network, inst)
    started = time.monotonic()
    assert run_task("spawn", inst.id, request_id="req-1") == "spawned"
    elapsed = time.monotonic() - started
    print(f"\nspawn on the test driver (first, image fetched): {elapsed * 1000:.0f} ms")
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("active", None, RUNNING)
    assert inst.launched_at is not None
    layout = layout_of(inst)
    base = node.cache / image.id
    assert disk.info(layout.disk, fmt="qcow2").chain == (layout.disk, str(base))
    assert Path(layout.config_drive).is_file()
    assert node.driver.power_state(inst.id) == RUNNING
    dom = ET.fromstring(node.driver.live_xml(inst.id))
    assert [i.find("target").get("dev") for i in dom.findall("devices/interface")] == [tap_name(port.id)]
    assert [i.find("mac").get("address") for i in dom.findall("devices/interface")] == [port.mac_address]
    # the node's network agent was asked to plug the tap (a sync on its queue, sent after the domain)
    assert network_syncs(node.host) == [{"host": node.host}]

    assert run_task("destroy", inst.id, request_id="req-2") == "destroyed"
    inst.refresh_from_db()
    assert inst.deleted and inst.vm_state == "deleted" and inst.node_id is None
    assert node.driver.power_state(inst.id) == NOSTATE and inst.id not in node.driver.list_domains()
    assert not layout.dir.exists()
    assert base.is_file()  # the cached image stays for the next instance
    assert not Port.objects.filter(pk=port.pk).exists()
    node.row.refresh_from_db()
    assert (node.row.vcpus_used, node.row.memory_mb_used) == (0, 0)


def test_second_spawn_uses_the_cache_and_is_fast(cloud, node, image) -> None:
    spawned(cloud, node, image, name="first")
    inst = make_instance(cloud, node, image, name="second")
    started = time.monotonic()
    assert run_task("spawn", inst.id) == "spawned"
    print(f"\nspawn on the test driver (image cached): {(time.monotonic() - started) * 1000:.0f} ms")
    assert len(node.driver.list_domains()) == 2


def test_redelivered_spawn_changes_nothing(cloud, node, image) -> None:
    inst = make_instance(cloud, node, image)
    assert run_task("spawn", inst.id) == "spawned"
    disk_stat = os.stat(layout_of(inst).disk)
    Instance.objects.filter(pk=inst.id).update(vm_state="building", task_state="spawning")  # as if unreported
    assert run_task("spawn", inst.id) == "spawned"
    assert os.stat(layout_of(inst).disk).st_mtime_ns == disk_stat.st_mtime_ns
    inst.refresh_from_db()
    assert (inst.vm_state, inst.power_state) == ("active", RUNNING)


def test_spawn_failure_undoes_the_node_and_reports_the_fault(cloud, node, tmp_path) -> None:
    big = upload_image(cloud.member_actor, make_qcow2(tmp_path / "big.qcow2", "3G"), name="big")
    inst = make_instance(cloud, node, big, root_gb=1, config_drive=True)
    Instance.objects.filter(pk=inst.id).update(attempts=settings.STRATUS_SCHEDULER_MAX_ATTEMPTS)
    assert run_task("spawn", inst.id, request_id="req-f") == "failed"
    assert not layout_of(inst).dir.exists()
    assert node.driver.power_state(inst.id) == NOSTATE
    inst.refresh_from_db()
    assert inst.vm_state == "error" and inst.node_id is None
    fault = InstanceFault.objects.filter(instance=inst).first()
    assert fault is not None and "smaller than the image" in fault.message


def test_spawn_of_a_deleted_instance_does_nothing(cloud, node, image) -> None:
    inst = make_instance(cloud, node, image)
    Instance.objects.filter(pk=inst.id).update(deleted=True, vm_state="deleted")
    assert run_task("spawn", inst.id) == "skipped"
    assert not layout_of(inst).dir.exists() and node.driver.list_domains() == {}


def test_spawn_after_a_delete_or_on_the_wrong_node_builds_nothing(cloud, node, image, settings) -> None:
    deleting = make_instance(cloud, node, image, name="deleting")
    set_task(deleting, "deleting")
    assert run_task("spawn", deleting.id) == "skipped"
    moved = make_instance(cloud, node, image, name="moved")
    assert run_task("spawn", moved.id) == "spawned"
    Instance.objects.filter(pk=moved.id).update(host="elsewhere", vm_state="building", task_state="spawning")
    settings.STRATUS_COMPUTE_HOST = node.host  # this process is the agent of node.host
    assert run_task("spawn", moved.id) == "skipped"  # a late redelivery after a reschedule: leftovers removed
    assert node.driver.list_domains() == {}
    assert not layout_of(deleting).dir.exists() and not layout_of(moved).dir.exists()


def test_tasks_sent_before_a_delete_are_safe(cloud, node, image) -> None:
    """A spec is made when the task is sent and may be acted on late (beat resends a task record, the
    broker redelivers): a spawn asks before it builds, a destroy of what is gone succeeds, and the
    services ignore what no longer fits."""
    inst = make_instance(cloud, node, image)
    spawn_spec, power_spec = node_spec(inst.id, "spawn"), node_spec(inst.id, "power")
    Instance.objects.filter(pk=inst.id).update(deleted=True, vm_state="deleted", task_state=None)
    assert compute.spawn(inst.id, spec=spawn_spec) == "skipped"
    assert compute.power(inst.id, "stop", spec=power_spec) == "failed"  # no domain: reported, ignored
    assert compute.destroy(inst.id, spec=spawn_spec) == "destroyed"
    inst.refresh_from_db()
    assert inst.vm_state == "deleted" and not InstanceFault.objects.filter(instance=inst).exists()
    assert node.driver.list_domains() == {} and not layout_of(inst).dir.exists()
    with pytest.raises(ValueError, match="sent for instance"):  # a spec is the instance's own
        compute.destroy("00000000-0000-0000-0000-000000000000", spec=spawn_spec)


def test_destroy_is_idempotent(cloud, node, image) -> None:
    inst = make_instance(cloud, node, image)  # never spawned: no domain, no files
    set_task(inst, "deleting")
    assert run_task("destroy", inst.id) == "destroyed"
    inst.refresh_from_db()
    assert inst.deleted


@pytest.mark.parametrize(("action", "task", "vm_before", "vm_after", "power_after"), [
    ("stop", "powering-off", "active", "stopped", SHUTDOWN),
    ("pause", "pausing", "active", "paused", PAUSED),
    ("suspend", "suspending", "active", "suspended", SUSPENDED),
    ("reboot_soft", "rebooting", "active", "active", RUNNING),
    ("reboot_hard", "rebooting_hard", "active", "active", RUNNING),
])
def test_power_actions(cloud, node, image, action, task, vm_before, vm_after, power_after) -> None:
    inst = spawned(cloud, node, image)
    set_task(inst, task, vm_before)
    assert run_task("power", inst.id, action) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == (vm_after, None, power_after)
    assert node.driver.power_state(inst.id) == power_after


def test_power_cycle_back_and_forth(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    for action, task, vm_state, power in (("stop", "powering-off", "stopped", SHUTDOWN),
                                          ("start", "powering-on", "active", RUNNING),
                                          ("pause", "pausing", "paused", PAUSED),
                                          ("unpause", "unpausing", "active", RUNNING),
                                          ("suspend", "suspending", "suspended", SUSPENDED),
                                          ("resume", "resuming", "active", RUNNING),
                                          ("stop", "powering-off", "stopped", SHUTDOWN),
                                          ("reboot_hard", "rebooting_hard", "active", RUNNING)):
        set_task(inst, task)
        assert run_task("power", inst.id, action) == "done", action
        inst.refresh_from_db()
        assert (inst.vm_state, inst.power_state) == (vm_state, power), action


def test_power_failure_reports_a_fault(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    set_task(inst, "resuming", "suspended")  # the domain is not suspended: libvirt refuses
    assert run_task("power", inst.id, "resume") == "failed"
    inst.refresh_from_db()
    assert inst.task_state is None and inst.vm_state == "suspended"
    assert "not suspended" in InstanceFault.objects.filter(instance=inst).first().message


def test_rebuild_boots_from_the_new_image(cloud, node, image, tmp_path) -> None:
    inst = spawned(cloud, node, image)
    other = upload_image(cloud.member_actor, make_qcow2(tmp_path / "other.qcow2", "128M"), name="other")
    set_task(inst, "rebuilding", image_id=other.id)
    assert run_task("rebuild", inst.id, other.id) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("active", None, RUNNING)
    layout = layout_of(inst)
    assert disk.info(layout.disk, fmt="qcow2").chain == (layout.disk, str(node.cache / other.id))
    assert node.driver.power_state(inst.id) == RUNNING


def test_rebuild_of_a_stopped_instance_leaves_it_stopped(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    set_task(inst, "powering-off")
    run_task("power", inst.id, "stop")
    set_task(inst, "rebuilding")
    assert run_task("rebuild", inst.id, image.id) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("stopped", None, SHUTDOWN)
    assert node.driver.power_state(inst.id) == SHUTDOWN


def test_rebuild_failure_reports_error_and_leaves_no_domain(cloud, node, image, tmp_path) -> None:
    inst = spawned(cloud, node, image)
    big = upload_image(cloud.member_actor, make_qcow2(tmp_path / "big.qcow2", "3G"), name="big")
    set_task(inst, "rebuilding", image_id=big.id)
    assert run_task("rebuild", inst.id, big.id) == "failed"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state) == ("error", None)
    assert "smaller than the image" in InstanceFault.objects.filter(instance=inst).first().message
    assert node.driver.power_state(inst.id) == NOSTATE and not layout_of(inst).dir.exists()


def _vcpus_memory(node, inst) -> tuple[int, int]:
    root = ET.fromstring(node.driver.definition(inst.id))
    return int(root.findtext("vcpu")), int(root.findtext("memory")) // 1024


def resize_to(inst: Instance, vcpus: int, ram: int, root: int) -> None:
    new = {"original_name": "m1.bigger", "flavorid": "m1.bigger", "vcpus": vcpus, "ram": ram, "disk": root,
           "ephemeral": 0, "swap": 0, "extra_specs": {}}
    set_task(inst, "resize_prep", new_flavor=new)


def test_resize_then_revert(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    layout = layout_of(inst)
    resize_to(inst, 2, 1024, 3)
    assert run_task("resize", inst.id) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("resized", None, RUNNING)
    assert _vcpus_memory(node, inst) == (2, 1024)
    assert disk.info(layout.disk, fmt="qcow2").virtual_size == 3 * disk.GiB
    assert Path(layout.disk + compute.RESIZE_BACKUP_SUFFIX).is_file()

    set_task(inst, "resize_reverting")
    assert run_task("revert_resize", inst.id) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.task_state, inst.power_state, inst.vcpus) == ("active", None, RUNNING, 1)
    assert _vcpus_memory(node, inst) == (1, 512)
    info = disk.info(layout.disk, fmt="qcow2")
    assert info.virtual_size == 1 * disk.GiB and info.chain == (layout.disk, str(node.cache / image.id))
    assert not Path(layout.disk + compute.RESIZE_BACKUP_SUFFIX).exists()


def test_resize_then_confirm_of_a_stopped_instance(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    set_task(inst, "powering-off")
    run_task("power", inst.id, "stop")
    layout = layout_of(inst)
    resize_to(inst, 4, 2048, 2)
    assert run_task("resize", inst.id) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.power_state) == ("resized", SHUTDOWN)  # a stopped guest stays off
    set_task(inst, "resize_confirming")
    assert run_task("confirm_resize", inst.id) == "done"
    inst.refresh_from_db()
    assert (inst.vm_state, inst.vcpus, inst.memory_mb, inst.root_gb) == ("stopped", 4, 2048, 2)
    assert _vcpus_memory(node, inst) == (4, 2048)
    assert disk.info(layout.disk, fmt="qcow2").virtual_size == 2 * disk.GiB
    assert not Path(layout.disk + compute.RESIZE_BACKUP_SUFFIX).exists()


def test_snapshot_into_glance(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    snap = image_services.image_create(actor=cloud.member_actor, name="snap", disk_format="qcow2",
                                       container_format="bare",  # as createImage makes it (a request cannot)
                                       service_properties={"instance_uuid": inst.id})
    set_task(inst, "image_snapshot")
    assert run_task("snapshot", inst.id, snap.id) == "done"
    snap.refresh_from_db()
    inst.refresh_from_db()
    assert snap.status == Image.ACTIVE and snap.size > 0
    stored = Path(settings.STRATUS_IMAGE_DIR) / snap.location
    info = disk.info(stored, fmt="qcow2")
    assert info.backing_file is None and info.virtual_size == 1 * disk.GiB  # standalone, the root's size
    assert (inst.vm_state, inst.task_state, inst.power_state) == ("active", None, RUNNING)
    assert node.driver.power_state(inst.id) == RUNNING  # paused for the copy, running again
    assert [p.name for p in node.instances.iterdir() if p.name.startswith(".snapshot")] == []


def test_console_output_is_what_the_serial_console_wrote(cloud, node, image) -> None:
    inst = spawned(cloud, node, image)
    assert compute_console.console_output(inst.id) == ""  # the test driver runs no guest: nothing was written
    Path(layout_of(inst).console_log).write_text("boot\nlogin: \nhello\n")  # what a guest's serial would write
    assert compute_console.console_output(inst.id) == "boot\nlogin: \nhello\n"
    assert compute_console.console_output(inst.id, 1) == "hello\n"
    assert compute_console.console_output("00000000-0000-0000-0000-000000000000") == ""


def test_trigger_crash_dump_sends_an_nmi_and_finishes_the_action(cloud, node, image) -> None:
    from apps.compute.models import InstanceAction
    from apps.compute.services.instance_actions import action_start, event_start

    inst = spawned(cloud, node, image)
    for request_id in ("req-nmi-1", "req-nmi-2"):
        row = action_start(inst, record="trigger_crash_dump", request_id=request_id, user_id=None,
                           project_id=inst.project_id)
        event_start(row, "compute_trigger_crash_dump", node.host)
    assert run_task("trigger_crash_dump", inst.id, "req-nmi-1") == "done"
    event = InstanceAction.objects.get(request_id="req-nmi-1").events.get()
    assert (event.event, event.result) == ("compute_trigger_crash_dump", "Success") and event.finish_time
    assert node.driver.power_state(inst.id) == RUNNING  # the NMI changes no state (the guest decides)
    node.driver.stop(inst.id)  # a guest that is not running takes no NMI: the action says so
    assert run_task("trigger_crash_dump", inst.id, "req-nmi-2") == "failed"
    action = InstanceAction.objects.get(request_id="req-nmi-2")
    assert action.message == "Error" and action.events.get().result == "Error"


def test_sync_power_states(cloud, node, image) -> None:
    one = spawned(cloud, node, image, name="one")
    two = spawned(cloud, node, image, name="two")
    node.driver.stop(two.id)  # the guest shut itself down
    assert compute.sync_power_states(node.host) == {one.id: RUNNING, two.id: SHUTDOWN}
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.vm_state, one.power_state) == ("active", RUNNING)
    assert (two.vm_state, two.power_state) == ("stopped", SHUTDOWN)


def test_the_domains_graphics_are_reported_at_the_spawn_and_in_the_sync(cloud, node, image) -> None:
    """The console page offers VNC by what the node read of the domain (``Instance.graphics``): the test
    driver's domains have none (""), reported at the spawn; a domain whose definition changed (here: given
    a VNC server, as a rebuild on a node with VNC does) is reported by the next power sync, in one query
    a distinct value whatever the number of domains."""
    one = spawned(cloud, node, image, name="one")
    two = spawned(cloud, node, image, name="two")
    assert (one.graphics, two.graphics) == ("", "")
    root = ET.fromstring(node.driver.definition(one.id))
    ET.SubElement(root.find("devices"), "graphics", type="vnc", autoport="yes")  # type: ignore[arg-type]
    node.driver.conn.defineXML(ET.tostring(root, encoding="unicode"))
    Instance.objects.filter(pk=two.id).update(graphics=None)  # as a domain defined before this was recorded
    with CaptureQueriesContext(connection) as queries:
        compute.sync_power_states(node.host)
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.graphics, two.graphics) == ("vnc", "")
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "graphics" in q["sql"]]
    assert len(updates) == 2, updates
