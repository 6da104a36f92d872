"""Audio configuration: AAC, Opus, FLAC, AC-3/E-AC-3, MPEG audio and legacy FLV flags.

What each E-RTMP/FLV audio codec sends first, and what is parsed here:

- AAC (``mp4a``, FLV SoundFormat 10): an ``AudioSpecificConfig`` (ISO/IEC 14496-3
  §1.6.2.1) as the "AAC sequence header" (FLV v10.1 E.4.2.2) or E-RTMP
  ``SequenceStart``.
- Opus (``Opus``): the ``OpusHead`` identification header (RFC 7845 §5.1) in
  ``SequenceStart``.
- FLAC (``fLaC``): "FlacSequenceHeader is a mandatory metadata block (a.k.a., the
  STREAMINFO block)" (E-RTMP v2, ExAudioTagBody); publishers also send it behind the
  ``fLaC`` stream marker and/or its metadata block header.
- AC-3/E-AC-3 (``ac-3``/``ec-3``) and MP3 (``.mp3``, SoundFormat 2/14) have no
  configuration record: every coded frame starts with a self-describing header
  (ATSC A/52 §5.3 and Annex E; ISO/IEC 11172-3 §2.4.1.3, 13818-3).
- The remaining legacy codecs (PCM, ADPCM, Nellymoser, G.711, Speex) are described
  only by the SoundRate/SoundSize/SoundType bits of the FLV AudioTagHeader
  (FLV v10.1 E.4.2.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortmp.media.bitreader import BitReader
from aiortmp.media.errors import CodecHeaderError

__all__ = [
    "AC3FrameHeader",
    "AudioSpecificConfig",
    "FLACStreamInfo",
    "FLVSoundFlags",
    "MPEGAudioFrameHeader",
    "OpusHead",
    "aac_profile_name",
    "parse_ac3_frame_header",
    "parse_audio_specific_config",
    "parse_flac_stream_info",
    "parse_flv_sound_flags",
    "parse_mpeg_audio_frame_header",
    "parse_opus_head",
]

# --------------------------------------------------------------------------- AAC

# 14496-3 Table 1.18: samplingFrequencyIndex; 0xD and 0xE are reserved, 0xF escapes
# to an explicit 24-bit samplingFrequency.
_AAC_SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)
_AAC_EXPLICIT_FREQUENCY = 0x0F
# 14496-3 Table 1.19 (with the 2009 amendments): channelConfiguration -> channels.
# 0 means "defined in the program_config_element"; 8-10 and 15 are reserved.
_AAC_CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}
AOT_AAC_MAIN = 1
AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29
AOT_ER_AAC_LD = 23
AOT_ER_AAC_ELD = 39
AOT_USAC = 42
_AOT_ESCAPE = 31
# Object types whose config is a GASpecificConfig (14496-3 §1.6.2.1 switch).
_GA_OBJECT_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
# Object types followed by epConfig (14496-3 §1.6.2.1).
_EP_CONFIG_OBJECT_TYPES = frozenset({17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 39})
# Backward-compatible (implicit) SBR/PS signalling (14496-3 §1.6.5.2).
_SYNC_EXTENSION_SBR = 0x2B7
_SYNC_EXTENSION_PS = 0x548
_AAC_PROFILE_NAMES = {
    1: "Main",
    2: "LC",
    3: "SSR",
    4: "LTP",
    5: "HE-AAC",
    6: "Scalable",
    17: "ER LC",
    19: "ER LTP",
    20: "ER Scalable",
    22: "ER BSAC",
    23: "LD",
    29: "HE-AACv2",
    39: "ELD",
    42: "xHE-AAC",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class AudioSpecificConfig:
    """An AAC ``AudioSpecificConfig`` (ISO/IEC 14496-3 §1.6.2.1).

    Attributes:
        audio_object_type: The first ``audioObjectType`` (2 LC, 5 SBR, 29 PS, ...).
        sampling_frequency_hz: The core sampling frequency.
        channel_configuration: ``channelConfiguration`` (0: see the PCE).
        channels: The number of output channels, or None when the configuration is
            reserved.
        extension_audio_object_type: ``extensionAudioObjectType`` (5 or 29) when SBR
            is signalled, explicitly or by the backward-compatible sync extension;
            else None.
        extension_sampling_frequency_hz: The SBR output sampling frequency, or None.
        sbr: True when spectral band replication is signalled (HE-AAC).
        ps: True when parametric stereo is signalled (HE-AACv2).
        core_audio_object_type: The object type of the core coder (after SBR/PS).
        sample_rate_hz: The output sample rate: the SBR rate when present, else the
            core rate.
        frame_length_samples: 960 or 1024 for GA object types (``frameLengthFlag``),
            else None.
    """

    audio_object_type: int
    sampling_frequency_hz: int
    channel_configuration: int
    channels: int | None
    extension_audio_object_type: int | None
    extension_sampling_frequency_hz: int | None
    sbr: bool
    ps: bool
    core_audio_object_type: int
    sample_rate_hz: int
    frame_length_samples: int | None


def _read_audio_object_type(reader: BitReader) -> int:
    """``GetAudioObjectType()`` (14496-3 §1.6.2.1.1): 5 bits, 31 escapes to 32 + 6."""
    object_type = reader.read_bits(5)
    if object_type == _AOT_ESCAPE:
        object_type = 32 + reader.read_bits(6)
    return object_type


def _read_sampling_frequency(reader: BitReader) -> int:
    index = reader.read_bits(4)
    if index == _AAC_EXPLICIT_FREQUENCY:
        frequency = reader.read_bits(24)
        if frequency == 0:
            raise CodecHeaderError("AudioSpecificConfig: samplingFrequency is 0")
        return frequency
    if index >= len(_AAC_SAMPLE_RATES):
        raise CodecHeaderError(f"AudioSpecificConfig: samplingFrequencyIndex {index} reserved")
    return _AAC_SAMPLE_RATES[index]


def _read_program_config_element_channels(reader: BitReader) -> int:
    """Count the channels of a ``program_config_element()`` (14496-3 §4.4.1.1)."""
    reader.skip_bits(4 + 2 + 4)  # element_instance_tag, object_type, sf index
    front, side, back = reader.read_bits(4), reader.read_bits(4), reader.read_bits(4)
    lfe = reader.read_bits(2)
    assoc_data = reader.read_bits(3)
    valid_cc = reader.read_bits(4)
    if reader.read_flag():  # mono_mixdown_present
        reader.skip_bits(4)
    if reader.read_flag():  # stereo_mixdown_present
        reader.skip_bits(4)
    if reader.read_flag():  # matrix_mixdown_idx_present
        reader.skip_bits(3)
    channels = lfe
    for _ in range(front + side + back):
        # A channel pair element (is_cpe) is two channels; then a 4-bit tag.
        channels += 2 if reader.read_flag() else 1
        reader.skip_bits(4)
    reader.skip_bits(4 * lfe + 4 * assoc_data + 5 * valid_cc)
    reader.byte_align()
    comment_bytes = reader.read_bits(8)
    reader.skip_bits(8 * comment_bytes)
    return channels


def parse_audio_specific_config(
    config: bytes | bytearray | memoryview,
) -> AudioSpecificConfig:
    """Parse an AAC ``AudioSpecificConfig`` (ISO/IEC 14496-3 §1.6.2.1).

    Handles escaped object types (31), explicit 24-bit frequencies, explicit SBR/PS
    signalling (object types 5 and 29), the program config element of
    ``channelConfiguration`` 0, and the backward-compatible SBR/PS sync extension
    (§1.6.5.2) after a GASpecificConfig. A malformed or truncated sync extension is
    ignored: it is optional trailing data that decoders probe for.

    Args:
        config: The AudioSpecificConfig bytes (the AAC sequence header body).

    Returns:
        The parsed configuration.

    Raises:
        CodecHeaderError: The config is truncated, uses a reserved frequency index,
            or has a frequency of 0.
    """
    reader = BitReader(config, "AudioSpecificConfig")
    object_type = _read_audio_object_type(reader)
    if object_type == 0:
        raise CodecHeaderError("AudioSpecificConfig: audioObjectType 0 is null")
    sampling_frequency = _read_sampling_frequency(reader)
    channel_configuration = reader.read_bits(4)
    extension_type: int | None = None
    extension_frequency: int | None = None
    sbr = ps = False
    core_type = object_type
    if object_type in (AOT_SBR, AOT_PS):
        extension_type = AOT_SBR
        sbr = True
        ps = object_type == AOT_PS
        extension_frequency = _read_sampling_frequency(reader)
        core_type = _read_audio_object_type(reader)
        if core_type == 22:  # ER BSAC
            reader.skip_bits(4)  # extensionChannelConfiguration

    channels = _AAC_CHANNELS.get(channel_configuration)
    frame_length = None
    if core_type in _GA_OBJECT_TYPES:
        # GASpecificConfig (14496-3 §4.4.1).
        frame_length = 960 if reader.read_flag() else 1024
        if reader.read_flag():  # dependsOnCoreCoder
            reader.skip_bits(14)  # coreCoderDelay
        extension_flag = reader.read_flag()
        if channel_configuration == 0:
            channels = _read_program_config_element_channels(reader)
        if core_type in (6, 20):
            reader.skip_bits(3)  # layerNr
        if extension_flag:
            if core_type == 22:
                reader.skip_bits(5 + 11)  # numOfSubFrame, layer_length
            if core_type in (17, 19, 20, 23):
                reader.skip_bits(3)  # aacSection/Scalefactor/SpectralData resilience
            reader.skip_bits(1)  # extensionFlag3
        if core_type in _EP_CONFIG_OBJECT_TYPES:
            reader.skip_bits(2)  # epConfig
        if extension_type is None:
            extension_type, extension_frequency, sbr, ps = _read_sync_extension(reader)
    if ps and channels == 1:
        # Parametric stereo turns a mono core into stereo output.
        channels = 2
    return AudioSpecificConfig(
        audio_object_type=object_type,
        sampling_frequency_hz=sampling_frequency,
        channel_configuration=channel_configuration,
        channels=channels,
        extension_audio_object_type=extension_type,
        extension_sampling_frequency_hz=extension_frequency,
        sbr=sbr,
        ps=ps,
        core_audio_object_type=core_type,
        sample_rate_hz=extension_frequency if sbr and extension_frequency else sampling_frequency,
        frame_length_samples=frame_length,
    )


def _read_sync_extension(reader: BitReader) -> tuple[int | None, int | None, bool, bool]:
    """Probe for the backward-compatible SBR/PS signalling (14496-3 §1.6.5.2, §1.6.6).

    Returns:
        (extensionAudioObjectType, extension frequency, sbrPresentFlag, psPresentFlag);
        (None, None, False, False) when absent or malformed.
    """
    if reader.remaining_bits < 16:
        return None, None, False, False
    try:
        if reader.read_bits(11) != _SYNC_EXTENSION_SBR:
            return None, None, False, False
        extension_type = _read_audio_object_type(reader)
        if extension_type != AOT_SBR or not reader.read_flag():  # sbrPresentFlag
            return None, None, False, False
        frequency = _read_sampling_frequency(reader)
        ps = False
        if reader.remaining_bits >= 12 and reader.read_bits(11) == _SYNC_EXTENSION_PS:
            ps = reader.read_flag()  # psPresentFlag
        return AOT_SBR, frequency, True, ps
    except CodecHeaderError:
        return None, None, False, False


def aac_profile_name(config: AudioSpecificConfig) -> str:
    """Name an AAC profile as users know it (HE-AAC, HE-AACv2, LC, ...).

    Args:
        config: A parsed AudioSpecificConfig.

    Returns:
        ``"HE-AACv2"`` with PS, ``"HE-AAC"`` with SBR, else the object type's name
        (``"LC"``, ``"Main"``, ``"LD"``, ``"ELD"``, ...) or ``"AOT N"``.
    """
    if config.ps:
        return _AAC_PROFILE_NAMES[AOT_PS]
    if config.sbr:
        return _AAC_PROFILE_NAMES[AOT_SBR]
    return _AAC_PROFILE_NAMES.get(config.audio_object_type, f"AOT {config.audio_object_type}")


# -------------------------------------------------------------------------- Opus

_OPUS_HEAD_MAGIC = b"OpusHead"
_OPUS_HEAD_BYTES = 19
# RFC 7845 §5.1: "the major version ... is the upper four bits"; a decoder "SHOULD
# accept any file with a major version ... of 0", and must reject others.
_OPUS_MAX_VERSION = 15


@dataclass(frozen=True, kw_only=True, slots=True)
class OpusHead:
    """The Opus identification header, ``OpusHead`` (RFC 7845 §5.1).

    Attributes:
        version: The header version (1 for RFC 7845).
        channels: The output channel count (1-255).
        pre_skip_samples: Samples at 48 kHz to discard from the decoder output.
        input_sample_rate_hz: The original input sample rate (0: unspecified). Opus
            always decodes at 48 kHz; this is only informative.
        output_gain_q8_db: Output gain in Q7.8 dB.
        channel_mapping_family: 0 (mono/stereo), 1 (Vorbis order), 255 (undefined).
        stream_count: Opus streams in each packet (1 for family 0).
        coupled_count: Stereo streams among them.
        channel_mapping: The channel mapping table (empty for family 0).
    """

    version: int
    channels: int
    pre_skip_samples: int
    input_sample_rate_hz: int
    output_gain_q8_db: int
    channel_mapping_family: int
    stream_count: int
    coupled_count: int
    channel_mapping: bytes


def parse_opus_head(header: bytes | bytearray | memoryview) -> OpusHead:
    """Parse an ``OpusHead`` identification header (RFC 7845 §5.1).

    Args:
        header: The header bytes, starting with ``OpusHead``. Trailing bytes are
            ignored ("implementations SHOULD ... ignore" extra data, §5.1).

    Returns:
        The parsed header.

    Raises:
        CodecHeaderError: The magic is wrong, the header is truncated, the major
            version is not 0, the channel count is 0, or the mapping table is
            inconsistent.
    """
    data = bytes(header)
    what = "OpusHead"
    if len(data) < _OPUS_HEAD_BYTES:
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    if data[:8] != _OPUS_HEAD_MAGIC:
        raise CodecHeaderError(f"{what}: bad magic signature {data[:8]!r}")
    version = data[8]
    if version > _OPUS_MAX_VERSION:
        raise CodecHeaderError(f"{what}: unsupported major version in {version}")
    channels = data[9]
    if channels == 0:
        raise CodecHeaderError(f"{what}: channel count is 0")
    family = data[18]
    if family == 0:
        # "Channel Mapping Family 0 ... allowed only for 1 or 2 channels" (§5.1.1.1).
        if channels > 2:
            raise CodecHeaderError(f"{what}: mapping family 0 with {channels} channels")
        stream_count, coupled_count, mapping = 1, channels - 1, b""
    else:
        if len(data) < _OPUS_HEAD_BYTES + 2 + channels:
            raise CodecHeaderError(f"{what}: truncated channel mapping table")
        stream_count = data[19]
        coupled_count = data[20]
        mapping = data[21 : 21 + channels]
        if stream_count == 0 or coupled_count > stream_count:
            raise CodecHeaderError(
                f"{what}: {stream_count} streams with {coupled_count} coupled is invalid"
            )
    return OpusHead(
        version=version,
        channels=channels,
        pre_skip_samples=int.from_bytes(data[10:12], "little"),
        input_sample_rate_hz=int.from_bytes(data[12:16], "little"),
        output_gain_q8_db=int.from_bytes(data[16:18], "little", signed=True),
        channel_mapping_family=family,
        stream_count=stream_count,
        coupled_count=coupled_count,
        channel_mapping=mapping,
    )


# -------------------------------------------------------------------------- FLAC

_FLAC_MARKER = b"fLaC"
_FLAC_STREAMINFO_BYTES = 34
_FLAC_BLOCK_TYPE_STREAMINFO = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class FLACStreamInfo:
    """A FLAC ``METADATA_BLOCK_STREAMINFO`` (RFC 9639 §8.2).

    Attributes:
        min_block_size_samples: Minimum block size used in the stream.
        max_block_size_samples: Maximum block size used in the stream.
        min_frame_size_bytes: Minimum frame size (0: unknown).
        max_frame_size_bytes: Maximum frame size (0: unknown).
        sample_rate_hz: Sample rate.
        channels: Channel count (1-8).
        bits_per_sample: Bits per sample (4-32).
        total_samples: Interchannel samples in the stream (0: unknown, as in a live
            stream).
        md5: MD5 of the unencoded audio (all zero: unknown).
    """

    min_block_size_samples: int
    max_block_size_samples: int
    min_frame_size_bytes: int
    max_frame_size_bytes: int
    sample_rate_hz: int
    channels: int
    bits_per_sample: int
    total_samples: int
    md5: bytes


def parse_flac_stream_info(data: bytes | bytearray | memoryview) -> FLACStreamInfo:
    """Parse a FLAC STREAMINFO block as an E-RTMP FLAC sequence start carries it.

    E-RTMP v2 says the sequence start holds "a mandatory metadata block (a.k.a., the
    STREAMINFO block)"; FFmpeg sends the bare 34-byte block body. Publishers that
    copy a FLAC file header send ``fLaC`` and/or the 4-byte ``METADATA_BLOCK_HEADER``
    first (as in the MP4 ``dfLa`` box). All three forms are accepted; metadata
    blocks after STREAMINFO are ignored.

    Args:
        data: The sequence start body.

    Returns:
        The STREAMINFO fields.

    Raises:
        CodecHeaderError: The block is truncated, is not STREAMINFO, or has a sample
            rate of 0 or a block size below 16.
    """
    block = bytes(data)
    what = "FLAC STREAMINFO"
    marker = block[:4] == _FLAC_MARKER
    if marker:
        block = block[4:]
    # A METADATA_BLOCK_HEADER for STREAMINFO is 0x00 or 0x80 (last-block flag)
    # followed by the length 34. A bare STREAMINFO cannot start that way: its
    # minimum block size would be 0 or exceed the maximum block size (34).
    if (
        len(block) >= 4
        and block[0] & 0x7F == _FLAC_BLOCK_TYPE_STREAMINFO
        and block[1:4] == _FLAC_STREAMINFO_BYTES.to_bytes(3, "big")
    ):
        block = block[4:]
    elif marker:
        raise CodecHeaderError(f"{what}: the first metadata block after fLaC is not STREAMINFO")
    if len(block) < _FLAC_STREAMINFO_BYTES:
        raise CodecHeaderError(f"{what} is truncated: {len(block)} bytes")
    reader = BitReader(block[:_FLAC_STREAMINFO_BYTES], what)
    min_block = reader.read_bits(16)
    max_block = reader.read_bits(16)
    min_frame = reader.read_bits(24)
    max_frame = reader.read_bits(24)
    sample_rate = reader.read_bits(20)
    channels = reader.read_bits(3) + 1
    bits_per_sample = reader.read_bits(5) + 1
    total_samples = reader.read_bits(36)
    md5 = reader.read_bytes(16)
    # RFC 9639 §8.2: "the minimum block size ... MUST be at least 16"; a sample rate
    # of 0 is only allowed for non-audio data, which E-RTMP does not carry.
    if min_block < 16 or max_block < min_block:
        raise CodecHeaderError(f"{what}: block sizes {min_block}..{max_block} are invalid")
    if sample_rate == 0:
        raise CodecHeaderError(f"{what}: sample rate is 0")
    return FLACStreamInfo(
        min_block_size_samples=min_block,
        max_block_size_samples=max_block,
        min_frame_size_bytes=min_frame,
        max_frame_size_bytes=max_frame,
        sample_rate_hz=sample_rate,
        channels=channels,
        bits_per_sample=bits_per_sample,
        total_samples=total_samples,
        md5=md5,
    )


# ------------------------------------------------------------------ AC-3 / E-AC-3

_AC3_SYNC_WORD = 0x0B77
_AC3_SAMPLE_RATES = (48000, 44100, 32000)
# E-AC-3 (A/52 Annex E, Table E2.3): reduced rates signalled with fscod == 3.
_EAC3_REDUCED_SAMPLE_RATES = (24000, 22050, 16000)
# A/52 Table 5.18: frmsizecod >> 1 -> nominal bit rate in kbit/s.
_AC3_BIT_RATES_KBPS = (
    32,
    40,
    48,
    56,
    64,
    80,
    96,
    112,
    128,
    160,
    192,
    224,
    256,
    320,
    384,
    448,
    512,
    576,
    640,
)
# A/52 Table 5.8: acmod -> full-bandwidth channels (0 is 1+1 dual mono).
_AC3_ACMOD_CHANNELS = (2, 1, 2, 3, 3, 4, 4, 5)
_AC3_ACMOD_NAMES = ("1+1", "1/0", "2/0", "3/0", "2/1", "3/1", "2/2", "3/2")
_EAC3_BLOCKS_PER_FRAME = (1, 2, 3, 6)
_AC3_MAX_BSID = 10  # bsid 9 and 10 are the half/quarter rate AC-3 variants
_EAC3_MIN_BSID = 11
_EAC3_MAX_BSID = 16


@dataclass(frozen=True, kw_only=True, slots=True)
class AC3FrameHeader:
    """The header of an AC-3 or E-AC-3 sync frame (ATSC A/52 §5.3, Annex E §2.3).

    Attributes:
        enhanced: True for E-AC-3 (``bsid`` 11-16), False for AC-3.
        bsid: Bit stream identification.
        sample_rate_hz: Sample rate.
        acmod: Audio coding mode (Table 5.8).
        channel_layout: ``"3/2"`` style layout of the full-bandwidth channels.
        lfe: ``lfeon``: a low frequency effects channel is present.
        channels: Full-bandwidth channels plus the LFE channel. For E-AC-3 this is
            the independent substream's count; dependent substreams may add more.
        bit_rate_bps: The bit rate, from ``frmsizecod`` (AC-3) or ``frmsiz`` and the
            number of blocks (E-AC-3).
        frame_size_bytes: The sync frame size.
    """

    enhanced: bool
    bsid: int
    sample_rate_hz: int
    acmod: int
    channel_layout: str
    lfe: bool
    channels: int
    bit_rate_bps: int
    frame_size_bytes: int


def _read_ac3_mix_levels(reader: BitReader, acmod: int) -> None:
    """Skip the AC-3 BSI fields between ``acmod`` and ``lfeon`` (A/52 §5.3.2)."""
    if acmod & 0x01 and acmod != 1:
        reader.skip_bits(2)  # cmixlev: three front channels
    if acmod & 0x04:
        reader.skip_bits(2)  # surmixlev: a surround channel exists
    if acmod == 2:
        reader.skip_bits(2)  # dsurmod


def parse_ac3_frame_header(frame: bytes | bytearray | memoryview) -> AC3FrameHeader:
    """Parse the start of an AC-3 or E-AC-3 sync frame (ATSC A/52 §5.3, Annex E).

    The ``bsid`` decides the syntax: up to 10 is AC-3 (9 and 10 halve and quarter
    the sample rate), 11-16 is E-AC-3.

    Args:
        frame: A coded frame (E-RTMP ``CodedFrames`` body for ``ac-3``/``ec-3``).

    Returns:
        The frame header fields.

    Raises:
        CodecHeaderError: The sync word is wrong, the header is truncated, or a
            field holds a reserved value.
    """
    reader = BitReader(frame, "AC-3 sync frame")
    if reader.read_bits(16) != _AC3_SYNC_WORD:
        raise CodecHeaderError("AC-3 sync frame: bad syncword")
    # bsid sits at the same bit offset (40) in both syntaxes: peek at it.
    peek = BitReader(frame, "AC-3 sync frame")
    peek.skip_bits(40)
    bsid = peek.read_bits(5)
    if bsid <= _AC3_MAX_BSID:
        reader.skip_bits(16)  # crc1
        fscod = reader.read_bits(2)
        frmsizecod = reader.read_bits(6)
        if fscod == 3:
            raise CodecHeaderError("AC-3 sync frame: fscod 3 is reserved")
        if frmsizecod >> 1 >= len(_AC3_BIT_RATES_KBPS):
            raise CodecHeaderError(f"AC-3 sync frame: frmsizecod {frmsizecod} is invalid")
        reader.skip_bits(5 + 3)  # bsid, bsmod
        acmod = reader.read_bits(3)
        _read_ac3_mix_levels(reader, acmod)
        lfe = reader.read_flag()
        # bsid 9 and 10 halve and quarter the sample rate, and so the bit rate.
        shift = max(bsid, 8) - 8
        kbps = _AC3_BIT_RATES_KBPS[frmsizecod >> 1]
        sample_rate = _AC3_SAMPLE_RATES[fscod] >> shift
        bit_rate = kbps * 1000 >> shift
        # A/52 Table 5.18: a frame of 1536 samples holds 2 * kbit/s 16-bit words at
        # 48 kHz and 3 * kbit/s at 32 kHz; at 44.1 kHz the size is rounded down and
        # frmsizecod's low bit adds one word.
        if fscod == 0:
            words = 2 * kbps
        elif fscod == 2:
            words = 3 * kbps
        else:
            words = kbps * 320 // 147 + (frmsizecod & 1)
        return AC3FrameHeader(
            enhanced=False,
            bsid=bsid,
            sample_rate_hz=sample_rate,
            acmod=acmod,
            channel_layout=_AC3_ACMOD_NAMES[acmod],
            lfe=lfe,
            channels=_AC3_ACMOD_CHANNELS[acmod] + lfe,
            bit_rate_bps=bit_rate,
            frame_size_bytes=words * 2,
        )
    if not _EAC3_MIN_BSID <= bsid <= _EAC3_MAX_BSID:
        raise CodecHeaderError(f"AC-3 sync frame: bsid {bsid} is not AC-3 or E-AC-3")
    strmtyp = reader.read_bits(2)
    if strmtyp == 3:
        raise CodecHeaderError("E-AC-3 sync frame: strmtyp 3 is reserved")
    reader.skip_bits(3)  # substreamid
    frame_size = (reader.read_bits(11) + 1) * 2
    fscod = reader.read_bits(2)
    if fscod == 3:
        fscod2 = reader.read_bits(2)
        if fscod2 == 3:
            raise CodecHeaderError("E-AC-3 sync frame: fscod2 3 is reserved")
        sample_rate = _EAC3_REDUCED_SAMPLE_RATES[fscod2]
        blocks = 6
    else:
        sample_rate = _AC3_SAMPLE_RATES[fscod]
        blocks = _EAC3_BLOCKS_PER_FRAME[reader.read_bits(2)]
    acmod = reader.read_bits(3)
    lfe = reader.read_flag()
    # Each block holds 256 samples: bit rate = bits per frame / frame duration.
    bit_rate = frame_size * 8 * sample_rate // (blocks * 256)
    return AC3FrameHeader(
        enhanced=True,
        bsid=bsid,
        sample_rate_hz=sample_rate,
        acmod=acmod,
        channel_layout=_AC3_ACMOD_NAMES[acmod],
        lfe=lfe,
        channels=_AC3_ACMOD_CHANNELS[acmod] + lfe,
        bit_rate_bps=bit_rate,
        frame_size_bytes=frame_size,
    )


# -------------------------------------------------------------------- MPEG audio

_MPEG_VERSION_NAMES = {3: "MPEG-1", 2: "MPEG-2", 0: "MPEG-2.5"}
_MPEG_LAYER_NAMES = {3: "Layer I", 2: "Layer II", 1: "Layer III"}
_MPEG1_SAMPLE_RATES = (44100, 48000, 32000)
# ISO/IEC 11172-3 §2.4.2.3 (MPEG-1) and 13818-3 §2.4.2.3 (MPEG-2 LSF) bitrate_index
# tables in kbit/s, indexes 1-14 (0 is "free format", 15 is forbidden).
_MPEG_BIT_RATES_KBPS = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_CHANNEL_MODES = ("stereo", "joint stereo", "dual channel", "mono")


@dataclass(frozen=True, kw_only=True, slots=True)
class MPEGAudioFrameHeader:
    """An MPEG audio frame header (ISO/IEC 11172-3 §2.4.1.3, 13818-3, MPEG-2.5).

    Attributes:
        version: ``"MPEG-1"``, ``"MPEG-2"`` or ``"MPEG-2.5"``.
        layer: 1, 2 or 3.
        bit_rate_bps: The bit rate, or None for free format.
        sample_rate_hz: The sample rate.
        channel_mode: ``"stereo"``, ``"joint stereo"``, ``"dual channel"`` or
            ``"mono"``.
        channels: 1 for mono, else 2.
        padding: ``padding_bit``.
        protected: True when a CRC follows the header (``protection_bit`` is 0).
        samples_per_frame: 384 (Layer I), 1152 (Layer II, MPEG-1 Layer III) or 576
            (MPEG-2/2.5 Layer III).
    """

    version: str
    layer: int
    bit_rate_bps: int | None
    sample_rate_hz: int
    channel_mode: str
    channels: int
    padding: bool
    protected: bool
    samples_per_frame: int

    @property
    def profile(self) -> str:
        """The version and layer, e.g. ``"MPEG-1 Layer III"``."""
        return f"{self.version} {_MPEG_LAYER_NAMES[4 - self.layer]}"


def parse_mpeg_audio_frame_header(frame: bytes | bytearray | memoryview) -> MPEGAudioFrameHeader:
    """Parse the 4-byte header of an MPEG audio frame (ISO/IEC 11172-3 §2.4.1.3).

    MPEG-2 low sampling frequencies (13818-3) and the unofficial but universal
    MPEG-2.5 extension (11-bit sync, version bits ``00``) are recognised.

    Args:
        frame: A coded frame (FLV SoundFormat 2/14 body or E-RTMP ``.mp3`` frame).

    Returns:
        The header fields.

    Raises:
        CodecHeaderError: The header is truncated, the sync word is missing, or a
            field holds a reserved or forbidden value.
    """
    data = bytes(frame[:4])
    what = "MPEG audio frame header"
    if len(data) < 4:
        raise CodecHeaderError(f"{what} is truncated: {len(data)} bytes")
    header = int.from_bytes(data, "big")
    if header >> 21 != 0x7FF:
        raise CodecHeaderError(f"{what}: no frame sync")
    version_bits = (header >> 19) & 0x03
    layer_bits = (header >> 17) & 0x03
    if version_bits == 1:
        raise CodecHeaderError(f"{what}: version bits 01 are reserved")
    if layer_bits == 0:
        raise CodecHeaderError(f"{what}: layer bits 00 are reserved")
    layer = 4 - layer_bits
    bitrate_index = (header >> 12) & 0x0F
    frequency_index = (header >> 10) & 0x03
    if bitrate_index == 0x0F:
        raise CodecHeaderError(f"{what}: bitrate_index 15 is forbidden")
    if frequency_index == 3:
        raise CodecHeaderError(f"{what}: sampling_frequency 3 is reserved")
    mpeg1 = version_bits == 3
    # MPEG-2 halves the MPEG-1 rates, MPEG-2.5 quarters them.
    sample_rate = _MPEG1_SAMPLE_RATES[frequency_index] >> {3: 0, 2: 1, 0: 2}[version_bits]
    bit_rate = None
    if bitrate_index:
        bit_rate = _MPEG_BIT_RATES_KBPS[(mpeg1, layer)][bitrate_index - 1] * 1000
    mode = (header >> 6) & 0x03
    if layer == 1:
        samples = 384
    elif layer == 2 or mpeg1:
        samples = 1152
    else:
        samples = 576
    return MPEGAudioFrameHeader(
        version=_MPEG_VERSION_NAMES[version_bits],
        layer=layer,
        bit_rate_bps=bit_rate,
        sample_rate_hz=sample_rate,
        channel_mode=_MPEG_CHANNEL_MODES[mode],
        channels=1 if mode == 3 else 2,
        padding=bool(header & 0x200),
        protected=not header & 0x10000,
        samples_per_frame=samples,
    )


# ------------------------------------------------------------- legacy FLV flags

SOUND_FORMAT_LPCM_PLATFORM = 0
SOUND_FORMAT_ADPCM = 1
SOUND_FORMAT_MP3 = 2
SOUND_FORMAT_LPCM_LE = 3
SOUND_FORMAT_NELLYMOSER_16K_MONO = 4
SOUND_FORMAT_NELLYMOSER_8K_MONO = 5
SOUND_FORMAT_NELLYMOSER = 6
SOUND_FORMAT_G711_ALAW = 7
SOUND_FORMAT_G711_MULAW = 8
SOUND_FORMAT_EX_HEADER = 9
SOUND_FORMAT_AAC = 10
SOUND_FORMAT_SPEEX = 11
SOUND_FORMAT_MP3_8K = 14
SOUND_FORMAT_DEVICE_SPECIFIC = 15

# FLV v10.1 E.4.2.1 SoundRate: 0 = 5.5 kHz, 1 = 11 kHz, 2 = 22 kHz, 3 = 44 kHz
# (the exact rates are 44100 / 8, / 4, / 2, / 1, as FFmpeg computes them).
_FLV_SOUND_RATES = (5512, 11025, 22050, 44100)


@dataclass(frozen=True, kw_only=True, slots=True)
class FLVSoundFlags:
    """The legacy FLV ``AudioTagHeader`` byte, with codec-specific rules applied.

    FLV v10.1 E.4.2.1 describes SoundFormat, SoundRate, SoundSize and SoundType;
    several formats override them: "If the SoundFormat indicates Speex, the audio is
    compressed mono sampled at 16 kHz", Nellymoser 8/16 kHz mono formats, G.711 is
    always 8 kHz, and AAC "always" signals 44 kHz stereo (the AudioSpecificConfig is
    authoritative).

    Attributes:
        sound_format: SoundFormat (0-15).
        sample_rate_hz: The effective sample rate.
        sample_size_bits: 8 or 16 from SoundSize (only meaningful for PCM; G.711 is
            reported as 8).
        channels: 1 or 2 (SoundType, or 1 for the mono-only formats).
    """

    sound_format: int
    sample_rate_hz: int
    sample_size_bits: int
    channels: int


def parse_flv_sound_flags(flags: int) -> FLVSoundFlags:
    """Decode the first byte of a legacy FLV ``AudioTagHeader`` (FLV v10.1 E.4.2.1).

    Args:
        flags: The byte: SoundFormat (4 bits), SoundRate (2), SoundSize (1),
            SoundType (1).

    Returns:
        The decoded flags with the per-format overrides applied.

    Raises:
        CodecHeaderError: ``flags`` is not a byte, or SoundFormat is 9, which E-RTMP
            uses to mark an ExAudioTagHeader (not a legacy format).
    """
    if not 0 <= flags <= 0xFF:
        raise CodecHeaderError(f"FLV AudioTagHeader: {flags} is not a byte")
    sound_format = flags >> 4
    if sound_format == SOUND_FORMAT_EX_HEADER:
        raise CodecHeaderError("FLV AudioTagHeader: SoundFormat 9 is an E-RTMP ExAudioTagHeader")
    sample_rate = _FLV_SOUND_RATES[(flags >> 2) & 0x03]
    sample_size = 16 if flags & 0x02 else 8
    channels = 2 if flags & 0x01 else 1
    if sound_format == SOUND_FORMAT_SPEEX:
        sample_rate, channels = 16000, 1
    elif sound_format == SOUND_FORMAT_NELLYMOSER_16K_MONO:
        sample_rate, channels = 16000, 1
    elif sound_format in (SOUND_FORMAT_NELLYMOSER_8K_MONO, SOUND_FORMAT_MP3_8K):
        sample_rate = 8000
        if sound_format == SOUND_FORMAT_NELLYMOSER_8K_MONO:
            channels = 1
    elif sound_format == SOUND_FORMAT_NELLYMOSER:
        channels = 1  # Nellymoser is a mono codec
    elif sound_format in (SOUND_FORMAT_G711_ALAW, SOUND_FORMAT_G711_MULAW):
        # G.711 is 8 kHz with 8-bit (companded) samples whatever SoundRate says;
        # FFmpeg writes and reads the channel count from SoundType.
        sample_rate, sample_size = 8000, 8
    return FLVSoundFlags(
        sound_format=sound_format,
        sample_rate_hz=sample_rate,
        sample_size_bits=sample_size,
        channels=channels,
    )
