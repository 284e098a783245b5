"""The compute node's volume tasks: plug a Cinder volume's file into an instance's domain and take it
out again. They run on the node's queue ``compute.<host>`` like ``workers.compute``, under the same
per-instance lock (a volume change waits for a spawn, a power action or a destroy of the instance).

The node reads no database (issue 16, ``workers/control_bus.py``). Each task: asks the control tier
for the mapping as it is now (``workers.compute_control.server_volume_mapping``: its status, device
and the instance's host; asked, not sent with the task, so that a late or redelivered task sees
today's mapping) and, to attach, for the volume's connection (``server_volume_connecting``) → the
libvirt driver's ``attach_disk``/``detach_disk`` (the test driver has no hot-plug: the disk goes into
the persistent definition; qemu plugs it live and into the definition) → reports
``server_volume_attached`` / ``server_volume_attach_failed`` / ``server_volume_detached`` /
``server_volume_detach_failed`` to the control tier, whose services check the instance is on the
reporting host.

Redelivery is harmless: a mapping no longer in the status the task expects is left alone, the
driver's attach of the same file at the same target is a no-op, and a detach of a disk the domain no
longer has is a success.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from celery import shared_task

from workers import compute
from workers.compute import _ask, _details, _message, _report, instance_lock
from workers.drivers.hypervisor.libvirt import DiskSpec

logger = logging.getLogger(__name__)

ATTACHING, DETACHING = "attaching", "detaching"  # apps.compute.states.BDM_ATTACHING / BDM_DETACHING


@contextlib.contextmanager
def _pending(instance_id: str, volume_id: str, status: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Under the instance's lock: the mapping as the control tier has it now and the host this
    process serves for it, when the mapping is in ``status``; else ``"gone"`` (no such instance or
    mapping) or ``"skipped"`` (done already or given up, or the instance is on another host) as the
    third item."""
    with instance_lock(instance_id):
        served = compute.node_host()
        mapping = _ask("server_volume_mapping", instance_id=instance_id, volume_id=volume_id, host=served or None)
        host = served or str((mapping or {}).get("host") or "")
        if mapping is None:
            yield {}, "", "gone"
        elif mapping["status"] != status or mapping.get("host") != host:
            yield mapping, "", "skipped"
        else:
            yield mapping, host, ""


def _target(device_name: str) -> str:
    return device_name.rsplit("/", 1)[-1]


@shared_task(name="workers.compute_volumes.attach_volume")
def attach_volume(instance_id: str, volume_id: str, request_id: str = "") -> str:
    """Attach the volume's qcow2 file at the mapping's device (serial = the volume id). Returns
    "attached", "failed", "skipped" (the mapping is not attaching: done already or given up) or
    "gone" (no such instance or mapping)."""
    with _pending(instance_id, volume_id, ATTACHING) as (mapping, host, outcome):
        if outcome:
            return outcome
        started = time.monotonic()
        try:
            connection = _ask("server_volume_connecting", instance_id=instance_id, volume_id=volume_id, host=host)
            if connection is None:
                return "skipped"
            data = connection["data"]
            change = compute.node_driver().attach_disk(instance_id, DiskSpec(
                path=data["path"], target=_target(mapping["device_name"]), format=data.get("format", "qcow2"),
                serial=volume_id), exist_ok=True)
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("attach of volume %s to %s on %s failed: %s", volume_id, instance_id, host, exc)
            _report("server_volume_attach_failed", instance_id=instance_id, volume_id=volume_id, host=host,
                    message=_message(exc), details=_details(), request_id=request_id)
            return "failed"
        logger.info("attached volume %s to %s at %s on %s (%s) in %.3f s", volume_id, instance_id, change.target,
                    host, change.mode, time.monotonic() - started)
        _report("server_volume_attached", instance_id=instance_id, volume_id=volume_id, host=host,
                request_id=request_id)
        return "attached"


@shared_task(name="workers.compute_volumes.detach_volume")
def detach_volume(instance_id: str, volume_id: str, request_id: str = "") -> str:
    """Take the disk at the mapping's device out of the domain (live where the hypervisor can).
    Returns "detached", "failed", "skipped" or "gone"."""
    with _pending(instance_id, volume_id, DETACHING) as (mapping, host, outcome):
        if outcome:
            return outcome
        try:
            change = compute.node_driver().detach_disk(instance_id, _target(mapping["device_name"]))
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the control tier
            logger.warning("detach of volume %s from %s on %s failed: %s", volume_id, instance_id, host, exc)
            _report("server_volume_detach_failed", instance_id=instance_id, volume_id=volume_id, host=host,
                    message=_message(exc), details=_details(), request_id=request_id)
            return "failed"
        logger.info("detached volume %s from %s on %s (%s)", volume_id, instance_id, host,
                    change.mode if change is not None else "not in the domain")
        _report("server_volume_detached", instance_id=instance_id, volume_id=volume_id, host=host,
                request_id=request_id)
        return "detached"
