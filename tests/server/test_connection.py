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


async def test_a_publishers_reads_are_coalesced_by_the_kernel_and_tails_still_arrive(
    make_server: ServerFactory,
) -> None:
    """At its measured bitrate, a publisher's socket gets an SO_RCVLOWAT of about
    fanout_interval_ms of media and its stream delivers each read at once; when the
    publisher goes quiet the mark drops, so a last command is not held."""
    import aiortmp.client as rtmp

    from .media import AVC_SEQUENCE_HEADER, video_frame

    server = await make_server(fanout_interval_ms=20)
    conn = await rtmp.connect(f"rtmp://{server.addresses[0][0]}:{server.addresses[0][1]}/live")
    publisher = await conn.publish("cam")
    await publisher.send_video(0, AVC_SEQUENCE_HEADER)
    (server_conn,) = server.connections
    stream = server.registry.get("live", "cam")
    assert stream is not None
    # ~4 Mbit/s for 2.5 s: two ticks measure it and set the mark.
    for i in range(125):
        await publisher.send_video(i * 20, video_frame(i, 10_000))
        await asyncio.sleep(0.02)
    await eventually(lambda: server_conn.coalescing, 3.0)
    sock = server_conn.transport.get_extra_info("socket")
    lowat = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT)
    assert 4_000 < lowat <= 64 * 1024 and stream.reads_coalesced
    # The publisher stops sending media but keeps its connection and unpublishes: the
    # deleteStream (a few bytes, under the mark) is read within about two ticks.
    await publisher.close()
    await eventually(lambda: not stream.is_live, 4.0)
    assert not server_conn.coalescing
    await conn.close()
