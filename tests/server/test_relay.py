"""Relays between in-process servers over loopback (issue 5: push and pull).

Server A relays; server B is the other end (upstream for pushes, origin for pulls). The
media are synthetic H.264/AAC tag bodies whose frame index is readable (tests/server/media).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import aiortmp.client as rtmp
from aiortmp.protocol.events import StatusReceived
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import (
    ConfigError,
    RelayConfig,
    RelayPull,
    RelayPush,
    ServerConfig,
    load_config,
)
from aiortmp.server.relay import RelayService

from ..conftest import eventually, url
from .media import (
    AAC_SEQUENCE_HEADER,
    AVC_SEQUENCE_HEADER,
    audio_frame,
    frame_index,
    is_keyframe,
    video_frame,
)

ServerFactory = Callable[..., Awaitable[RTMPServer]]
FAST = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.3, "timeout_s": 2.0}
GOP = 10
STATUS_KEYS = {
    "id",
    "app",
    "stream",
    "url",
    "state",
    "connected_since",
    "reconnects",
    "bytes_sent",
    "dropped",
    "last_error",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def relay_of(server: RTMPServer) -> RelayService:
    relay = getattr(server, "relay", None)
    assert isinstance(relay, RelayService)
    return relay


async def start_publishing(publisher: rtmp.Publisher, *, metadata: bool = True) -> None:
    if metadata:
        await publisher.send_metadata({"width": 1920.0, "height": 1080.0})
    await publisher.send_video(0, AVC_SEQUENCE_HEADER)
    await publisher.send_audio(0, AAC_SEQUENCE_HEADER)


async def send_frames(
    publisher: rtmp.Publisher, frames: range, *, size: int = 500, pause_s: float = 0.0
) -> None:
    for i in frames:
        await publisher.send_video(i * 40, video_frame(i, size, GOP))
        await publisher.send_audio(i * 40, audio_frame())
        if pause_s:
            await asyncio.sleep(pause_s)


class Collector:
    """Plays in the background and keeps every media message."""

    def __init__(self, player: rtmp.Player) -> None:
        self.player = player
        self.messages: list[rtmp.MediaMessage] = []
        self.events: list[Any] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for item in self.player.events():
            self.events.append(item)
            if isinstance(item, rtmp.MediaMessage):
                self.messages.append(item)

    @property
    def video(self) -> list[rtmp.MediaMessage]:
        return [m for m in self.messages if m.type_id == 9 and not m.is_sequence_header]

    @property
    def frames(self) -> list[int]:
        return [frame_index(m.payload) for m in self.video]

    def codes(self) -> list[str]:
        return [e.code for e in self.events if isinstance(e, StatusReceived)]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


# -- push -----------------------------------------------------------------------------------------


async def test_push_to_another_server(make_server: ServerFactory) -> None:
    b = await make_server()
    a = await make_server(relay=RelayConfig(push=[RelayPush(app="live", url=url(b, "up"))], **FAST))
    async with rtmp.connect(url(b, "up"), timeout=5) as upstream_conn:
        upstream = Collector(await upstream_conn.play("cam", stop_on_unpublish=False))
        async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
            publisher = await pub_conn.publish("cam")
            await eventually(lambda: relay_of(a).status()[0]["state"] == "publishing")
            await start_publishing(publisher)
            await send_frames(publisher, range(30))
            await eventually(lambda: len(upstream.video) == 30)
            (status,) = relay_of(a).status()
            await publisher.close()
            await eventually(lambda: "NetStream.Play.UnpublishNotify" in upstream.codes())
        await upstream.close()
    assert STATUS_KEYS <= status.keys()
    assert status["state"] == "publishing" and status["app"] == "live"
    assert status["stream"] is None and status["url"] == url(b, "up")
    assert status["reconnects"] == 0 and status["dropped"] == 0 and status["last_error"] == ""
    assert status["connected_since"] > 0 and status["bytes_sent"] > 30 * 500
    assert [s["name"] for s in status["streams"]] == ["cam"]
    first = upstream.messages[:3]
    assert first[0].metadata == {"width": 1920.0, "height": 1080.0}
    assert first[1].payload == AVC_SEQUENCE_HEADER and first[2].payload == AAC_SEQUENCE_HEADER
    assert upstream.frames == list(range(30))
    # Local timestamps are kept.
    assert [m.timestamp_ms for m in upstream.video] == [i * 40 for i in range(30)]
    # The push ended with the local publish; the destination stays, idle.
    await eventually(lambda: relay_of(a).status()[0]["state"] == "idle")


async def test_runtime_destination_starts_with_headers_then_a_keyframe(
    make_server: ServerFactory,
) -> None:
    b = await make_server()
    a = await make_server(relay=RelayConfig(**FAST))
    relay = relay_of(a)
    assert relay.status() == []
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        await send_frames(publisher, range(13))  # mid-GOP: the last keyframe was frame 10
        with pytest.raises(ValueError):
            relay.add_push("live", "http://example.com/live")
        push_id = relay.add_push("live", url(b, "up"))
        async with rtmp.connect(url(b, "up"), timeout=5) as upstream_conn:
            upstream = Collector(await upstream_conn.play("cam", stop_on_unpublish=False))
            await eventually(lambda: relay.status()[0]["state"] == "publishing")
            await asyncio.sleep(0.05)
            await send_frames(publisher, range(13, 35))
            await eventually(lambda: upstream.frames and upstream.frames[-1] == 34)
            b_stream = b.registry.get("up", "cam")
            assert b_stream is not None and b_stream.is_live
            assert relay.remove_push(push_id) is True
            assert relay.remove_push(push_id) is False
            await eventually(lambda: not b_stream.is_live)
            await upstream.close()
        assert relay.status() == []
        stream = a.registry.get("live", "cam")
        assert stream is not None and stream.queued_outputs == []  # the pusher detached itself
    assert upstream.messages[0].metadata is not None
    assert upstream.messages[1].payload == AVC_SEQUENCE_HEADER
    assert upstream.messages[2].payload == AAC_SEQUENCE_HEADER
    # Video resumes at the next keyframe (20): no undecodable frames 13..19 upstream.
    assert upstream.frames == list(range(20, 35))
    assert is_keyframe(upstream.video[0].payload)


async def test_push_stream_filter(make_server: ServerFactory) -> None:
    b = await make_server()
    a = await make_server(
        relay=RelayConfig(push=[RelayPush(app="live", url=url(b, "up"), stream="only")], **FAST)
    )
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        await pub_conn.publish("other")
        only = await pub_conn.publish("only")
        await start_publishing(only)
        await eventually(lambda: b.registry.get("up", "only") is not None)
        await asyncio.sleep(0.1)
        assert b.registry.get("up", "other") is None
        assert [s["name"] for s in relay_of(a).status()[0]["streams"]] == ["only"]


async def test_destination_goes_away_and_comes_back_local_players_see_no_gap(
    make_server: ServerFactory,
) -> None:
    b_port = free_port()
    b_listen = [f"127.0.0.1:{b_port}"]
    b = await make_server(listen=b_listen)
    up_url = f"rtmp://127.0.0.1:{b_port}/up"
    a = await make_server(relay=RelayConfig(push=[RelayPush(app="live", url=up_url)], **FAST))
    relay = relay_of(a)
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        async with rtmp.connect(url(a, "live"), timeout=5) as local_conn:
            local = Collector(await local_conn.play("cam"))
            upstream_conn = await rtmp.connect(f"{up_url}", timeout=5)
            first = Collector(await upstream_conn.play("cam", stop_on_unpublish=False))
            await send_frames(publisher, range(0, 20), pause_s=0.01)
            await eventually(lambda: len(first.video) >= 10)

            await b.stop()  # the destination goes away...
            await first.close()
            await upstream_conn.close()
            await send_frames(publisher, range(20, 50), pause_s=0.01)
            down = await eventually(lambda: [s for s in relay.status() if s["state"] == "retrying"])
            assert down[0]["last_error"] and down[0]["connected_since"] is None

            b = await make_server(listen=b_listen)  # ...and comes back
            async with rtmp.connect(up_url, timeout=5) as again_conn:
                again = Collector(await again_conn.play("cam", stop_on_unpublish=False))
                frame = 50
                while not again.video:
                    await send_frames(publisher, range(frame, frame + 2), pause_s=0.01)
                    frame += 2
                    assert frame < 2000, "the push never resumed"
                await eventually(lambda: again.frames[-1] == frame - 1)
                await again.close()
            (status,) = relay.status()
            await send_frames(publisher, range(frame, frame + 1))
            await eventually(lambda: local.frames and local.frames[-1] == frame)
            await local.close()
    # Local player: every frame, timestamps continuous, through the whole outage.
    assert local.frames == list(range(frame + 1))
    timestamps = [m.timestamp_ms for m in local.video]
    assert all(b - a == 40 for a, b in zip(timestamps, timestamps[1:], strict=False))
    # Upstream after the return: headers first, video from a keyframe, in order.
    assert again.messages[0].metadata == {"width": 1920.0, "height": 1080.0}
    assert again.messages[1].payload == AVC_SEQUENCE_HEADER
    assert is_keyframe(again.video[0].payload) and again.frames[0] % GOP == 0
    assert again.frames == list(range(again.frames[0], again.frames[-1] + 1))
    assert status["state"] == "publishing" and status["reconnects"] == 1


# -- pull -----------------------------------------------------------------------------------------


async def test_pull_on_demand_starts_with_the_first_player_and_stops_when_idle(
    make_server: ServerFactory,
) -> None:
    b = await make_server()
    a = await make_server(
        relay=RelayConfig(
            pull=[RelayPull(app="mirror", url=url(b, "live"), idle_timeout_s=0.3)], **FAST
        )
    )
    relay = relay_of(a)
    async with rtmp.connect(url(b, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        await send_frames(publisher, range(15))
        assert relay.pull_status() == []
        async with rtmp.connect(url(a, "mirror"), timeout=5) as play_conn:
            player = Collector(await play_conn.play("cam"))
            await eventually(lambda: len(player.video) >= 5)  # GOP from 10, via the pull
            await send_frames(publisher, range(15, 25))
            await eventually(lambda: player.frames[-1] == 24)
            (pull,) = relay.pull_status()
            b_stream = b.registry.get("live", "cam")
            assert b_stream is not None and b_stream.player_count == 1
            await player.close()
        # Within the grace period a new player finds the pull still running.
        await asyncio.sleep(0.1)
        assert relay.pull_status()[0]["state"] == "pulling"
        async with rtmp.connect(url(a, "mirror"), timeout=5) as play_conn:
            second = Collector(await play_conn.play("cam"))
            await send_frames(publisher, range(25, 27))
            await eventually(lambda: second.frames and second.frames[-1] == 26)
            await second.close()
        assert relay.pull_status()[0]["reconnects"] == 0
        # After the grace period without players the pull stops.
        await eventually(lambda: not relay.pull_status(), timeout_s=3)
        await eventually(lambda: b_stream.player_count == 0)
        assert a.registry.get("mirror", "cam") is None
    assert pull["state"] == "pulling" and pull["players"] == 1
    assert pull["url"] == url(b, "live/cam") and pull["bytes_received"] > 0
    assert player.messages[0].metadata == {"width": 1920.0, "height": 1080.0}
    assert player.messages[1].payload == AVC_SEQUENCE_HEADER
    assert player.frames == list(range(10, 25))
    assert second.frames[0] == 20  # the local GOP cache of the pulled stream


async def test_pull_yields_to_a_local_publisher_and_resumes_after_it(
    make_server: ServerFactory,
) -> None:
    b = await make_server()
    a = await make_server(
        relay=RelayConfig(pull=[RelayPull(app="mirror", url=url(b, "live"))], **FAST)
    )
    relay = relay_of(a)
    async with rtmp.connect(url(b, "live"), timeout=5) as remote_conn:
        remote = await remote_conn.publish("cam")
        await start_publishing(remote, metadata=False)
        async with rtmp.connect(url(a, "mirror"), timeout=5) as play_conn:
            player = Collector(await play_conn.play("cam", stop_on_unpublish=False))
            await send_frames(remote, range(0, 5), size=100)
            await eventually(lambda: len(player.video) == 5)
            # A local publisher takes the name: accepted, the pull stops.
            async with rtmp.connect(url(a, "mirror"), timeout=5) as local_conn:
                local = await local_conn.publish("cam")
                assert relay.pull_status() == []
                await start_publishing(local, metadata=False)
                await send_frames(local, range(100, 105), size=200)
                await eventually(lambda: len(player.video) == 10)
                await local.close()
            # The local publisher left, the player is still there: the pull comes back.
            await eventually(lambda: relay.pull_status())
            await asyncio.sleep(0.2)
            await send_frames(remote, range(10, 15), size=100)
            await eventually(lambda: player.frames[-1] == 14)
            await player.close()
    sizes = [len(m.payload) for m in player.video]
    assert sizes[:5] == [109] * 5 and sizes[5:10] == [209] * 5
    assert player.frames[:10] == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    assert player.frames[-1] == 14
    codes = player.codes()
    assert codes.count("NetStream.Play.UnpublishNotify") >= 2
    assert codes.count("NetStream.Play.PublishNotify") >= 3


async def test_static_pull_runs_without_players_and_follows_the_remote_publisher(
    make_server: ServerFactory,
) -> None:
    b = await make_server()
    a = await make_server(
        relay=RelayConfig(
            pull=[RelayPull(app="mirror", url=url(b, "live"), static=["cam"])], **FAST
        )
    )
    relay = relay_of(a)
    (pull,) = await eventually(lambda: relay.pull_status())
    assert pull["static"] is True
    await eventually(lambda: relay.pull_status()[0]["state"] == "waiting")
    for round_ in range(2):
        async with rtmp.connect(url(b, "live"), timeout=5) as pub_conn:
            publisher = await pub_conn.publish("cam")
            await start_publishing(publisher)
            await send_frames(publisher, range(12))
            mirrored = await eventually(lambda: a.registry.get("mirror", "cam"))
            await eventually(lambda m=mirrored: m.is_live and len(m.cache.gop) >= 4)
            assert mirrored.player_count == 0
            async with rtmp.connect(url(a, "mirror"), timeout=5) as play_conn:
                player = Collector(await play_conn.play("cam"))
                await eventually(lambda p=player: p.frames[-1:] == [11])
                await player.close()
        # The remote publisher left: the mirror is not live, the pull waits for it.
        await eventually(lambda: a.registry.get("mirror", "cam") is None)
        await eventually(lambda: relay.pull_status()[0]["state"] == "waiting")
        assert player.frames == [10, 11], round_


async def test_pulled_streams_are_pushed_like_published_ones(make_server: ServerFactory) -> None:
    origin = await make_server()
    upstream = await make_server()
    edge = await make_server(
        relay=RelayConfig(
            pull=[RelayPull(app="mirror", url=url(origin, "live"), static=["cam"])],
            push=[RelayPush(app="mirror", url=url(upstream, "copy"))],
            **FAST,
        )
    )
    async with rtmp.connect(url(origin, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        async with rtmp.connect(url(upstream, "copy"), timeout=5) as play_conn:
            player = Collector(await play_conn.play("cam", stop_on_unpublish=False))
            await eventually(lambda: relay_of(edge).status()[0]["state"] == "publishing")
            await asyncio.sleep(0.1)
            await send_frames(publisher, range(15))
            await eventually(lambda: player.frames[-1:] == [14])
            await player.close()
    assert player.frames == list(range(15))


# -- configuration --------------------------------------------------------------------------------


def test_relay_configuration_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(
        """
[relay]
reconnect_max_s = 5

[[relay.push]]
app = "live"
url = "rtmp://upstream.example/live"

[[relay.push]]
app = "live"
stream = "main"
url = "rtmps://backup.example:443/app?key=secret"

[[relay.pull]]
app = "mirror"
url = "rtmp://origin.example/live"
static = ["always"]
idle_timeout_s = 3
"""
    )
    relay = load_config(path).relay
    assert [(p.app, p.stream) for p in relay.push] == [("live", None), ("live", "main")]
    assert relay.pull[0].static == ["always"] and relay.pull[0].idle_timeout_s == 3
    assert relay.reconnect_max_s == 5
    path.write_text('[[relay.push]]\napp = "live"\nurl = "http://nope/live"\n')
    with pytest.raises(ConfigError, match="relay.push.0.url"):
        load_config(path)


async def test_reload_replaces_configured_destinations_and_keeps_runtime_ones(
    make_server: ServerFactory,
) -> None:
    a = await make_server(
        relay=RelayConfig(
            push=[
                RelayPush(app="live", url="rtmp://127.0.0.1:9/one"),
                RelayPush(app="live", url="rtmp://127.0.0.1:9/two"),
            ],
            **FAST,
        )
    )
    relay = relay_of(a)
    runtime = relay.add_push("other", "rtmp://127.0.0.1:9/three")
    before = {s["url"]: s["id"] for s in relay.status()}
    new = ServerConfig(
        listen=a.config.listen,
        http=a.config.http,
        relay=RelayConfig(
            push=[
                RelayPush(app="live", url="rtmp://127.0.0.1:9/two"),
                RelayPush(app="live", url="rtmp://127.0.0.1:9/four"),
            ]
        ),
    )
    relay.reload(new)
    after = {s["url"]: (s["id"], s["origin"]) for s in relay.status()}
    assert set(after) == {
        "rtmp://127.0.0.1:9/two",
        "rtmp://127.0.0.1:9/three",
        "rtmp://127.0.0.1:9/four",
    }
    assert after["rtmp://127.0.0.1:9/two"][0] == before["rtmp://127.0.0.1:9/two"]
    assert after["rtmp://127.0.0.1:9/three"] == (runtime, "api")


async def test_unreachable_destination_retries_with_backoff(make_server: ServerFactory) -> None:
    dead = f"rtmp://127.0.0.1:{free_port()}/up"
    a = await make_server(relay=RelayConfig(push=[RelayPush(app="live", url=dead)], **FAST))
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        status = await eventually(lambda: relay_of(a).status()[0]["state"] == "retrying")
        # The local stream is not held up by the dead destination.
        async with rtmp.connect(url(a, "live"), timeout=5) as play_conn:
            player = Collector(await play_conn.play("cam"))
            await send_frames(publisher, range(20))
            await eventually(lambda: player.frames[-1:] == [19])
            await player.close()
        pusher = next(iter(relay_of(a).pushes.destinations.values())).pushers[("live", "cam")]
        await eventually(lambda: pusher.backoff.failures >= 3)
    assert status
    assert "cannot connect" in relay_of(a).status()[0]["last_error"]


# -- liveness: upstreams that stop reading or sending ----------------------------------------------


async def test_push_to_a_server_that_accepts_and_never_reads_is_retried(
    make_server: ServerFactory,
) -> None:
    """A TCP peer that accepts and never answers: the push times out and retries with
    backoff (within 30 s), logged in /api/relays, while local players keep playing."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never reads, never writes

    black_hole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = black_hole.sockets[0].getsockname()[1]
    a = await make_server(
        relay=RelayConfig(
            push=[RelayPush(app="live", url=f"rtmp://127.0.0.1:{port}/up")],
            **{**FAST, "timeout_s": 3.0},
        )
    )
    try:
        async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
            publisher = await pub_conn.publish("cam")
            await start_publishing(publisher)
            async with rtmp.connect(url(a, "live"), timeout=5) as play_conn:
                player = Collector(await play_conn.play("cam"))
                for second in range(12):
                    await send_frames(publisher, range(second * 25, (second + 1) * 25))
                    if len(accepted) >= 2:
                        break
                    await asyncio.sleep(1.0)
                assert len(accepted) >= 2  # a second connection: it was retried
                (status,) = relay_of(a).status()
                assert "no answer to the handshake" in status["last_error"], status
                await eventually(lambda: player.frames and player.frames[-1] % 25 == 24)
                await player.close()
    finally:
        for writer in accepted:
            writer.close()
        black_hole.close()


async def test_push_to_an_upstream_that_stops_reading_is_dropped_and_retried(
    make_server: ServerFactory,
) -> None:
    """The upstream completes the publish, then stops reading: the write does not drain
    within timeout_s (or the queue overflows); the push reconnects."""
    b = await make_server()
    a = await make_server(
        relay=RelayConfig(
            push=[RelayPush(app="live", url=url(b, "up"))],
            push_queue_bytes=256 * 1024,
            **{**FAST, "timeout_s": 2.0},
        )
    )
    async with rtmp.connect(url(a, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        await send_frames(publisher, range(10))
        b_stream = await eventually(lambda: b.registry.get("up", "cam"))
        await eventually(lambda: b_stream.is_live)
        (stalled,) = [c for c in b.connections if c.publishing]
        stalled.transport.pause_reading()
        frame = 10
        deadline = asyncio.get_running_loop().time() + 30
        while "upstream" not in relay_of(a).status()[0]["last_error"]:
            assert asyncio.get_running_loop().time() < deadline, relay_of(a).status()
            await send_frames(publisher, range(frame, frame + 5), size=20_000)
            frame += 5
            await asyncio.sleep(0.1)
        # B cannot know (it does not read): its stale publisher holds the name until it
        # goes; then the retry publishes again.
        stalled.close(abort=True)
        while relay_of(a).status()[0]["reconnects"] < 1:
            assert asyncio.get_running_loop().time() < deadline, relay_of(a).status()
            await send_frames(publisher, range(frame, frame + 5))
            frame += 5
            await asyncio.sleep(0.1)


async def test_pull_from_an_upstream_that_stops_sending_reconnects(
    make_server: ServerFactory,
) -> None:
    """The origin keeps the TCP connection but stops sending a live stream: after
    timeout_s without media the pull reconnects, and local players get video again."""
    b = await make_server()
    a = await make_server(
        relay=RelayConfig(
            pull=[RelayPull(app="mirror", url=url(b, "live"))], **{**FAST, "timeout_s": 1.5}
        )
    )
    async with rtmp.connect(url(b, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await start_publishing(publisher)
        async with rtmp.connect(url(a, "mirror"), timeout=5) as play_conn:
            player = Collector(await play_conn.play("cam", stop_on_unpublish=False))
            frame = 0
            while not player.frames:
                await send_frames(publisher, range(frame, frame + 5), pause_s=0.02)
                frame += 5
            # The origin stops sending to the pull (the TCP connection stays open).
            (pull_conn,) = [c for c in b.connections if c.playing]
            for play in pull_conn.playing.values():
                play.player.set_paused(True)
            stalled_at = len(player.frames)
            deadline = asyncio.get_running_loop().time() + 20
            while len(player.frames) <= stalled_at + 10:
                assert asyncio.get_running_loop().time() < deadline, relay_of(a).pull_status()
                await send_frames(publisher, range(frame, frame + 5), pause_s=0.02)
                frame += 5
            (pull,) = relay_of(a).pull_status()
            assert pull["reconnects"] >= 1 and "nothing received" in pull["last_error"], pull
            await player.close()
