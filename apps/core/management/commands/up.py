"""python manage.py up [--role all|controller|network|compute|storage]: the whole embedded cloud in
the foreground (what `make run` starts), or one machine's part of it (``--role``, portal/launcher.py).

Redis, migrations, bootstrap, the control worker, this node's network and storage agents, the compute
nodes, beat and the web server, until Ctrl-C; the launcher is ``portal/launcher.py`` (it composes the
children's environment, which only portal/ reads).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.launcher import ROLES, Launcher


class Command(BaseCommand):
    help = ("Run the whole embedded cloud in the foreground: Redis, migrations, bootstrap, web, worker, beat "
            "(--role all, the default), or one machine's part of it: --role controller (web, control worker, "
            "beat, Redis; no node agents), or --role compute|network|storage (only that node's agent on its "
            "queue <role>.<STRATUS_HOST>, with the broker in CELERY_BROKER_URL, as `make node` sets it). Node "
            "agents run with no database: they report to the control queue.")
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--role", choices=ROLES, default="all",
                            help="all (default: everything, as make run), controller, or one node's agent: "
                                 "compute, network, storage (none needs a database)")
        parser.add_argument("--port", type=int, default=settings.STRATUS_PORT)
        parser.add_argument("--bind", default=settings.STRATUS_BIND)
        parser.add_argument("--web-workers", type=int, default=settings.STRATUS_WEB_WORKERS)
        parser.add_argument("--worker-concurrency", type=int,
                            default=settings.STRATUS_WORKER_CONCURRENCY)
        parser.add_argument("--logs-to-terminal", action="store_true",
                            help="let the children write to this terminal instead of DATA_DIR/logs/*.log")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def handle(self, *args: Any, **opts: Any) -> None:
        Launcher(self.say).run(opts)
