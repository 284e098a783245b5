"""The compute node's side of the interactive consoles: open the domain's serial console or a connection
to its VNC server and relay it over the channel layer to the browser's socket
(``apps/compute/consumers.SerialConsoleConsumer`` / ``VncConsoleConsumer``).

``workers.compute.serial_console(instance_id, reply_channel)`` (sent by
``apps.compute.services.server_console.server_serial_console_open`` on the node's queue) opens the
console through the driver (``LibvirtDriver.serial_console``: virDomainOpenConsole) and leaves a relay
thread running, so the task itself ends at once and the node's task threads stay free. The relay
speaks to the socket's channel ``reply_channel`` and listens on a channel of its own:

  to the socket       ``console.opened`` {channel: the relay's own}, then ``console.output`` {data: bytes}
                      as the guest writes, and ``console.ended`` {reason} once, at the end
  from the socket     ``console.input`` {data: bytes} (typed into the guest), ``console.ping`` (still
                      there), ``console.close``

It ends when the socket says close, when nothing came from the socket for ``IDLE_SECONDS`` (it pings
more often than that), when the socket's channel is full that long (no one reads it), or when the
console ends (the domain stopped, another session took the console over). Each session has its own
channel layer instance, as a channel layer receives in one event loop only.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from celery import shared_task

from workers import compute
from workers.compute import node_driver
from workers.drivers.hypervisor.console import ConsoleUnavailable
from workers.drivers.hypervisor.libvirt import DomainNotFound, HypervisorError

logger = logging.getLogger(__name__)

IDLE_SECONDS = 60.0  # the socket pings every 20 s: a session silent this long has no socket any more
FULL_SECONDS = 10.0  # how long output may wait for room in the socket's channel
MAX_INPUT = 65536  # one message from the socket (the socket splits longer input; keys are far shorter)


class Console(Protocol):
    """What the driver opens (``console.SerialConsole``, ``console.GraphicsConsole``): a blocking byte stream."""

    def read(self) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


@shared_task(name="workers.compute.serial_console")
def serial_console(instance_id: str, reply_channel: str) -> str:
    """Open the instance's serial console and relay it to ``reply_channel`` in a thread of its own."""
    return _open_and_relay("serial console", instance_id, reply_channel,
                           lambda: node_driver().serial_console(instance_id))


@shared_task(name="workers.compute.vnc_console")
def vnc_console(instance_id: str, reply_channel: str) -> str:
    """Connect to the instance's VNC server and relay it to ``reply_channel`` in a thread of its own."""
    return _open_and_relay("VNC console", instance_id, reply_channel, lambda: node_driver().vnc_console(instance_id))


def _open_and_relay(what: str, instance_id: str, reply_channel: str, opener: Callable[[], Console]) -> str:
    try:
        console = opener()
    except (ConsoleUnavailable, HypervisorError) as exc:
        logger.warning("%s of %s: %s", what, instance_id, exc)
        _tell(reply_channel, {"type": "console.ended", "reason": f"The console could not be opened: {exc}"})
        return f"failed: {exc}"
    threading.Thread(target=relay, args=(console, reply_channel), name=f"console-{instance_id[:8]}",
                     daemon=True).start()
    logger.info("%s of %s opened", what, instance_id)
    return "opened"


def _layer() -> Any:
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


def _tell(channel: str, message: dict[str, Any]) -> None:
    async def send() -> None:
        layer = _layer()
        try:
            await layer.send(channel, message)
        finally:
            with contextlib.suppress(Exception):
                await layer.close_pools()

    with contextlib.suppress(Exception):
        asyncio.run(send())


def relay(console: Console, reply_channel: str) -> None:
    """Relay one session until it ends (runs in its own thread, with its own event loop)."""
    try:
        asyncio.run(_relay(console, reply_channel))
    except Exception:
        logger.exception("serial console relay failed")
    finally:
        console.close()


async def _relay(console: Console, reply_channel: str) -> None:
    layer = _layer()
    try:
        own = await layer.new_channel("console.")
        await layer.send(reply_channel, {"type": "console.opened", "channel": own})
        output = asyncio.create_task(_output(console, layer, reply_channel))
        typed = asyncio.create_task(_input(console, layer, own))
        done, pending = await asyncio.wait({output, typed}, return_when=asyncio.FIRST_COMPLETED)
        console.close()  # ends a read still blocked in its thread
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        finished = done.pop()
        reason = finished.result() if not finished.cancelled() and finished.exception() is None else \
            "The console relay failed."
        with contextlib.suppress(Exception):
            await layer.send(reply_channel, {"type": "console.ended", "reason": reason})
    finally:
        with contextlib.suppress(Exception):
            await layer.close_pools()


async def _output(console: Console, layer: Any, reply_channel: str) -> str:
    """What the guest writes, to the socket; the reason it stopped."""
    from channels.exceptions import ChannelFull

    while True:
        data = await asyncio.to_thread(console.read)
        if not data:
            return "The console has ended (the instance stopped, or another session took it over)."
        waited = 0.0
        while True:
            try:
                await layer.send(reply_channel, {"type": "console.output", "data": data})
                break
            except ChannelFull:
                if waited >= FULL_SECONDS:
                    return "No one reads the console any more."
                await asyncio.sleep(0.1)
                waited += 0.1


async def _input(console: Console, layer: Any, own: str) -> str:
    """What the socket sends, typed into the guest; the reason it stopped."""
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(own), IDLE_SECONDS)
        except TimeoutError:
            return "The console was idle too long."
        kind = message.get("type")
        if kind == "console.close":
            return "The console was closed."
        if kind == "console.input":
            data = message.get("data")
            if isinstance(data, bytes) and data:
                try:
                    await asyncio.to_thread(console.write, data[:MAX_INPUT])
                except ConsoleUnavailable:
                    return "The console has ended."


@shared_task(name="workers.compute.console_output")
def console_output(instance_id: str, length: int | None = None) -> str:
    """The guest's serial console log (its last ``length`` lines), as the hypervisor wrote it. The
    libvirt test driver runs no guest, so nothing ever writes it there: the answer is then ""."""
    try:
        return compute.node_driver().console_output(instance_id, length)  # looked up at call time
    except DomainNotFound:
        return ""
