"""HLS through the server, in-process: playlists, blocking reload, delta updates, access,
viewers, idle stop, always-on directory output (src/aiortmp/outputs/hls/{service,handlers,
output,disk}.py).

Our RTMP client publishes an FFmpeg 9 clip (tests/outputs/hls_media.py) tag by tag, so a
test decides when each part can exist; aiohttp asks. Every playlist received is parsed with
the ``m3u8`` package.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import m3u8
import pytest

import aiortmp
from aiortmp.client import Connection, Publisher
from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.media.flv import FLVTag
from aiortmp.outputs.hls import FMP4, HLSOutput, HLSService
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import AppAuth, AuthConfig, AuthRule, HLSConfig, HTTPConfig
from aiortmp.server.http import HTTPService

from ..conftest import ServerFactory, eventually, url
from .hls_media import FFMPEG9, make_clips, read_tags, send_tags

HTTP = HTTPConfig(listen=["127.0.0.1:0"])


@pytest.fixture(scope="module")
def tags(tmp_path_factory: pytest.TempPathFactory) -> list[FLVTag]:
    return read_tags(make_clips(tmp_path_factory)["h264_aac"])


def http_service(server: RTMPServer) -> HTTPService:
    return next(c for c in server.components if isinstance(c, HTTPService))


def hls(server: RTMPServer) -> HLSService:
    service = http_service(server).hls
    assert service is not None
    return service


@dataclass
class Env:
    """A server with HTTP, an aiohttp client, and what it received."""

    server: RTMPServer
    client: aiohttp.ClientSession
    playlists: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        host, port = http_service(self.server).addresses[0]
        return f"http://{host}:{port}"

    async def get(
        self, path: str, status: int = 200, **kw: Any
    ) -> tuple[bytes, aiohttp.typedefs.LooseHeaders]:
        async with self.client.get(self.base + path, **kw) as response:
            body = await response.read()
            assert response.status == status, (path, response.status, body[:200])
            if response.headers.get("Content-Type") == "application/vnd.apple.mpegurl":
                self.playlists.append(body.decode())
            return body, response.headers

    async def playlist(self, path: str, **kw: Any) -> m3u8.M3U8:
        body, _ = await self.get(path, **kw)
        return m3u8.loads(body.decode())

    def output(self, name: str = "cam") -> HLSOutput:
        return hls(self.server).outputs[("live", name)]


@pytest.fixture
async def env(make_server: ServerFactory) -> AsyncIterator[Env]:
    server = await make_server(http=HTTP, hls=HLSConfig(window_segments=20))
    async with aiohttp.ClientSession() as client:
        environment = Env(server, client)
        yield environment
    # Every playlist the server produced parses (the m3u8 package, RFC 8216bis tags).
    for text in environment.playlists:
        parsed = m3u8.loads(text)
        assert parsed.is_variant or parsed.target_duration, text


async def publishing(server: RTMPServer, name: str = "cam") -> tuple[Connection, Publisher]:
    conn = await aiortmp.connect(url(server, "live"))
    return conn, await conn.publish(name)


def ms(tag_list: list[FLVTag], start_ms: int, end_ms: int) -> list[FLVTag]:
    return [t for t in tag_list if start_ms <= t.timestamp_ms < end_ms]


async def start(env: Env, tags: list[FLVTag], *, until_ms: int = 1100) -> Publisher:
    """Publish up to ``until_ms``; the first playlist request starts the output, which
    answers once a segment is complete (its first GOP from the cache)."""
    _, publisher = await publishing(env.server)
    await send_tags(publisher, tags, until_ms=until_ms)
    return publisher


async def test_not_live_is_404(env: Env) -> None:
    _, headers = await env.get("/live/nothing/index.m3u8", status=404)
    assert headers["Access-Control-Allow-Origin"] == "*"
    await env.get("/live/nothing/v0.m3u8", status=404)
    await env.get("/live/nothing.m3u8", status=404)


async def test_playlists_segments_and_parts(env: Env, tags: list[FLVTag]) -> None:
    publisher = await start(env, tags)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 1101, 4100))
    body, headers = await pending
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Access-Control-Allow-Origin"] == "*"
    multivariant = m3u8.loads(body.decode())
    (variant,) = multivariant.playlists
    assert variant.uri == "v0.m3u8"
    assert variant.stream_info.codecs == "avc1.42c00d,mp4a.40.2"
    assert variant.stream_info.resolution == (320, 240)
    assert variant.stream_info.frame_rate == 25.0
    assert variant.stream_info.bandwidth > 100_000
    alias = await env.playlist("/live/cam.m3u8")
    assert alias.playlists[0].uri == "cam/v0.m3u8"

    media = await env.playlist("/live/cam/v0.m3u8")
    assert media.server_control.can_block_reload == "YES"
    complete = [s for s in media.segments if s.uri]
    assert len(complete) >= 2
    token = env.output().token
    init, headers = await env.get(f"/live/cam/{complete[0].init_section.uri}")
    assert init[4:8] == b"ftyp" and headers["Content-Type"] == "video/mp4"
    assert headers["Cache-Control"] == "public, max-age=86400, immutable"
    segment, headers = await env.get(f"/live/cam/{complete[-1].uri}")
    assert headers["Content-Type"] == "video/iso.segment" and segment[4:8] == b"moof"
    parts = [await env.get(f"/live/cam/{p.uri}") for p in complete[-1].parts]
    assert b"".join(body for body, _ in parts) == segment
    # Unknown names, another output's token, a segment far ahead: 404.
    await env.get("/live/cam/v0-ffffffff-1.m4s", status=404)
    await env.get(f"/live/cam/v0-{token}-999.m4s", status=404)
    await env.get(f"/live/cam/v0-{token}-999.0.m4s", status=404)
    await env.get(f"/live/cam/v7-{token}-1.m4s", status=404)
    await env.get("/live/cam/v0.m3u9", status=404)
    await env.get(f"/live/cam/v0-{token}-init9.mp4", status=404)
    # Malformed or far-future delivery directives: 400 at once.
    await env.get("/live/cam/v0.m3u8?_HLS_msn=x", status=400)
    await env.get("/live/cam/v0.m3u8?_HLS_part=1", status=400)
    await env.get("/live/cam/v0.m3u8?_HLS_msn=99", status=400)
    growing = env.output().variants[0].playlists[FMP4].next_part[0]
    await env.get(f"/live/cam/v0.m3u8?_HLS_msn={growing}&_HLS_part=40", status=400)


async def test_blocking_reload_returns_when_the_part_exists(env: Env, tags: list[FLVTag]) -> None:
    publisher = await start(env, tags)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 1101, 2300))
    await pending
    media = await env.playlist("/live/cam/v0.m3u8")
    hint = media.preload_hint.uri
    playlist = env.output().variants[0].playlists[FMP4]
    msn, part = playlist.next_part
    assert hint.endswith(f"-{msn}.{part}.m4s")
    reload = asyncio.create_task(env.playlist(f"/live/cam/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}"))
    preload = asyncio.create_task(env.get(f"/live/cam/{hint}"))
    await asyncio.sleep(0.3)
    assert not reload.done() and not preload.done()  # held: the part does not exist
    appeared = None
    for tag in ms(tags, 2300, 3500):
        await send_tags(publisher, [tag])
        await asyncio.sleep(0.01)
        if playlist.has_part(msn, part):
            appeared = time.monotonic()
            break
        assert not reload.done() and not preload.done()
    assert appeared is not None
    answer = await asyncio.wait_for(reload, 1.0)
    held_s = time.monotonic() - appeared
    assert held_s < 0.5
    parts = [p.uri for s in answer.segments for p in s.parts]
    assert hint in parts  # the response lists the part it waited for
    body, _ = await asyncio.wait_for(preload, 1.0)
    found = playlist.part(msn, part)
    assert found is not None and body == bytes(found.data)
    # Already there: at once.
    began = time.monotonic()
    await env.get(f"/live/cam/v0.m3u8?_HLS_msn={msn}&_HLS_part={part}")
    assert time.monotonic() - began < 0.2


async def test_delta_update(env: Env, tags: list[FLVTag]) -> None:
    publisher = await start(env, tags)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 1101, 11_500))
    await pending
    await eventually(lambda: env.output().variants[0].playlists[FMP4].complete_count >= 9)
    full = await env.playlist("/live/cam/v0.m3u8")
    delta = await env.playlist("/live/cam/v0.m3u8?_HLS_skip=YES")
    assert delta.skip.skipped_segments >= 2
    skipped = delta.skip.skipped_segments
    assert delta.media_sequence == full.media_sequence
    assert [s.uri for s in delta.segments] == [s.uri for s in full.segments[skipped:]]
    assert not full.skip  # an empty dict: no EXT-X-SKIP
    # A blocking reload that asks for a delta update gets one too.
    last = full.media_sequence + len(full.segments) - 1
    again = await env.playlist(f"/live/cam/v0.m3u8?_HLS_msn={last}&_HLS_part=0&_HLS_skip=YES")
    assert again.skip.skipped_segments


async def test_ts_format(env: Env, tags: list[FLVTag]) -> None:
    publisher = await start(env, tags)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8?format=ts"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 1101, 4100))
    body, _ = await pending
    (variant,) = m3u8.loads(body.decode()).playlists
    assert variant.uri == "v0-ts.m3u8"
    assert variant.stream_info.codecs == "avc1.42c00d,mp4a.40.2"
    media = await env.playlist("/live/cam/v0-ts.m3u8")
    assert media.version == 3 and media.server_control is None
    segment, headers = await env.get(f"/live/cam/{media.segments[0].uri}")
    assert headers["Content-Type"] == "video/mp2t" and segment[0] == 0x47
    # The fMP4 form runs beside it.
    await env.get("/live/cam/v0.m3u8")


async def test_viewers_count_in_the_api_and_metrics(env: Env, tags: list[FLVTag]) -> None:
    publisher = await start(env, tags, until_ms=2100)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 2101, 3100))
    await pending
    await env.get("/live/cam/v0.m3u8", headers={"User-Agent": "other player"})
    view, _ = await env.get("/api/streams/live/cam")
    stream = json.loads(view)
    assert stream["players_by_protocol"] == {"hls": 2}
    assert stream["players"] == 2
    metrics, _ = await env.get("/metrics")
    assert 'aiortmp_players{protocol="hls"} 2.0' in metrics.decode()


async def test_bytes_served_count_as_sent_in_the_api_and_metrics(
    env: Env, tags: list[FLVTag]
) -> None:
    publisher = await start(env, tags, until_ms=2100)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 2101, 3100))
    served = [(await pending)[0], (await env.get("/live/cam/v0.m3u8"))[0]]
    media = m3u8.loads(served[-1].decode())
    served.append((await env.get(f"/live/cam/{media.segment_map[0].uri}"))[0])
    served.append((await env.get(f"/live/cam/{media.segments[0].uri}"))[0])
    total = sum(map(len, served))
    view, _ = await env.get("/api/streams/live/cam")
    assert json.loads(view)["bytes_out"] == total > 10_000  # HLS is its only output
    metrics, _ = await env.get("/metrics")
    (counted,) = re.findall(r"^aiortmp_bytes_sent_total (\S+)$", metrics.decode(), re.M)
    assert float(counted) == total
    sampler = http_service(env.server).sampler
    sampler.sample(1.0)
    sampler.sample(1.0)  # nothing served in between
    assert sampler.bitrate_out_bps[("live", "cam")] == 0
    segment, _ = await env.get(f"/live/cam/{media.segments[0].uri}")
    sampler.sample(2.0)
    assert sampler.bitrate_out_bps[("live", "cam")] == len(segment) * 8 // 2


async def test_unpublish_ends_the_playlist_and_a_republish_restarts(
    env: Env, tags: list[FLVTag]
) -> None:
    conn, publisher = await publishing(env.server)
    await send_tags(publisher, tags, until_ms=1100)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 1101, 3100))
    await pending
    media = await env.playlist("/live/cam/v0.m3u8")
    msn = media.media_sequence + len(media.segments)
    held = asyncio.create_task(env.playlist(f"/live/cam/v0.m3u8?_HLS_msn={msn}"))
    await asyncio.sleep(0.1)
    first_token = env.output().token
    await publisher.close()
    await conn.close()
    ended = await asyncio.wait_for(held, 2.0)  # released by the end of the stream
    assert ended.is_endlist
    assert (await env.playlist("/live/cam/v0.m3u8")).is_endlist
    # Republished: a new output with new names.
    _, publisher = await publishing(env.server)
    await send_tags(publisher, tags, until_ms=1100)
    pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
    await asyncio.sleep(0.2)
    await send_tags(publisher, ms(tags, 1101, 2100))
    await pending
    assert env.output().token != first_token
    assert not (await env.playlist("/live/cam/v0.m3u8")).is_endlist


async def test_play_rules_apply_and_the_token_is_carried(
    make_server: ServerFactory, tags: list[FLVTag]
) -> None:
    server = await make_server(
        http=HTTP,
        auth=AuthConfig(apps={"live": AppAuth(play=AuthRule(keys=["s3cret"]))}),
    )
    events: list[ServerEvent] = []
    server.subscribe(events.append)
    async with aiohttp.ClientSession() as client:
        env = Env(server, client)
        publisher = await start(env, tags)
        await env.get("/live/cam/index.m3u8", status=403)
        await env.get("/live/cam/index.m3u8?key=wrong", status=403)
        assert server.stats["auth_denials"] == 2
        denied = [e for e in events if e.kind is EventKind.AUTH_DENIED]
        assert denied[-1].details["protocol"] == "hls"
        pending = asyncio.create_task(env.get("/live/cam/index.m3u8?key=s3cret"))
        await asyncio.sleep(0.2)
        await send_tags(publisher, ms(tags, 1101, 3100))
        body, _ = await pending
        (variant,) = m3u8.loads(body.decode()).playlists
        assert variant.uri == "v0.m3u8?key=s3cret"
        media = await env.playlist(f"/live/cam/{variant.uri}&_HLS_msn=0")
        uris = [media.segments[0].init_section.uri, media.preload_hint.uri]
        uris += [s.uri for s in media.segments if s.uri]
        uris += [p.uri for s in media.segments for p in s.parts]
        assert all(u.endswith("?key=s3cret") for u in uris), uris
        await env.get(f"/live/cam/{media.segments[0].uri}")
        await env.get(f"/live/cam/{media.segments[0].uri.split('?')[0]}", status=403)


async def test_idle_output_stops(make_server: ServerFactory, tags: list[FLVTag]) -> None:
    server = await make_server(http=HTTP, hls=HLSConfig(idle_timeout_s=0.5))
    async with aiohttp.ClientSession() as client:
        env = Env(server, client)
        publisher = await start(env, tags)
        pending = asyncio.create_task(env.get("/live/cam/index.m3u8"))
        await asyncio.sleep(0.2)
        await send_tags(publisher, ms(tags, 1101, 2300))
        await pending
        stream = server.registry.get("live", "cam")
        assert stream is not None and len(stream.queued_outputs) == 1
        await eventually(lambda: not hls(server).outputs, timeout_s=4.0)
        assert stream.queued_outputs == []


async def test_always_on_writes_the_directory(
    make_server: ServerFactory, tags: list[FLVTag], tmp_path: Path
) -> None:
    server = await make_server(
        http=HTTP, hls=HLSConfig(always_on=["live"], directory=tmp_path, window_segments=20)
    )
    conn, publisher = await publishing(server, "we/ird/../name")
    await send_tags(publisher, ms(tags, 0, 4990))
    await publisher.close()
    await conn.close()
    folder = tmp_path / "live" / "we_ird_.._name"
    await eventually(lambda: "#EXT-X-ENDLIST" in _read(folder / "v0.m3u8"), timeout_s=5.0)
    media = m3u8.loads(_read(folder / "v0.m3u8"))
    assert media.version == 6 and media.server_control is None
    assert len(media.segments) == 5
    multivariant = m3u8.loads(_read(folder / "index.m3u8"))
    assert multivariant.playlists[0].uri == "v0.m3u8"
    names = {p.name for p in folder.iterdir()}
    assert {s.uri for s in media.segments} | {media.segments[0].init_section.uri} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary files left
    process = await asyncio.create_subprocess_exec(
        FFMPEG9,
        "-v",
        "error",
        "-i",
        str(folder / "index.m3u8"),
        "-f",
        "null",
        "-",
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0 and stderr == b"", stderr


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


async def test_hls_of_a_pulled_stream_starts_the_pull_and_idles_it(
    make_server: ServerFactory, tags: list[FLVTag]
) -> None:
    """An HLS request for a stream another server has (a [[relay.pull]] rule; workers and
    cluster nodes use the same pulls) starts the pull, waits for it, and is answered; when
    HLS stops asking, the pull idles out like one with RTMP players."""
    from aiortmp.server.config import RelayConfig, RelayPull

    origin = await make_server()
    edge = await make_server(
        http=HTTP,
        hls=HLSConfig(idle_timeout_s=0.5),
        relay=RelayConfig(
            pull=[RelayPull(app="live", url=url(origin, "live"), idle_timeout_s=0.5)]
        ),
    )
    _, publisher = await publishing(origin)
    sending = asyncio.create_task(send_tags(publisher, tags, realtime=True))
    try:
        async with aiohttp.ClientSession() as client:
            env = Env(edge, client)
            body, _ = await env.get("/live/cam/index.m3u8")
            assert b"#EXT-X-STREAM-INF" in body
            (pull,) = edge.relay.pull_status() if edge.relay else []
            assert pull["state"] == "pulling"
            # Nobody asks any more: the HLS output stops, then the pull.
            await eventually(lambda: edge.relay is not None and not edge.relay.pull_status(), 6.0)
    finally:
        sending.cancel()
    # A stream nobody has is a 404 at once (no pull is coming).
    async with aiohttp.ClientSession() as client:
        started = time.monotonic()
        await Env(edge, client).get("/other/cam/index.m3u8", status=404)
        assert time.monotonic() - started < 1.0
