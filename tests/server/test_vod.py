"""VOD over RTMP (src/aiortmp/server/vod.py) with our client: [[vod]] apps play FLV and
MP4 files with start, duration, seek and pause, answer getStreamLength, end with
NetStream.Play.Complete, and refuse paths that leave their directory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import aiortmp.client as rtmp
from aiortmp.media.tags import VideoKind, classify_video
from aiortmp.protocol.control import StreamBegin, StreamEOF
from aiortmp.protocol.events import StatusReceived
from aiortmp.server.app import RTMPServer
from aiortmp.server.config import AppAuth, AuthConfig, AuthRule, VodConfig
from aiortmp.server.vod import resolve_vod_path
from aiortmp.sources.file import load_media_file

from ..conftest import ServerFactory, url
from ..vod_media import fragmented_mp4, make_flv, remux_mp4
from .media import AVC_SEQUENCE_HEADER, video_frame

SECONDS = 4


@pytest.fixture(scope="module")
def vod_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("vod")
    root = base / "media"
    (root / "sub").mkdir(parents=True)
    flv = make_flv(root / "clip.flv", SECONDS)
    remux_mp4(flv, root / "sub" / "clip.mp4")
    fragmented_mp4(flv, root / "rec.mp4")
    (base / "outside.flv").write_bytes(flv.read_bytes())
    os.symlink(root / "clip.flv", root / "link.flv")  # inside: allowed
    os.symlink(base / "outside.flv", root / "escape.flv")  # out: refused
    (root / "notes.txt").write_text("not media")
    return root


async def vod_server(make_server: ServerFactory, root: Path, **options: object) -> RTMPServer:
    return await make_server(vod=[VodConfig(app="vod", dir=root)], **options)


def test_names_resolve_inside_the_directory_only(vod_dir: Path) -> None:
    clip = (vod_dir / "clip.flv").resolve()
    mp4 = (vod_dir / "sub" / "clip.mp4").resolve()
    assert resolve_vod_path(vod_dir, "", "clip.flv") == clip
    assert resolve_vod_path(vod_dir, "", "clip") == clip  # FFmpeg and rtmpdump drop .flv
    assert resolve_vod_path(vod_dir, "", "flv:clip") == clip
    assert resolve_vod_path(vod_dir, "", "mp4:sub/clip.mp4") == mp4
    assert resolve_vod_path(vod_dir, "", "mp4:sub/clip") == mp4
    assert resolve_vod_path(vod_dir, "sub", "clip.mp4") == mp4  # app "vod/sub" (librtmp)
    assert resolve_vod_path(vod_dir, "", "link.flv") == clip  # a symlink inside
    for name in (
        "../outside.flv",
        "sub/../../outside.flv",
        "/etc/passwd",
        "escape.flv",  # a symlink out
        "sub//clip.mp4",
        "sub",  # a directory
        "nope.flv",
        "mp4:../media/clip.flv",
        "clip.flv\x00.mp4",
    ):
        assert resolve_vod_path(vod_dir, "", name) is None, name
    assert resolve_vod_path(vod_dir, "..", "outside.flv") is None


async def play_all(
    server: RTMPServer, name: str, **options: object
) -> tuple[list[rtmp.MediaMessage], list[str], rtmp.Player]:
    options.setdefault("idle_timeout_s", 15.0)
    async with rtmp.connect(url(server, "vod"), timeout=10) as conn:
        player = await conn.play(name, **options)  # type: ignore[arg-type]
        media = [m async for m in player]
        return media, [s.code for s in player.statuses], player


@pytest.mark.parametrize("name", ["clip.flv", "mp4:sub/clip.mp4", "rec.mp4"])
async def test_a_file_plays_to_its_end(
    make_server: ServerFactory, vod_dir: Path, name: str
) -> None:
    server = await vod_server(make_server, vod_dir)
    media, codes, _ = await play_all(server, name, buffer_ms=3000)
    videos = [m for m in media if m.type_id == 9 and not m.is_sequence_header]
    assert len(videos) == SECONDS * 25
    path = resolve_vod_path(vod_dir, "", name)
    assert path is not None
    file = load_media_file(path)
    first = file.entries[file.keyframes[0]].timestamp_ms
    # The file's own timestamps, the keyframe first, the configs before it.
    assert videos[0].is_keyframe and videos[0].timestamp_ms == first
    assert [m.type_id for m in media[:3]] == [18, 9, 8]  # onMetaData, AVC and AAC headers
    assert media[0].metadata is not None
    assert media[0].metadata["duration"] == pytest.approx(SECONDS, abs=0.15)
    # The end: onPlayStatus NetStream.Play.Complete (data, in order), then Play.Stop.
    complete = [m for m in media if m.data is not None and m.data.name == "onPlayStatus"]
    assert complete and complete[0].data is not None
    assert complete[0].data.values[0]["code"] == "NetStream.Play.Complete"
    assert codes == ["NetStream.Play.Reset", "NetStream.Play.Start", "NetStream.Play.Stop"]


async def test_get_stream_length_answers_the_duration(
    make_server: ServerFactory, vod_dir: Path
) -> None:
    server = await vod_server(make_server, vod_dir)
    async with rtmp.connect(url(server, "vod"), timeout=10) as conn:
        assert await conn.get_stream_length("clip.flv") == pytest.approx(SECONDS, abs=0.15)
        assert await conn.get_stream_length("mp4:sub/clip.mp4") == pytest.approx(SECONDS, abs=0.15)
        assert await conn.get_stream_length("nope.flv") == 0.0
        assert await conn.get_stream_length("../outside.flv") == 0.0
    async with rtmp.connect(url(server, "live"), timeout=10) as conn:
        assert await conn.get_stream_length("cam") == 0.0  # live streams have no length


async def test_start_and_duration(make_server: ServerFactory, vod_dir: Path) -> None:
    server = await vod_server(make_server, vod_dir)
    file = load_media_file(vod_dir / "clip.flv")
    first = file.entries[file.keyframes[0]].timestamp_ms
    media, codes, _ = await play_all(
        server, "clip.flv", start_ms=2500.0, duration_ms=1000.0, buffer_ms=3000
    )
    videos = [m for m in media if m.type_id == 9 and not m.is_sequence_header]
    # From the keyframe at or before 2.5 s (2 s in), counted from 0 as FMS does; up to
    # 2.5 + 1 s of the file.
    assert videos[0].is_keyframe and videos[0].timestamp_ms == 0
    keyframe = next(e for e in file.entries if e.keyframe and e.timestamp_ms == first + 2000)
    assert (
        videos[0].payload
        == file.read(file.entries.index(keyframe), file.entries.index(keyframe) + 1)[0][2]
    )
    assert len(videos) == pytest.approx((3500 - 2000 - first) / 40, abs=2)
    assert codes[-1] == "NetStream.Play.Stop"


async def test_seek_and_pause(make_server: ServerFactory, vod_dir: Path) -> None:
    server = await vod_server(make_server, vod_dir)
    file = load_media_file(vod_dir / "rec.mp4")
    first = file.entries[file.keyframes[0]].timestamp_ms
    async with rtmp.connect(url(server, "vod"), timeout=10) as conn:
        player = await conn.play("rec.mp4", buffer_ms=300, idle_timeout_s=10)
        loop = asyncio.get_running_loop()
        step = "playing"
        paused_at = 0.0
        last_ts = 0
        resumed_ts = after_seek = None
        notify: dict[str, object] = {}
        async for event in player.events():
            if isinstance(event, StatusReceived):
                if event.code == "NetStream.Seek.Notify":
                    notify = dict(event.info)
                continue
            if isinstance(event, StreamBegin | StreamEOF) or event.type_id != 9:
                continue
            if event.is_sequence_header:
                continue
            if step == "playing" and event.timestamp_ms >= 1000:
                player.pause()
                step, paused_at, last_ts = "paused", loop.time(), event.timestamp_ms
                loop.call_later(1.0, player.resume)
            elif step == "paused":
                if loop.time() - paused_at < 0.9:
                    last_ts = event.timestamp_ms  # in flight when the pause went out
                    continue
                resumed_ts = event.timestamp_ms
                player.seek(first + 3500)
                step = "seeking"
            elif step == "seeking" and notify:
                after_seek = event
                break
        await player.close()
    # Nothing came during the pause, and playing went on from the next frame.
    assert resumed_ts == last_ts + 40
    # The seek went to the keyframe at or before 3.5 s: 3 s in.
    assert notify["position"] == first + 3000
    assert after_seek is not None and after_seek.is_keyframe
    assert after_seek.timestamp_ms == first + 3000


async def test_path_escapes_and_missing_files_are_not_found(
    make_server: ServerFactory, vod_dir: Path
) -> None:
    server = await vod_server(make_server, vod_dir)
    async with rtmp.connect(url(server, "vod"), timeout=10) as conn:
        for name in ("../outside.flv", "escape.flv", "/etc/passwd", "nope.mp4", "notes.txt"):
            with pytest.raises(rtmp.RejectedError, match="StreamNotFound"):
                await conn.play(name)
        # The connection is fine: a good name plays.
        player = await conn.play("link.flv")
        message = await anext(aiter(player))
        assert message.type_id in (8, 9, 18)


async def test_vod_follows_the_apps_play_rules(make_server: ServerFactory, vod_dir: Path) -> None:
    server = await vod_server(
        make_server,
        vod_dir,
        auth=AuthConfig(apps={"vod": AppAuth(play=AuthRule(keys=["s3cret"]))}),
    )
    async with rtmp.connect(url(server, "vod"), timeout=10) as conn:
        with pytest.raises(rtmp.RejectedError, match="Play.Failed"):
            await conn.play("clip.flv")
        player = await conn.play("clip.flv?key=s3cret")
        message = await anext(aiter(player))
        assert message.type_id in (8, 9, 18)


async def test_a_live_stream_refuses_to_seek(make_server: ServerFactory, vod_dir: Path) -> None:
    server = await vod_server(make_server, vod_dir)
    async with rtmp.connect(url(server, "live"), timeout=10) as conn:
        publisher = await conn.publish("cam")
        await publisher.send_video(0, AVC_SEQUENCE_HEADER)
        await publisher.send_video(0, video_frame(0, 500))
        async with rtmp.connect(url(server, "live"), timeout=10) as viewer:
            player = await viewer.play("cam")
            player.seek(1000)
            async for event in player.events():
                if isinstance(event, StatusReceived) and "Seek" in event.code:
                    assert event.code == "NetStream.Seek.Failed" and event.level == "error"
                    break
            assert classify_video(AVC_SEQUENCE_HEADER) is VideoKind.SEQUENCE_HEADER
