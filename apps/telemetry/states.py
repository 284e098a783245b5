"""Telemetry's state vocabularies: a report run's status."""
from __future__ import annotations

REPORT_RUN_STATUSES = ("pending", "running", "succeeded", "failed")
REPORT_RUN_CHOICES = tuple((status, status.capitalize()) for status in REPORT_RUN_STATUSES)
