"""The reply queue of a worker's thread is bound before its question leaves (portal/celery_rpc.py): a
node's task asking the control tier (``control_bus.ask``) from inside a worker, where Celery skips that
declaration, must not lose an answer that comes back before it starts waiting. Real RabbitMQ, a vhost
of the test's own."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.capabilities import needs
from tests.conftest import ROOT
from tests.rabbitmq import Vhost, rabbitmq_missing

pytestmark = needs(rabbitmq_missing())

ASK = """
import json, django
django.setup()
from celery._state import _set_task_join_will_block
from portal.celery import app
_set_task_join_will_block(True)  # what a worker's pool sets: Celery's rpc backend then declares nothing
result = app.send_task("workers.nowhere.question", queue="nobody-answers")
print(json.dumps({"oid": app.backend.oid}))
"""


def test_a_workers_reply_queue_is_bound_before_the_question_leaves(rabbit_vhost: Vhost) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_RESULT_BACKEND"}
    env.update(CELERY_BROKER_URL=rabbit_vhost.url(), DJANGO_SETTINGS_MODULE="portal.settings")
    done = subprocess.run([sys.executable, "-c", ASK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    oid = json.loads(done.stdout.strip().splitlines()[-1])["oid"]
    bindings = subprocess.run(["rabbitmqctl", "-q", "list_bindings", "-p", rabbit_vhost.name, "--no-table-headers",
                               "source_name", "destination_name", "routing_key"], capture_output=True, text=True,
                              check=True).stdout
    rows = {tuple(line.split("\t")) for line in bindings.splitlines() if line.strip()}
    assert ("stratus.reply", oid, oid) in rows, rows
