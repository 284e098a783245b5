"""python manage.py up: the whole embedded cloud in the foreground (what `make run` starts).

Redis, migrations, bootstrap, the control worker, this node's network and storage agents, the compute
nodes, beat and the web server, until Ctrl-C; the launcher is ``portal/launcher.py`` (it composes the
children's environment, which only portal/ reads).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.launcher import Launcher


class Command(BaseCommand):
    help = "Run the whole embedded cloud in the foreground: Redis, migrations, bootstrap, web, worker, beat."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: Any) -> None:
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
