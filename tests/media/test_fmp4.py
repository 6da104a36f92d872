"""The fragmented MP4 muxer (src/aiortmp/media/fmp4.py).

Real clips: FFmpeg 9 writes FLV, FLVReader + parse_media turn it into frames, FMP4Muxer
writes an LL-HLS-style stream (parts of ~200 ms, segments cut before keyframes), and
Debian's ffprobe/ffmpeg 5.1 and FFmpeg 9 read it back. Box-level tests walk the bytes.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.fmp4 import FMP4Fragment, FMP4Muxer, styp
from aiortmp.media.samples import Frame, MediaType, TrackConfig
from aiortmp.protocol.errors import LocalProtocolError
from tests.media.fmp4_helpers import (
    CLIPS,
    FFMPEG9,
    HEIGHT,
    SECONDS,
    WIDTH,
    Box,
    boxes,
    child,
    clips,
    debian,
    decode_errors,
    ffmpeg9_streams,
    ffprobe,
    ffprobe_streams,
    load_flv,
    path,
)

VIDEO, AUDIO = MediaType.VIDEO, MediaType.AUDIO
SYNC, NON_SYNC = 0x02000000, 0x01010000


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return clips(tmp_path_factory)


# --------------------------------------------------------------- box-level reader


@dataclass
class Traf:
    track_id: int
    tfhd_flags: int
    default_flags: int | None
    decode_time: int
    trun_version: int
    trun_flags: int
    data_offset: int
    samples: list[tuple[int, int, int | None, int | None]]  # duration, size, flags, cto


def read_fragment(data: bytes) -> tuple[int, list[Traf], Box, Box]:
    """Parse one moof + mdat; check the sizes; return (sequence, trafs, moof, mdat)."""
    top = list(boxes(data))
    assert [box.kind for box in top] == ["moof", "mdat"]
    moof, mdat = top
    mfhd = child(data, moof, "mfhd")
    assert mfhd.size == 16
    (sequence,) = struct.unpack_from(">I", data, mfhd.payload + 4)
    trafs = []
    for traf in boxes(data, moof.payload, moof.end):
        if traf.kind != "traf":
            continue
        assert [box.kind for box in boxes(data, traf.payload, traf.end)] == [
            "tfhd",
            "tfdt",
            "trun",
        ]
        tfhd = child(data, traf, "tfhd")
        (tfhd_word, track_id) = struct.unpack_from(">II", data, tfhd.payload)
        tfhd_flags = tfhd_word & 0xFFFFFF
        default_flags = None
        if tfhd_flags & 0x20:
            (default_flags,) = struct.unpack_from(">I", data, tfhd.payload + 8)
        tfdt = child(data, traf, "tfdt")
        assert data[tfdt.payload] == 1 and tfdt.size == 20  # version 1, 64-bit
        (decode_time,) = struct.unpack_from(">Q", data, tfdt.payload + 4)
        trun = child(data, traf, "trun")
        word, count, data_offset = struct.unpack_from(">IIi", data, trun.payload)
        version, flags = word >> 24, word & 0xFFFFFF
        position = trun.payload + 12
        samples = []
        for _ in range(count):
            duration, size = struct.unpack_from(">II", data, position)
            position += 8
            sample_flags = cto = None
            if flags & 0x400:
                (sample_flags,) = struct.unpack_from(">I", data, position)
                position += 4
            if flags & 0x800:
                (cto,) = struct.unpack_from(">i", data, position)
                position += 4
            samples.append((duration, size, sample_flags, cto))
        assert position == trun.end
        trafs.append(
            Traf(
                track_id,
                tfhd_flags,
                default_flags,
                decode_time,
                version,
                flags,
                data_offset,
                samples,
            )
        )
    # The sample data of the trafs tiles the mdat payload, in traf order.
    expected_offset = mdat.payload - moof.start
    for traf in trafs:
        assert traf.data_offset == expected_offset
        expected_offset += sum(sample[1] for sample in traf.samples)
    assert moof.start + expected_offset == mdat.end
    return sequence, trafs, moof, mdat


# ------------------------------------------------------------------ the drivers


@dataclass
class Muxed:
    init: bytes
    fragments: list[FMP4Fragment]
    cut_after: set[int]  # indexes of fragments that end a segment
    muxer: FMP4Muxer

    def write(self, file: Path) -> Path:
        file.write_bytes(self.init + b"".join(fragment.data for fragment in self.fragments))
        return file


def mux_like_hls(
    configs: list[TrackConfig], frames: list[Frame], part_ms: int = 200, segment_ms: int = 1000
) -> Muxed:
    """LL-HLS: parts of ``part_ms``; a new segment at the first keyframe ``segment_ms`` on."""
    muxer = FMP4Muxer(configs)
    init = b""
    fragments: list[FMP4Fragment] = []
    cut_after: set[int] = set()
    segment_start: int | None = None
    lead = next((c.track_id for c in configs if c.media is VIDEO), None)
    for frame in frames:
        muxer.add(frame)
        if not init:
            if not muxer.ready:
                continue
            init = muxer.init_segment()
        keyframe = frame.media is VIDEO and frame.track_id == lead and frame.keyframe
        if keyframe and segment_start is None:
            segment_start = frame.dts_ms
        elif keyframe and segment_start is not None and frame.dts_ms - segment_start >= segment_ms:
            fragment = muxer.fragment(end_ms=frame.dts_ms)
            if fragment is not None:
                fragments.append(fragment)
                cut_after.add(len(fragments) - 1)
            segment_start = frame.dts_ms
        elif muxer.pending_duration_ms >= part_ms:
            fragment = muxer.fragment()
            assert fragment is not None
            fragments.append(fragment)
    last = muxer.fragment(final=True)
    assert last is not None
    fragments.append(last)
    return Muxed(init, fragments, cut_after, muxer)


def expected_starts_ms(frames: list[Frame]) -> dict[tuple[MediaType, int], float]:
    """Each track's first presentation time: the muxer maps dts_ms to decode time 1:1."""
    starts: dict[tuple[MediaType, int], float] = {}
    for frame in frames:
        key = (frame.media, frame.track_id)
        if key not in starts and frame.media is VIDEO and not frame.keyframe:
            continue  # a video track starts at its first keyframe
        starts[key] = min(starts.get(key, frame.dts_ms + frame.cts_ms), frame.dts_ms + frame.cts_ms)
    return starts


def frame_counts(frames: list[Frame]) -> dict[tuple[MediaType, int], int]:
    counts: dict[tuple[MediaType, int], int] = {}
    for frame in frames:
        key = (frame.media, frame.track_id)
        counts[key] = counts.get(key, 0) + 1
    return counts


_FFPROBE_NAMES = {"h264": "h264", "hevc": "hevc", "av1": "av1", "vp9": "vp9", "vvc": "vvc"}


def check_with_debian(file: Path, configs: list[TrackConfig], frames: list[Frame]) -> None:
    """Debian ffprobe: stream order = track order; packets, start times, duration."""
    streams, packets = ffprobe(file)
    assert len(streams) == len(configs)
    counts = frame_counts(frames)
    starts = expected_starts_ms(frames)
    for index, config in enumerate(configs):
        key = (config.media, config.track_id)
        stream = streams[index]
        assert int(str(stream["nb_read_packets"])) == counts[key], stream
        times = sorted(
            (float(p["pts_time"]), float(p.get("duration_time", "nan")))
            for p in packets
            if p["stream_index"] == index
        )
        # Debian's ffprobe gives some packets (Opus, AV1, VP9, FLAC) no duration: take the
        # gap to the next one.
        gaps = [b[0] - a[0] for a, b in zip(times, times[1:], strict=False)]
        times = [
            (pts, duration if duration == duration else (gaps + gaps[-1:])[i])
            for i, (pts, duration) in enumerate(times)
        ]
        first = min(pts for pts, _ in times)
        end = max(pts + duration for pts, duration in times)
        # A/V sync: each track starts at its own first timestamp (1 ms: ms rounding).
        assert first * 1000 == pytest.approx(starts[key], abs=1.0), (config.codec, first)
        assert end - first == pytest.approx(SECONDS, abs=0.1), (config.codec, end - first)
    assert decode_errors(debian("ffmpeg"), file) == ""


# ------------------------------------------------------------------- real clips


@pytest.mark.parametrize("name", [name for name in CLIPS if name != "vvc_aac"])
def test_clip_plays_in_debian_ffmpeg_and_ffmpeg9(
    name: str, clip_paths: dict[str, Path], tmp_path: Path
) -> None:
    clip = CLIPS[name]
    configs, frames = load_flv(clip_paths[name])
    assert [c.media for c in configs] == [VIDEO, AUDIO] or [c.media for c in configs] == [
        AUDIO,
        VIDEO,
    ]
    muxed = mux_like_hls(configs, frames)
    file = muxed.write(tmp_path / f"{name}.mp4")

    streams = ffprobe_streams(file)
    by_type = {str(stream["codec_type"]): stream for stream in streams}
    assert by_type["video"]["codec_name"] == _FFPROBE_NAMES[clip.video]
    assert (by_type["video"]["width"], by_type["video"]["height"]) == (WIDTH, HEIGHT)
    assert by_type["audio"]["codec_name"] == clip.audio
    assert int(str(by_type["audio"]["sample_rate"])) == clip.sample_rate_hz
    assert by_type["audio"]["channels"] == clip.channels
    check_with_debian(file, configs, frames)

    assert decode_errors(FFMPEG9, file) == ""
    counts = frame_counts(frames)
    ffmpeg9 = ffmpeg9_streams(file)
    for index, config in enumerate(configs):
        stream = ffmpeg9[index]
        if config.media is VIDEO:
            assert stream.codec_id == _FFPROBE_NAMES[clip.video]
            assert stream.dimensions == f"{WIDTH}x{HEIGHT}"
        else:
            assert stream.codec_id == clip.audio
            assert stream.sample_rate == str(clip.sample_rate_hz)
        packets = stream.packets or []
        assert len(packets) == counts[(config.media, config.track_id)]
        first = min(pts for pts, _ in packets)
        end = max(pts + duration for pts, duration in packets)
        assert (end - first) / stream.timebase == pytest.approx(SECONDS, abs=0.1)


def test_vvc_plays_in_ffmpeg9(clip_paths: dict[str, Path], tmp_path: Path) -> None:
    # Debian's FFmpeg 5.1 has no VVC decoder (it names the stream "unknown"), so only
    # FFmpeg 9 decodes this one.
    configs, frames = load_flv(clip_paths["vvc_aac"])
    muxed = mux_like_hls(configs, frames)
    assert muxed.muxer.codecs[0].startswith("vvc1.1.L")
    file = muxed.write(tmp_path / "vvc.mp4")
    assert decode_errors(FFMPEG9, file) == ""
    streams = ffmpeg9_streams(file)
    counts = frame_counts(frames)
    video = next(i for i, c in enumerate(configs) if c.media is VIDEO)
    assert streams[video].codec_id == "vvc"
    assert streams[video].dimensions == f"{WIDTH}x{HEIGHT}"
    packets = streams[video].packets or []
    assert len(packets) == counts[(VIDEO, 0)]
    timebase = streams[video].timebase
    assert timebase == 90000
    first = min(pts for pts, _ in packets)
    end = max(pts + duration for pts, duration in packets)
    assert (end - first) / timebase == pytest.approx(SECONDS, abs=0.1)
    # FFmpeg shifts the timeline of this stream (its first keyframe has a 1120 ms
    # composition offset), so compare presentation times relative to the first.
    source = sorted(f.dts_ms + f.cts_ms for f in frames if f.media is VIDEO)
    assert sorted(pts - first for pts, _ in packets) == [(t - source[0]) * 90 for t in source]


def test_multitrack_is_one_trak_per_track(clip_paths: dict[str, Path], tmp_path: Path) -> None:
    configs, frames = load_flv(clip_paths["multitrack"])
    assert sorted((c.media, c.track_id, c.codec) for c in configs) == [
        (AUDIO, 0, "mp4a"),
        (AUDIO, 1, "Opus"),
        (VIDEO, 0, "avc1"),
        (VIDEO, 1, "avc1"),
    ]
    muxed = mux_like_hls(configs, frames)
    file = muxed.write(tmp_path / "multitrack.mp4")
    streams = ffprobe_streams(file)
    sizes = [(s.get("width"), s.get("height")) for s in streams if s["codec_type"] == "video"]
    video_order = [c.track_id for c in configs if c.media is VIDEO]
    expected_sizes = {0: (WIDTH, HEIGHT), 1: (96, 54)}
    assert sizes == [expected_sizes[track_id] for track_id in video_order]
    check_with_debian(file, configs, frames)
    # Track ids 1..n in the order given.
    moov = path(muxed.init, "moov")
    track_ids = []
    for trak in boxes(muxed.init, moov.payload, moov.end):
        if trak.kind == "trak":
            tkhd = child(muxed.init, trak, "tkhd")
            track_ids.append(struct.unpack_from(">I", muxed.init, tkhd.payload + 20)[0])
    assert track_ids == [1, 2, 3, 4]
    # Fragments are not CMAF with several tracks: no cmfc brand.
    assert b"cmfc" not in muxed.init[: path(muxed.init, "ftyp").end]


# -------------------------------------------------------------- box-level checks


def test_init_segment_boxes(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    video_only = [c for c in configs if c.media is VIDEO]
    muxer = FMP4Muxer(video_only)
    init = muxer.init_segment()
    assert [box.kind for box in boxes(init)] == ["ftyp", "moov"]
    ftyp = path(init, "ftyp")
    assert init[ftyp.payload : ftyp.payload + 4] == b"iso6"
    brands = init[ftyp.payload + 8 : ftyp.end]
    assert [brands[i : i + 4] for i in range(0, len(brands), 4)] == [b"iso6", b"cmfc", b"mp41"]
    moov = path(init, "moov")
    assert [b.kind for b in boxes(init, moov.payload, moov.end)] == ["mvhd", "trak", "mvex"]
    mvhd = path(init, "moov", "mvhd")
    assert init[mvhd.payload] == 1
    assert struct.unpack_from(">I", init, mvhd.payload + 20)[0] == 1000  # timescale
    mdhd = path(init, "moov", "trak", "mdia", "mdhd")
    assert struct.unpack_from(">I", init, mdhd.payload + 20)[0] == 90000
    assert init[path(init, "moov", "trak", "mdia", "hdlr").payload + 8 :][:4] == b"vide"
    stsd = path(init, "moov", "trak", "mdia", "minf", "stbl", "stsd")
    entry = child(init, stsd, "avc1", skip=8)
    width, height = struct.unpack_from(">HH", init, entry.payload + 24)
    assert (width, height) == (WIDTH, HEIGHT)
    avcc = child(init, entry, "avcC", skip=78)
    assert init[avcc.payload : avcc.end] == video_only[0].record
    # mehd is version 1 (64-bit) so that a recorder can patch it in place.
    mehd = path(init, "moov", "mvex", "mehd")
    assert mehd.size == 20 and init[mehd.payload] == 1
    trex = path(init, "moov", "mvex", "trex")
    assert struct.unpack_from(">5I", init, trex.payload + 4) == (1, 1, 0, 0, 0)


def test_duration_patch_keeps_the_init_segment_size(clip_paths: dict[str, Path]) -> None:
    configs, _ = load_flv(clip_paths["h264_aac"])
    muxer = FMP4Muxer(configs)
    live = muxer.init_segment()
    closed = muxer.init_segment(duration_ms=7_261_042)
    assert len(live) == len(closed)
    mehd = path(closed, "moov", "mvex", "mehd")
    assert struct.unpack_from(">Q", closed, mehd.payload + 4)[0] == 7_261_042
    assert struct.unpack_from(">Q", live, mehd.payload + 4)[0] == 0
    # Only the 8 duration bytes differ.
    differing = [i for i in range(len(live)) if live[i] != closed[i]]
    assert differing and min(differing) >= mehd.payload + 4 and max(differing) < mehd.end


def test_fragments_tile_the_timeline(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    muxed = mux_like_hls(configs, frames)
    track_of = {index + 1: config for index, config in enumerate(configs)}
    next_decode: dict[int, int] = {}
    video_samples: list[tuple[int, int | None, int | None]] = []
    total_samples = 0
    for number, fragment in enumerate(muxed.fragments, start=1):
        sequence, trafs, _, _ = read_fragment(fragment.data)
        assert sequence == fragment.sequence_number == number
        assert fragment.sample_count == sum(len(t.samples) for t in trafs)
        total_samples += fragment.sample_count
        for traf in trafs:
            config = track_of[traf.track_id]
            assert traf.tfhd_flags & 0x020000  # default-base-is-moof
            assert traf.trun_version == 1
            # tfdt continuity: each fragment starts where the last one of its track ended.
            if traf.track_id in next_decode:
                assert traf.decode_time == next_decode[traf.track_id]
            next_decode[traf.track_id] = traf.decode_time + sum(s[0] for s in traf.samples)
            assert all(s[0] > 0 for s in traf.samples)
            if config.media is VIDEO:
                assert traf.trun_flags == 0xF01
                video_samples.extend((s[1], s[2], s[3]) for s in traf.samples)
            else:
                # Audio samples are all sync samples: flags come from tfhd, no cto.
                assert traf.trun_flags == 0x301
                assert traf.default_flags == SYNC
                # AAC: 1024 samples a frame, as the ms timestamps never drift a frame.
                assert {s[0] for s in traf.samples} == {1024}
    assert total_samples == len(frames)
    source = [f for f in frames if f.media is VIDEO]
    assert [size for size, _, _ in video_samples] == [len(f.data) for f in source]
    assert [flags for _, flags, _ in video_samples] == [
        SYNC if f.keyframe else NON_SYNC for f in source
    ]
    assert [cto for _, _, cto in video_samples] == [f.cts_ms * 90 for f in source]
    # The clip has B-frames, so some composition offsets differ.
    assert len({cto for _, _, cto in video_samples}) > 1


def test_av1_samples_drop_the_temporal_delimiter(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["av1_aac"])
    video = [f for f in frames if f.media is VIDEO]
    assert all(f.data[:2] == b"\x12\x00" for f in video)  # FFmpeg starts each with one
    muxed = mux_like_hls(configs, frames)
    video_id = next(i + 1 for i, c in enumerate(configs) if c.media is VIDEO)
    sizes = [
        sample[1]
        for fragment in muxed.fragments
        for traf in read_fragment(fragment.data)[1]
        if traf.track_id == video_id
        for sample in traf.samples
    ]
    assert sizes == [len(f.data) - 2 for f in video]


def test_segments_start_with_independent_parts(clip_paths: dict[str, Path]) -> None:
    configs, frames = load_flv(clip_paths["hevc_opus"])
    muxed = mux_like_hls(configs, frames)
    assert muxed.cut_after, "the 2 s clip has a keyframe at 1 s: one segment cut"
    assert muxed.fragments[0].independent
    video_id = next(i + 1 for i, c in enumerate(configs) if c.media is VIDEO)
    for index, fragment in enumerate(muxed.fragments):
        _, trafs, _, _ = read_fragment(fragment.data)
        video = [t for t in trafs if t.track_id == video_id]
        first_sync = bool(video) and video[0].samples[0][2] == SYNC
        assert fragment.independent == first_sync
        if index - 1 in muxed.cut_after:
            assert fragment.independent
            # The cut was before the keyframe: no sample of any track before it.
            assert fragment.start_ms == pytest.approx(muxed.fragments[index - 1].end_ms, abs=25)
        if index not in muxed.cut_after and index != len(muxed.fragments) - 1:
            # Parts are cut once 200 ms are pending: 200 ms and less than a frame more.
            assert 200 <= fragment.duration_ms < 200 + 40 + 1
    for before, after in zip(muxed.fragments, muxed.fragments[1:], strict=False):
        assert after.start_ms >= before.start_ms


def test_killed_recording_loses_at_most_the_last_fragment(
    clip_paths: dict[str, Path], tmp_path: Path
) -> None:
    configs, frames = load_flv(clip_paths["h264_aac"])
    muxed = mux_like_hls(configs, frames, part_ms=1000, segment_ms=10_000)
    assert len(muxed.fragments) >= 2
    file = muxed.write(tmp_path / "killed.mp4")
    data = file.read_bytes()
    last = muxed.fragments[-1]
    # kill -9 in the middle of writing the last fragment.
    file.write_bytes(data[: len(data) - len(last.data) + 20])
    kept = {}
    for fragment in muxed.fragments[:-1]:
        for traf in read_fragment(fragment.data)[1]:
            kept[traf.track_id] = kept.get(traf.track_id, 0) + len(traf.samples)
    streams = ffprobe_streams(file)
    assert [int(str(s["nb_read_packets"])) for s in streams] == [
        kept[index + 1] for index in range(len(configs))
    ]


# ----------------------------------------------------------- synthetic timelines

AAC_LC_44100_STEREO = bytes.fromhex("1210")
OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + struct.pack("<HIhB", 312, 48000, 0, 0)
# Constrained Baseline 320x240 (tests/media/fixtures/codecs/h264_baseline_320x240_25.bin).
AVC_CONFIG_HEX = "0142c00dffe100186742c00dd90141fb011000000300100000030320f142a48001000568cb83cb20"


def aac_track(track_id: int = 0) -> TrackConfig:
    return TrackConfig(media=AUDIO, track_id=track_id, codec="mp4a", record=AAC_LC_44100_STEREO)


def audio_frame(dts_ms: int, data: bytes = b"\x21\x00", codec: str = "mp4a") -> Frame:
    return Frame(
        media=AUDIO, track_id=0, codec=codec, dts_ms=dts_ms, cts_ms=0, keyframe=True, data=data
    )


def video_frame(dts_ms: int, keyframe: bool, cts_ms: int = 0, track_id: int = 0) -> Frame:
    return Frame(
        media=VIDEO,
        track_id=track_id,
        codec="avc1",
        dts_ms=dts_ms,
        cts_ms=cts_ms,
        keyframe=keyframe,
        data=b"\x00\x00\x00\x02\x65\x88" if keyframe else b"\x00\x00\x00\x02\x41\x9a",
    )


def avc_track(track_id: int = 0) -> TrackConfig:
    return TrackConfig(
        media=VIDEO, track_id=track_id, codec="avc1", record=bytes.fromhex(AVC_CONFIG_HEX)
    )


def all_samples(muxer: FMP4Muxer, final: bool = True) -> list[Traf]:
    fragment = muxer.fragment(final=final)
    assert fragment is not None
    return read_fragment(fragment.data)[1]


def test_audio_keeps_the_sample_clock_under_rounded_ms_timestamps() -> None:
    muxer = FMP4Muxer([aac_track()])
    for index in range(100):
        muxer.add(audio_frame(1000 + round(index * 1024 * 1000 / 44100)))
    (traf,) = all_samples(muxer)
    assert traf.decode_time == 44100
    assert [s[0] for s in traf.samples] == [1024] * 100


def test_audio_resyncs_to_the_timestamps_after_a_gap() -> None:
    muxer = FMP4Muxer([aac_track()])
    for index in range(10):
        muxer.add(audio_frame(round(index * 1024 * 1000 / 44100)))
    first = muxer.fragment()
    assert first is not None
    # 500 ms of audio missing (a publisher hiccup): the next frame is placed at its
    # timestamp, and the frame before the gap lasts until then.
    muxer.add(audio_frame(500 + round(10 * 1024 * 1000 / 44100)))
    muxer.add(audio_frame(500 + round(11 * 1024 * 1000 / 44100)))
    (traf,) = all_samples(muxer)
    assert traf.decode_time == 9 * 1024
    gap_end = (500 + round(10 * 1024 * 1000 / 44100)) * 44100 // 1000
    assert traf.samples[0][0] == gap_end - 9 * 1024
    assert [s[0] for s in traf.samples[1:]] == [1024, 1024]
    # A drift under one frame is rounding: the sample clock is kept.
    muxer.add(audio_frame(2000))
    muxer.add(audio_frame(2000 + 23 + 10))
    muxer.add(audio_frame(2000 + 46 + 10))
    (traf,) = all_samples(muxer)
    assert [s[0] for s in traf.samples] == [1024, 1024, 1024]


def test_video_durations_and_negative_composition_offsets() -> None:
    muxer = FMP4Muxer([avc_track()])
    muxer.add(video_frame(0, True, cts_ms=0))
    muxer.add(video_frame(40, False, cts_ms=-40))
    muxer.add(video_frame(80, False, cts_ms=80))
    muxer.add(video_frame(80, False))  # a repeated dts still gets a positive duration
    muxer.add(video_frame(160, False))
    (traf,) = all_samples(muxer, final=False)
    assert [s[0] for s in traf.samples] == [3600, 3600, 1, 7199]
    assert [s[3] for s in traf.samples] == [0, -3600, 7200, 0]
    assert [s[2] for s in traf.samples] == [SYNC, NON_SYNC, NON_SYNC, NON_SYNC]
    # The held last sample is flushed with the previous duration.
    (traf,) = all_samples(muxer)
    assert traf.decode_time == 160 * 90
    assert [s[0] for s in traf.samples] == [7199]


def test_fragment_end_ms_cuts_every_track_at_a_time() -> None:
    muxer = FMP4Muxer([avc_track(), aac_track()])
    for index in range(25):
        muxer.add(video_frame(index * 40, index % 10 == 0))
    for index in range(44):
        muxer.add(audio_frame(round(index * 1024 * 1000 / 44100)))
    fragment = muxer.fragment(end_ms=400)
    assert fragment is not None
    _, trafs, _, _ = read_fragment(fragment.data)
    video, audio = trafs
    assert len(video.samples) == 10
    assert len(audio.samples) == 18  # decode times 0 .. 395 ms
    # end_ms is where the last sample of any track ends: the audio frame at 395 ms.
    assert fragment.start_ms == 0
    assert fragment.end_ms == pytest.approx(18 * 1024 * 1000 / 44100)
    assert fragment.independent
    following = muxer.fragment()
    assert following is not None and following.independent  # starts at the keyframe at 400
    assert muxer.fragment(end_ms=0) is None


def test_opus_durations_come_from_the_toc() -> None:
    config = TrackConfig(media=AUDIO, track_id=0, codec="Opus", record=OPUS_HEAD)
    muxer = FMP4Muxer([config])
    # (TOC bytes, samples at 48 kHz): RFC 6716 §3.1 configurations and frame count codes.
    packets = [
        (bytes([0xFC]), 960),  # CELT 20 ms, one frame
        (bytes([(3 << 3) | 0]), 2880),  # SILK 60 ms
        (bytes([(16 << 3) | 1]), 240),  # CELT 2.5 ms, two frames
        (bytes([(13 << 3) | 2]), 1920),  # hybrid 20 ms, two frames
        (bytes([(19 << 3) | 3, 0x05]), 4800),  # CELT 20 ms, code 3 with 5 frames
        (bytes([(9 << 3) | 0]), 960),  # SILK 20 ms
    ]
    time_ms = 0.0
    for toc, samples in packets:
        muxer.add(audio_frame(round(time_ms), toc + b"\x00" * 8, codec="Opus"))
        time_ms += samples / 48
    (traf,) = all_samples(muxer)
    assert [s[0] for s in traf.samples] == [samples for _, samples in packets]


def test_ac3_eac3_mp3_flac_frames_in_one_tag(clip_paths: dict[str, Path]) -> None:
    def first_frames(name: str, codec: str) -> tuple[TrackConfig, list[Frame]]:
        configs, frames = load_flv(clip_paths[name])
        config = next(c for c in configs if c.codec == codec)
        return config, [f for f in frames if f.codec == codec][:4]

    # Two syncframes (or MPEG audio frames) per tag last twice as long.
    for name, codec, per_frame in [
        ("h264_ac3", "ac-3", 1536),
        ("h264_eac3", "ec-3", 1536),
        ("h264_mp3", ".mp3", 1152),
    ]:
        config, frames = first_frames(name, codec)
        muxer = FMP4Muxer([config])
        assert not muxer.ready
        with pytest.raises(LocalProtocolError):
            muxer.init_segment()
        doubled = replace(frames[0], data=frames[0].data + frames[1].data)
        muxer.add(doubled)
        assert muxer.ready
        muxer.add(
            replace(frames[2], dts_ms=frames[0].dts_ms + 2 * (frames[1].dts_ms - frames[0].dts_ms))
        )
        (traf,) = all_samples(muxer)
        assert [s[0] for s in traf.samples] == [2 * per_frame, per_frame], codec
    # E-AC-3 with numblkscod 1: two blocks of 256 samples.
    config, frames = first_frames("h264_eac3", "ec-3")
    short = bytearray(frames[0].data)
    short[4] = (short[4] & 0xCF) | (1 << 4)
    muxer = FMP4Muxer([config])
    muxer.add(replace(frames[0], data=bytes(short)))
    (traf,) = all_samples(muxer)
    assert traf.samples[0][0] == 512
    # FLAC: FFmpeg's STREAMINFO fixes the block size (min = max = 1024): every frame.
    config, frames = first_frames("h264_flac", "fLaC")
    muxer = FMP4Muxer([config])
    for frame in frames:
        muxer.add(frame)
    (traf,) = all_samples(muxer)
    assert [s[0] for s in traf.samples] == [1024] * len(frames)


def test_flac_block_size_codes() -> None:
    streaminfo = bytes.fromhex("1000100000000000000002ee000000000000") + bytes(16)
    # Block sizes 16..4096 ("variable"), 48 kHz... STREAMINFO min != max.
    streaminfo = (
        struct.pack(">HH", 16, 4096)
        + bytes(6)
        + ((48000 << 12) | (1 << 9) | (15 << 4)).to_bytes(4, "big")
        + bytes(20)
    )
    config = TrackConfig(media=AUDIO, track_id=0, codec="fLaC", record=streaminfo)
    muxer = FMP4Muxer([config])
    headers = [
        (bytes([0xFF, 0xF8, 0x19, 0x08, 0x00, 0x00]), 192),  # code 1
        (bytes([0xFF, 0xF8, 0x69, 0x08, 0x01, 0x63]), 100),  # code 6: 8-bit size - 1
        (bytes([0xFF, 0xF8, 0x79, 0x08, 0xC2, 0x80, 0x01, 0x00]), 257),  # code 7, 2-byte number
        (bytes([0xFF, 0xF8, 0xC9, 0x08, 0x03, 0x00]), 4096),  # code 12: 256 << 4
    ]
    time_ms = 0.0
    for header, samples in headers:
        muxer.add(audio_frame(round(time_ms), header + bytes(4), codec="fLaC"))
        time_ms += samples / 48
    (traf,) = all_samples(muxer)
    assert [s[0] for s in traf.samples] == [samples for _, samples in headers]


def test_frames_that_cannot_be_placed_are_ignored() -> None:
    muxer = FMP4Muxer([avc_track(1), aac_track(0)], origin_ms=1000)
    muxer.add(video_frame(1000, True, track_id=0))  # unknown track
    muxer.add(replace(audio_frame(1000), codec="Opus"))  # not the track's codec
    muxer.add(audio_frame(999))  # before the origin
    muxer.add(video_frame(1000, False, track_id=1))  # before the first keyframe
    assert muxer.fragment(final=True) is None
    muxer.add(video_frame(1040, True, track_id=1))
    muxer.add(audio_frame(1000))
    trafs = all_samples(muxer)
    assert [(t.track_id, t.decode_time, len(t.samples)) for t in trafs] == [
        (1, 40 * 90, 1),
        (2, 0, 1),
    ]


def test_a_track_goes_on_after_a_final_flush() -> None:
    muxer = FMP4Muxer([aac_track()])
    muxer.add(audio_frame(0))
    (traf,) = all_samples(muxer)
    assert traf.samples[0][0] == 1024
    muxer.add(audio_frame(10))  # overlaps what was written: moved after it
    muxer.add(audio_frame(50))
    (traf,) = all_samples(muxer)
    assert traf.decode_time == 1024
    assert [s[0] for s in traf.samples] == [1024, 1024]


def test_api_errors() -> None:
    with pytest.raises(LocalProtocolError):
        FMP4Muxer([])
    with pytest.raises(LocalProtocolError):
        FMP4Muxer([aac_track(), aac_track()])
    with pytest.raises(LocalProtocolError):
        FMP4Muxer([TrackConfig(media=AUDIO, track_id=0, codec="alaw", record=b"")])
    assert styp() == b"\x00\x00\x00\x1cstypmsdh\x00\x00\x00\x00msdhmsixcmfs"
    assert styp(single_track=False) == b"\x00\x00\x00\x18stypmsdh\x00\x00\x00\x00msdhmsix"


def test_malformed_first_ac3_frame_raises_and_the_next_one_is_used(
    clip_paths: dict[str, Path],
) -> None:
    configs, frames = load_flv(clip_paths["h264_ac3"])
    config = next(c for c in configs if c.codec == "ac-3")
    frame = next(f for f in frames if f.codec == "ac-3")
    muxer = FMP4Muxer([config])
    with pytest.raises(CodecHeaderError):
        muxer.add(replace(frame, data=b"\x0b\x77\x00"))
    assert not muxer.ready
    muxer.add(frame)
    assert muxer.ready and muxer.codecs == ["ac-3"]


def test_malformed_records_raise_codec_header_error_only(clip_paths: dict[str, Path]) -> None:
    records = []
    for name in ["h264_aac", "hevc_opus", "av1_aac", "vp9_opus", "h264_flac", "vvc_aac"]:
        configs, _ = load_flv(clip_paths[name])
        records.extend(configs)
    rng = random.Random(6381)
    for config in records:
        FMP4Muxer([config])  # the whole record
        FMP4Muxer([replace(config, record=config.record + b"\x00\x01\x02")])  # trailing data
        candidates = [config.record[:length] for length in range(len(config.record))]
        for _ in range(50):
            mutated = bytearray(config.record)
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            candidates.append(bytes(mutated))
        for candidate in candidates:
            try:
                FMP4Muxer([replace(config, record=candidate)])
            except CodecHeaderError:
                pass
