"""The instance action log (Nova's ``os-instance-actions``): every change asked of a server is an
action (who, which request, when) with its events (what ran where, its result and traceback), and a
failure leaves an instance fault. One home for every compute service that records them: the server
services, the volume attachments (``volumes.py``) and boot from volume."""
from __future__ import annotations

from django.utils import timezone

from apps.compute.models import Instance, InstanceAction, InstanceActionEvent, InstanceFault

FAULT_MESSAGE_MAX = 255


def action_start(instance: Instance, *, record: str, request_id: str, user_id: str | None,
                 project_id: str | None) -> InstanceAction:
    return InstanceAction.objects.create(instance=instance, action=record, request_id=request_id or "",
                                         user_id=user_id or "", project_id=project_id or "",
                                         start_time=timezone.now())


def event_start(action: InstanceAction, event: str, host: str | None) -> InstanceActionEvent:
    return InstanceActionEvent.objects.create(action=action, event=event, start_time=timezone.now(),
                                              host=host or "")


def action_find(instance: Instance, request_id: str, record: str | None = None) -> InstanceAction | None:
    qs = InstanceAction.objects.filter(instance=instance)
    if request_id:
        found = qs.filter(request_id=request_id).order_by("-start_time", "-id").first()
        if found is not None:
            return found
    if record:
        qs = qs.filter(action=record)
    return qs.order_by("-start_time", "-id").first()


def event_finish(instance: Instance, *, request_id: str, record: str, event: str, ok: bool, host: str = "",
                 traceback: str | None = None, finish_action: bool = True) -> None:
    action = action_find(instance, request_id, record)
    if action is None:
        return
    now = timezone.now()
    row = action.events.filter(event=event, finish_time__isnull=True).order_by("-start_time", "-id").first()
    if row is None:
        row = InstanceActionEvent(action=action, event=event, start_time=now, host=host)
    row.finish_time = now
    row.result = "Success" if ok else "Error"
    row.traceback = traceback if not ok else None
    row.host = host or row.host
    row.save()
    fields = []
    if not ok:
        action.message = "Error"
        fields.append("message")
    if finish_action:
        action.finish_time = now
        fields.append("finish_time")
    if fields:
        action.save(update_fields=[*fields, "updated_at"])


def fault_record(instance: Instance, *, message: str, details: str = "", code: int = 500, host: str = "") -> None:
    InstanceFault.objects.create(instance=instance, code=code, message=message[:FAULT_MESSAGE_MAX],
                                 details=details or "", host=host or "")
