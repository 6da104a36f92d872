"""H.264/AVC: the decoder configuration record and the sequence parameter set.

An RTMP publisher starts an AVC stream with an ``AVCDecoderConfigurationRecord``
(ISO/IEC 14496-15 §5.3.3.1; FLV v10.1 E.4.3.1 "AVCPacketType 0: AVC sequence header",
E-RTMP v2 ``SequenceStart`` for ``avc1``). It carries the SPS and PPS NAL units; the
SPS (ITU-T H.264 §7.3.2.1.1) gives the picture size and, in its VUI, the frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortmp.media.bitreader import BitReader, remove_emulation_prevention
from aiortmp.media.errors import CodecHeaderError

__all__ = [
    "AVCDecoderConfigurationRecord",
    "AVCSequenceParameterSet",
    "NAL_UNIT_TYPE_PPS",
    "NAL_UNIT_TYPE_SPS",
    "avc_level_name",
    "avc_profile_name",
    "parse_avc_decoder_configuration_record",
    "parse_avc_sps",
    "read_vui_head",
]

NAL_UNIT_TYPE_SPS = 7
NAL_UNIT_TYPE_PPS = 8

# H.264 §7.3.2.1.1: these profiles carry chroma_format_idc, bit depths and scaling lists.
# 144 is the High 4:4:4 profile of H.264 (2005), removed since but still met.
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144})
# 14496-15 §5.3.3.1.2: the record's chroma/bit depth extension exists for these.
_RECORD_EXTENSION_PROFILES = frozenset({100, 110, 122, 144})
# H.264 Table 6-1: (SubWidthC, SubHeightC) per chroma_format_idc.
_CHROMA_SUBSAMPLING = {1: (2, 2), 2: (2, 1), 3: (1, 1)}
# Bounds from the H.264 semantics, checked so that a hostile SPS cannot make us loop.
_MAX_SPS_ID = 31
_MAX_REF_FRAMES_IN_POC_CYCLE = 255
_MAX_BIT_DEPTH_MINUS8 = 6
_MAX_LOG2_MINUS4 = 12
# H.264 Table E-1: sample aspect ratios for aspect_ratio_idc 1..16.
_SAR_TABLE = {
    1: (1, 1),
    2: (12, 11),
    3: (10, 11),
    4: (16, 11),
    5: (40, 33),
    6: (24, 11),
    7: (20, 11),
    8: (32, 11),
    9: (80, 33),
    10: (18, 11),
    11: (15, 11),
    12: (64, 33),
    13: (160, 99),
    14: (4, 3),
    15: (3, 2),
    16: (2, 1),
}


def read_vui_head(reader: BitReader) -> tuple[int | None, int | None]:
    """Read the VUI fields H.264 and H.265 share, up to chroma_loc_info; return the SAR.

    H.264 E.1.1 and H.265 E.2.1 agree from ``aspect_ratio_info_present_flag`` through the
    two ``chroma_sample_loc_type`` values (Table E-1 is the same in both).

    Args:
        reader: positioned just after ``vui_parameters_present_flag``.

    Returns:
        ``(sar_width, sar_height)``, or ``(None, None)`` when absent or unspecified.

    Raises:
        CodecHeaderError: the fields run past the end of the data.
    """
    sar_width = sar_height = None
    if reader.read_flag():  # aspect_ratio_info_present_flag
        aspect_ratio_idc = reader.read_bits(8)
        if aspect_ratio_idc == 255:  # Extended_SAR
            sar_width = reader.read_bits(16)
            sar_height = reader.read_bits(16)
        elif aspect_ratio_idc in _SAR_TABLE:
            sar_width, sar_height = _SAR_TABLE[aspect_ratio_idc]
    if reader.read_flag():  # overscan_info_present_flag
        reader.skip_bits(1)  # overscan_appropriate_flag
    if reader.read_flag():  # video_signal_type_present_flag
        reader.skip_bits(4)  # video_format, video_full_range_flag
        if reader.read_flag():  # colour_description_present_flag
            reader.skip_bits(24)
    if reader.read_flag():  # chroma_loc_info_present_flag
        reader.read_ue()
        reader.read_ue()
    return sar_width, sar_height


_CONSTRAINT_SET1 = 0x40
_CONSTRAINT_SET3 = 0x10
_CONSTRAINT_SET4 = 0x08
_CONSTRAINT_SET5 = 0x04

# H.264 Annex A profile_idc values, named as FFmpeg and most tools print them.
_PROFILE_NAMES = {
    44: "CAVLC 4:4:4 Intra",
    66: "Baseline",
    77: "Main",
    83: "Scalable Baseline",
    86: "Scalable High",
    88: "Extended",
    100: "High",
    110: "High 10",
    118: "Multiview High",
    122: "High 4:2:2",
    128: "Stereo High",
    134: "MFC High",
    135: "MFC Depth High",
    138: "Multiview Depth High",
    139: "Enhanced Multiview Depth High",
    144: "High 4:4:4",
    244: "High 4:4:4 Predictive",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class AVCDecoderConfigurationRecord:
    """An ``AVCDecoderConfigurationRecord`` (ISO/IEC 14496-15 §5.3.3.1).

    Attributes:
        configuration_version: Always 1.
        profile_idc: ``AVCProfileIndication`` (the SPS ``profile_idc``).
        profile_compatibility: The byte of ``constraint_set0..5`` flags in the SPS.
        level_idc: ``AVCLevelIndication`` (the SPS ``level_idc``).
        nal_length_size_bytes: The size of the NAL unit length prefix in the coded
            frames that follow (1, 2 or 4).
        sps: The sequence parameter set NAL units, header byte included.
        pps: The picture parameter set NAL units, header byte included.
        chroma_format_idc: From the High-profile extension, or None when absent.
        bit_depth_luma: From the High-profile extension, or None when absent.
        bit_depth_chroma: From the High-profile extension, or None when absent.
        sps_ext: The sequence parameter set extension NAL units (High profiles).
    """

    configuration_version: int
    profile_idc: int
    profile_compatibility: int
    level_idc: int
    nal_length_size_bytes: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    chroma_format_idc: int | None = None
    bit_depth_luma: int | None = None
    bit_depth_chroma: int | None = None
    sps_ext: tuple[bytes, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class AVCSequenceParameterSet:
    """What an operator wants from an H.264 SPS (H.264 §7.3.2.1.1, §E.1.1).

    Attributes:
        profile_idc: ``profile_idc``.
        constraint_flags: ``constraint_set0_flag`` .. ``constraint_set5_flag`` as the
            six high bits of a byte (``constraint_set0_flag`` is 0x80).
        level_idc: ``level_idc`` (ten times the level number; 9 is level 1b).
        seq_parameter_set_id: ``seq_parameter_set_id``.
        chroma_format_idc: 0 (monochrome), 1 (4:2:0), 2 (4:2:2) or 3 (4:4:4).
        separate_colour_plane: ``separate_colour_plane_flag``.
        bit_depth_luma: Luma sample bit depth, in bits.
        bit_depth_chroma: Chroma sample bit depth, in bits.
        frame_mbs_only: ``frame_mbs_only_flag``; False means the stream may be
            interlaced (field or MBAFF coded).
        width: Displayed width in luma samples, after frame cropping.
        height: Displayed frame height in luma samples, after frame cropping.
        sar_width: Sample aspect ratio numerator, or None when not signalled.
        sar_height: Sample aspect ratio denominator, or None when not signalled.
        num_units_in_tick: VUI ``num_units_in_tick``, or None without timing info.
        time_scale_hz: VUI ``time_scale``, or None without timing info.
        fixed_frame_rate: VUI ``fixed_frame_rate_flag``, or None without timing info.
        frame_rate: ``time_scale / (2 * num_units_in_tick)`` in frames per second, or
            None when the VUI does not signal timing.
    """

    profile_idc: int
    constraint_flags: int
    level_idc: int
    seq_parameter_set_id: int
    chroma_format_idc: int
    separate_colour_plane: bool
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_mbs_only: bool
    width: int
    height: int
    sar_width: int | None
    sar_height: int | None
    num_units_in_tick: int | None
    time_scale_hz: int | None
    fixed_frame_rate: bool | None
    frame_rate: float | None


def _read_nal_units(data: bytes, offset: int, count: int, what: str) -> tuple[list[bytes], int]:
    """Read ``count`` (16-bit length, NAL unit) pairs starting at ``offset``."""
    units = []
    for _ in range(count):
        if offset + 2 > len(data):
            raise CodecHeaderError(f"{what}: truncated NAL unit length")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if length == 0 or offset + length > len(data):
            raise CodecHeaderError(f"{what}: NAL unit of {length} bytes does not fit")
        units.append(data[offset : offset + length])
        offset += length
    return units, offset


def parse_avc_decoder_configuration_record(
    record: bytes | bytearray | memoryview,
) -> AVCDecoderConfigurationRecord:
    """Parse an ``AVCDecoderConfigurationRecord`` (ISO/IEC 14496-15 §5.3.3.1).

    Trailing bytes after the record are ignored. The High-profile extension (chroma
    format, bit depths, SPS extensions) is optional in practice: many muxers omit it
    or write it truncated, so a malformed extension is ignored rather than rejected.

    Args:
        record: The record bytes (the AVC sequence header body after the FLV
            ``AVCPacketType``/``CompositionTime`` or the E-RTMP ExVideoTagHeader).

    Returns:
        The parsed record.

    Raises:
        CodecHeaderError: The record is truncated, has a version other than 1, an
            invalid NAL length size, or a NAL unit of the wrong type.
    """
    data = bytes(record)
    what = "AVCDecoderConfigurationRecord"
    if len(data) < 7:
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    if data[0] != 1:
        raise CodecHeaderError(f"{what}: unsupported configurationVersion {data[0]}")
    # "lengthSizeMinusOne ... The value of this field shall be one of 0, 1, or 3".
    length_size_minus_one = data[4] & 0x03
    if length_size_minus_one == 2:
        raise CodecHeaderError(f"{what}: lengthSizeMinusOne 2 (3-byte lengths) is invalid")
    sps_count = data[5] & 0x1F
    sps, offset = _read_nal_units(data, 6, sps_count, what)
    if offset >= len(data):
        raise CodecHeaderError(f"{what}: missing numOfPictureParameterSets")
    pps_count = data[offset]
    pps, offset = _read_nal_units(data, offset + 1, pps_count, what)
    for unit in sps:
        if unit[0] & 0x1F != NAL_UNIT_TYPE_SPS:
            raise CodecHeaderError(f"{what}: SPS array holds NAL unit type {unit[0] & 0x1F}")
    for unit in pps:
        if unit[0] & 0x1F != NAL_UNIT_TYPE_PPS:
            raise CodecHeaderError(f"{what}: PPS array holds NAL unit type {unit[0] & 0x1F}")

    chroma_format_idc = bit_depth_luma = bit_depth_chroma = None
    sps_ext: list[bytes] = []
    if data[1] in _RECORD_EXTENSION_PROFILES and len(data) - offset >= 4:
        try:
            ext_count = data[offset + 3]
            sps_ext, _ = _read_nal_units(data, offset + 4, ext_count, what)
        except CodecHeaderError:
            sps_ext = []
        else:
            chroma_format_idc = data[offset] & 0x03
            bit_depth_luma = (data[offset + 1] & 0x07) + 8
            bit_depth_chroma = (data[offset + 2] & 0x07) + 8

    return AVCDecoderConfigurationRecord(
        configuration_version=data[0],
        profile_idc=data[1],
        profile_compatibility=data[2],
        level_idc=data[3],
        nal_length_size_bytes=length_size_minus_one + 1,
        sps=tuple(sps),
        pps=tuple(pps),
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        sps_ext=tuple(sps_ext),
    )


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    """Skip ``scaling_list(scalingList, sizeOfScalingList, ...)`` (H.264 §7.3.2.1.1.1)."""
    last_scale = 8
    next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta_scale = reader.read_se()
            if not -128 <= delta_scale <= 127:
                raise CodecHeaderError(f"H.264 SPS: delta_scale {delta_scale} out of range")
            next_scale = (last_scale + delta_scale + 256) % 256
        last_scale = last_scale if next_scale == 0 else next_scale


def _read_ue_max(reader: BitReader, name: str, maximum: int) -> int:
    value = reader.read_ue()
    if value > maximum:
        raise CodecHeaderError(f"H.264 SPS: {name} {value} exceeds {maximum}")
    return value


def parse_avc_sps(nal_unit: bytes | bytearray | memoryview) -> AVCSequenceParameterSet:
    """Parse an H.264 sequence parameter set (H.264 §7.3.2.1.1 and VUI §E.1.1).

    Parsing stops after the VUI ``timing_info``; HRD and bitstream restriction
    parameters are not read.

    Args:
        nal_unit: The SPS NAL unit, starting with its one-byte NAL header, with or
            without emulation prevention bytes removed.

    Returns:
        The fields operators look at, with the cropped picture size and frame rate.

    Raises:
        CodecHeaderError: The NAL unit is not an SPS, is truncated, or holds values
            outside the ranges H.264 allows.
    """
    rbsp = remove_emulation_prevention(nal_unit)
    if not rbsp:
        raise CodecHeaderError("H.264 SPS is empty")
    if rbsp[0] & 0x1F != NAL_UNIT_TYPE_SPS:
        raise CodecHeaderError(f"H.264 SPS: NAL unit type is {rbsp[0] & 0x1F}, not 7")
    reader = BitReader(rbsp[1:], "H.264 SPS")
    profile_idc = reader.read_bits(8)
    constraint_flags = reader.read_bits(8) & 0xFC
    level_idc = reader.read_bits(8)
    seq_parameter_set_id = _read_ue_max(reader, "seq_parameter_set_id", _MAX_SPS_ID)

    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = _read_ue_max(reader, "chroma_format_idc", 3)
        if chroma_format_idc == 3:
            separate_colour_plane = reader.read_flag()
        bit_depth_luma = 8 + _read_ue_max(reader, "bit_depth_luma_minus8", _MAX_BIT_DEPTH_MINUS8)
        bit_depth_chroma = 8 + _read_ue_max(
            reader, "bit_depth_chroma_minus8", _MAX_BIT_DEPTH_MINUS8
        )
        reader.skip_bits(1)  # qpprime_y_zero_transform_bypass_flag
        if reader.read_flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.read_flag():  # seq_scaling_list_present_flag[i]
                    _skip_scaling_list(reader, 16 if index < 6 else 64)

    _read_ue_max(reader, "log2_max_frame_num_minus4", _MAX_LOG2_MINUS4)
    pic_order_cnt_type = _read_ue_max(reader, "pic_order_cnt_type", 2)
    if pic_order_cnt_type == 0:
        _read_ue_max(reader, "log2_max_pic_order_cnt_lsb_minus4", _MAX_LOG2_MINUS4)
    elif pic_order_cnt_type == 1:
        reader.skip_bits(1)  # delta_pic_order_always_zero_flag
        reader.read_se()  # offset_for_non_ref_pic
        reader.read_se()  # offset_for_top_to_bottom_field
        cycle = _read_ue_max(
            reader, "num_ref_frames_in_pic_order_cnt_cycle", _MAX_REF_FRAMES_IN_POC_CYCLE
        )
        for _ in range(cycle):
            reader.read_se()  # offset_for_ref_frame[i]
    reader.read_ue()  # max_num_ref_frames
    reader.skip_bits(1)  # gaps_in_frame_num_value_allowed_flag
    width_in_mbs = reader.read_ue() + 1
    height_in_map_units = reader.read_ue() + 1
    frame_mbs_only = reader.read_flag()
    if not frame_mbs_only:
        reader.skip_bits(1)  # mb_adaptive_frame_field_flag
    reader.skip_bits(1)  # direct_8x8_inference_flag

    width = width_in_mbs * 16
    # "FrameHeightInMbs = ( 2 - frame_mbs_only_flag ) * PicHeightInMapUnits" (7-18).
    height = (2 - frame_mbs_only) * height_in_map_units * 16
    if reader.read_flag():  # frame_cropping_flag
        left, right, top, bottom = (reader.read_ue() for _ in range(4))
        # H.264 (7-19)..(7-22): crop units depend on ChromaArrayType and field coding.
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        if chroma_array_type == 0:
            crop_unit_x, crop_unit_y = 1, 2 - frame_mbs_only
        else:
            sub_width, sub_height = _CHROMA_SUBSAMPLING[chroma_array_type]
            crop_unit_x, crop_unit_y = sub_width, sub_height * (2 - frame_mbs_only)
        width -= crop_unit_x * (left + right)
        height -= crop_unit_y * (top + bottom)
        if width <= 0 or height <= 0:
            raise CodecHeaderError("H.264 SPS: frame cropping leaves no picture")

    sar_width = sar_height = None
    num_units_in_tick = time_scale = None
    fixed_frame_rate = None
    frame_rate = None
    if reader.read_flag():  # vui_parameters_present_flag
        sar_width, sar_height = read_vui_head(reader)
        if reader.read_flag():  # timing_info_present_flag
            num_units_in_tick = reader.read_bits(32)
            time_scale = reader.read_bits(32)
            fixed_frame_rate = reader.read_flag()
            # "num_units_in_tick ... shall be greater than 0"; a frame lasts two ticks:
            # one per field (H.264 E.2.1, (E-1) with DeltaTfiDivisor 2 for a frame).
            if num_units_in_tick > 0 and time_scale > 0:
                frame_rate = time_scale / (2 * num_units_in_tick)

    return AVCSequenceParameterSet(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        seq_parameter_set_id=seq_parameter_set_id,
        chroma_format_idc=chroma_format_idc,
        separate_colour_plane=separate_colour_plane,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
        sar_width=sar_width,
        sar_height=sar_height,
        num_units_in_tick=num_units_in_tick,
        time_scale_hz=time_scale,
        fixed_frame_rate=fixed_frame_rate,
        frame_rate=frame_rate,
    )


def avc_profile_name(profile_idc: int, constraint_flags: int = 0) -> str:
    """Name an H.264 profile as users know it (H.264 Annex A.2).

    Args:
        profile_idc: ``profile_idc``.
        constraint_flags: The constraint_set flags byte (``constraint_set0_flag`` is
            0x80), which distinguishes e.g. Constrained Baseline (A.2.1.1) and the
            Intra profiles (A.2.8-A.2.10).

    Returns:
        The profile name, e.g. ``"High"``, or ``"Unknown (N)"``.
    """
    if profile_idc == 66 and constraint_flags & _CONSTRAINT_SET1:
        return "Constrained Baseline"
    if profile_idc == 100 and constraint_flags & _CONSTRAINT_SET4:
        both = _CONSTRAINT_SET4 | _CONSTRAINT_SET5
        return "Constrained High" if constraint_flags & both == both else "Progressive High"
    if profile_idc in (110, 122, 244) and constraint_flags & _CONSTRAINT_SET3:
        return {110: "High 10 Intra", 122: "High 4:2:2 Intra", 244: "High 4:4:4 Intra"}[profile_idc]
    return _PROFILE_NAMES.get(profile_idc, f"Unknown ({profile_idc})")


def avc_level_name(level_idc: int, profile_idc: int = 0, constraint_flags: int = 0) -> str:
    """Name an H.264 level (H.264 Annex A.3, Table A-1).

    Args:
        level_idc: ``level_idc`` (ten times the level number).
        profile_idc: ``profile_idc``, needed to recognise level 1b.
        constraint_flags: The constraint_set flags byte.

    Returns:
        ``"1b"`` for level 1b, else ``"X.Y"`` (``level_idc`` 31 gives ``"3.1"``).
    """
    # A.3.1: "level_idc equal to 11 and constraint_set3_flag equal to 1 indicate
    # level 1b" for the Baseline, Main and Extended profiles; others use 9.
    if level_idc == 9 or (
        level_idc == 11 and profile_idc in (66, 77, 88) and constraint_flags & _CONSTRAINT_SET3
    ):
        return "1b"
    return f"{level_idc // 10}.{level_idc % 10}"
