"""Issue 14's "done when" for alarms: an alarm on an instance's cpu_util, with measures posted through the
Gnocchi API, fires its webhook to a local HTTP receiver run by the test, evaluated by the real Celery beat
(workers.telemetry.evaluate_alarms every 2 s) in a real Celery worker on a control queue of its own, the
webhook sent as its own task (the receiver's first answer is a 503: the task tries again); the alarm's
state and history are right; then it recovers to ok and the ok action fires."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_client import SeededCloud
from tests.conftest import ROOT, _wait_log, database_url
from tests.leftovers import stop

pytestmark = pytest.mark.django_db(transaction=True)


class Receiver(http.server.BaseHTTPRequestHandler):
    calls: list[tuple[float, str, int, dict]] = []
    fail_first: set[str] = set()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        status = 200
        if self.path in type(self).fail_first:
            type(self).fail_first.discard(self.path)
            status = 503
        type(self).calls.append((time.monotonic(), self.path, status, body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.calls, Receiver.fail_first = [], {"/alarm"}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def control_tier(transactional_db: None) -> Iterator[str]:
    """A real worker and a real beat on a control queue of their own, evaluating every 2 s."""
    from django.db import connection

    queue = f"control-alarms-{secrets.token_hex(4)}"
    tmp = Path(tempfile.mkdtemp(prefix="stratus-alarms-"))
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_CONTROL_QUEUE=queue, STRATUS_ALARM_EVALUATION_SECONDS="2",
               STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE="1", STRATUS_ALARM_NOTIFY_RETRIES="3")
    procs = []
    try:
        for name, args, ready in (
                ("worker", ["worker", "-Q", queue, "--pool=solo", "-n", f"{queue}@%h", "--without-gossip",
                            "--without-mingle", "--without-heartbeat"], " ready."),
                ("beat", ["beat", "--schedule", str(tmp / "beat-schedule")], "beat: Starting")):
            log = tmp / f"{name}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "portal", *args, "--loglevel=INFO"],
                                        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            procs.append(proc)
            _wait_log(log, ready, proc)
        yield str(tmp)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float, logs: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    tail = "".join(p.read_text(errors="replace")[-3000:] for p in Path(logs).glob("*.log"))
    raise AssertionError(f"no {what} within {timeout}s:\n{tail}")


def test_cpu_util_alarm_fires_a_webhook_and_recovers(cloud: SeededCloud, settings, receiver: str,
                                                     control_tier: str) -> None:
    settings.STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE = True  # (this process's API checks the actions too)
    gnocchi, aodh = cloud.member.to("metric"), cloud.member.to("alarming")
    rid = str(uuid.uuid4())
    made = gnocchi.post("resource/instance", {"id": rid, "flavor_id": "1", "host": "n1", "display_name": "busy",
                                              "metrics": {"cpu_util": {"archive_policy_name": "medium"}}})
    assert made.status_code == 201, made.content
    alarm = aodh.post("alarms", {
        "name": "cpu-busy", "type": "gnocchi_resources_threshold", "severity": "critical",
        "gnocchi_resources_threshold_rule": {"metric": "cpu_util", "resource_type": "instance", "resource_id": rid,
                                             "threshold": 50, "comparison_operator": "gt", "granularity": 60,
                                             "aggregation_method": "mean", "evaluation_periods": 1},
        "alarm_actions": [f"{receiver}/alarm"], "ok_actions": [f"{receiver}/ok"]})
    assert alarm.status_code == 201, alarm.content
    aid = alarm.json()["alarm_id"]

    def post(*values: float) -> float:
        now = dt.datetime.now(dt.UTC)
        response = gnocchi.post(f"resource/instance/{rid}/metric/cpu_util/measures",
                                [{"timestamp": now.isoformat(), "value": v} for v in values])
        assert response.status_code == 202, response.content
        return time.monotonic()

    def delivered(path: str) -> list:
        return [c for c in Receiver.calls if c[1] == path and c[2] == 200]

    busy_at = post(93.0)
    (fired_at, _, _, payload), = wait_for("alarm webhook", lambda: delivered("/alarm"), 60, control_tier)
    assert [c[2] for c in Receiver.calls if c[1] == "/alarm"] == [503, 200]  # the task tried again
    assert payload["alarm_id"] == aid and payload["alarm_name"] == "cpu-busy" and payload["severity"] == "critical"
    assert (payload["previous"], payload["current"]) == ("insufficient data", "alarm")
    assert payload["reason"] == "Transition to alarm due to 1 samples outside threshold, most recent: 93.0"
    assert payload["reason_data"] == {"type": "threshold", "disposition": "outside", "count": 1, "most_recent": 93.0}
    assert aodh.get(f"alarms/{aid}/state").json() == "alarm"
    history = aodh.get(f"alarms/{aid}/history").json()
    assert [h["type"] for h in history] == ["state transition", "creation"]
    assert json.loads(history[0]["detail"]) == {"state": "alarm", "transition_reason": payload["reason"]}
    assert history[0]["severity"] == "critical"

    calm_at = post(*[5.0] * 19)  # the minute's mean falls to (93 + 19 * 5) / 20 = 9.4 (or a new minute's 5)
    (ok_at, _, _, ok), = wait_for("ok webhook", lambda: delivered("/ok"), 60, control_tier)
    assert (ok["previous"], ok["current"]) == ("alarm", "ok") and ok["reason_data"]["disposition"] == "inside"
    assert aodh.get(f"alarms/{aid}").json()["state"] == "ok"
    assert [h["type"] for h in aodh.get(f"alarms/{aid}/history").json()] == [
        "state transition", "state transition", "creation"]
    time.sleep(4)  # two more rounds: no repeat_actions, so nothing more is sent
    assert len(delivered("/alarm")) == 1 and len(delivered("/ok")) == 1
    print(f"\nalarm webhook {fired_at - busy_at:.1f} s after the measure (one 503 retried), "
          f"ok webhook {ok_at - calm_at:.1f} s after the calm measures (evaluation every 2 s)")
