"""H.265/HEVC: the decoder configuration record and the sequence parameter set.

An RTMP publisher starts an HEVC stream with an ``HEVCDecoderConfigurationRecord``
(ISO/IEC 14496-15 §8.3.3.1; E-RTMP v2 ``SequenceStart`` for ``hvc1``, or the legacy
FLV CodecID 12 used by some Chinese CDNs). It carries arrays of VPS/SPS/PPS/SEI NAL
units; the SPS (ITU-T H.265 §7.3.2.2) gives the picture size and, in its VUI, the
frame rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortmp.media.avc import read_vui_head
from aiortmp.media.bitreader import BitReader, remove_emulation_prevention
from aiortmp.media.errors import CodecHeaderError

__all__ = [
    "HEVCDecoderConfigurationRecord",
    "HEVCNALUnitArray",
    "HEVCProfileTierLevel",
    "HEVCSequenceParameterSet",
    "NAL_UNIT_TYPE_PPS",
    "NAL_UNIT_TYPE_SPS",
    "NAL_UNIT_TYPE_VPS",
    "hevc_level_name",
    "hevc_profile_name",
    "parse_hevc_decoder_configuration_record",
    "parse_hevc_sps",
]

NAL_UNIT_TYPE_VPS = 32
NAL_UNIT_TYPE_SPS = 33
NAL_UNIT_TYPE_PPS = 34

_RECORD_HEADER_BYTES = 23
# Bounds from the H.265 semantics, checked so a hostile SPS cannot make us loop long.
_MAX_SUB_LAYERS_MINUS1 = 6  # "sps_max_sub_layers_minus1 ... in the range of 0 to 6"
_MAX_SPS_ID = 15
_MAX_SHORT_TERM_REF_PIC_SETS = 64
_MAX_DELTA_POCS = 16  # num_negative_pics + num_positive_pics <= sps_max_dec_pic_buffering
_MAX_LONG_TERM_REF_PICS_SPS = 32
_MAX_BIT_DEPTH_MINUS8 = 8
_MAX_LOG2_MAX_POC_LSB_MINUS4 = 12
# H.265 Table 6-1: (SubWidthC, SubHeightC) per chroma_format_idc.
_CHROMA_SUBSAMPLING = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}

# H.265 Annex A general_profile_idc values.
_PROFILE_NAMES = {
    1: "Main",
    2: "Main 10",
    3: "Main Still Picture",
    4: "Format Range Extensions",
    5: "High Throughput",
    6: "Multiview Main",
    7: "Scalable Main",
    8: "3D Main",
    9: "Screen Content Coding Extensions",
    10: "Scalable Format Range Extensions",
    11: "High Throughput Screen Content Coding Extensions",
}

# H.265 Table A.2: the format range extensions profiles, keyed by the general
# max_12bit, max_10bit, max_8bit, max_422chroma, max_420chroma, max_monochrome,
# intra and one_picture_only constraint flags (lower_bit_rate is left out: it only
# separates the Intra profiles' two bit rate variants).
_RANGE_EXTENSIONS_PROFILES: dict[tuple[int, ...], str] = {
    (1, 1, 1, 1, 1, 1, 0, 0): "Monochrome",
    (1, 1, 0, 1, 1, 1, 0, 0): "Monochrome 10",
    (1, 0, 0, 1, 1, 1, 0, 0): "Monochrome 12",
    (0, 0, 0, 1, 1, 1, 0, 0): "Monochrome 16",
    (1, 0, 0, 1, 1, 0, 0, 0): "Main 12",
    (1, 1, 0, 1, 0, 0, 0, 0): "Main 4:2:2 10",
    (1, 0, 0, 1, 0, 0, 0, 0): "Main 4:2:2 12",
    (1, 1, 1, 0, 0, 0, 0, 0): "Main 4:4:4",
    (1, 1, 0, 0, 0, 0, 0, 0): "Main 4:4:4 10",
    (1, 0, 0, 0, 0, 0, 0, 0): "Main 4:4:4 12",
    (1, 1, 1, 1, 1, 0, 1, 0): "Main Intra",
    (1, 1, 0, 1, 1, 0, 1, 0): "Main 10 Intra",
    (1, 0, 0, 1, 1, 0, 1, 0): "Main 12 Intra",
    (1, 1, 0, 1, 0, 0, 1, 0): "Main 4:2:2 10 Intra",
    (1, 0, 0, 1, 0, 0, 1, 0): "Main 4:2:2 12 Intra",
    (1, 1, 1, 0, 0, 0, 1, 0): "Main 4:4:4 Intra",
    (1, 1, 0, 0, 0, 0, 1, 0): "Main 4:4:4 10 Intra",
    (1, 0, 0, 0, 0, 0, 1, 0): "Main 4:4:4 12 Intra",
    (0, 0, 0, 0, 0, 0, 1, 0): "Main 4:4:4 16 Intra",
    (1, 1, 1, 0, 0, 0, 1, 1): "Main 4:4:4 Still Picture",
    (0, 0, 0, 0, 0, 0, 1, 1): "Main 4:4:4 16 Still Picture",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class HEVCNALUnitArray:
    """One array of an ``HEVCDecoderConfigurationRecord``.

    Attributes:
        nal_unit_type: ``NAL_unit_type`` (32 VPS, 33 SPS, 34 PPS, 39/40 SEI).
        array_completeness: True when all NAL units of this type are in the array.
        nal_units: The NAL units, two-byte NAL header included.
    """

    nal_unit_type: int
    array_completeness: bool
    nal_units: tuple[bytes, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class HEVCDecoderConfigurationRecord:
    """An ``HEVCDecoderConfigurationRecord`` (ISO/IEC 14496-15 §8.3.3.1).

    Attributes:
        configuration_version: Always 1.
        general_profile_space: ``general_profile_space`` (0 for all known profiles).
        general_tier_flag: False for the Main tier, True for the High tier.
        general_profile_idc: ``general_profile_idc`` (1 Main, 2 Main 10, ...).
        general_profile_compatibility_flags: The 32 compatibility flags, flag 0 as
            the most significant bit.
        general_constraint_indicator_flags: The 48 constraint flag bits.
        general_level_idc: Thirty times the level number (93 is level 3.1).
        chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
        bit_depth_luma: Luma bit depth, in bits.
        bit_depth_chroma: Chroma bit depth, in bits.
        avg_frame_rate: ``avgFrameRate`` in frames per 256 seconds (0: unspecified).
        constant_frame_rate: ``constantFrameRate`` (0, 1 or 2).
        num_temporal_layers: ``numTemporalLayers`` (0: unknown).
        nal_length_size_bytes: Size of the NAL unit length prefix in coded frames.
        arrays: The NAL unit arrays, in record order.
    """

    configuration_version: int
    general_profile_space: int
    general_tier_flag: bool
    general_profile_idc: int
    general_profile_compatibility_flags: int
    general_constraint_indicator_flags: int
    general_level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    avg_frame_rate: int
    constant_frame_rate: int
    num_temporal_layers: int
    nal_length_size_bytes: int
    arrays: tuple[HEVCNALUnitArray, ...]

    def nal_units_of_type(self, nal_unit_type: int) -> tuple[bytes, ...]:
        """Return every NAL unit of one type, from all arrays.

        Args:
            nal_unit_type: E.g. :data:`NAL_UNIT_TYPE_SPS`.

        Returns:
            The NAL units, in record order.
        """
        return tuple(
            unit
            for array in self.arrays
            for unit in array.nal_units
            if (unit[0] >> 1) & 0x3F == nal_unit_type
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class HEVCProfileTierLevel:
    """The general part of ``profile_tier_level()`` (H.265 §7.3.3).

    Attributes:
        profile_space: ``general_profile_space``.
        tier_flag: ``general_tier_flag`` (True: High tier).
        profile_idc: ``general_profile_idc``.
        profile_compatibility_flags: 32 bits, flag 0 as the most significant bit.
        constraint_flags: The 48 bits from ``general_progressive_source_flag`` to
            ``general_inbld_flag``/reserved, as in the configuration record.
        level_idc: ``general_level_idc``.
    """

    profile_space: int
    tier_flag: bool
    profile_idc: int
    profile_compatibility_flags: int
    constraint_flags: int
    level_idc: int


@dataclass(frozen=True, kw_only=True, slots=True)
class HEVCSequenceParameterSet:
    """What an operator wants from an H.265 SPS (H.265 §7.3.2.2, VUI §E.2.1).

    Attributes:
        sps_max_sub_layers: ``sps_max_sub_layers_minus1 + 1``.
        profile_tier_level: The general profile, tier and level.
        seq_parameter_set_id: ``sps_seq_parameter_set_id``.
        chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
        separate_colour_plane: ``separate_colour_plane_flag``.
        coded_width: ``pic_width_in_luma_samples``.
        coded_height: ``pic_height_in_luma_samples``.
        width: Width in luma samples inside the conformance window.
        height: Height in luma samples inside the conformance window.
        bit_depth_luma: Luma bit depth, in bits.
        bit_depth_chroma: Chroma bit depth, in bits.
        sar_width: Sample aspect ratio numerator, or None when not signalled.
        sar_height: Sample aspect ratio denominator, or None when not signalled.
        field_seq: VUI ``field_seq_flag``: each picture is a field, so the size and
            rate above are per field.
        num_units_in_tick: VUI ``vui_num_units_in_tick``, or None.
        time_scale_hz: VUI ``vui_time_scale``, or None.
        frame_rate: ``vui_time_scale / vui_num_units_in_tick`` in pictures per
            second, or None when the VUI does not signal timing.
    """

    sps_max_sub_layers: int
    profile_tier_level: HEVCProfileTierLevel
    seq_parameter_set_id: int
    chroma_format_idc: int
    separate_colour_plane: bool
    coded_width: int
    coded_height: int
    width: int
    height: int
    bit_depth_luma: int
    bit_depth_chroma: int
    sar_width: int | None
    sar_height: int | None
    field_seq: bool
    num_units_in_tick: int | None
    time_scale_hz: int | None
    frame_rate: float | None


def parse_hevc_decoder_configuration_record(
    record: bytes | bytearray | memoryview,
) -> HEVCDecoderConfigurationRecord:
    """Parse an ``HEVCDecoderConfigurationRecord`` (ISO/IEC 14496-15 §8.3.3.1.2).

    Trailing bytes after the last array are ignored.

    Args:
        record: The record bytes (the sequence start body after the tag header).

    Returns:
        The parsed record.

    Raises:
        CodecHeaderError: The record is truncated, has a version other than 1, or an
            array overruns the data.
    """
    data = bytes(record)
    what = "HEVCDecoderConfigurationRecord"
    if len(data) < _RECORD_HEADER_BYTES:
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    # Version 0 records were written by early drafts and some encoders; the layout
    # is the same.
    if data[0] not in (0, 1):
        raise CodecHeaderError(f"{what}: unsupported configurationVersion {data[0]}")
    num_arrays = data[22]
    offset = _RECORD_HEADER_BYTES
    arrays = []
    for _ in range(num_arrays):
        if offset + 3 > len(data):
            raise CodecHeaderError(f"{what}: truncated NAL unit array header")
        completeness = bool(data[offset] & 0x80)
        nal_unit_type = data[offset] & 0x3F
        num_nalus = int.from_bytes(data[offset + 1 : offset + 3], "big")
        offset += 3
        units = []
        # Each NAL unit takes at least its 2-byte length, so the data bounds the loop.
        for _ in range(num_nalus):
            if offset + 2 > len(data):
                raise CodecHeaderError(f"{what}: truncated nalUnitLength")
            length = int.from_bytes(data[offset : offset + 2], "big")
            offset += 2
            if length < 2 or offset + length > len(data):
                raise CodecHeaderError(f"{what}: NAL unit of {length} bytes does not fit")
            units.append(data[offset : offset + length])
            offset += length
        arrays.append(
            HEVCNALUnitArray(
                nal_unit_type=nal_unit_type,
                array_completeness=completeness,
                nal_units=tuple(units),
            )
        )
    return HEVCDecoderConfigurationRecord(
        configuration_version=data[0],
        general_profile_space=data[1] >> 6,
        general_tier_flag=bool(data[1] & 0x20),
        general_profile_idc=data[1] & 0x1F,
        general_profile_compatibility_flags=int.from_bytes(data[2:6], "big"),
        general_constraint_indicator_flags=int.from_bytes(data[6:12], "big"),
        general_level_idc=data[12],
        chroma_format_idc=data[16] & 0x03,
        bit_depth_luma=(data[17] & 0x07) + 8,
        bit_depth_chroma=(data[18] & 0x07) + 8,
        avg_frame_rate=int.from_bytes(data[19:21], "big"),
        constant_frame_rate=data[21] >> 6,
        num_temporal_layers=(data[21] >> 3) & 0x07,
        nal_length_size_bytes=(data[21] & 0x03) + 1,
        arrays=tuple(arrays),
    )


def _read_ue_max(reader: BitReader, name: str, maximum: int) -> int:
    value = reader.read_ue()
    if value > maximum:
        raise CodecHeaderError(f"H.265 SPS: {name} {value} exceeds {maximum}")
    return value


def _parse_profile_tier_level(
    reader: BitReader, max_sub_layers_minus1: int
) -> HEVCProfileTierLevel:
    """Parse ``profile_tier_level(1, sps_max_sub_layers_minus1)`` (H.265 §7.3.3)."""
    profile_space = reader.read_bits(2)
    tier_flag = reader.read_flag()
    profile_idc = reader.read_bits(5)
    compatibility = reader.read_bits(32)
    # progressive/interlaced/non-packed/frame-only (4 bits), 43 bits of profile
    # constraints, then general_inbld_flag or a reserved bit: 48 bits in all.
    constraint_flags = reader.read_bits(48)
    level_idc = reader.read_bits(8)
    profile_present = []
    level_present = []
    for _ in range(max_sub_layers_minus1):
        profile_present.append(reader.read_flag())
        level_present.append(reader.read_flag())
    if max_sub_layers_minus1 > 0:
        reader.skip_bits(2 * (8 - max_sub_layers_minus1))  # reserved_zero_2bits
    for index in range(max_sub_layers_minus1):
        if profile_present[index]:
            reader.skip_bits(88)  # sub_layer profile space .. inbld/reserved
        if level_present[index]:
            reader.skip_bits(8)  # sub_layer_level_idc
    return HEVCProfileTierLevel(
        profile_space=profile_space,
        tier_flag=tier_flag,
        profile_idc=profile_idc,
        profile_compatibility_flags=compatibility,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
    )


def _skip_scaling_list_data(reader: BitReader) -> None:
    """Skip ``scaling_list_data()`` (H.265 §7.3.4)."""
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not reader.read_flag():  # scaling_list_pred_mode_flag
                reader.read_ue()  # scaling_list_pred_matrix_id_delta
                continue
            coef_num = min(64, 1 << (4 + (size_id << 1)))
            if size_id > 1:
                reader.read_se()  # scaling_list_dc_coef_minus8
            for _ in range(coef_num):
                reader.read_se()  # scaling_list_delta_coef


# A short-term reference picture set as (DeltaPocS0, DeltaPocS1): negative and
# positive POC deltas, which later sets may be predicted from (H.265 §7.4.8).
_RefPicSet = tuple[tuple[int, ...], tuple[int, ...]]


def _parse_st_ref_pic_set(reader: BitReader, index: int, sets: list[_RefPicSet]) -> _RefPicSet:
    """Parse ``st_ref_pic_set(stRpsIdx)`` in an SPS (H.265 §7.3.7, §7.4.8).

    The number of flags to read for a predicted set depends on how many deltas the
    reference set has, so the deltas are derived exactly as (7-61) and (7-62) say.
    """
    if index != 0 and reader.read_flag():  # inter_ref_pic_set_prediction_flag
        # In an SPS delta_idx_minus1 is absent and inferred to be 0.
        ref_s0, ref_s1 = sets[index - 1]
        delta_rps_sign = reader.read_bit()
        abs_delta_rps = reader.read_ue() + 1
        if abs_delta_rps > 1 << 15:
            raise CodecHeaderError(f"H.265 SPS: abs_delta_rps_minus1 {abs_delta_rps - 1}")
        delta_rps = -abs_delta_rps if delta_rps_sign else abs_delta_rps
        num_ref = len(ref_s0) + len(ref_s1)
        use_delta = []
        for _ in range(num_ref + 1):
            used_by_curr_pic = reader.read_flag()
            # "When use_delta_flag[j] is not present, its value is inferred to be 1."
            use_delta.append(True if used_by_curr_pic else reader.read_flag())
        s0: list[int] = []
        for j in range(len(ref_s1) - 1, -1, -1):
            d_poc = ref_s1[j] + delta_rps
            if d_poc < 0 and use_delta[len(ref_s0) + j]:
                s0.append(d_poc)
        if delta_rps < 0 and use_delta[num_ref]:
            s0.append(delta_rps)
        for j in range(len(ref_s0)):
            d_poc = ref_s0[j] + delta_rps
            if d_poc < 0 and use_delta[j]:
                s0.append(d_poc)
        s1: list[int] = []
        for j in range(len(ref_s0) - 1, -1, -1):
            d_poc = ref_s0[j] + delta_rps
            if d_poc > 0 and use_delta[j]:
                s1.append(d_poc)
        if delta_rps > 0 and use_delta[num_ref]:
            s1.append(delta_rps)
        for j in range(len(ref_s1)):
            d_poc = ref_s1[j] + delta_rps
            if d_poc > 0 and use_delta[len(ref_s0) + j]:
                s1.append(d_poc)
        if len(s0) + len(s1) > _MAX_DELTA_POCS:
            raise CodecHeaderError("H.265 SPS: predicted reference picture set too large")
        return tuple(s0), tuple(s1)

    num_negative = _read_ue_max(reader, "num_negative_pics", _MAX_DELTA_POCS)
    num_positive = _read_ue_max(reader, "num_positive_pics", _MAX_DELTA_POCS - num_negative)
    poc = 0
    negatives = []
    for _ in range(num_negative):
        poc -= reader.read_ue() + 1  # delta_poc_s0_minus1
        reader.skip_bits(1)  # used_by_curr_pic_s0_flag
        negatives.append(poc)
    poc = 0
    positives = []
    for _ in range(num_positive):
        poc += reader.read_ue() + 1  # delta_poc_s1_minus1
        reader.skip_bits(1)  # used_by_curr_pic_s1_flag
        positives.append(poc)
    return tuple(negatives), tuple(positives)


def parse_hevc_sps(nal_unit: bytes | bytearray | memoryview) -> HEVCSequenceParameterSet:
    """Parse an H.265 sequence parameter set (H.265 §7.3.2.2.1, VUI §E.2.1).

    Parsing stops after the VUI timing information; HRD parameters and SPS
    extensions are not read.

    Args:
        nal_unit: The SPS NAL unit, starting with its two-byte NAL header, with or
            without emulation prevention bytes removed.

    Returns:
        The fields operators look at, with the conformance-window size and frame rate.

    Raises:
        CodecHeaderError: The NAL unit is not an SPS, is truncated, or holds values
            outside the ranges H.265 allows.
    """
    rbsp = remove_emulation_prevention(nal_unit)
    if len(rbsp) < 2:
        raise CodecHeaderError("H.265 SPS is truncated")
    nal_unit_type = (rbsp[0] >> 1) & 0x3F
    if nal_unit_type != NAL_UNIT_TYPE_SPS:
        raise CodecHeaderError(f"H.265 SPS: NAL unit type is {nal_unit_type}, not 33")
    reader = BitReader(rbsp[2:], "H.265 SPS")
    reader.skip_bits(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = reader.read_bits(3)
    if max_sub_layers_minus1 > _MAX_SUB_LAYERS_MINUS1:
        raise CodecHeaderError("H.265 SPS: sps_max_sub_layers_minus1 is 7")
    reader.skip_bits(1)  # sps_temporal_id_nesting_flag
    ptl = _parse_profile_tier_level(reader, max_sub_layers_minus1)
    sps_id = _read_ue_max(reader, "sps_seq_parameter_set_id", _MAX_SPS_ID)
    chroma_format_idc = _read_ue_max(reader, "chroma_format_idc", 3)
    separate_colour_plane = chroma_format_idc == 3 and reader.read_flag()
    coded_width = reader.read_ue()
    coded_height = reader.read_ue()
    if coded_width == 0 or coded_height == 0:
        raise CodecHeaderError("H.265 SPS: picture size is zero")
    width, height = coded_width, coded_height
    if reader.read_flag():  # conformance_window_flag
        left, right, top, bottom = (reader.read_ue() for _ in range(4))
        # "ChromaArrayType = separate_colour_plane_flag ? 0 : chroma_format_idc";
        # offsets are in units of SubWidthC x SubHeightC luma samples (7.4.3.2.1).
        chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
        sub_width, sub_height = _CHROMA_SUBSAMPLING[chroma_array_type]
        width -= sub_width * (left + right)
        height -= sub_height * (top + bottom)
        if width <= 0 or height <= 0:
            raise CodecHeaderError("H.265 SPS: conformance window leaves no picture")
    bit_depth_luma = 8 + _read_ue_max(reader, "bit_depth_luma_minus8", _MAX_BIT_DEPTH_MINUS8)
    bit_depth_chroma = 8 + _read_ue_max(reader, "bit_depth_chroma_minus8", _MAX_BIT_DEPTH_MINUS8)
    log2_max_poc_lsb = 4 + _read_ue_max(
        reader, "log2_max_pic_order_cnt_lsb_minus4", _MAX_LOG2_MAX_POC_LSB_MINUS4
    )
    ordering_info_present = reader.read_flag()
    first_layer = 0 if ordering_info_present else max_sub_layers_minus1
    for _ in range(first_layer, max_sub_layers_minus1 + 1):
        reader.read_ue()  # sps_max_dec_pic_buffering_minus1
        reader.read_ue()  # sps_max_num_reorder_pics
        reader.read_ue()  # sps_max_latency_increase_plus1
    for _ in range(6):
        # log2_min_luma_coding_block_size_minus3 .. max_transform_hierarchy_depth_intra
        reader.read_ue()
    if reader.read_flag() and reader.read_flag():
        # scaling_list_enabled_flag and sps_scaling_list_data_present_flag
        _skip_scaling_list_data(reader)
    reader.skip_bits(2)  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if reader.read_flag():  # pcm_enabled_flag
        reader.skip_bits(8)  # pcm_sample_bit_depth_luma/chroma_minus1
        reader.read_ue()  # log2_min_pcm_luma_coding_block_size_minus3
        reader.read_ue()  # log2_diff_max_min_pcm_luma_coding_block_size
        reader.skip_bits(1)  # pcm_loop_filter_disabled_flag
    num_sets = _read_ue_max(reader, "num_short_term_ref_pic_sets", _MAX_SHORT_TERM_REF_PIC_SETS)
    sets: list[_RefPicSet] = []
    for index in range(num_sets):
        sets.append(_parse_st_ref_pic_set(reader, index, sets))
    if reader.read_flag():  # long_term_ref_pics_present_flag
        count = _read_ue_max(reader, "num_long_term_ref_pics_sps", _MAX_LONG_TERM_REF_PICS_SPS)
        for _ in range(count):
            # lt_ref_pic_poc_lsb_sps is u(v) with log2_max_pic_order_cnt_lsb bits,
            # followed by used_by_curr_pic_lt_sps_flag.
            reader.skip_bits(log2_max_poc_lsb + 1)
    reader.skip_bits(2)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing

    sar_width = sar_height = None
    field_seq = False
    num_units_in_tick = time_scale = None
    frame_rate = None
    if reader.read_flag():  # vui_parameters_present_flag
        sar_width, sar_height = read_vui_head(reader)
        reader.skip_bits(1)  # neutral_chroma_indication_flag
        field_seq = reader.read_flag()
        reader.skip_bits(1)  # frame_field_info_present_flag
        if reader.read_flag():  # default_display_window_flag
            for _ in range(4):
                reader.read_ue()
        if reader.read_flag():  # vui_timing_info_present_flag
            num_units_in_tick = reader.read_bits(32)
            time_scale = reader.read_bits(32)
            # Unlike H.264, one HEVC clock tick is one picture: "vui_num_units_in_tick
            # is the number of time units ... that corresponds to one increment ... of
            # a clock tick counter", and a picture lasts one tick (E.3.1).
            if num_units_in_tick > 0 and time_scale > 0:
                frame_rate = time_scale / num_units_in_tick

    return HEVCSequenceParameterSet(
        sps_max_sub_layers=max_sub_layers_minus1 + 1,
        profile_tier_level=ptl,
        seq_parameter_set_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        separate_colour_plane=separate_colour_plane,
        coded_width=coded_width,
        coded_height=coded_height,
        width=width,
        height=height,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        sar_width=sar_width,
        sar_height=sar_height,
        field_seq=field_seq,
        num_units_in_tick=num_units_in_tick,
        time_scale_hz=time_scale,
        frame_rate=frame_rate,
    )


def hevc_profile_name(
    profile_idc: int, compatibility_flags: int = 0, constraint_flags: int = 0
) -> str:
    """Name an H.265 profile as users know it (H.265 Annex A.3).

    Args:
        profile_idc: ``general_profile_idc``.
        compatibility_flags: The 32 ``general_profile_compatibility_flag`` bits, flag
            0 as the most significant bit; used when ``profile_idc`` is 0 or unknown
            ("decoders shall ... infer" the profile from a set flag, A.3).
        constraint_flags: The 48 general constraint bits (as in the configuration
            record), which select among the range extensions profiles (Table A.2).

    Returns:
        The profile name, e.g. ``"Main 10"`` or ``"Main 4:4:4"``, or
        ``"Unknown (N)"``.
    """
    if profile_idc not in _PROFILE_NAMES:
        for candidate in range(1, 32):
            if compatibility_flags & (1 << (31 - candidate)) and candidate in _PROFILE_NAMES:
                profile_idc = candidate
                break
        else:
            return f"Unknown ({profile_idc})"
    if profile_idc == 4:
        # The 48 bits start with progressive, interlaced, non-packed, frame-only;
        # the range extension flags follow.
        flags = tuple((constraint_flags >> (43 - bit)) & 1 for bit in range(8))
        return _RANGE_EXTENSIONS_PROFILES.get(flags, _PROFILE_NAMES[4])
    return _PROFILE_NAMES[profile_idc]


def hevc_level_name(level_idc: int) -> str:
    """Name an H.265 level (H.265 Annex A.4: ``general_level_idc`` is 30 x level).

    Args:
        level_idc: ``general_level_idc``.

    Returns:
        ``"X.Y"``: 93 gives ``"3.1"``, 120 gives ``"4.0"``.
    """
    return f"{level_idc // 30}.{(level_idc % 30) // 3}"
