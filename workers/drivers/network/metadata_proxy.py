"""The metadata proxy of a DHCP namespace: guests ask http://169.254.169.254/, the cloud answers.

One proxy per network that has a DHCP namespace (started and kept alive by the network driver,
``workers/drivers/network/driver.py``). A guest reaches 169.254.169.254 through the host route its
DHCP lease pushes (option 121: 169.254.169.254/32 via the DHCP port's address, as Neutron's isolated
metadata does); the address sits on the DHCP namespace's interface. The proxy

  * maps the client's source address to an instance id with a JSON map ``{"<fixed ip>": "<instance
    id>"}`` the agent writes for the network's compute ports (re-read whenever the file changes:
    mtime/inode/size); an address not in the map gets 404 and nothing is forwarded;
  * adds ``X-Instance-ID``, ``X-Instance-ID-Signature`` (hex HMAC-SHA256 of the id with the shared
    secret read from ``--secret-file``), ``X-Forwarded-For`` (the source address), ``X-Neutron-Network-ID``
    (``--network-id``, the network this proxy serves) and ``X-Neutron-Network-ID-Signature`` (HMAC of
    "<instance id>\n<network id>\n<source address>"), and forwards GET/HEAD to ``--upstream`` + the
    request's path (the portal's /metadata/, STRATUS_METADATA_URL), streaming the answer back. The
    service checks both signatures and that the instance has a port of its own project holding that
    address on that network (Nova's check), so a port claiming another's instance reads nothing.

How the proxy is inside the namespace yet reaches the upstream: the upstream (the portal, usually
127.0.0.1:8000) lives in the agent's own namespace, which a DHCP namespace cannot reach. So the
proxy process stays in the agent's namespace and only its *listening socket* is made inside the DHCP
namespace: with ``--netns <name>`` it enters the namespace (``setns(2)`` on /run/netns/<name>, through
libc since Python 3.11 has no os.setns), creates and binds the socket there, and returns to its own
namespace before it starts any thread. A socket keeps the namespace it was created in, so the proxy
accepts the guests' connections in the DHCP namespace and opens its upstream connections from the
agent's. No veth, no unix-socket bridge, one process per network. The price: ``ip netns pids`` does
not see the proxy (it is not *in* the namespace), and its socket would keep a deleted namespace
alive — so the driver stops it before deleting the namespace, and the proxy watches the namespace
itself: when /run/netns/<name> is gone or is another namespace (inode), it exits.

Run (as root; the driver runs this file by its path, so that the process imports nothing but the
standard library — not the ``workers`` package and its Celery tasks)::

    python metadata_proxy.py --netns qdhcp-<net> --bind 169.254.169.254:80 \
        --map map.json --network-id <net> --upstream http://127.0.0.1:8000/metadata/ --secret-file secret \
        [--netns-inode N] [--pid-file F] [--log-file L] [--daemon]

Without ``--netns`` it binds in the namespace it was started in (e.g. under ``ip netns exec``, when
the upstream is reachable from there). ``--daemon``: bind first (errors are the exit status), then
fork; the child writes ``--pid-file`` and serves. No Django here.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import hmac
import http.client
import json
import logging
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger("stratus.metadata_proxy")

METADATA_IP = "169.254.169.254"  # == dhcp.METADATA_IP (this file imports nothing of the package)
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
UPSTREAM_TIMEOUT = 15.0
CHUNK = 65536
WATCH_SECONDS = 1.0


# --------------------------------------------------------------------------- files re-read on change

class WatchedFile:
    """A file's parsed content, re-read when its (mtime, inode, size) changes."""

    def __init__(self, path: str, parse: Any) -> None:
        self.path = path
        self.parse = parse
        self._key: tuple[int, int, int] | None = None
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self.parse(None)
        key = (st.st_mtime_ns, st.st_ino, st.st_size)
        with self._lock:
            if key != self._key:
                with open(self.path, "rb") as f:
                    self._value = self.parse(f.read())
                self._key = key
            return self._value


def parse_map(raw: bytes | None) -> dict[str, str]:
    if not raw:
        return {}
    data = json.loads(raw)
    return {str(ip): str(instance) for ip, instance in data.items()}


def parse_secret(raw: bytes | None) -> str:
    return raw.decode().strip() if raw else ""


def sign(instance_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def sign_network(instance_id: str, network_id: str, address: str, secret: str) -> str:
    """== apps.compute.selectors.metadata.network_signature (this file imports nothing of the package)."""
    message = f"{instance_id}\n{network_id}\n{address}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- namespaces

def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_inode(name: str) -> int:
    return os.stat(os.path.join(NETNS_DIR, name)).st_ino


def listen_socket(host: str, port: int, netns: str | None = None) -> socket.socket:
    """A listening TCP socket on host:port, created inside network namespace ``netns`` (by name)
    while this thread stays (or returns) in its own namespace."""
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    if not netns:
        return make()
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
    try:
        _setns(target)
        try:
            return make()
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


# --------------------------------------------------------------------------- the proxy

class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, *, mapping: WatchedFile, secret: WatchedFile, upstream: str,
                 network_id: str) -> None:
        super().__init__(sock.getsockname()[:2], Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.mapping = mapping
        self.secret = secret
        if not network_id:
            raise ValueError("the network id the proxy serves is required")
        self.network_id = network_id
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        self.upstream_https = parts.scheme == "https"
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or (443 if self.upstream_https else 80)
        self.upstream_prefix = parts.path.rstrip("/")
        self.upstream_netloc = parts.netloc

    def connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.upstream_https else http.client.HTTPConnection
        return cls(self.upstream_host, self.upstream_port, timeout=UPSTREAM_TIMEOUT)


class Handler(BaseHTTPRequestHandler):
    server: ProxyServer
    protocol_version = "HTTP/1.0"  # the answer ends when the connection closes: streaming needs no length
    server_version = "StratusMetadataProxy/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.client_address[0], format % args)

    def _plain(self, status: int, text: str) -> None:
        body = f"{status} {text}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._plain(405, "Method Not Allowed")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _forward(self) -> None:
        client = self.client_address[0]
        if client.startswith("::ffff:"):
            client = client[len("::ffff:"):]
        try:
            instance_id = self.server.mapping.get().get(client)
        except (OSError, ValueError) as exc:
            logger.error("cannot read the address map: %s", exc)
            self._plain(500, "Internal Server Error")
            return
        if not instance_id:
            logger.warning("request from %s: no instance has this address", client)
            self._plain(404, "Not Found")
            return
        secret = self.server.secret.get()
        if not secret:
            logger.error("no metadata secret (%s)", self.server.secret.path)
            self._plain(500, "Internal Server Error")
            return
        path = self.path if self.path.startswith("/") else "/" + self.path
        headers = {"X-Instance-ID": instance_id, "X-Instance-ID-Signature": sign(instance_id, secret),
                   "X-Forwarded-For": client, "X-Neutron-Network-ID": self.server.network_id,
                   "X-Neutron-Network-ID-Signature": sign_network(instance_id, self.server.network_id, client, secret),
                   "Host": self.server.upstream_netloc, "Connection": "close"}
        for name in ("Accept", "User-Agent"):
            if self.headers.get(name):
                headers[name] = self.headers[name]
        conn = self.server.connection()
        try:
            conn.request(self.command, self.server.upstream_prefix + path, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            logger.error("upstream %s:%s unreachable: %s", self.server.upstream_host, self.server.upstream_port, exc)
            self._plain(502, "Bad Gateway")
            return
        try:
            self.send_response(resp.status, resp.reason)
            for name in ("Content-Type", "Content-Length", "Last-Modified", "ETag"):
                if resp.getheader(name):
                    self.send_header(name, resp.getheader(name))
            self.end_headers()
            if self.command != "HEAD":
                while chunk := resp.read(CHUNK):
                    self.wfile.write(chunk)
        except (OSError, http.client.HTTPException) as exc:
            logger.warning("request from %s cut short: %s", client, exc)
        finally:
            conn.close()


def watch_namespace(server: ProxyServer, netns: str, inode: int) -> None:
    """Stop serving once the namespace is deleted or replaced (our socket would keep it alive)."""
    stop = threading.Event()
    while not stop.wait(WATCH_SECONDS):
        try:
            current = netns_inode(netns)
        except OSError:
            current = None
        if current != inode:
            logger.warning("namespace %s is gone: exiting", netns)
            server.shutdown()
            return


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="metadata_proxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--bind", default=f"{METADATA_IP}:80", help="address:port to listen on")
    p.add_argument("--netns", default="", help="network namespace (name under /run/netns) of the listening socket")
    p.add_argument("--netns-inode", type=int, default=0, help="refuse/stop unless the namespace has this inode")
    p.add_argument("--map", required=True, help="JSON file {fixed ip: instance id}")
    p.add_argument("--network-id", required=True, help="the network whose guests this proxy serves")
    p.add_argument("--upstream", required=True, help="the metadata service's URL (its /metadata/ prefix)")
    p.add_argument("--secret-file", required=True, help="file holding the shared signing secret")
    p.add_argument("--pid-file", default="")
    p.add_argument("--log-file", default="")
    p.add_argument("--daemon", action="store_true", help="fork into the background once listening")
    args = p.parse_args(argv)

    logging.basicConfig(filename=args.log_file or None, level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    host, _, port = args.bind.rpartition(":")
    host = host.strip("[]")
    inode = 0
    if args.netns:
        try:
            inode = netns_inode(args.netns)
        except OSError as exc:
            print(f"metadata proxy: namespace {args.netns}: {exc}", file=sys.stderr)
            return 2
        if args.netns_inode and inode != args.netns_inode:
            print(f"metadata proxy: namespace {args.netns} is not the expected one", file=sys.stderr)
            return 2
    try:
        sock = listen_socket(host, int(port), args.netns or None)
    except OSError as exc:
        print(f"metadata proxy: cannot listen on {args.bind} in {args.netns or 'this namespace'}: {exc}",
              file=sys.stderr)
        return 1
    mapping = WatchedFile(args.map, parse_map)
    secret = WatchedFile(args.secret_file, parse_secret)
    try:
        mapping.get()
        server = ProxyServer(sock, mapping=mapping, secret=secret, upstream=args.upstream,
                             network_id=args.network_id)
    except (OSError, ValueError) as exc:
        print(f"metadata proxy: {exc}", file=sys.stderr)
        return 1

    if args.daemon:
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() > 0:
            # the parent waits for nothing: the child writes the pid file before it serves
            os._exit(0)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    if args.pid_file:
        tmp = Path(args.pid_file + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, args.pid_file)
    if args.netns:
        threading.Thread(target=watch_namespace, args=(server, args.netns, inode), daemon=True).start()
    logger.info("listening on %s in %s, forwarding to %s", args.bind, args.netns or "this namespace", args.upstream)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        if args.pid_file:
            try:
                if Path(args.pid_file).read_text().strip() == str(os.getpid()):
                    os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
