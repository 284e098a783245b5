"""The node's console relay (workers/compute_console.relay) over the real channel layer (Redis), on a
real socket standing for the domain's VNC server (``GraphicsConsole`` on one end of a socket pair, as
virDomainOpenGraphicsFD hands one over): the RFB bytes go through unchanged both ways and in order,
however large, and the relay ends, saying why, when the socket says close or the server hangs up. The
relay on a real qemu guest's VNC server is tests/browser/test_vnc_console.py's."""
from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from workers import compute_console
from workers.drivers.hypervisor.console import GraphicsConsole


def _start(console: GraphicsConsole, reply: str) -> threading.Thread:
    thread = threading.Thread(target=compute_console.relay, args=(console, reply), daemon=True)
    thread.start()
    return thread


async def _output_until(layer: Any, reply: str, size: int) -> bytes:
    got = b""
    while len(got) < size:
        message = await asyncio.wait_for(layer.receive(reply), 10)
        assert message["type"] == "console.output", message
        got += message["data"]
    return got


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        data = sock.recv(size - len(got))
        assert data, "the relay hung up"
        got.extend(data)
    return bytes(got)


def test_the_relay_carries_a_vnc_connection_both_ways_and_ends_when_the_socket_closes() -> None:
    server, client = socket.socketpair()

    async def run() -> None:
        layer = get_channel_layer()
        reply = await layer.new_channel("test-socket.")
        relay = _start(GraphicsConsole(client), reply)
        opened = await asyncio.wait_for(layer.receive(reply), 10)
        assert opened["type"] == "console.opened"
        own = opened["channel"]

        server.sendall(b"RFB 003.008\n")  # the server speaks first
        assert await _output_until(layer, reply, 12) == b"RFB 003.008\n"
        # input as the socket sends it: pieces of at most 64 KiB, written in order
        pieces = [os.urandom(65536), os.urandom(65536), os.urandom(1000)]
        for piece in pieces:
            await layer.send(own, {"type": "console.input", "data": piece})
        assert await asyncio.to_thread(_recv_exactly, server, 2 * 65536 + 1000) == b"".join(pieces)
        # a framebuffer's worth of output, however the relay splits it
        screen = os.urandom(300_000)
        sender = threading.Thread(target=server.sendall, args=(screen,))
        sender.start()
        assert await _output_until(layer, reply, len(screen)) == screen
        sender.join(5)

        await layer.send(own, {"type": "console.ping"})
        await layer.send(own, {"type": "console.close"})
        ended = await asyncio.wait_for(layer.receive(reply), 10)
        assert ended == {"type": "console.ended", "reason": "The console was closed."}
        await asyncio.to_thread(relay.join, 5)
        assert not relay.is_alive()
        assert server.recv(1) == b""  # the connection to the server is closed

    try:
        async_to_sync(run)()
    finally:
        server.close()


def test_the_relay_ends_when_the_server_hangs_up() -> None:
    server, client = socket.socketpair()

    async def run() -> None:
        layer = get_channel_layer()
        reply = await layer.new_channel("test-socket.")
        relay = _start(GraphicsConsole(client), reply)
        assert (await asyncio.wait_for(layer.receive(reply), 10))["type"] == "console.opened"
        server.close()  # the domain stopped
        ended = await asyncio.wait_for(layer.receive(reply), 10)
        assert ended["type"] == "console.ended" and "has ended" in ended["reason"]
        await asyncio.to_thread(relay.join, 5)
        assert not relay.is_alive()

    async_to_sync(run)()
