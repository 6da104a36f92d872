"""RFC 6381 ``codecs`` parameter strings for the tracks the muxers carry.

HLS (``CODECS`` of ``EXT-X-STREAM-INF``), DASH and Media Source Extensions name a track's
codec with the ISO BMFF sample entry FourCC and, for most codecs, a suffix taken from its
decoder configuration. Each codec's ISO binding defines the suffix:

=========  ====================================  ==========================================
FourCC     example                               definition
=========  ====================================  ==========================================
``avc1``   ``avc1.64001f``                       RFC 6381 §3.3: profile_idc, constraint
                                                 flags, level_idc as hex
``hvc1``   ``hvc1.1.6.L93.B0``                   ISO/IEC 14496-15 Annex E.3
``vvc1``   ``vvc1.1.L51``                        ISO/IEC 14496-15 Annex E.6
``av01``   ``av01.0.08M.08``                     AV1-ISOBMFF, "Codecs Parameter String"
``vp09``   ``vp09.00.10.08``                     VP Codec ISO Binding, "Codecs Parameter
                                                 String"
``mp4a``   ``mp4a.40.2``                         RFC 6381 §3.3: OTI 0x40 + audioObjectType
``.mp3``   ``mp4a.40.34``                        as written by FFmpeg's hlsenc and read by
                                                 hls.js/Safari/Chrome (AOT 34 = Layer-3)
``Opus``   ``opus``                              Opus in ISO BMFF §4.4 (lower case)
``fLaC``   ``fLaC``                              FLAC in ISO BMFF §3.3 (the sample entry)
``ac-3``   ``ac-3``                              ETSI TS 102 366 Annex F
``ec-3``   ``ec-3``                              ETSI TS 102 366 Annex F
=========  ====================================  ==========================================

Only the configuration record is read: for AC-3/E-AC-3/MP3, which have none, the string is
fixed. (:class:`aiortmp.media.fmp4.FMP4Muxer` reports ``ec-3`` for an ``ac-3`` track whose
frames turn out to be E-AC-3.)
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortmp.media import audio_config, av1, avc, hevc, vp9
from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.samples import TrackConfig

__all__ = ["VVCConfigSummary", "codec_string", "parse_vvc_config_summary"]

# AV1-ISOBMFF: "mono_chrome 0, chroma_subsampling 110, color_primaries 1,
# transfer_characteristics 1, matrix_coefficients 1, video_full_range_flag 0" are the
# values assumed when the optional fields are absent. CP/TC/MC 2 ("unspecified") is the
# value of a stream that describes no colour, so it needs no long form either.
_DEFAULT_COLOURS = frozenset({(1, 1, 1), (2, 2, 2)})
# VP codec binding: chromaSubsampling 0 and 1 are both 4:2:0 (they differ in siting only).
_VP_420 = frozenset({vp9.CHROMA_420_VERTICAL, vp9.CHROMA_420_COLOCATED})
_HEVC_PROFILE_SPACES = ("", "A", "B", "C")


def _avc(record: bytes) -> str:
    config = avc.parse_avc_decoder_configuration_record(record)
    # RFC 6381 §3.3: "the hexadecimal representation of the following three bytes in the
    # (subset) sequence parameter set": profile_idc, the constraint flags, level_idc. The
    # record repeats them (ISO/IEC 14496-15 §5.3.3.1.2). Lower case as FFmpeg's hlsenc.
    return f"avc1.{config.profile_idc:02x}{config.profile_compatibility:02x}{config.level_idc:02x}"


def _reverse_bits32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def _hevc(record: bytes) -> str:
    config = hevc.parse_hevc_decoder_configuration_record(record)
    # ISO/IEC 14496-15 E.3: profile space as "", A, B, C followed by general_profile_idc;
    # the 32 compatibility flags "in reverse bit order" as hex without leading zeros; L/H
    # for the tier followed by general_level_idc; then the six constraint bytes as hex,
    # "trailing bytes that are zero may be omitted".
    parts = [
        "hvc1",
        f"{_HEVC_PROFILE_SPACES[config.general_profile_space]}{config.general_profile_idc}",
        f"{_reverse_bits32(config.general_profile_compatibility_flags):X}",
        f"{'H' if config.general_tier_flag else 'L'}{config.general_level_idc}",
    ]
    constraints = config.general_constraint_indicator_flags.to_bytes(6, "big").rstrip(b"\x00")
    parts.extend(f"{byte:02X}" for byte in constraints)
    return ".".join(parts)


@dataclass(frozen=True, kw_only=True, slots=True)
class VVCConfigSummary:
    """What a muxer needs from a ``VvcDecoderConfigurationRecord`` (ISO/IEC 14496-15
    §11.2.4.2).

    Attributes:
        record: The record without a FullBox version/flags prefix (the ``vvcC`` payload
            after its version and flags).
        nal_length_size_bytes: ``LengthSizeMinusOne + 1``.
        profile_idc: ``general_profile_idc`` of the native PTL, or None without PTL.
        tier_flag: ``general_tier_flag`` (True: High tier).
        level_idc: ``general_level_idc``.
        width: ``max_picture_width``, in luma samples (0 without PTL).
        height: ``max_picture_height``, in luma samples (0 without PTL).
    """

    record: bytes
    nal_length_size_bytes: int
    profile_idc: int | None
    tier_flag: bool
    level_idc: int
    width: int
    height: int


def parse_vvc_config_summary(record: bytes | bytearray | memoryview) -> VVCConfigSummary:
    """Read the header and native PTL of a ``VvcDecoderConfigurationRecord``.

    ISO/IEC 14496-15 §11.2.4.2.2: ``reserved '11111'b``, ``LengthSizeMinusOne``,
    ``ptl_present_flag``, then (when present) ``ols_idx``, ``num_sublayers``,
    ``constant_frame_rate``, ``chroma_format_idc``, ``bit_depth_minus8``, the
    ``VvcPTLRecord`` and ``max_picture_width``/``max_picture_height``. The record is
    accepted bare (as FFmpeg's FLV muxer sends it) or behind the 4-byte FullBox
    version/flags of the ``vvcC`` box.

    Args:
        record: The E-RTMP ``vvc1`` SequenceStart body.

    Returns:
        The summary.

    Raises:
        CodecHeaderError: The record is truncated or its reserved bits are wrong.
    """
    data = bytes(record)
    what = "VvcDecoderConfigurationRecord"
    # The record's first byte starts with five 1 bits, a FullBox version byte is 0.
    if len(data) >= 4 and data[0] == 0 and data[1:4] == b"\x00\x00\x00":
        data = data[4:]
    if not data:
        raise CodecHeaderError(f"{what} is empty")
    if data[0] >> 3 != 0x1F:
        raise CodecHeaderError(f"{what}: reserved bits of the first byte are not '11111'b")
    length_size = ((data[0] >> 1) & 0x03) + 1
    if length_size == 3:
        raise CodecHeaderError(f"{what}: LengthSizeMinusOne 2 is invalid")
    if not data[0] & 0x01:
        return VVCConfigSummary(
            record=data,
            nal_length_size_bytes=length_size,
            profile_idc=None,
            tier_flag=False,
            level_idc=0,
            width=0,
            height=0,
        )
    if len(data) < 7:
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    num_sublayers = (data[2] >> 4) & 0x07
    # VvcPTLRecord(num_sublayers) starts at byte 4.
    num_bytes_constraint_info = data[4] & 0x3F
    profile_idc = data[5] >> 1
    tier_flag = bool(data[5] & 0x01)
    level_idc = data[6]
    offset = 7 + num_bytes_constraint_info
    if num_bytes_constraint_info == 0:
        raise CodecHeaderError(f"{what}: num_bytes_constraint_info is 0")
    sublayer_present = 0
    if num_sublayers > 1:
        # ptl_sublayer_level_present_flag[num_sublayers - 2 .. 0], then reserved bits up
        # to a whole byte.
        if offset >= len(data):
            raise CodecHeaderError(f"{what} is truncated in its PTL")
        sublayer_present = bin(data[offset] >> (9 - num_sublayers)).count("1")
        offset += 1
    offset += sublayer_present  # sublayer_level_idc[i]
    if offset >= len(data):
        raise CodecHeaderError(f"{what} is truncated in its PTL")
    offset += 1 + 4 * data[offset]  # ptl_num_sub_profiles, general_sub_profile_idc[j]
    if offset + 6 > len(data):
        raise CodecHeaderError(f"{what} is truncated before max_picture_width")
    return VVCConfigSummary(
        record=data,
        nal_length_size_bytes=length_size,
        profile_idc=profile_idc,
        tier_flag=tier_flag,
        level_idc=level_idc,
        width=int.from_bytes(data[offset : offset + 2], "big"),
        height=int.from_bytes(data[offset + 2 : offset + 4], "big"),
    )


def _vvc(record: bytes) -> str:
    summary = parse_vvc_config_summary(record)
    if summary.profile_idc is None:
        return "vvc1"
    # ISO/IEC 14496-15 E.6: general_profile_idc, then L/H and op_level_idc, both decimal.
    # The constraint ("C"), sub-profile ("S") and output layer set ("O") elements are
    # optional and left out.
    tier = "H" if summary.tier_flag else "L"
    return f"vvc1.{summary.profile_idc}.{tier}{summary.level_idc}"


def _av1(record: bytes) -> str:
    config = av1.parse_av1_codec_configuration_record(record)
    # AV1-ISOBMFF "Codecs Parameter String": <profile>.<level><tier>.<bitDepth>, level
    # and bit depth as two digits; tier M or H.
    tier = "H" if config.seq_tier_0 else "M"
    short = f"av01.{config.seq_profile}.{config.seq_level_idx_0:02d}{tier}.{config.bit_depth:02d}"
    header = config.sequence_header
    if header is None:
        return short
    # "The parameters sample entry 4CC, profile, level, tier, and bitDepth are all
    # mandatory fields ... All the other fields ... are optional, mutually inclusive
    # (all or none)". Write them only when they differ from the defaults they imply.
    if config.chroma_subsampling_x and config.chroma_subsampling_y:
        position = config.chroma_sample_position
    else:
        position = 0
    chroma = f"{int(config.chroma_subsampling_x)}{int(config.chroma_subsampling_y)}{position}"
    colours = (
        header.color_primaries,
        header.transfer_characteristics,
        header.matrix_coefficients,
    )
    if (
        not config.monochrome
        and chroma == "110"
        and colours in _DEFAULT_COLOURS
        and not header.color_range
    ):
        return short
    return (
        f"{short}.{int(config.monochrome)}.{chroma}.{colours[0]:02d}.{colours[1]:02d}"
        f".{colours[2]:02d}.{int(header.color_range)}"
    )


def _vp(fourcc: str, record: bytes) -> str:
    config = vp9.parse_vp_codec_configuration_record(record)
    # VP codec binding: <sample entry 4CC>.<profile>.<level>.<bitDepth>, two digits each,
    # then optionally (all or none) chromaSubsampling, colourPrimaries,
    # transferCharacteristics, matrixCoefficients, videoFullRangeFlag.
    short = f"{fourcc}.{config.profile:02d}.{config.level:02d}.{config.bit_depth:02d}"
    colours = (
        config.colour_primaries,
        config.transfer_characteristics,
        config.matrix_coefficients,
    )
    if (
        config.chroma_subsampling in _VP_420
        and colours in _DEFAULT_COLOURS
        and not config.video_full_range
    ):
        return short
    return (
        f"{short}.{config.chroma_subsampling:02d}.{colours[0]:02d}.{colours[1]:02d}"
        f".{colours[2]:02d}.{int(config.video_full_range):02d}"
    )


def _aac(record: bytes) -> str:
    config = audio_config.parse_audio_specific_config(record)
    # RFC 6381 §3.3: "mp4a.40.<audioObjectType>" with the object type "as defined in
    # ISO/IEC 14496-3", i.e. the first one of the AudioSpecificConfig (5 or 29 for
    # explicitly signalled HE-AAC, 2 for LC and for backward-compatible HE-AAC).
    return f"mp4a.40.{config.audio_object_type}"


def codec_string(config: TrackConfig) -> str:
    """The RFC 6381 ``codecs`` parameter of a track, from its configuration record.

    Args:
        config: The track configuration (see :mod:`aiortmp.media.samples`).

    Returns:
        The codecs string, e.g. ``"avc1.64001f"``, ``"hvc1.1.6.L93.B0"``,
        ``"av01.0.08M.08"``, ``"vp09.00.10.08"``, ``"mp4a.40.2"``, ``"opus"``.

    Raises:
        CodecHeaderError: The configuration record is malformed or truncated, or the
            codec is not one of :data:`aiortmp.media.samples.VIDEO_CODECS` /
            :data:`~aiortmp.media.samples.AUDIO_CODECS`.
    """
    codec = str(config.codec)
    record = bytes(config.record)
    if codec == "avc1":
        return _avc(record)
    if codec == "hvc1":
        return _hevc(record)
    if codec == "vvc1":
        return _vvc(record)
    if codec == "av01":
        return _av1(record)
    if codec in ("vp09", "vp08"):
        return _vp(codec, record)
    if codec == "mp4a":
        return _aac(record)
    if codec == "Opus":
        audio_config.parse_opus_head(record)
        return "opus"
    if codec == "fLaC":
        audio_config.parse_flac_stream_info(record)
        return "fLaC"
    if codec == ".mp3":
        return "mp4a.40.34"
    if codec in ("ac-3", "ec-3"):
        return codec
    raise CodecHeaderError(f"no codecs parameter is defined for {codec!r}")
