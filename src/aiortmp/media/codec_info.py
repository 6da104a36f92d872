"""What operators want to see about a stream, from its codec configuration.

:func:`video_info_from_config` and :func:`audio_info_from_config` take the FourCC
(E-RTMP v2 ``VideoFourCc``/``AudioFourCc``, or the one the tag parser maps a legacy
FLV CodecID/SoundFormat to) and the bytes after the tag header of the sequence start
(FLV v10.1 E.4.2.2/E.4.3.1 sequence headers, E-RTMP v2 ``SequenceStart``), and
summarise them as a :class:`VideoInfo` or :class:`AudioInfo`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aiortmp.media import audio_config, av1, avc, hevc, vp9
from aiortmp.media.errors import CodecHeaderError

__all__ = [
    "AudioInfo",
    "VideoInfo",
    "audio_info_from_config",
    "audio_info_from_flv_sound_flags",
    "video_info_from_config",
    "video_info_from_keyframe",
]

_OPUS_TAGS_MAGIC = b"OpusTags"
# Opus always decodes at 48 kHz (RFC 7845 §5.1: the input sample rate "is not the
# sample rate to use for playback").
_OPUS_SAMPLE_RATE_HZ = 48000
# HEVCDecoderConfigurationRecord avgFrameRate is "in units of frames/(256 seconds)".
_HEVC_AVG_FRAME_RATE_UNITS = 256

# Legacy FLV SoundFormat -> the AudioInfo codec name.
_FLV_SOUND_FORMAT_CODECS = {
    audio_config.SOUND_FORMAT_LPCM_PLATFORM: "lpcm",
    audio_config.SOUND_FORMAT_ADPCM: "adpcm",
    audio_config.SOUND_FORMAT_MP3: ".mp3",
    audio_config.SOUND_FORMAT_LPCM_LE: "lpcm",
    audio_config.SOUND_FORMAT_NELLYMOSER_16K_MONO: "nellymoser",
    audio_config.SOUND_FORMAT_NELLYMOSER_8K_MONO: "nellymoser",
    audio_config.SOUND_FORMAT_NELLYMOSER: "nellymoser",
    audio_config.SOUND_FORMAT_G711_ALAW: "alaw",
    audio_config.SOUND_FORMAT_G711_MULAW: "ulaw",
    audio_config.SOUND_FORMAT_AAC: "mp4a",
    audio_config.SOUND_FORMAT_SPEEX: "speex",
    audio_config.SOUND_FORMAT_MP3_8K: ".mp3",
    audio_config.SOUND_FORMAT_DEVICE_SPECIFIC: "device-specific",
}
# Codecs whose only description is the legacy AudioTagHeader byte.
_FLV_FLAGS_ONLY_CODECS = frozenset({"lpcm", "adpcm", "nellymoser", "alaw", "ulaw", "speex"})


@dataclass(frozen=True, kw_only=True, slots=True)
class VideoInfo:
    """A summary of a video stream for operators (stats pages, logs, metrics).

    Attributes:
        codec: The FourCC: ``"avc1"``, ``"hvc1"``, ``"av01"``, ``"vp09"``, ``"vp08"``,
            or whatever unknown FourCC was given.
        profile: The profile as users know it (``"High"``, ``"Main 10"``,
            ``"Profile 0"``), or None when unknown.
        level: The level as ``"X.Y"`` (``"4.1"``; H.264 also ``"1b"``), or None.
        width: Displayed width in pixels (after cropping), or None when the
            configuration does not carry it (VP8/VP9: see
            :func:`video_info_from_keyframe`).
        height: Displayed height in pixels, or None as ``width``.
        frame_rate: Frames per second when the bitstream signals it, else None.
    """

    codec: str
    profile: str | None
    level: str | None
    width: int | None
    height: int | None
    frame_rate: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class AudioInfo:
    """A summary of an audio stream for operators.

    Attributes:
        codec: ``"mp4a"``, ``"Opus"``, ``"fLaC"``, ``"ac-3"``, ``"ec-3"``, ``".mp3"``,
            ``"alaw"``, ``"ulaw"``, ``"speex"``, ``"nellymoser"``, ``"lpcm"``,
            ``"adpcm"``, or whatever unknown FourCC was given.
        profile: ``"LC"``, ``"HE-AAC"``, ``"HE-AACv2"`` ... for AAC,
            ``"MPEG-1 Layer III"`` ... for MPEG audio, else None.
        sample_rate: The output sample rate in Hz, or None when unknown.
        channels: The number of output channels, or None when unknown.
        sample_size_bits: Bits per sample for PCM-like codecs (FLAC, LPCM, G.711),
            else None.
    """

    codec: str
    profile: str | None
    sample_rate: int | None
    channels: int | None
    sample_size_bits: int | None


def _avc_info(record: bytes) -> VideoInfo:
    config = avc.parse_avc_decoder_configuration_record(record)
    if not config.sps:
        return VideoInfo(
            codec="avc1",
            profile=avc.avc_profile_name(config.profile_idc, config.profile_compatibility),
            level=avc.avc_level_name(
                config.level_idc, config.profile_idc, config.profile_compatibility
            ),
            width=None,
            height=None,
            frame_rate=None,
        )
    sps = avc.parse_avc_sps(config.sps[0])
    return VideoInfo(
        codec="avc1",
        profile=avc.avc_profile_name(sps.profile_idc, sps.constraint_flags),
        level=avc.avc_level_name(sps.level_idc, sps.profile_idc, sps.constraint_flags),
        width=sps.width,
        height=sps.height,
        frame_rate=sps.frame_rate,
    )


def _hevc_info(fourcc: str, record: bytes) -> VideoInfo:
    config = hevc.parse_hevc_decoder_configuration_record(record)
    profile = hevc.hevc_profile_name(
        config.general_profile_idc,
        config.general_profile_compatibility_flags,
        config.general_constraint_indicator_flags,
    )
    level = hevc.hevc_level_name(config.general_level_idc)
    width = height = None
    frame_rate = None
    sps_units = config.nal_units_of_type(hevc.NAL_UNIT_TYPE_SPS)
    if sps_units:
        sps = hevc.parse_hevc_sps(sps_units[0])
        ptl = sps.profile_tier_level
        profile = hevc.hevc_profile_name(
            ptl.profile_idc, ptl.profile_compatibility_flags, ptl.constraint_flags
        )
        level = hevc.hevc_level_name(ptl.level_idc)
        width, height, frame_rate = sps.width, sps.height, sps.frame_rate
    if frame_rate is None and config.avg_frame_rate:
        frame_rate = config.avg_frame_rate / _HEVC_AVG_FRAME_RATE_UNITS
    return VideoInfo(
        codec=fourcc,
        profile=profile,
        level=level,
        width=width,
        height=height,
        frame_rate=frame_rate,
    )


def _av1_info(record: bytes) -> VideoInfo:
    config = av1.parse_av1_codec_configuration_record(record)
    header = config.sequence_header
    return VideoInfo(
        codec="av01",
        profile=av1.av1_profile_name(config.seq_profile),
        level=av1.av1_level_name(config.seq_level_idx_0),
        width=header.max_frame_width if header else None,
        height=header.max_frame_height if header else None,
        frame_rate=header.frame_rate if header else None,
    )


def _vp_info(fourcc: str, record: bytes) -> VideoInfo:
    config = vp9.parse_vp_codec_configuration_record(record)
    return VideoInfo(
        codec=fourcc,
        profile=f"Profile {config.profile}",
        level=vp9.vp_level_name(config.level),
        width=None,
        height=None,
        frame_rate=None,
    )


def video_info_from_config(fourcc: str, record: bytes) -> VideoInfo:
    """Summarise a video stream from its sequence start.

    Args:
        fourcc: ``"avc1"`` (also for legacy FLV CodecID 7), ``"hvc1"``/``"hev1"``
            (also for the legacy CodecID 12 extension), ``"av01"``, ``"vp09"`` or
            ``"vp08"``. Other FourCCs give a VideoInfo with only ``codec`` set.
        record: The configuration record: ``AVCDecoderConfigurationRecord``
            (14496-15 §5.3.3.1), ``HEVCDecoderConfigurationRecord`` (§8.3.3.1),
            ``AV1CodecConfigurationRecord`` (av1-isobmff §2.3) or
            ``VPCodecConfigurationRecord`` (VP codec binding §2.2).

    Returns:
        The summary. H.264/H.265 profile, level, size and frame rate come from the
        first SPS when the record has one, else from the record; AV1 size and rate
        come from the sequence header OBU in ``configOBUs``; VP8/VP9 records carry
        no size (see :func:`video_info_from_keyframe`).

    Raises:
        CodecHeaderError: The record or a parameter set in it is malformed or
            truncated.
    """
    # A str subclass (e.g. an enum.StrEnum FourCC) becomes a plain str in VideoInfo.
    fourcc = str(fourcc)
    data = bytes(record)
    if fourcc in ("avc1", "avc3"):
        return _avc_info(data)
    if fourcc in ("hvc1", "hev1"):
        return _hevc_info(fourcc, data)
    if fourcc == "av01":
        return _av1_info(data)
    if fourcc in ("vp09", "vp08"):
        return _vp_info(fourcc, data)
    return VideoInfo(
        codec=fourcc, profile=None, level=None, width=None, height=None, frame_rate=None
    )


def video_info_from_keyframe(info: VideoInfo, frame: bytes) -> VideoInfo:
    """Fill in the picture size of a VP8/VP9 stream from a key frame.

    VP8 and VP9 configuration records carry no picture size; the first key frame's
    header does (VP9 Bitstream Spec §6.2, RFC 6386 §9.1).

    Args:
        info: The VideoInfo from :func:`video_info_from_config`.
        frame: A coded frame of the stream (the E-RTMP ``CodedFrames`` body).

    Returns:
        ``info`` with ``width`` and ``height`` set when ``frame`` is a VP8/VP9 key
        frame (or VP9 intra-only frame); otherwise ``info`` unchanged.

    Raises:
        CodecHeaderError: The frame header is malformed or truncated.
    """
    if info.codec == "vp09":
        size = vp9.parse_vp9_frame_size(frame)
    elif info.codec == "vp08":
        size = vp9.parse_vp8_frame_size(frame)
    else:
        return info
    if size is None:
        return info
    return dataclasses.replace(info, width=size[0], height=size[1])


def audio_info_from_flv_sound_flags(flags: int) -> AudioInfo:
    """Summarise a legacy FLV audio stream from its AudioTagHeader byte.

    For AAC the flags are fixed ("always 44 kHz stereo", FLV v10.1 E.4.2.1) and say
    nothing; its rate and channels are left None (use the AudioSpecificConfig).

    Args:
        flags: The first byte of the legacy AudioTagHeader.

    Returns:
        The summary, with the per-format rules of :func:`parse_flv_sound_flags`
        (Speex 16 kHz mono, G.711 8 kHz, Nellymoser mono, ...).

    Raises:
        CodecHeaderError: ``flags`` is not a byte, or SoundFormat is 9 (an E-RTMP
            ExAudioTagHeader).
    """
    sound = audio_config.parse_flv_sound_flags(flags)
    codec = _FLV_SOUND_FORMAT_CODECS.get(sound.sound_format, f"flv-{sound.sound_format}")
    if codec == "mp4a":
        return AudioInfo(
            codec=codec, profile=None, sample_rate=None, channels=None, sample_size_bits=None
        )
    sample_size_bits = sound.sample_size_bits if codec in ("lpcm", "alaw", "ulaw") else None
    return AudioInfo(
        codec=codec,
        profile=None,
        sample_rate=sound.sample_rate_hz,
        channels=sound.channels,
        sample_size_bits=sample_size_bits,
    )


def audio_info_from_config(fourcc: str, record: bytes) -> AudioInfo:
    """Summarise an audio stream from its sequence start (or first frame).

    Args:
        fourcc: The audio FourCC. What ``record`` must hold depends on it:

            - ``"mp4a"``: the AAC ``AudioSpecificConfig`` (14496-3 §1.6.2.1).
            - ``"Opus"``: the ``OpusHead`` (RFC 7845 §5.1); an ``OpusTags`` comment
              header, which E-RTMP also allows, yields no channel count.
            - ``"fLaC"``: the STREAMINFO block (E-RTMP v2 FlacSequenceHeader).
            - ``"ac-3"``, ``"ec-3"``, ``".mp3"``: no record exists; pass the first
              coded frame.
            - ``"lpcm"``, ``"adpcm"``, ``"nellymoser"``, ``"alaw"``, ``"ulaw"``,
              ``"speex"``: no record exists; pass the legacy AudioTagHeader byte
              (``record[0]``), whose SoundFormat then decides the codec.

            Other FourCCs give an AudioInfo with only ``codec`` set.
        record: The bytes described above.

    Returns:
        The summary.

    Raises:
        CodecHeaderError: The record, frame header or flags byte is malformed or
            truncated.
    """
    fourcc = str(fourcc)
    data = bytes(record)
    if fourcc == "mp4a":
        config = audio_config.parse_audio_specific_config(data)
        return AudioInfo(
            codec="mp4a",
            profile=audio_config.aac_profile_name(config),
            sample_rate=config.sample_rate_hz,
            channels=config.channels,
            sample_size_bits=None,
        )
    if fourcc == "Opus":
        if data.startswith(_OPUS_TAGS_MAGIC):
            channels = None
        else:
            channels = audio_config.parse_opus_head(data).channels
        return AudioInfo(
            codec="Opus",
            profile=None,
            sample_rate=_OPUS_SAMPLE_RATE_HZ,
            channels=channels,
            sample_size_bits=None,
        )
    if fourcc == "fLaC":
        info = audio_config.parse_flac_stream_info(data)
        return AudioInfo(
            codec="fLaC",
            profile=None,
            sample_rate=info.sample_rate_hz,
            channels=info.channels,
            sample_size_bits=info.bits_per_sample,
        )
    if fourcc in ("ac-3", "ec-3"):
        header = audio_config.parse_ac3_frame_header(data)
        return AudioInfo(
            # The bitstream's bsid, not the FourCC, tells AC-3 from E-AC-3.
            codec="ec-3" if header.enhanced else "ac-3",
            profile=None,
            sample_rate=header.sample_rate_hz,
            channels=header.channels,
            sample_size_bits=None,
        )
    if fourcc == ".mp3":
        mpeg = audio_config.parse_mpeg_audio_frame_header(data)
        return AudioInfo(
            codec=".mp3",
            profile=mpeg.profile,
            sample_rate=mpeg.sample_rate_hz,
            channels=mpeg.channels,
            sample_size_bits=None,
        )
    if fourcc in _FLV_FLAGS_ONLY_CODECS:
        if not data:
            raise CodecHeaderError(f"{fourcc}: the AudioTagHeader byte is missing")
        return audio_info_from_flv_sound_flags(data[0])
    return AudioInfo(
        codec=fourcc, profile=None, sample_rate=None, channels=None, sample_size_bits=None
    )
