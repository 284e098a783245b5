"""python manage.py node_token create|list|revoke: the node enrolment tokens an operator hands to a
new machine (``make node CONTROLLER=... TOKEN=... ROLE=...``). The token is printed once, at its
creation; only its hash is kept (apps/compute/services/node_enrolment.py)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.compute.models import NODE_ROLES
from apps.compute.selectors import node_enrolment as enrol_selectors
from apps.compute.services import node_enrolment
from apps.core.errors import StratusError


class Command(BaseCommand):
    help = ("Node enrolment tokens: `create --role compute --name node2 [--expires-hours 24]` prints a token "
            "once (good for one enrolment before it expires); `list` shows them (never the token); "
            "`revoke ID` refuses it from now on.")

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="make a token for one node of one role")
        create.add_argument("--role", required=True, choices=NODE_ROLES)
        create.add_argument("--name", required=True, help="the node's name (its queue is <role>.<name>)")
        create.add_argument("--expires-hours", type=float, default=24.0)
        sub.add_parser("list", help="the tokens and their state")
        revoke = sub.add_parser("revoke", help="refuse a token from now on")
        revoke.add_argument("token_id")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            getattr(self, f"do_{opts['action']}")(opts)
        except StratusError as exc:
            raise CommandError(exc.message) from exc

    def do_create(self, opts: dict[str, Any]) -> None:
        issued = node_enrolment.node_token_create(actor=None, role=opts["role"], name=opts["name"],
                                                  expires_hours=opts["expires_hours"], created_by="manage.py")
        record = issued.record
        self.stdout.write(f"token id: {record.id}\n"
                          f"{record.role} node {record.name}, good once until {record.expires_at:%Y-%m-%d %H:%M} UTC\n"
                          f"token (shown only now): {issued.token}\n")

    def do_list(self, opts: dict[str, Any]) -> None:
        now = timezone.now()
        rows = list(enrol_selectors.node_token_list(actor=None))
        if not rows:
            self.stdout.write("no node tokens\n")
            return
        self.stdout.write(f"{'id':36}  {'role':8} {'name':20} {'state':8} expires\n")
        for t in rows:
            state = ("revoked" if t.revoked_at else "used" if t.used_at else
                     "expired" if t.expires_at <= now else "usable")
            self.stdout.write(f"{t.id:36}  {t.role:8} {t.name:20} {state:8} {t.expires_at:%Y-%m-%d %H:%M}\n")

    def do_revoke(self, opts: dict[str, Any]) -> None:
        record = node_enrolment.node_token_revoke(actor=None, token_id=opts["token_id"])
        self.stdout.write(f"revoked {record.id} ({record.role} node {record.name})\n")
