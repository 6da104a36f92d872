"""Stream info from real FFmpeg 9 FLV files fed through Stream.ingest."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiortmp.hub.packet import PacketKind
from aiortmp.hub.stream import Stream
from aiortmp.media.flv import FLVReader, TagType

from .fakes import FakeScheduler, FakeSource

FIXTURES = Path(__file__).parents[1] / "media" / "fixtures" / "flv"


def ingest_file(name: str) -> Stream:
    stream = Stream("live", name, scheduler=FakeScheduler())
    stream.attach(FakeSource())
    with open(FIXTURES / name, "rb") as fh:
        for tag in FLVReader(fh):
            if tag.tag_type in (TagType.AUDIO, TagType.VIDEO):
                stream.ingest(tag.tag_type, tag.timestamp_ms, tag.payload)
    stream.flush()
    return stream


@pytest.mark.parametrize(
    ("name", "video", "audio"),
    [
        ("h264_aac.flv", ("avc1", 64, 48), "mp4a"),
        ("hevc_opus.flv", ("hvc1", 64, 48), "Opus"),
        ("av1_aac.flv", ("av01", 64, 48), "mp4a"),
        ("vp9_flac.flv", ("vp09", 64, 48), "fLaC"),
    ],
)
def test_codec_info_per_fixture(name: str, video: tuple[str, int, int], audio: str) -> None:
    stream = ingest_file(name)
    v = stream.info.video[0]
    assert (v.codec, v.width, v.height) == video
    assert stream.info.audio[0].codec == audio
    assert not stream.info.wants_keyframe and not stream.info.wants_audio_frame
    # Headers cached per track; the GOP starts with a keyframe.
    kinds = {p.kind for p in stream.cache.configs.values()}
    assert kinds == {PacketKind.VIDEO_CONFIG, PacketKind.AUDIO_CONFIG}
    assert stream.cache.gop and stream.cache.gop[0].kind is PacketKind.KEYFRAME
    summary = stream.info.summary()
    assert video[0] in summary and audio in summary


def test_multitrack_headers_cached_per_track() -> None:
    stream = ingest_file("multitrack.flv")
    tracks = set(stream.cache.configs)
    assert (9, 0, (0,)) in tracks and (9, 0, (1,)) in tracks
    assert set(stream.info.video) == {0, 1}
    assert set(stream.info.audio) == {0, 1}
    startup = stream.cache.replay()
    assert [p.kind for p in startup[:2]] == [PacketKind.VIDEO_CONFIG] * 2


def test_measured_rates() -> None:
    stream = Stream("live", "x", scheduler=FakeScheduler())
    stream.attach(FakeSource())
    stream.sample(1.0)
    for i in range(30):
        stream.ingest(9, i * 33, b"\x27\x01\x00\x00\x00" + bytes(995))
    stream.sample(1.0)
    assert stream.info.frame_rate_measured == 30
    assert stream.info.video_bitrate_bps == 30 * 1000 * 8
    assert stream.bitrate_bps == 240_000
