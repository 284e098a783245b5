"""Celery's RPC result backend (``rpc://``) through the topic exchange ``stratus.reply`` instead of the
default exchange: the result backend portal/settings.py picks when the broker is RabbitMQ and
CELERY_RESULT_BACKEND is unset.

Celery's own ``rpc://`` sends each answer through AMQP's default exchange, to the asker's reply queue by
name; a user that may publish there may publish into *any* queue by name (RabbitMQ checks write on
``amq.default``, not on the queue). Here every process's reply queue is named
``<STRATUS_REPLY_PREFIX><uuid4>`` (portal/celery.py) and bound to ``stratus.reply`` with its own name as
the routing key; RabbitMQ's topic permissions then let a node's user publish answers only to the control
tier's reply queues and bind only its own (lib/rabbitmq.py). A node declares the
exchange passively (its user has no configure permission on it): its enrolment, or any control process
sending a task, has made it."""
from __future__ import annotations

from typing import Any

from celery.backends.rpc import RPCBackend
from django.conf import settings
from kombu.common import maybe_declare

REPLY_EXCHANGE = "stratus.reply"  # lib/rabbitmq.py REPLY_EXCHANGE


class ReplyBackend(RPCBackend):
    def _create_exchange(self, name: Any, type: str = "direct", delivery_mode: int = 2) -> Any:  # noqa: ARG002
        return self.Exchange(REPLY_EXCHANGE, type="topic", durable=True, auto_delete=False,
                             delivery_mode=delivery_mode, passive=bool(settings.STRATUS_NODE_ROLE
                                                                       in ("compute", "network", "storage")))

    def on_task_call(self, producer: Any, task_id: str) -> None:  # noqa: ARG002
        """Declare this thread's reply queue, bound to ``stratus.reply``, before each task it sends leaves.
        Celery skips it inside a worker (``task_join_will_block``: "the queue is already declared", true
        of its prefork children only): a node's thread asking the control tier (``control_bus.ask``) then
        bound its queue only when it started waiting, and an answer faster than that found no queue bound
        on the topic exchange and was dropped (seen: a spawn's first question unanswered for 30 s,
        tests/e2e/test_multinode.py). Declaring is idempotent and cached per connection."""
        maybe_declare(self.binding(producer.channel), retry=True)

