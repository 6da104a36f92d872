"""VP8/VP9: the codec configuration record and keyframe sizes.

An RTMP publisher starts a VP9 (or VP8) stream with a ``VPCodecConfigurationRecord``
(VP Codec ISO Media File Format Binding §2.2; E-RTMP v2 ``SequenceStart`` for
``vp09``/``vp08``). It gives the profile, level, bit depth and chroma subsampling,
but not the picture size: that is in each keyframe's uncompressed header (VP9
Bitstream Specification §6.2) or, for VP8, its key frame header (RFC 6386 §9.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortmp.media.bitreader import BitReader
from aiortmp.media.errors import CodecHeaderError

__all__ = [
    "VP9FrameHeader",
    "VPCodecConfigurationRecord",
    "parse_vp8_frame_size",
    "parse_vp9_frame_header",
    "parse_vp9_frame_size",
    "parse_vp_codec_configuration_record",
    "vp_level_name",
]

_VP9_FRAME_MARKER = 2
_VP9_SYNC_CODE = 0x498342
_VP9_CS_RGB = 7
_VP8_START_CODE = b"\x9d\x01\x2a"
# VP Codec binding §2.2: chromaSubsampling values.
CHROMA_420_VERTICAL = 0
CHROMA_420_COLOCATED = 1
CHROMA_422 = 2
CHROMA_444 = 3
_VALID_BIT_DEPTHS = frozenset({8, 10, 12})


@dataclass(frozen=True, kw_only=True, slots=True)
class VPCodecConfigurationRecord:
    """A ``VPCodecConfigurationRecord`` (VP Codec ISO Media File Format Binding §2.2).

    Attributes:
        profile: The codec profile (0-3 for VP9, 0-3 for VP8).
        level: Ten times the level number (VP9 levels 1 to 6.2 are 10 to 62); 0 or
            another unlisted value means undefined.
        bit_depth: Bits per sample: 8, 10 or 12.
        chroma_subsampling: 0 4:2:0 vertical, 1 4:2:0 colocated, 2 4:2:2, 3 4:4:4.
        video_full_range: ``videoFullRangeFlag``.
        colour_primaries: ISO/IEC 23001-8 ``ColourPrimaries``.
        transfer_characteristics: ISO/IEC 23001-8 ``TransferCharacteristics``.
        matrix_coefficients: ISO/IEC 23001-8 ``MatrixCoefficients``.
        codec_initialization_data: Must be empty for VP8 and VP9.
    """

    profile: int
    level: int
    bit_depth: int
    chroma_subsampling: int
    video_full_range: bool
    colour_primaries: int
    transfer_characteristics: int
    matrix_coefficients: int
    codec_initialization_data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class VP9FrameHeader:
    """The start of a VP9 ``uncompressed_header()`` (VP9 Bitstream Spec §6.2).

    Attributes:
        profile: ``Profile`` (0-3).
        show_existing_frame: True when the frame only re-shows a decoded frame; the
            other fields are then None/False.
        key_frame: True for a key frame (``frame_type == KEY_FRAME``).
        intra_only: True for an intra-only (non-key) frame.
        show_frame: ``show_frame``.
        bit_depth: ``BitDepth`` for key and intra-only frames, else None.
        color_space: ``color_space`` for key frames (and intra-only frames of
            profile > 0), else None.
        width: ``frame_width_minus_1 + 1`` for key and intra-only frames, else None
            (inter frames may take their size from a reference frame).
        height: ``frame_height_minus_1 + 1``, as ``width``.
        render_width: The intended display width, or None as ``width``.
        render_height: The intended display height, or None as ``width``.
    """

    profile: int
    show_existing_frame: bool
    key_frame: bool
    intra_only: bool
    show_frame: bool
    bit_depth: int | None
    color_space: int | None
    width: int | None
    height: int | None
    render_width: int | None
    render_height: int | None


def parse_vp_codec_configuration_record(
    record: bytes | bytearray | memoryview,
) -> VPCodecConfigurationRecord:
    """Parse a ``VPCodecConfigurationRecord`` (VP Codec ISO Binding §2.2).

    FFmpeg (and so OBS and most E-RTMP publishers) sends the whole ``vpcC`` box
    payload: the FullBox ``version`` (1) and 24-bit ``flags`` (0) before the record.
    Both that form and the bare record are accepted: a bare record cannot start with
    ``01 00 00`` because its third byte holds a non-zero bit depth. The version 0
    layout of early drafts (``00 00 00 00`` prefix) is accepted too.

    Args:
        record: The record bytes (the sequence start body after the tag header).
            Trailing bytes after ``codecInitializationData`` are ignored.

    Returns:
        The parsed record.

    Raises:
        CodecHeaderError: The record is truncated or has an invalid bit depth or
            chroma subsampling.
    """
    data = bytes(record)
    what = "VPCodecConfigurationRecord"
    body = data
    version = 1
    if len(data) >= 4 and data[0] in (0, 1) and data[1:4] == b"\x00\x00\x00":
        version = data[0]
        body = data[4:]
    if len(body) < (7 if version == 0 else 8):
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    if version == 0:
        # Draft layout: profile, level, bitDepth(4) colorSpace(4),
        # chromaSubsampling(4) transferFunction(4), videoFullRangeFlag(1) reserved(7).
        bit_depth = body[2] >> 4
        chroma = body[3] >> 4
        full_range = bool(body[4] & 0x80)
        primaries = matrix = 2  # unspecified
        transfer = body[3] & 0x0F
        init_size = int.from_bytes(body[5:7], "big")
        init_start = 7
    else:
        bit_depth = body[2] >> 4
        chroma = (body[2] >> 1) & 0x07
        full_range = bool(body[2] & 0x01)
        primaries, transfer, matrix = body[3], body[4], body[5]
        init_size = int.from_bytes(body[6:8], "big")
        init_start = 8
    if bit_depth not in _VALID_BIT_DEPTHS:
        raise CodecHeaderError(f"{what}: bitDepth {bit_depth} is not 8, 10 or 12")
    if chroma > CHROMA_444:
        raise CodecHeaderError(f"{what}: chromaSubsampling {chroma} is reserved")
    if init_start + init_size > len(body):
        raise CodecHeaderError(f"{what}: codecInitializationData overruns the record")
    return VPCodecConfigurationRecord(
        profile=body[0],
        level=body[1],
        bit_depth=bit_depth,
        chroma_subsampling=chroma,
        video_full_range=full_range,
        colour_primaries=primaries,
        transfer_characteristics=transfer,
        matrix_coefficients=matrix,
        codec_initialization_data=body[init_start : init_start + init_size],
    )


def _read_vp9_color_config(reader: BitReader, profile: int) -> tuple[int, int]:
    """Parse ``color_config()`` (VP9 §6.2.2); return (BitDepth, color_space)."""
    bit_depth = 8
    if profile >= 2:
        bit_depth = 12 if reader.read_flag() else 10  # ten_or_twelve_bit
    color_space = reader.read_bits(3)
    if color_space != _VP9_CS_RGB:
        reader.skip_bits(1)  # color_range
        if profile in (1, 3):
            reader.skip_bits(3)  # subsampling_x, subsampling_y, reserved_zero
    elif profile in (1, 3):
        reader.skip_bits(1)  # reserved_zero
    else:
        # "It is a requirement of bitstream conformance that [RGB] ... is only used
        # with profile 1 or 3" (§7.2.2).
        raise CodecHeaderError("VP9 frame: RGB color space in profile 0 or 2")
    return bit_depth, color_space


def parse_vp9_frame_header(frame: bytes | bytearray | memoryview) -> VP9FrameHeader:
    """Parse the start of a VP9 ``uncompressed_header()`` (VP9 Bitstream Spec §6.2).

    Reads up to the frame and render size of key frames and intra-only frames. A
    superframe (Annex B) starts with its first frame, so it can be passed as is.

    Args:
        frame: A VP9 frame or superframe, e.g. an E-RTMP ``CodedFrames`` body.

    Returns:
        The frame header fields.

    Raises:
        CodecHeaderError: The frame marker or sync code is wrong, or the header is
            truncated.
    """
    reader = BitReader(frame, "VP9 uncompressed header")
    if reader.read_bits(2) != _VP9_FRAME_MARKER:
        raise CodecHeaderError("VP9 frame: frame_marker is not 2")
    profile_low = reader.read_bit()
    profile = (reader.read_bit() << 1) | profile_low
    if profile == 3 and reader.read_bit():
        raise CodecHeaderError("VP9 frame: reserved_zero bit after profile 3 is set")
    if reader.read_flag():  # show_existing_frame
        reader.skip_bits(3)  # frame_to_show_map_idx
        return VP9FrameHeader(
            profile=profile,
            show_existing_frame=True,
            key_frame=False,
            intra_only=False,
            show_frame=True,
            bit_depth=None,
            color_space=None,
            width=None,
            height=None,
            render_width=None,
            render_height=None,
        )
    key_frame = reader.read_bit() == 0  # frame_type: KEY_FRAME is 0
    show_frame = reader.read_flag()
    error_resilient_mode = reader.read_flag()
    intra_only = False
    bit_depth = color_space = None
    if key_frame:
        if reader.read_bits(24) != _VP9_SYNC_CODE:
            raise CodecHeaderError("VP9 frame: bad frame_sync_code")
        bit_depth, color_space = _read_vp9_color_config(reader, profile)
    else:
        intra_only = False if show_frame else reader.read_flag()
        if not error_resilient_mode:
            reader.skip_bits(2)  # reset_frame_context
        if not intra_only:
            return VP9FrameHeader(
                profile=profile,
                show_existing_frame=False,
                key_frame=False,
                intra_only=False,
                show_frame=show_frame,
                bit_depth=None,
                color_space=None,
                width=None,
                height=None,
                render_width=None,
                render_height=None,
            )
        if reader.read_bits(24) != _VP9_SYNC_CODE:
            raise CodecHeaderError("VP9 frame: bad frame_sync_code")
        if profile > 0:
            bit_depth, color_space = _read_vp9_color_config(reader, profile)
        else:
            bit_depth = 8
        reader.skip_bits(8)  # refresh_frame_flags
    width = reader.read_bits(16) + 1
    height = reader.read_bits(16) + 1
    render_width, render_height = width, height
    if reader.read_flag():  # render_and_frame_size_different
        render_width = reader.read_bits(16) + 1
        render_height = reader.read_bits(16) + 1
    return VP9FrameHeader(
        profile=profile,
        show_existing_frame=False,
        key_frame=key_frame,
        intra_only=intra_only,
        show_frame=show_frame,
        bit_depth=bit_depth,
        color_space=color_space,
        width=width,
        height=height,
        render_width=render_width,
        render_height=render_height,
    )


def parse_vp9_frame_size(frame: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """Return a VP9 key frame's size from its uncompressed header (VP9 §6.2.3).

    Args:
        frame: A VP9 frame or superframe.

    Returns:
        ``(width, height)`` in pixels for key frames and intra-only frames; None for
        inter frames and ``show_existing_frame`` frames, which carry no size.

    Raises:
        CodecHeaderError: The header is malformed or truncated.
    """
    header = parse_vp9_frame_header(frame)
    if header.width is None or header.height is None:
        return None
    return header.width, header.height


def parse_vp8_frame_size(frame: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """Return a VP8 key frame's size (RFC 6386 §9.1).

    Args:
        frame: A VP8 frame.

    Returns:
        ``(width, height)`` in pixels for key frames (the scaling bits are dropped);
        None for inter frames.

    Raises:
        CodecHeaderError: The frame is truncated or a key frame lacks the start code.
    """
    data = bytes(frame[:10])
    if len(data) < 3:
        raise CodecHeaderError("VP8 frame is truncated")
    # "key_frame ... 1-bit frame type (0 for key frames, 1 for interframes)".
    if data[0] & 0x01:
        return None
    if len(data) < 10:
        raise CodecHeaderError("VP8 key frame header is truncated")
    if data[3:6] != _VP8_START_CODE:
        raise CodecHeaderError("VP8 key frame: bad start code")
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    if width == 0 or height == 0:
        raise CodecHeaderError("VP8 key frame: zero picture size")
    return width, height


def vp_level_name(level: int) -> str | None:
    """Name a VP9 level (VP9 levels, as the VP Codec ISO Binding §2.2 codes them).

    Args:
        level: The record's ``level`` (ten times the level number).

    Returns:
        ``"X.Y"`` (21 gives ``"2.1"``), or None for 0 (undefined).
    """
    if level == 0:
        return None
    return f"{level // 10}.{level % 10}"
