"""A node's report is believed only as coming from that node (portal/celery.py ``sender_refusal``).

On RabbitMQ a report's sender is its message's ``user_id``, which the broker checks against the
publishing connection's user (tests/security/test_broker_credentials.py shows a forged one refused).
With per-node users (enrolment, lib/rabbitmq.py) a compromised node could otherwise name another
node's host in a report (its heartbeat, its ports' statuses, its volumes, another node's task record
by id): each is refused before it runs. The services' own host checks stay behind this one."""
from __future__ import annotations

import pytest

from apps.core import states
from apps.core.models import TaskRecord
from apps.core.tasks import task_record_finished, task_record_started
from portal.celery import sender_refusal

A = "stratus-compute-node-a"


@pytest.mark.parametrize(("task", "user", "kwargs"), [
    ("workers.compute_control.node_heartbeat", A, {"host": "node-a"}),
    ("workers.compute_control.server_spawned", A, {"instance_id": "i", "host": "node-a"}),
    ("workers.network_control.synced", A, {"host": "node-a", "generation": 1, "statuses": {}}),  # its L2 agent
    ("workers.telemetry.node_samples", A, {"host": "node-a", "domains": []}),
    ("workers.taskrecord.started", A, {"record_id": "r", "queue": "compute.node-a"}),
    ("workers.taskrecord.finished", A, {"record_id": "r", "succeeded": True, "queue": "network.node-a"}),
    ("workers.storage_control.volume_created", "stratus-storage-s1", {"host": "s1", "volume_id": "v"}),
    ("workers.network_control.agent_report", "stratus-network-net1", {"host": "net1"}),
    # not a node identity (the control tier's own user, or the one user nodes share without per-node
    # users): the services' host checks are what stands
    ("workers.compute_control.node_heartbeat", "stratus-control", {"host": "anything"}),
    ("workers.compute_control.node_heartbeat", "guest", {"host": "anything"}),
])
def test_a_report_naming_its_sender_is_believed(task: str, user: str, kwargs: dict) -> None:
    assert sender_refusal(task, user, (), kwargs) == ""


@pytest.mark.parametrize(("task", "user", "args", "kwargs", "why"), [
    ("workers.compute_control.node_heartbeat", None, (), {"host": "node-a"}, "no sender"),
    ("workers.compute_control.node_heartbeat", "", (), {"host": "node-a"}, "no sender"),
    ("workers.compute_control.node_heartbeat", A, (), {"host": "node-b"}, "is not the sender"),
    ("workers.compute_control.server_destroyed", A, (), {"instance_id": "i", "host": "node-b"}, "is not the sender"),
    ("workers.compute_control.server_ports_wired", A, (), {"instance_id": "i"}, "names its host"),
    ("workers.compute_control.node_heartbeat", A, ("node-b",), {}, "names its values"),
    ("workers.storage_control.volume_deleted", A, (), {"host": "node-a", "volume_id": "v"},
     "not a report of a compute"),
    ("workers.compute_control.server_spawned", "stratus-network-node-a", (), {"host": "node-a"}, "not a report"),
    ("workers.taskrecord.finished", A, (), {"record_id": "r", "succeeded": True}, "names its host"),
    ("workers.taskrecord.finished", A, (), {"record_id": "r", "succeeded": True, "queue": "compute.node-b"},
     "is not one of"),
    ("workers.taskrecord.started", "stratus-storage-s1", (), {"record_id": "r", "queue": "network.s1"},
     "is not one of"),
    ("workers.telemetry.sweep", A, (), {}, "no report task"),
])
def test_a_report_about_another_node_or_role_is_refused(task: str, user: str | None, args: tuple, kwargs: dict,
                                                         why: str) -> None:
    assert why in sender_refusal(task, user, args, kwargs)


@pytest.mark.django_db
def test_a_task_record_moves_only_on_the_reporting_nodes_queue() -> None:
    record = TaskRecord.objects.create(name="workers.compute.spawn", queue="compute.node-b", status=states.SENT,
                                       action="spawn", resource_type="server", resource_id="x")
    # node-a names its own queue: another node's record does not move
    assert not task_record_started(record_id=record.id, queue="compute.node-a")
    assert not task_record_finished(record_id=record.id, succeeded=False, error="forged", queue="compute.node-a",
                                    lines=[{"at": "", "level": "INFO", "message": "forged"}])
    assert not task_record_finished(record_id=record.id, succeeded=False, error="forged", queue="compute.node-a")
    record.refresh_from_db()
    assert record.status == states.SENT and record.error == "" and record.log == []
    assert task_record_started(record_id=record.id, queue="compute.node-b")
    assert task_record_finished(record_id=record.id, succeeded=True, queue="compute.node-b")
    record.refresh_from_db()
    assert record.status == states.SUCCEEDED
