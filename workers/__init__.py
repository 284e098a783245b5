"""Celery tasks (one module per component) and the drivers they call.

`portal.celery` autodiscovers this package itself (``related_name=None``), so every task module
is imported here. Task modules must stay importable before Django is set up: they import
services inside the task body, never at module level.
"""
from workers import (
    agent,
    compute,
    compute_console,
    compute_control,
    compute_volumes,
    identity,
    images,
    network,
    network_control,
    objects,
    orchestration,
    reports,
    storage,
    storage_control,
    taskrecord,
    telemetry,
)

__all__ = ["agent", "compute", "compute_console", "compute_control", "compute_volumes", "identity", "images", "network",
           "network_control", "objects", "orchestration", "reports", "storage", "storage_control", "taskrecord",
           "telemetry"]
