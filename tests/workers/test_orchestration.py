"""workers.orchestration in a real Celery worker process (the control queue of this test run, 4 threads)
against the test database: a stack of chained None/RandomString/TestResource/Value resources reaches
CREATE_COMPLETE level by level, independent resources in parallel; a failing TestResource rolls the stack
back; delete removes every resource in the reverse order; a resource that waits is checked again by
countdown, never by a sleeping worker."""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from apps.orchestration import services, states
from apps.orchestration.models import Event, Stack, StackResource
from tests.api_client import SeededCloud
from tests.conftest import CeleryWorker, database_url, running_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def control_worker(django_db_setup: None) -> Iterator[CeleryWorker]:
    """A real worker on this run's control queue (where orchestration's tasks go), 4 threads."""
    from django.db import connection

    log = Path(tempfile.mkdtemp(prefix="stratus-heat-worker-")) / "worker.log"
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0")
    try:
        with running_worker(env, settings.CELERY_TASK_DEFAULT_QUEUE, name=f"heat-{secrets.token_hex(3)}", log=log,
                            pool="threads", concurrency=4) as worker:
            yield worker
    finally:
        shutil.rmtree(log.parent, ignore_errors=True)


def wait_state(stack_id: str, done: set[str], timeout: float = 60) -> Stack:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = Stack.objects.get(pk=stack_id)
        if stack.state in done:
            return stack
        time.sleep(0.2)
    raise AssertionError(f"stack {stack_id} is {Stack.objects.get(pk=stack_id).state} after {timeout}s")


CHAIN = """
heat_template_version: 2018-08-31
resources:
  root: {type: OS::Heat::None}
  left: {type: OS::Heat::RandomString, depends_on: root, properties: {length: 16}}
  right: {type: OS::Heat::RandomString, depends_on: root, properties: {length: 24,
          character_classes: [{class: digits, min: 4}]}}
  slow: {type: OS::Heat::TestResource, depends_on: root, properties: {value: slow, action_wait_secs: {create: 1}}}
  joined:
    type: OS::Heat::Value
    properties:
      value: {list_join: ['-', [{get_attr: [left, value]}, {get_resource: right}, {get_attr: [slow, output]}]]}
outputs:
  joined: {value: {get_attr: [joined, value]}}
"""


def test_chain_to_complete_then_delete(control_worker) -> None:
    cloud = SeededCloud(api="orchestration")
    stack = services.stack_create(actor=cloud.member_actor, name="chain", template=CHAIN)
    done = wait_state(stack.id, {states.CREATE_COMPLETE, states.CREATE_FAILED})
    assert done.state == states.CREATE_COMPLETE, done.status_reason
    rows = {r.name: r for r in StackResource.objects.filter(stack=stack)}
    assert {n: r.level for n, r in rows.items()} == {"root": 0, "left": 1, "right": 1, "slow": 1, "joined": 2}
    left, right = rows["left"].attributes["value"], rows["right"].attributes["value"]
    assert len(left) == 16 and len(right) == 24 and sum(c.isdigit() for c in right) >= 4
    assert done.outputs == [{"output_key": "joined", "output_value": f"{left}-{right}-slow", "description": ""}]
    # level 1 ran in parallel: each of its resources started before any of them completed... all three
    # started before the slow one (1 s) completed
    flow = list(Event.objects.filter(stack=stack).values_list("resource_name", "state"))
    assert flow.index(("joined", "CREATE_IN_PROGRESS")) > flow.index(("slow", "CREATE_COMPLETE"))
    assert max(flow.index((n, "CREATE_IN_PROGRESS")) for n in ("left", "right", "slow")) < \
        flow.index(("slow", "CREATE_COMPLETE"))

    services.stack_delete(actor=cloud.member_actor, stack_id=stack.id)
    gone = wait_state(stack.id, {states.DELETE_COMPLETE, states.DELETE_FAILED})
    assert gone.state == states.DELETE_COMPLETE and gone.deleted_at is not None
    deleting = [n for n, s in Event.objects.filter(stack=stack).values_list("resource_name", "state")
                if s == states.DELETE_IN_PROGRESS]
    assert deleting[0] == "chain" and deleting[1] == "joined" and deleting[-1] == "root"
    assert set(StackResource.objects.filter(stack=stack).values_list("state", flat=True)) == {states.DELETE_COMPLETE}


def test_failure_rolls_back(control_worker) -> None:
    cloud = SeededCloud(api="orchestration")
    stack = services.stack_create(actor=cloud.member_actor, name="failing", disable_rollback=False, template="""
heat_template_version: 2016-10-14
resources:
  a: {type: OS::Heat::None}
  b: {type: OS::Heat::RandomString}
  bad: {type: OS::Heat::TestResource, depends_on: [a, b], properties: {fail: true, action_wait_secs: {create: 0.5}}}
  after: {type: OS::Heat::None, depends_on: bad}
""")
    done = wait_state(stack.id, {states.ROLLBACK_COMPLETE, states.ROLLBACK_FAILED, states.CREATE_COMPLETE})
    assert done.state == states.ROLLBACK_COMPLETE
    stack_flow = [s for n, s in Event.objects.filter(stack=stack).values_list("resource_name", "state")
                  if n == "failing"]
    assert stack_flow == ["CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"]
    assert Event.objects.get(stack=stack, resource_name="bad", state="CREATE_FAILED").reason.endswith(
        "Test Resource failed bad")
    assert not Event.objects.filter(stack=stack, resource_name="after").exists()
    assert set(Event.objects.filter(stack=stack, state="DELETE_COMPLETE").values_list("resource_name", flat=True)) \
        == {"a", "b", "bad"}
    assert not StackResource.objects.filter(stack=stack).exists()


def test_hundred_none_resources(control_worker) -> None:
    """100 OS::Heat::None resources in chains of 10 (10 levels of 10): accept time and time to
    CREATE_COMPLETE, printed (the figures of the issue's note)."""
    cloud = SeededCloud(api="orchestration")
    lines = ["heat_template_version: 2016-10-14", "resources:"]
    for chain in range(10):
        for link in range(10):
            dep = f", depends_on: r{chain}_{link - 1}" if link else ""
            lines.append(f"  r{chain}_{link}: {{type: OS::Heat::None{dep}}}")
    started = time.monotonic()
    stack = services.stack_create(actor=cloud.member_actor, name="hundred", template="\n".join(lines))
    accepted = time.monotonic() - started
    done = wait_state(stack.id, {states.CREATE_COMPLETE, states.CREATE_FAILED}, timeout=120)
    complete = time.monotonic() - started
    assert done.state == states.CREATE_COMPLETE
    assert StackResource.objects.filter(stack=stack, state=states.CREATE_COMPLETE).count() == 100
    print(f"\n100 OS::Heat::None (10 chains of 10): accepted in {accepted * 1000:.0f} ms, "
          f"CREATE_COMPLETE after {complete:.1f} s")
