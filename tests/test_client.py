"""The asyncio client against in-process servers over loopback (issue 5: client)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import aiortmp
import aiortmp.client as rtmp
from aiortmp.media.tags import AudioTag, VideoKind, VideoTag
from aiortmp.protocol import amf0
from aiortmp.protocol.control import StreamBegin, StreamEOF
from aiortmp.protocol.events import ConnectRequest, PlayRequest, StatusReceived
from aiortmp.protocol.messages import Message, MessageType
from aiortmp.protocol.session import ClientSession, ServerSession
from aiortmp.server.access import ALLOW, Decision, Request

from .conftest import ServerFactory, eventually, url
from .server.media import AAC_SEQUENCE_HEADER, AVC_SEQUENCE_HEADER, audio_frame, video_frame


class Recorder:
    """An access policy that records every request and answers ``decide(request)``."""

    def __init__(self, decide: Callable[[Request], Decision] = lambda r: ALLOW) -> None:
        self.requests: list[Request] = []
        self.decide = decide

    async def check(self, request: Request) -> Decision:
        self.requests.append(request)
        return self.decide(request)


async def take(
    player: rtmp.Player, count: int, *, events: bool = False, timeout_s: float = 5.0
) -> list[Any]:
    """The next ``count`` media messages (or items of ``player.events()``)."""
    out: list[Any] = []

    async def run() -> None:
        async for item in player.events() if events else player:
            out.append(item)
            if len(out) >= count:
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


# -- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "app", "stream", "port", "tc_url"),
    [
        ("rtmp://h/live", "live", "", 1935, "rtmp://h:1935/live"),
        ("rtmp://h:1940/live/cam", "live", "cam", 1940, "rtmp://h:1940/live"),
        ("rtmp://h/live/cam?token=abc", "live", "cam?token=abc", 1935, "rtmp://h:1935/live"),
        ("rtmp://h/live?token=abc", "live?token=abc", "", 1935, "rtmp://h:1935/live"),
        ("rtmp://h/live/a/b", "live", "a/b", 1935, "rtmp://h:1935/live"),
        ("rtmps://h/live/cam", "live", "cam", 443, "rtmps://h:443/live"),
        ("RTMP://[::1]:1936/live/x", "live", "x", 1936, "rtmp://[::1]:1936/live"),
    ],
)
def test_parse_url(text: str, app: str, stream: str, port: int, tc_url: str) -> None:
    parsed = rtmp.parse_url(text)
    assert (parsed.app, parsed.stream, parsed.port, parsed.tc_url) == (app, stream, port, tc_url)


@pytest.mark.parametrize(
    "text", ["http://h/live", "rtmp:///live", "rtmp://h", "rtmp://h/", "rtmp://h:99999/live"]
)
def test_parse_url_rejects(text: str) -> None:
    with pytest.raises(rtmp.ClientError):
        rtmp.parse_url(text)


def test_join_url_keeps_the_query_at_the_end() -> None:
    assert rtmp.join_url("rtmp://h/live", "cam") == "rtmp://h/live/cam"
    assert rtmp.join_url("rtmp://h/live/", "cam") == "rtmp://h/live/cam"
    assert rtmp.join_url("rtmp://h/live?key=k", "cam") == "rtmp://h/live/cam?key=k"


def test_connect_is_exported_at_the_top_level() -> None:
    assert aiortmp.connect is rtmp.connect


# -- backoff -----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = rtmp.Backoff(initial_s=0.5, max_s=4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
    jittery = rtmp.Backoff(initial_s=1.0, max_s=1.0, jitter=0.1)
    assert all(0.9 <= jittery.next_delay() <= 1.1 for _ in range(100))


# -- handshake and connect ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def delaying_proxy(target: tuple[str, int], delay_s: float) -> AsyncIterator[int]:
    """A TCP proxy that holds every server→client chunk for ``delay_s`` (a distant server)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, d: float) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await asyncio.sleep(d)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(client_r, server_w, 0.0), pipe(server_r, client_w, delay_s))

    proxy = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield proxy.sockets[0].getsockname()[1]
    finally:
        proxy.close()


async def test_connect_waits_for_the_handshake_of_a_slow_server(make_server: ServerFactory) -> None:
    server = await make_server()
    async with delaying_proxy(server.addresses[0], 0.05) as port:
        async with rtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=5) as conn:
            assert conn.server_info["code"] == "NetConnection.Connect.Success"
            publisher = await conn.publish("slow")
            await publisher.send_video(0, AVC_SEQUENCE_HEADER)


@pytest.mark.parametrize("digest", [True, False])
async def test_both_handshakes(make_server: ServerFactory, digest: bool) -> None:
    server = await make_server()
    conn = await rtmp.connect(url(server, "live"), timeout=5, digest_handshake=digest)
    try:
        assert conn.server_info["code"] == "NetConnection.Connect.Success"
        assert not conn.closed
    finally:
        await conn.close()
    assert conn.closed


async def test_refused_tcp_is_a_client_error_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(rtmp.ClientError) as info:
        await rtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=2)
    assert not isinstance(info.value, rtmp.ClientTimeoutError)


async def test_silent_server_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept, never answer

    silent = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(rtmp.ClientTimeoutError, match="handshake"):
        await rtmp.connect(f"rtmp://127.0.0.1:{port}/live", timeout=0.3)
    assert loop.time() - began < 2
    silent.close()
    for writer in accepted:
        writer.close()


async def test_unanswered_connect_times_out(make_server: ServerFactory) -> None:
    server = await make_server()
    never = asyncio.Event()

    class Stuck:
        async def check(self, request: Request) -> Decision:
            await never.wait()
            return ALLOW

    server.policies.append(Stuck())
    with pytest.raises(rtmp.ClientTimeoutError, match="connect"):
        await rtmp.connect(url(server, "live"), timeout=0.3)


# -- rejections and auth query strings ---------------------------------------------------------


async def test_rejections_carry_the_status_code(make_server: ServerFactory) -> None:
    server = await make_server()

    def decide(request: Request) -> Decision:
        if request.action == "connect" and request.app == "closed":
            return Decision(allowed=False, reason="app closed")
        if request.action == "play" and request.name == "secret":
            return Decision(allowed=False, reason="not for you")
        return ALLOW

    server.policies.append(Recorder(decide))
    with pytest.raises(rtmp.RejectedError) as connect_info:
        await rtmp.connect(url(server, "closed"), timeout=5)
    assert connect_info.value.code == "NetConnection.Connect.Rejected"
    assert connect_info.value.description == "app closed"

    async with rtmp.connect(url(server, "live"), timeout=5) as first:
        await first.publish("taken")
        async with rtmp.connect(url(server, "live"), timeout=5) as second:
            with pytest.raises(rtmp.RejectedError) as publish_info:
                await second.publish("taken")
            assert publish_info.value.code == "NetStream.Publish.BadName"
            with pytest.raises(rtmp.RejectedError) as play_info:
                await second.play("secret")
            assert play_info.value.code == "NetStream.Play.Failed"
            assert "not for you" in str(play_info.value)
            # The connection survives rejections.
            player = await second.play("taken")
            assert player.started


async def test_query_strings_reach_the_server(make_server: ServerFactory) -> None:
    server = await make_server()
    recorder = Recorder()
    server.policies.append(recorder)
    async with rtmp.connect(url(server, "live?app_token=a1"), timeout=5):
        pass
    async with rtmp.connect(url(server, "live/cam?token=t1"), timeout=5) as conn:
        await conn.publish()
        await conn.play("other?token=t2")
    got = [(r.action, r.app, r.name, r.query) for r in recorder.requests]
    assert got == [
        ("connect", "live", "", "app_token=a1"),
        ("connect", "live", "", ""),
        ("publish", "live", "cam", "token=t1"),
        ("play", "live", "other", "token=t2"),
    ]


# -- publish and play --------------------------------------------------------------------------


async def test_media_messages_carry_parsed_headers_and_data(make_server: ServerFactory) -> None:
    server = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        publisher = await conn.publish("cam")
        player = await conn.play("cam")
        await publisher.send_flv_tag(
            18, 0, amf0.encode("onMetaData", amf0.ECMAArray({"width": 320.0}))
        )
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
        await publisher.send_video(40, video_frame(0, 100))
        await publisher.send_audio(40, audio_frame())
        await publisher.send_data(80, "onCuePoint", {"name": "cue"})
        await publisher.send_video(120, video_frame(1, 100))
        got = await take(player, 7)
        stream = server.registry.get("live", "cam")
        assert stream is not None and stream.metadata == {"width": 320.0}
    # Session plumbing (|RtmpSampleAccess, onStatus NetStream.Data.Start) is not media.
    metadata, vhead, ahead, key, audio, cue, inter = got
    assert metadata.metadata == {"width": 320.0} and metadata.header is None
    assert isinstance(vhead.header, VideoTag) and vhead.is_sequence_header
    assert vhead.header.kind is VideoKind.SEQUENCE_HEADER and vhead.video is vhead.header
    assert isinstance(ahead.header, AudioTag) and ahead.is_sequence_header
    assert ahead.audio is ahead.header and ahead.video is None
    # The server's timeline starts at the first coded frame (sent at 40 ms).
    assert key.is_keyframe and (key.type_id, key.timestamp_ms) == (9, 0)
    assert audio.type_id == 8 and not audio.is_keyframe and audio.audio is not None
    assert cue.type_id == MessageType.DATA_AMF0 and cue.timestamp_ms == 40
    assert cue.data is not None and cue.data.name == "onCuePoint"
    assert cue.data.values == ({"name": "cue"},)
    assert not inter.is_keyframe and inter.video is not None and inter.timestamp_ms == 80


async def test_unparsable_payload_has_no_header_and_parsing_can_be_off(
    make_server: ServerFactory,
) -> None:
    server = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        publisher = await conn.publish("raw")
        parsed = await conn.play("raw")
        unparsed = await conn.play("raw", parse_headers=False)
        # A new player starts at a keyframe; then a tag with codec id 15 (not a codec).
        await publisher.send_video(0, video_frame(0, 10))
        await publisher.send_video(40, b"\x1f")
        good, bad = await take(parsed, 2)
        (plain,) = [m for m in await take(unparsed, 2) if m.timestamp_ms == 0]
    assert bad.header is None and bad.payload == b"\x1f" and not bad.is_keyframe
    assert good.is_keyframe
    assert plain.header is None and plain.payload == good.payload


async def test_events_interleave_notifications_with_media(make_server: ServerFactory) -> None:
    server = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as play_conn:
        player = await play_conn.play("ev", stop_on_unpublish=False)
        for round_ in range(2):
            async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
                publisher = await pub_conn.publish("ev")
                await publisher.send_video(round_ * 1000, video_frame(0, 10))
                await publisher.close()
        events = await take(player, 13, events=True)
        assert not player.ended
    kinds = [e.code if isinstance(e, StatusReceived) else type(e).__name__ for e in events]
    publish_cycle = [
        "StreamBegin",
        "NetStream.Play.PublishNotify",
        "MediaMessage",
        "NetStream.Play.UnpublishNotify",
        "StreamEOF",
    ]
    assert kinds == [
        "StreamBegin",
        "NetStream.Play.Reset",
        "NetStream.Play.Start",
        *publish_cycle,
        *publish_cycle,
    ]
    assert isinstance(events[3], StreamBegin) and isinstance(events[7], StreamEOF)
    assert events[3].stream_id == events[7].stream_id == player.stream_id
    # The second publish (its timestamps restart) continues the stream's timeline.
    first, second = [e.timestamp_ms for e in events if isinstance(e, rtmp.MediaMessage)]
    assert first == 0 and 0 < second <= 100


async def test_default_player_ends_when_the_publisher_leaves(make_server: ServerFactory) -> None:
    server = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        publisher = await conn.publish("short")
        player = await conn.play("short")
        for i in range(3):
            await publisher.send_video(i * 40, video_frame(i, 10))
        await publisher.close()
        got = [m.timestamp_ms async for m in player]
        assert got == [0, 40, 80] and player.ended


async def test_a_play_that_ends_in_the_read_that_starts_it_ends_the_iteration() -> None:
    """A short recorded play with a large buffer: Play.Start, the media, Play.Stop and
    Stream EOF come in one TCP segment, before ``play()`` has resumed. The iteration gives
    the media and ends (it used to wait for more until its idle timeout)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = ServerSession()
        try:
            while data := await reader.read(65536):
                session.receive_data(data)
                while (event := session.next_event()) is not None:
                    if isinstance(event, ConnectRequest):
                        session.accept_connect(event)
                    elif isinstance(event, PlayRequest):
                        session.accept_play(event, recorded=True)
                        for i in range(3):
                            session.connection.send_message(
                                Message(
                                    type_id=MessageType.VIDEO,
                                    timestamp_ms=i * 40,
                                    message_stream_id=event.stream_id,
                                    payload=video_frame(i, 10),
                                    chunk_stream_id=6,
                                )
                            )
                        session.notify_play_complete(event.stream_id, event.name)
                writer.write(session.data_to_send())  # one write for all of it
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with rtmp.connect(f"rtmp://127.0.0.1:{port}/vod", timeout=5) as conn:
            player = await conn.play("clip.flv", start_ms=0, idle_timeout_s=10.0)
            got = await asyncio.wait_for(_timestamps(player), 5)
            assert got == [0, 40, 80] and player.ended
            assert [s.code for s in player.statuses][-1] == "NetStream.Play.Stop"
    finally:
        server.close()
        await server.wait_closed()


async def _timestamps(player: rtmp.Player) -> list[int]:
    return [m.timestamp_ms async for m in player if m.type_id == MessageType.VIDEO]


async def test_player_idle_timeout(make_server: ServerFactory) -> None:
    server = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        player = await conn.play("nobody", idle_timeout_s=0.2)
        with pytest.raises(rtmp.ClientTimeoutError, match="nothing received"):
            async for _ in player:
                pass


async def test_lost_connection_is_an_error_for_publishers_and_players(
    make_server: ServerFactory,
) -> None:
    server = await make_server()
    conn = await rtmp.connect(url(server, "live"), timeout=5)
    publisher = await conn.publish("gone")
    player = await conn.play("gone", stop_on_unpublish=False)
    for server_conn in list(server.connections):
        server_conn.close(abort=True)
    await asyncio.wait_for(conn.wait_closed(), 5)
    with pytest.raises(rtmp.ClientError):
        await publisher.send_video(0, video_frame(0, 10))
    with pytest.raises(rtmp.ClientError, match="closed by the server"):
        async for _ in player:
            pass
    with pytest.raises(rtmp.ClientError):
        await conn.play("again")
    await conn.close()


async def test_concurrent_writers_all_resume_after_backpressure() -> None:
    events: list[Any] = []
    protocol = rtmp._ClientProtocol(ClientSession(), events.append, events.append)
    protocol.pause_writing()
    waiters = [asyncio.ensure_future(protocol.drain()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()  # one writer gives up: the others still wait
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters[1:])
    protocol.resume_writing()
    await asyncio.wait_for(asyncio.gather(*waiters[1:]), 1)


# -- reconnecting ------------------------------------------------------------------------------


async def test_reconnecting_survives_a_server_restart(make_server: ServerFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listen = [f"127.0.0.1:{port}"]
    server = await make_server(listen=listen)
    errors: list[Exception] = []
    published: list[int] = []
    backoff = rtmp.Backoff(initial_s=0.05, max_s=0.2)
    loop = asyncio.get_running_loop()

    connections: list[rtmp.Connection] = []

    async def publish_twice() -> None:
        loop_ = rtmp.reconnecting(
            f"rtmp://127.0.0.1:{port}/live",
            timeout=2,
            backoff=backoff,
            on_error=lambda exc, delay: errors.append(exc),
        )
        # aclosing: leaving the loop closes the last connection at once.
        async with contextlib.aclosing(loop_) as connections_:
            async for conn in connections_:
                connections.append(conn)
                try:
                    publisher = await conn.publish(f"cam{len(published)}")
                    published.append(conn.url.port)
                    if len(published) == 2:
                        return
                    await conn.wait_closed()
                    await publisher.send_video(0, b"")  # raises: the connection is gone
                except rtmp.ClientError:
                    continue

    task = asyncio.ensure_future(publish_twice())
    while not published:
        await asyncio.sleep(0.01)
    await server.stop()
    began = loop.time()
    while not errors and loop.time() - began < 5:
        await asyncio.sleep(0.05)  # at least one refused attempt while the server is down
    await make_server(listen=listen)
    await asyncio.wait_for(task, 10)
    assert len(published) == 2 and errors
    assert len(connections) == 2 and all(c.closed for c in connections)


async def test_reconnecting_gives_up_on_rejection_unless_asked(make_server: ServerFactory) -> None:
    server = await make_server()
    server.policies.append(Recorder(lambda r: Decision(allowed=False, reason="banned")))
    with pytest.raises(rtmp.RejectedError):
        async for _ in rtmp.reconnecting(url(server, "live"), timeout=2):
            raise AssertionError("a rejected connect was yielded")
    attempts: list[Exception] = []

    async def retry() -> None:
        async for _ in rtmp.reconnecting(
            url(server, "live"),
            timeout=2,
            backoff=rtmp.Backoff(initial_s=0.01, max_s=0.01),
            retry_rejected=True,
            on_error=lambda exc, delay: attempts.append(exc),
        ):
            raise AssertionError("a rejected connect was yielded")

    task = asyncio.ensure_future(retry())
    while len(attempts) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    assert all(isinstance(e, rtmp.RejectedError) for e in attempts)


# -- unix sockets and E-RTMP v2 ReconnectRequest -------------------------------------------


def test_unix_urls_carry_the_socket_path() -> None:
    text = rtmp.unix_url("/run/aiortmp dir/w1.sock", "live", "a b/c")
    assert text == "rtmp+unix://%2Frun%2Faiortmp%20dir%2Fw1.sock/live/a%20b/c"
    parsed = rtmp.parse_url(text)
    assert parsed.unix_path == parsed.host == "/run/aiortmp dir/w1.sock"
    assert (parsed.app, parsed.stream, parsed.port) == ("live", "a b/c", 0)
    assert parsed.tc_url == "rtmp+unix://%2Frun%2Faiortmp%20dir%2Fw1.sock/live"
    assert rtmp.parse_url(parsed.tc_url).unix_path == parsed.unix_path
    with pytest.raises(rtmp.ClientError):
        rtmp.parse_url("rtmp+unix:///live/cam")  # no socket path


async def test_publish_and_play_over_a_unix_socket(
    make_server: ServerFactory, tmp_path: Any
) -> None:
    from aiortmp.server.connection import RTMPServerProtocol

    server = await make_server()
    path = str(tmp_path / "s.sock")
    unix = await asyncio.get_running_loop().create_unix_server(
        lambda: RTMPServerProtocol(server), path
    )
    try:
        async with rtmp.connect(rtmp.unix_url(path, "live"), timeout=5) as pub_conn:
            publisher = await pub_conn.publish("cam")
            async with rtmp.connect(url(server, "live"), timeout=5) as conn:
                player = await conn.play("cam")
                await publisher.send_video(0, AVC_SEQUENCE_HEADER)
                await publisher.send_video(0, video_frame(0, 100))
                got = await take(player, 2)
        assert [m.payload for m in got] == [AVC_SEQUENCE_HEADER, video_frame(0, 100)]
    finally:
        unix.close()
    with pytest.raises(rtmp.ClientError, match="cannot connect"):
        await rtmp.connect(rtmp.unix_url(path, "live"), timeout=5)


async def _publisher_connection(server: Any) -> Any:
    (conn,) = [c for c in server.connections if c.publishing]
    return conn


async def test_a_publisher_follows_a_reconnect_request_at_the_next_keyframe(
    make_server: ServerFactory,
) -> None:
    old, new = await make_server(), await make_server()
    async with rtmp.connect(url(old, "live?token=t"), timeout=5) as conn:
        publisher = await conn.publish("cam")
        await publisher.send_metadata({"width": 320.0})
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_audio(0, AAC_SEQUENCE_HEADER)
        for i in range(3):
            await publisher.send_video(i * 40, video_frame(i, 100, gop=3))
        server_conn = await _publisher_connection(old)
        host, port = new.addresses[0]
        server_conn.session.request_reconnect(tc_url=f"rtmp://{host}:{port}/live")
        server_conn.flush()
        await eventually(lambda: conn.reconnect_request is not None)
        assert conn.reconnect_request.tc_url == f"rtmp://{host}:{port}/live"
        # Up to the next keyframe it stays; the keyframe goes to the new server.
        await publisher.send_video(120, video_frame(4, 100, gop=3))
        assert publisher.moves == 0 and publisher.connection is conn
        old_stream = old.registry.get("live", "cam")
        assert old_stream is not None and old_stream.is_live
        async with rtmp.connect(url(new, "live"), timeout=5) as play_conn:
            player = await play_conn.play("cam", stop_on_unpublish=False)
            await publisher.send_video(160, video_frame(6, 100, gop=3))  # a keyframe
            await publisher.send_audio(160, audio_frame())
            assert publisher.moves == 1 and publisher.connection is not conn
            got = await take(player, 5)
        # The new server's stream starts decodable: metadata, configuration, keyframe.
        assert got[0].metadata == {"width": 320.0}
        assert {m.payload for m in got[1:3]} == {AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER}
        assert got[3].payload == video_frame(6, 100, gop=3)
        assert got[4].payload == audio_frame()
        # The old server saw the publish end and the connection go; the query went along.
        await eventually(lambda: not old.connections)
        assert not old_stream.is_live
        (new_conn,) = new.connections - {c for c in new.connections if c.playing}
        assert new_conn.session.connect_properties["app"] == "live?token=t"
        moved = publisher.connection
    # Closing the original connection closes the one the publisher moved to.
    assert moved.closed
    await eventually(lambda: not new.connections)


async def test_a_publisher_that_cannot_move_stays(make_server: ServerFactory) -> None:
    old = await make_server()
    async with rtmp.connect(url(old, "live"), timeout=2) as conn:
        publisher = await conn.publish("cam")
        async with rtmp.connect(url(old, "live"), timeout=5) as play_conn:
            player = await play_conn.play("cam")
            await publisher.send_video(0, AVC_SEQUENCE_HEADER)
            server_conn = await _publisher_connection(old)
            with socket.socket() as unused:
                unused.bind(("127.0.0.1", 0))
                closed_port = unused.getsockname()[1]
            server_conn.session.request_reconnect(tc_url=f"rtmp://127.0.0.1:{closed_port}/live")
            server_conn.flush()
            await eventually(lambda: conn.reconnect_request is not None)
            await publisher.send_video(0, video_frame(0, 100))
            await publisher.send_video(40, video_frame(1, 100))
            got = await take(player, 3)
        assert [m.payload for m in got[1:]] == [video_frame(0, 100), video_frame(1, 100)]
        assert publisher.moves == 0 and publisher.connection is conn


async def test_follow_reconnect_false_neither_announces_nor_follows(
    make_server: ServerFactory,
) -> None:
    from aiortmp.protocol.session import CapsExMask

    server = await make_server()
    async with rtmp.connect(url(server, "live"), timeout=5, follow_reconnect=False) as conn:
        publisher = await conn.publish("cam")
        server_conn = await _publisher_connection(server)
        assert CapsExMask.RECONNECT not in server_conn.session.peer_caps_ex
        assert CapsExMask.MULTITRACK in server_conn.session.peer_caps_ex
        server_conn.session.request_reconnect()
        server_conn.flush()
        await eventually(lambda: conn.reconnect_request is not None)
        await publisher.send_video(0, video_frame(0, 100))
        assert publisher.moves == 0
