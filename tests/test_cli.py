"""``aiortmp publish | play | probe`` against in-process servers (issue 5: CLI).

The commands run their own event loop, so each runs in a thread (``cli.main``) while the
test's loop serves; one test runs the real console entry point in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

import aiortmp.client as rtmp
from aiortmp import cli
from aiortmp.media.flv import FLVReader, TagType
from aiortmp.media.tags import parse_video_tag
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import HTTPConfig, ServerConfig

ServerFactory = Callable[..., Awaitable[RTMPServer]]
CLIP_S = 2.0
FPS = 25
GOP = 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of H.264 (320x240, 25 fps, a keyframe every second, no B-frames) + AAC."""
    path = tmp_path_factory.mktemp("clip") / "clip.flv"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=320x240:rate={FPS}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            str(CLIP_S),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            str(GOP),
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "flv",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


@pytest.fixture
async def server() -> AsyncIterator[RTMPServer]:
    server = RTMPServer(ServerConfig(listen=["127.0.0.1:0"], http=HTTPConfig(listen=[])))
    await server.start()
    yield server
    await server.stop()


def url(server: RTMPServer, path: str) -> str:
    host, port = server.addresses[0]
    return f"rtmp://{host}:{port}/{path}"


async def aiortmp(*args: str) -> int:
    """``aiortmp ARGS`` in a thread (its own event loop); returns the exit status."""
    return await asyncio.to_thread(cli.main, [*args])


async def kick_publishers(server: RTMPServer) -> None:
    """Close the publishers' connections (a looping ``aiortmp publish`` then exits 1)."""
    # Let players that just hung up go first: handler.notify_unpublish raises on a
    # connection that got EOF but is not closed yet (reported, not ours to change).
    await asyncio.sleep(0.2)
    for conn in list(server.connections):
        if conn.publishing:
            conn.close()


class Collector:
    def __init__(self, player: rtmp.Player) -> None:
        self.messages: list[tuple[float, rtmp.MediaMessage]] = []
        self.task = asyncio.ensure_future(self._run(player))

    async def _run(self, player: rtmp.Player) -> None:
        loop = asyncio.get_running_loop()
        async for message in player:
            self.messages.append((loop.time(), message))

    def of_type(self, type_id: int) -> list[rtmp.MediaMessage]:
        return [m for _, m in self.messages if m.type_id == type_id]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def playing(server: RTMPServer, name: str) -> tuple[rtmp.Connection, Collector]:
    conn = await rtmp.connect(url(server, "live"), timeout=5)
    return conn, Collector(await conn.play(name, stop_on_unpublish=False))


# -- publish ------------------------------------------------------------------------------------


async def test_publish_paces_by_timestamps_loops_and_shows_progress(
    server: RTMPServer, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conn, player = await playing(server, "paced")
    began = time.monotonic()
    status = await aiortmp("publish", str(clip), url(server, "live/paced"), "--loop", "2")
    elapsed = time.monotonic() - began
    await asyncio.sleep(0.2)
    await player.close()
    await conn.close()
    assert status == 0
    # Real time: two passes of a 2 s clip take about 4 s (the last frame goes at ~3.96 s).
    assert 3.7 <= elapsed < 6, elapsed
    video = [m for m in player.of_type(9) if not m.is_sequence_header and m.header is not None]
    frames = [m for m in video if m.header and m.header.kind.name in ("KEYFRAME", "INTER")]
    assert len(frames) == 2 * FPS * CLIP_S
    timestamps = [m.timestamp_ms for m in frames]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)
    # The second pass follows one frame after the longer (audio) track of the first; FFmpeg
    # starts the clip's video 23 ms late (AAC priming), so the video gap is 40 + 23 + 20 ms.
    assert timestamps[FPS * 2] - timestamps[FPS * 2 - 1] <= 100
    keyframes = [m.timestamp_ms for m in frames if m.is_keyframe]
    assert [b - a for a, b in zip(keyframes, keyframes[1:], strict=False)][::2] == [1000, 1000]
    assert sum(1 for _, m in player.messages if m.metadata is not None) == 1
    # Arrival follows the timestamps (within scheduling noise), not a burst.
    arrivals = {m.timestamp_ms: t for t, m in player.messages if m in frames}
    for ts in keyframes[1:]:
        assert abs((arrivals[ts] - arrivals[keyframes[0]]) - (ts - keyframes[0]) / 1000) < 0.3
    err = capsys.readouterr().err
    assert "publish" in err and "kbit/s" in err and "frames" in err


async def test_publish_no_realtime_sends_at_once_and_timecodes_can_be_off(
    server: RTMPServer, clip: Path
) -> None:
    conn, player = await playing(server, "fast")
    began = time.monotonic()
    status = await aiortmp(
        "publish", str(clip), url(server, "live/fast"), "--loop", "10", "--no-realtime", "-q"
    )
    assert status == 0 and time.monotonic() - began < 3  # 20 s of media
    conn2, player2 = await playing(server, "plain")
    plain = ("publish", str(clip), url(server, "live/plain"), "--no-realtime", "--no-timecode")
    assert await aiortmp(*plain, "-q") == 0
    await asyncio.sleep(0.3)
    for p in (player, player2):
        await p.close()
    await conn.close()
    await conn2.close()
    timecodes = [m for _, m in player.messages if m.data is not None and m.data.name == "onFI"]
    assert len(timecodes) >= 19  # one per second of media
    assert {"sd", "st"} <= set(timecodes[0].data.values[0]) if timecodes[0].data else False
    assert not [m for _, m in player2.messages if m.data is not None]
    assert len(player.of_type(8)) > 10 * len(player2.of_type(8)) - 10


async def test_publish_errors(server: RTMPServer, clip: Path, capsys: Any) -> None:
    assert await aiortmp("publish", str(clip), url(server, "live")) == 2
    assert "needs a stream name" in capsys.readouterr().err
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        await conn.publish("taken")
        assert await aiortmp("publish", str(clip), url(server, "live/taken"), "-q") == 1
    err = capsys.readouterr().err
    assert "rejected by the server: NetStream.Publish.BadName" in err
    assert await aiortmp("publish", str(clip), "rtmp://127.0.0.1:9/live/x", "-q") == 1
    assert "cannot connect" in capsys.readouterr().err
    missing = str(clip.with_name("missing.flv"))
    assert await aiortmp("publish", missing, url(server, "live/x"), "-q") == 1
    assert "missing.flv" in capsys.readouterr().err


# -- play ---------------------------------------------------------------------------------------


async def test_play_records_a_valid_flv_starting_at_zero(
    server: RTMPServer, clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.flv"
    publish = asyncio.ensure_future(
        aiortmp("publish", str(clip), url(server, "live/rec"), "--loop", "3", "-q")
    )
    await asyncio.sleep(1.5)  # join mid-GOP: the server's GOP cache starts at 1.0 s
    status = await aiortmp("play", url(server, "live/rec"), "-o", str(out), "--duration", "2")
    assert status == 0
    await kick_publishers(server)
    assert await publish == 1
    with open(out, "rb") as fh:
        reader = FLVReader(fh)
        tags = list(reader)
        assert reader.header.has_video and not reader.truncated
    assert tags[0].tag_type == TagType.SCRIPT and tags[0].payload.startswith(b"\x02\x00\nonMeta")
    media = [t for t in tags if t.tag_type != TagType.SCRIPT]
    assert all(t.tag_type != TagType.SCRIPT for t in tags[1:])  # no onFI in recordings
    first_video = [t for t in media if t.tag_type == TagType.VIDEO]
    assert parse_video_tag(first_video[0].payload).is_sequence_header
    assert parse_video_tag(first_video[1].payload).is_keyframe
    assert first_video[1].timestamp_ms == 0
    video_ts = [t.timestamp_ms for t in first_video[1:]]
    assert video_ts == sorted(video_ts) and 2000 <= video_ts[-1] <= 3600


async def test_play_ends_with_the_publisher_and_prints_progress(
    server: RTMPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with rtmp.connect(url(server, "live"), timeout=5) as conn:
        publisher = await conn.publish("short")
        play = asyncio.ensure_future(aiortmp("play", url(server, "live/short")))
        while (
            not server.registry.get("live", "short")
            or not server.registry.get("live", "short").player_count
        ):  # type: ignore[union-attr]
            await asyncio.sleep(0.02)
        for i in range(10):
            await publisher.send_video(i * 40, b"\x17\x01\x00\x00\x00" + bytes(1000))
        await publisher.close()
        assert await asyncio.wait_for(play, 5) == 0
    assert "10 frames" in capsys.readouterr().err


# -- probe --------------------------------------------------------------------------------------


async def test_probe_reports_codecs_rates_gop_and_delay(
    server: RTMPServer, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish = asyncio.ensure_future(
        aiortmp("publish", str(clip), url(server, "live/probe"), "--loop", "3", "-q")
    )
    await asyncio.sleep(1.3)
    status = await aiortmp("probe", url(server, "live/probe"), "--duration", "3", "--json")
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    await kick_publishers(server)
    await publish
    (video,) = report["video"]
    assert (video["codec"], video["width"], video["height"]) == ("avc1", 320, 240)
    (audio,) = report["audio"]
    assert (audio["codec"], audio["sample_rate"], audio["channels"]) == ("mp4a", 44100, 1)
    assert report["fps"] == pytest.approx(FPS, rel=0.05)
    assert GOP in report["gop_frames"] and report["gop_s"] == pytest.approx(1.0, rel=0.1)
    assert 20_000 < report["audio_bitrate_bps"] < 120_000
    assert report["video_bitrate_bps"] > 50_000
    assert report["metadata"]["width"] == 320
    # onFI timecodes from `aiortmp publish`: same host, so the delay is real and small.
    assert report["delay_samples"] >= 2 and 0 <= report["delay_ms"] < 300
    # Joined 0.3 s after a keyframe: the cached GOP put the first frame ~300 ms behind.
    assert 100 <= report["behind_live_at_join_ms"] <= 900
    assert report["jitter_ms"] < 200


async def test_probe_text_output(
    server: RTMPServer, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish = asyncio.ensure_future(
        aiortmp("publish", str(clip), url(server, "live/text"), "--no-timecode", "-q")
    )
    await asyncio.sleep(0.2)
    assert await aiortmp("probe", url(server, "live/text"), "--duration", "1.5") == 0
    await kick_publishers(server)
    await publish
    out = capsys.readouterr().out
    assert "video[0]: avc1 " in out and "320x240" in out
    assert "audio[0]: mp4a LC 44100 Hz 1 ch" in out
    assert "fps (measured)" in out and "kbit/s" in out
    assert "delay: not measurable" in out


async def test_probe_of_an_unpublished_stream_fails(server: RTMPServer) -> None:
    assert await aiortmp("probe", url(server, "live/none"), "--duration", "0.3") == 1


# -- the real entry point -----------------------------------------------------------------------


async def test_console_play_finalizes_the_recording_on_sigterm(
    server: RTMPServer, tmp_path: Path, clip: Path
) -> None:
    out = tmp_path / "sig.flv"
    publish = asyncio.ensure_future(
        aiortmp("publish", str(clip), url(server, "live/sig"), "--loop", "2", "-q")
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiortmp.cli",
        "play",
        url(server, "live/sig"),
        "-o",
        str(out),
        "-q",
        stderr=subprocess.PIPE,
    )
    stream = None
    for _ in range(200):
        stream = server.registry.get("live", "sig")
        if stream is not None and stream.player_count:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err
    await kick_publishers(server)
    await publish
    with open(out, "rb") as fh:
        tags = list(FLVReader(fh))
    # The duration was patched into onMetaData on close.
    from aiortmp.protocol import amf0

    name, metadata = amf0.decode_all(tags[0].payload)
    assert name == "onMetaData" and 0.5 < metadata["duration"] < 3


# -- helpers ------------------------------------------------------------------------------------


def test_onfi_timecodes_round_trip() -> None:
    now = time.time()
    assert abs(cli._parse_timecode([cli._timecode(now)]) - now) < 0.002  # type: ignore[operator]
    whole = cli._parse_timecode([{"sd": "21-11-25", "st": "10:50:25"}])  # FMLE without ms
    assert whole is not None and whole % 1 == 0
    for bad in ([], ["x"], [{"sd": "21-11-25"}], [{"sd": "2025-11-21", "st": "10:50:25"}]):
        assert cli._parse_timecode(bad) is None


def test_looped_tags_shift_each_pass_after_the_longest_track(clip: Path) -> None:
    once = list(cli._looped_tags(str(clip), None))
    thrice = list(cli._looped_tags(str(clip), 3))
    media = [t for t in once if t[0] != TagType.SCRIPT]
    end = max(ts for kind, ts, _ in media if kind == TagType.AUDIO) + 23  # one AAC frame
    video_end = max(ts for kind, ts, _ in media if kind == TagType.VIDEO) + 40
    span = max(end, video_end) - min(ts for _, ts, _ in media)
    assert len(thrice) == 3 * len(once) - 2  # onMetaData once
    for n in (1, 2):
        shifted = [t for t in thrice if t[0] != TagType.SCRIPT][n * len(media) :][: len(media)]
        assert [(k, ts - n * span, p) for k, ts, p in shifted] == media


# -- VOD and recordings --------------------------------------------------------------------------


async def test_play_a_vod_file_from_a_start_to_its_end(clip: Path, tmp_path: Path) -> None:
    from aiortmp.server.config import VodConfig

    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "clip.flv").write_bytes(clip.read_bytes())
    vod = RTMPServer(
        ServerConfig(
            listen=["127.0.0.1:0"],
            http=HTTPConfig(listen=[]),
            vod=[VodConfig(app="vod", dir=tmp_path / "media")],
        )
    )
    await vod.start()
    try:
        out = tmp_path / "out.flv"
        # No --duration: the command ends with the file (NetStream.Play.Complete).
        status = await asyncio.wait_for(
            aiortmp("play", url(vod, "vod/clip.flv"), "--start", "1.5", "-o", str(out), "-q"), 20
        )
    finally:
        await vod.stop()
    assert status == 0
    with open(out, "rb") as fh:
        video = [t for t in FLVReader(fh) if t.tag_type == TagType.VIDEO]
    frames = [t for t in video if not parse_video_tag(t.payload).is_sequence_header]
    assert parse_video_tag(frames[0].payload).is_keyframe and frames[0].timestamp_ms == 0
    # From the keyframe at or before 1.5 s (1 s in) to the end of the 2 s clip.
    assert len(frames) == pytest.approx((CLIP_S - 1) * FPS, abs=2)


def test_recordings_lists_the_record_directory(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = tmp_path / "records" / "live"
    live.mkdir(parents=True)
    (live / "cam-20240501-120000.250.flv").write_bytes(clip.read_bytes())
    (live / "cam-20240501-120002.250.flv").write_bytes(clip.read_bytes())
    (live / "notes.txt").write_text("not a recording")
    assert cli.main(["recordings", "--record-dir", str(tmp_path / "records")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["APP", "STREAM", "START", "(UTC)", "DURATION", "SIZE", "FILE"]
    assert lines[1].split()[:5] == ["live", "cam", "2024-05-01", "12:00:00.250", "0:00:02.0"]
    assert len(lines) == 3 and "2 files" in captured.err
    config = tmp_path / "aiortmp.toml"
    config.write_text(f'record_dir = "{tmp_path / "records"}"\n')
    assert cli.main(["recordings", "--config", str(config), "--json", "--name", "cam"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["start"], r["format"]) for r in rows] == [
        ("cam", "2024-05-01T12:00:00.250Z", "flv"),
        ("cam", "2024-05-01T12:00:02.250Z", "flv"),
    ]
    assert rows[0]["duration_s"] == pytest.approx(CLIP_S, abs=0.1)
    assert cli.main(["recordings", "--config", str(tmp_path / "none.toml")]) == 2
    assert cli.main(["recordings"]) == 2  # no record directory anywhere
