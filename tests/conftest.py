"""Shared fixtures: a whole running cloud for the real clients and the browser (``live_cloud``)."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

from tests.api_client import SeededCloud
from tests.capabilities import MISSING, OPT_IN, require_real, skip_text
from tests.leftovers import stop
from tests.rabbitmq import rabbit_vhost  # noqa: F401 - a fixture (a vhost of the test's own on RabbitMQ)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


# ---- skips: a missing capability fails under STRATUS_REQUIRE_REAL=1; one line counts them all ----

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        _attach_cloud_logs(item, report)
    if report.skipped and not hasattr(report, "wasxfail") and require_real():
        reason = skip_text(report.longrepr)
        if not reason.startswith(OPT_IN):
            report.outcome = "failed"
            report.longrepr = (f"STRATUS_REQUIRE_REAL=1 and this test did not run: {reason}"
                               + ("" if reason.startswith(MISSING) else
                                  " (a skip that is neither tests.capabilities.missing() nor opt_in())"))


def _attach_cloud_logs(item: pytest.Item, report: pytest.TestReport, tail: int = 6000) -> None:
    """A failed test that ran on the live cloud gets the ends of the cloud's logs (web server, control
    workers, nodes) in its report: an intermittent failure in CI is read from them, not guessed."""
    cloud = getattr(item, "funcargs", {}).get("live_cloud")
    data_dir = getattr(cloud, "data_dir", None)
    if data_dir is None or not Path(data_dir).is_dir():
        return
    logs = sorted(Path(data_dir).glob("*.log")) + sorted(Path(data_dir).glob("nodes/*.log"))
    for log in logs[:12]:
        try:
            text = log.read_text(errors="replace")[-tail:]
        except OSError:
            continue
        report.sections.append((f"live cloud log {log.relative_to(data_dir)} (last {tail} characters)", text))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        if not hasattr(report, "wasxfail"):
            reason = skip_text(report.longrepr)
            reasons[reason] = reasons.get(reason, 0) + 1
    total = sum(reasons.values())
    detail = "; ".join(f"{count}x {reason}" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]))
    terminalreporter.write_line(f"stratus: {total} skipped" + (f": {detail}" if detail else ""))


# ---- two workers (pytest-xdist, `make test`): a file stays on one worker; the machine's libvirtd has one user -----

# These modules use the machine's own libvirtd, qemu:///system or the host's network namespace, which
# exist once per machine: under xdist they share one group, so they run one after the other on one worker.
MACHINE_GROUP = {
    "tests/browser/test_serial_console.py",
    "tests/browser/test_vnc_console.py",
    "tests/e2e/test_qemu_cloud.py",
    "tests/e2e/test_telemetry_qemu.py",
    "tests/security/test_qemu_libvirtd.py",
    "tests/workers/drivers/hypervisor/test_qemu_driver.py",
    "tests/workers/drivers/network/test_host_taps.py",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist every test is in its file's group (module and session fixtures are built once per
    worker, not once per test), and the MACHINE_GROUP files in one group of their own."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group("machine" if path in MACHINE_GROUP else path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(name: str) -> str:
    parts = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(parts._replace(path=f"/{name}"))


def pg_execute(sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on the server's postgres db."""
    conn = psycopg2.connect(database_url("postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _pg_exists(name: str) -> bool:
    conn = psycopg2.connect(database_url("postgres"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def create_migrated_database(name: str) -> None:
    """Database ``name``, migrated as `manage.py migrate` leaves it: a copy (CREATE DATABASE ... TEMPLATE,
    under a second) of a template migrated once per set of migration files (their hash names it), instead
    of a migrate of its own (about 18 s). The template is built under a lock shared by every test run on the
    machine, under a temporary name renamed once complete, and kept for the next run."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("apps/*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    template = f"stratus_tpl_{digest.hexdigest()[:16]}"
    fd = os.open(os.path.join(tempfile.gettempdir(), "stratus-test-db-template.lock"), os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # one builder; and no clone while another copies the template
        if not _pg_exists(template):
            building = f"{template}_{secrets.token_hex(3)}"
            pg_execute(f'CREATE DATABASE "{building}"')
            try:
                env = dict(os.environ, DATABASE_URL=database_url(building), STRATUS_DB_CONN_MAX_AGE="0")
                env.pop("DJANGO_SETTINGS_MODULE", None)
                subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True)
                pg_execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            except BaseException:
                pg_execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                raise
        pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        os.close(fd)


@dataclass
class Cloud:
    url: str
    admin_password: str
    demo_password: str
    data_dir: Path
    env: dict[str, str]
    db_name: str
    log: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True)

    def cli_env(self, user: str = "admin", project: str | None = None, password: str | None = None) -> dict[str, str]:
        """Environment for the real `openstack` CLI, as an openrc would set it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_AUTH_URL=self.auth_url, OS_IDENTITY_API_VERSION="3", OS_USERNAME=user,
                   OS_PASSWORD=password or (self.admin_password if user == "admin" else self.demo_password),
                   OS_PROJECT_NAME=project or user, OS_USER_DOMAIN_NAME="Default",
                   OS_PROJECT_DOMAIN_NAME="Default", OS_REGION_NAME="RegionOne", OS_INTERFACE="public")
        return env

    def openstack(self, *args: str, user: str = "admin", project: str | None = None,
                  password: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "openstack"), *args], env=self.cli_env(user, project, password),
                              capture_output=True, text=True, check=check, timeout=120)

    def sdk(self, user: str = "admin", project: str | None = None, password: str | None = None):  # type: ignore[no-untyped-def]
        import openstack

        return openstack.connect(auth_url=self.auth_url, username=user,
                                 password=password or (self.admin_password if user == "admin" else self.demo_password),
                                 project_name=project or user, user_domain_name="Default",
                                 project_domain_name="Default", region_name="RegionOne",
                                 identity_api_version="3", interface="public")

    def new_member(self, name: str) -> str:
        """A project ``name`` with a user ``name`` who is its member (and nothing else); returns the
        password. For tests whose figures are per project (usage, quotas): the session's other tests
        share demo."""
        admin = self.sdk()
        project = admin.identity.create_project(name=name, domain_id="default")
        password = f"pw-{secrets.token_hex(6)}"
        user = admin.identity.create_user(name=name, password=password, default_project_id=project.id,
                                          domain_id="default")
        admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role("member"))
        return password


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url} in {timeout}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def live_cloud() -> Iterator[Cloud]:
    """A cloud as `make run` starts it (own PostgreSQL database, migrations, bootstrap, the ASGI
    server on a free port), for the real OpenStack clients and the browser."""
    db_name = f"stratus_e2e_{secrets.token_hex(4)}"
    create_migrated_database(db_name)
    data_dir = Path(tempfile.mkdtemp(prefix="stratus-e2e-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=database_url(db_name), STRATUS_DATA_DIR=str(data_dir),
               STRATUS_PUBLIC_URL=url, STRATUS_PORT=str(port), STRATUS_CHANNELS_PREFIX=f"e2e-{db_name}",
               STRATUS_CACHE_PREFIX=f"e2e-{db_name}", STRATUS_CELERY_KEYPREFIX=f"e2e-{db_name}:",
               STRATUS_CSRF_TRUSTED_ORIGINS=url,
               STRATUS_SERVER_TIMING="1")  # every response says its SQL queries (tests/browser/test_ports_table.py)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    cloud = Cloud(url=url, admin_password="admin-" + secrets.token_hex(6), demo_password="demo-" + secrets.token_hex(6),
                  data_dir=data_dir, env=env, db_name=db_name, log=data_dir / "server.log")
    try:
        cloud.manage("bootstrap", "--public-url", url, "--admin-password", cloud.admin_password,
                     "--demo-password", cloud.demo_password)
        with open(cloud.log, "wb") as log:
            server = subprocess.Popen(
                [str(VENV_BIN / "uvicorn"), "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1", "--log-level", "warning"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        cloud.processes.append(server)
        _wait_http(f"{url}/identity/v3", server, cloud.log)
        yield cloud
    finally:
        for proc in cloud.processes:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def test_db_web(django_db_setup: None) -> Iterator[str]:
    """The ASGI server (as ``make run`` starts it) on the pytest-django test database, for node processes
    that reach the image API with the URLs the control tier signed (issue 16: nodes hold no image store
    credentials): give a node ``STRATUS_PUBLIC_URL=<this URL>``. The test process and the server share
    SECRET_KEY (tests/testenv.py) and the data dir, so the server verifies what the test's services signed
    and reads the images they stored. One per session (a few seconds to start); tests that use it need
    ``transactional_db`` for the server to see their rows."""
    from django.db import connection

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0",
               STRATUS_PUBLIC_URL=url, STRATUS_PORT=str(port), PYTHONUNBUFFERED="1")
    log = Path(tempfile.mkdtemp(prefix="stratus-test-web-")) / "web.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "uvicorn"), "portal.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "--log-level", "warning"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"{url}/identity/v3", proc, log)
        yield url
    finally:
        stop(proc)
        shutil.rmtree(log.parent, ignore_errors=True)


# ---- the seeded cloud: one user per role, in-process API clients ------------------------------------

@pytest.fixture
def cloud_api() -> str:
    """The API the seeded cloud's clients speak; a folder's conftest or a module overrides it."""
    return "identity"


@pytest.fixture
def cloud(db: None, cloud_api: str) -> SeededCloud:
    """Bootstrap, alice and bob (members) and rita (reader) of demo, olga (member) of "other", the
    admin: tokens, actors and ``ApiClient``s of ``cloud_api`` (tests/api_client.py)."""
    return SeededCloud(api=cloud_api)


# ---- a real Celery worker ----------------------------------------------------------------------

@dataclass
class CeleryWorker:
    queue: str
    proc: subprocess.Popen
    log: Path


def _wait_log(path: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early ({proc.returncode}):\n{path.read_text()[-4000:]}")
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"no {text!r} in {path} within {timeout}s:\n{path.read_text()[-4000:]}")


def wait_for(predicate: Callable[[], Any], what: str, *, timeout: float = 60, interval: float = 0.5,
             details: Callable[[], str] = lambda: "") -> Any:
    """``predicate()``'s first true value, asked every ``interval`` s; an AssertionError naming ``what`` and
    ending with ``details()`` (logs, a console) when none came within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s\n{details()}")
        time.sleep(interval)


@contextlib.contextmanager
def running_worker(env: Mapping[str, str], queue: str, *, name: str, log: Path, pool: str = "solo",
                   concurrency: int | None = None) -> Iterator[CeleryWorker]:
    """A real `celery -A portal worker -Q <queue>` process with ``env`` (its output in ``log``), yielded
    once its log says it is ready; stopped at the end (SIGTERM, then its whole session killed)."""
    argv = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", queue, f"--pool={pool}",
            *([f"--concurrency={concurrency}"] if concurrency else []), "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=dict(env, PYTHONUNBUFFERED="1"), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_log(log, " ready.", proc)
        yield CeleryWorker(queue=queue, proc=proc, log=log)
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup: None) -> Iterator[CeleryWorker]:
    """A real `celery -A portal worker` process on the pytest-django test database and the test
    Redis, consuming a queue of its own: send it work with ``task.apply_async(queue=worker.queue)``.
    Tests that use it need ``transactional_db`` (``django_db(transaction=True)``) so the worker sees
    their rows."""
    from django.db import connection

    queue = f"test-worker-{secrets.token_hex(4)}"
    log = Path(tempfile.mkdtemp(prefix="stratus-worker-")) / "worker.log"
    env = dict(os.environ, DATABASE_URL=database_url(connection.settings_dict["NAME"]), STRATUS_DB_CONN_MAX_AGE="0")
    try:
        # stopped before pytest-django drops the test database (this fixture depends on its setup)
        with running_worker(env, queue, name=queue, log=log) as worker:
            yield worker
    finally:
        shutil.rmtree(log.parent, ignore_errors=True)


# ---- a control-queue worker for the live cloud ------------------------------------------------------

@contextlib.contextmanager
def live_control_worker(cloud: Cloud, *, name: str = "control", pool: str = "solo",
                        concurrency: int | None = None) -> Iterator[CeleryWorker]:
    """A worker on the live cloud's control queue (``STRATUS_CONTROL_QUEUE``: the API's tasks, the pollster
    rounds' storing, report runs, orchestration), ready; its log ``.log`` under the cloud's data dir. For a
    fixture of a module's own scope or pool; ``control_worker`` is the one-test, one-process one."""
    tag = f"{name}-{secrets.token_hex(3)}"
    with running_worker(cloud.env, cloud.env.get("STRATUS_CONTROL_QUEUE", "control"), name=tag,
                        log=cloud.data_dir / f"{tag}-worker.log", pool=pool, concurrency=concurrency) as worker:
        yield worker


@pytest.fixture
def control_worker(live_cloud: Cloud) -> Iterator[CeleryWorker]:
    """A control-queue worker of the live cloud for one test (one process, ``--pool=solo``)."""
    with live_control_worker(live_cloud) as worker:
        yield worker


# ---- compute nodes for the live cloud --------------------------------------------------------------

@pytest.fixture(scope="session")
def compute_nodes(live_cloud: Cloud) -> Iterator[list]:
    """Two real compute nodes (``compute1``, ``compute2``: Celery workers on ``compute.<host>``, each
    with its own libvirt test-driver hypervisor of 8 vCPUs, 16 GiB, 200 GB) registered with the live
    cloud; stopped at the end of the session."""
    from tests.compute_nodes import start_compute_node

    nodes: list = []
    try:
        for host in ("compute1", "compute2"):
            nodes.append(start_compute_node(live_cloud.env, host, live_cloud.data_dir, with_control=True))
        yield nodes
    finally:
        for node in nodes:
            node.stop()


# ---- a storage node for the live cloud -------------------------------------------------------------

@pytest.fixture(scope="session")
def storage_node(live_cloud: Cloud) -> Iterator:
    """One real storage agent (a Celery worker on ``storage.<host>`` with no database, volumes as qcow2
    files under the live cloud's data dir) registered with the live cloud, and a control worker of the
    session that applies its reports (workers/storage_control.py); stopped at the end of the session."""
    from tests.storage_nodes import start_storage_node

    with live_control_worker(live_cloud, name="storage-control", pool="threads", concurrency=2):
        node = start_storage_node(live_cloud.env, f"storage-{secrets.token_hex(3)}", live_cloud.data_dir)
        try:
            yield node
        finally:
            node.stop()
