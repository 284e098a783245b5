"""A domain's consoles as two-way byte streams: its serial console (libvirt's virDomainOpenConsole on the
domain's first console: its serial port, a pty that qemu also logs to ``console.log`` through virtlogd),
and its VNC server (``GraphicsConsole``: one RFB client connection).

Plain bytes in and out, no Django::

    console = driver.serial_console(instance_id)   # ConsoleUnavailable: no console to open
    console.write(b"echo hello\\r")
    data = console.read()                           # blocks; b"" once the console has ended
    console.close()

The stream is blocking: one thread reads while another writes (libvirt connections and streams are
thread-safe). Opening takes the console over (``VIR_DOMAIN_CONSOLE_FORCE``, as ``virsh console
--force``): a session already open elsewhere ends (its ``read`` returns b""), so the newest browser
tab has the console. The test driver has no consoles: opening one there is ``ConsoleUnavailable``.

``GraphicsConsole`` has the same read/write/close. It is a socket that libvirt hands over
(virDomainOpenGraphicsFD: qemu's ``add_client`` on a socket pair, ``SKIPAUTH``), so the relay needs
neither the VNC port (the server listens on the node's loopback/management address only, wherever
libvirtd's network namespace is) nor a password; each open is one more VNC client (qemu shares the
screen between them).
"""
from __future__ import annotations

import contextlib
import socket
import threading
import xml.etree.ElementTree as ET

import libvirt

READ_SIZE = 4096
GRAPHICS_READ_SIZE = 65536


class ConsoleUnavailable(RuntimeError):
    """The domain has no console that can be opened (its hypervisor cannot, or it is not running)."""


class SerialConsole:
    def __init__(self, stream: libvirt.virStream) -> None:
        self._stream = stream
        self._closed = threading.Event()

    @classmethod
    def open(cls, conn: libvirt.virConnect, dom: libvirt.virDomain) -> SerialConsole:
        stream = conn.newStream(0)
        try:
            dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise ConsoleUnavailable(str(exc)) from exc
        return cls(stream)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def read(self, size: int = READ_SIZE) -> bytes:
        """The next bytes the guest wrote (blocks until there are some); b"" once the console ended:
        closed here, taken over by another session, or the domain stopped."""
        if self.closed:
            return b""
        try:
            data = self._stream.recv(size)
        except libvirt.libvirtError:
            self._closed.set()
            return b""
        if isinstance(data, int) or not data:  # -2 only for a non-blocking stream; 0/-1: the end
            self._closed.set()
            return b""
        return bytes(data)

    def write(self, data: bytes) -> None:
        """Type ``data`` into the console (all of it); ConsoleUnavailable once it has ended."""
        view = memoryview(data)
        while view:
            if self.closed:
                raise ConsoleUnavailable("the console has ended")
            try:
                sent = self._stream.send(bytes(view))
            except libvirt.libvirtError as exc:
                self._closed.set()
                raise ConsoleUnavailable(str(exc)) from exc
            if sent < 0:
                self._closed.set()
                raise ConsoleUnavailable("the console has ended")
            view = view[sent:]

    def close(self) -> None:
        """End the session (idempotent); a ``read`` blocked in another thread returns b""."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()


class GraphicsConsole:
    """One client connection to a domain's VNC server: the RFB protocol's bytes, server first."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._closed = threading.Event()

    @classmethod
    def open(cls, dom: libvirt.virDomain) -> GraphicsConsole:
        try:
            fd = dom.openGraphicsFD(0, libvirt.VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
        except libvirt.libvirtError as exc:
            raise ConsoleUnavailable(str(exc)) from exc
        return cls(socket.socket(fileno=fd))

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def read(self, size: int = GRAPHICS_READ_SIZE) -> bytes:
        """The next bytes the VNC server sent (blocks); b"" once the connection has ended."""
        if self.closed:
            return b""
        try:
            data = self._sock.recv(size)
        except OSError:
            data = b""
        if not data:
            self._closed.set()
        return data

    def write(self, data: bytes) -> None:
        """Send ``data`` to the VNC server (all of it); ConsoleUnavailable once the connection has ended."""
        if self.closed:
            raise ConsoleUnavailable("the console has ended")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._closed.set()
            raise ConsoleUnavailable(str(exc)) from exc

    def close(self) -> None:
        """End the connection (idempotent); a ``read`` blocked in another thread returns b""."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def graphics_types(domain_xml: str) -> str:
    """The ``<graphics>`` types a domain definition gives it, comma-separated ("" for none)."""
    return ",".join(el.get("type") or "" for el in ET.fromstring(domain_xml).findall("devices/graphics"))
