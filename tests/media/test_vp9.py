"""Tests for aiortmp.media.vp9 (VPCodecConfigurationRecord and key frame sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.vp9 import (
    VPCodecConfigurationRecord,
    parse_vp8_frame_size,
    parse_vp9_frame_header,
    parse_vp9_frame_size,
    parse_vp_codec_configuration_record,
    vp_level_name,
)

FIXTURES = Path(__file__).parent / "fixtures" / "codecs"


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def _bits(text: str) -> bytes:
    digits = text.replace(" ", "")
    digits += "0" * (-len(digits) % 8)
    return int(digits, 2).to_bytes(len(digits) // 8, "big")


def _u(value: int, width: int) -> str:
    return format(value, f"0{width}b")


_SYNC = _u(0x498342, 24)

# name -> (profile, level, bit depth, chroma subsampling, width, height)
FIXTURE_EXPECTATIONS = {
    "vp9_profile0_320x240_25": (0, 20, 8, 1, 320, 240),
    "vp9_profile1_352x288_30": (1, 20, 8, 3, 352, 288),
    "vp9_profile2_1280x720_30": (2, 31, 10, 1, 1280, 720),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_ffmpeg_records_and_keyframes(name: str) -> None:
    profile, level, depth, chroma, width, height = FIXTURE_EXPECTATIONS[name]
    record = parse_vp_codec_configuration_record(_fixture(name))
    assert record == VPCodecConfigurationRecord(
        profile=profile,
        level=level,
        bit_depth=depth,
        chroma_subsampling=chroma,
        video_full_range=False,
        colour_primaries=2,
        transfer_characteristics=2,
        matrix_coefficients=2,
        codec_initialization_data=b"",
    )
    keyframe = _fixture(f"{name}.keyframe")
    header = parse_vp9_frame_header(keyframe)
    assert header.key_frame is True
    assert header.profile == profile
    assert header.bit_depth == depth
    assert (header.render_width, header.render_height) == (width, height)
    assert parse_vp9_frame_size(keyframe) == (width, height)


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_bare_record_without_full_box_header(name: str) -> None:
    data = _fixture(name)
    assert data[:4] == b"\x01\x00\x00\x00"
    assert parse_vp_codec_configuration_record(data[4:]) == parse_vp_codec_configuration_record(
        data
    )


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_prefixes_raise_and_trailing_data_is_ignored(name: str) -> None:
    data = _fixture(name)
    for end in range(len(data)):
        try:
            parse_vp_codec_configuration_record(data[:end])
        except CodecHeaderError:
            continue
        # Without the FullBox header the bare 8-byte record is complete.
        pytest.fail(f"prefix of {end} bytes parsed")
    assert parse_vp_codec_configuration_record(data + b"\xff" * 3) == (
        parse_vp_codec_configuration_record(data)
    )


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_keyframe_prefixes_raise_or_parse_the_same(name: str) -> None:
    keyframe = _fixture(f"{name}.keyframe")
    full = parse_vp9_frame_header(keyframe)
    for end in range(len(keyframe)):
        try:
            assert parse_vp9_frame_header(keyframe[:end]) == full
        except CodecHeaderError:
            assert end < 12


def test_keyframe_prefixes_below_the_size_fields_raise() -> None:
    keyframe = _fixture("vp9_profile0_320x240_25.keyframe")
    for end in range(8):
        with pytest.raises(CodecHeaderError):
            parse_vp9_frame_size(keyframe[:end])


def test_record_with_initialization_data_and_full_range() -> None:
    record = parse_vp_codec_configuration_record(
        b"\x01\x00\x00\x00" + bytes([3, 62, 0xC7, 1, 16, 9]) + b"\x00\x02\xaa\xbb"
    )
    assert (record.profile, record.level, record.bit_depth) == (3, 62, 12)
    assert (record.chroma_subsampling, record.video_full_range) == (3, True)
    assert (record.colour_primaries, record.transfer_characteristics) == (1, 16)
    assert record.matrix_coefficients == 9
    assert record.codec_initialization_data == b"\xaa\xbb"


def test_version_0_record() -> None:
    # profile 0, level 10, bitDepth 8 / colorSpace 0, chroma 1 / transfer 1, range.
    record = parse_vp_codec_configuration_record(
        b"\x00\x00\x00\x00" + bytes([0, 10, 0x80, 0x11, 0x80]) + b"\x00\x00"
    )
    assert (record.level, record.bit_depth, record.chroma_subsampling) == (10, 8, 1)
    assert record.video_full_range is True
    assert record.transfer_characteristics == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x01\x00\x00\x00\x00\x14\x82", "truncated"),
        (bytes([0, 20, 0x92, 2, 2, 2, 0, 0]), "bitDepth 9"),
        (bytes([0, 20, 0x8E, 2, 2, 2, 0, 0]), "chromaSubsampling 7"),
        (bytes([0, 20, 0x82, 2, 2, 2, 0, 1]), "overruns"),
    ],
)
def test_malformed_records(data: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_vp_codec_configuration_record(data)


def _keyframe(profile: int, color: str, size: str) -> bytes:
    profile_bits = _u(profile & 1, 1) + _u(profile >> 1, 1) + ("0" if profile == 3 else "")
    # frame_marker, profile, show_existing_frame 0, KEY_FRAME, show, error resilient
    return _bits("10" + profile_bits + "0" + "0" + "1" + "0" + _SYNC + color + size)


def test_synthetic_keyframes_with_render_size() -> None:
    size = _u(1919, 16) + _u(1079, 16) + "1" + _u(1439, 16) + _u(1079, 16)
    header = parse_vp9_frame_header(_keyframe(0, _u(1, 3) + "0", size))
    assert (header.width, header.height) == (1920, 1080)
    assert (header.render_width, header.render_height) == (1440, 1080)
    # Profile 3: 12-bit, 4:4:4 subsampling bits, reserved zero.
    header = parse_vp9_frame_header(_keyframe(3, "1" + _u(2, 3) + "1" + "000", size))
    assert (header.profile, header.bit_depth, header.color_space) == (3, 12, 2)
    # Profile 1 RGB has a reserved bit and no color_range.
    header = parse_vp9_frame_header(_keyframe(1, _u(7, 3) + "0", _u(99, 16) + _u(49, 16) + "0"))
    assert (header.color_space, header.width, header.height) == (7, 100, 50)


def test_rgb_in_profile_0_is_rejected() -> None:
    with pytest.raises(CodecHeaderError, match="RGB"):
        parse_vp9_frame_header(_keyframe(0, _u(7, 3), _u(0, 33)))


def test_inter_and_show_existing_frames_have_no_size() -> None:
    inter = _bits("10" + "00" + "0" + "1" + "1" + "0" + "00" + "0" * 16)
    header = parse_vp9_frame_header(inter)
    assert (header.key_frame, header.intra_only, header.width) == (False, False, None)
    assert parse_vp9_frame_size(inter) is None
    existing = _bits("10" + "00" + "1" + "011")
    assert parse_vp9_frame_header(existing).show_existing_frame is True
    assert parse_vp9_frame_size(existing) is None


def test_intra_only_frames_carry_a_size() -> None:
    # Hidden (show_frame 0) non-key frame with intra_only 1, profile 0: no color
    # config, refresh_frame_flags, then the frame size.
    frame = _bits(
        "10"
        + "00"
        + "0"
        + "1"
        + "0"
        + "0"
        + "1"
        + "00"
        + _SYNC
        + _u(0xFF, 8)
        + _u(639, 16)
        + _u(359, 16)
        + "0"
    )
    header = parse_vp9_frame_header(frame)
    assert (header.intra_only, header.bit_depth) == (True, 8)
    assert parse_vp9_frame_size(frame) == (640, 360)
    # Profile 2 intra-only frames have a color config.
    frame = _bits(
        "10"
        + "01"
        + "0"
        + "1"
        + "0"
        + "1"
        + "1"
        + _SYNC
        + "0"
        + _u(1, 3)
        + "0"
        + _u(0x01, 8)
        + _u(99, 16)
        + _u(99, 16)
        + "0"
    )
    assert parse_vp9_frame_header(frame).bit_depth == 10
    assert parse_vp9_frame_size(frame) == (100, 100)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x00", "frame_marker"),
        (_bits("10" + "11" + "1"), "reserved_zero"),
        (_bits("10" + "00" + "0" + "0" + "10" + _u(0x123456, 24)), "frame_sync_code"),
        (_bits("10" + "00" + "0" + "1" + "0" + "0" + "1" + "00" + _u(1, 24)), "frame_sync_code"),
    ],
)
def test_malformed_vp9_frames(frame: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_vp9_frame_header(frame)


def test_vp8_keyframe_fixture() -> None:
    keyframe = _fixture("vp8_352x288_30.keyframe")
    assert parse_vp8_frame_size(keyframe) == (352, 288)
    for end in range(10):
        with pytest.raises(CodecHeaderError):
            parse_vp8_frame_size(keyframe[:end])


def test_vp8_scaling_bits_are_dropped_and_interframes_have_no_size() -> None:
    frame = b"\x50\x02\x00\x9d\x01\x2a" + (0xC000 | 640).to_bytes(2, "little")
    frame += (0x4000 | 480).to_bytes(2, "little")
    assert parse_vp8_frame_size(frame) == (640, 480)
    assert parse_vp8_frame_size(b"\x51\x02\x00") is None


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x50\x02\x00\x9d\x01\x2b\x00\x01\x00\x01", "start code"),
        (b"\x50\x02\x00\x9d\x01\x2a\x00\x00\x00\x01", "zero"),
        (b"\x50", "truncated"),
    ],
)
def test_malformed_vp8_frames(frame: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_vp8_frame_size(frame)


@pytest.mark.parametrize(("level", "name"), [(10, "1.0"), (11, "1.1"), (21, "2.1"), (62, "6.2")])
def test_level_names(level: int, name: str) -> None:
    assert vp_level_name(level) == name


def test_level_0_is_undefined() -> None:
    assert vp_level_name(0) is None


@given(st.binary(max_size=24))
def test_random_records_raise_only_codec_header_error(data: bytes) -> None:
    try:
        parse_vp_codec_configuration_record(data)
    except CodecHeaderError:
        pass


@given(st.binary(max_size=24))
def test_random_frames_raise_only_codec_header_error(data: bytes) -> None:
    for parse in (parse_vp9_frame_header, parse_vp8_frame_size):
        try:
            parse(data)
        except CodecHeaderError:
            pass


@given(
    st.sampled_from(sorted(FIXTURE_EXPECTATIONS)),
    st.lists(st.tuples(st.integers(0, 16), st.integers(0, 7)), min_size=1, max_size=3),
)
def test_bit_flipped_keyframes_raise_only_codec_header_error(
    name: str, flips: list[tuple[int, int]]
) -> None:
    frame = bytearray(_fixture(f"{name}.keyframe"))
    for position, bit in flips:
        frame[position] ^= 1 << bit
    try:
        parse_vp9_frame_header(bytes(frame))
    except CodecHeaderError:
        pass
