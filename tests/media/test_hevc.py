"""Tests for aiortmp.media.hevc (HEVCDecoderConfigurationRecord and H.265 SPS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.hevc import (
    NAL_UNIT_TYPE_PPS,
    NAL_UNIT_TYPE_SPS,
    NAL_UNIT_TYPE_VPS,
    hevc_level_name,
    hevc_profile_name,
    parse_hevc_decoder_configuration_record,
    parse_hevc_sps,
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


def _ptl(profile_idc: int = 1, level_idc: int = 93, sub_layers_minus1: int = 0) -> str:
    bits = "00" + "0" + _u(profile_idc, 5) + _u(1 << (31 - profile_idc), 32)
    bits += "1001" + "0" * 44 + _u(level_idc, 8)
    bits += "11" * sub_layers_minus1  # sub_layer_profile/level_present_flag
    if sub_layers_minus1:
        bits += "00" * (8 - sub_layers_minus1)
    bits += ("0" * 88 + _u(level_idc, 8)) * sub_layers_minus1
    return bits


# Short-term reference picture sets in the shape of the HM random-access GOP8
# configuration: set 0 is explicit, the others mostly predicted (H.265 §7.3.7).
_RPS_GOP8 = [
    _ue(4) + _ue(0) + _ue(7) + "1" + _ue(1) + "1" + _ue(1) + "1" + _ue(3) + "1",
    "1" + "0" + _ue(3) + "11" + "00" + "00" + "1",
    "1" + "0" + _ue(1) + "1111",
    "1" + "0" + _ue(0) + "1" + "00" + "111",
    "1" + "1" + _ue(1) + "1111" + "00",
    "1" + "1" + _ue(2) + "1111" + "00",
    "1" + "0" + _ue(0) + "1" + "00" + "111",
    "1" + "1" + _ue(1) + "1111" + "00",
    "0" + _ue(1) + _ue(0) + _ue(7) + "1",
    "1" + "0" + _ue(3) + "11",
    "1" + "0" + _ue(1) + "111",
]


def _sps(
    *,
    width: int = 320,
    height: int = 240,
    profile_idc: int = 1,
    sub_layers_minus1: int = 0,
    chroma_format_idc: int = 1,
    conformance: tuple[int, int, int, int] | None = None,
    ordering_info_present: bool = True,
    scaling_list: str = "0",
    pcm: bool = False,
    rps: list[str] | None = None,
    long_term: str = "0",
    vui: str | None = None,
) -> bytes:
    """Build an SPS NAL unit (H.265 §7.3.2.2.1) from its fields."""
    bits = _u(0, 4) + _u(sub_layers_minus1, 3) + "1"
    bits += _ptl(profile_idc, 93, sub_layers_minus1)
    bits += _ue(0) + _ue(chroma_format_idc)
    if chroma_format_idc == 3:
        bits += "0"
    bits += _ue(width) + _ue(height)
    if conformance is None:
        bits += "0"
    else:
        bits += "1" + "".join(_ue(offset) for offset in conformance)
    bits += _ue(0) + _ue(0) + _ue(4)  # bit depths, log2_max_pic_order_cnt_lsb_minus4
    bits += "1" if ordering_info_present else "0"
    layers = sub_layers_minus1 + 1 if ordering_info_present else 1
    bits += (_ue(4) + _ue(2) + _ue(0)) * layers
    bits += _ue(0) + _ue(3) + _ue(0) + _ue(3) + _ue(1) + _ue(1)
    bits += scaling_list
    bits += "01"  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if pcm:
        bits += "1" + _u(7, 4) + _u(7, 4) + _ue(0) + _ue(1) + "1"
    else:
        bits += "0"
    sets = rps or []
    bits += _ue(len(sets)) + "".join(sets)
    bits += long_term
    bits += "11"  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    bits += "0" if vui is None else "1" + vui
    bits += "0"  # sps_extension_present_flag
    bits += "1"  # rbsp_stop_one_bit
    return b"\x42\x01" + _escape(_bits(bits))


def _timing_vui(num_units: int, time_scale: int, *, field_seq: bool = False) -> str:
    # aspect, overscan, video signal, chroma loc, neutral chroma, field_seq,
    # frame_field_info, default display window, then vui_timing_info.
    return (
        "0000"
        + "0"
        + ("1" if field_seq else "0")
        + "0"
        + "0"
        + "1"
        + _u(num_units, 32)
        + _u(time_scale, 32)
        + "0"  # vui_poc_proportional_to_timing_flag
        + "0"  # vui_hrd_parameters_present_flag
        + "0"  # bitstream_restriction_flag
    )


# name -> (profile, level, width, height, coded width, frame rate, sub-layers, depth)
FIXTURE_EXPECTATIONS = {
    "hevc_main_320x240_25": ("Main", "2.0", 320, 240, 320, 25.0, 1, 8),
    "hevc_main10_1280x720_30": ("Main 10", "3.1", 1280, 720, 1280, 30.0, 1, 10),
    "hevc_main_426x240_24": ("Main", "2.0", 426, 240, 432, 24.0, 1, 8),
    "hevc_main444_1920x1080_60_sublayers": ("Main 4:4:4", "4.1", 1920, 1080, 1920, 60.0, 3, 8),
}


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_ffmpeg_records(name: str) -> None:
    profile, level, width, height, coded_width, fps, sub_layers, depth = FIXTURE_EXPECTATIONS[name]
    record = parse_hevc_decoder_configuration_record(_fixture(name))
    assert record.configuration_version == 1
    assert record.nal_length_size_bytes == 4
    assert [array.nal_unit_type for array in record.arrays][:3] == [
        NAL_UNIT_TYPE_VPS,
        NAL_UNIT_TYPE_SPS,
        NAL_UNIT_TYPE_PPS,
    ]
    assert len(record.nal_units_of_type(NAL_UNIT_TYPE_SPS)) == 1
    assert record.general_tier_flag is False
    assert record.bit_depth_luma == depth
    assert record.num_temporal_layers == sub_layers
    assert (
        hevc_profile_name(
            record.general_profile_idc,
            record.general_profile_compatibility_flags,
            record.general_constraint_indicator_flags,
        )
        == profile
    )
    assert hevc_level_name(record.general_level_idc) == level

    sps = parse_hevc_sps(record.nal_units_of_type(NAL_UNIT_TYPE_SPS)[0])
    ptl = sps.profile_tier_level
    assert (ptl.profile_idc, ptl.level_idc, ptl.tier_flag) == (
        record.general_profile_idc,
        record.general_level_idc,
        record.general_tier_flag,
    )
    assert ptl.profile_compatibility_flags == record.general_profile_compatibility_flags
    assert ptl.constraint_flags == record.general_constraint_indicator_flags
    assert (sps.width, sps.height) == (width, height)
    assert sps.coded_width == coded_width
    assert sps.frame_rate == fps
    assert sps.sps_max_sub_layers == sub_layers
    assert sps.bit_depth_luma == sps.bit_depth_chroma == depth
    assert sps.chroma_format_idc == record.chroma_format_idc
    assert (sps.sar_width, sps.sar_height) == (1, 1)


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_record_prefixes_raise_and_trailing_data_is_ignored(name: str) -> None:
    data = _fixture(name)
    full = parse_hevc_decoder_configuration_record(data)
    for end in range(len(data)):
        with pytest.raises(CodecHeaderError):
            parse_hevc_decoder_configuration_record(data[:end])
    assert parse_hevc_decoder_configuration_record(data + b"\x00\xff" * 5) == full


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_sps_prefixes_raise_or_parse_the_same(name: str) -> None:
    nal = parse_hevc_decoder_configuration_record(_fixture(name)).nal_units_of_type(
        NAL_UNIT_TYPE_SPS
    )[0]
    full = parse_hevc_sps(nal)
    raised = 0
    for end in range(len(nal)):
        try:
            assert parse_hevc_sps(nal[:end]) == full
        except CodecHeaderError:
            raised += 1
    assert raised > len(nal) // 2


def test_synthetic_sps_defaults() -> None:
    sps = parse_hevc_sps(_sps())
    assert (sps.width, sps.height, sps.coded_width, sps.coded_height) == (320, 240, 320, 240)
    assert sps.frame_rate is None
    assert sps.profile_tier_level.level_idc == 93


def test_short_term_reference_picture_sets_with_prediction() -> None:
    # The VUI after the sets is only found if every predicted set reads exactly the
    # right number of flags (which depends on the derived deltas of its reference).
    sps = parse_hevc_sps(_sps(rps=_RPS_GOP8, vui=_timing_vui(1001, 60000)))
    assert sps.frame_rate == pytest.approx(59.94, abs=0.01)
    assert (sps.width, sps.height) == (320, 240)


def test_predicted_set_with_dropped_and_negative_deltas() -> None:
    rps = [
        _ue(2) + _ue(1) + _ue(0) + "1" + _ue(1) + "1" + _ue(1) + "1",  # -1, -3 | +2
        # delta_rps -1: candidates -2, -4, +1 and -1; drop +1: (-1, -2, -4) | ().
        "1" + "1" + _ue(0) + "1" + "1" + "00" + "1",
        # delta_rps +2 from it: candidates +1, 0, -2 and +2; a zero delta is never
        # kept (7-61, 7-62), so 4 flags give (-2) | (+1, +2).
        "1" + "0" + _ue(1) + "1111",
        # Predicting from a set of 3 deltas reads 4 flag groups.
        "1" + "1" + _ue(0) + "1111",
    ]
    assert parse_hevc_sps(_sps(rps=rps, vui=_timing_vui(1, 25))).frame_rate == 25.0


def test_reference_picture_set_bounds() -> None:
    with pytest.raises(CodecHeaderError, match="num_short_term_ref_pic_sets"):
        parse_hevc_sps(_sps(rps=[_ue(0) + _ue(0)] * 65))
    with pytest.raises(CodecHeaderError, match="num_negative_pics"):
        parse_hevc_sps(_sps(rps=[_ue(17) + _ue(0)]))
    with pytest.raises(CodecHeaderError, match="num_positive_pics"):
        parse_hevc_sps(_sps(rps=[_ue(10) + _ue(7)]))
    # Predicting 17 deltas from a full set of 16 overflows the bound.
    full = _ue(16) + _ue(0) + (_ue(0) + "1") * 16
    grow = "1" + "1" + _ue(0) + "1" * 17
    with pytest.raises(CodecHeaderError, match="too large"):
        parse_hevc_sps(_sps(rps=[full, grow]))


def test_long_term_reference_pictures() -> None:
    # log2_max_pic_order_cnt_lsb is 8: each entry is 8 bits + a flag.
    long_term = "1" + _ue(2) + _u(5, 8) + "1" + _u(9, 8) + "0"
    assert parse_hevc_sps(_sps(long_term=long_term, vui=_timing_vui(1, 30))).frame_rate == 30
    with pytest.raises(CodecHeaderError, match="num_long_term_ref_pics_sps"):
        parse_hevc_sps(_sps(long_term="1" + _ue(33)))


def test_scaling_list_data_and_pcm() -> None:
    # sizeId 0..3; predicted (flag 0 + delta) for most, explicit for a few.
    lists = ""
    for size_id in range(4):
        for matrix_id in range(0, 6, 3 if size_id == 3 else 1):
            if matrix_id == 1:
                coefs = min(64, 1 << (4 + (size_id << 1)))
                lists += "1" + (_se(-7) if size_id > 1 else "") + _se(1) * coefs
            else:
                lists += "0" + _ue(0)
    sps = parse_hevc_sps(_sps(scaling_list="11" + lists, pcm=True, vui=_timing_vui(1, 50)))
    assert sps.frame_rate == 50.0
    # scaling_list_enabled_flag without sps_scaling_list_data_present_flag.
    assert parse_hevc_sps(_sps(scaling_list="10", vui=_timing_vui(1, 50))).frame_rate == 50.0


def test_sub_layers_without_ordering_info() -> None:
    sps = parse_hevc_sps(
        _sps(sub_layers_minus1=6, ordering_info_present=False, vui=_timing_vui(1, 24))
    )
    assert sps.sps_max_sub_layers == 7
    assert sps.frame_rate == 24.0


def test_sub_layers_with_ordering_info() -> None:
    sps = parse_hevc_sps(_sps(sub_layers_minus1=2, vui=_timing_vui(1, 24)))
    assert sps.sps_max_sub_layers == 3
    assert sps.frame_rate == 24.0


def test_max_sub_layers_7_is_rejected() -> None:
    nal = b"\x42\x01" + _bits(_u(0, 4) + _u(7, 3) + "1" + "0" * 200)
    with pytest.raises(CodecHeaderError, match="sps_max_sub_layers_minus1"):
        parse_hevc_sps(nal)


def test_conformance_window_units_follow_chroma_format() -> None:
    window = (1, 2, 3, 4)
    expected = {0: (320 - 3, 240 - 7), 1: (320 - 6, 240 - 14), 2: (320 - 6, 240 - 7)}
    expected[3] = (320 - 3, 240 - 7)
    for chroma, size in expected.items():
        sps = parse_hevc_sps(_sps(chroma_format_idc=chroma, conformance=window))
        assert (sps.width, sps.height) == size, chroma
    with pytest.raises(CodecHeaderError, match="conformance window"):
        parse_hevc_sps(_sps(width=16, conformance=(4, 4, 0, 0)))


def test_vui_with_all_optional_fields_and_field_sequence() -> None:
    vui = (
        "1"
        + _u(255, 8)
        + _u(4, 16)
        + _u(3, 16)  # EXTENDED_SAR 4:3
        + "11"
        + "1"
        + _u(5, 3)
        + "0"
        + "1"
        + _u(9, 8) * 3
        + "1"
        + _ue(2)
        + _ue(2)
        + "0"
        + "1"
        + "1"  # neutral chroma, field_seq_flag, frame_field_info_present
        + "1"
        + _ue(1)
        + _ue(1)
        + _ue(2)
        + _ue(2)  # default display window
        + "1"
        + _u(1, 32)
        + _u(50, 32)
        + "0"
        + "0"
        + "0"
    )
    sps = parse_hevc_sps(_sps(vui=vui))
    assert (sps.sar_width, sps.sar_height) == (4, 3)
    assert sps.field_seq is True
    assert sps.frame_rate == 50.0


def test_vui_table_sample_aspect_ratio_and_zero_tick() -> None:
    vui = "1" + _u(14, 8) + "000" + "0000" + "1" + _u(0, 32) + _u(50, 32) + "000"
    sps = parse_hevc_sps(_sps(vui=vui))
    assert (sps.sar_width, sps.sar_height) == (4, 3)
    assert sps.frame_rate is None


@pytest.mark.parametrize(
    ("nal", "message"),
    [
        (b"", "truncated"),
        (b"\x42", "truncated"),
        (b"\x40\x01\x0c\x01", "not 33"),
        (b"\x42\x01\x01", "truncated"),
    ],
)
def test_malformed_sps(nal: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_hevc_sps(nal)


def test_sps_zero_picture_size() -> None:
    with pytest.raises(CodecHeaderError, match="zero"):
        parse_hevc_sps(_sps(width=0))


def _record_header(num_arrays: int) -> bytes:
    return bytes.fromhex("01016000000090000000000000f000fcfdf8f8000007") + bytes([num_arrays])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (_record_header(0)[:-1], "truncated"),
        (b"\x02" + _record_header(0)[1:], "configurationVersion"),
        (_record_header(1), "array header"),
        (_record_header(1) + b"\xa1\x00\x01", "nalUnitLength"),
        (_record_header(1) + b"\xa1\x00\x01\x00\x01\x42", "does not fit"),
        (_record_header(1) + b"\xa1\x00\x01\x00\x05\x42\x01", "does not fit"),
        # 255 arrays of 65535 NAL units announced: fails at the first missing byte.
        (_record_header(255) + b"\xa1\xff\xff\x00\x02\x42\x01", "nalUnitLength"),
    ],
)
def test_malformed_records(data: bytes, message: str) -> None:
    with pytest.raises(CodecHeaderError, match=message):
        parse_hevc_decoder_configuration_record(data)


def test_record_header_fields() -> None:
    header = bytearray(_record_header(1))
    header[1] = 0x62  # profile space 1, High tier, Main 10
    header[12] = 153
    header[16] = 0xFE  # 4:2:2
    header[17] = 0xFA  # luma 10 bits
    header[18] = 0xFC  # chroma 12 bits
    header[19:21] = (25 * 256).to_bytes(2, "big")
    header[21] = 0b01_011_1_01  # constant rate 1, 3 layers, nested, 2-byte lengths
    sps = _sps()
    data = bytes(header) + b"\x21\x00\x01" + len(sps).to_bytes(2, "big") + sps
    record = parse_hevc_decoder_configuration_record(data)
    assert record.general_profile_space == 1
    assert record.general_tier_flag is True
    assert record.general_profile_idc == 2
    assert record.general_level_idc == 153
    assert (record.chroma_format_idc, record.bit_depth_luma, record.bit_depth_chroma) == (
        2,
        10,
        12,
    )
    assert record.avg_frame_rate == 25 * 256
    assert (record.constant_frame_rate, record.num_temporal_layers) == (1, 3)
    assert record.nal_length_size_bytes == 2
    assert record.arrays[0].array_completeness is False
    assert record.nal_units_of_type(NAL_UNIT_TYPE_SPS) == (sps,)
    assert record.nal_units_of_type(NAL_UNIT_TYPE_PPS) == ()


def test_version_0_record_is_accepted() -> None:
    record = parse_hevc_decoder_configuration_record(b"\x00" + _record_header(0)[1:])
    assert record.configuration_version == 0
    assert record.arrays == ()


@pytest.mark.parametrize(
    ("profile_idc", "compatibility", "constraints", "name"),
    [
        (1, 0, 0, "Main"),
        (2, 0, 0, "Main 10"),
        (3, 0, 0, "Main Still Picture"),
        (0, 1 << (31 - 2), 0, "Main 10"),
        (0, 0, 0, "Unknown (0)"),
        (31, 0, 0, "Unknown (31)"),
        (9, 0, 0, "Screen Content Coding Extensions"),
        # progressive+frame-only, then max_12bit max_10bit max_8bit max_422 max_420 ...
        (4, 0, 0b1001_11111100 << 36, "Monochrome"),
        (4, 0, 0b1001_10011000 << 36, "Main 12"),
        (4, 0, 0b1001_11010000 << 36, "Main 4:2:2 10"),
        (4, 0, 0b1001_11100000 << 36, "Main 4:4:4"),
        (4, 0, 0b1001_10000010 << 36, "Main 4:4:4 12 Intra"),
        (4, 0, 0b1001_11100011 << 36, "Main 4:4:4 Still Picture"),
        (4, 0, 0b1001_01010101 << 36, "Format Range Extensions"),
    ],
)
def test_profile_names(profile_idc: int, compatibility: int, constraints: int, name: str) -> None:
    assert hevc_profile_name(profile_idc, compatibility, constraints) == name


@pytest.mark.parametrize(
    ("level_idc", "name"),
    [(30, "1.0"), (60, "2.0"), (63, "2.1"), (93, "3.1"), (120, "4.0"), (153, "5.1"), (186, "6.2")],
)
def test_level_names(level_idc: int, name: str) -> None:
    assert hevc_level_name(level_idc) == name


@given(st.binary(max_size=120))
def test_random_records_raise_only_codec_header_error(data: bytes) -> None:
    try:
        record = parse_hevc_decoder_configuration_record(data)
    except CodecHeaderError:
        return
    for unit in record.nal_units_of_type(NAL_UNIT_TYPE_SPS):
        try:
            parse_hevc_sps(unit)
        except CodecHeaderError:
            pass


@given(st.binary(max_size=96))
def test_random_sps_raise_only_codec_header_error(body: bytes) -> None:
    try:
        parse_hevc_sps(b"\x42\x01" + body)
    except CodecHeaderError:
        pass


@given(
    st.sampled_from(sorted(FIXTURE_EXPECTATIONS)),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 7)), min_size=1, max_size=4),
)
def test_bit_flipped_sps_raise_only_codec_header_error(
    name: str, flips: list[tuple[int, int]]
) -> None:
    nal = bytearray(
        parse_hevc_decoder_configuration_record(_fixture(name)).nal_units_of_type(
            NAL_UNIT_TYPE_SPS
        )[0]
    )
    for position, bit in flips:
        nal[2 + position % (len(nal) - 2)] ^= 1 << bit
    try:
        parse_hevc_sps(bytes(nal))
    except CodecHeaderError:
        pass


@given(st.lists(st.integers(0, 255), min_size=1, max_size=12))
def test_random_reference_picture_sets_raise_only_codec_header_error(
    values: list[int],
) -> None:
    # Random flag/ue soup in the reference picture set region of a valid SPS.
    soup = "".join(_ue(v % 20) if v & 1 else _u(v >> 1, 7) for v in values)
    try:
        parse_hevc_sps(_sps(rps=[soup], vui=_timing_vui(1, 25)))
    except CodecHeaderError:
        pass
