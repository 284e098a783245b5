"""A compute node as it runs on a machine of its own (issue 16): a real Celery worker process with no
DATABASE_URL and STRATUS_NO_DATABASE=1 (Django's dummy database engine: any query raises
ImproperlyConfigured), against a live cloud whose control worker applies what the node reports. The node
registers, heartbeats, syncs a domain's power state, its pollster's samples are stored, and a task sent
to it with a record moves that record started → succeeded, all by messages; the node's process never
connects to PostgreSQL.

The node's hypervisor (libvirt's test driver, from a node XML written here) starts with one running
domain, the guest of an instance row this test writes in the cloud's database: what a spawn would have
left, without a spawn (which still reads the database until the compute tasks are converted)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import psutil
import pytest

from tests.compute_nodes import ComputeNodeProcess, node_row, start_compute_node
from tests.conftest import ROOT, Cloud, wait_for
from workers.drivers.hypervisor import node as hv_node

pytestmark = pytest.mark.e2e

DOMAIN = """<domain type="test"><name>{name}</name><uuid>{uuid}</uuid><memory>131072</memory><vcpu>1</vcpu>
<os><type>hvm</type></os><devices>
<disk type="file" device="disk"><source file="/nonexistent/{uuid}.qcow2"/><target dev="vda" bus="virtio"/></disk>
<interface type="network"><source network="default"/><mac address="52:54:00:4e:0d:b1"/>
<target dev="tap-nodb"/></interface>
</devices></domain>"""


def shell(cloud: Cloud, code: str) -> Any:
    """Run ``code`` in the cloud's own Django (``manage.py shell``, its database); the JSON of its last line."""
    return json.loads(cloud.manage("shell", "-c", code).stdout.strip().splitlines()[-1])


@pytest.fixture
def node_without_db(live_cloud: Cloud) -> Iterator[tuple[ComputeNodeProcess, str]]:
    host = f"nodb-{secrets.token_hex(3)}"
    guest = f"6f1a3c1e-0000-4000-8000-{secrets.token_hex(6)}"
    xml_path = live_cloud.data_dir / "nodes" / f"{host}-with-guest.xml"
    hv_node.test_node_xml(xml_path, host, 4, 8192, disk_gb=40)
    root = ET.parse(xml_path).getroot()
    root.append(ET.fromstring(DOMAIN.format(name=f"instance-{guest[-6:]}", uuid=guest)))
    ET.ElementTree(root).write(xml_path, encoding="unicode")
    node = start_compute_node(live_cloud.env, host, live_cloud.data_dir, vcpus=4, memory_mb=8192, disk_gb=40,
                              heartbeat_seconds=1, no_database=True,
                              extra_env={"LIBVIRT_URI": f"test://{xml_path}",
                                         "STRATUS_COMPUTE_POWER_SYNC_SECONDS": "2"})
    try:
        yield node, guest
    finally:
        node.stop()
        # leave the shared cloud as found: the instance, its meters and the node's row
        shell(live_cloud, f"""
import json
from apps.compute.models import ComputeNode, Instance
from apps.telemetry.models import Resource
Instance.objects.filter(pk="{guest}").delete()
Resource.objects.filter(original_resource_id__startswith="{guest}").delete()
ComputeNode.objects.filter(host="{host}").delete()
print(json.dumps(True))""")


def test_a_node_without_a_database_runs_by_messages(live_cloud: Cloud, node_without_db: tuple) -> None:
    node, guest = node_without_db
    host, url = node.host, live_cloud.env["DATABASE_URL"]
    details = lambda: f"node log:\n{node.log.read_text(errors='replace')[-3000:]}"  # noqa: E731

    # no database in the node's process: not in its environment, no connection to the server
    process = psutil.Process(node.proc.pid)
    environ = process.environ()
    assert "DATABASE_URL" not in environ and environ["STRATUS_NO_DATABASE"] == "1"

    # registered (start_compute_node waited for the row and the agent's "registered", answered by the
    # control task) and heartbeating: last_heartbeat advances
    first = node_row(url, host)[1]
    wait_for(lambda: node_row(url, host)[1] > first, "a later heartbeat", timeout=20, details=details)

    # the instance row of the domain the node runs, shown shut down: the power sync reports it running
    state = shell(live_cloud, f"""
import json
from apps.compute.models import ComputeNode, Instance
from apps.identity.models import Project, User
node = ComputeNode.objects.get(host="{host}")
Instance.objects.create(id="{guest}", project=Project.objects.get(name="demo"), user=User.objects.get(name="demo"),
    name="nodb-guest", flavor_ref="1", vcpus=1, memory_mb=128, node=node, host="{host}", vm_state="active",
    power_state=4)
print(json.dumps([node.vcpus, node.memory_mb, node.local_gb, node.hypervisor_type]))""")
    assert state == [4, 8192, 40, "test"]

    def power_state() -> int:
        return shell(live_cloud, f"""
import json
from apps.compute.models import Instance
print(json.dumps(Instance.objects.get(pk="{guest}").power_state))""")

    wait_for(lambda: power_state() == 1, "the power sync's RUNNING", timeout=30, interval=1, details=details)

    # a pollster round (what Celery beat sends the node) and a task with a record, sent from the cloud
    record_id = shell(live_cloud, f"""
import json
from celery import current_app
from apps.core.tasks import enqueue
current_app.send_task("workers.telemetry.poll", kwargs={{"host": "{host}"}}, queue="compute.{host}")
record = enqueue("workers.compute.sync_power_states", queue="compute.{host}", kwargs={{"host": "{host}"}},
                 action="sync", resource_type="compute_node", resource_id="{host}")
print(json.dumps(str(record.id)))""")

    def stored() -> dict[str, Any]:
        return shell(live_cloud, f"""
import json
from apps.core.models import TaskRecord
from apps.telemetry.models import Metric
r = TaskRecord.objects.get(pk="{record_id}")
print(json.dumps({{"status": r.status, "started": bool(r.started_at), "finished": bool(r.finished_at),
                  "ordered": bool(r.started_at and r.finished_at and r.started_at <= r.finished_at),
                  "meters": sorted(set(Metric.objects.filter(resource__original_resource_id__startswith="{guest}")
                                       .values_list("name", flat=True)))}}))""")

    seen = wait_for(lambda: (s := stored())["status"] in ("succeeded", "failed") and s["meters"] and s,
                    "the record's end and the pollster's samples", timeout=40, interval=1, details=details)
    assert seen["status"] == "succeeded" and seen["started"] and seen["finished"] and seen["ordered"], seen
    assert {"cpu", "vcpus", "memory", "disk.device.read.bytes"} <= set(seen["meters"]), seen

    # the node's process never had a database: no connection to PostgreSQL, no query tried and refused
    db_port = urlparse(url).port or 5432
    assert not [c for c in process.net_connections(kind="tcp") if c.raddr and c.raddr.port == db_port]
    log = node.log.read_text(errors="replace")
    assert "ImproperlyConfigured" not in log and "agent round failed" not in log, details()
    assert f"compute node {host} registered" in log


def test_django_in_a_node_process_has_no_database() -> None:
    """What STRATUS_NO_DATABASE=1 without DATABASE_URL gives a process: the dummy engine, so a query (a
    model's, or a raw cursor) raises ImproperlyConfigured instead of reaching a database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(STRATUS_NO_DATABASE="1", DJANGO_SETTINGS_MODULE="portal.settings")
    code = """
import django
django.setup()
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from apps.compute.models import ComputeNode
refused = []
for attempt in (lambda: ComputeNode.objects.count(), lambda: connection.cursor()):
    try:
        attempt()
    except ImproperlyConfigured:
        refused.append(True)
print(settings.DATABASES["default"]["ENGINE"], len(refused))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["django.db.backends.dummy", "2"]

