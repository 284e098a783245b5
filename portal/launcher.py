"""The launcher of ``python manage.py up``: the whole embedded cloud in the foreground (what `make run`
starts; apps/core/management/commands/up.py only parses its options and calls ``run``).

It starts, in order: a local ``redis-server`` on a free port (unless REDIS_URL is set), then
``migrate`` and ``bootstrap``, then a Celery worker on the control queue, this node's network agent
(a worker on ``network.<STRATUS_HOST>``), the compute nodes (STRATUS_NODES workers on
``compute.<host>``, each with its own libvirt test-driver hypervisor), Celery beat and the ASGI server
(uvicorn). It prints where the dashboard is and who can log in, and stays in the foreground.
Ctrl-C (SIGINT), SIGTERM or SIGHUP stop every child, each in its own process group, and it exits 0;
if a child dies on its own, it says which, shows the end of its log, stops the rest and exits 1.

With a real hypervisor (STRATUS_HYPERVISOR other than ``test``, on ``qemu:///system``) it also starts
virtlogd and libvirtd as children, in the foreground, when none runs yet (only root can): libvirtd with
its own qemu.conf (``LIBVIRT_QEMU_CONF``) bind-mounted over /etc/libvirt/qemu.conf in a mount namespace
of its own, so the machine's file is not changed. At the stop, the guests of a libvirtd it started are
powered off (their definitions stay: the node's power sync shows them SHUTOFF at the next start), then
libvirtd and virtlogd stop. A libvirtd or virtlogd that was running already is used and never stopped.

This process never touches the database itself: the children do, after ``migrate``.

``--role`` (``ROLES``) picks a part of that: ``all`` (the default) is the above; ``controller`` is
Redis, migrations, bootstrap, the control worker, beat and the web server (no node agents);
``compute``, ``network`` and ``storage`` start only that node's agent worker(s) on its own queue
(``<role>.<STRATUS_HOST>``; a compute node also its L2 network agent on ``network.<STRATUS_HOST>``,
which never serves DHCP or routers: STRATUS_NETWORK_L2_ONLY), with the broker and settings it is given
(``make node`` writes them from the controller's answer to its enrolment token): no Redis, no
migrations, no web, no beat. Every node agent (compute, network, storage) runs without any database or
image store settings (``without_database``), in every role: its tasks get plain values in their messages
and report to the control queue (``workers/control_bus.py``), and image data goes through the web
server's image API (STRATUS_PUBLIC_URL, the local web server for ``all``) with URLs the control tier
signs for that node.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
LIBVIRTD_PIDFILE = Path("/run/libvirtd.pid")
VIRTLOGD_PIDFILE = Path("/run/virtlogd.pid")
LIBVIRT_SOCKET = Path("/run/libvirt/libvirt-sock")
VIRTLOGD_SOCKET = Path("/run/libvirt/virtlogd-sock")
SYSTEM_QEMU_CONF = Path("/etc/libvirt/qemu.conf")
# The qemu.conf of a libvirtd started here (and by the tests, tests/qemu_support.py): qemu runs as root
# and libvirt relabels nothing, so guests open instance and volume files wherever the data dir is, and
# libvirt's capability cache stays valid (as libvirt-qemu, a root-only /dev/kvm makes it re-probe qemu
# at every domain start, tens of seconds each on a loaded machine).
LIBVIRT_QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
"""
PR_SET_PDEATHSIG = 1
ROLES = ("all", "controller", "network", "compute", "storage")
NODE_ROLES = ("network", "compute", "storage")
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class Stop(Exception):
    """A stop signal arrived (the exit is clean) or a child failed (it is not)."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.code = code


def _child_setup() -> None:
    """Runs in each child between fork and exec: take the stop signals back (this process blocks
    them to wait for them), and die with this process if it is killed without a chance to clean up."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def redis_ping(port: int, password: str = "") -> bool:
    """Whether the Redis on ``port`` answers PING (after AUTH with ``password``, when given)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            expected = b"+PONG\r\n"
            if password:
                s.sendall(f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n".encode())
                expected = b"+OK\r\n" + expected
            s.sendall(b"PING\r\n")
            answer = b""
            while len(answer) < len(expected):
                chunk = s.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer.startswith(expected)
    except OSError:
        return False


def secret_file(path: Path) -> str:
    """A secret generated once into ``path`` (mode 0600, readable by this user alone) and read back."""
    import secrets

    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path.read_text().strip()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that only this user can read it, at any moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def redis_conf(*, port: int, password: str, directory: Path) -> str:
    """The configuration of the Redis that `make run` starts: loopback only, a password (so that
    another local user cannot queue tasks for the workers, which may run as root), nothing on disk.
    It is passed as a file (mode 0600), never on the command line that every user can read."""
    quoted = str(directory).replace("\\", "\\\\").replace('"', '\\"')
    return (f"port {port}\nbind 127.0.0.1\nprotected-mode yes\nrequirepass {password}\n"
            f'save ""\nappendonly no\ndir "{quoted}"\ndaemonize no\nlogfile ""\n')


LOOPBACK = {"127.0.0.1", "::1", "localhost", "[::1]"}


def bind_warning(bind: str) -> str:
    """The banner's warning for a web server reachable from other machines ("" on loopback)."""
    if bind in LOOPBACK or bind.startswith("127."):
        return ""
    where = "on every address of this machine" if bind in ("0.0.0.0", "::", "") else f"on {bind}"
    line = "!" * 78
    return (f"{line}\n"
            f"WARNING: STRATUS_BIND={bind}: Stratus serves plain HTTP (no TLS) {where}.\n"
            "Passwords and tokens cross the network in clear. Put a TLS proxy in front of it,\n"
            "or leave STRATUS_BIND unset to listen on 127.0.0.1 only.\n"
            f"{line}\n")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except OSError:
        return False


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pid_alive(pidfile: Path) -> int | None:
    """The pid in ``pidfile`` if that process runs (not a zombie)."""
    try:
        pid = int(pidfile.read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return None if state in ("Z", "X") else pid
    except (OSError, ValueError, IndexError):
        return None


def unix_socket_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(path))
            return True
    except OSError:
        return False


def virsh(*args: str, uri: str = "qemu:///system", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, check=False,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def openrc_password(path: Path) -> str | None:
    if not path.exists():
        return None
    match = re.search(r"^export OS_PASSWORD='([^']*)'$", path.read_text(), re.M)
    return match.group(1) if match else None


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path | None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)  # each child leads its own group (start_new_session)


# what the control tier holds and a node agent is never given (issue 16), besides the database's
# credentials: the image store's settings and credentials (a node reads and writes image data through the
# image API with the URLs the control tier signs for it) and the key those URLs are signed with
IMAGE_STORE_SETTINGS = ("STRATUS_IMAGE_STORE", "STRATUS_IMAGE_DIR", "STRATUS_IMAGE_URL_KEY")
IMAGE_STORE_PREFIXES = ("STRATUS_IMAGE_S3_",)


def without_image_store(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the image store's settings and credentials (``IMAGE_STORE_SETTINGS``)."""
    return {k: v for k, v in env.items() if k not in IMAGE_STORE_SETTINGS and not k.startswith(IMAGE_STORE_PREFIXES)}


def without_database(env: dict[str, str]) -> dict[str, str]:
    """A node agent's environment: no database credentials (``DATABASE_URL`` removed) and Django's dummy
    engine (``STRATUS_NO_DATABASE=1``), so a query tried there fails at once, and no image store settings
    or credentials (``without_image_store``): image data comes and goes through the controller's image API
    (STRATUS_PUBLIC_URL) with signed URLs (issue 16)."""
    node_env = {k: v for k, v in without_image_store(env).items() if k != "DATABASE_URL"}
    node_env["STRATUS_NO_DATABASE"] = "1"
    return node_env


class Supervisor:
    """Starts children in their own sessions and stops them, in reverse order, as groups."""

    def __init__(self, *, cwd: Path, env: dict[str, str], log_dir: Path, logs_to_terminal: bool) -> None:
        self.cwd, self.env, self.log_dir, self.logs_to_terminal = cwd, env, log_dir, logs_to_terminal
        self.children: list[Child] = []
        # run after the services stopped and before the daemons named "libvirtd", "virtlogd", "redis"
        self.before_daemons_stop: list[Any] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> Child:
        log = None if self.logs_to_terminal else self.log_dir / f"{name}.log"
        out: IO[bytes] | None = None if log is None else open(log, "ab")  # noqa: SIM115 - closed below
        try:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env if env is None else env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT if out else None, start_new_session=True,
                                    preexec_fn=_child_setup)  # safe: this process starts no threads
        finally:
            if out is not None:
                out.close()
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def run_step(self, name: str, argv: list[str]) -> str:
        """Run a one-shot command to its end (stop signals still honoured); returns its output."""
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_child_setup)
        child = Child(name, proc, log)
        try:
            while proc.poll() is None:
                self.wait_signal(0.2)
        except Stop:
            self.stop_children([child])
            raise
        if proc.returncode != 0:
            raise Stop(f"{name} failed (exit {proc.returncode}):\n{tail(log)}", 1)
        return log.read_text(errors="replace")

    def wait_signal(self, timeout: float) -> None:
        info = signal.sigtimedwait(STOP_SIGNALS, timeout)
        if info is not None:
            raise Stop(f"{signal.Signals(info.si_signo).name} received", 0)

    def check_children(self) -> None:
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
                where = f"; the end of {child.log}:\n{tail(child.log)}\n" if child.log else ""
                raise Stop(f"{child.name} (pid {child.proc.pid}) {how}{where}", 1)

    def stop_children(self, children: list[Child], timeout: float = 15) -> None:
        for child in reversed(children):
            if child.running:
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(c.running for c in children) and time.monotonic() < deadline:
            # A second Ctrl-C means: now.
            if signal.sigtimedwait(STOP_SIGNALS, 0.1) is not None:
                break
        for child in children:
            child.signal_group(signal.SIGKILL)  # whatever is left in the group, leader or not
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(5)

    def stop_all(self) -> None:
        # The services first (they may still talk to Redis and libvirtd while shutting down), then
        # libvirtd (after its guests), virtlogd (libvirtd writes the guests' consoles through it), Redis.
        daemons = ("libvirtd", "virtlogd", "redis")
        self.stop_children([c for c in self.children if c.name not in daemons])
        for hook in self.before_daemons_stop:
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - the daemons must stop all the same
                sys.stderr.write(f"stratus: {exc}\n")
        for name in daemons:
            self.stop_children([c for c in self.children if c.name == name], timeout=5 if name == "redis" else 15)


class Launcher:
    """Starts the children, shows the banner through ``say``, and stops them all at the end."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def run(self, opts: dict[str, Any]) -> None:
        """Run until a stop signal or a child's failure, then exit (0 after a stop signal, else 1)."""
        # Stop signals are only ever taken with sigtimedwait: nothing can interrupt a half-started
        # child. A handler (rather than none) keeps them deliverable even if inherited as ignored.
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda *_: None)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

        data_dir = Path(settings.DATA_DIR)
        log_dir = data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        port, bind = opts["port"], opts["bind"]
        public_url = os.environ.get("STRATUS_PUBLIC_URL", f"http://127.0.0.1:{port}").rstrip("/")
        env = dict(os.environ, STRATUS_DATA_DIR=str(data_dir), STRATUS_PORT=str(port), STRATUS_PUBLIC_URL=public_url,
                   PYTHONUNBUFFERED="1")
        env.setdefault("STRATUS_CSRF_TRUSTED_ORIGINS", public_url)
        env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        supervisor = Supervisor(cwd=Path(settings.BASE_DIR), env=env, log_dir=log_dir,
                                logs_to_terminal=opts["logs_to_terminal"])
        code = 0
        role = opts.get("role") or "all"
        if role not in ROLES:
            raise SystemExit(f"stratus: unknown role {role!r} (one of {', '.join(ROLES)})")
        try:
            if role in NODE_ROLES:
                self.start_node(supervisor, role=role, data_dir=data_dir)
            else:
                self.start(supervisor, data_dir=data_dir, port=port, bind=bind, public_url=public_url, opts=opts)
            while True:
                supervisor.wait_signal(0.5)
                supervisor.check_children()
        except Stop as stop:
            code = stop.code
            self.say(f"\nstratus: {stop}\nstratus: stopping the rest.\n" if code else f"\nstratus: {stop}, stopping.\n")
        finally:
            supervisor.stop_all()
        self.say("stratus: stopped.\n")
        sys.exit(code)

    def start(self, supervisor: Supervisor, *, data_dir: Path, port: int, bind: str, public_url: str,
              opts: dict[str, Any]) -> None:
        env, python = supervisor.env, sys.executable
        if port_in_use(bind, port):
            raise Stop(f"port {port} on {bind} is in use (set STRATUS_PORT to another one)", 1)

        warning = bind_warning(bind)
        if warning:
            self.say(warning)
        if "REDIS_URL" in os.environ:
            redis_url = redis_shown = os.environ["REDIS_URL"]
        else:
            redis_server = shutil.which("redis-server")
            if redis_server is None:
                raise Stop("redis-server is not installed (apt-get install redis-server), and REDIS_URL is not set", 1)
            redis_port = free_port()
            redis_dir = data_dir / "redis"
            redis_dir.mkdir(mode=0o700, exist_ok=True)
            os.chmod(redis_dir, 0o700)
            password = secret_file(redis_dir / "password")
            conf = redis_dir / "redis.conf"
            write_private(conf, redis_conf(port=redis_port, password=password, directory=redis_dir))
            redis = supervisor.start("redis", [redis_server, str(conf)])
            deadline = time.monotonic() + 15
            while not redis_ping(redis_port, password):
                supervisor.wait_signal(0.1)
                supervisor.check_children()
                if time.monotonic() > deadline:
                    raise Stop(f"redis-server did not answer on port {redis_port}:\n{tail(redis.log or Path())}", 1)
            # the children get it in their environment (readable by this user alone), never in argv
            redis_url = f"redis://:{password}@127.0.0.1:{redis_port}/0"
            redis_shown = f"redis://127.0.0.1:{redis_port}/0 (password in {redis_dir / 'password'})"
        env["REDIS_URL"] = redis_url
        env.setdefault("CELERY_BROKER_URL", redis_url)

        local = "127.0.0.1" if bind in ("0.0.0.0", "") else "[::1]" if bind == "::" else bind
        local = f"[{local}]" if ":" in local and not local.startswith("[") else local
        # the guests' metadata requests reach the portal through each DHCP namespace's proxy
        env.setdefault("STRATUS_METADATA_URL", f"http://{local}:{port}/metadata/")

        self.say(f"stratus: data dir {data_dir}; migrating the database...\n")
        manage = [python, str(Path(settings.BASE_DIR) / "manage.py")]
        supervisor.run_step("migrate", [*manage, "migrate", "--noinput"])
        bootstrap = supervisor.run_step("bootstrap", [*manage, "bootstrap", "--public-url", public_url])

        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        supervisor.start("worker", [python, "-m", "celery", "-A", "portal", "worker", "-Q", queue,
                                    "--pool=threads", f"--concurrency={opts['worker_concurrency']}",
                                    "-n", f"{queue}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                                    "--loglevel=INFO"])
        controller_only = opts.get("role") == "controller"
        network_queue = f"network.{settings.STRATUS_HOST}"
        libvirt = nodes = ""
        if not controller_only:
            self.start_network_agent(supervisor)
            self.start_storage_agent(supervisor)
            libvirt = self.start_libvirt(supervisor, data_dir=data_dir)
            nodes = self.start_compute_nodes(supervisor, data_dir=data_dir)
        supervisor.start("beat", [python, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO",
                                  "-s", str(data_dir / "celerybeat-schedule"),
                                  f"--pidfile={data_dir / 'celerybeat.pid'}"])
        web = [python, "-m", "uvicorn", "portal.asgi:application", "--host", bind, "--port", str(port),
               "--lifespan", "off", "--timeout-graceful-shutdown", "5", "--log-level", "info"]
        if opts["web_workers"] > 1:
            web += ["--workers", str(opts["web_workers"])]
        supervisor.start("web", web)

        deadline = time.monotonic() + 60
        while not http_ok(f"http://{local}:{port}/identity/v3"):
            supervisor.wait_signal(0.2)
            supervisor.check_children()
            if time.monotonic() > deadline:
                raise Stop("the web server did not answer within 60 s", 1)

        admin_rc, demo_rc = data_dir / "admin-openrc.sh", data_dir / "demo-openrc.sh"
        match = re.search(r"^admin password: (.*)$", bootstrap, re.M)
        admin_password = openrc_password(admin_rc) or (match.group(1) if match else "?")
        demo_password = openrc_password(demo_rc) or "?"
        logs = "this terminal" if supervisor.logs_to_terminal else f"{supervisor.log_dir}/*.log"
        self.say(
            "\nStratus is running.\n"
            f"  dashboard:   {public_url}/dashboard/\n"
            f"  identity:    {public_url}/identity/v3\n"
            f"  admin:       admin / {admin_password}\n"
            f"  demo:        demo / {demo_password}\n"
            f"  openrc:      {admin_rc}  {demo_rc}\n"
            f"  clouds.yaml: {data_dir / 'clouds.yaml'}\n"
            f"  try:         source {admin_rc} && openstack token issue\n"
            f"  redis:       {redis_shown}\n"
            + ("  role:        controller (no node agents here: add them with `make node`, README)\n"
               if controller_only else
               f"  network:     agent on queue {network_queue} "
               f"(STRATUS_NETWORK_APPLY={settings.STRATUS_NETWORK_APPLY})\n"
               f"  compute:     {nodes}\n")
            + (f"  libvirt:     {libvirt}\n" if libvirt else "") +
            f"  logs:        {logs}\n"
            + warning +
            "Press Ctrl-C to stop.\n"
        )

    def start_network_agent(self, supervisor: Supervisor, *, l2_only: bool = False) -> None:
        """This node's network agent: one worker process on its own queue network.<host> (workers/network.py).
        It registers the node and builds the desired networks when it can (STRATUS_NETWORK_APPLY). It holds
        no database credentials: the control tier sends it its state and takes its reports. ``l2_only``
        (a compute node's): its bridges and VXLAN to the peers only, never DHCP or routers
        (STRATUS_NETWORK_L2_ONLY=1)."""
        network_queue = f"network.{settings.STRATUS_HOST}"
        env = without_database(supervisor.env)
        if l2_only:
            env["STRATUS_NETWORK_L2_ONLY"] = "1"
        supervisor.start("network-agent", [sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q",
                                           network_queue, "--pool=solo", "-n", f"{network_queue}-{os.getpid()}@%h",
                                           "--without-gossip", "--without-mingle", "--loglevel=INFO"],
                         env=env)

    def start_storage_agent(self, supervisor: Supervisor) -> None:
        """This node's storage agent: volumes as qcow2 files under DATA_DIR/volumes/<host>/ (workers/storage.py),
        with no database (``without_database``): it reports by messages to the control queue."""
        from workers.storage import worker_argv as storage_worker_argv

        supervisor.start("storage-agent", storage_worker_argv(sys.executable, settings.STRATUS_HOST),
                         env=without_database(supervisor.env))

    def start_node(self, supervisor: Supervisor, *, role: str, data_dir: Path) -> None:
        """A node of one role on this machine: only its agent worker(s), on its own queue, with the broker
        and settings in the environment (``make node`` sources them from DATA_DIR/node.env), and no
        database. Refused without a broker (it would reach nobody)."""
        env = supervisor.env
        broker = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL")
        if not broker:
            raise Stop(f"--role {role}: no CELERY_BROKER_URL (nor REDIS_URL): enrol this node first "
                       "(`make node CONTROLLER=... TOKEN=... ROLE=...`, README \"More than one machine\")", 1)
        env["CELERY_BROKER_URL"] = broker
        if broker.startswith(("redis://", "rediss://")):
            env.setdefault("REDIS_URL", broker)
        host = settings.STRATUS_HOST
        libvirt = ""
        if role == "network":
            self.start_network_agent(supervisor)
            what = f"network agent on queue network.{host} (STRATUS_NETWORK_APPLY={settings.STRATUS_NETWORK_APPLY})"
        elif role == "storage":
            self.start_storage_agent(supervisor)
            what = f"storage agent on queue storage.{host}"
        else:
            # a compute machine needs its L2 network agent (Neutron's on every compute node): its guests'
            # taps into their networks' bridges, VXLAN to the other nodes; DHCP and routers stay on the
            # network node
            self.start_network_agent(supervisor, l2_only=True)
            libvirt = self.start_libvirt(supervisor, data_dir=data_dir)
            what = (self.start_compute_node(supervisor, host=host, data_dir=data_dir)
                    + f"; L2 network agent on queue network.{host}")
        where = re.sub(r"//[^@/]*@", "//", broker)  # no password on the terminal
        self.say(f"\nStratus {role} node {host} is running.\n"
                 f"  agent:       {what}\n"
                 f"  broker:      {where}\n"
                 f"  controller:  {env.get('STRATUS_PUBLIC_URL', '?')}\n"
                 + (f"  libvirt:     {libvirt}\n" if libvirt else "") +
                 f"  logs:        {'this terminal' if supervisor.logs_to_terminal else f'{supervisor.log_dir}/*.log'}\n"
                 "Press Ctrl-C to stop.\n")

    def start_compute_node(self, supervisor: Supervisor, *, host: str, data_dir: Path) -> str:
        """One compute node, this machine as ``host``: with the test driver (STRATUS_HYPERVISOR=test) a
        simulated hypervisor of its own, else LIBVIRT_URI (default qemu:///system)."""
        from workers.agent import simulated_node_environ, worker_argv

        if settings.STRATUS_HYPERVISOR == "test":
            node_env = dict(supervisor.env, **simulated_node_environ(
                host, data_dir, vcpus=settings.STRATUS_NODE_VCPUS, memory_mb=settings.STRATUS_NODE_MEMORY_MB,
                disk_gb=settings.STRATUS_NODE_DISK_GB))
            supervisor.start(f"compute-{host}", worker_argv(sys.executable, host), env=without_database(node_env))
            return f"simulated node {host} (libvirt test driver; queue compute.{host})"
        uri = settings.LIBVIRT_URI or "qemu:///system"
        node_env = dict(supervisor.env, STRATUS_COMPUTE_HOST=host, LIBVIRT_URI=uri)
        supervisor.start(f"compute-{host}", worker_argv(sys.executable, host), env=without_database(node_env))
        return f"node {host} on {uri} (queue compute.{host})"

    def start_libvirt(self, supervisor: Supervisor, *, data_dir: Path) -> str:
        """virtlogd and libvirtd for a real node on ``qemu:///system``, as children, when none runs yet.
        Returns the banner's line ("" with the test driver)."""
        uri = settings.LIBVIRT_URI or "qemu:///system"
        if settings.STRATUS_HYPERVISOR == "test":
            return ""
        if uri != "qemu:///system":
            return f"{uri} (not started here)"
        ours: list[str] = []
        running: list[str] = []
        for name, pidfile, sock in (("virtlogd", VIRTLOGD_PIDFILE, VIRTLOGD_SOCKET),
                                    ("libvirtd", LIBVIRTD_PIDFILE, LIBVIRT_SOCKET)):
            pid = pid_alive(pidfile)
            if pid is not None:
                running.append(f"{name} (pid {pid}, not ours: left running)")
                continue
            if os.geteuid() != 0:
                raise Stop(f"STRATUS_HYPERVISOR={settings.STRATUS_HYPERVISOR}: {name} is not running and only "
                           "root can start it (run `make run` as root, or start libvirtd first)", 1)
            binary = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
            if binary is None:
                raise Stop(f"{name} is not installed (apt-get install libvirt-daemon-system)", 1)
            if name == "libvirtd":
                conf = data_dir / "libvirt" / "qemu.conf"
                conf.parent.mkdir(exist_ok=True)
                conf.write_text(LIBVIRT_QEMU_CONF)
                argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f'mount --bind "$0" {SYSTEM_QEMU_CONF} && exec "$1"', str(conf), binary]
            else:
                argv = [binary]
            child = supervisor.start(name, argv)
            deadline = time.monotonic() + 60
            while not unix_socket_answers(sock) or (name == "libvirtd" and virsh("version").returncode != 0):
                supervisor.wait_signal(0.2)
                supervisor.check_children()
                if time.monotonic() > deadline:
                    raise Stop(f"{name} did not answer on {sock} within 60 s:\n{tail(child.log or Path())}", 1)
            ours.append(f"{name} (pid {child.proc.pid})")
            if name == "libvirtd":
                supervisor.before_daemons_stop.append(self.power_off_guests)
        return ", ".join([*(f"{o} started here" for o in ours), *running])

    def power_off_guests(self) -> None:
        """The guests of the libvirtd started here: powered off before it stops (qemu would outlive it)."""
        names = virsh("list", "--name").stdout.split()
        if names:
            self.say(f"stratus: powering off {len(names)} guest(s) of our libvirtd: {', '.join(names)}\n")
        for name in names:
            virsh("destroy", name)

    def start_compute_nodes(self, supervisor: Supervisor, *, data_dir: Path) -> str:
        """The compute nodes, each a Celery worker on ``compute.<host>`` whose agent registers it
        (workers/agent.py). STRATUS_HYPERVISOR=test (the default): STRATUS_NODES simulated nodes
        ``compute1..N``, each with its own libvirt test-driver hypervisor (a node XML under
        DATA_DIR/nodes/ sized STRATUS_NODE_VCPUS/MEMORY_MB/DISK_GB). Otherwise one real node, this
        machine (STRATUS_HOST), on LIBVIRT_URI (default qemu:///system). Returns the banner's line."""
        from workers.agent import simulated_node_environ, worker_argv

        python = sys.executable
        if settings.STRATUS_HYPERVISOR == "test":
            count = max(int(settings.STRATUS_NODES), 0)
            hosts = [f"compute{i}" for i in range(1, count + 1)]
            for host in hosts:
                node_env = dict(supervisor.env, **simulated_node_environ(
                    host, data_dir, vcpus=settings.STRATUS_NODE_VCPUS, memory_mb=settings.STRATUS_NODE_MEMORY_MB,
                    disk_gb=settings.STRATUS_NODE_DISK_GB))
                supervisor.start(f"compute-{host}", worker_argv(python, host), env=without_database(node_env))
            if not hosts:
                return "no compute nodes (STRATUS_NODES=0)"
            return (f"{len(hosts)} simulated nodes {', '.join(hosts)} (libvirt test driver, "
                    f"{settings.STRATUS_NODE_VCPUS} vCPUs, {settings.STRATUS_NODE_MEMORY_MB} MB, "
                    f"{settings.STRATUS_NODE_DISK_GB} GB each; queues compute.<host>)")
        host = settings.STRATUS_HOST
        uri = settings.LIBVIRT_URI or "qemu:///system"
        node_env = dict(supervisor.env, STRATUS_COMPUTE_HOST=host, LIBVIRT_URI=uri)
        supervisor.start(f"compute-{host}", worker_argv(python, host), env=without_database(node_env))
        return f"node {host} on {uri} (queue compute.{host})"
