"""The control-tier compute task through a real Celery worker process (the periodic build-timeout
sweep Celery beat sends to the control queue)."""
from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from apps.compute.models import ComputeNode, Instance, InstanceFault
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401
from workers import compute_control

pytestmark = pytest.mark.django_db(transaction=True)


def test_build_timeouts_task_on_a_worker(env: Env, celery_worker_process: Any, settings: Any) -> None:
    stuck = reload(env.boot())
    fresh = reload(env.boot())
    Instance.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timezone.timedelta(hours=2))
    result = compute_control.build_timeouts.apply_async(queue=celery_worker_process.queue)
    assert result.get(timeout=60) == 1
    stuck, fresh = reload(stuck), reload(fresh)
    assert stuck.vm_state == "error" and stuck.node is None and fresh.vm_state == "building"
    assert "timed out" in InstanceFault.objects.get(instance=stuck).message
    assert sum(ComputeNode.objects.values_list("vcpus_used", flat=True)) == 1  # only the fresh one holds a claim
