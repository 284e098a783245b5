"""An answer to a question asked from inside a worker is never dropped (portal/celery_rpc.py): the asking
thread's reply queue exists, bound to ``stratus.reply``, as soon as the question is sent. Celery's RPC
backend skips that declaration inside a worker (``task_join_will_block``), so a node's worker thread
asking the control tier (``control_bus.ask``) had no queue until it began to wait, and a fast answer was
unroutable: the multi-node test's spawns timed out in BUILD under load. Real RabbitMQ, a vhost of the
test's own; the sending process marks itself as a worker, as a node's worker thread is."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import amqp
import pytest

from tests.capabilities import needs
from tests.conftest import ROOT
from tests.rabbitmq import Vhost, rabbitmq_missing

pytestmark = needs(rabbitmq_missing())

CODE = """
import json, sys, django
django.setup()
from celery._state import _set_task_join_will_block
from portal.celery import app
_set_task_join_will_block(True)  # as inside a worker (solo or threads pool: a node's agent)
app.send_task("workers.telemetry.node_samples", kwargs={"host": "h", "domains": []}, queue="nobody-consumes")
print(json.dumps({"reply_queue": app.thread_oid}))
"""


def test_a_question_sent_from_a_worker_has_its_reply_queue_before_any_answer(rabbit_vhost: Vhost) -> None:
    env = dict(os.environ, CELERY_BROKER_URL=rabbit_vhost.url(), DJANGO_SETTINGS_MODULE="portal.settings",
               STRATUS_CONTROL_QUEUE="control-rpc")
    env.pop("CELERY_RESULT_BACKEND", None)  # RabbitMQ's default: answers through stratus.reply
    done = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    queue = json.loads(done.stdout.strip().splitlines()[-1])["reply_queue"]
    conn = rabbit_vhost.connect()
    try:
        ch = conn.channel()
        # an answer published now (as the control worker would) is routed, not dropped
        ch.queue_declare(queue, passive=True)
        ch.basic_publish(amqp.Message("answer"), exchange="stratus.reply", routing_key=queue)
        got = None
        for _ in range(50):
            got = ch.basic_get(queue)
            if got is not None:
                break
        assert got is not None and got.body in ("answer", b"answer")
    except amqp.exceptions.NotFound:
        pytest.fail(f"no reply queue {queue} after the question was sent: its answer would be dropped")
    finally:
        conn.close()
