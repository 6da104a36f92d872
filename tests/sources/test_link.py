"""Worker links in one process (sources/link.py): two in-process servers, one serving
links on a unix socket as a worker does, our client as publishers and players."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import aiortmp.client as rtmp
from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.events import StatusReceived
from aiortmp.server.app import RTMPServer
from aiortmp.server.connection import RTMPServerProtocol
from aiortmp.server.worker import LinkHost
from aiortmp.sources.link import HandoverLink, link_upstream
from aiortmp.sources.pull import Upstream

from ..conftest import ServerFactory, eventually, url
from ..server.media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame


class _Owner:
    """A locator that says ``live/<name>`` lives on another server's link socket."""

    def __init__(self, path: str) -> None:
        self.path = path

    def locate(self, app: str, name: str) -> Upstream | None:
        return link_upstream(self.path, app, name) if app == "live" else None


@pytest.fixture
async def owner(
    make_server: ServerFactory, tmp_path: Path
) -> AsyncIterator[tuple[RTMPServer, str, LinkHost]]:
    """A server that serves links on ``tmp_path/link.sock``, like a worker."""
    server = await make_server()
    host = LinkHost(server)
    path = str(tmp_path / "link.sock")
    unix = await asyncio.get_running_loop().create_unix_server(
        lambda: RTMPServerProtocol(host), path
    )
    yield server, path, host
    unix.close()
    for conn in list(host.connections):
        conn.close()


async def _publish(server: RTMPServer, name: str) -> tuple[rtmp.Connection, rtmp.Publisher]:
    conn = await rtmp.connect(url(server, "live"), timeout=5)
    publisher = await conn.publish(name)
    await publisher.send_video(0, AVC_SEQUENCE_HEADER)
    await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
    return conn, publisher


async def _events(player: rtmp.Player, until: Any, timeout_s: float = 5.0) -> list[Any]:
    got: list[Any] = []

    async def run() -> None:
        async for item in player.events():
            got.append(item)
            if until(item, got):
                return

    await asyncio.wait_for(run(), timeout_s)
    return got


def _video(items: list[Any]) -> list[bytes]:
    return [i.payload for i in items if isinstance(i, rtmp.MediaMessage) and i.type_id == 9]


def _statuses(items: list[Any]) -> list[str]:
    return [i.code for i in items if isinstance(i, StatusReceived)]


async def test_a_link_plays_the_owners_stream_and_neither_side_announces_it(
    make_server: ServerFactory, owner: tuple[RTMPServer, str, LinkHost]
) -> None:
    source, path, host = owner
    here = await make_server()
    assert here.relay is not None
    here.relay.pulls.locators.insert(0, _Owner(path))
    events: list[ServerEvent] = []
    here.subscribe(events.append)
    owner_events: list[ServerEvent] = []
    source.subscribe(owner_events.append)
    conn, publisher = await _publish(source, "cam")
    async with rtmp.connect(url(here, "live"), timeout=5) as play_conn:
        player = await play_conn.play("cam", stop_on_unpublish=False)
        for i in range(3):
            await publisher.send_video(i * 40, video_frame(i, 100))
        got = await _events(player, lambda item, got: len(_video(got)) >= 4)
        assert _video(got)[:4] == [AVC_SEQUENCE_HEADER, *(video_frame(i, 100) for i in range(3))]
        stream = here.registry.get("live", "cam")
        assert stream is not None and stream.source is not None
        assert stream.source.kind == "link"
        # The owner serves the link as a player that is no session of it.
        assert len(host.connections) == 1 and len(source.connections) == 1
        assert source.registry.get("live", "cam").player_count == 1  # type: ignore[union-attr]
    kinds = [e.kind for e in events]
    assert EventKind.PUBLISH not in kinds  # the link copy is not announced here
    assert [e.kind for e in owner_events if e.kind is EventKind.PLAY] == []  # nor its play
    await conn.close()


async def test_a_handover_link_takes_over_when_the_publisher_moves(
    make_server: ServerFactory, owner: tuple[RTMPServer, str, LinkHost]
) -> None:
    new_owner, path, _ = owner
    old = await make_server()
    old_conn, old_pub = await _publish(old, "mv")
    await old_pub.send_video(0, video_frame(0, 100))
    async with rtmp.connect(url(old, "live"), timeout=5) as play_conn:
        player = await play_conn.play("mv", stop_on_unpublish=False)
        await _events(player, lambda item, got: len(_video(got)) >= 2)
        stream = old.registry.get("live", "mv")
        assert stream is not None
        ended: list[HandoverLink] = []
        link = HandoverLink(stream, 99, on_end=ended.append)
        stream.successor = link
        # The publisher moves: the new owner gets it from a keyframe on...
        new_conn, new_pub = await _publish(new_owner, "mv")
        await new_pub.send_video(1000, video_frame(25, 100))
        link.point_to(rtmp.unix_url(path, "live", "mv"))
        await eventually(lambda: link.url is not None)
        await old_pub.send_video(40, video_frame(1, 100))
        await old_conn.close()  # ...and leaves the old server.
        await eventually(lambda: stream.source is link)
        for i in range(26, 30):
            await new_pub.send_video(1000 + (i - 25) * 40, video_frame(i, 100))
            await new_pub.send_audio(1000 + (i - 25) * 40, audio_frame())
        got = await _events(player, lambda item, got: video_frame(29, 100) in _video(got))
        # No unpublish, no publish: the players never noticed.
        assert _statuses(got) == []
        frames = [p for p in _video(got) if p != AVC_SEQUENCE_HEADER]
        assert frames == [video_frame(i, 100) for i in (1, 25, 26, 27, 28, 29)]
        assert not ended and stream.is_live
        # The new owner's publisher leaves: now the players are told.
        await new_conn.close()
        got = await _events(
            player, lambda item, got: NetStatusCode.PLAY_UNPUBLISH_NOTIFY in _statuses(got)
        )
        await eventually(lambda: bool(ended))
        assert not stream.is_live and stream.successor is None


async def test_a_handover_link_without_a_new_owner_ends_the_stream(
    make_server: ServerFactory,
) -> None:
    old = await make_server()
    old_conn, old_pub = await _publish(old, "gone")
    async with rtmp.connect(url(old, "live"), timeout=5) as play_conn:
        player = await play_conn.play("gone", stop_on_unpublish=False)
        stream = old.registry.get("live", "gone")
        assert stream is not None
        ended: list[HandoverLink] = []
        link = HandoverLink(stream, 99, wait_s=0.3, on_end=ended.append)
        stream.successor = link
        loop = asyncio.get_running_loop()
        left_at = loop.time()
        await old_conn.close()
        await _events(
            player, lambda item, got: NetStatusCode.PLAY_UNPUBLISH_NOTIFY in _statuses(got)
        )
        assert loop.time() - left_at >= 0.3  # it waited for a new owner first
        assert ended == [link] and stream.source is None
    _ = old_pub
