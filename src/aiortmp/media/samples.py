"""Access units and track configurations: what every muxer consumes.

An RTMP audio/video message (= an FLV tag body) is turned into *per-track* units once, by
:func:`parse_media`, and the fMP4 and MPEG-TS muxers (and the MP4 recorder) read only these:

- :class:`TrackConfig` — a track's decoder configuration, from its sequence header
  (legacy AVC/AAC sequence header, FLV v10.1 E.4.2.2/E.4.3.1; E-RTMP v2 ``SequenceStart``),
  or — for codecs without one (MP3, AC-3, E-AC-3) — from the codec alone.
- :class:`Frame` — one coded access unit of one track, with its decode time and composition
  offset in milliseconds, in the sample format ISO/IEC 14496-12/-15 store it in:

  ====================  =====================================================================
  codec (FourCC)         :attr:`Frame.data`
  ====================  =====================================================================
  ``avc1``/``hvc1``/     NAL units, each prefixed by its length (``lengthSizeMinusOne`` + 1
  ``vvc1``               bytes, from the configuration record; ISO/IEC 14496-15 §5.3.2)
  ``av01``               OBUs in the low-overhead format (``obu_has_size_field`` = 1)
  ``vp09``/``vp08``      one frame (or superframe)
  ``mp4a`` (AAC)         one raw AAC access unit (no ADTS header)
  ``Opus``               one Opus packet
  ``fLaC``               one FLAC frame
  ``ac-3``/``ec-3``      one or more syncframes
  ``.mp3``               one or more MPEG audio frames
  ====================  =====================================================================

Legacy FLV codecs map to the same FourCCs (CodecID 7 → ``avc1``, SoundFormat 10 → ``mp4a``,
SoundFormat 2/14 → ``.mp3``); other legacy codecs (H.263, VP6, Speex, Nellymoser, G.711...)
have no muxer mapping and yield nothing.

Timestamps: ``dts_ms`` is the message timestamp (the stream core's normalized timeline);
``cts_ms`` is the composition time offset (legacy AVC ``CompositionTime``, E-RTMP
``compositionTimeOffset``), so ``pts = dts + cts``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.tags import (
    AudioPacketType,
    AudioTag,
    SoundFormat,
    VideoCodecId,
    VideoPacketType,
    VideoTag,
    parse_audio_tag,
    parse_video_tag,
)

__all__ = [
    "AUDIO_CODECS",
    "CONFIGLESS_CODECS",
    "CodecHeaderError",
    "Frame",
    "MediaType",
    "TrackConfig",
    "VIDEO_CODECS",
    "parse_media",
]

#: RTMP message type ids (RTMP 1.0 §7.1.4/§7.1.5), repeated to keep media/ free of protocol/.
_AUDIO = 8
_VIDEO = 9

#: Video FourCCs a muxer may see.
VIDEO_CODECS = frozenset({"avc1", "hvc1", "vvc1", "av01", "vp09", "vp08"})
#: Audio FourCCs a muxer may see.
AUDIO_CODECS = frozenset({"mp4a", "Opus", "fLaC", "ac-3", "ec-3", ".mp3"})
#: Codecs whose frames describe themselves: a track starts with its first frame.
CONFIGLESS_CODECS = frozenset({"ac-3", "ec-3", ".mp3"})

_LEGACY_VIDEO: dict[object, str] = {VideoCodecId.AVC: "avc1"}
_LEGACY_AUDIO: dict[object, str] = {
    SoundFormat.AAC: "mp4a",
    SoundFormat.MP3: ".mp3",
    SoundFormat.MP3_8K: ".mp3",
}

_CODED_VIDEO = frozenset({VideoPacketType.CODED_FRAMES, VideoPacketType.CODED_FRAMES_X})


class MediaType(enum.StrEnum):
    """What a track carries."""

    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True, kw_only=True, slots=True)
class TrackConfig:
    """The decoder configuration of one track.

    Attributes:
        media: :class:`MediaType`.
        track_id: the E-RTMP track id (0 for legacy and single-track streams).
        codec: the FourCC (see the module table).
        record: the configuration record as the sequence header carries it:
            AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1),
            HEVCDecoderConfigurationRecord (§8.3.3.1), VvcDecoderConfigurationRecord
            (§11.2.4.2), AV1CodecConfigurationRecord (AV1-ISOBMFF §2.3),
            VPCodecConfigurationRecord (VP-ISOBMFF §2.2), AudioSpecificConfig
            (ISO/IEC 14496-3 §1.6.2.1), the Opus ID header ``OpusHead`` (RFC 7845 §5.1),
            the FLAC ``fLaC`` signature + metadata blocks (STREAMINFO first); ``b""`` for
            MP3, AC-3 and E-AC-3.
    """

    media: MediaType
    track_id: int
    codec: str
    record: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class Frame:
    """One coded access unit of one track.

    Attributes:
        media: :class:`MediaType`.
        track_id: the E-RTMP track id (0 for legacy and single-track streams).
        codec: the FourCC.
        dts_ms: decode timestamp, ms.
        cts_ms: composition time offset, ms (``pts = dts + cts``; may be negative).
        keyframe: a random access point (video key frame; every audio frame is one).
        data: the access unit in its ISO BMFF sample format (see the module table).
    """

    media: MediaType
    track_id: int
    codec: str
    dts_ms: int
    cts_ms: int
    keyframe: bool
    data: bytes


def _video_units(tag: VideoTag, timestamp_ms: int) -> list[TrackConfig | Frame]:
    out: list[TrackConfig | Frame] = []
    keyframe = tag.frame_type in (1, 4)  # KeyFrame, GeneratedKeyFrame
    for track in tag.tracks:
        codec = _LEGACY_VIDEO.get(track.codec, str(track.codec))
        if codec not in VIDEO_CODECS:
            continue
        if track.packet_type is VideoPacketType.SEQUENCE_START:
            out.append(
                TrackConfig(
                    media=MediaType.VIDEO, track_id=track.track_id, codec=codec, record=track.data
                )
            )
        elif track.packet_type in _CODED_VIDEO and track.data:
            out.append(
                Frame(
                    media=MediaType.VIDEO,
                    track_id=track.track_id,
                    codec=codec,
                    dts_ms=timestamp_ms,
                    cts_ms=track.composition_time_ms,
                    keyframe=keyframe,
                    data=track.data,
                )
            )
    return out


def _audio_units(tag: AudioTag, timestamp_ms: int) -> list[TrackConfig | Frame]:
    out: list[TrackConfig | Frame] = []
    for track in tag.tracks:
        codec = _LEGACY_AUDIO.get(track.codec, str(track.codec))
        if codec not in AUDIO_CODECS:
            continue
        if track.packet_type is AudioPacketType.SEQUENCE_START:
            out.append(
                TrackConfig(
                    media=MediaType.AUDIO, track_id=track.track_id, codec=codec, record=track.data
                )
            )
        elif track.packet_type is AudioPacketType.CODED_FRAMES and track.data:
            out.append(
                Frame(
                    media=MediaType.AUDIO,
                    track_id=track.track_id,
                    codec=codec,
                    dts_ms=timestamp_ms,
                    cts_ms=0,
                    keyframe=True,
                    data=track.data,
                )
            )
    return out


def parse_media(type_id: int, timestamp_ms: int, payload: bytes) -> list[TrackConfig | Frame]:
    """The per-track units of one RTMP audio/video message (FLV tag body).

    Args:
        type_id: 8 (audio) or 9 (video); anything else yields ``[]``.
        timestamp_ms: the message timestamp, ms (becomes :attr:`Frame.dts_ms`).
        payload: the message body.

    Returns:
        One :class:`TrackConfig` per track of a sequence header, one :class:`Frame` per
        track of coded frames; ``[]`` for sequence ends, commands, metadata,
        MultichannelConfig, silence, and codecs no muxer carries.

    Raises:
        CodecHeaderError: the tag header is truncated or malformed (E-RTMP v2: "fail in a
            controlled and predictable manner").
    """
    if type_id == _VIDEO:
        return _video_units(parse_video_tag(payload), timestamp_ms)
    if type_id == _AUDIO:
        if not payload:
            return []  # E-RTMP v2 audio silence
        return _audio_units(parse_audio_tag(payload), timestamp_ms)
    return []
