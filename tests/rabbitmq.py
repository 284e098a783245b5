"""RabbitMQ for tests: the broker on 127.0.0.1:5672 (portal/scripts/test-services.sh starts it), a vhost of
each test's own (made with ``rabbitmqctl``, deleted at the end, so runs side by side never meet), and
connections as a given user. Tests that need it are marked ``@needs(rabbitmq_missing())``: a skip where
rabbitmqctl is absent, a failure under STRATUS_REQUIRE_REAL=1 (tests/capabilities.py)."""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import amqp
import pytest

from lib.rabbitmq import RabbitMQCtl

HOST = os.environ.get("STRATUS_TEST_AMQP_HOST", "127.0.0.1:5672")


@cache
def rabbitmq_missing() -> str:
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl (Debian package rabbitmq-server)"
    done = subprocess.run(["rabbitmqctl", "-q", "await_startup", "--timeout", "5"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        return f"a running RabbitMQ that rabbitmqctl reaches (root): {(done.stderr or done.stdout).strip()[:200]}"
    return ""


@dataclass
class Vhost:
    name: str
    ctl: RabbitMQCtl
    users: list[str] = field(default_factory=list)  # broker users the test made (users are not per vhost)

    def node_user(self, role: str, host: str, *, control_queue: str) -> tuple[str, str]:
        """A node's user as enrolment makes it; (user, password), deleted at the end."""
        password = secrets.token_urlsafe(24)
        user = self.ctl.node_user_put(vhost=self.name, role=role, host=host, password=password,
                                      control_queue=control_queue)
        self.users.append(user)
        return user, password

    def url(self, user: str = "guest", password: str = "guest") -> str:
        from urllib.parse import quote

        return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{HOST}/{quote(self.name, safe='')}"

    def connect(self, user: str = "guest", password: str = "guest") -> amqp.Connection:
        conn = amqp.Connection(HOST, userid=user, password=password, virtual_host=self.name, connect_timeout=10)
        conn.connect()
        return conn

    def queues(self) -> dict[str, tuple[int, int]]:
        """name -> (messages ready, messages unacknowledged)."""
        done = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", self.name, "--no-table-headers", "name",
                               "messages_ready", "messages_unacknowledged"], capture_output=True, text=True,
                              check=True)
        rows = (line.split("\t") for line in done.stdout.splitlines() if line.strip())
        return {r[0]: (int(r[1]), int(r[2])) for r in rows if len(r) == 3}


@pytest.fixture
def rabbit_vhost() -> Iterator[Vhost]:
    """A vhost of this test's own on the local RabbitMQ, guest allowed everything in it (the control
    tier's user), deleted (with its queues, exchanges and permissions) at the end."""
    ctl = RabbitMQCtl()
    name = f"stratus-test-{secrets.token_hex(5)}"
    ctl.vhost_add(name)
    vhost = Vhost(name=name, ctl=ctl)
    try:
        ctl.permissions_set(vhost=name, user="guest")
        yield vhost
    finally:
        for user in vhost.users:
            ctl.user_delete(user)
        ctl.vhost_delete(name)
