"""The stream core over real sockets with FFmpeg: recordings that fail or die without
hurting the stream, timestamps across the 32-bit boundaries, pulled streams treated like
published ones, and E-RTMP configuration packets for late joiners."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import aiortmp.client as rtmp
from aiortmp.media.tags import AudioPacketType, VideoPacketType
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HooksConfig, RelayConfig, RelayPull, WebhookConfig, load_config

from ..conftest import ServerFactory, eventually, url
from ..webhooks import Receiver
from ..webhooks import receiver as receiver  # the fixture
from .nginx import run_nginx
from .peers import (
    FFMPEG9,
    debian_tool,
    decoded_frames,
    ffmpeg_play_args,
    ffmpeg_publish_args,
    popen,
    run_server,
)

pytestmark = pytest.mark.interop


def probe_duration_s(path: Path) -> float:
    """The duration Debian's ffprobe reads from a file (format duration)."""
    out = subprocess.run(
        [
            debian_tool("ffprobe"),
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


def webhook_config(receiver_url: str) -> str:
    return f"""
[[hooks.webhook]]
url = "{receiver_url}"
events = ["publish", "unpublish", "record_done", "record_failed"]
"""


async def wait_process(proc: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("process did not finish in time")
        await asyncio.sleep(0.1)


async def test_disk_error_stops_the_recording_only(tmp_path: Path, receiver: Receiver) -> None:
    """``ulimit -f``: recording writes fail with EFBIG mid-stream. The player never stalls,
    the server logs one line, record_failed fires, and a later publish records again."""
    with run_server(
        tmp_path, file_size_limit=150_000, config=webhook_config(receiver.url)
    ) as server:
        async with rtmp.connect(server.url("live"), timeout=10) as conn:
            player = await conn.play("cam")  # ends when the publisher leaves
            publisher = popen(ffmpeg_publish_args(server.url("live/cam"), duration_s=8))
            arrivals: list[float] = []
            try:
                async for message in player:
                    if message.type_id == 9:
                        arrivals.append(time.monotonic())
            finally:
                await wait_process(publisher, 30)
        await receiver.wait(lambda b: any(x["event"] == "record_failed" for x in b))
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
        assert len(arrivals) > 100 and max(gaps) < 1.0, f"longest stall {max(gaps):.2f} s"
        (failed,) = receiver.events("record_failed")
        assert "File too large" in failed["details"]["error"]
        failures = [line for line in server.log().splitlines() if "failed" in line]
        assert len(failures) == 1, failures
        # The next publish of the same name records again (a new, small file).
        again = popen(ffmpeg_publish_args(server.url("live/cam"), duration_s=1))
        await wait_process(again, 30)
        await receiver.wait(lambda b: len([x for x in b if x["event"] == "record_done"]) == 1)
        (done,) = receiver.events("record_done")
        assert done["details"]["path"] != failed["details"]["path"]
        assert probe_duration_s(Path(done["details"]["path"])) > 0.5


async def test_kill_9_mid_recording_loses_at_most_about_a_second(tmp_path: Path) -> None:
    with run_server(tmp_path) as server:
        publisher = popen(ffmpeg_publish_args(server.url("live/cam"), duration_s=20))
        try:
            files = await eventually(lambda: list(server.record_dir.glob("live/cam-*.flv")), 15)
            started = time.monotonic()
            await asyncio.sleep(5)
            os.kill(server.proc.pid, signal.SIGKILL)
            published_s = time.monotonic() - started
            server.proc.wait(10)
        finally:
            publisher.kill()
            publisher.wait()
    duration_s = probe_duration_s(files[0])
    assert duration_s >= published_s - 1.5, (duration_s, published_s)


@pytest.mark.parametrize(
    "offset_s",
    [2147481, 4294964],  # 2.6 s before 2**31 ms, 3.3 s before 2**32 ms
    ids=["2^31", "2^32"],
)
async def test_timestamps_across_the_32_bit_boundaries(tmp_path: Path, offset_s: int) -> None:
    duration_s = 7
    with run_server(tmp_path) as server:
        # The player joins first: it sees the whole stream, boundary included.
        player = popen(ffmpeg_play_args(server.url("live/cam")))
        await asyncio.sleep(1.0)
        args = ffmpeg_publish_args(server.url("live/cam"), duration_s=duration_s)
        publisher = popen([*args[:-3], "-output_ts_offset", str(offset_s), *args[-3:]])
        try:
            await wait_process(publisher, 40)
            assert publisher.returncode == 0, publisher.communicate()[1][-2000:]
            await wait_process(player, 20)
        finally:
            for proc in (player, publisher):
                if proc.poll() is None:
                    proc.kill()
        stderr = player.communicate()[1]
        assert "missing PTS" not in stderr and "Invalid" not in stderr, stderr[-2000:]
        assert decoded_frames(stderr) >= 0.9 * 25 * duration_s, stderr[-2000:]
        await eventually(lambda: "recording closed" in server.log(), 10)
        (recording,) = server.record_dir.glob("live/cam-*.flv")
    assert abs(probe_duration_s(recording) - duration_s) <= 1.0


async def test_pulled_stream_is_recorded_and_hooked(
    tmp_path: Path, make_server: ServerFactory, receiver: Receiver
) -> None:
    with run_nginx(tmp_path / "nginx") as nginx:
        server = await make_server(
            record_dir=tmp_path / "records",
            relay=RelayConfig(pull=[RelayPull(app="mirror", url=nginx.url("live"))]),
            hooks=HooksConfig(webhook=[WebhookConfig(url=receiver.url)]),
        )
        publisher = popen(ffmpeg_publish_args(nginx.url("live/cam"), duration_s=5))
        try:
            await asyncio.sleep(1.0)
            async with rtmp.connect(url(server, "mirror"), timeout=10) as conn:
                player = await conn.play("cam")
                frames = 0
                async for message in player:
                    frames += message.type_id == 9
            await wait_process(publisher, 30)
        finally:
            if publisher.poll() is None:
                publisher.kill()
        await receiver.wait(lambda b: any(x["event"] == "record_done" for x in b))
    assert frames > 50
    (publish,) = [b for b in receiver.events("publish") if b["app"] == "mirror"]
    (unpublish,) = [b for b in receiver.events("unpublish") if b["app"] == "mirror"]
    assert publish["details"]["source"] == unpublish["details"]["source"] == "pull"
    assert publish["session_id"] == unpublish["session_id"]
    (done,) = receiver.events("record_done")
    assert probe_duration_s(Path(done["details"]["path"])) > 2.0


async def test_late_joiner_gets_multichannel_config_and_hdr_metadata(
    make_server: ServerFactory,
) -> None:
    """FFmpeg 9 sends E-RTMP MultichannelConfig (6-channel Opus) and a video Metadata
    packet (HDR colorInfo) once, at the start; a player joining later gets both."""
    server = await make_server()
    args = ffmpeg_publish_args(
        url(server, "live/hdr"),
        duration_s=6,
        video=(
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p10le",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ),
        audio=("-c:a", "libopus", "-ac", "6", "-ar", "48000"),
        ffmpeg=FFMPEG9,
    )
    publisher = popen(args)
    try:
        stream = await eventually(lambda: server.registry.get("live", "hdr"), 15)
        await eventually(lambda: stream.video_frames_in > 50, 15)  # well past the start
        async with rtmp.connect(url(server, "live"), timeout=10) as conn:
            player = await conn.play("hdr")
            startup = []
            async for message in player:
                startup.append(message)
                if message.is_keyframe:
                    break
    finally:
        publisher.kill()
        publisher.wait()
    video_types = {m.video.packet_type for m in startup if m.video is not None}
    audio_types = {m.audio.packet_type for m in startup if m.audio is not None}
    assert VideoPacketType.METADATA in video_types
    assert AudioPacketType.MULTICHANNEL_CONFIG in audio_types


async def test_sighup_with_a_new_chunk_size(tmp_path: Path) -> None:
    """A reload changes chunk_size: connections made afterwards announce the new size and
    get bytes cut at it, earlier ones keep theirs; every player decodes."""
    config_path = tmp_path / "aiortmp.toml"
    config_path.write_text('listen = ["127.0.0.1:0"]\nchunk_size = 4096\n[http]\nlisten = []\n')
    server = RTMPServer(load_config(config_path), config_path=config_path)
    await server.start()
    try:
        address = url(server, "live/cam")
        publisher = popen(ffmpeg_publish_args(address, duration_s=8, gop=25))
        await asyncio.sleep(1.0)
        before = popen(ffmpeg_play_args(address, "-t", "5"))
        await asyncio.sleep(1.0)
        config_path.write_text('listen = ["127.0.0.1:0"]\nchunk_size = 128\n[http]\nlisten = []\n')
        server.reload()
        after = popen(ffmpeg_play_args(address, "-t", "4"))
        await asyncio.sleep(1.0)
        # The publisher and the first player announced 4096, the new player 128.
        sizes = sorted(conn.session.chunk_size for conn in server.connections)
        for proc in (before, after, publisher):
            await wait_process(proc, 40)
    finally:
        await server.stop()
    assert sizes == [128, 4096, 4096]
    for proc in (before, after):
        stderr = proc.communicate()[1]
        assert proc.returncode == 0, stderr[-2000:]
        assert decoded_frames(stderr) >= 75, stderr[-2000:]
