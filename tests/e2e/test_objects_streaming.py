"""Swift object data under the real ASGI server (uvicorn): a 160 MiB object goes up and comes back down
byte for byte while the server's memory stays far below its size (streamed in chunks both ways)."""
from __future__ import annotations

import hashlib
import http.client
import os
import secrets
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def test_large_object_streams_both_ways_in_bounded_server_memory(live_cloud, tmp_path):
    conn = live_cloud.sdk()
    token = conn.session.get_token()
    account = f"/object-store/v1/AUTH_{conn.current_project_id}"
    port = urlparse(live_cloud.url).port
    pid = live_cloud.processes[0].pid

    def call(method: str, path: str, body=None, headers=None):  # type: ignore[no-untyped-def]
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request(method, account + path, body=body, headers={"X-Auth-Token": token, **(headers or {})})
        return c.getresponse(), c

    container = f"stream-{secrets.token_hex(3)}"
    response, c = call("PUT", f"/{container}", headers={"Content-Length": "0"})
    response.read()
    c.close()
    assert response.status == 201
    size = 160 * 1024 * 1024
    path = tmp_path / "big.bin"
    md5 = hashlib.md5()
    with open(path, "wb") as fh:
        for _ in range(size // (1 << 20)):
            block = os.urandom(1 << 20)
            md5.update(block)
            fh.write(block)
    before = _rss_kib(pid)
    with open(path, "rb") as fh:
        response, c = call("PUT", f"/{container}/big", body=fh,
                           headers={"Content-Length": str(size), "Etag": md5.hexdigest()})
        response.read()
        c.close()
    assert response.status == 201 and response.getheader("Etag") == md5.hexdigest()
    after_upload = _rss_kib(pid)
    response, c = call("GET", f"/{container}/big")
    assert response.status == 200 and int(response.getheader("Content-Length")) == size
    got, received, peak = hashlib.md5(), 0, after_upload
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
    print(f"\nswift 160 MiB: server RSS {before // 1024} MiB before, {after_upload // 1024} after the PUT, "
          f"peak {peak // 1024} during the GET")
    for path_ in (f"/{container}/big", f"/{container}"):
        response, c = call("DELETE", path_)
        response.read()
        c.close()
        assert response.status == 204
