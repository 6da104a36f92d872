"""Tests for aiortmp.media.av1 (AV1CodecConfigurationRecord and sequence header)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.av1 import (
    OBU_SEQUENCE_HEADER,
    av1_level_name,
    av1_profile_name,
    iter_obus,
    parse_av1_codec_configuration_record,
    parse_av1_sequence_header,
)
from aiortmp.media.errors import CodecHeaderError

FIXTURES = Path(__file__).parent / "fixtures" / "codecs"


def _fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def _bits(text: str) -> bytes:
    digits = text.replace(" ", "")
    digits += "0" * (-len(digits) % 8)
    return int(digits, 2).to_bytes(len(digits) // 8, "big")


def _u(value: int, width: int) -> str:
    return format(value, f"0{width}b")


def _uvlc(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _color_config(profile: int, *, high_bitdepth: bool = False, twelve: bool = False) -> str:
    bits = "1" if high_bitdepth else "0"
    if profile == 2 and high_bitdepth:
        bits += "1" if twelve else "0"
    if profile != 1:
        bits += "0"  # mono_chrome
    bits += "0"  # color_description_present_flag
    bits += "0"  # color_range
    if profile == 2 and twelve:
        bits += "11"  # subsampling_x, subsampling_y
    if profile in (0, 2):
        bits += "00"  # chroma_sample_position when 4:2:0
    return bits + "0"  # separate_uv_delta_q


def _sequence_header(
    *,
    profile: int = 0,
    timing: str | None = None,
    decoder_model: bool = False,
    operating_points: list[tuple[int, int]] | None = None,
    width: int = 1920,
    height: int = 1080,
    color: str | None = None,
) -> bytes:
    """Build a sequence_header_obu() payload (AV1 §5.5.1)."""
    points = operating_points or [(8, 0)]
    bits = _u(profile, 3) + "0" + "0"  # seq_profile, still_picture, reduced header
    if timing is None:
        bits += "0"
    else:
        bits += "1" + timing
        bits += "1" if decoder_model else "0"
        if decoder_model:
            bits += _u(9, 5) + _u(1, 32) + _u(23, 5) + _u(4, 5)
    bits += "1"  # initial_display_delay_present_flag
    bits += _u(len(points) - 1, 5)
    for level, tier in points:
        bits += _u(0x101, 12) + _u(level, 5)
        if level > 7:
            bits += _u(tier, 1)
        if decoder_model:
            bits += "1" + _u(100, 10) + _u(200, 10) + "0"
        bits += "1" + _u(9, 4)
    bits += _u(15, 4) + _u(15, 4) + _u(width - 1, 16) + _u(height - 1, 16)
    bits += "1" + _u(5, 4) + _u(2, 3)  # frame_id_numbers_present_flag and lengths
    bits += "010"  # use_128x128_superblock, enable_filter_intra, enable_intra_edge
    bits += "1111" + "1" + "11"  # compound/warp/dual filter, order hint, jnt, ref mvs
    bits += "0" + "1" + "0"  # choose screen content 0, force 1; choose integer mv 0
    bits += "1"  # seq_force_integer_mv
    bits += _u(6, 3)  # order_hint_bits_minus_1
    bits += "011"  # superres, cdef, restoration
    bits += color if color is not None else _color_config(profile)
    bits += "0"  # film_grain_params_present
    return _bits(bits + "1")


def _record(config_obus: bytes, first: bytes = b"\x81\x08\x0c\x00") -> bytes:
    return first + config_obus


def _obu(obu_type: int, payload: bytes, *, extension: bool = False, sized: bool = True) -> bytes:
    header = (obu_type << 3) | (0x04 if extension else 0) | (0x02 if sized else 0)
    out = bytes([header]) + (b"\x28" if extension else b"")
    return out + (_leb128(len(payload)) if sized else b"") + payload


# name -> (profile, level, width, height, frame rate, bit depth)
FIXTURE_EXPECTATIONS = {
    "av1_svt_320x240_25": ("Main", "2.0", 320, 240, None, 8),
    "av1_svt10_640x360_30": ("Main", "2.1", 640, 360, None, 10),
    "av1_aom_1280x720_30": ("Main", "3.1", 1280, 720, None, 8),
    "av1_aom_1280x720_30_timing": ("Main", "3.1", 1280, 720, 30.0, 8),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_ffmpeg_records(name: str) -> None:
    profile, level, width, height, fps, depth = FIXTURE_EXPECTATIONS[name]
    record = parse_av1_codec_configuration_record(_fixture(name))
    assert record.version == 1
    assert av1_profile_name(record.seq_profile) == profile
    assert av1_level_name(record.seq_level_idx_0) == level
    assert record.seq_tier_0 == 0
    assert record.bit_depth == depth
    assert (record.monochrome, record.chroma_subsampling_x, record.chroma_subsampling_y) == (
        False,
        True,
        True,
    )
    header = record.sequence_header
    assert header is not None
    assert (header.seq_profile, header.seq_level_idx) == (
        record.seq_profile,
        record.seq_level_idx_0,
    )
    assert (header.max_frame_width, header.max_frame_height) == (width, height)
    assert header.frame_rate == fps
    # color_config() is the last thing parsed: a wrong bit position would show here.
    assert header.bit_depth == depth
    assert (header.subsampling_x, header.subsampling_y) == (True, True)


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_prefixes_raise_or_parse_the_same(name: str) -> None:
    data = _fixture(name)
    full = parse_av1_codec_configuration_record(data)
    for end in range(len(data)):
        try:
            prefix = parse_av1_codec_configuration_record(data[:end])
        except CodecHeaderError:
            continue
        # Only a record cut right after its 4 fixed bytes parses: no configOBUs.
        assert end == 4
        assert prefix.sequence_header is None
        assert prefix.seq_level_idx_0 == full.seq_level_idx_0


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_trailing_data_after_the_sequence_header_is_ignored(name: str) -> None:
    data = _fixture(name)
    full = parse_av1_codec_configuration_record(data)
    padded = parse_av1_codec_configuration_record(data + b"\xff\xff\xff")
    assert padded.sequence_header == full.sequence_header


def test_timing_info_fixture_fields() -> None:
    header = parse_av1_codec_configuration_record(
        _fixture("av1_aom_1280x720_30_timing")
    ).sequence_header
    assert header is not None
    assert (header.num_units_in_display_tick, header.time_scale_hz) == (1, 30)
    assert (header.equal_picture_interval, header.num_ticks_per_picture) == (True, 1)


def test_synthetic_sequence_header_with_timing_and_decoder_model() -> None:
    timing = _u(1001, 32) + _u(120000, 32) + "1" + _uvlc(1)
    payload = _sequence_header(
        timing=timing, decoder_model=True, operating_points=[(13, 1), (8, 0), (4, 0)]
    )
    header = parse_av1_sequence_header(payload)
    assert header.operating_points == 3
    assert (header.seq_level_idx, header.seq_tier) == (13, 1)
    assert (header.max_frame_width, header.max_frame_height) == (1920, 1080)
    assert header.num_ticks_per_picture == 2
    assert header.frame_rate == pytest.approx(59.94, abs=0.01)
    assert header.bit_depth == 8


def test_variable_picture_interval_has_no_frame_rate() -> None:
    header = parse_av1_sequence_header(_sequence_header(timing=_u(1, 32) + _u(90000, 32) + "0"))
    assert header.equal_picture_interval is False
    assert header.num_ticks_per_picture is None
    assert header.frame_rate is None


@pytest.mark.parametrize(
    ("profile", "high", "twelve", "depth", "subsampling"),
    [
        (0, True, False, 10, (True, True)),
        (1, False, False, 8, (False, False)),
        (2, True, True, 12, (True, True)),
        (2, True, False, 10, (True, False)),
    ],
)
def test_color_config(
    profile: int, high: bool, twelve: bool, depth: int, subsampling: tuple[bool, bool]
) -> None:
    color = _color_config(profile, high_bitdepth=high, twelve=twelve)
    header = parse_av1_sequence_header(_sequence_header(profile=profile, color=color))
    assert header.bit_depth == depth
    assert (header.subsampling_x, header.subsampling_y) == subsampling


def test_color_config_monochrome_and_srgb() -> None:
    mono = parse_av1_sequence_header(_sequence_header(color="0" + "1" + "0" + "0"))
    assert mono.mono_chrome is True
    # CP_BT_709, TC_SRGB, MC_IDENTITY: 4:4:4 without color_range.
    srgb_color = "0" + "0" + "1" + _u(1, 8) + _u(13, 8) + _u(0, 8) + "0"
    srgb = parse_av1_sequence_header(_sequence_header(profile=1, color=srgb_color))
    assert (srgb.subsampling_x, srgb.subsampling_y) == (False, False)


def test_reduced_still_picture_header() -> None:
    bits = _u(0, 3) + "1" + "1" + _u(4, 5)  # profile, still, reduced, level 3.0
    bits += _u(9, 4) + _u(9, 4) + _u(639, 10) + _u(479, 10)
    bits += "010" + "011" + "0" + "0" + "0" + "0" + "00" + "0" + "0"
    header = parse_av1_sequence_header(_bits(bits))
    assert header.reduced_still_picture_header is True
    assert header.still_picture is True
    assert header.seq_level_idx == 4
    assert (header.max_frame_width, header.max_frame_height) == (640, 480)
    assert header.frame_rate is None


def test_reserved_profile_is_rejected() -> None:
    with pytest.raises(CodecHeaderError, match="seq_profile 3"):
        parse_av1_sequence_header(b"\x60\x00\x00\x00")


def test_truncated_sequence_header() -> None:
    payload = _sequence_header()
    for end in range(len(payload) - 1):
        with pytest.raises(CodecHeaderError):
            parse_av1_sequence_header(payload[:end])


def test_record_fields() -> None:
    # Profile 2, level 5.3 (idx 15), High tier, 12-bit, 4:2:2, presentation delay 3.
    record = parse_av1_codec_configuration_record(bytes([0x81, 0x4F, 0xE9, 0x12]))
    assert record.seq_profile == 2
    assert record.seq_level_idx_0 == 15
    assert record.seq_tier_0 == 1
    assert (record.high_bitdepth, record.twelve_bit, record.bit_depth) == (True, True, 12)
    assert (record.chroma_subsampling_x, record.chroma_subsampling_y) == (True, False)
    assert record.chroma_sample_position == 1
    assert record.initial_presentation_delay == 3
    assert record.config_obus == b""
    assert record.sequence_header is None


def test_record_with_extension_header_and_unsized_obus() -> None:
    metadata = _obu(5, b"\x01\x02\x03", extension=True)
    sequence = _obu(OBU_SEQUENCE_HEADER, _sequence_header(width=3840, height=2160), sized=False)
    record = parse_av1_codec_configuration_record(_record(metadata + sequence))
    assert record.sequence_header is not None
    assert record.sequence_header.max_frame_width == 3840
    assert list(iter_obus(metadata + sequence)) == [
        (5, b"\x01\x02\x03"),
        (OBU_SEQUENCE_HEADER, _sequence_header(width=3840, height=2160)),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x81\x00\x0c", "truncated"),
        (b"\x01\x00\x0c\x00", "marker"),
        (b"\x82\x00\x0c\x00", "version 2"),
        (_record(b"\x8a\x00"), "forbidden"),
        (_record(b"\x0e"), "extension"),
        (_record(b"\x0a"), "leb128"),
        (_record(b"\x0a\x05\x00"), "overruns"),
        (_record(b"\x0a" + b"\x80" * 8 + b"\x00"), "longer than 8"),
        (_record(b"\x0a\xff\xff\xff\xff\x7f"), "exceeds"),
    ],
)
def test_malformed_records(data: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_av1_codec_configuration_record(data)


def test_leb128_with_padding_bytes() -> None:
    # Non-minimal leb128 encodings are legal ("0x85 0x80 0x00" is 5).
    obus = b"\x0a\x85\x80\x00" + b"\x00" * 5
    assert list(iter_obus(obus)) == [(1, b"\x00" * 5)]


@pytest.mark.parametrize(
    ("index", "name"), [(0, "2.0"), (1, "2.1"), (5, "3.1"), (8, "4.0"), (13, "5.1"), (23, "7.3")]
)
def test_level_names(index: int, name: str) -> None:
    assert av1_level_name(index) == name


def test_level_31_means_no_constraint() -> None:
    assert av1_level_name(31) is None


@pytest.mark.parametrize(
    ("profile", "name"), [(0, "Main"), (1, "High"), (2, "Professional"), (5, "Unknown (5)")]
)
def test_profile_names(profile: int, name: str) -> None:
    assert av1_profile_name(profile) == name


@given(st.binary(max_size=64))
def test_random_records_raise_only_codec_header_error(data: bytes) -> None:
    try:
        parse_av1_codec_configuration_record(b"\x81\x00\x0c\x00" + data)
    except CodecHeaderError:
        pass


@given(st.binary(max_size=64))
def test_random_sequence_headers_raise_only_codec_header_error(data: bytes) -> None:
    try:
        parse_av1_sequence_header(data)
    except CodecHeaderError:
        pass


@given(
    st.sampled_from(sorted(FIXTURE_EXPECTATIONS)),
    st.lists(st.tuples(st.integers(0, 100), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flipped_fixtures_raise_only_codec_header_error(
    name: str, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(_fixture(name))
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    try:
        parse_av1_codec_configuration_record(bytes(data))
    except CodecHeaderError:
        pass
