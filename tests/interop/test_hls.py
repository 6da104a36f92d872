"""HLS with real readers: FFmpeg 9, Debian's FFmpeg/ffprobe 5.1 and hls.js in Chromium
(issue: HLS and Low-Latency HLS).

``aiortmp serve`` runs as a subprocess. Our RTMP client publishes FFmpeg 9 clips
(tests/outputs/hls_media.py) as fast as it can, after a first request has started the
stream's HLS output (fMP4 and MPEG-TS); the playlists end with the stream, and readers then
read them whole, so 11 s of media take a second to check, not 11. The browser test plays a
live FFmpeg publish through the dashboard's hls.js preview while FFmpeg 9 follows the same
live playlist.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import m3u8
import pytest

import aiortmp

from ..outputs.hls_media import make_clips, read_tags, send_tags
from .peers import (
    FFMPEG9,
    ServerProcess,
    chromium_context,
    debian_tool,
    ffmpeg_publish_args,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop

CONFIG = """
[hls]
window_segments = 20
idle_timeout_s = 300
"""
#: (stream name, clip, formats started before the media comes)
STREAMS = [
    ("cam", "h264_aac", ("", "?format=ts")),
    ("hevc", "hevc_opus", ("",)),
    ("av1", "av1_aac", ("",)),
    ("multi", "multitrack", ("",)),
]


async def _publish(server: ServerProcess, name: str, clip: Path, queries: tuple[str, ...]) -> None:
    tags = read_tags(clip)
    async with aiortmp.connect(server.url("live")) as conn, aiohttp.ClientSession() as client:
        publisher = await conn.publish(name)
        await send_tags(publisher, tags, until_ms=1100)

        async def first(query: str) -> None:
            address = server.http_url(f"/live/{name}/index.m3u8{query}")
            async with client.get(address) as response:
                assert response.status == 200, await response.text()

        requests = [asyncio.create_task(first(query)) for query in queries]
        await asyncio.sleep(0.3)  # the outputs start on these requests
        await send_tags(publisher, [t for t in tags if t.timestamp_ms > 1100])
        await asyncio.gather(*requests)
        await publisher.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    clips = make_clips(tmp_path_factory)
    with run_server(tmp_path_factory.mktemp("hls"), http=True, config=CONFIG) as srv:

        async def publish_all() -> None:
            await asyncio.gather(
                *(_publish(srv, name, clips[clip], queries) for name, clip, queries in STREAMS)
            )

        asyncio.run(publish_all())
        for name, _, _ in STREAMS:  # every playlist ended with its stream
            _wait_endlist(srv.http_url(f"/live/{name}/v0.m3u8"))
        yield srv


def _get(address: str) -> str:
    with urllib.request.urlopen(address, timeout=10) as response:
        return str(response.read().decode())


def _wait_endlist(address: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while "#EXT-X-ENDLIST" not in _get(address):
        assert time.monotonic() < deadline, address
        time.sleep(0.1)


def _frames(ffmpeg: str, address: str) -> tuple[Counter[int], str]:
    """Decode every stream of ``address``; frames per stream index, and what FFmpeg said."""
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", address, "-map", "0", "-f", "framecrc", "-"],
        capture_output=True,
        timeout=120,
    )
    counts: Counter[int] = Counter()
    for line in result.stdout.decode().splitlines():
        if line and not line.startswith("#"):
            counts[int(line.split(",")[0])] += 1
    return counts, result.stderr.decode(errors="replace") + (
        "" if result.returncode == 0 else f"exit {result.returncode}"
    )


@pytest.mark.parametrize("query", ["", "?format=ts"], ids=["fmp4", "ts"])
@pytest.mark.parametrize("reader", ["ffmpeg9", "ffmpeg5.1"])
def test_ffmpeg_decodes_more_than_10_s(server: ServerProcess, reader: str, query: str) -> None:
    ffmpeg = FFMPEG9 if reader == "ffmpeg9" else debian_tool("ffmpeg")
    counts, errors = _frames(ffmpeg, server.http_url(f"/live/cam/index.m3u8{query}"))
    assert errors == ""
    assert len(counts) == 2, counts
    video, audio = sorted(counts.values())  # fewer video frames than AAC frames
    # 11 s from the keyframe at 1 s: 275 frames at 25 fps, 470 AAC frames at 44.1 kHz.
    assert video >= 250 and audio >= 430, counts


@pytest.mark.parametrize(("name", "codecs"), [("hevc", {"hevc", "opus"}), ("av1", {"av1", "aac"})])
def test_ffprobe_reports_the_codecs(server: ServerProcess, name: str, codecs: set[str]) -> None:
    output = subprocess.run(
        [debian_tool("ffprobe"), "-v", "error", "-show_streams", "-of", "json"]
        + [server.http_url(f"/live/{name}/index.m3u8")],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    streams = json.loads(output)["streams"]
    assert {s["codec_name"] for s in streams} == codecs
    multivariant = m3u8.loads(_get(server.http_url(f"/live/{name}/index.m3u8")))
    (variant,) = multivariant.playlists
    prefix = "hvc1.1.6.L" if name == "hevc" else "av01.0."
    video, audio = variant.stream_info.codecs.split(",")
    assert video.startswith(prefix) and audio == ("opus" if name == "hevc" else "mp4a.40.2")
    assert variant.stream_info.resolution == (160, 90)


def test_multitrack_publish_is_an_adaptive_multivariant_playlist(server: ServerProcess) -> None:
    multivariant = m3u8.loads(_get(server.http_url("/live/multi/index.m3u8")))
    variants = [(p.uri, p.stream_info.resolution) for p in multivariant.playlists]
    assert variants == [("v0.m3u8", (320, 240)), ("v1.m3u8", (160, 90))]
    for variant in multivariant.playlists:
        video, audio = variant.stream_info.codecs.split(",")
        assert video.startswith("avc1.") and audio == "mp4a.40.2"
    assert multivariant.playlists[0].stream_info.bandwidth > (
        multivariant.playlists[1].stream_info.bandwidth
    )
    for uri in ("v0.m3u8", "v1.m3u8"):
        counts, errors = _frames(FFMPEG9, server.http_url(f"/live/multi/{uri}"))
        assert errors == ""
        # 2-3 s of video: the GOP cache restarts at the keyframe of either track, so the
        # output started at 1 s may see track 0 from its keyframe at 2 s only.
        assert len(counts) == 2 and min(counts.values()) >= 50, counts


def test_hlsjs_plays_the_live_stream_in_chromium(server: ServerProcess, tmp_path: Path) -> None:
    publisher = popen(ffmpeg_publish_args(server.url("live/real"), duration_s=40, gop=25))
    reader = None
    try:
        deadline = time.monotonic() + 15
        while True:
            streams = json.loads(_get(server.http_url("/api/streams")))["streams"]
            if any(s["name"] == "real" and s["bitrate_in_bps"] for s in streams):
                break
            assert time.monotonic() < deadline, streams
            time.sleep(0.2)
        # FFmpeg 9 follows the same live LL-HLS playlist meanwhile.
        reader = popen(
            [FFMPEG9, "-nostdin", "-v", "error", "-i", server.http_url("/live/real/index.m3u8")]
            + ["-t", "6", "-map", "0", "-f", "framecrc", "-"]
        )
        with chromium_context(tmp_path) as context:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.http_url("/"))
            row = page.locator('tr[data-stream="live/real"]')
            row.wait_for(timeout=10_000)
            row.locator("button.preview-hls").click()
            page.wait_for_function(
                "document.getElementById('preview').currentTime > 1.0", timeout=20_000
            )
            t1 = page.evaluate("document.getElementById('preview').currentTime")
            time.sleep(2.0)
            t2 = page.evaluate("document.getElementById('preview').currentTime")
            assert t2 - t1 > 1.0, (t1, t2)
            page.wait_for_function(
                "document.getElementById('preview-state').innerText.includes('latency')",
                timeout=10_000,
            )
            state = page.evaluate("document.getElementById('preview-state').innerText")
            latency_s = float(state.split("latency ")[1].split(" s")[0])
            assert latency_s < 4.0, state
            # The viewer counts in the table (hls.js and FFmpeg: two clients).
            page.wait_for_function(
                'Number(document.querySelector(\'tr[data-stream="live/real"] '
                "td:nth-child(6)').innerText) >= 1",
                timeout=5_000,
            )
            assert errors == []
        stdout, stderr = reader.communicate(timeout=30)
        assert reader.returncode == 0 and stderr == "", stderr
        video = [line for line in stdout.splitlines() if line.startswith("0,")]
        assert len(video) >= 125, len(video)  # 6 s at 25 fps, live
    finally:
        publisher.kill()
        publisher.wait()
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait()
