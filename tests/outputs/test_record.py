"""Recording (src/aiortmp/outputs/record.py) on an in-memory stream, fast-forward.

FFmpeg 9 makes the clips; their tags are fed to a hub stream as fast as the recorder
takes them (no sockets, no real time), and Debian's ffprobe reads what was written. The
real-time, real-peer cases (FFmpeg publishing, kill -9) are in tests/interop/
test_recording.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aiortmp.hub.stream import Stream, StreamSettings
from aiortmp.media.flv import FLVReader
from aiortmp.outputs.record import (
    ActivePaths,
    RecordedFile,
    Recorder,
    RecordingCatalog,
    RecordSettings,
    Segment,
    enforce_retention,
    parse_recording_name,
    recording_path,
)
from aiortmp.protocol import amf0
from aiortmp.server.config import AppConfig, ServerConfig
from tests.hub.fakes import FakeSource
from tests.media.fmp4_helpers import CLIPS, clips, debian
from tests.vod_media import make_flv


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of H.264 (a keyframe every second, no B-frames) + AAC."""
    return make_flv(tmp_path_factory.mktemp("record") / "clip.flv", 5)


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return clips(tmp_path_factory)


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [debian("ffprobe"), "-v", "error", "-show_format", "-show_streams", "-of", "json"]
        + [str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout))


def decode_errors(path: Path) -> str:
    result = subprocess.run(
        [debian("ffmpeg"), "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        timeout=60,
    )
    return result.stderr.decode(errors="replace")


def feed(stream: Stream, *paths: Path) -> None:
    """The tags of FLV files into the stream, one commit per tag; later files continue
    the timeline (the stream rebases a publisher that starts over at 0)."""
    for path in paths:
        with path.open("rb") as file:
            for tag in FLVReader(file):
                if tag.tag_type == 18:
                    values = amf0.decode_all(tag.payload)
                    if values and values[0] == "onMetaData" and isinstance(values[1], dict):
                        stream.ingest_metadata(dict(values[1]), tag.timestamp_ms)
                    continue
                stream.ingest(tag.tag_type, tag.timestamp_ms, tag.payload)
                stream.commit()


async def record(
    directory: Path, *paths: Path, settings: RecordSettings
) -> tuple[Recorder, list[Segment]]:
    """Record the clips as one publish; the recorder and its closed files."""
    stream = Stream("live", "cam", scheduler=asyncio.get_running_loop(), settings=StreamSettings())
    source = FakeSource()
    stream.attach(source)
    done: list[Segment] = []
    ended = asyncio.Event()
    recorder = Recorder(
        stream,
        directory,
        settings,
        on_segment=lambda _, segment: done.append(segment),
        on_end=lambda _: ended.set(),
    )
    recorder.start()
    feed(stream, *paths)
    stream.detach(source)
    await asyncio.wait_for(ended.wait(), 30)
    return recorder, done


# -- names and settings ------------------------------------------------------------------


def test_names_keep_the_utc_start_to_the_millisecond(tmp_path: Path) -> None:
    when = dt.datetime(2024, 5, 1, 14, 30, 5, 250_000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    path = recording_path(tmp_path, "live", "../cam one", when, "mp4")
    assert path == tmp_path / "live" / "_cam_one-20240501-123005.250.mp4"
    path.parent.mkdir()
    path.touch()
    again = recording_path(tmp_path, "live", "../cam one", when, "mp4")
    assert again.name == "_cam_one-20240501-123005.250-1.mp4"
    start = dt.datetime(2024, 5, 1, 12, 30, 5, 250_000, tzinfo=dt.UTC)
    assert parse_recording_name(path.name) == ("_cam_one", start, "mp4")
    assert parse_recording_name(again.name) == ("_cam_one", start, "mp4")
    # Names from before (no milliseconds) still parse; other files do not.
    assert parse_recording_name("cam-20240501-123005.flv") == (
        "cam",
        start.replace(microsecond=0),
        "flv",
    )
    assert parse_recording_name("cam-2024-05-01.mp4") is None
    assert parse_recording_name("notes.txt") is None


def test_per_app_settings_override_the_top_level() -> None:
    config = ServerConfig(
        record_dir=Path("/r"),
        record_format="mp4",
        record_segment_s=3600,
        record_delete_after="7d",
        apps={
            "cctv": AppConfig(record_segment_s=600, record_max_total_bytes=10**9),
            "scratch": AppConfig(record=False, record_format="flv"),
        },
    )
    assert RecordSettings.for_app(config, "live") == RecordSettings(
        format="mp4", segment_s=3600.0, delete_after_s=7 * 86400.0
    )
    assert RecordSettings.for_app(config, "cctv") == RecordSettings(
        format="mp4", segment_s=600.0, delete_after_s=7 * 86400.0, max_total_bytes=10**9
    )
    assert RecordSettings.for_app(config, "scratch") is None
    assert RecordSettings.for_app(config, "scratch", recorded_only=False) == RecordSettings(
        format="flv", segment_s=3600.0, delete_after_s=7 * 86400.0
    )


# -- MP4 ---------------------------------------------------------------------------------


async def test_mp4_segments_cut_at_the_first_keyframe_after_the_duration(
    clip: Path, tmp_path: Path
) -> None:
    recorder, done = await record(
        tmp_path, clip, settings=RecordSettings(format="mp4", segment_s=1.5)
    )
    # Keyframes every second: cuts at 2 s and 4 s.
    assert [round(s.duration_ms / 1000, 1) for s in done] == [2.0, 2.0, 1.0]
    assert [s.path for s in done] == sorted(tmp_path.glob("live/cam-*.mp4"))
    assert recorder.segments == done and recorder.error is None
    # Each file's name is its start: the previous one's plus the media between them.
    for previous, segment in zip(done, done[1:], strict=False):
        gap = (segment.start - previous.start).total_seconds()
        assert gap == pytest.approx(2.0, abs=0.001)
        assert parse_recording_name(segment.path.name)[1] == segment.start  # type: ignore[index]
    for segment in done:
        info = probe(segment.path)
        video = next(s for s in info["streams"] if s["codec_type"] == "video")
        assert float(video["duration"]) == pytest.approx(segment.duration_ms / 1000, abs=0.05)
        assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
        assert int(info["format"]["size"]) == segment.size_bytes
        assert decode_errors(segment.path) == ""
        details = segment.details()
        assert details["format"] == "mp4" and details["start"].endswith("Z")
        assert details["bytes"] == segment.size_bytes
    total = sum(float(probe(s.path)["format"]["duration"]) for s in done)
    assert total == pytest.approx(5.0, abs=0.2)


async def test_a_clean_close_writes_mehd_and_mfra(clip: Path, tmp_path: Path) -> None:
    _, (segment,) = await record(tmp_path, clip, settings=RecordSettings(format="mp4"))
    data = segment.path.read_bytes()
    assert data[-16:-12] == (16).to_bytes(4, "big") and data[-12:-8] == b"mfro"
    mfra_size = int.from_bytes(data[-4:], "big")
    assert data[-mfra_size + 4 : -mfra_size + 8] == b"mfra"
    mehd = data.index(b"mehd")
    assert int.from_bytes(data[mehd + 8 : mehd + 16], "big") == segment.duration_ms
    # An mfra lists a point per keyframe of the video track (5 in 5 s).
    tfra = data.index(b"tfra", len(data) - mfra_size)
    assert int.from_bytes(data[tfra + 16 : tfra + 20], "big") == 5


@pytest.mark.parametrize("name", [*CLIPS, "multitrack"])
async def test_every_codec_records_to_mp4_that_ffprobe_reads(
    clip_paths: dict[str, Path], name: str, tmp_path: Path
) -> None:
    _, (segment,) = await record(tmp_path, clip_paths[name], settings=RecordSettings(format="mp4"))
    streams = probe(segment.path)["streams"]
    expected = CLIPS.get(name)
    if name == "vvc_aac":
        # Debian's FFmpeg 5.1 predates VVC: it lists the track but cannot name the codec.
        assert len(streams) == 2
    elif expected is None:  # multitrack: two videos, AAC and Opus
        assert sorted(s["codec_name"] for s in streams) == ["aac", "h264", "h264", "opus"]
    else:
        names = {"h264": "h264", "hevc": "hevc", "av1": "av1", "vp9": "vp9"}
        audio = {"eac3": "eac3", "ac3": "ac3", "mp3": "mp3", "flac": "flac"}
        assert sorted(s["codec_name"] for s in streams) == sorted(
            [names[expected.video], audio.get(expected.audio, expected.audio)]
        )
    assert 1.5 <= segment.duration_ms / 1000 <= 2.5


async def test_a_new_resolution_starts_a_new_file(clip: Path, tmp_path: Path) -> None:
    small = make_flv(tmp_path / "small.flv", 2, size="96x64")
    _, done = await record(tmp_path / "rec", clip, small, settings=RecordSettings(format="mp4"))
    assert len(done) == 2
    sizes = [
        next(
            (s["width"], s["height"])
            for s in probe(d.path)["streams"]
            if s["codec_type"] == "video"
        )
        for d in done
    ]
    assert sizes == [(160, 120), (96, 64)]


async def test_max_bytes_cuts_at_keyframes_too(clip: Path, tmp_path: Path) -> None:
    _, done = await record(tmp_path, clip, settings=RecordSettings(format="mp4", max_bytes=40_000))
    assert len(done) >= 2
    assert all(s.duration_ms % 1000 < 60 or s is done[-1] for s in done)  # whole GOPs


# -- FLV ---------------------------------------------------------------------------------


async def test_flv_segments(clip: Path, tmp_path: Path) -> None:
    _, done = await record(tmp_path, clip, settings=RecordSettings(format="flv", segment_s=2))
    assert [s.path.suffix for s in done] == [".flv"] * 3
    durations = [float(probe(s.path)["format"]["duration"]) for s in done]
    assert durations == pytest.approx([2.0, 2.0, 1.0], abs=0.1)
    for segment in done:
        assert decode_errors(segment.path) == ""
        # Each file starts with the metadata and both sequence headers, at 0.
        with segment.path.open("rb") as file:
            first = [t for _, t in zip(range(3), FLVReader(file), strict=False)]
        assert [(t.tag_type, t.timestamp_ms) for t in first] == [(18, 0), (9, 0), (8, 0)]


# -- catalog and retention ----------------------------------------------------------------


def write(path: Path, size: int, age_s: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(size))
    if age_s:
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
    return path


def test_retention_deletes_the_oldest_and_nothing_else(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO, "aiortmp.record")
    folder = tmp_path / "live"
    old = [write(folder / f"cam-2024010{i}-000000.000.mp4", 1000, age_s=10 * 86400) for i in (1, 2)]
    recent = [write(folder / f"cam-2024020{i}-000000.000.mp4", 1000) for i in range(1, 5)]
    active_file = write(folder / "cam-20240101-000000.500.mp4", 5000, age_s=30 * 86400)
    other = write(folder / "notes.txt", 100, age_s=30 * 86400)
    active = ActivePaths()
    active.add(active_file)
    # Age first: files older than 7 days go, except the one being written.
    deleted = enforce_retention(
        folder, RecordSettings(delete_after_s=7 * 86400), active, time.time()
    )
    assert deleted == old
    assert "retention: deleted" in caplog.text
    # Size next: 4 recent files (4000 bytes) + the active one over 7000 bytes: the oldest
    # recent ones go until the total fits; the active one and the text file stay.
    deleted = enforce_retention(folder, RecordSettings(max_total_bytes=7000), active, time.time())
    assert deleted == recent[:2]
    assert sorted(folder.iterdir()) == sorted([*recent[2:], active_file, other])
    # Nothing to do without rules.
    assert enforce_retention(folder, RecordSettings(), active, time.time()) == []


def test_catalog_lists_files_with_their_spans(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "live"
    folder.mkdir()
    target = folder / "cam-20240501-120000.000.flv"
    target.write_bytes(clip.read_bytes())
    write(folder / "other-20240501-120000.000.mp4", 10)  # unreadable: duration 0
    write(folder / "readme.txt", 10)
    active = ActivePaths()
    active.add(target)
    catalog = RecordingCatalog(tmp_path, active)
    files = catalog.list()
    assert [(f.name, f.format, f.active) for f in files] == [
        ("cam", "flv", True),
        ("other", "mp4", False),
    ]
    cam = files[0]
    assert isinstance(cam, RecordedFile)
    assert cam.duration_ms == pytest.approx(5000, abs=150)  # the FLV's onMetaData duration
    assert cam.end - cam.start == dt.timedelta(milliseconds=cam.duration_ms)
    assert catalog.list("live", "cam") == [cam]
    assert catalog.list("nope") == []
