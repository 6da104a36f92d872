"""Fan-out over real loopback sockets with our client as publisher and players."""

from __future__ import annotations

import asyncio

import aiortmp.client as rtmp
from aiortmp.protocol.messages import MessageType
from aiortmp.server.app import RTMPServer

from ..conftest import url
from .media import (
    AAC_SEQUENCE_HEADER,
    AVC_SEQUENCE_HEADER,
    audio_frame,
    frame_index,
    is_keyframe,
    video_frame,
)


async def publish_frames(
    publisher: rtmp.Publisher, start: int, count: int, *, size: int = 2000, gop: int = 25
) -> None:
    for i in range(start, start + count):
        await publisher.send_video(i * 40, video_frame(i, size, gop))
        await publisher.send_audio(i * 40, audio_frame())


async def collect(player: rtmp.Player, limit: int) -> list[rtmp.MediaMessage]:
    out = []
    async for message in player:
        out.append(message)
        if len(out) >= limit:
            break
    return out


async def test_late_player_gets_metadata_headers_and_gop_first(make_server) -> None:
    server: RTMPServer = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await publisher.send_metadata({"width": 320.0, "height": 240.0})
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
        await publish_frames(publisher, 0, 30)  # keyframes at 0 and 25
        await asyncio.sleep(0.2)
        async with rtmp.connect(url(server, "live"), timeout=5) as play_conn:
            player = await play_conn.play("cam")
            got = await collect(player, 4)
        stream = server.registry.get("live", "cam")
        assert stream is not None and stream.player_count == 0
    assert got[0].metadata == {"width": 320.0, "height": 240.0}
    assert got[1].type_id == MessageType.VIDEO and got[1].payload == AVC_SEQUENCE_HEADER
    assert got[2].type_id == MessageType.AUDIO and got[2].payload == AAC_SEQUENCE_HEADER
    # The GOP starts at the last keyframe (frame 25), not at the first frame.
    assert is_keyframe(got[3].payload) and frame_index(got[3].payload) == 25
    assert got[3].timestamp_ms == 25 * 40


async def test_players_before_publisher_and_republish(make_server) -> None:
    server: RTMPServer = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as play_conn:
        player = await play_conn.play("later", stop_on_unpublish=False)
        for round_ in range(2):
            async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
                publisher = await pub_conn.publish("later")
                await publisher.send_video(0, AVC_SEQUENCE_HEADER)
                await publish_frames(publisher, 0, 5)
                got = await collect(player, 11)  # header + 5 video + 5 audio
                assert got[0].payload == AVC_SEQUENCE_HEADER
                video = [frame_index(m.payload) for m in got[1:] if m.type_id == 9]
                assert video == [0, 1, 2, 3, 4]
                await publisher.close()
            await asyncio.sleep(0.2)
            codes = [s.code for s in player.statuses]
            assert codes.count("NetStream.Play.PublishNotify") == round_ + 1
            assert codes.count("NetStream.Play.UnpublishNotify") == round_ + 1


async def test_second_publisher_is_refused_first_untouched(make_server) -> None:
    server: RTMPServer = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as first:
        publisher = await first.publish("one")
        async with rtmp.connect(url(server, "live"), timeout=5) as second:
            try:
                await second.publish("one")
            except rtmp.RejectedError as exc:
                assert exc.code == "NetStream.Publish.BadName"
            else:
                raise AssertionError("second publisher accepted")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await asyncio.sleep(0.1)
        stream = server.registry.get("live", "one")
        assert stream is not None and stream.is_live and stream.messages_in == 1


async def test_one_write_per_batch_is_shared_by_players(make_server) -> None:
    """Every player of a msid gets byte-identical chunks (serialized once)."""
    server: RTMPServer = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("shared")
        conns = [await rtmp.connect(url(server, "live"), timeout=5) for _ in range(3)]
        players = [await c.play("shared") for c in conns]
        await publish_frames(publisher, 0, 50, size=10_000)
        results = await asyncio.gather(*(collect(p, 100) for p in players))
        for conn in conns:
            await conn.close()
    payloads = [[m.payload for m in r] for r in results]
    assert payloads[0] == payloads[1] == payloads[2]
    assert len(payloads[0]) == 100
    stream_packets = [frame_index(p) for p in payloads[0] if p[:1] in (b"\x17", b"\x27")]
    assert stream_packets == list(range(50))


async def test_player_joining_while_packets_are_held_gets_each_once(make_server) -> None:
    """With fan-out coalescing, a player may join between ingest and flush: the held
    packets are flushed first, so its start-up burst does not repeat them."""
    server: RTMPServer = await make_server(fanout_interval_ms=500)
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("held")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publish_frames(publisher, 0, 10)  # held for up to 500 ms
        await asyncio.sleep(0.05)
        async with rtmp.connect(url(server, "live"), timeout=5) as play_conn:
            player = await play_conn.play("held")
            await publish_frames(publisher, 10, 5)
            got = await collect(player, 1 + 15 * 2)
    video = [frame_index(m.payload) for m in got if m.type_id == 9 and m.payload[1] == 1]
    assert video == list(range(15))
