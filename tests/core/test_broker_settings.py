"""portal/settings.py for the broker: Redis (the embedded default, unchanged) or RabbitMQ (amqp://): the
vhost isolates instead of the key prefix, results over RPC through stratus.reply unless
CELERY_RESULT_BACKEND is set, heartbeats, publisher confirms, topic exchanges; a node's reply queues and
remote control. Each case is a fresh process (settings are read once)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

SHOW = """
import json, django
django.setup()
from django.conf import settings
from portal.celery import app
print(json.dumps({k: getattr(settings, k, None) for k in (
    "CELERY_RESULT_BACKEND", "CELERY_BROKER_TRANSPORT_OPTIONS", "CELERY_BROKER_HEARTBEAT",
    "CELERY_TASK_DEFAULT_EXCHANGE_TYPE", "CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE",
    "CELERY_TASK_REJECT_ON_WORKER_LOST", "CELERY_TASK_ACKS_LATE", "CELERY_WORKER_ENABLE_REMOTE_CONTROL",
    "STRATUS_REPLY_PREFIX", "STRATUS_BROKER_AMQP", "CACHES", "CHANNEL_LAYERS")} | {
    "oid": app.thread_oid, "backend": type(app.backend).__name__,
    "reply_exchange": getattr(getattr(app.backend, "exchange", None), "name", None),
    "passive": getattr(getattr(app.backend, "exchange", None), "passive", None)}, default=str))
"""


def show(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "STRATUS_NODE_ROLE"))}
    done = subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(base, DJANGO_SETTINGS_MODULE="portal.settings", STRATUS_CELERY_KEYPREFIX="kp:",
                                   STRATUS_CONTROL_QUEUE="control-x", **env))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_redis_stays_as_it_was() -> None:
    s = show(REDIS_URL="redis://127.0.0.1:6379/3")
    assert s["STRATUS_BROKER_AMQP"] is False
    assert s["CELERY_RESULT_BACKEND"] == "redis://127.0.0.1:6379/3" and s["backend"] == "RedisBackend"
    assert s["CELERY_BROKER_TRANSPORT_OPTIONS"] == {"global_keyprefix": "kp:"}
    assert s["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"] is None and s["CELERY_BROKER_HEARTBEAT"] is None
    assert s["CELERY_TASK_ACKS_LATE"] and s["CELERY_TASK_REJECT_ON_WORKER_LOST"]
    assert s["CELERY_WORKER_ENABLE_REMOTE_CONTROL"] is True
    assert s["oid"].startswith("reply.control-x.")


def test_rabbitmq_on_the_controller() -> None:
    s = show(REDIS_URL="redis://127.0.0.1:6379/3", CELERY_BROKER_URL="amqp://u:p@127.0.0.1:5672/cloud")
    assert s["STRATUS_BROKER_AMQP"] is True
    assert s["CELERY_RESULT_BACKEND"] == "portal.celery_rpc.ReplyBackend+rpc://"
    assert s["backend"] == "ReplyBackend" and s["reply_exchange"] == "stratus.reply" and s["passive"] is False
    # the vhost isolates: no Redis key prefix; confirms and heartbeats instead
    assert s["CELERY_BROKER_TRANSPORT_OPTIONS"] == {"confirm_publish": True}
    assert s["CELERY_BROKER_HEARTBEAT"] == 30
    assert s["CELERY_TASK_DEFAULT_EXCHANGE_TYPE"] == s["CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE"] == "topic"
    assert s["STRATUS_REPLY_PREFIX"] == "reply.control-x." and s["oid"].startswith("reply.control-x.")
    # the channel layer and the cache stay on Redis
    assert "redis://127.0.0.1:6379/3" in json.dumps(s["CHANNEL_LAYERS"]) + json.dumps(s["CACHES"])
    assert "amqp" not in json.dumps(s["CHANNEL_LAYERS"]) + json.dumps(s["CACHES"])
    # an explicit result backend is kept
    assert show(CELERY_BROKER_URL="amqp://u:p@h/v", CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/4")[
        "CELERY_RESULT_BACKEND"] == "redis://127.0.0.1:6379/4"


def test_rabbitmq_on_a_node() -> None:
    s = show(CELERY_BROKER_URL="amqp://stratus-compute-n1:p@controller:5672/cloud", STRATUS_NODE_ROLE="compute",
             STRATUS_HOST="n1")
    assert s["STRATUS_REPLY_PREFIX"] == "reply.compute.n1." and s["oid"].startswith("reply.compute.n1.")
    assert len(s["oid"]) == len("reply.compute.n1.") + 36  # a random uuid4: nobody guesses another's
    assert s["passive"] is True  # its user may not configure the reply exchange
    assert s["CELERY_WORKER_ENABLE_REMOTE_CONTROL"] is False


def test_bad_values_are_refused() -> None:
    for env in ({"STRATUS_RABBITMQ_MANAGE": "yes"}, {"STRATUS_NODE_ROLE": "root"}):
        done = subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, DJANGO_SETTINGS_MODULE="portal.settings", **env))
        assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr
