"""python manage.py node_enrol --controller URL --role ROLE [--name NAME]: on a new machine, exchange
a node enrolment token (from STRATUS_NODE_TOKEN, or --token) at the controller's
``POST /v1/nodes/enrol`` and write what it gives to a shell environment file (DATA_DIR/node.env, mode
0600; the controller's CA, when it sends one, beside it), which ``make node`` sources before
``manage.py up --role ROLE``. This command touches no database.

The file holds no DATABASE_URL: the controller never hands database credentials out. Until the
rest of issue 16 (node tasks that carry specs and report to the control queue), a node's workers
still need DATABASE_URL in their environment (the same database as the controller's)."""
from __future__ import annotations

import json
import os
import shlex
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.compute.models import NODE_ROLES


def local_address(controller: str) -> str:
    """The address of this machine that reaches ``controller`` (no packet is sent)."""
    parsed = urllib.parse.urlsplit(controller)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family[0], socket.SOCK_DGRAM) as s:
            s.connect(family[4])
            return s.getsockname()[0]
    except OSError:
        return ""


def env_file_text(environment: dict[str, str]) -> str:
    lines = ["# written by `manage.py node_enrol` (make node); source it before `manage.py up --role ...`"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in sorted(environment.items())]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Command(BaseCommand):
    help = ("Exchange a node enrolment token (STRATUS_NODE_TOKEN or --token) at the controller and write the "
            "node's settings to DATA_DIR/node.env. The nodes still need DATABASE_URL until issue 16's refactor.")
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--controller", required=True, help="the controller's URL (http[s]://host:port)")
        parser.add_argument("--role", required=True, choices=NODE_ROLES)
        parser.add_argument("--name", default="", help="this node's name (default: the token's)")
        parser.add_argument("--address", default="", help="this node's address (default: the one that reaches "
                                                          "the controller)")
        parser.add_argument("--token", default="", help="prefer STRATUS_NODE_TOKEN: argv is visible to every user")
        parser.add_argument("--env-file", default="", help="default: DATA_DIR/node.env")
        parser.add_argument("--cafile", default="", help="a CA to trust for an https controller")

    def handle(self, *args: Any, **opts: Any) -> None:
        token = opts["token"] or settings.STRATUS_NODE_TOKEN
        if not token:
            raise CommandError("no token: set STRATUS_NODE_TOKEN (or --token)")
        controller = opts["controller"].rstrip("/")
        if urllib.parse.urlsplit(controller).scheme not in ("http", "https"):
            raise CommandError(f"--controller {controller!r}: an http:// or https:// URL expected")
        body: dict[str, str] = {"token": token, "role": opts["role"],
                                "address": opts["address"] or local_address(controller)}
        if opts["name"]:
            body["name"] = opts["name"]
        request = urllib.request.Request(f"{controller}/v1/nodes/enrol", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        context = ssl.create_default_context(cafile=opts["cafile"] or None) if controller.startswith("https") else None
        try:
            with urllib.request.urlopen(request, timeout=30, context=context) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise CommandError(f"the controller refused the enrolment ({exc.code}): {message}") from None
        except OSError as exc:
            raise CommandError(f"cannot reach the controller at {controller}: {exc}") from None

        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        env_file = Path(opts["env_file"]) if opts["env_file"] else data_dir / "node.env"
        environment = dict(answer["environment"])
        if answer.get("ca"):
            ca = env_file.with_name("controller-ca.pem")
            ca.write_text(answer["ca"])
            environment["STRATUS_CONTROLLER_CA"] = str(ca)
        write_private(env_file, env_file_text(environment))
        node = answer["node"]
        self.stdout.write(f"enrolled as {node['role']} node {node['name']} (queue {answer['queue']}); "
                          f"settings in {env_file}\n"
                          f"controller {answer['controller_url']}, CA: {'given' if answer.get('ca') else 'none'}\n")
        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            self.stdout.write("note: DATABASE_URL is not set here; this node's workers still need it (the "
                              "controller's PostgreSQL) until the rest of issue 16\n")
