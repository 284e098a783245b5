"""The ASGI path for image data, in-process: requests it does not take go to the app behind it;
a Host outside ALLOWED_HOSTS, a missing token and a wrong media type are refused before the body."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from apps.images.asgi import StreamedImageData

pytestmark = pytest.mark.django_db(transaction=True)


async def _behind(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"behind"})


def _scope(method: str, path: str, headers: dict[str, str]) -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


async def _call(scope: dict, body: bytes = b"") -> tuple[int, bytes]:
    app = ApplicationCommunicator(StreamedImageData(_behind), scope)
    await app.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await app.receive_output(5)
    payload = await app.receive_output(5)
    return start["status"], payload.get("body", b"")


def test_other_requests_pass_through():
    call = async_to_sync(_call)
    assert call(_scope("GET", "/image/v2/images/x/file", {"host": "localhost"}))[0] == 299
    assert call(_scope("PUT", "/image/v2/images/x", {"host": "localhost"}))[0] == 299


def test_refusals(settings, people):
    call = async_to_sync(_call)
    settings.ALLOWED_HOSTS = ["good.example"]
    path = "/image/v2/images/00000000-0000-0000-0000-000000000000/file"
    status, body = call(_scope("PUT", path, {"host": "evil.example"}), b"x")
    assert status == 400 and b"Invalid HTTP_HOST" in body
    status, body = call(_scope("PUT", path, {"host": "good.example"}), b"x")
    assert status == 401 and b'"code": 401' in body
    token = people["member"].api.token
    status, body = call(_scope("PUT", path, {"host": "good.example", "x-auth-token": token,
                                             "content-type": "application/json"}), b"x")
    assert status == 415
    status, body = call(_scope("PUT", path, {"host": "good.example", "x-auth-token": token,
                                             "content-type": "application/octet-stream"}), b"x")
    assert status == 404


def test_upload_through_the_asgi_path(people):
    from apps.images.models import Image

    call = async_to_sync(_call)
    api = people["member"].api
    image = api.image(name="asgi")
    status, _ = call(_scope("PUT", f"/image/v2/images/{image['id']}/file",
                            {"host": "localhost", "x-auth-token": api.token, "content-type": "application/octet-stream",
                             "content-length": "5"}), b"hello")
    assert status == 204
    row = Image.objects.get(pk=image["id"])
    assert row.status == "active" and row.size == 5


def test_a_download_whose_client_leaves_mid_read_closes_its_stream_after_the_read() -> None:
    """The client goes away while a chunk is being read in its thread (the response is cancelled): the
    stream is closed once that read returns, not while it runs (a generator closed while it runs raises
    "generator already executing", seen on a node's image download cut short)."""
    import asyncio
    import threading

    from apps.images.api.views import _async_chunks

    reading, release = threading.Event(), threading.Event()
    closed: list[str] = []

    def chunks():  # a store's reader: each read may block on the disk or the network
        try:
            yield b"first"
            reading.set()
            release.wait(10)
            yield b"second"
        finally:
            closed.append("closed")

    async def client_leaves() -> None:
        stream = _async_chunks(chunks())
        assert await stream.__anext__() == b"first"
        pending = asyncio.ensure_future(stream.__anext__())
        await asyncio.get_running_loop().run_in_executor(None, reading.wait, 10)
        pending.cancel()  # the client went away during the second read
        try:
            await pending
        except asyncio.CancelledError:
            pass
        await stream.aclose()
        assert closed == []  # the read still runs: not closed under it
        release.set()
        for _ in range(100):
            if closed:
                break
            await asyncio.sleep(0.02)

    asyncio.run(client_leaves())
    assert closed == ["closed"]
