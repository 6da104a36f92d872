"""AV1: the codec configuration record and the sequence header OBU.

An RTMP publisher starts an AV1 stream with an ``AV1CodecConfigurationRecord``
(AV1 Codec ISOBMFF Binding §2.3; E-RTMP v2 ``SequenceStart`` for ``av01``). Its
fixed four bytes give the profile, level, tier, bit depth and chroma subsampling;
its ``configOBUs`` normally hold the sequence header OBU (AV1 spec §5.5), which gives
the maximum frame size and, when present, the timing information.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from aiortmp.media.bitreader import BitReader
from aiortmp.media.errors import CodecHeaderError

__all__ = [
    "AV1CodecConfigurationRecord",
    "AV1SequenceHeader",
    "OBU_SEQUENCE_HEADER",
    "av1_level_name",
    "av1_profile_name",
    "iter_obus",
    "parse_av1_codec_configuration_record",
    "parse_av1_sequence_header",
]

OBU_SEQUENCE_HEADER = 1
_LEB128_MAX_BYTES = 8  # AV1 spec §4.10.5: "for (i = 0; i < 8; i++)"
_SELECT_SCREEN_CONTENT_TOOLS = 2
_PROFILE_NAMES = {0: "Main", 1: "High", 2: "Professional"}


@dataclass(frozen=True, kw_only=True, slots=True)
class AV1SequenceHeader:
    """The fields of an AV1 sequence header OBU that describe the stream (AV1 §5.5).

    Attributes:
        seq_profile: 0 Main, 1 High, 2 Professional.
        still_picture: ``still_picture``.
        reduced_still_picture_header: ``reduced_still_picture_header``.
        seq_level_idx: ``seq_level_idx`` of operating point 0.
        seq_tier: ``seq_tier`` of operating point 0 (0 Main, 1 High).
        operating_points: ``operating_points_cnt_minus_1 + 1``.
        max_frame_width: ``max_frame_width_minus_1 + 1``, in pixels.
        max_frame_height: ``max_frame_height_minus_1 + 1``, in pixels.
        num_units_in_display_tick: From ``timing_info()``, or None when absent.
        time_scale_hz: From ``timing_info()``, or None when absent.
        equal_picture_interval: From ``timing_info()``, or None when absent.
        num_ticks_per_picture: ``num_ticks_per_picture_minus_1 + 1`` when the picture
            interval is constant, else None.
        bit_depth: ``BitDepth`` from ``color_config()`` (8, 10 or 12).
        mono_chrome: ``mono_chrome``.
        subsampling_x: ``subsampling_x``.
        subsampling_y: ``subsampling_y``.
        frame_rate: ``time_scale / (num_units_in_display_tick *
            num_ticks_per_picture)`` in frames per second, or None when the header
            does not signal a constant picture interval.
        color_primaries: ``color_primaries`` (2, CP_UNSPECIFIED, when not described).
        transfer_characteristics: ``transfer_characteristics`` (2 when not described).
        matrix_coefficients: ``matrix_coefficients`` (2 when not described).
        color_range: ``color_range`` (True: full range).
    """

    seq_profile: int
    still_picture: bool
    reduced_still_picture_header: bool
    seq_level_idx: int
    seq_tier: int
    operating_points: int
    max_frame_width: int
    max_frame_height: int
    num_units_in_display_tick: int | None
    time_scale_hz: int | None
    equal_picture_interval: bool | None
    num_ticks_per_picture: int | None
    bit_depth: int
    mono_chrome: bool
    subsampling_x: bool
    subsampling_y: bool
    frame_rate: float | None
    color_primaries: int = 2
    transfer_characteristics: int = 2
    matrix_coefficients: int = 2
    color_range: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class AV1CodecConfigurationRecord:
    """An ``AV1CodecConfigurationRecord`` (AV1 Codec ISOBMFF Binding §2.3.3).

    Attributes:
        version: Always 1.
        seq_profile: 0 Main, 1 High, 2 Professional.
        seq_level_idx_0: Level index of operating point 0 (31: no level constraint).
        seq_tier_0: Tier of operating point 0 (0 Main, 1 High).
        high_bitdepth: ``high_bitdepth``.
        twelve_bit: ``twelve_bit``.
        bit_depth: 8, 10 or 12, from the two flags above.
        monochrome: ``monochrome``.
        chroma_subsampling_x: ``chroma_subsampling_x``.
        chroma_subsampling_y: ``chroma_subsampling_y``.
        chroma_sample_position: ``chroma_sample_position``.
        initial_presentation_delay: ``initial_presentation_delay_minus_one + 1``, or
            None when not present.
        config_obus: The raw ``configOBUs`` bytes.
        sequence_header: The sequence header OBU found in ``configOBUs``, or None.
    """

    version: int
    seq_profile: int
    seq_level_idx_0: int
    seq_tier_0: int
    high_bitdepth: bool
    twelve_bit: bool
    bit_depth: int
    monochrome: bool
    chroma_subsampling_x: bool
    chroma_subsampling_y: bool
    chroma_sample_position: int
    initial_presentation_delay: int | None
    config_obus: bytes
    sequence_header: AV1SequenceHeader | None


def _read_leb128(data: bytes, offset: int) -> tuple[int, int]:
    """Read ``leb128()`` (AV1 §4.10.5); return (value, new offset)."""
    value = 0
    for index in range(_LEB128_MAX_BYTES):
        if offset >= len(data):
            raise CodecHeaderError("AV1 OBU: truncated leb128 size")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << (index * 7)
        if not byte & 0x80:
            break
    else:
        raise CodecHeaderError("AV1 OBU: leb128 size longer than 8 bytes")
    # "It is a requirement of bitstream conformance that the value returned from the
    # leb128 parsing process is less than or equal to (1 << 32) - 1."
    if value > (1 << 32) - 1:
        raise CodecHeaderError("AV1 OBU: leb128 size exceeds 2**32 - 1")
    return value, offset


def iter_obus(data: bytes | bytearray | memoryview) -> Iterator[tuple[int, bytes]]:
    """Split low-overhead-format OBUs (AV1 §5.3) into (obu_type, payload) pairs.

    An OBU without ``obu_has_size_field`` extends to the end of the data. OBUs are
    parsed lazily, so a caller that stops early never looks at what follows.

    Args:
        data: Concatenated OBUs, e.g. ``configOBUs`` or an E-RTMP coded frame.

    Yields:
        ``(obu_type, payload)`` for each OBU, the header and size field removed.

    Raises:
        CodecHeaderError: An OBU header is malformed or a size overruns the data.
    """
    buffer = bytes(data)
    offset = 0
    # Every OBU consumes at least its one-byte header, so the loop is bounded.
    while offset < len(buffer):
        header = buffer[offset]
        offset += 1
        if header & 0x80:
            raise CodecHeaderError("AV1 OBU: obu_forbidden_bit is set")
        obu_type = (header >> 3) & 0x0F
        if header & 0x04:  # obu_extension_flag
            if offset >= len(buffer):
                raise CodecHeaderError("AV1 OBU: truncated extension header")
            offset += 1
        if header & 0x02:  # obu_has_size_field
            size, offset = _read_leb128(buffer, offset)
        else:
            size = len(buffer) - offset
        if offset + size > len(buffer):
            raise CodecHeaderError(f"AV1 OBU: size {size} overruns the data")
        yield obu_type, buffer[offset : offset + size]
        offset += size


def parse_av1_sequence_header(payload: bytes | bytearray | memoryview) -> AV1SequenceHeader:
    """Parse ``sequence_header_obu()`` (AV1 spec §5.5.1) up to ``color_config()``.

    Args:
        payload: The OBU payload (after the OBU header and size; see
            :func:`iter_obus`).

    Returns:
        The stream-level fields, with the maximum frame size and frame rate.

    Raises:
        CodecHeaderError: The payload is truncated or has an invalid profile.
    """
    reader = BitReader(payload, "AV1 sequence header")
    seq_profile = reader.read_bits(3)
    if seq_profile > 2:
        raise CodecHeaderError(f"AV1 sequence header: seq_profile {seq_profile} is reserved")
    still_picture = reader.read_flag()
    reduced = reader.read_flag()
    num_units = time_scale = ticks_per_picture = None
    equal_picture_interval = None
    operating_points = 1
    seq_tier = 0
    if reduced:
        seq_level_idx = reader.read_bits(5)
    else:
        decoder_model_info_present = False
        buffer_delay_length = 0
        if reader.read_flag():  # timing_info_present_flag
            num_units = reader.read_bits(32)
            time_scale = reader.read_bits(32)
            equal_picture_interval = reader.read_flag()
            if equal_picture_interval:
                ticks_per_picture = reader.read_uvlc() + 1
            decoder_model_info_present = reader.read_flag()
            if decoder_model_info_present:
                buffer_delay_length = reader.read_bits(5) + 1
                reader.skip_bits(32 + 5 + 5)  # num_units_in_decoding_tick, lengths
        initial_display_delay_present = reader.read_flag()
        # At most 32 operating points: the count is a 5-bit field.
        operating_points = reader.read_bits(5) + 1
        seq_level_idx = seq_tier = 0
        for index in range(operating_points):
            reader.skip_bits(12)  # operating_point_idc[i]
            level = reader.read_bits(5)
            tier = reader.read_bits(1) if level > 7 else 0
            if index == 0:
                seq_level_idx, seq_tier = level, tier
            if decoder_model_info_present and reader.read_flag():
                # operating_parameters_info(): decoder/encoder_buffer_delay and
                # low_delay_mode_flag.
                reader.skip_bits(2 * buffer_delay_length + 1)
            if initial_display_delay_present and reader.read_flag():
                reader.skip_bits(4)  # initial_display_delay_minus_1[i]
    width_bits = reader.read_bits(4) + 1
    height_bits = reader.read_bits(4) + 1
    max_frame_width = reader.read_bits(width_bits) + 1
    max_frame_height = reader.read_bits(height_bits) + 1
    color = _parse_to_color_config(reader, seq_profile, reduced)

    frame_rate = None
    if num_units and time_scale and ticks_per_picture is not None:
        # A picture lasts num_ticks_per_picture display ticks of
        # num_units_in_display_tick / time_scale seconds each (§6.4.2).
        frame_rate = time_scale / (num_units * ticks_per_picture)
    return AV1SequenceHeader(
        seq_profile=seq_profile,
        still_picture=still_picture,
        reduced_still_picture_header=reduced,
        seq_level_idx=seq_level_idx,
        seq_tier=seq_tier,
        operating_points=operating_points,
        max_frame_width=max_frame_width,
        max_frame_height=max_frame_height,
        num_units_in_display_tick=num_units,
        time_scale_hz=time_scale,
        equal_picture_interval=equal_picture_interval,
        num_ticks_per_picture=ticks_per_picture,
        bit_depth=color.bit_depth,
        mono_chrome=color.mono_chrome,
        subsampling_x=color.subsampling_x,
        subsampling_y=color.subsampling_y,
        frame_rate=frame_rate,
        color_primaries=color.color_primaries,
        transfer_characteristics=color.transfer_characteristics,
        matrix_coefficients=color.matrix_coefficients,
        color_range=color.color_range,
    )


class _ColorConfig(NamedTuple):
    bit_depth: int
    mono_chrome: bool
    subsampling_x: bool
    subsampling_y: bool
    color_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int
    color_range: bool


def _parse_to_color_config(reader: BitReader, seq_profile: int, reduced: bool) -> _ColorConfig:
    """Skip the coding tool flags and parse ``color_config()`` (AV1 §5.5.1, §5.5.2)."""
    frame_id_numbers_present = False if reduced else reader.read_flag()
    if frame_id_numbers_present:
        reader.skip_bits(4 + 3)  # delta_frame_id_length_minus_2, additional_..._minus_1
    reader.skip_bits(3)  # use_128x128_superblock, enable_filter_intra, intra_edge
    if not reduced:
        # enable_interintra_compound, enable_masked_compound, enable_warped_motion,
        # enable_dual_filter
        reader.skip_bits(4)
        enable_order_hint = reader.read_flag()
        if enable_order_hint:
            reader.skip_bits(2)  # enable_jnt_comp, enable_ref_frame_mvs
        seq_force_screen_content_tools = _SELECT_SCREEN_CONTENT_TOOLS
        if not reader.read_flag():  # seq_choose_screen_content_tools
            seq_force_screen_content_tools = reader.read_bits(1)
        if seq_force_screen_content_tools > 0 and not reader.read_flag():
            # seq_choose_integer_mv is 0: seq_force_integer_mv follows.
            reader.skip_bits(1)
        if enable_order_hint:
            reader.skip_bits(3)  # order_hint_bits_minus_1
    reader.skip_bits(3)  # enable_superres, enable_cdef, enable_restoration

    # color_config()
    high_bitdepth = reader.read_flag()
    if seq_profile == 2 and high_bitdepth:
        bit_depth = 12 if reader.read_flag() else 10
    else:
        bit_depth = 10 if high_bitdepth else 8
    mono_chrome = False if seq_profile == 1 else reader.read_flag()
    color_primaries = transfer = matrix = 2  # CP/TC/MC_UNSPECIFIED
    if reader.read_flag():  # color_description_present_flag
        color_primaries = reader.read_bits(8)
        transfer = reader.read_bits(8)
        matrix = reader.read_bits(8)
    colors = (color_primaries, transfer, matrix)
    if mono_chrome:
        color_range = reader.read_flag()
        return _ColorConfig(bit_depth, True, True, True, *colors, color_range)
    # CP_BT_709 (1), TC_SRGB (13), MC_IDENTITY (0): 4:4:4 RGB, no further fields
    # ("color_range = 1").
    if color_primaries == 1 and transfer == 13 and matrix == 0:
        return _ColorConfig(bit_depth, False, False, False, *colors, True)
    color_range = reader.read_flag()
    if seq_profile == 0:
        subsampling_x = subsampling_y = True
    elif seq_profile == 1:
        subsampling_x = subsampling_y = False
    elif bit_depth == 12:
        subsampling_x = reader.read_flag()
        subsampling_y = reader.read_flag() if subsampling_x else False
    else:
        subsampling_x, subsampling_y = True, False
    return _ColorConfig(bit_depth, False, subsampling_x, subsampling_y, *colors, color_range)


def parse_av1_codec_configuration_record(
    record: bytes | bytearray | memoryview,
) -> AV1CodecConfigurationRecord:
    """Parse an ``AV1CodecConfigurationRecord`` (AV1 Codec ISOBMFF Binding §2.3.3).

    The first sequence header OBU in ``configOBUs`` is parsed too; the record is
    accepted without one (``configOBUs`` may be empty).

    Args:
        record: The record bytes (the sequence start body after the tag header).

    Returns:
        The parsed record.

    Raises:
        CodecHeaderError: The record is shorter than 4 bytes, its marker is not 1 or
            its version is not 1, or ``configOBUs`` holds a malformed OBU.
    """
    data = bytes(record)
    what = "AV1CodecConfigurationRecord"
    if len(data) < 4:
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    if not data[0] & 0x80:
        raise CodecHeaderError(f"{what}: marker bit is 0")
    version = data[0] & 0x7F
    if version != 1:
        raise CodecHeaderError(f"{what}: unsupported version {version}")
    high_bitdepth = bool(data[2] & 0x40)
    twelve_bit = bool(data[2] & 0x20)
    seq_profile = data[1] >> 5
    if seq_profile == 2 and high_bitdepth:
        bit_depth = 12 if twelve_bit else 10
    else:
        bit_depth = 10 if high_bitdepth else 8
    config_obus = data[4:]
    sequence_header = None
    for obu_type, payload in iter_obus(config_obus):
        if obu_type == OBU_SEQUENCE_HEADER:
            sequence_header = parse_av1_sequence_header(payload)
            break
    return AV1CodecConfigurationRecord(
        version=version,
        seq_profile=seq_profile,
        seq_level_idx_0=data[1] & 0x1F,
        seq_tier_0=data[2] >> 7,
        high_bitdepth=high_bitdepth,
        twelve_bit=twelve_bit,
        bit_depth=bit_depth,
        monochrome=bool(data[2] & 0x10),
        chroma_subsampling_x=bool(data[2] & 0x08),
        chroma_subsampling_y=bool(data[2] & 0x04),
        chroma_sample_position=data[2] & 0x03,
        initial_presentation_delay=(data[3] & 0x0F) + 1 if data[3] & 0x10 else None,
        config_obus=config_obus,
        sequence_header=sequence_header,
    )


def av1_profile_name(seq_profile: int) -> str:
    """Name an AV1 profile (AV1 spec Annex A.2).

    Args:
        seq_profile: ``seq_profile``.

    Returns:
        ``"Main"``, ``"High"``, ``"Professional"`` or ``"Unknown (N)"``.
    """
    return _PROFILE_NAMES.get(seq_profile, f"Unknown ({seq_profile})")


def av1_level_name(seq_level_idx: int) -> str | None:
    """Name an AV1 level (AV1 spec Annex A.3: level X.Y has ``seq_level_idx``
    ``(X - 2) * 4 + Y``).

    Args:
        seq_level_idx: ``seq_level_idx``.

    Returns:
        ``"X.Y"`` (5 gives ``"3.1"``), or None for 31, which places no level
        constraint.
    """
    if seq_level_idx == 31:
        return None
    return f"{2 + (seq_level_idx >> 2)}.{seq_level_idx & 3}"
