"""Alarm actions' URLs and the webhook POST (no Django): the one policy of where a tenant's alarm may
make the control tier send a request.

Tenants do not trust each other and a webhook runs on the control tier, next to its database, broker
and the guests' metadata service. So:

- schemes: ``http``, ``https``, ``log`` and ``mailto`` only (no ``trust+http``, ``file``, ``gopher``...);
- an http(s) action's host, a literal address or every address its name resolves to when the POST is
  made, must be a public unicast address. Always refused: loopback, unspecified, link-local (the
  metadata service's 169.254.169.254 and fe80::/10), multicast, reserved and the IPv4-mapped/6to4
  forms of these. ``allow_private`` (an operator's STRATUS_ALARM_WEBHOOK_ALLOW_PRIVATE) admits private
  ranges (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10) and loopback, for receivers on the
  operator's own network, never link-local, unspecified, multicast or reserved ones;
- the connection goes to the very address that was checked (no second resolution a DNS rebinding
  could answer differently), the Host header and TLS server name stay the URL's, and redirects are
  not followed (a 3xx is the receiver's answer, not a new target).
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

SCHEMES = ("http", "https", "log", "mailto")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(ValueError):
    """The URL or its address is not one an alarm may send to (never retried)."""


class ServerError(Exception):
    """The receiver answered 5xx (retried)."""


def _unwrap(ip: Address) -> Address:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def address_allowed(ip: Address, *, allow_private: bool) -> bool:
    ip = _unwrap(ip)
    if ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return False
    if ip.is_loopback or (ip.is_private and not ip.is_reserved) or (
            isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10")):
        return allow_private
    return ip.is_global and not ip.is_reserved


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:  # the forms inet_aton takes (0x7f.1, 2130706433, 127.1): what a resolver would make of them
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def check_url(url: str, *, allow_private: bool) -> SplitResult:
    """``url`` parsed, if an alarm may name it as an action; else ``Refused`` saying why. A host name
    is checked when the POST is made (``post_json``), a literal address here already."""
    if not isinstance(url, str) or not url or len(url) > 2048 or any(ord(c) < 33 for c in url):
        raise Refused(f"Invalid action {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused(f"Invalid action {url!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise Refused(f"Unsupported action {url}: the schemes are {', '.join(SCHEMES)}")
    if scheme in ("http", "https"):
        host = parts.hostname or ""
        if not host:
            raise Refused(f"Invalid action {url}: no host")
        if port == 0:
            raise Refused(f"Invalid action {url}: bad port")
        ip = _literal(host)
        if ip is not None and not address_allowed(ip, allow_private=allow_private):
            raise Refused(f"Unsupported action {url}: {ip} is not an address alarms may send to")
        if ip is None and not allow_private and (host.lower() == "localhost" or host.lower().endswith(".localhost")):
            raise Refused(f"Unsupported action {url}: {host} is not an address alarms may send to")
    return parts


def resolve(host: str, port: int, *, allow_private: bool) -> Address:
    """The address to connect to: ``host``'s, every one of which must be allowed."""
    ip = _literal(host)
    if ip is not None:
        found = [ip]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectionError(f"cannot resolve {host}: {exc}") from None
        found = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not found:
        raise ConnectionError(f"cannot resolve {host}")
    refused = [str(a) for a in found if not address_allowed(a, allow_private=allow_private)]
    if refused:
        raise Refused(f"{host} resolves to {', '.join(refused)}: not an address alarms may send to")
    return found[0]


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, ip: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = str(ip)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, ip: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._ip = str(ip)

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_json(url: str, payload: Mapping[str, Any], *, allow_private: bool, timeout: float = 10.0,
              headers: Mapping[str, str] | None = None) -> int:
    """POST ``payload`` as JSON to ``url`` under the policy above; the status (2xx-4xx). A 5xx raises
    ``ServerError``, a refused URL ``Refused``, a network failure ``OSError``/``ConnectionError``."""
    parts = check_url(url, allow_private=allow_private)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"{url} is not a webhook")
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    ip = resolve(host, port, allow_private=allow_private)
    conn = (_PinnedTLS if scheme == "https" else _Pinned)(host, port, ip, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(dict(payload)).encode()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                       "User-Agent": "stratus-alarm-notifier",
                                                       **dict(headers or {})})
        response = conn.getresponse()
        response.read(65536)
        status = response.status
    except http.client.HTTPException as exc:
        raise ConnectionError(f"{url}: {exc!r}") from None
    finally:
        conn.close()
    if status >= 500:
        raise ServerError(f"{url} answered {status}")
    return status
