"""Slow-player policy over loopback (issue: fan-out at nginx-rtmp's efficiency).

A player that stops reading must be dropped per policy — non-key video first, then a
disconnect — while another player keeps receiving every keyframe, and the memory held for
the stalled player must stay within the configured bounds.
"""

from __future__ import annotations

import asyncio

import aiortmp.client as rtmp
from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import PlayerPolicy

from ..conftest import url
from .media import AVC_SEQUENCE_HEADER, audio_frame, frame_index, video_frame

SOFT = 256 * 1024
HARD = 1024 * 1024
FRAME = 60_000  # bytes per video frame
FRAMES = 600  # 36 MB in total: far more than the kernel socket buffers can hold
GOP = 10
MAX_READ = 256 * 1024  # the most asyncio (and uvloop) reads from a socket at once


async def test_stalled_player_is_dropped_while_others_get_every_keyframe(make_server) -> None:
    server: RTMPServer = await make_server(
        player=PlayerPolicy(
            backlog_soft_bytes=SOFT, backlog_hard_bytes=HARD, backlog_soft_ms=0, max_behind_s=30
        )
    )
    events: list[ServerEvent] = []
    server.subscribe(events.append)

    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)

        good_conn = await rtmp.connect(url(server, "live"), timeout=5)
        good = await good_conn.play("cam")
        # The stalled player reads nothing after play: its queue of 1 fills, reading pauses.
        stalled_conn = await rtmp.connect(url(server, "live"), timeout=5)
        await stalled_conn.play("cam", queue_size=1)
        stalled_server_side = max(server.connections, key=lambda c: c.id)
        assert stalled_server_side.playing

        received: list[int] = []

        async def read_good() -> None:
            async for message in good:
                if message.type_id == 9 and message.payload != AVC_SEQUENCE_HEADER:
                    received.append(frame_index(message.payload))
                    if len(received) >= FRAMES:
                        return

        reader = asyncio.create_task(read_good())
        max_backlog = 0
        for i in range(FRAMES):
            await publisher.send_video(i * 40, video_frame(i, FRAME, GOP))
            await publisher.send_audio(i * 40, audio_frame())
            if not stalled_server_side.closed:
                backlog = stalled_server_side.transport.get_write_buffer_size()
                max_backlog = max(max_backlog, backlog)
            if i % 20 == 0:
                await asyncio.sleep(0)  # let the reader and the server run
        await asyncio.wait_for(reader, 30)
        await good_conn.close()
        await stalled_conn.close()

    # The good player got every frame (so every keyframe), in order.
    assert received == list(range(FRAMES))
    # The stalled one was dropped by the policy, with a reason, after dropping video.
    dropped = [e for e in events if e.kind is EventKind.PLAYER_DROPPED]
    assert len(dropped) == 1, events
    assert "hard limit" in dropped[0].details["reason"]
    assert server.stats["players_dropped"] == 1
    assert server.stats["messages_dropped"] > 0  # non-key video went first
    # Memory held for it stayed within the hard limit plus one batch: at most
    # fanout_max_bytes held for coalescing, plus the socket read that crossed it.
    batch = server.config.fanout_max_bytes + MAX_READ
    assert max_backlog <= HARD + batch, max_backlog


async def test_dropping_the_only_player_does_not_hurt_the_publisher(make_server) -> None:
    """Regression: the last player of a wire format dropped during fan-out used to change
    the group dict while LiveStream.flush iterated it, killing the publisher's session."""
    server: RTMPServer = await make_server(
        player=PlayerPolicy(
            backlog_soft_bytes=SOFT, backlog_hard_bytes=HARD, backlog_soft_ms=0, max_behind_s=30
        )
    )
    events: list[ServerEvent] = []
    server.subscribe(events.append)
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("solo")
        stalled_conn = await rtmp.connect(url(server, "live"), timeout=5)
        await stalled_conn.play("solo", queue_size=1)
        for i in range(FRAMES):
            await publisher.send_video(i * 40, video_frame(i, FRAME, GOP))
            if i % 20 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        stream = server.registry.get("live", "solo")
        assert stream is not None and stream.is_live  # the publisher survived
        assert stream.messages_in == FRAMES
        assert not pub_conn.closed
        await stalled_conn.close()
    assert [e.kind for e in events].count(EventKind.PLAYER_DROPPED) == 1
    assert server.stats["protocol_errors"] == 0
