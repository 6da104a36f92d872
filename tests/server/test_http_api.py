"""The HTTP surface in-process: JSON API, metrics, HTTP-FLV viewers, token, keys, relays.

The server runs on loopback with its HTTP component on port 0; FFmpeg 9 publishes real
H.264/AAC for the API tests; our RTMP client publishes synthetic frames where a test needs
control over timing and volume (slow viewers).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import aiortmp.client as rtmp
from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.media.flv import FLVParser
from aiortmp.outputs.http_flv import FLV_FILE_HEADER, ws_frame_header
from aiortmp.server.access import ALLOW, Decision, Request
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig, Limits, PlayerPolicy
from aiortmp.server.http import HTTPService

from ..conftest import eventually, url
from ..interop.peers import ffmpeg_publish_args
from .media import AVC_SEQUENCE_HEADER, audio_frame, frame_index, is_keyframe, video_frame

HTTP = HTTPConfig(listen=["127.0.0.1:0"])


def http_url(server: RTMPServer, path: str) -> str:
    service = next(c for c in server.components if isinstance(c, HTTPService))
    host, port = service.addresses[0]
    return f"http://{host}:{port}/{path.lstrip('/')}"


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def ffmpeg_publishing(
    server: RTMPServer, path: str = "live/cam", duration_s: float = 30
) -> AsyncIterator[asyncio.subprocess.Process]:
    """FFmpeg 9 publishing testsrc2 320x240@25 H.264 + AAC 44.1 kHz to ``path``."""
    proc = await asyncio.create_subprocess_exec(
        *ffmpeg_publish_args(url(server, path), duration_s=duration_s),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def get_json(
    client: aiohttp.ClientSession, address: str, status: int = 200, **kw: Any
) -> Any:
    async with client.get(address, **kw) as response:
        body = await response.json()
        assert response.status == status, body
        return body


async def wait_for(predicate: Any, timeout_s: float = 15.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def wait_stream_described(
    client: aiohttp.ClientSession, server: RTMPServer, path: str = "live/cam"
) -> dict[str, Any]:
    """Wait until the API knows the codecs and has measured a bitrate."""

    async def ready() -> dict[str, Any] | None:
        async with client.get(http_url(server, f"/api/streams/{path}")) as response:
            if response.status != 200:
                return None
            view: dict[str, Any] = await response.json()
        ok = view["video"] and view["video"]["width"] and view["bitrate_in_bps"] > 0
        return view if ok else None

    result: dict[str, Any] = await wait_for(ready, what=f"{path} described by the API")
    return result


# -- streams --------------------------------------------------------------------------------


async def test_streams_api_describes_an_ffmpeg_stream(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    async with ffmpeg_publishing(server):
        view = await wait_stream_described(client, server)
        listed = await get_json(client, http_url(server, "/api/streams"))
        sessions = {c.id for c in server.connections}
    assert [s["name"] for s in listed["streams"]] == ["cam"]
    assert view["app"] == "live" and view["name"] == "cam" and view["live"] is True
    video, audio = view["video"], view["audio"]
    assert video["codec"] == "avc1" and video["profile"] == "Constrained Baseline"
    assert (video["width"], video["height"], video["fps"]) == (320, 240, 25.0)
    assert audio["codec"] == "mp4a" and audio["profile"] == "LC"
    assert (audio["sample_rate"], audio["channels"]) == (44100, 1)
    assert view["bitrate_in_bps"] > 50_000
    assert view["publisher"]["remote"].startswith("127.0.0.1:")
    assert view["publisher"]["session_id"] in sessions
    assert view["players"] == 0 and view["bitrate_out_bps"] == 0
    assert view["uptime_s"] > 1.0
    assert view["recording"] is None
    assert view["metadata"]["width"] == 320.0
    assert view["tracks"]["video"][0]["codec"] == "avc1"


async def test_unknown_stream_is_404_and_streams_are_gone_after_unpublish(
    make_server, client
) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    body = await get_json(client, http_url(server, "/api/streams/live/nope"), 404)
    assert "no stream" in body["error"]
    async with ffmpeg_publishing(server, duration_s=4) as proc:
        await wait_stream_described(client, server)
        await asyncio.wait_for(proc.wait(), 20)
        assert proc.returncode == 0

    async def gone() -> bool:
        listed = await get_json(client, http_url(server, "/api/streams"))
        return not listed["streams"]

    await wait_for(gone, what="stream removed")


async def test_delete_stream_kicks_the_publisher(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    events: list[ServerEvent] = []
    server.subscribe(events.append)
    async with ffmpeg_publishing(server) as proc:
        view = await wait_stream_described(client, server)
        async with client.delete(http_url(server, "/api/streams/live/cam")) as response:
            assert response.status == 200
            assert (await response.json()) == {"kicked": view["publisher"]["session_id"]}
        # FFmpeg notices the closed connection and exits with an error.
        assert await asyncio.wait_for(proc.wait(), 15) != 0
    assert server.registry.get("live", "cam") is None
    assert [e.kind for e in events if e.kind is EventKind.UNPUBLISH] == [EventKind.UNPUBLISH]
    async with client.delete(http_url(server, "/api/streams/live/cam")) as response:
        assert response.status == 404


async def test_recording_is_started_and_stopped_through_the_api(
    make_server, client, tmp_path: Path
) -> None:
    server: RTMPServer = await make_server(http=HTTP, record_dir=tmp_path)
    done: list[ServerEvent] = []
    server.subscribe(lambda e: done.append(e) if e.kind is EventKind.RECORD_DONE else None)
    base = http_url(server, "/api/streams/live/cam/record")
    async with ffmpeg_publishing(server):
        view = await wait_stream_described(client, server)
        first = view["recording"]["path"]  # record_dir records every stream from the start
        async with client.delete(base) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["stopped"]["path"] == first
        await eventually(lambda: len(done) == 1)  # the file closes off the event loop
        assert done[0].details["path"] == first
        view = await get_json(client, http_url(server, "/api/streams/live/cam"))
        assert view["recording"] is None
        async with client.delete(base) as response:
            assert response.status == 404
        async with client.post(base, json={}) as response:
            assert response.status == 200
            second = (await response.json())["recording"]["path"]
        assert second != first

        async def second_written() -> bool:
            view = await get_json(client, http_url(server, "/api/streams/live/cam"))
            assert view["recording"]["path"] == second
            return bool(view["recording"]["bytes"] > 10_000)

        # A recording started mid-stream begins at the next keyframe (GOP: 2 s).
        await wait_for(second_written, what="second recording written")
    # The second file is complete once record_done says so (it closes off the loop).
    await eventually(lambda: len(done) == 2)
    assert [e.details["path"] for e in done] == [first, second]
    assert Path(first).stat().st_size > 10_000
    assert Path(second).stat().st_size > 10_000


async def test_recording_without_record_dir_is_a_conflict(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    async with ffmpeg_publishing(server):
        await wait_stream_described(client, server)
        async with client.post(
            http_url(server, "/api/streams/live/cam/record"), json={}
        ) as response:
            assert response.status == 409
            assert "record_dir" in (await response.json())["error"]


# -- sessions -------------------------------------------------------------------------------


async def test_sessions_list_every_protocol_and_delete_closes_them(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    async with ffmpeg_publishing(server):
        await wait_stream_described(client, server)
        rtmp_conn = await rtmp.connect(url(server, "live"), timeout=5)
        await rtmp_conn.play("cam")
        flv = await client.get(http_url(server, "/live/cam.flv"))
        assert flv.status == 200
        assert await flv.content.readexactly(13) == FLV_FILE_HEADER
        ws = await client.ws_connect(http_url(server, "/live/cam.flv"))

        async def three_players() -> Any:
            body = await get_json(client, http_url(server, "/api/sessions"))
            protocols = sorted(s["protocol"] for s in body["sessions"] if s["playing"])
            return body if protocols == ["http-flv", "rtmp", "ws-flv"] else None

        sessions = (await wait_for(three_players, what="three players"))["sessions"]
        by_protocol = {s["protocol"]: s for s in sessions if s["playing"]}
        publisher = next(s for s in sessions if s["publishing"])
        assert publisher["publishing"] == [{"stream_id": 1, "name": "cam"}]
        assert by_protocol["http-flv"]["playing"][0]["name"] == "cam"
        view = await get_json(client, http_url(server, "/api/streams/live/cam"))
        assert view["players"] == 3
        assert view["players_by_protocol"] == {"rtmp": 1, "http-flv": 1, "ws-flv": 1}

        # Closing the HTTP-FLV viewer ends its body cleanly (terminating chunk).
        async with client.delete(
            http_url(server, f"/api/sessions/{by_protocol['http-flv']['id']}")
        ) as response:
            assert response.status == 200
        await asyncio.wait_for(flv.read(), 10)
        flv.release()
        # Closing the WebSocket viewer sends a close frame.
        async with client.delete(
            http_url(server, f"/api/sessions/{by_protocol['ws-flv']['id']}")
        ) as response:
            assert response.status == 200
        while (
            message := await asyncio.wait_for(ws.receive(), 10)
        ).type is aiohttp.WSMsgType.BINARY:
            pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
        # Closing the RTMP player's connection.
        async with client.delete(
            http_url(server, f"/api/sessions/{by_protocol['rtmp']['id']}")
        ) as response:
            assert response.status == 200
        await asyncio.wait_for(rtmp_conn.wait_closed(), 10)

        async def only_publisher() -> bool:
            body = await get_json(client, http_url(server, "/api/sessions"))
            return len(body["sessions"]) == 1

        await wait_for(only_publisher, what="players gone")
        assert server.registry.get("live", "cam").player_count == 0
    async with client.delete(http_url(server, "/api/sessions/999999")) as response:
        assert response.status == 404
    async with client.delete(http_url(server, "/api/sessions/x")) as response:
        assert response.status == 400


# -- HTTP-FLV viewers -----------------------------------------------------------------------


async def test_flv_viewer_gets_headers_then_a_keyframe_and_ends_on_unpublish(
    make_server, client
) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    events: list[ServerEvent] = []
    server.subscribe(events.append)
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await publisher.send_metadata({"width": 320.0})
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        for i in range(30):
            await publisher.send_video(i * 40, video_frame(i, 1000, 25))
            await publisher.send_audio(i * 40, audio_frame())
        await asyncio.sleep(0.2)
        response = await client.get(http_url(server, "/live/cam.flv"))
        assert response.headers["Content-Type"] == "video/x-flv"
        assert response.headers["Transfer-Encoding"] == "chunked"
        parser = FLVParser()
        tags = []
        while len(tags) < 5:
            tags += parser.feed(await asyncio.wait_for(response.content.readany(), 5))
        for i in range(30, 40):
            await publisher.send_video(i * 40, video_frame(i, 1000, 25))
        await asyncio.sleep(0.1)
    # The publisher left: the body ends.
    tags += parser.feed(await asyncio.wait_for(response.read(), 5))
    assert parser.at_tag_boundary
    assert tags[0].tag_type == 18  # onMetaData
    assert tags[1].payload == AVC_SEQUENCE_HEADER
    video = [t for t in tags[2:] if t.tag_type == 9]
    # The GOP cache starts at the last keyframe (frame 25), then live frames follow in order.
    assert is_keyframe(video[0].payload) and frame_index(video[0].payload) == 25
    assert [frame_index(t.payload) for t in video] == list(range(25, 40))
    assert video[0].timestamp_ms == 25 * 40
    viewer = [e for e in events if e.details.get("protocol") == "http-flv"]
    assert [e.kind for e in viewer] == [EventKind.PLAY, EventKind.STOP]
    assert viewer[0].session_id == viewer[1].session_id
    assert viewer[1].details["bytes_sent"] > 15 * 1000
    assert server.registry.get("live", "cam") is None


async def test_flv_of_a_stream_that_is_not_live_is_404(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    async with client.get(http_url(server, "/live/none.flv")) as response:
        assert response.status == 404
    async with client.head(http_url(server, "/live/none.flv")) as response:
        assert response.status == 405
    assert len(server.registry) == 0


class DenyPlay:
    """An access policy refusing play of ``secret`` unless ``?token=ok``."""

    async def check(self, request: Request) -> Decision:
        if request.action == "play" and request.name == "secret" and request.query != "token=ok":
            return Decision(allowed=False, reason="bad token")
        return ALLOW


async def test_flv_play_goes_through_the_access_policies(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    server.policies.append(DenyPlay())
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("secret")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await asyncio.sleep(0.1)
        async with client.get(http_url(server, "/live/secret.flv")) as response:
            assert response.status == 403
            assert await response.text() == "bad token"
        assert server.stats["auth_denials"] == 1
        async with client.get(http_url(server, "/live/secret.flv?token=ok")) as response:
            assert response.status == 200
            assert await response.content.readexactly(13) == FLV_FILE_HEADER


SOFT = 256 * 1024
HARD = 1024 * 1024
FRAME = 60_000
FRAMES = 600  # 36 MB: far more than the kernel socket buffers hold
GOP = 10


async def test_stalled_flv_viewer_is_dropped_while_another_gets_every_frame(
    make_server, client
) -> None:
    server: RTMPServer = await make_server(
        http=HTTP,
        player=PlayerPolicy(
            backlog_soft_bytes=SOFT, backlog_hard_bytes=HARD, backlog_soft_ms=0, max_behind_s=30
        ),
    )
    events: list[ServerEvent] = []
    server.subscribe(events.append)
    host, port = http_url(server, "/").split("//")[1].rstrip("/").split(":")
    async with rtmp.connect(url(server, "live"), timeout=5) as pub_conn:
        publisher = await pub_conn.publish("cam")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        good = await client.get(http_url(server, "/live/cam.flv"))
        # The stalled viewer sends its request and never reads.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.sendall(f"GET /live/cam.flv HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await wait_for(
            lambda: asyncio.sleep(0, server.registry.get("live", "cam").player_count == 2),
            what="two viewers",
        )
        received: list[int] = []

        async def read_good() -> None:
            parser = FLVParser(max_tag_size=1 << 20)
            while len(received) < FRAMES:
                for tag in parser.feed(await good.content.readany()):
                    if tag.tag_type == 9 and tag.payload != AVC_SEQUENCE_HEADER:
                        received.append(frame_index(tag.payload))

        reader = asyncio.create_task(read_good())
        for i in range(FRAMES):
            await publisher.send_video(i * 40, video_frame(i, FRAME, GOP))
            await publisher.send_audio(i * 40, audio_frame())
            if i % 20 == 0:
                await asyncio.sleep(0)
        await asyncio.wait_for(reader, 30)
        good.close()
        sock.close()
    assert received == list(range(FRAMES))
    dropped = [e for e in events if e.kind is EventKind.PLAYER_DROPPED]
    assert len(dropped) == 1, dropped
    assert dropped[0].details["protocol"] == "http-flv"
    assert "hard limit" in dropped[0].details["reason"]
    assert server.stats["players_dropped"] == 1
    assert server.stats["messages_dropped"] > 0


def test_websocket_frame_header_lengths() -> None:
    # RFC 6455 §5.2: 7-bit length, then 126 + UI16, then 127 + UI64; FIN + binary opcode.
    assert ws_frame_header(0) == b"\x82\x00"
    assert ws_frame_header(125) == b"\x82\x7d"
    assert ws_frame_header(126) == b"\x82\x7e\x00\x7e"
    assert ws_frame_header(65535) == b"\x82\x7e\xff\xff"
    assert ws_frame_header(65536) == b"\x82\x7f" + (65536).to_bytes(8, "big")


# -- metrics --------------------------------------------------------------------------------


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} not in metrics"
    return float(found.group(1))


async def test_metrics_counters_move(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP, limits=Limits(handshake_timeout_s=0.3))
    server.policies.append(DenyPlay())

    async def scrape() -> str:
        async with client.get(http_url(server, "/metrics")) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return await response.text()

    before = await scrape()
    assert metric(before, "aiortmp_streams") == 0
    assert metric(before, "aiortmp_bytes_received_total") == 0
    async with ffmpeg_publishing(server):
        await wait_stream_described(client, server)
        flv = await client.get(http_url(server, "/live/cam.flv"))
        await flv.content.readexactly(100_000)
        # A handshake that never completes, and a denied play.
        _, writer = await asyncio.open_connection(*server.addresses[0])
        async with client.get(http_url(server, "/live/secret.flv")) as response:
            assert response.status == 403
        await asyncio.sleep(1.5)  # handshake timeout; one more bitrate sample
        during = await scrape()
        flv.close()
        writer.close()
    labels = 'app="live",name="cam"'
    assert metric(during, "aiortmp_streams") == 1
    assert metric(during, "aiortmp_connections") >= 1
    assert metric(during, "aiortmp_http_viewers") == 1
    assert metric(during, "aiortmp_players", 'protocol="http-flv"') == 1
    assert metric(during, "aiortmp_bytes_received_total") > 100_000
    assert metric(during, "aiortmp_bytes_sent_total") >= 100_000
    assert metric(during, "aiortmp_handshake_failures_total") == 1
    assert metric(during, "aiortmp_auth_denials_total") == 1
    assert metric(during, "aiortmp_connections_accepted_total") >= 2
    assert metric(during, "aiortmp_messages_dropped_total") == 0
    assert metric(during, "aiortmp_stream_bitrate_in_bps", labels) > 50_000
    assert metric(during, "aiortmp_stream_bitrate_out_bps", labels) > 0
    assert metric(during, "aiortmp_stream_players", labels) == 1
    assert metric(during, "aiortmp_stream_uptime_seconds", labels) > 1

    async def settled() -> str | None:
        text = await scrape()
        return text if metric(text, "aiortmp_streams") == 0 else None

    after = await wait_for(settled, what="stream gone from metrics")
    # Counters of ended sessions stay.
    assert metric(after, "aiortmp_bytes_received_total") >= metric(
        during, "aiortmp_bytes_received_total"
    )
    assert metric(after, "aiortmp_bytes_sent_total") >= metric(during, "aiortmp_bytes_sent_total")
    assert 'name="cam"' not in after


# -- token ----------------------------------------------------------------------------------


async def test_api_token_is_required_when_configured(make_server, client) -> None:
    server: RTMPServer = await make_server(
        http=HTTPConfig(listen=["127.0.0.1:0"], api_token="s3cret")
    )
    # Loopback is no exemption once a token is set.
    for path in ("/api/streams", "/api/sessions", "/control/get?room=a", "/metrics"):
        async with client.get(http_url(server, path)) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with client.get(
            http_url(server, path), headers={"Authorization": "Bearer wrong"}
        ) as response:
            assert response.status == 401
    body = await get_json(
        client, http_url(server, "/api/streams"), headers={"Authorization": "Bearer s3cret"}
    )
    assert body == {"streams": []}
    async with client.get(
        http_url(server, "/metrics"), headers={"Authorization": "Bearer s3cret"}
    ) as response:
        assert response.status == 200
    # The dashboard and its assets are public: the page asks for the token.
    for path in ("/", "/static/app.js", "/static/vendor/mpegts.js"):
        async with client.get(http_url(server, path)) as response:
            assert response.status == 200, path


async def test_dashboard_and_assets_are_served(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    async with client.get(http_url(server, "/")) as response:
        assert response.status == 200
        html = await response.text()
    assert 'src="static/vendor/mpegts.js"' in html and 'src="static/app.js"' in html
    async with client.get(http_url(server, "/static/vendor/mpegts.js")) as response:
        assert response.status == 200
        assert "mpegts" in (await response.text())[:400]
    server_info = await get_json(client, http_url(server, "/api/server"))
    assert server_info["streams"] == 0 and server_info["recording_enabled"] is False
    assert server_info["http_addresses"] == [http_url(server, "").split("//")[1].rstrip("/")]


async def test_http_can_be_disabled(make_server) -> None:
    server: RTMPServer = await make_server(http=HTTPConfig(listen=[]))
    assert not any(isinstance(c, HTTPService) for c in server.components)


# -- channel keys and relays ----------------------------------------------------------------


class FakeKeys:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        self.n = 0

    def create(self, room: str) -> str:
        self.n += 1
        self.keys[room] = f"key{self.n}"
        return self.keys[room]

    def revoke(self, room: str) -> bool:
        return self.keys.pop(room, None) is not None

    def list(self) -> dict[str, str]:
        return dict(self.keys)

    def room_for_key(self, key: str) -> str | None:
        return next((r for r, k in self.keys.items() if k == key), None)


class FakeRelay:
    def __init__(self) -> None:
        self.pushes: dict[str, dict[str, Any]] = {}

    def add_push(self, app: str, url: str, stream: str | None = None) -> str:
        relay_id = f"push-{len(self.pushes) + 1}"
        self.pushes[relay_id] = {"id": relay_id, "app": app, "url": url, "stream": stream}
        return relay_id

    def remove_push(self, id: str) -> bool:
        return self.pushes.pop(id, None) is not None

    def status(self) -> list[dict[str, Any]]:
        return list(self.pushes.values())


def install(server: RTMPServer, name: str, value: object) -> None:
    # The API contract with fakes of the interfaces auth.py / relay.py implement (None: the
    # feature is absent); the real relay is exercised end to end below.
    setattr(server, name, value)


async def test_channel_keys_api_contract_and_livego_control(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    install(server, "channel_keys", None)
    async with client.get(http_url(server, "/api/keys")) as response:
        assert response.status == 503
        assert "not available" in (await response.json())["error"]
    install(server, "channel_keys", FakeKeys())
    async with client.post(http_url(server, "/api/keys"), json={"room": "cam"}) as response:
        assert response.status == 201
        created = await response.json()
    assert created["room"] == "cam" and created["key"]
    listed = await get_json(client, http_url(server, "/api/keys"))
    assert listed["keys"]["cam"] == created["key"]
    # livego: get returns the existing key, or creates one.
    got = await get_json(client, http_url(server, "/control/get?room=cam"))
    assert got == {"status": 200, "data": created["key"]}
    other = await get_json(client, http_url(server, "/control/get?room=other"))
    assert other["status"] == 200 and other["data"]
    reset = await get_json(client, http_url(server, "/control/reset?room=cam"))
    assert reset["data"] != created["key"]
    assert (await get_json(client, http_url(server, "/control/delete?room=cam")))["data"] == "Ok"
    missing = await get_json(client, http_url(server, "/control/delete?room=cam"), 404)
    assert missing == {"status": 404, "data": "room not found"}
    bad = await get_json(client, http_url(server, "/control/get"), 400)
    assert bad["status"] == 400
    async with client.delete(http_url(server, "/api/keys/other")) as response:
        assert response.status == 200
    async with client.delete(http_url(server, "/api/keys/other")) as response:
        assert response.status == 404
    async with client.post(http_url(server, "/api/keys"), json=["x"]) as response:
        assert response.status == 400
    async with client.post(
        http_url(server, "/api/keys"), data=b"{", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400


async def test_relay_api_contract(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    install(server, "relay", None)
    async with client.get(http_url(server, "/api/relays")) as response:
        assert response.status == 503
    install(server, "relay", FakeRelay())
    target = "rtmp://127.0.0.1:1/live"
    async with client.post(
        http_url(server, "/api/relays"), json={"app": "live", "url": target}
    ) as response:
        assert response.status == 201, await response.text()
        relay_id = (await response.json())["id"]
    relays = (await get_json(client, http_url(server, "/api/relays")))["relays"]
    assert any(r.get("id") == relay_id and r.get("url") == target for r in relays), relays
    async with client.post(
        http_url(server, "/api/relays"), json={"app": "live", "url": "http://x"}
    ) as response:
        assert response.status == 400
    async with client.delete(http_url(server, f"/api/relays/{relay_id}")) as response:
        assert response.status == 200
    async with client.delete(http_url(server, f"/api/relays/{relay_id}")) as response:
        assert response.status == 404


async def test_relay_added_through_the_api_pushes_to_another_server(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP)
    upstream: RTMPServer = await make_server()
    if getattr(server, "relay", None) is None:
        pytest.fail("server.relay is missing: the relay component is not registered")
    async with client.post(
        http_url(server, "/api/relays"), json={"app": "live", "url": url(upstream, "mirror")}
    ) as response:
        assert response.status == 201, await response.text()
        relay_id = (await response.json())["id"]
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        publisher = await conn.publish("cam")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)

        async def mirrored() -> bool:
            for i in range(5):
                await publisher.send_video(i * 40, video_frame(i, 500))
            stream = upstream.registry.get("mirror", "cam")
            return stream is not None and stream.is_live and stream.video_frames_in > 0

        await wait_for(mirrored, what="the push to reach the upstream server")
        relays = (await get_json(client, http_url(server, "/api/relays")))["relays"]
        assert [r["id"] for r in relays] == [relay_id]
        async with client.delete(http_url(server, f"/api/relays/{relay_id}")) as response:
            assert response.status == 200

        async def unmirrored() -> bool:
            return upstream.registry.get("mirror", "cam") is None

        await wait_for(unmirrored, what="the push to stop")


async def test_flv_viewers_count_against_max_connections(make_server, client) -> None:
    server: RTMPServer = await make_server(http=HTTP, limits=Limits(max_connections=2))
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        publisher = await conn.publish("cam")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await asyncio.sleep(0.1)
        first = await client.get(http_url(server, "/live/cam.flv"))
        assert first.status == 200
        async with client.get(http_url(server, "/live/cam.flv")) as response:
            assert response.status == 503
        assert server.stats["connections_refused"] == 1
        first.close()
