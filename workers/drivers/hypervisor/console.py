"""A domain's serial console as a two-way byte stream: libvirt's virDomainOpenConsole on the domain's
first console (its serial port, a pty that qemu also logs to ``console.log`` through virtlogd).

Plain bytes in and out, no Django::

    console = driver.serial_console(instance_id)   # ConsoleUnavailable: no console to open
    console.write(b"echo hello\\r")
    data = console.read()                           # blocks; b"" once the console has ended
    console.close()

The stream is blocking: one thread reads while another writes (libvirt connections and streams are
thread-safe). Opening takes the console over (``VIR_DOMAIN_CONSOLE_FORCE``, as ``virsh console
--force``): a session already open elsewhere ends (its ``read`` returns b""), so the newest browser
tab has the console. The test driver has no consoles: opening one there is ``ConsoleUnavailable``.
"""
from __future__ import annotations

import contextlib
import threading

import libvirt

READ_SIZE = 4096


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
