"""python manage.py telemetry_usage --start 2026-12-01 --end 2026-12-02 [--project ID]: the usage
summary (apps.telemetry.selectors.usage_summary) of every project, or of one, as JSON, for an
operator (it reads the database as an admin would)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import StratusError
from apps.identity.models import User
from apps.identity.policy import Actor
from apps.telemetry import selectors


def _moment(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"not a date or time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


class Command(BaseCommand):
    help = "Print the usage summary of a period (every project, or --project) as JSON."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--start", required=True, help="ISO 8601 date or time (UTC unless it says)")
        parser.add_argument("--end", required=True, help="ISO 8601 date or time (UTC unless it says)")
        parser.add_argument("--project", default=None, help="one project's id")

    def handle(self, *args: Any, **opts: Any) -> None:
        operator = Actor(user=User(id="telemetry-usage"), roles=frozenset({"admin"}), system=True)
        try:
            summary = selectors.usage_summary(caller=operator, start=_moment(opts["start"]), end=_moment(opts["end"]),
                                              project_id=opts["project"])
        except StratusError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(dataclasses.asdict(summary), default=_plain, indent=1))
