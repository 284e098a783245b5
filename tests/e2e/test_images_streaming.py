"""Image data under the real ASGI server (uvicorn): uploads with and without Content-Length
(chunked), a client that goes away mid-upload (the image stays queued, nothing is stored), and
the server's memory while a large image goes up and comes back down (streamed, not held)."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


@pytest.fixture(scope="module")
def glance(live_cloud):
    conn = live_cloud.sdk()
    token = conn.session.get_token()
    port = urlparse(live_cloud.url).port

    def call(method: str, path: str, body=None, headers=None):  # type: ignore[no-untyped-def]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        hdrs = {"X-Auth-Token": token, **(headers or {})}
        if isinstance(body, dict):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        c.request(method, f"/image/v2/{path}", body=body, headers=hdrs,
                  encode_chunked=hdrs.get("Transfer-Encoding") == "chunked")
        response = c.getresponse()
        return response, c

    return call, token, port


def _create(call) -> str:  # type: ignore[no-untyped-def]
    response, c = call("POST", "images", {"name": "stream", "disk_format": "raw", "container_format": "bare"})
    body = json.loads(response.read())
    c.close()
    assert response.status == 201
    return body["id"]


def _show(call, image_id: str) -> dict:  # type: ignore[no-untyped-def]
    response, c = call("GET", f"images/{image_id}")
    body = json.loads(response.read())
    c.close()
    return body


def test_chunked_upload_without_content_length(glance):
    call, _, _ = glance
    image_id = _create(call)
    data = os.urandom(5 * 1024 * 1024 + 3)
    pieces = (data[i:i + 100_000] for i in range(0, len(data), 100_000))
    response, c = call("PUT", f"images/{image_id}/file", body=pieces,
                       headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    response.read()
    c.close()
    assert response.status == 204
    shown = _show(call, image_id)
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()


def test_client_gone_mid_upload_leaves_image_queued_and_store_empty(glance, live_cloud):
    call, token, port = glance
    image_id = _create(call)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall((f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"X-Auth-Token: {token}\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {64 * 1024 * 1024}\r\n\r\n").encode())
    for _ in range(8):
        sock.sendall(os.urandom(1024 * 1024))
    sock.close()  # 8 of the 64 MiB announced
    time.sleep(1.0)
    shown = _show(call, image_id)
    assert shown["status"] == "queued" and shown["size"] is None
    store = live_cloud.data_dir / "images"
    assert not store.exists() or not [p for p in store.iterdir() if p.name.startswith(image_id)]
    # and the image takes a complete upload afterwards
    response, c = call("PUT", f"images/{image_id}/file", body=b"complete",
                       headers={"Content-Type": "application/octet-stream"})
    response.read()
    c.close()
    assert response.status == 204 and _show(call, image_id)["status"] == "active"


def test_large_image_streams_both_ways_in_bounded_server_memory(glance, live_cloud, tmp_path):
    call, _, _ = glance
    pid = live_cloud.processes[0].pid
    size = 160 * 1024 * 1024
    path = tmp_path / "big.raw"
    md5 = hashlib.md5()
    with open(path, "wb") as fh:
        for _ in range(size // (1 << 20)):
            block = os.urandom(1 << 20)
            md5.update(block)
            fh.write(block)
    image_id = _create(call)
    before = _rss_kib(pid)
    with open(path, "rb") as fh:
        response, c = call("PUT", f"images/{image_id}/file", body=fh,
                           headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        response.read()
        c.close()
    assert response.status == 204
    after_upload = _rss_kib(pid)
    response, c = call("GET", f"images/{image_id}/file")
    assert response.status == 200 and response.getheader("Content-MD5") == md5.hexdigest()
    got = hashlib.md5()
    peak = after_upload
    received = 0
    while block := response.read(1 << 20):
        got.update(block)
        received += len(block)
        if received % (16 << 20) == 0:
            peak = max(peak, _rss_kib(pid))
    c.close()
    assert received == size and got.hexdigest() == md5.hexdigest()
    # 160 MiB went through; the server grew by far less than that
    assert after_upload - before < 48 * 1024, (before, after_upload)
    assert peak - before < 48 * 1024, (before, peak)
    response, c = call("DELETE", f"images/{image_id}")
    response.read()
    c.close()


def _raw_put(port: int, path: str, headers: dict[str, str], first: bytes) -> tuple[int, bytes]:
    """Announce a body, send only its first bytes, and read the answer (which must come early)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() + first)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    sock.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def test_refusals_come_before_the_body(glance):
    """409 for an image that is not queued, 401 without a token, 404 for another's image: answered
    while the client has sent 1 MiB of the 1 GiB it announced (no spooling of the body first)."""
    call, token, port = glance
    image_id = _create(call)
    response, c = call("PUT", f"images/{image_id}/file", body=b"done",
                       headers={"Content-Type": "application/octet-stream"})
    response.read()
    c.close()
    big = {"Content-Type": "application/octet-stream", "Content-Length": str(1 << 30)}
    status, answer = _raw_put(port, f"/image/v2/images/{image_id}/file", {**big, "X-Auth-Token": token},
                              os.urandom(1 << 20))
    assert status == 409 and b"x-openstack-request-id" in answer.lower()
    status, _ = _raw_put(port, f"/image/v2/images/{image_id}/file", big, os.urandom(1 << 20))
    assert status == 401
    status, _ = _raw_put(port, "/image/v2/images/00000000-0000-0000-0000-000000000000/file",
                         {**big, "X-Auth-Token": token}, os.urandom(1 << 20))
    assert status == 404
