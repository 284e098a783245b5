"""A compute node reports only on its own instances (issue 16: nodes hold no database credentials and
report by messages to the control queue, ``workers/compute_control.py``). A compromised node sends
whatever it likes there; the services apply a report only when the instance is on the reporting host:
another node's word that an instance was spawned, failed, destroyed, stopped or crashed changes nothing
(no state, no claim, no deletion), while the same report from the instance's own host is applied."""
from __future__ import annotations

from typing import Any

from apps.compute.models import ComputeNode, Instance
from tests.workers.compute import conftest as node_tests
from tests.workers.compute.conftest import make_instance
from workers import compute_control

# the node tests' fixtures: a node on libvirt's test driver whose control tasks run in this process
cloud_api, node, image = node_tests.cloud_api, node_tests.node, node_tests.image

EVIL = "evil-node"


def _send(control_task: Any, /, **report: Any) -> None:
    """Run a control task as a control worker runs a report that came off the control queue."""
    control_task.apply(kwargs=report).get()


def _seen(instance: Instance) -> tuple[Any, ...]:
    instance.refresh_from_db()
    return (instance.vm_state, instance.task_state, instance.power_state, instance.deleted, instance.host,
            instance.node_id, instance.launched_at)


def _claims(node_row: ComputeNode) -> tuple[int, int, int]:
    node_row.refresh_from_db()
    return node_row.vcpus_used, node_row.memory_mb_used, node_row.local_gb_used


def test_reports_about_another_hosts_instance_change_nothing(cloud: Any, node: Any, image: Any) -> None:
    inst = make_instance(cloud, node, image)  # building on node.host, its claim counted
    before, claims = _seen(inst), _claims(node.row)

    _send(compute_control.server_spawned, instance_id=inst.id, host=EVIL, power_state=1, request_id="")
    _send(compute_control.server_spawn_failed, instance_id=inst.id, host=EVIL, message="lies", details="",
          request_id="", reschedule=False)
    _send(compute_control.server_task_failed, instance_id=inst.id, host=EVIL, message="lies", details="",
          request_id="")
    _send(compute_control.server_destroyed, instance_id=inst.id, host=EVIL, request_id="")
    assert _seen(inst) == before and _claims(node.row) == claims

    # the instance's own node is believed: the report that was ignored above is applied
    _send(compute_control.server_spawned, instance_id=inst.id, host=node.host, power_state=1, request_id="")
    assert _seen(inst)[:3] == ("active", None, 1)
    running = _seen(inst)

    # a settled instance: another host cannot finish a task on it, stop it or destroy it
    Instance.objects.filter(pk=inst.id).update(task_state="powering-off")
    running = _seen(inst)
    _send(compute_control.server_task_done, instance_id=inst.id, host=EVIL, task="powering-off", power_state=4,
          request_id="")
    _send(compute_control.server_destroyed, instance_id=inst.id, host=EVIL, request_id="")
    assert _seen(inst) == running and _claims(node.row) == claims
    _send(compute_control.server_task_done, instance_id=inst.id, host=node.host, task="powering-off",
          power_state=4, request_id="")
    assert _seen(inst)[:3] == ("stopped", None, 4)


def test_power_states_from_another_host_do_not_reach_this_hosts_instances(cloud: Any, node: Any,
                                                                           image: Any) -> None:
    inst = make_instance(cloud, node, image, vm_state="active", task_state=None)
    Instance.objects.filter(pk=inst.id).update(power_state=1)
    before = _seen(inst)
    # the other node says it has no domain for it (NOSTATE): nothing changes here
    _send(compute_control.power_states, host=EVIL, states={inst.id: 4})
    assert _seen(inst) == before
    _send(compute_control.power_states, host=node.host, states={inst.id: 4})
    assert _seen(inst)[:3] == ("stopped", None, 4)
