"""workers.telemetry's control task, run by a real Celery worker process against the test database:
a node's pollster round (read from the libvirt test hypervisor by the stats driver) is stored as
meters on the instance's resources; the retention sweep runs there too."""
from __future__ import annotations

import time

import libvirt
import pytest

from apps.compute.models import Instance
from apps.identity.models import Project, User
from apps.telemetry.models import Measure, Metric, Resource
from tests.identity.factories import seed
from workers.drivers.hypervisor.stats import domain_stats
from workers.telemetry import node_samples, sweep

pytestmark = pytest.mark.django_db(transaction=True)


def test_node_rounds_in_a_real_worker(celery_worker_process) -> None:
    seed()  # (bootstrap also ensures Gnocchi's policies, rule and resource types after a flush)
    conn = libvirt.open("test:///default")
    first = domain_stats(conn)
    uuid = first[0]["uuid"]
    Instance.objects.create(id=uuid, project=Project.objects.get(name="demo"), user=User.objects.get(name="demo"),
                            name="vm-w", flavor_ref="1", vcpus=2, memory_mb=2048, host="node-w")
    assert node_samples.apply_async(args=("node-w", first), queue=celery_worker_process.queue).get(timeout=60) == 14
    time.sleep(0.2)
    second = domain_stats(conn)
    assert node_samples.apply_async(args=("node-w", second), queue=celery_worker_process.queue).get(timeout=60) == 25
    util = Metric.objects.get(resource_id=uuid, name="cpu_util")
    assert Measure.objects.filter(metric=util).count() == 1
    assert Resource.objects.filter(attributes__instance_id=uuid).count() == 2  # its disk and its interface
    assert sweep.apply_async(queue=celery_worker_process.queue).get(timeout=60) == 0  # nothing past a timespan
