"""The RTMP connection adapter: what a client that misbehaves at the session level costs."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from aiortmp.protocol.events import CommandResult, HandshakeComplete
from aiortmp.protocol.session import ClientSession
from aiortmp.server.config import Limits

from ..conftest import ServerFactory, eventually


async def test_a_client_that_never_reads_its_answers_is_closed(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Commands answered to a client that does not read are bounded (max_output_bytes)."""
    server = await make_server(limits=Limits(max_output_bytes=256 * 1024))
    host, port = server.addresses[0]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    session = ClientSession()
    session.initiate()

    async def until(kind: type) -> None:
        while True:
            if data := session.data_to_send():
                writer.write(data)
            while (event := session.next_event()) is not None:
                if isinstance(event, kind):
                    return
            session.receive_data(await asyncio.wait_for(reader.read(65536), 5))

    await until(HandshakeComplete)
    session.connect("live", f"rtmp://{host}:{port}/live")
    await until(CommandResult)
    caplog.set_level(logging.WARNING)
    # FCPublish answers echo the name: ~4 KB answers to ~4 KB commands, 16 MB in all
    # (kernel buffers take a few MB); we never read them.
    name = "n" * 4000
    try:
        for _ in range(40):
            for _ in range(100):
                session.call("FCPublish", name)
            writer.write(session.data_to_send())
            await writer.drain()
            await asyncio.sleep(0.01)
            if not server.connections:
                break
    except ConnectionError:
        pass  # reset by the server
    await eventually(lambda: not server.connections)
    assert any("max_output_bytes" in r.getMessage() for r in caplog.records)
    writer.close()
