"""Tracks to variants, frames to segments and parts (src/aiortmp/outputs/hls/segmenter.py).

FFmpeg 9 clips (tests/outputs/hls_media.py) go through the segmenters as a stream core
would hand them over; what comes out is checked box by box where it matters (parts cut
before video frames, segments at keyframes) and decoded by FFmpeg 9 and Debian's ffprobe.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import m3u8
import pytest

from aiortmp.media.samples import Frame, MediaType, TrackConfig, parse_media
from aiortmp.outputs.hls.playlist import MediaPlaylist
from aiortmp.outputs.hls.segmenter import (
    FMP4Segmenter,
    TrackCollector,
    TSSegmenter,
    VariantTracks,
    config_changed,
)

from ..media.fmp4_helpers import decode_errors, ffprobe
from .hls_media import FFMPEG9, make_clips, read_tags

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_clips(tmp_path_factory)


def units(path: Path, offset_ms: int = 0) -> list[TrackConfig | Frame]:
    out: list[TrackConfig | Frame] = []
    for tag in read_tags(path):
        out.extend(parse_media(tag.tag_type, tag.timestamp_ms + offset_ms, tag.payload))
    return out


def new_playlist(*, low_latency: bool = True, extension: str = "m4s") -> MediaPlaylist:
    return MediaPlaylist(
        name="v0-0011aabb-",
        extension=extension,
        low_latency=low_latency,
        segment_target_s=1.0,
        part_target_s=0.2,
        window_segments=100,
        max_bytes=1 << 30,
    )


def collect(items: list[TrackConfig | Frame]) -> tuple[list[VariantTracks], list[Frame]]:
    """Run a collector; return the variants and every frame from the first held one on."""
    collector = TrackCollector()
    rest: list[Frame] = []
    for item in items:
        if collector.ready:
            if isinstance(item, Frame):
                rest.append(item)
        elif collector.add(item):
            rest.extend(collector.held)
    assert collector.ready
    return collector.variants(), rest


def run_fmp4(
    path: Path, *, variant: int = 0, part_target_ms: int = 200
) -> tuple[FMP4Segmenter, MediaPlaylist]:
    variants, frames = collect(units(path))
    playlist = new_playlist()
    segmenter = FMP4Segmenter(
        variants[variant],
        playlist,
        init_prefix="init",
        segment_target_ms=1000,
        part_target_ms=part_target_ms,
    )
    for frame in frames:
        segmenter.add(frame, T0 + frame.dts_ms / 1000)
    segmenter.finish()
    return segmenter, playlist


def write_fmp4(segmenter: FMP4Segmenter, playlist: MediaPlaylist, path: Path) -> Path:
    init = segmenter.inits["init0.mp4"]
    path.write_bytes(init + b"".join(s.data for s in playlist.segments))
    return path


def test_fmp4_segments_start_at_keyframes_and_parts_last_200_ms(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    segmenter, playlist = run_fmp4(clips["h264_aac"])
    segments = list(playlist.segments)
    assert len(segments) == 12 and all(s.complete for s in segments)
    assert [round(s.duration_s, 3) for s in segments[:-1]] == [1.0] * 11
    # The last one ends with the stream: its last audio sample may end after the video.
    assert segments[-1].duration_s == pytest.approx(1.0, abs=0.03)
    for segment in segments[:-1]:
        # Parts tile the video timeline: a part ends where the next video frame starts.
        assert [round(p.duration_s, 3) for p in segment.parts] == [0.2] * 5
    for segment in segments:
        assert [p.independent for p in segment.parts] == [True] + [False] * 4
        assert segment.data == b"".join(bytes(p.data) for p in segment.parts)
        assert segment.data[4:8] == b"moof"
    assert playlist.part_target_s == 0.2 and playlist.target_duration_s == 1
    assert segments[3].program_date_time_s == pytest.approx(T0 + 3.0)
    assert segmenter.codecs == ("avc1.42c00d", "mp4a.40.2")
    assert segmenter.resolution == (320, 240) and segmenter.frame_rate == 25.0
    assert playlist.ended
    m3u8.loads(playlist.render())
    file = write_fmp4(segmenter, playlist, tmp_path / "out.mp4")
    assert decode_errors(FFMPEG9, file) == ""
    streams, _ = ffprobe(file)
    counts = {s["codec_name"]: int(s["nb_read_packets"]) for s in streams}
    # Everything from the first keyframe on (an AAC frame sent before it is left out).
    assert counts == {"h264": 300, "aac": 517}


def test_each_segment_decodes_after_the_init_segment(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    segmenter, playlist = run_fmp4(clips["h264_aac"])
    init = segmenter.inits["init0.mp4"]
    file = tmp_path / "seg.mp4"
    file.write_bytes(init + playlist.segments[5].data)
    assert decode_errors(FFMPEG9, file) == ""
    streams, _ = ffprobe(file)
    assert {s["codec_name"]: int(s["nb_read_packets"]) for s in streams}["h264"] == 25


def test_24_fps_parts_are_208_ms_and_part_target_says_so(clips: dict[str, Path]) -> None:
    _, playlist = run_fmp4(clips["h264_aac_24fps"])
    durations = {round(p.duration_s, 3) for s in playlist.segments for p in s.parts[:-1]}
    # 5 frames of 41.7 ms (timestamps in whole ms): nearer 200 ms than 4 frames.
    assert durations == {0.208, 0.209}
    assert playlist.part_target_s == 0.209  # ceil to the millisecond
    assert all(p.duration_s <= playlist.part_target_s for s in playlist.segments for p in s.parts)


@pytest.mark.parametrize(
    ("clip", "codecs", "names"),
    [
        ("hevc_opus", ("hvc1.1.6.L", "opus"), {"hevc", "opus"}),
        ("av1_aac", ("av01.0.", "mp4a.40.2"), {"av1", "aac"}),
    ],
)
def test_hevc_opus_and_av1_aac(
    clips: dict[str, Path], tmp_path: Path, clip: str, codecs: tuple[str, str], names: set[str]
) -> None:
    segmenter, playlist = run_fmp4(clips[clip])
    assert [c.startswith(p) for c, p in zip(segmenter.codecs, codecs, strict=True)] == [True] * 2
    assert segmenter.resolution == (160, 90)
    assert playlist.complete_count == 3
    file = write_fmp4(segmenter, playlist, tmp_path / f"{clip}.mp4")
    streams, _ = ffprobe(file)
    assert {s["codec_name"] for s in streams} == names


@pytest.mark.parametrize(
    ("clip", "codecs", "names"),
    [
        ("vp9_flac", ("vp09.00.", "fLaC"), ["flac", "vp9"]),
        ("h264_mp3", ("avc1.", "mp4a.40.34"), ["h264", "mp3"]),
        ("h264_ac3", ("avc1.", "ac-3"), ["ac3", "h264"]),
        ("h264_eac3", ("avc1.", "ec-3"), ["eac3", "h264"]),
    ],
)
def test_more_codecs_in_fmp4(
    clips: dict[str, Path], tmp_path: Path, clip: str, codecs: tuple[str, str], names: list[str]
) -> None:
    segmenter, playlist = run_fmp4(clips[clip])
    assert [c.startswith(p) for c, p in zip(segmenter.codecs, codecs, strict=True)] == [True] * 2
    assert segmenter.resolution == (160, 90) and playlist.complete_count == 2
    file = write_fmp4(segmenter, playlist, tmp_path / f"{clip}.mp4")
    assert decode_errors(FFMPEG9, file) == ""
    streams, _ = ffprobe(file)
    assert sorted(s["codec_name"] for s in streams) == names


@pytest.mark.parametrize(
    ("clip", "names"),
    [("h264_mp3", ["h264", "mp3"]), ("h264_ac3", ["ac3", "h264"]), ("h264_eac3", ["eac3", "h264"])],
)
def test_more_codecs_in_ts(
    clips: dict[str, Path], tmp_path: Path, clip: str, names: list[str]
) -> None:
    variants, frames = collect(units(clips[clip]))
    playlist = new_playlist(low_latency=False, extension="ts")
    segmenter = TSSegmenter(variants[0], playlist, segment_target_ms=1000)
    for frame in frames:
        segmenter.add(frame, T0)
    segmenter.finish()
    file = tmp_path / f"{clip}.ts"
    file.write_bytes(b"".join(s.data for s in playlist.segments))
    assert decode_errors(FFMPEG9, file) == ""
    streams, _ = ffprobe(file)
    assert sorted(s["codec_name"] for s in streams) == names


def test_ts_segments_start_with_pat_pmt_and_decode(clips: dict[str, Path], tmp_path: Path) -> None:
    variants, frames = collect(units(clips["h264_aac"]))
    playlist = new_playlist(low_latency=False, extension="ts")
    segmenter = TSSegmenter(variants[0], playlist, segment_target_ms=1000)
    assert segmenter.carried and segmenter.codecs == ("avc1.42c00d", "mp4a.40.2")
    for frame in frames:
        segmenter.add(frame, T0 + frame.dts_ms / 1000)
    segmenter.finish()
    segments = list(playlist.segments)
    assert len(segments) == 12
    assert [round(s.duration_s, 3) for s in segments[:-1]] == [1.0] * 11
    for segment in segments:
        data = segment.data
        assert len(data) % 188 == 0 and data[0] == 0x47
        assert (data[1] & 0x1F, data[2]) == (0, 0)  # PAT first
        assert (data[189] & 0x1F) << 8 | data[190] == 0x1000  # then the PMT
    file = tmp_path / "out.ts"
    file.write_bytes(b"".join(s.data for s in segments))
    assert decode_errors(FFMPEG9, file) == ""
    single = tmp_path / "one.ts"
    single.write_bytes(segments[4].data)
    streams, _ = ffprobe(single)
    assert {s["codec_name"]: int(s["nb_read_packets"]) for s in streams}["h264"] == 25
    assert "#EXT-X-PART" not in playlist.render()


def test_ts_leaves_out_what_it_cannot_carry(clips: dict[str, Path]) -> None:
    variants, _ = collect(units(clips["av1_aac"]))
    assert not TSSegmenter(variants[0], new_playlist(), segment_target_ms=1000).carried
    variants, _ = collect(units(clips["hevc_opus"]))
    segmenter = TSSegmenter(variants[0], new_playlist(), segment_target_ms=1000)
    assert segmenter.carried and segmenter.tracks.audio is None  # HEVC only


def test_multitrack_gives_one_variant_per_video_track(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    variants, _ = collect(units(clips["multitrack"]))
    assert [(v.video.track_id if v.video else None) for v in variants] == [0, 1]
    assert all(v.audio is not None and v.audio.track_id == 0 for v in variants)
    sizes = []
    for index in range(2):
        segmenter, playlist = run_fmp4(clips["multitrack"], variant=index)
        sizes.append(segmenter.resolution)
        file = write_fmp4(segmenter, playlist, tmp_path / f"v{index}.mp4")
        assert decode_errors(FFMPEG9, file) == ""
        streams, _ = ffprobe(file)
        assert sorted(s["codec_name"] for s in streams) == ["aac", "h264"]
    assert sizes == [(320, 240), (160, 90)]


def test_a_new_video_configuration_starts_a_discontinuity(clips: dict[str, Path]) -> None:
    first = units(clips["h264_aac"])
    second = units(clips["h264_aac_24fps"], offset_ms=12_000)
    variants, frames = collect(first)
    playlist = new_playlist()
    segmenter = FMP4Segmenter(
        variants[0], playlist, init_prefix="init", segment_target_ms=1000, part_target_ms=200
    )
    for frame in frames:
        segmenter.add(frame, T0 + frame.dts_ms / 1000)
    new_video = next(u for u in second if isinstance(u, TrackConfig) and u.media == "video")
    assert config_changed(variants[0].video, new_video)  # type: ignore[arg-type]
    segmenter.update_track(new_video)
    for unit in second:
        if isinstance(unit, Frame):
            segmenter.add(unit, T0 + unit.dts_ms / 1000)
    segmenter.finish()
    assert list(segmenter.inits) == ["init0.mp4", "init1.mp4"]
    parsed = m3u8.loads(playlist.render())
    maps = [s.init_section.uri for s in parsed.segments]
    assert maps[:12] == ["init0.mp4"] * 12 and set(maps[12:]) == {"init1.mp4"}
    assert [s.discontinuity for s in parsed.segments].count(True) == 1
    assert parsed.segments[12].discontinuity


def test_collector_waits_for_audio_then_gives_up(clips: dict[str, Path]) -> None:
    video_only = [u for u in units(clips["h264_aac"]) if u.media is MediaType.VIDEO]
    collector = TrackCollector(wait_ms=500)
    ready_at = None
    for unit in video_only:
        if collector.add(unit):
            ready_at = unit.dts_ms
            break
    first_key = next(u.dts_ms for u in video_only if isinstance(u, Frame) and u.keyframe)
    assert ready_at is not None and 500 <= ready_at - first_key < 540  # 500 ms of media
    assert collector.variants() == [VariantTracks(video=collector.video[0], audio=None)]
    audio_only = [u for u in units(clips["h264_aac"]) if u.media is MediaType.AUDIO]
    variants, frames = collect(audio_only)
    assert variants[0].video is None and variants[0].audio is not None
    playlist = new_playlist()
    segmenter = FMP4Segmenter(
        variants[0], playlist, init_prefix="init", segment_target_ms=1000, part_target_ms=200
    )
    for frame in frames:
        segmenter.add(frame, T0)
    assert playlist.complete_count >= 10
    assert all(p.independent for s in playlist.segments for p in s.parts)
    assert segmenter.codecs == ("mp4a.40.2",) and segmenter.resolution is None


def test_collector_ignores_frames_before_configuration_and_empty_records() -> None:
    collector = TrackCollector()
    frame = Frame(
        media=MediaType.VIDEO,
        track_id=0,
        codec="av01",
        dts_ms=0,
        cts_ms=0,
        keyframe=True,
        data=b"\x12\x00",
    )
    assert not collector.add(frame) and not collector.held
    empty = TrackConfig(media=MediaType.VIDEO, track_id=0, codec="av01", record=b"")
    collector.add(empty)
    assert collector.video == {}
    # A configless audio codec configures its track from its first frame.
    mp3 = replace(frame, media=MediaType.AUDIO, codec=".mp3", keyframe=True, data=b"\xff\xfb")
    collector.add(mp3)
    assert collector.audio[0].codec == ".mp3" and collector.held == [mp3]


def test_config_changed_only_for_what_a_decoder_sees() -> None:
    def streaminfo(total_samples: int, md5: bytes) -> bytes:
        # RFC 9639 §8.2: block sizes, frame sizes, then 20-bit rate, 3-bit channels - 1,
        # 5-bit bits per sample - 1, 36-bit total samples; then the MD5.
        bits = (48000 << 44) | (1 << 41) | (15 << 36) | total_samples
        return (
            b"fLaC"
            + bytes([0x80, 0, 0, 34])
            + bytes.fromhex("10001000000000000000")[:10]
            + bits.to_bytes(8, "big")
            + md5
        )

    flac = streaminfo(0, bytes(16))
    flac_end = streaminfo(480_000, bytes(range(16)))  # totals and MD5 known at the end
    old = TrackConfig(media=MediaType.AUDIO, track_id=0, codec="fLaC", record=flac)
    assert not config_changed(old, replace(old, record=flac_end))
    assert not config_changed(old, replace(old, record=b""))
    assert config_changed(old, replace(old, codec="Opus"))
    video = TrackConfig(media=MediaType.VIDEO, track_id=0, codec="avc1", record=b"\x01\x64")
    assert config_changed(video, replace(video, record=b"\x01\x4d"))
    assert not config_changed(video, replace(video, record=b""))
