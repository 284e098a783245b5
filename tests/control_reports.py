"""Apply the reports node tasks sent to the control queue, in this test process.

A node task run in-process (tests/workers/test_storage.py) reports with ``workers.control_bus.report``: a
real message on the test run's control queue in Redis. ``apply_control_reports()`` takes those messages
off the queue and runs each one's control task body here, as a control worker would, so an in-process test
(inside its database transaction) sees the outcome. Tests with real worker processes use a real control
worker instead (``tests.conftest.live_control_worker``). ``take_messages``/``apply_reports`` do the same by
exact task names, leaving every other message where it is, and show a report's headers (its expiry)."""
from __future__ import annotations

import base64
import json
from typing import Any


def apply_control_reports(*, queue: str | None = None, only: str = "",
                          limit: int = 500) -> list[tuple[str, dict[str, Any], Any]]:
    """Every message waiting on the control queue (or on ``queue``: a node's, for what the control tier
    sent it) whose task name starts with ``only``, applied in order: ``(task name, kwargs, result)``.
    The others are put back on the queue untouched."""
    from celery import current_app
    from kombu import Queue

    from workers.control_bus import control_queue

    applied: list[tuple[str, dict[str, Any], Any]] = []
    others: list[Any] = []
    with current_app.connection_for_read() as conn:
        source = Queue(queue or control_queue(), channel=conn.default_channel)
        for _ in range(limit):
            message = source.get(no_ack=False, accept=["json"])
            if message is None:
                break
            name = message.headers["task"]
            if not name.startswith(only):
                others.append(message)
                continue
            args, kwargs, _embed = message.decode()
            try:
                result = current_app.tasks[name](*args, **kwargs)
            finally:
                message.ack()
            applied.append((name, kwargs, result))
        for message in others:
            message.reject(requeue=True)
    return applied


def run_storage_task(task: Any, **kwargs: Any) -> Any:
    """The storage node's task ``task`` run here with ``kwargs`` (its message), then its reports applied on
    the control side (``workers.storage_control``): what a storage node and a control worker do in turn."""
    outcome = task(**kwargs)
    apply_control_reports(only="workers.storage_control.")
    return outcome


# ---- by name, leaving the rest in place (the agent's and the task records' reports) ------------------

def take_messages(*names: str) -> list[dict[str, Any]]:
    """The waiting report messages to ``names``, taken off the control queue, oldest first: their headers
    (``task``, ``id``, ``expires``, ...) and their ``kwargs``."""
    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    prefix = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("global_keyprefix", "")
    key = prefix + settings.CELERY_TASK_DEFAULT_QUEUE
    taken = []
    for raw in reversed(broker.lrange(key, 0, -1)):  # LPUSHed: the oldest is last
        message = json.loads(raw)
        if message["headers"]["task"] in names and broker.lrem(key, 1, raw):
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            taken.append({**message["headers"], "kwargs": kwargs})
    return taken


def take_reports(*names: str) -> list[tuple[str, dict[str, Any]]]:
    """The waiting reports to ``names`` (task name, kwargs), taken off the control queue, oldest first."""
    return [(message["task"], message["kwargs"]) for message in take_messages(*names)]


def apply_reports(*names: str) -> list[Any]:
    """Run the waiting reports to ``names`` (see ``take_reports``) as the control worker would; their results."""
    from celery import current_app

    import workers  # noqa: F401  (registers the tasks)

    return [current_app.tasks[name](**kwargs) for name, kwargs in take_reports(*names)]
