"""Object storage's usage for telemetry: every account's bytes, objects and containers, read from the
containers' counters (base plus pending, exact) and recorded as the swift_account's lifecycle by the
beat (workers.objects.usage), rather than on every PUT: a PUT stays as cheap as it is, and usage
counts bytes at the beat's resolution (STRATUS_OBJECT_USAGE_SECONDS)."""
from __future__ import annotations

import datetime as dt

from apps.objects import selectors
from apps.telemetry import services as telemetry_services


def objects_usage_record(*, at: dt.datetime | None = None) -> int:
    """Record every account's totals now (an account whose containers are all gone: zeros); returns
    how many accounts."""
    totals = selectors.account_totals()
    telemetry_services.lifecycle_accounts(totals={t.project_id: (t.bytes_used, t.object_count, t.container_count)
                                                  for t in totals}, at=at)
    return len(totals)
