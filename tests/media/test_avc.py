"""Tests for aiortmp.media.avc (AVCDecoderConfigurationRecord and H.264 SPS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.avc import (
    AVCSequenceParameterSet,
    avc_level_name,
    avc_profile_name,
    parse_avc_decoder_configuration_record,
    parse_avc_sps,
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


def _ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def _se(value: int) -> str:
    return _ue(2 * value - 1 if value > 0 else -2 * value)


def _escape(raw: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for byte in raw:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(
    *,
    profile_idc: int = 77,
    constraint_flags: int = 0,
    level_idc: int = 30,
    high: str = "",
    poc: str = _ue(0) + _ue(0),
    width_mbs: int = 20,
    height_map_units: int = 15,
    frame_mbs_only: bool = True,
    crop: tuple[int, int, int, int] | None = None,
    vui: str | None = None,
) -> bytes:
    """Build an SPS NAL unit (H.264 §7.3.2.1.1) from its fields."""
    bits = _u(profile_idc, 8) + _u(constraint_flags, 8) + _u(level_idc, 8) + _ue(0)
    bits += high
    bits += _ue(0)  # log2_max_frame_num_minus4
    bits += poc  # pic_order_cnt_type and its fields
    bits += _ue(1) + "0"  # max_num_ref_frames, gaps_in_frame_num_value_allowed_flag
    bits += _ue(width_mbs - 1) + _ue(height_map_units - 1)
    bits += "1" if frame_mbs_only else "01"  # frame_mbs_only_flag, mb_adaptive_frame_field
    bits += "1"  # direct_8x8_inference_flag
    if crop is None:
        bits += "0"
    else:
        bits += "1" + "".join(_ue(offset) for offset in crop)
    if vui is None:
        bits += "0"
    else:
        bits += "1" + vui
    bits += "1"  # rbsp_stop_one_bit
    return b"\x67" + _escape(_bits(bits))


def _timing_vui(num_units_in_tick: int, time_scale: int, aspect: str = "0") -> str:
    # aspect_ratio_info, overscan, video_signal_type, chroma_loc, then timing_info.
    return aspect + "000" + "1" + _u(num_units_in_tick, 32) + _u(time_scale, 32) + "1"


# name -> (profile, level, width, height, frame rate, chroma_format_idc, bit depth)
FIXTURE_EXPECTATIONS = {
    "h264_baseline_320x240_25": ("Constrained Baseline", "1.3", 320, 240, 25.0, 1, 8),
    "h264_main_320x240_25": ("Main", "1.3", 320, 240, 25.0, 1, 8),
    "h264_high_1280x720_30": ("High", "3.1", 1280, 720, 30.0, 1, 8),
    "h264_high10_1920x1080_2997_cqm": ("High 10", "4.0", 1920, 1080, 30000 / 1001, 1, 10),
    "h264_high422_720x576_25i": ("High 4:2:2", "3.0", 720, 576, 25.0, 2, 8),
    "h264_high444_322x242_50_cqm": ("High 4:4:4 Predictive", "2.1", 322, 242, 50.0, 3, 8),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_ffmpeg_records(name: str) -> None:
    profile, level, width, height, fps, chroma, depth = FIXTURE_EXPECTATIONS[name]
    record = parse_avc_decoder_configuration_record(_fixture(name))
    assert record.configuration_version == 1
    assert record.nal_length_size_bytes == 4
    assert len(record.sps) == 1
    assert len(record.pps) == 1
    sps = parse_avc_sps(record.sps[0])
    assert sps.profile_idc == record.profile_idc
    assert sps.level_idc == record.level_idc
    assert avc_profile_name(sps.profile_idc, sps.constraint_flags) == profile
    assert avc_level_name(sps.level_idc, sps.profile_idc, sps.constraint_flags) == level
    assert (sps.width, sps.height) == (width, height)
    assert sps.frame_rate == pytest.approx(fps)
    assert sps.chroma_format_idc == chroma
    assert sps.bit_depth_luma == sps.bit_depth_chroma == depth
    assert (sps.sar_width, sps.sar_height) == (1, 1)


def test_interlaced_fixture_is_field_coded() -> None:
    sps = parse_avc_sps(
        parse_avc_decoder_configuration_record(_fixture("h264_high422_720x576_25i")).sps[0]
    )
    assert sps.frame_mbs_only is False
    assert sps.height == 576


def test_high_profile_record_extension() -> None:
    record = parse_avc_decoder_configuration_record(_fixture("h264_high10_1920x1080_2997_cqm"))
    assert (record.chroma_format_idc, record.bit_depth_luma, record.bit_depth_chroma) == (
        1,
        10,
        10,
    )
    baseline = parse_avc_decoder_configuration_record(_fixture("h264_baseline_320x240_25"))
    assert baseline.chroma_format_idc is None


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_record_prefixes_raise_or_parse_the_same(name: str) -> None:
    data = _fixture(name)
    full = parse_avc_decoder_configuration_record(data)
    for end in range(len(data)):
        try:
            prefix = parse_avc_decoder_configuration_record(data[:end])
        except CodecHeaderError:
            continue
        # Only the optional High-profile extension may be cut off.
        assert (prefix.sps, prefix.pps) == (full.sps, full.pps), end


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_sps_prefixes_raise_or_parse_the_same(name: str) -> None:
    nal = parse_avc_decoder_configuration_record(_fixture(name)).sps[0]
    full = parse_avc_sps(nal)
    raised = 0
    for end in range(len(nal)):
        try:
            assert parse_avc_sps(nal[:end]) == full
        except CodecHeaderError:
            raised += 1
    assert raised > len(nal) // 2


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_trailing_data_is_ignored(name: str) -> None:
    data = _fixture(name)
    assert parse_avc_decoder_configuration_record(data + b"\xff" * 7).sps == (
        parse_avc_decoder_configuration_record(data).sps
    )


def _record(sps: list[bytes], pps: list[bytes], header: bytes = b"\x01\x4d\x40\x1e\xff") -> bytes:
    out = bytearray(header)
    out.append(0xE0 | len(sps))
    for unit in sps:
        out += len(unit).to_bytes(2, "big") + unit
    out.append(len(pps))
    for unit in pps:
        out += len(unit).to_bytes(2, "big") + unit
    return bytes(out)


def test_record_fields_and_nal_length_sizes() -> None:
    sps = _sps()
    for length_size_minus_one in (0, 1, 3):
        header = bytes([1, 77, 0x40, 30, 0xFC | length_size_minus_one])
        record = parse_avc_decoder_configuration_record(_record([sps], [b"\x68\xce"], header))
        assert record.nal_length_size_bytes == length_size_minus_one + 1
        assert (record.profile_idc, record.profile_compatibility, record.level_idc) == (
            77,
            0x40,
            30,
        )
        assert record.sps == (sps,)
        assert record.pps == (b"\x68\xce",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x01\x42\xc0\x1e\xff\xe0", "truncated"),
        (b"\x00\x42\xc0\x1e\xff\xe0\x00", "configurationVersion"),
        (b"\x01\x42\xc0\x1e\xfe\xe0\x00", "lengthSizeMinusOne"),
        (b"\x01\x42\xc0\x1e\xff\xe1\x00", "NAL unit length"),
        (b"\x01\x42\xc0\x1e\xff\xe1\x00\x00\x00", "does not fit"),
        (b"\x01\x42\xc0\x1e\xff\xe1\x00\x05\x67\x42", "does not fit"),
        (b"\x01\x42\xc0\x1e\xff\xe1\x00\x01\x68\x00", "NAL unit type 8"),
        (b"\x01\x42\xc0\x1e\xff\xe0", "truncated"),
        (b"\x01\x42\xc0\x1e\xff\xe1\x00\x01\x67", "numOfPictureParameterSets"),
        (b"\x01\x42\xc0\x1e\xff\xe1\x00\x01\x67\x01\x00\x01\x67", "NAL unit type 7"),
        # 31 SPS and 255 PPS announced, almost no data: fails at once.
        (b"\x01\x42\xc0\x1e\xff\xff\x00\x01\x67", "NAL unit length"),
    ],
)
def test_malformed_records(data: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_avc_decoder_configuration_record(data)


def test_malformed_high_profile_extension_is_ignored() -> None:
    sps = _sps(profile_idc=100, high=_ue(1) + _ue(0) + _ue(0) + "0" + "0")
    base = _record([sps], [b"\x68\xce"], b"\x01\x64\x00\x1f\xff")
    # chroma_format, bit depths, then 3 SPS extensions that are not there.
    record = parse_avc_decoder_configuration_record(base + b"\xfd\xf8\xf8\x03")
    assert record.chroma_format_idc is None
    assert record.sps_ext == ()
    good = parse_avc_decoder_configuration_record(base + b"\xfe\xf9\xfa\x01\x00\x02\x6d\x00")
    assert (good.chroma_format_idc, good.bit_depth_luma, good.bit_depth_chroma) == (2, 9, 10)
    assert good.sps_ext == (b"\x6d\x00",)


def test_sps_defaults_without_vui() -> None:
    sps = parse_avc_sps(_sps())
    assert sps == AVCSequenceParameterSet(
        profile_idc=77,
        constraint_flags=0,
        level_idc=30,
        seq_parameter_set_id=0,
        chroma_format_idc=1,
        separate_colour_plane=False,
        bit_depth_luma=8,
        bit_depth_chroma=8,
        frame_mbs_only=True,
        width=320,
        height=240,
        sar_width=None,
        sar_height=None,
        num_units_in_tick=None,
        time_scale_hz=None,
        fixed_frame_rate=None,
        frame_rate=None,
    )


def test_sps_frame_cropping_4_2_0_progressive() -> None:
    # 1920x1088 coded, bottom crop of 4 chroma rows = 8 luma rows.
    sps = parse_avc_sps(_sps(width_mbs=120, height_map_units=68, crop=(0, 0, 0, 4)))
    assert (sps.width, sps.height) == (1920, 1080)


def test_sps_frame_cropping_interlaced() -> None:
    # Field coding doubles the map units and CropUnitY (2 * SubHeightC = 4).
    sps = parse_avc_sps(
        _sps(width_mbs=120, height_map_units=34, frame_mbs_only=False, crop=(1, 2, 0, 2))
    )
    assert sps.frame_mbs_only is False
    assert (sps.width, sps.height) == (1920 - 2 * 3, 1088 - 4 * 2)


def test_sps_monochrome_crop_units_are_one_sample() -> None:
    high = _ue(0) + _ue(0) + _ue(0) + "0" + "0"  # chroma_format_idc 0, depths, no matrix
    sps = parse_avc_sps(_sps(profile_idc=100, high=high, crop=(1, 1, 1, 1)))
    assert sps.chroma_format_idc == 0
    assert (sps.width, sps.height) == (318, 238)


def test_sps_separate_colour_planes_crop_like_monochrome() -> None:
    high = _ue(3) + "1" + _ue(0) + _ue(0) + "0" + "0"
    sps = parse_avc_sps(_sps(profile_idc=244, high=high, crop=(1, 0, 0, 1)))
    assert sps.separate_colour_plane is True
    assert (sps.width, sps.height) == (319, 239)


def test_sps_crop_larger_than_picture_raises() -> None:
    with pytest.raises(CodecHeaderError, match="cropping"):
        parse_avc_sps(_sps(width_mbs=1, height_map_units=1, crop=(4, 4, 0, 0)))


def test_sps_scaling_lists_are_skipped() -> None:
    # List 0 present with explicit deltas that end on nextScale 0, list 6 (8x8)
    # present and using the default (first delta makes nextScale 0).
    list_16 = "".join(_se(d) for d in [1, -2, 3]) + _se(-10)  # 9, 7, 10, 0 then stop
    list_64 = _se(-8)
    flags = "1" + list_16 + "00000" + "1" + list_64 + "0"
    high = _ue(1) + _ue(2) + _ue(2) + "0" + "1" + flags
    vui = _timing_vui(1001, 60000)
    sps = parse_avc_sps(_sps(profile_idc=110, high=high, vui=vui))
    assert sps.bit_depth_luma == 10
    assert sps.frame_rate == pytest.approx(29.97, abs=0.01)


def test_sps_scaling_delta_out_of_range() -> None:
    high = _ue(1) + _ue(0) + _ue(0) + "0" + "1" + "1" + _se(200)
    with pytest.raises(CodecHeaderError, match="delta_scale"):
        parse_avc_sps(_sps(profile_idc=100, high=high))


def test_sps_pic_order_cnt_type_1() -> None:
    poc = _ue(1) + "0" + _se(-2) + _se(3) + _ue(3) + _se(1) + _se(2) + _se(-1)
    sps = parse_avc_sps(_sps(poc=poc, vui=_timing_vui(1, 50)))
    assert (sps.width, sps.height, sps.frame_rate) == (320, 240, 25.0)


def test_sps_pic_order_cnt_cycle_bound() -> None:
    poc = _ue(1) + "0" + _se(0) + _se(0) + _ue(256)
    with pytest.raises(CodecHeaderError, match="num_ref_frames_in_pic_order_cnt_cycle"):
        parse_avc_sps(_sps(poc=poc))


def test_sps_vui_aspect_ratio_and_timing() -> None:
    sps = parse_avc_sps(_sps(vui=_timing_vui(1, 60, aspect="1" + _u(2, 8))))
    assert (sps.sar_width, sps.sar_height) == (12, 11)
    assert (sps.num_units_in_tick, sps.time_scale_hz, sps.fixed_frame_rate) == (1, 60, True)
    assert sps.frame_rate == 30.0
    extended = parse_avc_sps(
        _sps(vui=_timing_vui(1, 60, aspect="1" + _u(255, 8) + _u(64, 16) + _u(45, 16)))
    )
    assert (extended.sar_width, extended.sar_height) == (64, 45)


def test_sps_vui_zero_tick_gives_no_frame_rate() -> None:
    sps = parse_avc_sps(_sps(vui=_timing_vui(0, 50)))
    assert sps.time_scale_hz == 50
    assert sps.frame_rate is None


def test_sps_vui_with_all_optional_fields() -> None:
    vui = (
        "1"
        + _u(1, 8)  # aspect_ratio_idc 1
        + "11"  # overscan_info_present, overscan_appropriate
        + "1"
        + _u(5, 3)
        + "1"
        + "1"
        + _u(1, 8) * 3  # video signal + colour description
        + "1"
        + _ue(1)
        + _ue(1)  # chroma_loc_info
        + "1"
        + _u(1, 32)
        + _u(48, 32)
        + "0"  # timing
    )
    assert parse_avc_sps(_sps(vui=vui)).frame_rate == 24.0


def test_sps_emulation_prevention_is_removed() -> None:
    # x264's VUI timing fields (num_units_in_tick 1, time_scale 50) are escaped.
    nal = parse_avc_decoder_configuration_record(_fixture("h264_baseline_320x240_25")).sps[0]
    assert b"\x00\x00\x03" in nal
    sps = parse_avc_sps(nal)
    assert (sps.num_units_in_tick, sps.time_scale_hz) == (1, 50)
    # The synthetic builder escapes too: a zero level_idc needs no escape, a time
    # scale with zero bytes does.
    escaped = _sps(vui=_timing_vui(1, 0x10000))
    assert b"\x00\x00\x03" in escaped
    assert parse_avc_sps(escaped).time_scale_hz == 0x10000


@pytest.mark.parametrize(
    ("nal", "message"),
    [
        (b"", "empty"),
        (b"\x68\x42\x00\x1e", "not 7"),
        (b"\x67\x42", "truncated"),
    ],
)
def test_malformed_sps(nal: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_avc_sps(nal)


def test_sps_bounds() -> None:
    with pytest.raises(CodecHeaderError, match="chroma_format_idc"):
        parse_avc_sps(_sps(profile_idc=100, high=_ue(4)))
    with pytest.raises(CodecHeaderError, match="bit_depth_luma"):
        parse_avc_sps(_sps(profile_idc=100, high=_ue(1) + _ue(7)))
    with pytest.raises(CodecHeaderError, match="pic_order_cnt_type"):
        parse_avc_sps(_sps(poc=_ue(3)))
    nal = b"\x67" + _bits(_u(66, 8) + _u(0, 8) + _u(30, 8) + _ue(32))
    with pytest.raises(CodecHeaderError, match="seq_parameter_set_id"):
        parse_avc_sps(nal)


@pytest.mark.parametrize(
    ("profile_idc", "flags", "name"),
    [
        (66, 0x00, "Baseline"),
        (66, 0x40, "Constrained Baseline"),
        (77, 0x40, "Main"),
        (88, 0x00, "Extended"),
        (100, 0x00, "High"),
        (100, 0x08, "Progressive High"),
        (100, 0x0C, "Constrained High"),
        (110, 0x00, "High 10"),
        (110, 0x10, "High 10 Intra"),
        (122, 0x10, "High 4:2:2 Intra"),
        (244, 0x00, "High 4:4:4 Predictive"),
        (244, 0x10, "High 4:4:4 Intra"),
        (44, 0x00, "CAVLC 4:4:4 Intra"),
        (128, 0x00, "Stereo High"),
        (144, 0x00, "High 4:4:4"),
        (7, 0x00, "Unknown (7)"),
    ],
)
def test_profile_names(profile_idc: int, flags: int, name: str) -> None:
    assert avc_profile_name(profile_idc, flags) == name


@pytest.mark.parametrize(
    ("level_idc", "profile_idc", "flags", "name"),
    [
        (9, 100, 0, "1b"),
        (11, 66, 0x10, "1b"),
        (11, 77, 0x10, "1b"),
        (11, 100, 0x10, "1.1"),
        (11, 66, 0, "1.1"),
        (10, 66, 0, "1.0"),
        (31, 100, 0, "3.1"),
        (51, 100, 0, "5.1"),
        (62, 100, 0, "6.2"),
    ],
)
def test_level_names(level_idc: int, profile_idc: int, flags: int, name: str) -> None:
    assert avc_level_name(level_idc, profile_idc, flags) == name


@given(st.binary(max_size=80))
def test_random_records_raise_only_codec_header_error(data: bytes) -> None:
    try:
        record = parse_avc_decoder_configuration_record(data)
    except CodecHeaderError:
        return
    for unit in record.sps:
        try:
            parse_avc_sps(unit)
        except CodecHeaderError:
            pass


@given(st.binary(max_size=64), st.sampled_from([0x67, 0x27, 0x47]))
def test_random_sps_raise_only_codec_header_error(body: bytes, header: int) -> None:
    try:
        parse_avc_sps(bytes([header]) + body)
    except CodecHeaderError:
        pass


@given(
    st.sampled_from(sorted(FIXTURE_EXPECTATIONS)),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flipped_fixtures_raise_only_codec_header_error(
    name: str, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(_fixture(name))
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    try:
        record = parse_avc_decoder_configuration_record(bytes(data))
        for unit in record.sps:
            parse_avc_sps(unit)
    except CodecHeaderError:
        pass
