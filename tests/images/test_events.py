"""State changes reach the owner's live channel group (on commit), for the dashboard."""
from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


async def _drain(layer, channel: str) -> list[dict]:  # type: ignore[no-untyped-def]
    events = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), 0.5)
        except TimeoutError:
            return events
        events.append(message["event"])


def test_create_upload_delete_are_published(people, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"project.{people['member'].project.id}", channel)
    api = people["member"].api
    with django_capture_on_commit_callbacks(execute=True):
        image = api.image(name="evented")
    with django_capture_on_commit_callbacks(execute=True):
        api.upload(image["id"], b"data")
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"images/{image['id']}")
    events = [e for e in async_to_sync(_drain)(layer, channel) if e["resource"] == "image"]
    assert [(e["kind"], e["data"]["status"]) for e in events] == [
        ("created", "queued"), ("state", "saving"), ("state", "active"), ("deleted", "active")]
    assert {e["id"] for e in events} == {image["id"]}
