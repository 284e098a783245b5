"""The Celery application shared by the portal and every node's worker."""
import logging
import os
import uuid
from typing import Any

from celery import Celery, Task
from celery.exceptions import InvalidTaskError
from celery.signals import worker_ready
from celery.worker.request import Request

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

logger = logging.getLogger(__name__)

# On RabbitMQ, nodes publish their reports (workers/control_bus.py) to this exchange, bound to the control
# queue; their broker users may write nowhere else on the control tier (lib/rabbitmq.py). The control worker
# runs a message that came through it only when it names a report task (GuardedRequest).
REPORTS_EXCHANGE = "stratus.reports"
NODE_REPORT_TASKS = frozenset({"workers.telemetry.node_samples",
                               # a node's task records (workers/taskrecord.py, a node without a database)
                               "workers.taskrecord.started", "workers.taskrecord.finished"})


# What a node of each role may report about (task name prefixes), beyond its task records: a compute
# machine also runs its own L2 network agent (``up --role compute``) and a pollster.
ROLE_REPORTS = {"compute": ("workers.compute_control.", "workers.network_control.", "workers.telemetry.node_samples"),
                "network": ("workers.network_control.",),
                "storage": ("workers.storage_control.",)}
RECORD_REPORTS = ("workers.taskrecord.started", "workers.taskrecord.finished")


def is_report_task(name: str) -> bool:
    """A control task a node may send: those of ``workers/<area>_control.py``, the pollster's samples and
    the task records' reports."""
    module = name.rpartition(".")[0]
    return (module.startswith("workers.") and module.endswith("_control")) or name in NODE_REPORT_TASKS


def sender_refusal(task_name: str, user_id: str | None, args: Any, kwargs: Any) -> str:
    """Why a report that came through ``stratus.reports`` is not believed ("" when it is). Its sender is
    the message's ``user_id``, which RabbitMQ checks against the publishing connection's user (a node
    cannot name another user there). A node's own broker user (``stratus-<role>-<host>``, made at
    enrolment, lib/rabbitmq.py) may report only as itself: the report's ``host`` must be its host and
    its ``queue`` (task records) its own queue, and only about its role's resources. Another user (the
    control tier's, or the one user all nodes share when per-node users are off) is not a node
    identity: its reports are checked by the services alone (the resource must be on the named host)."""
    from lib.rabbitmq import USER_RE

    if not is_report_task(task_name):
        return "no report task"
    if not user_id:
        return "no sender (user_id)"
    found = USER_RE.fullmatch(user_id)
    if found is None:
        return ""
    role = found.group(1)
    host = user_id[len(f"stratus-{role}-"):]
    if args or not isinstance(kwargs, dict):
        return "a node's report names its values"
    if not task_name.startswith(ROLE_REPORTS[role]) and task_name not in RECORD_REPORTS:
        return f"not a report of a {role} node"
    if "host" not in kwargs and "queue" not in kwargs:
        return "a node's report names its host"
    if "host" in kwargs and kwargs["host"] != host:
        return f"host {kwargs['host']!r} is not the sender {user_id}"
    if "queue" in kwargs and kwargs["queue"] != f"{role}.{host}" and not (
            role == "compute" and kwargs["queue"] == f"network.{host}"):
        return f"queue {kwargs['queue']!r} is not one of the sender {user_id}'s"
    return ""


class GuardedRequest(Request):
    """A task message that came from a node (through ``stratus.reports``) is refused before it runs
    (rejected, logged, never requeued: Celery's invalid-task path) unless it is a report task its sender
    may send (``sender_refusal``). A node's user could otherwise make the control worker run any task
    with any arguments, or report about another node's resources."""

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(message, *args, **kwargs)
        if self.delivery_info.get("exchange") == REPORTS_EXCHANGE:
            properties = getattr(message, "properties", None) or {}
            call_args, call_kwargs, _ = self._payload
            why = sender_refusal(self.task_name, properties.get("user_id"), call_args, call_kwargs)
            if why:
                raise InvalidTaskError(f"refused {self.task_name}[{self.task_id}] from a node: {why}")


class StratusTask(Task):
    Request = "portal.celery:GuardedRequest"


class Stratus(Celery):
    @property
    def thread_oid(self) -> str:
        """Per-thread name of this process's reply queue (``reply_to`` of the tasks it sends, and the RPC
        result backend's queue): settings STRATUS_REPLY_PREFIX (``reply.<its queue>.``) and a random
        UUID, so a node's broker user can be allowed its own reply queues only, and nobody can guess
        another's (Celery's default is derived from the host, pid and thread)."""
        try:
            return self._local.oid
        except AttributeError:
            from django.conf import settings

            self._local.oid = oid = f"{settings.STRATUS_REPLY_PREFIX}{uuid.uuid4()}"
            return oid


app = Stratus("stratus", task_cls="portal.celery:StratusTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"], related_name=None, force=True)


@worker_ready.connect
def _bind_reports(sender: Any = None, **_: Any) -> None:
    """On RabbitMQ, a worker of the control queue binds it to the reports exchange (idempotent)."""
    from django.conf import settings
    from kombu import Exchange

    control = settings.CELERY_TASK_DEFAULT_QUEUE
    if not settings.STRATUS_BROKER_AMQP or settings.STRATUS_NODE_ROLE:
        return
    try:
        if control not in {q.name for q in sender.task_consumer.queues}:
            return
    except AttributeError:
        return
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        Exchange(REPORTS_EXCHANGE, type="topic", durable=True, auto_delete=False)(channel).declare()
        channel.queue_bind(control, REPORTS_EXCHANGE, control)
    logger.info("control queue %s bound to %s (node reports)", control, REPORTS_EXCHANGE)
