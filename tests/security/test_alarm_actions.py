"""Alarm actions are URLs a tenant gives and the control tier calls (lib/webhook.py's policy): only
http/https/log/mailto; never the control tier's own loopback, the metadata service's link-local address,
unspecified, multicast or reserved addresses (in any spelling: IPv4-mapped IPv6, decimal, hex, short
forms); private ranges and loopback only when the operator sets STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE; a
host name is checked on every address it resolves to when the POST is made, the connection goes to the
checked address, and a redirect is not followed."""
from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from lib import webhook
from tests.api_client import SeededCloud

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://0.0.0.0:8000/", "http://[::]/",
    "http://224.0.0.1/", "http://240.0.0.1/", "http://[::ffff:169.254.169.254]/", "http://0251.0376.0251.0376/",
    "http://2852039166/", "http://255.255.255.255/",
]
PRIVATE = [
    "http://127.0.0.1:6379/", "http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/", "http://[::1]:5432/",
    "http://[::ffff:127.0.0.1]/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/",
    "http://100.64.0.1/", "http://[fd00::1]/", "http://localhost:8000/", "http://a.localhost/",
]
BAD = ["file:///etc/passwd", "gopher://example.com/", "ftp://example.com/", "trust+http://example.com/",
       "zaqar://?queue_name=x", "javascript:alert(1)", "http:///nohost", "http://exa mple.com/", "",
       "http://example.com:0/", "http://example.com\x00.evil/", "http://example.com:99999/"]


@pytest.mark.parametrize("url", ALWAYS_REFUSED + PRIVATE + BAD)
def test_refused_by_default(url: str) -> None:
    with pytest.raises(webhook.Refused):
        webhook.check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ALWAYS_REFUSED + BAD)
def test_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(webhook.Refused):
        webhook.check_url(url, allow_private=True)


@pytest.mark.parametrize("url", [u for u in PRIVATE if "localhost" not in u])
def test_private_allowed_by_the_operator(url: str) -> None:
    webhook.check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["https://hooks.example.com/a?b=c", "http://93.184.215.14:8080/x", "log://",
                                 "mailto:ops@example.com", "HTTPS://Example.COM/"])
def test_accepted(url: str) -> None:
    webhook.check_url(url, allow_private=False)


@pytest.mark.django_db
@pytest.mark.parametrize("allow", [False, True])
def test_the_api_refuses_them_and_keeps_nothing(cloud: SeededCloud, settings, allow: bool) -> None:
    from apps.telemetry.models import Alarm

    settings.STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE = allow
    rid = cloud.member.to("metric").post("/metric/v1/resource/generic", {"id": "sec-res", "metrics": {
        "cpu_util": {}}}).json()["id"]
    base = {"name": "ssrf", "type": "gnocchi_resources_threshold", "gnocchi_resources_threshold_rule": {
        "metric": "cpu_util", "resource_type": "generic", "resource_id": rid, "threshold": 1,
        "aggregation_method": "mean"}}
    client = cloud.member.to("alarming")
    for field in ("alarm_actions", "ok_actions", "insufficient_data_actions"):
        for url in ("http://169.254.169.254/latest/meta-data/iam/", "http://[::ffff:a9fe:a9fe]/", "file:///etc/shadow"):
            response = client.post("alarms", {**base, field: [url]})
            assert response.status_code == 400, (url, response.content)
            assert "error_message" in response.json()
    loopback = client.post("alarms", {**base, "alarm_actions": ["http://127.0.0.1:6379/"]})
    assert loopback.status_code == (201 if allow else 400), loopback.content
    assert Alarm.objects.count() == (1 if allow else 0)
    if allow:  # and an update to a metadata address is refused too, the alarm unchanged
        aid = loopback.json()["alarm_id"]
        changed = client.put(f"alarms/{aid}", {**loopback.json(), "ok_actions": ["http://169.254.169.254/"]})
        assert changed.status_code == 400
        assert Alarm.objects.get(pk=aid).ok_actions == []


class _Receiver(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []
    location = "http://169.254.169.254/latest/meta-data/"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits.append(f"{self.headers['Host']} {self.path}")
        self.send_response(302)
        self.send_header("Location", type(self).location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[str]]]:
    _Receiver.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Receiver.hits
    server.shutdown()


def test_a_name_is_checked_on_what_it_resolves_to(receiver: tuple[int, list[str]]) -> None:
    port, hits = receiver
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, port)}
    if not all(a.startswith("127.") or a == "::1" for a in addresses):
        pytest.skip(f"{name} does not resolve to loopback here ({addresses})")
    webhook.check_url(f"http://{name}:{port}/", allow_private=False)  # a name passes the static check ...
    with pytest.raises(webhook.Refused, match="resolves to"):   # ... and is refused when sending
        webhook.post_json(f"http://{name}:{port}/", {"a": 1}, allow_private=False)
    assert hits == []
    assert webhook.post_json(f"http://{name}:{port}/x", {"a": 1}, allow_private=True) == 302
    assert hits == [f"{name}:{port} /x"]  # the Host header is the URL's, the connection the checked address


def test_redirects_are_not_followed(receiver: tuple[int, list[str]]) -> None:
    port, hits = receiver
    assert webhook.post_json(f"http://127.0.0.1:{port}/hook", {"a": 1}, allow_private=True) == 302
    assert hits == [f"127.0.0.1:{port} /hook"]  # one request, to the receiver; the Location is not visited


def test_the_task_gives_up_at_once_on_a_refused_url() -> None:
    from workers.telemetry import alarm_notify

    result = alarm_notify.apply(kwargs={"action": "http://169.254.169.254/", "payload": {"alarm_id": "x"}})
    assert result.successful() and result.result.startswith("error:") and "not an address" in result.result
