"""The cloud over RabbitMQ (CELERY_BROKER_URL=amqp://..., issue 16): a control worker and a compute node
(real Celery worker processes, the node with its own restricted RabbitMQ user as enrolment makes it) in a
vhost of the test's own. A node task's report reaches the control worker and its result the sender
(portal/celery_rpc.py); a node killed (SIGKILL) mid-task has its message given back by the broker and
the restarted node runs it (acks late; the task, a telemetry poll, is idempotent)."""
from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.capabilities import needs
from tests.compute_nodes import ComputeNodeProcess, start_compute_node
from tests.conftest import ROOT, Cloud, running_worker, wait_for
from tests.rabbitmq import Vhost, rabbitmq_missing

pytestmark = [pytest.mark.e2e, needs(rabbitmq_missing())]

POLL = "workers.telemetry.poll"


def amqp_env(cloud: Cloud, url: str, **extra: str) -> dict[str, str]:
    env = dict(cloud.env, CELERY_BROKER_URL=url, **extra)
    env.pop("CELERY_RESULT_BACKEND", None)  # the default on RabbitMQ: RPC through stratus.reply
    return env


def send(env: dict[str, str], task: str, kwargs: dict, queue: str, *, wait: float = 0) -> dict:
    """Send ``task`` from a control-tier process (the portal's Celery app, guest's credentials) and,
    with ``wait``, wait for its result: ``{"id": ..., "result": ...}``."""
    code = ("import json, sys, django; django.setup()\n"
            "from portal.celery import app\n"
            "task, kwargs, queue, wait = json.loads(sys.argv[1])\n"
            "r = app.send_task(task, kwargs=kwargs, queue=queue)\n"
            "print(json.dumps({'id': r.id, 'result': r.get(timeout=wait) if wait else None}))\n")
    done = subprocess.run([sys.executable, "-c", code, json.dumps([task, kwargs, queue, wait])], cwd=ROOT,
                          env=dict(env, DJANGO_SETTINGS_MODULE="portal.settings"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def control(live_cloud: Cloud, rabbit_vhost: Vhost) -> Iterator:
    env = amqp_env(live_cloud, rabbit_vhost.url())
    queue = env.get("STRATUS_CONTROL_QUEUE", "control")
    tag = f"control-amqp-{secrets.token_hex(3)}"
    with running_worker(env, queue, name=tag, log=live_cloud.data_dir / f"{tag}.log") as worker:
        worker.env = env  # type: ignore[attr-defined]
        yield worker


def node_env(cloud: Cloud, vhost: Vhost, host: str, url: str | None = None) -> tuple[dict[str, str], str]:
    """The node's environment with its own broker user (as enrolment gives it) and that user's URL."""
    control_queue = cloud.env.get("STRATUS_CONTROL_QUEUE", "control")
    user, password = vhost.node_user("compute", host, control_queue=control_queue)
    own = vhost.url(user, password)
    return amqp_env(cloud, url or own, STRATUS_NODE_ROLE="compute", STRATUS_HOST=host), own


def count(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text)


def reports(log: Path, state: str = "received") -> int:
    """How many node reports (``workers.telemetry.node_samples``) the control worker's log shows in ``state``."""
    pattern = rf"Task workers\.telemetry\.node_samples\[[0-9a-f-]+\] {state}"
    return len(re.findall(pattern, log.read_text(errors="replace")))


def test_node_tasks_report_to_the_control_worker_over_rabbitmq(live_cloud: Cloud, rabbit_vhost: Vhost,
                                                                control: object) -> None:
    host = f"rmq{secrets.token_hex(3)}"
    env, _ = node_env(live_cloud, rabbit_vhost, host)
    # it starts, consumes its queue and registers with only its own user's rights
    node = start_compute_node(env, host, live_cloud.data_dir, heartbeat_seconds=1, with_control=False)
    try:
        sent = send(control.env, POLL, {"host": host}, f"compute.{host}", wait=60)  # type: ignore[attr-defined]
        assert sent["result"] == 0  # its result came back to the sender through stratus.reply
        log = control.log  # type: ignore[attr-defined]
        wait_for(lambda: reports(log, "succeeded"), "the node's report applied by the control worker",
                 details=lambda: log.read_text()[-3000:] + node.log.read_text()[-3000:])
        assert f"Task {POLL}[{sent['id']}] succeeded" in node.log.read_text()
        assert "ACCESS_REFUSED" not in node.log.read_text()
        # a node process asks the control tier (control_bus.ask) with its own user, no database, no Redis:
        # the answer comes back to its own reply queue reply.compute.<host>.<uuid>
        asked = dict(env, STRATUS_NO_DATABASE="1", REDIS_URL="redis://127.0.0.1:1/0",
                     DJANGO_SETTINGS_MODULE="portal.settings")
        asked.pop("DATABASE_URL", None)
        code = ("import django; django.setup()\n"
                "from workers.control_bus import ask\n"
                f"print('answer', ask('workers.telemetry.node_samples', timeout=60, host={host!r}, domains=[]))\n")
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=asked, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and re.fullmatch(r"answer \d+\n", done.stdout), done.stderr[-3000:]
        # through the reports exchange, a node may send reports only: any other task is refused unrun
        code = ("import django; django.setup()\n"
                "from django.conf import settings\n"
                "from portal.celery import REPORTS_EXCHANGE, app\n"
                "q = settings.CELERY_TASK_DEFAULT_QUEUE\n"
                "print(app.send_task('workers.telemetry.sweep', queue=q, exchange=REPORTS_EXCHANGE, routing_key=q,"
                " declare=[], ignore_result=True).id)\n")
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=asked, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        forged = done.stdout.split()[-1]
        wait_for(lambda: f"refused workers.telemetry.sweep[{forged}] from a node" in log.read_text(),
                 "the forged task refused", details=lambda: log.read_text()[-3000:])
        assert f"workers.telemetry.sweep[{forged}] received" not in log.read_text()
        # its reports name it as their sender (user_id, checked by RabbitMQ): a report about another
        # host is refused unrun, one about itself is applied
        code = ("import django; django.setup()\n"
                "from workers.control_bus import report\n"
                "report('workers.compute_control.node_heartbeat', host='someone-else', running_vms=0)\n")
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=asked, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        wait_for(lambda: "node_heartbeat" in log.read_text() and "host 'someone-else' is not the sender" in
                 log.read_text(), "the report about another host refused", details=lambda: log.read_text()[-3000:])
        assert re.search(r"Task workers\.compute_control\.node_heartbeat\[[0-9a-f-]+\] succeeded", log.read_text())
        queues = rabbit_vhost.queues()
        assert queues[f"compute.{host}"] == (0, 0)
        # its worker takes no remote control (the control worker's pidbox queue is the only one)
        assert not [q for q in queues if q.startswith(f"compute.{host}@")]
    finally:
        node.stop()


class HoldingProxy:
    """A TCP relay between the node and RabbitMQ that, once the node has sent a message naming ``marker``
    (its report), relays nothing more from the broker to the node on any connection: the report reaches the
    broker, and the node waits for the broker's publisher confirm forever, mid-task, its task unacked."""

    def __init__(self, marker: bytes, upstream: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        self.marker, self.upstream = marker, upstream
        self.held = threading.Event()
        self.sockets: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            broker = socket.create_connection(self.upstream)
            self.sockets += [client, broker]
            threading.Thread(target=self._pump, args=(client, broker, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(broker, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_node: bool) -> None:
        tail = b""
        try:
            while data := src.recv(65536):
                if to_node and self.held.is_set():
                    continue
                dst.sendall(data)
                if not to_node and self.marker in tail + data:
                    self.held.set()
                tail = data[-len(self.marker):]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_a_node_killed_mid_task_gets_the_task_again_when_it_restarts(live_cloud: Cloud, rabbit_vhost: Vhost,
                                                                     control: object) -> None:
    host = f"rmq{secrets.token_hex(3)}"
    proxy = HoldingProxy(b"workers.telemetry.node_samples")
    _, own_url = node_env(live_cloud, rabbit_vhost, host)
    via_proxy = own_url.replace("@127.0.0.1:5672/", f"@127.0.0.1:{proxy.port}/")
    env = amqp_env(live_cloud, via_proxy, STRATUS_NODE_ROLE="compute", STRATUS_HOST=host)
    node: ComputeNodeProcess | None = start_compute_node(env, host, live_cloud.data_dir, heartbeat_seconds=1,
                                                         with_control=False)
    queue = f"compute.{host}"
    log = control.log  # type: ignore[attr-defined]
    reports_before = reports(log)
    try:
        sent = send(control.env, POLL, {"host": host}, queue)  # type: ignore[attr-defined]
        task = f"{POLL}[{sent['id']}]"
        # mid-task: its report reached the control worker, its message is still unacknowledged
        wait_for(lambda: reports(log) > reports_before,
                 "the killed-to-be node's report", details=lambda: node.log.read_text()[-3000:])
        assert proxy.held.is_set()
        assert rabbit_vhost.queues()[queue] == (0, 1)
        assert f"Task {task} succeeded" not in node.log.read_text()
        node.kill()  # SIGKILL to its whole process group
        proxy.close()
        wait_for(lambda: rabbit_vhost.queues().get(queue) == (1, 0), "the broker giving the message back",
                 timeout=30)
        # restarted (its own URL, no relay): the same task is delivered again and runs to the end
        node = start_compute_node(amqp_env(live_cloud, own_url, STRATUS_NODE_ROLE="compute", STRATUS_HOST=host),
                                  host, live_cloud.data_dir, heartbeat_seconds=1, with_control=False)
        wait_for(lambda: f"Task {task} succeeded" in node.log.read_text(), "the redelivered task run",
                 details=lambda: node.log.read_text()[-3000:])
        assert count(node.log, f"Task {task} received") == 2
        wait_for(lambda: rabbit_vhost.queues()[queue] == (0, 0), "its acknowledgement")
        # the report of each run reached the control worker (a repeated poll stores nothing twice)
        wait_for(lambda: reports(log) >= reports_before + 2,
                 "the second run's report")
    finally:
        proxy.close()
        if node is not None:
            node.stop()
