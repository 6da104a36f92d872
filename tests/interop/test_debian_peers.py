"""rtmpdump, GStreamer and Debian's FFmpeg 5.1 against `aiortmp serve`.

rtmpdump (librtmp) and GStreamer (rtmp2src/rtmp2sink) are independent RTMP
implementations; FFmpeg 5.1 predates Enhanced RTMP. All come from Debian packages that
`make test` installs (scripts/sysdeps.sh).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .peers import (
    ServerProcess,
    debian_tool,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with run_server(tmp_path) as srv:
        yield srv


def probe_streams(path: Path) -> list[str]:
    out = subprocess.run(
        [
            debian_tool("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return sorted(s["codec_name"] for s in json.loads(out)["streams"])


def test_rtmpdump_plays_a_live_stream(server: ServerProcess, tmp_path: Path) -> None:
    publisher = popen(ffmpeg_publish_args(server.url("live/dump"), duration_s=6))
    time.sleep(1.5)
    out = tmp_path / "dump.flv"
    dump = subprocess.run(
        [debian_tool("rtmpdump"), "-r", server.url("live/dump"), "--live", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    publisher.communicate(timeout=30)
    assert out.stat().st_size > 50_000, dump.stderr[-2000:]
    assert probe_streams(out) == ["aac", "h264"]


def test_gstreamer_rtmp2src_decodes_video_and_audio(server: ServerProcess) -> None:
    publisher = popen(ffmpeg_publish_args(server.url("live/gst"), duration_s=6))
    time.sleep(1.5)
    gst = subprocess.run(
        [
            debian_tool("gst-launch-1.0"),
            "-v",
            "rtmp2src",
            f"location={server.url('live/gst')}",
            "!",
            "flvdemux",
            "name=d",
            "d.video",
            "!",
            "queue",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "fakesink",
            "silent=false",
            "name=vs",
            "d.audio",
            "!",
            "queue",
            "!",
            "aacparse",
            "!",
            "avdec_aac",
            "!",
            "fakesink",
            "silent=false",
            "name=as",
        ],
        capture_output=True,
        text=True,
        timeout=40,
    )
    publisher.communicate(timeout=30)
    video = len(re.findall(r"\(vs:sink\) \(\d+ bytes", gst.stdout))
    audio = len(re.findall(r"\(as:sink\) \(\d+ bytes", gst.stdout))
    assert gst.returncode == 0, gst.stderr[-2000:]
    assert "Got EOS" in gst.stdout  # UnpublishNotify + StreamEOF end the pipeline
    assert video >= 90, gst.stdout[-2000:]
    assert audio >= 90


def test_gstreamer_publishes_and_ffmpeg_plays(server: ServerProcess) -> None:
    url = server.url("live/gstpub")
    gst = popen(
        [
            debian_tool("gst-launch-1.0"),
            "-e",
            "videotestsrc",
            "num-buffers=200",
            "is-live=true",
            "!",
            "video/x-raw,width=320,height=240,framerate=25/1",
            "!",
            "x264enc",
            "tune=zerolatency",
            "key-int-max=25",
            "!",
            "h264parse",
            "!",
            "queue",
            "!",
            "flvmux",
            "name=m",
            "streamable=true",
            "!",
            "rtmp2sink",
            f"location={url}",
            "audiotestsrc",
            "is-live=true",
            "num-buffers=350",
            "!",
            "audioconvert",
            "!",
            "avenc_aac",
            "!",
            "aacparse",
            "!",
            "queue",
            "!",
            "m.",
        ]
    )
    time.sleep(2.0)
    player = subprocess.run(
        ffmpeg_play_args(url, ffmpeg=debian_tool("ffmpeg")),
        capture_output=True,
        text=True,
        timeout=40,
    )
    gst.communicate(timeout=30)
    assert decoded_frames(player.stderr) >= 60, player.stderr[-2000:]
    assert "Video: h264" in player.stderr and "Audio: aac" in player.stderr


def test_debian_ffmpeg_publishes_and_plays(server: ServerProcess) -> None:
    ffmpeg = debian_tool("ffmpeg")
    url = server.url("live/deb")
    publisher = popen(ffmpeg_publish_args(url, duration_s=6, ffmpeg=ffmpeg))
    time.sleep(1.0)
    player = subprocess.run(
        ffmpeg_play_args(url, ffmpeg=ffmpeg), capture_output=True, text=True, timeout=40
    )
    _, perr = publisher.communicate(timeout=30)
    assert publisher.returncode == 0, perr[-2000:]
    assert decoded_frames(player.stderr) >= 90, player.stderr[-2000:]
