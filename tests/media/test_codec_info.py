"""Tests for aiortmp.media.codec_info, against what FFmpeg reports for the fixtures.

The fixtures and ``ffprobe.json`` come from ``fixtures/codecs/make_fixtures.py``:
FFmpeg 9 encodes each clip into FLV, the record is cut out of the sequence start tag,
and ffprobe describes the same stream.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.codec_info import (
    AudioInfo,
    VideoInfo,
    audio_info_from_config,
    audio_info_from_flv_sound_flags,
    video_info_from_config,
    video_info_from_keyframe,
)
from aiortmp.media.errors import CodecHeaderError

FIXTURES = Path(__file__).parent / "fixtures" / "codecs"
MANIFEST: dict[str, Any] = json.loads((FIXTURES / "ffprobe.json").read_text())
VIDEO = sorted(name for name, entry in MANIFEST.items() if entry["kind"] in ("video", "vp8"))
AUDIO = sorted(name for name, entry in MANIFEST.items() if entry["kind"].startswith("audio"))
RECORDS = sorted(name for name, entry in MANIFEST.items() if "file" in entry)

# Frame rates signalled in the bitstream (SPS VUI, AV1 timing_info). ffprobe's
# r_frame_rate also reflects container timestamps, so it cannot say which are.
SIGNALLED_FRAME_RATES = {
    "h264_baseline_320x240_25": 25.0,
    "h264_main_320x240_25": 25.0,
    "h264_high_1280x720_30": 30.0,
    "h264_high10_1920x1080_2997_cqm": 30000 / 1001,
    "h264_high422_720x576_25i": 25.0,
    "h264_high444_322x242_50_cqm": 50.0,
    "hevc_main_320x240_25": 25.0,
    "hevc_main10_1280x720_30": 30.0,
    "hevc_main_426x240_24": 24.0,
    "hevc_main444_1920x1080_60_sublayers": 60.0,
    "av1_aom_1280x720_30_timing": 30.0,
}
# FFmpeg names every HEVC range extensions profile "Rext"; we name the Table A.2
# profile. FFmpeg does not report VP8/VP9 levels.
PROFILE_OVERRIDES = {"hevc_main444_1920x1080_60_sublayers": "Main 4:4:4"}
VP_LEVELS = {
    "vp9_profile0_320x240_25": "2.0",
    "vp9_profile1_352x288_30": "2.0",
    "vp9_profile2_1280x720_30": "3.1",
    "vp8_352x288_30": None,
}
FFPROBE_AUDIO_CODECS = {
    "aac": "mp4a",
    "opus": "Opus",
    "flac": "fLaC",
    "ac3": "ac-3",
    "eac3": "ec-3",
    "mp3": ".mp3",
    "pcm_alaw": "alaw",
    "pcm_mulaw": "ulaw",
    "nellymoser": "nellymoser",
    "pcm_s16le": "lpcm",
    "adpcm_swf": "adpcm",
}


def _record(name: str) -> bytes:
    entry = MANIFEST[name]
    return (FIXTURES / entry["file"]).read_bytes() if "file" in entry else b""


def _expected_level(codec: str, level: int) -> str:
    if codec == "h264":
        return f"{level // 10}.{level % 10}"
    if codec == "hevc":
        return f"{level // 30}.{level % 30 // 3}"
    return f"{2 + (level >> 2)}.{level & 3}"  # av1 seq_level_idx


def _video_info(name: str) -> VideoInfo:
    entry = MANIFEST[name]
    if entry["fourcc"] == "vp08":
        # E-RTMP sends a VPCodecConfigurationRecord for VP8 too; FFmpeg's FLV muxer
        # does not support VP8, so the fixture has only the key frame.
        record = b"\x01\x00\x00\x00\x00\x00\x82\x02\x02\x02\x00\x00"
    else:
        record = _record(name)
    info = video_info_from_config(entry["fourcc"], record)
    if "keyframe" in entry:
        info = video_info_from_keyframe(info, (FIXTURES / entry["keyframe"]).read_bytes())
    return info


def test_manifest_covers_every_codec() -> None:
    fourccs = {entry["fourcc"] for entry in MANIFEST.values()}
    assert {"avc1", "hvc1", "av01", "vp09", "vp08"} <= fourccs
    assert {"mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3", "alaw", "ulaw"} <= fourccs
    assert {"nellymoser", "lpcm", "adpcm"} <= fourccs


@pytest.mark.parametrize("name", VIDEO)
def test_video_matches_ffprobe(name: str) -> None:
    probe = MANIFEST[name]["ffprobe"]
    info = _video_info(name)
    assert info.codec == MANIFEST[name]["fourcc"]
    assert (info.width, info.height) == (probe["width"], probe["height"])
    profile = probe["profile"]
    if info.codec == "vp08":
        profile = f"Profile {profile}"
    assert info.profile == PROFILE_OVERRIDES.get(name, profile)
    if name in VP_LEVELS:
        assert info.level == VP_LEVELS[name]
    else:
        assert info.level == _expected_level(probe["codec_name"], probe["level"])
    expected_rate = SIGNALLED_FRAME_RATES.get(name)
    if expected_rate is None:
        assert info.frame_rate is None
    else:
        assert info.frame_rate == pytest.approx(expected_rate)
        num, den = (int(part) for part in probe["r_frame_rate"].split("/"))
        assert info.frame_rate == pytest.approx(num / den, rel=0.002)


@pytest.mark.parametrize("name", AUDIO)
def test_audio_matches_ffprobe(name: str) -> None:
    entry = MANIFEST[name]
    probe = entry["ffprobe"]
    info = audio_info_from_config(entry["fourcc"], _record(name))
    assert info.codec == FFPROBE_AUDIO_CODECS[probe["codec_name"]]
    assert info.sample_rate == int(probe["sample_rate"])
    assert info.channels == probe["channels"]
    assert info.profile == probe.get("profile", info.profile)
    if info.codec == "fLaC":
        assert info.sample_size_bits == int(probe["bits_per_raw_sample"])
    elif info.codec in ("lpcm", "alaw", "ulaw"):
        assert info.sample_size_bits == probe["bits_per_sample"]
    else:
        assert info.sample_size_bits is None


def test_audio_profiles() -> None:
    assert audio_info_from_config("mp4a", _record("aac_lc_48000_2")).profile == "LC"
    assert audio_info_from_config(".mp3", _record("mp3_22050_2")).profile == "MPEG-2 Layer III"
    assert audio_info_from_config("Opus", _record("opus_48000_6")).profile is None


def _parse(name: str, data: bytes) -> VideoInfo | AudioInfo:
    fourcc = MANIFEST[name]["fourcc"]
    if MANIFEST[name]["kind"] == "video":
        return video_info_from_config(fourcc, data)
    return audio_info_from_config(fourcc, data)


@pytest.mark.parametrize("name", RECORDS)
def test_whole_then_byte_by_byte_prefixes_then_trailing_data(name: str) -> None:
    data = _record(name)
    full = _parse(name, data)
    with pytest.raises(CodecHeaderError):
        _parse(name, b"")
    for end in range(1, len(data)):
        try:
            prefix = _parse(name, data[:end])
        except CodecHeaderError:
            continue
        if MANIFEST[name]["fourcc"] == "av01" and end == 4:
            # configOBUs may be empty: the fixed 4 bytes alone are a valid record.
            assert isinstance(full, VideoInfo)
            assert prefix == dataclasses.replace(full, width=None, height=None, frame_rate=None)
            continue
        # A prefix may stop inside optional trailing fields, but then it must
        # describe the stream exactly as the whole record does.
        assert prefix == full, end
    assert _parse(name, data + b"\x00" * 8) == full


def test_opus_comment_header_has_no_channel_count() -> None:
    info = audio_info_from_config("Opus", b"OpusTags\x05\x00\x00\x00aiort\x00\x00\x00\x00")
    assert info == AudioInfo(
        codec="Opus", profile=None, sample_rate=48000, channels=None, sample_size_bits=None
    )


def test_ac3_fourcc_follows_the_bitstream() -> None:
    assert audio_info_from_config("ac-3", _record("eac3_48000_2")).codec == "ec-3"
    assert audio_info_from_config("ec-3", _record("ac3_44100_2")).codec == "ac-3"


def test_legacy_flags_codecs() -> None:
    speex = audio_info_from_config("speex", b"\xb2")
    assert speex == AudioInfo(
        codec="speex", profile=None, sample_rate=16000, channels=1, sample_size_bits=None
    )
    assert audio_info_from_config("lpcm", b"\x0c").sample_size_bits == 8
    with pytest.raises(CodecHeaderError, match="missing"):
        audio_info_from_config("alaw", b"")
    with pytest.raises(CodecHeaderError):
        audio_info_from_config("alaw", b"\x90")


def test_audio_info_from_flv_sound_flags() -> None:
    # AAC's flags are fixed at 44 kHz stereo and say nothing about the stream.
    assert audio_info_from_flv_sound_flags(0xAF) == AudioInfo(
        codec="mp4a", profile=None, sample_rate=None, channels=None, sample_size_bits=None
    )
    assert audio_info_from_flv_sound_flags(0x2F) == AudioInfo(
        codec=".mp3", profile=None, sample_rate=44100, channels=2, sample_size_bits=None
    )
    assert audio_info_from_flv_sound_flags(0xF2).codec == "device-specific"
    assert audio_info_from_flv_sound_flags(0xC2).codec == "flv-12"


def test_str_enum_fourccs_become_plain_strings() -> None:
    class FourCC(enum.StrEnum):
        HEVC = "hvc1"
        OPUS = "Opus"

    video = video_info_from_config(FourCC.HEVC, _record("hevc_main_320x240_25"))
    audio = audio_info_from_config(FourCC.OPUS, _record("opus_48000_1"))
    assert type(video.codec) is str and video.codec == "hvc1"
    assert type(audio.codec) is str and audio.codec == "Opus"


def test_unknown_fourccs_give_only_the_codec() -> None:
    assert video_info_from_config("vvc1", b"\x00") == VideoInfo(
        codec="vvc1", profile=None, level=None, width=None, height=None, frame_rate=None
    )
    assert audio_info_from_config("vorb", b"") == AudioInfo(
        codec="vorb", profile=None, sample_rate=None, channels=None, sample_size_bits=None
    )


def test_avc_record_without_sps_uses_the_record_fields() -> None:
    info = video_info_from_config("avc1", b"\x01\x64\x00\x28\xff\xe0\x00")
    assert info == VideoInfo(
        codec="avc1", profile="High", level="4.0", width=None, height=None, frame_rate=None
    )


def test_hevc_record_without_sps_and_average_frame_rate() -> None:
    header = bytearray.fromhex("01016000000090000000000000f000fcfdf8f8000007") + b"\x00"
    header[12] = 93
    header[19:21] = (50 * 256).to_bytes(2, "big")
    info = video_info_from_config("hev1", bytes(header))
    assert info == VideoInfo(
        codec="hev1", profile="Main", level="3.1", width=None, height=None, frame_rate=50.0
    )


def test_av1_record_without_config_obus() -> None:
    info = video_info_from_config("av01", b"\x81\x0d\x0c\x00")
    assert info == VideoInfo(
        codec="av01", profile="Main", level="5.1", width=None, height=None, frame_rate=None
    )


def test_keyframe_helper_leaves_other_frames_and_codecs_alone() -> None:
    vp9 = video_info_from_config("vp09", _record("vp9_profile0_320x240_25"))
    assert (vp9.width, vp9.height) == (None, None)
    inter_frame = b"\x86\x00\x00\x00"  # frame_marker 2, profile 0, non-key frame
    assert video_info_from_keyframe(vp9, inter_frame) == vp9
    avc = video_info_from_config("avc1", _record("h264_main_320x240_25"))
    assert video_info_from_keyframe(avc, b"garbage") == avc
    vp8 = video_info_from_config("vp08", b"\x01\x00\x00\x00\x00\x0a\x82\x02\x02\x02\x00\x00")
    assert video_info_from_keyframe(vp8, b"\x51\x00\x00") == vp8
    with pytest.raises(CodecHeaderError):
        video_info_from_keyframe(vp9, b"\x00")


VIDEO_FOURCCS = ["avc1", "hvc1", "av01", "vp09", "vp08"]
AUDIO_FOURCCS = ["mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3", "alaw", "nellymoser", "lpcm"]


@given(st.sampled_from(VIDEO_FOURCCS), st.binary(max_size=96))
def test_random_video_records_raise_only_codec_header_error(fourcc: str, data: bytes) -> None:
    try:
        info = video_info_from_config(fourcc, data)
    except CodecHeaderError:
        return
    assert info.codec == fourcc


@given(st.sampled_from(AUDIO_FOURCCS), st.binary(max_size=48))
def test_random_audio_records_raise_only_codec_header_error(fourcc: str, data: bytes) -> None:
    try:
        audio_info_from_config(fourcc, data)
    except CodecHeaderError:
        pass


@given(
    st.sampled_from(RECORDS),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 7)), min_size=1, max_size=6),
    st.integers(0, 4000),
)
def test_mutated_fixtures_raise_only_codec_header_error(
    name: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_record(name))
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    try:
        _parse(name, bytes(data[: max(1, cut % (len(data) + 1))]))
    except CodecHeaderError:
        pass


@given(st.sampled_from([name for name in VIDEO if "keyframe" in MANIFEST[name]]), st.binary())
def test_random_keyframes_raise_only_codec_header_error(name: str, frame: bytes) -> None:
    info = dataclasses.replace(_video_info(name), width=None, height=None)
    try:
        video_info_from_keyframe(info, frame)
    except CodecHeaderError:
        pass
