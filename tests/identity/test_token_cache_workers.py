"""Several web worker processes, each caching validated tokens (apps/identity/token_cache.py), on one
database and one Redis: a token revoked, a user disabled or a role removed through one worker is refused
by every worker within the same second, although each had just validated that token from its cache. The
workers learn of a change from their epoch listeners (Redis pub/sub), not from a GET per request; a
revocation made while their listeners are disconnected is refused within the same second all the same.
The Redis is the module's own (a redis-server child): the test counts its commands and drops its
clients."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    ROOT,
    VENV_BIN,
    Cloud,
    _wait_http,
    create_migrated_database,
    database_url,
    free_port,
    pg_execute,
)

WORKERS = 3


@dataclass
class Workers:
    cloud: Cloud
    urls: list[str]
    redis_url: str

    def redis(self, *command: str) -> str:
        """One command to the module's Redis (redis-py in a child: the test's own Django is on another)."""
        code = ("import sys, redis; r = redis.Redis.from_url(sys.argv[1], decode_responses=True); "
                "print(r.execute_command(*sys.argv[2:]))")
        return subprocess.run([sys.executable, "-c", code, self.redis_url, *command], capture_output=True,
                              text=True, check=True).stdout

    def call(self, url: str, method: str, path: str, token: str | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {}),
                                                  **({"X-Auth-Token": token} if token else {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, response.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            return error.code, error.headers, None

    def token(self, user: str, password: str, project: str) -> str:
        status, headers, _ = self.call(self.urls[0], "POST", "/identity/v3/auth/tokens", body={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        assert status == 201
        return headers["X-Subject-Token"]

    def statuses(self, token: str) -> list[int]:
        """What each worker answers to a request authenticated by ``token``."""
        return [self.call(url, "GET", "/identity/v3/auth/projects", token)[0] for url in self.urls]

    def warm(self, token: str) -> None:
        """Every worker validates ``token`` a few times: from then on, from its cache."""
        for _ in range(3):
            assert self.statuses(token) == [200] * WORKERS

    def refused_everywhere_within_a_second(self, token: str, change_done_at: float) -> None:
        statuses = self.statuses(token)
        elapsed = time.monotonic() - change_done_at
        assert statuses == [401] * WORKERS, statuses
        assert elapsed < 1.0, elapsed


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    db_name = f"stratus_tc_{secrets.token_hex(4)}"
    create_migrated_database(db_name)
    data_dir = Path(tempfile.mkdtemp(prefix="stratus-tc-"))
    prefix = f"tc-{db_name}"
    redis_port = free_port()
    redis_server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data_dir)],
                                    stdout=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {**os.environ, "DATABASE_URL": database_url(db_name), "STRATUS_DATA_DIR": str(data_dir),
           "REDIS_URL": redis_url, "CACHE_URL": redis_url, "CELERY_BROKER_URL": redis_url,
           "STRATUS_CACHE_PREFIX": prefix, "STRATUS_CHANNELS_PREFIX": prefix,
           "STRATUS_CELERY_KEYPREFIX": prefix + ":", "STRATUS_LOG_LEVEL": "WARNING"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    cloud = Cloud(url="", admin_password="admin-" + secrets.token_hex(6), demo_password="demo-" + secrets.token_hex(6),
                  data_dir=data_dir, env=env, db_name=db_name, log=data_dir / "server.log")
    urls: list[str] = []
    try:
        cloud.manage("bootstrap", "--admin-password", cloud.admin_password, "--demo-password", cloud.demo_password)
        for index in range(WORKERS):  # one process each, so the test knows which worker it talks to
            port = free_port()
            log = data_dir / f"worker-{index}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [str(VENV_BIN / "uvicorn"), "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                     "--lifespan", "off", "--log-level", "warning"],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            cloud.processes.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for index, (url, proc) in enumerate(zip(urls, cloud.processes, strict=True)):  # started side by side
            _wait_http(f"{url}/identity/v3", proc, data_dir / f"worker-{index}.log")
        yield Workers(cloud=cloud, urls=urls, redis_url=redis_url)
    finally:
        redis_server.terminate()
        redis_server.wait(10)
        for proc in cloud.processes:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def _user_with_member_role(w: Workers, admin: str) -> tuple[str, str, str, str]:
    """A new user, member of demo: (user id, its password, demo's id, member's id)."""
    url = w.urls[0]
    password = "pw-" + secrets.token_hex(6)
    status, _, body = w.call(url, "POST", "/identity/v3/users", admin, {"user": {
        "name": "tc-" + secrets.token_hex(4), "password": password, "domain_id": "default"}})
    assert status == 201
    user_id = body["user"]["id"]
    project_id = w.call(url, "GET", "/identity/v3/projects?name=demo", admin)[2]["projects"][0]["id"]
    role_id = w.call(url, "GET", "/identity/v3/roles?name=member", admin)[2]["roles"][0]["id"]
    status, _, _ = w.call(url, "PUT", f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}", admin)
    assert status == 204
    return user_id, body["user"]["name"], password, project_id + " " + role_id


def test_a_revoked_token_is_refused_by_every_worker_within_the_same_second(workers: Workers) -> None:
    w = workers
    admin = w.token("admin", w.cloud.admin_password, "admin")
    token = w.token("demo", w.cloud.demo_password, "demo")
    w.warm(token)
    status, _, _ = w.call(w.urls[1], "DELETE", "/identity/v3/auth/tokens", admin,
                          headers={"X-Subject-Token": token})
    assert status == 204
    w.refused_everywhere_within_a_second(token, time.monotonic())
    # and the validation endpoint no longer finds it on any worker
    assert [w.call(url, "GET", "/identity/v3/auth/tokens", admin, headers={"X-Subject-Token": token})[0]
            for url in w.urls] == [404] * WORKERS
    # other tokens are untouched
    assert w.statuses(admin) == [200] * WORKERS


def test_a_disabled_users_token_is_refused_by_every_worker_at_once(workers: Workers) -> None:
    w = workers
    admin = w.token("admin", w.cloud.admin_password, "admin")
    user_id, name, password, _ = _user_with_member_role(w, admin)
    token = w.token(name, password, "demo")
    w.warm(token)
    status, _, _ = w.call(w.urls[2], "PATCH", f"/identity/v3/users/{user_id}", admin, {"user": {"enabled": False}})
    assert status == 200
    w.refused_everywhere_within_a_second(token, time.monotonic())
    # Keystone revokes a disabled user's tokens: enabled again, the old token stays refused everywhere
    status, _, _ = w.call(w.urls[0], "PATCH", f"/identity/v3/users/{user_id}", admin, {"user": {"enabled": True}})
    assert status == 200
    assert w.statuses(token) == [401] * WORKERS
    assert w.statuses(w.token(name, password, "demo")) == [200] * WORKERS


def test_a_removed_roles_token_is_refused_by_every_worker_at_once(workers: Workers) -> None:
    w = workers
    admin = w.token("admin", w.cloud.admin_password, "admin")
    user_id, name, password, ids = _user_with_member_role(w, admin)
    project_id, role_id = ids.split()
    token = w.token(name, password, "demo")
    w.warm(token)
    status, _, _ = w.call(w.urls[1], "DELETE", f"/identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}",
                          admin)
    assert status == 204
    w.refused_everywhere_within_a_second(token, time.monotonic())


def test_workers_validate_from_their_cache_without_a_redis_get(workers: Workers) -> None:
    """The epoch comes from each worker's listener: cached validations cost no Redis round trip (with a
    GET per request, 30 requests made 30 GETs)."""
    w = workers
    token = w.token("demo", w.cloud.demo_password, "demo")
    w.warm(token)

    def gets() -> int:
        stats = w.redis("INFO", "commandstats")
        return int(stats.split("cmdstat_get")[1].split("calls")[1].split(",")[0].strip("=':")) \
            if "cmdstat_get" in stats else 0

    before = gets()
    for _ in range(10):
        assert w.statuses(token) == [200] * WORKERS
    # a listener that went stale under the machine's load reads the epoch per request meanwhile: a few
    assert gets() - before < 10


def test_a_token_revoked_while_the_listeners_are_disconnected_is_refused_by_every_worker(workers: Workers) -> None:
    """Every worker's listener loses its connection and the token is revoked before they are back: the
    revocation's message reaches none of them; they read the epoch again on reconnecting (and until then
    per request), so the token is refused by every worker within the same second."""
    w = workers
    admin = w.token("admin", w.cloud.admin_password, "admin")
    token = w.token("demo", w.cloud.demo_password, "demo")
    w.warm(token)
    killed = int(w.redis("CLIENT", "KILL", "TYPE", "pubsub"))
    assert killed >= WORKERS  # at least one listener per worker (and the channel layer's, if any)
    status, _, _ = w.call(w.urls[1], "DELETE", "/identity/v3/auth/tokens", admin, headers={"X-Subject-Token": token})
    assert status == 204
    w.refused_everywhere_within_a_second(token, time.monotonic())
    assert w.statuses(admin) == [200] * WORKERS
