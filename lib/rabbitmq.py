"""Per-node RabbitMQ users, made and removed with ``rabbitmqctl`` (issue 16): a driver the controller's
enrolment service calls (lib/, so that apps/ and workers/ may both import it).

An enrolled node gets its own RabbitMQ user in the controller's virtual host, whose permissions let its
agent do what its Celery worker does and nothing more (RabbitMQ's access control: a configure, a write
and a read regular expression over exchange and queue names, plus topic permissions that restrict the
routing keys a user may publish with or bind to on a topic exchange):

- its own queue ``<role>.<host>`` and the exchange of the same name that Celery declares for it
  (configure, write, read): consume its tasks, and republish one on a retry;
- its reply queues ``reply.<role>.<host>.<uuid>`` (configure, write, read), where ``control_bus.ask``'s
  answers arrive (portal/celery_rpc.py), bound to the reply exchange ``stratus.reply`` (read) with its
  own routing keys only (topic read ``^reply\\.<role>\\.<host>\\.``);
- the reports exchange ``stratus.reports`` (write, topic write ``^<control>$``), which the control
  worker binds to the control queue: its reports, and ``control_bus.ask``'s questions (the control
  worker runs what comes that way only when it names a report task: portal/celery.py);
- the reply exchange (write, topic write ``^reply\\.<control>\\.``): the results of its tasks, to the
  control tier's reply queues only;
- ``celeryev`` (configure, write): the worker's heartbeat events (nobody else's messages flow there).
A compute node's machine also runs its L2 network agent (``manage.py up --role compute``: its bridges
and VXLAN to the peers, never DHCP or routers), a worker on ``network.<host>``: a compute node's user
may use that queue (and its exchange) too. Its compute tasks still ask for a push of its network state
through a report (``workers.network_control.push``).

It cannot read, purge, delete or bind another node's queue nor the control queue, cannot publish through
the default exchange (which would reach any queue by name), and cannot listen to another process's
replies. Remote control (``celery.pidbox``) is off in node processes (portal/settings.py), so it needs
no permission there either.

Nothing here imports Django. Every name is checked against a strict pattern before it reaches an argv
list (never a shell); the password goes in as a salted SHA-256 hash inside a definitions document on
stdin (``rabbitmqctl import_definitions``: one call, and no password on a command line)."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
from dataclasses import dataclass

REPLY_EXCHANGE = "stratus.reply"
REPORTS_EXCHANGE = "stratus.reports"  # portal/celery.py REPORTS_EXCHANGE
EVENTS_EXCHANGE = "celeryev"
ROLES = ("compute", "network", "storage")

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
USER_RE = re.compile(rf"stratus-({'|'.join(ROLES)})-{_LABEL}")
NODE_QUEUE_RE = re.compile(rf"({'|'.join(ROLES)})\.{_LABEL}")
QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")  # the control queue (STRATUS_CONTROL_QUEUE)
VHOST_RE = re.compile(r"[A-Za-z0-9/_.:-]{1,200}")


class BrokerError(RuntimeError):
    """rabbitmqctl failed (or is missing); the message says what it printed."""


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str
    topics: dict[str, tuple[str, str]]  # exchange -> (write, read) routing-key patterns


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"invalid {kind} {value!r}")
    return value


def node_user(role: str, host: str) -> str:
    """The RabbitMQ user of node ``host`` of ``role``."""
    return _check("broker user", f"stratus-{role}-{host}", USER_RE)


def reply_prefix(queue: str) -> str:
    """The prefix of the reply queues (and routing keys) of the process whose queue is ``queue``."""
    return f"reply.{queue}."


def node_queues(role: str, host: str) -> tuple[str, ...]:
    """The queues the agents of node ``host`` of ``role`` consume: its own ``<role>.<host>``, and on a
    compute node also its machine's L2 network agent's ``network.<host>``."""
    own = _check("node queue", f"{role}.{host}", NODE_QUEUE_RE)
    return (own, f"network.{host}") if role == "compute" else (own,)


def node_permissions(*, queue: str, control_queue: str, also: tuple[str, ...] = ()) -> Permissions:
    """What the agent consuming ``queue`` (``<role>.<host>``) may do in the vhost (see the module doc);
    ``also``: further queues of the same machine's agents (``node_queues``), consumed, never replied from."""
    q = "|".join(re.escape(_check("node queue", name, NODE_QUEUE_RE)) for name in (queue, *also))
    c = re.escape(_check("control queue", control_queue, QUEUE_RE))
    replies = re.escape(reply_prefix(queue)) + ".+"
    ev, rx, rp = re.escape(EVENTS_EXCHANGE), re.escape(REPLY_EXCHANGE), re.escape(REPORTS_EXCHANGE)
    return Permissions(
        configure=f"^({q}|{replies}|{ev})$",
        write=f"^({q}|{replies}|{rp}|{rx}|{ev})$",
        read=f"^({q}|{replies}|{rx})$",
        topics={REPLY_EXCHANGE: ("^" + re.escape(reply_prefix(control_queue)), "^" + re.escape(reply_prefix(queue))),
                REPORTS_EXCHANGE: (f"^{c}$", "^$")})


def password_hash(password: str, *, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), 4-byte salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


class RabbitMQCtl:
    """``rabbitmqctl`` on the broker's machine (run as root or as the rabbitmq user, which can read the
    Erlang cookie)."""

    def __init__(self, *, command: str = "rabbitmqctl", timeout: float = 60) -> None:
        self.command = command
        self.timeout = timeout

    def _run(self, *args: str, stdin: str | None = None, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        argv = [self.command, "-q", *args]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(f"{args[0]}: {exc}") from exc
        if done.returncode not in ok:
            raise BrokerError(f"{args[0]} exited {done.returncode}: {(done.stderr or done.stdout).strip()[:500]}")
        return done

    def node_user_put(self, *, vhost: str, role: str, host: str, password: str, control_queue: str) -> str:
        """Create (or reset, with a new password and the same permissions) the node's user; returns
        its name. One ``import_definitions`` call: the user with its hash, its permissions and topic
        permissions in ``vhost``."""
        _check("vhost", vhost, VHOST_RE)
        user = node_user(role, host)
        queue, *also = node_queues(role, host)
        perms = node_permissions(queue=queue, control_queue=control_queue, also=tuple(also))
        definitions = {
            "users": [{"name": user, "password_hash": password_hash(password),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
            "permissions": [{"user": user, "vhost": vhost, "configure": perms.configure, "write": perms.write,
                             "read": perms.read}],
            # the reply exchange (portal/celery_rpc.py), which a node declares passively
            "exchanges": [{"name": name, "vhost": vhost, "type": "topic", "durable": True, "auto_delete": False,
                           "internal": False, "arguments": {}} for name in (REPLY_EXCHANGE, REPORTS_EXCHANGE)],
            "topic_permissions": [{"user": user, "vhost": vhost, "exchange": exchange, "write": w, "read": r}
                                  for exchange, (w, r) in perms.topics.items()],
        }
        self._run("import_definitions", "--format", "json", stdin=json.dumps(definitions))
        return user

    def user_delete(self, user: str) -> bool:
        """Delete ``user`` (its permissions go with it; its open connections are closed by the broker
        on their next check); False when it did not exist."""
        _check("broker user", user, USER_RE)
        done = self._run("delete_user", user, ok=(0, 67, 69, 70))
        return done.returncode == 0

    def user_exists(self, user: str) -> bool:
        _check("broker user", user, USER_RE)
        done = self._run("list_users", "--formatter", "json")
        return any(row.get("user") == user for row in json.loads(done.stdout or "[]"))

    def vhost_add(self, vhost: str) -> None:
        self._run("add_vhost", _check("vhost", vhost, VHOST_RE))

    def vhost_delete(self, vhost: str) -> None:
        self._run("delete_vhost", _check("vhost", vhost, VHOST_RE), ok=(0, 65, 69, 70))

    def permissions_set(self, *, vhost: str, user: str, configure: str = ".*", write: str = ".*",
                        read: str = ".*") -> None:
        """Full permissions (by default) for an operator's user such as ``guest`` in ``vhost``."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", user):
            raise ValueError(f"invalid broker user {user!r}")
        self._run("set_permissions", "-p", _check("vhost", vhost, VHOST_RE), user, configure, write, read)
