"""Live events leave through the process's publisher thread (apps/core/events.py): a commit hands
them over and goes on without waiting for the channel layer; they arrive in the order the process
committed them; ``flush`` (and a process's exit) waits until they are sent."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core import events

ROOT = Path(__file__).resolve().parents[2]


async def _receive(layer: Any, channel: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    found = []
    while len(found) < count:
        found.append(await asyncio.wait_for(layer.receive(channel), timeout))
    return found


def _listen(group: str) -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


@pytest.mark.django_db(transaction=True)
def test_a_commit_does_not_wait_for_the_channel_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = get_channel_layer()
    sent: list[tuple[str, dict[str, Any]]] = []

    async def slow_send(group: str, message: dict[str, Any]) -> None:
        await asyncio.sleep(0.3)  # a slow or loaded Redis
        sent.append((group, message))

    assert events.flush(5)
    monkeypatch.setattr(layer, "group_send", slow_send)
    started = time.monotonic()
    with transaction.atomic():
        events.publish(project_id="p1", kind="updated", resource="thing", resource_id="1")
        events.publish(project_id="p1", kind="updated", resource="thing", resource_id="2")
    events.access_changed(user_id="u1")
    took = time.monotonic() - started
    assert took < 0.2, took  # three sends of 0.3 s each are not the commit's
    assert sent == []
    assert events.flush(5)
    assert [(g, m["type"], m.get("event", {}).get("id")) for g, m in sent] == [
        ("project.p1", "stratus.event", "1"), ("project.p1", "stratus.event", "2"), ("user.u1", "access.changed", None)]


@pytest.mark.django_db(transaction=True)
def test_events_arrive_in_commit_order() -> None:
    group = f"project.order-{os.getpid()}"
    layer, channel = _listen(group)
    for i in range(40):
        with transaction.atomic():
            events.publish(project_id=group.removeprefix("project."), kind="updated", resource="thing",
                           resource_id=str(i))
    events.send_now(group, {"id": "last"})
    received = async_to_sync(_receive)(layer, channel, 41)
    assert [m["event"]["id"] for m in received] == [str(i) for i in range(40)] + ["last"]


def test_a_process_that_exits_still_sends_what_it_committed() -> None:
    group = f"project.exit-{os.getpid()}"
    layer, channel = _listen(group)
    script = ("import django; django.setup()\n"
              "from apps.core import events\n"
              f"events.send_now({group!r}, {{'id': 'bye'}})\n")  # and exit at once
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    received = async_to_sync(_receive)(layer, channel, 1)
    assert received[0]["event"] == {"id": "bye"}
