"""FFmpeg 9 publishes H.264/AAC over RTMP to `aiortmp serve`; FFmpeg 9, Debian's FFmpeg 5.1
and ffprobe play it back over HTTP-FLV, and a WebSocket-FLV viewer's bytes are decoded by
FFmpeg (issue: HTTP surface).

One real-time scenario (about 11 s) runs once per module; each test checks one property.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from .peers import (
    FFMPEG9,
    debian_tool,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    input_streams,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop

PUBLISH_S = 10.0
GOP = 25  # a keyframe every second: viewers start within a second


@dataclass
class Scenario:
    publisher_rc: int = -1
    publisher_err: str = ""
    until_end: tuple[int, str] = (-1, "")  # FFmpeg 9 reading HTTP-FLV until the stream ends
    debian: tuple[int, str] = (-1, "")  # Debian FFmpeg 5.1, 4 s of HTTP-FLV
    probe: dict[str, Any] = field(default_factory=dict)
    ws: tuple[int, str] = (-1, "")  # FFmpeg 9 decoding WebSocket-FLV bytes from stdin
    ws_bytes: int = 0
    ws_first: bytes = b""
    api_view: dict[str, Any] = field(default_factory=dict)
    missing_status: int = 0
    server_log: str = ""


def _read_ws_into(url: str, sink: subprocess.Popen[bytes], seconds: float, out: Scenario) -> None:
    """Receive WebSocket-FLV for ``seconds`` and feed the bytes to FFmpeg's stdin."""

    async def run() -> None:
        assert sink.stdin is not None
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    message = await ws.receive(timeout=5)
                    if message.type is not aiohttp.WSMsgType.BINARY:
                        break
                    if not out.ws_first:
                        out.ws_first = message.data[:13]
                    out.ws_bytes += len(message.data)
                    sink.stdin.write(message.data)
        sink.stdin.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    debian_ffmpeg = debian_tool("ffmpeg")
    ffprobe = debian_tool("ffprobe")
    result = Scenario()
    with run_server(tmp_path_factory.mktemp("httpflv"), http=True) as server:
        flv_url = server.http_url("/live/cam.flv")
        publisher = popen(
            ffmpeg_publish_args(server.url("live/cam"), duration_s=PUBLISH_S, gop=GOP)
        )
        time.sleep(1.5)
        until_end = popen(ffmpeg_play_args(flv_url))
        debian = popen(ffmpeg_play_args(flv_url, "-t", "4", ffmpeg=debian_ffmpeg))
        probe = popen(
            [
                ffprobe,
                "-v",
                "error",
                "-show_streams",
                "-of",
                "json",
                "-analyzeduration",
                "2000000",
                flv_url,
            ]
        )
        ws_decoder = subprocess.Popen(
            [FFMPEG9, "-hide_banner", "-nostdin", "-f", "flv", "-i", "pipe:0", "-f", "null", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ws_url = flv_url.replace("http://", "ws://")
        ws_thread = threading.Thread(
            target=_read_ws_into, args=(ws_url, ws_decoder, 4.0, result), daemon=True
        )
        ws_thread.start()
        time.sleep(2.5)
        with urllib.request.urlopen(server.http_url("/api/streams/live/cam"), timeout=5) as r:
            result.api_view = json.load(r)
        try:
            urllib.request.urlopen(server.http_url("/live/missing.flv"), timeout=5)
        except urllib.error.HTTPError as exc:
            result.missing_status = exc.code
        out, err = probe.communicate(timeout=30)
        result.probe = json.loads(out or "{}")
        result.debian = (debian.wait(30), debian.communicate()[1])
        ws_thread.join(30)
        assert ws_decoder.stdin is not None and ws_decoder.stderr is not None
        if not ws_decoder.stdin.closed:  # the reader failed: let FFmpeg see the end
            ws_decoder.stdin.close()
        ws_err = ws_decoder.stderr.read().decode(errors="replace")
        result.ws = (ws_decoder.wait(30), ws_err)
        result.publisher_rc = publisher.wait(PUBLISH_S + 20)
        result.publisher_err = publisher.communicate()[1]
        result.until_end = (until_end.wait(20), until_end.communicate()[1])
        for proc in (publisher, until_end, debian, probe):
            if proc.poll() is None:
                proc.kill()
        result.server_log = server.log()
    yield result


def test_publisher_ran_to_the_end(scenario: Scenario) -> None:
    assert scenario.publisher_rc == 0, scenario.publisher_err[-2000:]


def test_ffmpeg9_decodes_http_flv_until_the_stream_ends(scenario: Scenario) -> None:
    rc, err = scenario.until_end
    # The body ends (terminating chunk) when the publisher leaves: FFmpeg exits cleanly.
    assert rc == 0, err[-2000:]
    streams = input_streams(err)
    assert any("Video: h264" in s and "320x240" in s for s in streams), streams
    assert any("Audio: aac" in s for s in streams), streams
    # Joined 1.5 s in, starting at a keyframe at most 1 s earlier: ~8.5 s at 25 fps.
    assert decoded_frames(err) >= 180, err[-2000:]
    # FFmpeg's http.c ends a chunked body of unknown length with EIO even after the last
    # chunk ("Last chunk received, closing conn", then `s->off < s->filesize`); that line is
    # the only error allowed.
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert all("Error during demuxing: Input/output error" in line for line in errors), errors


def test_debian_ffmpeg_decodes_http_flv(scenario: Scenario) -> None:
    rc, err = scenario.debian
    assert rc == 0, err[-2000:]
    assert decoded_frames(err) >= 90, err[-2000:]  # 4 s at 25 fps


def test_ffprobe_sees_h264_and_aac_over_http_flv(scenario: Scenario) -> None:
    streams = {s["codec_type"]: s for s in scenario.probe.get("streams", [])}
    assert streams["video"]["codec_name"] == "h264", scenario.probe
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["audio"]["sample_rate"]) == 44100


def test_websocket_flv_bytes_decode(scenario: Scenario) -> None:
    assert scenario.ws_first[:3] == b"FLV" and len(scenario.ws_first) == 13
    rc, err = scenario.ws
    assert rc == 0, err[-2000:]
    assert decoded_frames(err) >= 75, err[-2000:]  # ~4 s of video
    assert scenario.ws_bytes > 200_000


def test_api_counts_the_http_viewers(scenario: Scenario) -> None:
    view = scenario.api_view
    by_protocol = view["players_by_protocol"]
    assert by_protocol.get("http-flv", 0) >= 2, view  # FFmpeg 9 and Debian FFmpeg (+ ffprobe)
    assert by_protocol.get("ws-flv") == 1, view
    assert view["bitrate_out_bps"] > view["bitrate_in_bps"], view


def test_stream_that_is_not_live_is_404(scenario: Scenario) -> None:
    assert scenario.missing_status == 404


def test_server_logged_the_viewers(scenario: Scenario) -> None:
    log = scenario.server_log
    assert "http-flv play live/cam started" in log, log[-3000:]
    assert "ws-flv play live/cam stopped" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
