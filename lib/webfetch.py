"""The web-download import's fetch (no Django): Glance's ``[import_filtering_opts]`` as one policy of
where an image import may make the control tier send a GET.

- schemes ``http`` and ``https`` only (no ``file``, ``ftp``, ``gopher``...);
- the URI's port must be one of ``allowed_ports`` (Glance's default 80 and 443; empty: any);
- its host, a literal address or every address its name resolves to, must be a public unicast address
  (never loopback, private, link-local such as the metadata service's 169.254.169.254, multicast,
  reserved, unspecified, nor their IPv4-mapped/6to4 forms), unless the host is in ``allowed_hosts``;
- the host is resolved once and the connection goes to the very address that was checked (a DNS
  rebinding cannot switch it), the Host header and TLS server name staying the URI's;
- a redirect is a new URI checked as the first was (at most ``MAX_REDIRECTS`` of them);
- the body is streamed in chunks, never held whole.
"""
from __future__ import annotations

import http.client
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

from lib import webhook

SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
CHUNK = 1 << 20


class Refused(ValueError):
    """The URI, its port or its address is not one an image import may fetch from."""


class FetchError(Exception):
    """The fetch failed: a network error, a timeout or an HTTP error status."""


@dataclass(frozen=True)
class Policy:
    allowed_hosts: Sequence[str] = ()
    allowed_ports: Sequence[int] = (80, 443)
    timeout: float = 30.0


def check_uri(uri: str, policy: Policy) -> SplitResult:
    """``uri`` parsed if its scheme, port and (literal) host pass the policy; else ``Refused``. A host
    name's addresses are checked when it is resolved (``resolve``)."""
    if not isinstance(uri, str) or not uri or len(uri) > 2048 or any(ord(c) < 33 for c in uri):
        raise Refused(f"Invalid URI {uri!r}.")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise Refused(f"Invalid URI {uri!r}.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise Refused(f"URI scheme {scheme or '(none)'!r} is not allowed: use http or https.")
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        raise Refused(f"Invalid URI {uri}: a host and no user information are needed.")
    port = port or (443 if scheme == "https" else 80)
    if policy.allowed_ports and port not in policy.allowed_ports:
        raise Refused(f"Port {port} is not allowed for image import.")
    if not _host_allowed(host, policy):
        ip = webhook._literal(host)
        if ip is not None and not webhook.address_allowed(ip, allow_private=False):
            raise Refused(f"Host {host} is not allowed for image import.")
        if ip is None and (host == "localhost" or host.endswith(".localhost")):
            raise Refused(f"Host {host} is not allowed for image import.")
    return parts


def _host_allowed(host: str, policy: Policy) -> bool:
    return host.strip("[]").lower() in {h.strip("[]").lower() for h in policy.allowed_hosts}


def resolve(host: str, port: int, policy: Policy) -> webhook.Address:
    """The one address to connect to: every address of ``host`` must pass (unless it is allowed)."""
    allowed = _host_allowed(host, policy)
    try:
        return webhook.resolve(host, port, allow_private=allowed) if not allowed else _any(host, port)
    except webhook.Refused as exc:
        raise Refused(f"Host {host} is not allowed for image import: {exc}") from None
    except ConnectionError as exc:
        raise FetchError(str(exc)) from None


def _any(host: str, port: int) -> webhook.Address:
    import ipaddress
    import socket

    ip = webhook._literal(host)
    if ip is not None:
        return ip
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from None
    return ipaddress.ip_address(infos[0][4][0].split("%")[0])


@dataclass
class Download:
    """An open response: ``size`` is its Content-Length (None: not said); ``chunks()`` streams the body
    and closes the connection at its end."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    size: int | None

    def chunks(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = self.response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise FetchError(f"Reading the image data failed: {exc}") from None
                if not chunk:
                    return
                yield chunk
        finally:
            self.conn.close()

    def close(self) -> None:
        self.conn.close()


def open_uri(uri: str, policy: Policy) -> Download:
    """GET ``uri`` under the policy, following at most MAX_REDIRECTS redirects, each checked as the
    first URI was. ``Refused`` for a URI the policy refuses, ``FetchError`` for anything else."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = check_uri(uri, policy)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        ip = resolve(host, port, policy)
        conn_class = webhook._PinnedTLS if scheme == "https" else webhook._Pinned
        conn = conn_class(host, port, ip, policy.timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"User-Agent": "stratus-image-import", "Accept": "*/*"})
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise FetchError(f"Fetching {uri} failed: {exc}") from None
        if response.status in (301, 302, 303, 307, 308):
            location = response.getheader("Location") or ""
            conn.close()
            if not location:
                raise FetchError(f"{uri} answered {response.status} without a Location.")
            uri = urljoin(uri, location)
            continue
        if response.status != 200:
            conn.close()
            raise FetchError(f"{uri} answered {response.status} {response.reason}.")
        length = response.getheader("Content-Length")
        try:
            size = int(length) if length is not None else None
        except ValueError:
            size = None
        return Download(conn=conn, response=response, size=size)
    raise FetchError(f"Too many redirects (more than {MAX_REDIRECTS}).")
