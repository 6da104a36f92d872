"""Audio and video tag headers: legacy FLV and Enhanced RTMP v2.

The payload of an RTMP audio (type 8) or video (type 9) message is exactly the body of an FLV
AUDIODATA / VIDEODATA tag (E-RTMP v2, "FLV File Format Overview": "Each TagType corresponds
directly to the same MessageType ID ... This alignment is intentional"), so everything here
serves both the RTMP relay and the FLV reader/writer.

Two levels of reading are offered:

* **Hot path** -- :func:`classify_video` and :func:`classify_audio` are called on *every*
  media message a relay forwards. They look at the first few bytes only, allocate nothing on
  the common path (a ``ModEx`` prefix, which is rare, costs one small tuple), never raise, and
  return an ``IntEnum`` member. They decide what a relay needs (is this a sequence header to
  cache? a keyframe to start a new player on? an inter frame that can be dropped?) and do
  not validate the rest of the payload: a payload :func:`parse_video_tag` rejects may still
  classify as something other than ``INVALID``. The converse holds: whenever a parse
  succeeds, the classifier returns that tag's :attr:`VideoTag.kind` / :attr:`AudioTag.kind`.
* **Full parse** -- :func:`parse_video_tag` and :func:`parse_audio_tag` decode the whole
  header (legacy VideoTagHeader/AudioTagHeader, or the ExVideoTagHeader/ExAudioTagHeader with
  ModEx, Multitrack and FourCC) into frozen dataclasses and raise
  :class:`~aiortmp.media.errors.CodecHeaderError` on anything truncated, reserved or unknown
  ("if any critical signaling or flags ... are not recognized, the system MUST fail in a
  controlled and predictable manner"). They copy the codec data out of the payload.

Every tag, multitrack or not, is a tuple of per-track entries (:class:`VideoTrack`,
:class:`AudioTrack`); a legacy or single-track tag has one track with ``track_id`` 0. The
builders :func:`encode_video_tag` / :func:`encode_audio_tag` are the exact inverses of the
parsers (``encode_video_tag(parse_video_tag(x)) == x`` for canonically encoded input), and
:func:`build_video_tag` / :func:`build_audio_tag` are single-track shortcuts.

Multitrack edge cases (E-RTMP v2, "Multitrack Streaming via Enhanced RTMP"):

* The packet type is read once for the whole message ("Fetch VideoPacketType for all video
  tracks in the video message"), and so is the frame type, so a multitrack message has one
  kind: a ``SequenceStart`` multitrack message is a sequence header for every track in it.
* Sequence headers of different tracks usually arrive in *separate* messages (FFmpeg sends
  one ``OneTrack`` message per track). A relay that caches "the" sequence header must key
  its cache by track id; the classifiers do not report track ids, so call
  :func:`parse_video_tag` on the (rare) sequence-header messages to get them.
* A legacy (non-multitrack) tag is track 0; an E-RTMP multitrack message may carry track 0
  too, so legacy and multitrack headers for the same track id replace one another.
* ``VideoPacketType.Metadata`` ignores the frame type ("If VideoPacketType.Metadata is
  present, the FrameType flags at the top of this table should be ignored"); FFmpeg sends it
  with frame type 5, so it must be tested before the command frame.
* A message with frame type ``Command`` and packet type ``Multitrack`` is a command frame:
  the spec reads ``videoCommand`` before it looks at ``Multitrack``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from aiortmp.media.errors import CodecHeaderError
from aiortmp.protocol.errors import LocalProtocolError

__all__ = [
    "AacPacketType",
    "AudioChannelOrder",
    "AudioFourCC",
    "AudioKind",
    "AudioPacketModExType",
    "AudioPacketType",
    "AudioTag",
    "AudioTrack",
    "AvMultitrackType",
    "AvcPacketType",
    "ModEx",
    "MultichannelConfig",
    "SoundFormat",
    "SoundRate",
    "SoundSize",
    "SoundType",
    "VideoCodecId",
    "VideoCommand",
    "VideoFourCC",
    "VideoFrameType",
    "VideoKind",
    "VideoPacketModExType",
    "VideoPacketType",
    "VideoTag",
    "VideoTrack",
    "build_audio_tag",
    "build_video_tag",
    "classify_audio",
    "classify_video",
    "encode_audio_tag",
    "encode_video_tag",
    "parse_audio_tag",
    "parse_multichannel_config",
    "parse_video_tag",
]

Buffer = bytes | bytearray | memoryview


# --------------------------------------------------------------------------------------------
# Enumerations (names follow E-RTMP v2 "Enhanced Video" / "Enhanced Audio")
# --------------------------------------------------------------------------------------------


class VideoFrameType(enum.IntEnum):
    """``VideoFrameType`` (FLV v10.1 E.4.3.1 FrameType; E-RTMP v2 ``videoFrameType``, UB[3]).

    0, 6 and 7 are reserved.
    """

    KEY_FRAME = 1
    INTER_FRAME = 2
    DISPOSABLE_INTER_FRAME = 3
    GENERATED_KEY_FRAME = 4
    COMMAND = 5


class VideoCodecId(enum.IntEnum):
    """Legacy ``CodecID`` of the VideoTagHeader (FLV v10.1 E.4.3.1; E-RTMP v2 VideoCodecId)."""

    SORENSON_H263 = 2
    SCREEN = 3
    ON2_VP6 = 4
    ON2_VP6_ALPHA = 5
    SCREEN_V2 = 6
    AVC = 7


class AvcPacketType(enum.IntEnum):
    """Legacy ``AVCPacketType`` (FLV v10.1 E.4.3.1).

    The values and meanings coincide with :class:`VideoPacketType` 0–2, so parsed legacy AVC
    tracks carry them as ``VideoPacketType`` values.
    """

    SEQUENCE_HEADER = 0
    NALU = 1
    END_OF_SEQUENCE = 2


class VideoPacketType(enum.IntEnum):
    """``VideoPacketType`` of the ExVideoTagHeader (E-RTMP v2, UB[4]); 8–15 are reserved."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    CODED_FRAMES_X = 3
    METADATA = 4
    MPEG2TS_SEQUENCE_START = 5
    MULTITRACK = 6
    MOD_EX = 7


class VideoPacketModExType(enum.IntEnum):
    """``VideoPacketModExType`` (E-RTMP v2); 1–15 are reserved."""

    TIMESTAMP_OFFSET_NANO = 0


class VideoCommand(enum.IntEnum):
    """``VideoCommand``, the UI8 carried by a command frame (E-RTMP v2; FLV v10.1 E.4.3.1)."""

    START_SEEK = 0
    END_SEEK = 1


class VideoFourCC(enum.StrEnum):
    """``VideoFourCc`` values of the enhanced FourCC pipeline (E-RTMP v2)."""

    VP8 = "vp08"
    VP9 = "vp09"
    AV1 = "av01"
    AVC = "avc1"
    HEVC = "hvc1"
    #: VVC / H.266 (E-RTMP v2, 2026-01-31 revision); CodedFrames carry a composition offset.
    VVC = "vvc1"


class AvMultitrackType(enum.IntEnum):
    """``AvMultitrackType`` (E-RTMP v2, shared by audio and video); 3–15 are reserved."""

    ONE_TRACK = 0
    MANY_TRACKS = 1
    MANY_TRACKS_MANY_CODECS = 2


class SoundFormat(enum.IntEnum):
    """``SoundFormat`` of the AudioTagHeader (FLV v10.1 E.4.2.1; E-RTMP v2, UB[4]).

    12 and 13 are reserved; 9 (``EX_HEADER``) switches to the ExAudioTagHeader.
    """

    LPCM_PLATFORM_ENDIAN = 0
    ADPCM = 1
    MP3 = 2
    LPCM_LITTLE_ENDIAN = 3
    NELLYMOSER_16K_MONO = 4
    NELLYMOSER_8K_MONO = 5
    NELLYMOSER = 6
    G711_A_LAW = 7
    G711_MU_LAW = 8
    EX_HEADER = 9
    AAC = 10
    SPEEX = 11
    MP3_8K = 14
    NATIVE = 15


class SoundRate(enum.IntEnum):
    """``SoundRate`` (FLV v10.1 E.4.2.1, UB[2])."""

    KHZ_5_5 = 0
    KHZ_11 = 1
    KHZ_22 = 2
    KHZ_44 = 3


class SoundSize(enum.IntEnum):
    """``SoundSize`` (FLV v10.1 E.4.2.1, UB[1]); only meaningful for uncompressed formats."""

    BITS_8 = 0
    BITS_16 = 1


class SoundType(enum.IntEnum):
    """``SoundType`` (FLV v10.1 E.4.2.1, UB[1])."""

    MONO = 0
    STEREO = 1


class AacPacketType(enum.IntEnum):
    """Legacy ``AACPacketType`` (FLV v10.1 E.4.2.1).

    The values and meanings coincide with :class:`AudioPacketType` 0–1.
    """

    SEQUENCE_HEADER = 0
    RAW = 1


class AudioPacketType(enum.IntEnum):
    """``AudioPacketType`` of the ExAudioTagHeader (E-RTMP v2, UB[4]); 3, 6, 8–15 reserved."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    MULTICHANNEL_CONFIG = 4
    MULTITRACK = 5
    MOD_EX = 7


class AudioPacketModExType(enum.IntEnum):
    """``AudioPacketModExType`` (E-RTMP v2); 1–15 are reserved."""

    TIMESTAMP_OFFSET_NANO = 0


class AudioFourCC(enum.StrEnum):
    """``AudioFourCc`` values of the enhanced FourCC pipeline (E-RTMP v2)."""

    AC3 = "ac-3"
    EAC3 = "ec-3"
    OPUS = "Opus"
    MP3 = ".mp3"
    FLAC = "fLaC"
    AAC = "mp4a"


class AudioChannelOrder(enum.IntEnum):
    """``AudioChannelOrder`` of a MultichannelConfig packet (E-RTMP v2)."""

    UNSPECIFIED = 0
    NATIVE = 1
    CUSTOM = 2


class VideoKind(enum.IntEnum):
    """What a relay needs to know about a video message (see :func:`classify_video`)."""

    #: Empty, too short for the fields the classifier reads, or a reserved value.
    INVALID = 0
    #: Legacy AVC sequence header, or E-RTMP ``SequenceStart`` / ``MPEG2TSSequenceStart``.
    SEQUENCE_HEADER = 1
    #: Coded frames with frame type KeyFrame or GeneratedKeyFrame (a seekable frame).
    KEYFRAME = 2
    #: Coded frames with frame type InterFrame or DisposableInterFrame.
    INTER = 3
    #: Legacy AVC end of sequence, or E-RTMP ``SequenceEnd``.
    SEQUENCE_END = 4
    #: Frame type 5: a video info/command frame carrying a :class:`VideoCommand`.
    COMMAND = 5
    #: E-RTMP ``VideoPacketType.Metadata`` (AMF-encoded, e.g. ``colorInfo``).
    METADATA = 6


class AudioKind(enum.IntEnum):
    """What a relay needs to know about an audio message (see :func:`classify_audio`)."""

    #: Too short for the fields the classifier reads, or a reserved value.
    INVALID = 0
    #: An empty audio message: E-RTMP v2's "audio silence" message (no AudioTagHeader).
    SILENCE = 1
    #: Legacy AAC sequence header, or E-RTMP ``SequenceStart``.
    SEQUENCE_HEADER = 2
    #: Coded audio frames (any legacy format other than an AAC sequence header).
    FRAME = 3
    #: E-RTMP ``SequenceEnd``.
    SEQUENCE_END = 4
    #: E-RTMP ``MultichannelConfig`` (decoder configuration, cache it with the header).
    MULTICHANNEL_CONFIG = 5


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ModEx:
    """One ``ModEx`` entry of an Ex(Video|Audio)TagHeader (E-RTMP v2, "ModEx").

    Attributes:
        mod_ex_type: the ``VideoPacketModExType`` / ``AudioPacketModExType`` (UB[4]); unknown
            types are kept, since every ModEx entry carries its own size.
        data: the ``modExData`` bytes, 1 to 65536 of them.
    """

    mod_ex_type: int
    data: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class VideoTrack:
    """One track of a video message (a legacy or single-track tag has exactly one).

    Attributes:
        codec: the legacy :class:`VideoCodecId`, or the E-RTMP :class:`VideoFourCC`.
        packet_type: the :class:`VideoPacketType` (shared by every track of a message). For
            legacy AVC it is the ``AVCPacketType`` (same values); for other legacy codecs
            it is ``CODED_FRAMES``.
        data: the codec payload after the header fields (configuration record, NAL units,
            OBUs, AMF metadata, ...), without the composition time.
        track_id: ``videoTrackId`` (UI8); 0 for legacy and single-track tags.
        composition_time_ms: ``CompositionTime`` / ``compositionTimeOffset`` (SI24,
            milliseconds). Present on the wire for legacy AVC (any packet type; the spec
            says it is 0 unless AVCPacketType is 1, the value read is kept) and for E-RTMP
            ``avc1``/``hvc1`` ``CodedFrames``; 0 everywhere else (``CodedFramesX`` implies 0).
    """

    codec: VideoCodecId | VideoFourCC
    packet_type: VideoPacketType
    data: bytes = b""
    track_id: int = 0
    composition_time_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class VideoTag:
    """A parsed video message payload / FLV VIDEODATA body.

    Attributes:
        frame_type: ``FrameType`` / ``videoFrameType`` (a :class:`VideoFrameType` value; any
            0–7 for ``Metadata``, whose frame type the spec says to ignore).
        is_ex_header: ``IsExHeader`` (``isExVideoHeader``): True for the E-RTMP
            ExVideoTagHeader, False for the legacy VideoTagHeader.
        tracks: the per-track entries; empty only for command frames.
        codec_id: the legacy ``CodecID`` (kept for command frames too); None for E-RTMP.
        command: the :class:`VideoCommand` of a command frame (frame type 5), else None.
        multitrack_type: the ``AvMultitrackType`` if the message used
            ``VideoPacketType.Multitrack``, else None.
        mod_ex: the ``ModEx`` entries that preceded the packet type, in wire order.
    """

    frame_type: int
    is_ex_header: bool
    tracks: tuple[VideoTrack, ...] = ()
    codec_id: VideoCodecId | None = None
    command: VideoCommand | None = None
    multitrack_type: AvMultitrackType | None = None
    mod_ex: tuple[ModEx, ...] = ()

    @property
    def packet_type(self) -> VideoPacketType | None:
        """The packet type shared by all tracks, or None for a command frame."""
        return self.tracks[0].packet_type if self.tracks else None

    @property
    def kind(self) -> VideoKind:
        """The :class:`VideoKind` :func:`classify_video` returns for this tag's encoding."""
        if self.command is not None:
            return VideoKind.COMMAND
        packet_type = self.packet_type
        if packet_type is None:
            return VideoKind.INVALID
        return _video_kind(self.frame_type, packet_type)

    @property
    def is_keyframe(self) -> bool:
        """True for coded frames of type KeyFrame or GeneratedKeyFrame (seekable frames).

        Sequence headers are not keyframes here, even though they are sent with frame type
        KeyFrame; see :attr:`is_sequence_header`.
        """
        return self.kind is VideoKind.KEYFRAME

    @property
    def is_sequence_header(self) -> bool:
        """True for a legacy AVC sequence header and for every E-RTMP ``SequenceStart`` or
        ``MPEG2TSSequenceStart`` (multitrack included)."""
        return self.kind is VideoKind.SEQUENCE_HEADER

    @property
    def is_sequence_end(self) -> bool:
        """True for a legacy AVC end of sequence or an E-RTMP ``SequenceEnd``."""
        return self.kind is VideoKind.SEQUENCE_END

    @property
    def timestamp_offset_ns(self) -> int:
        """The ``TimestampOffsetNano`` ModEx value in nanoseconds (0 if absent).

        E-RTMP v2: ``videoTimestampNanoOffset = bytesToUI24(modExData)``; it refines the
        RTMP timestamp of this message only.
        """
        return _timestamp_offset_ns(self.mod_ex)


@dataclass(frozen=True, kw_only=True, slots=True)
class AudioTrack:
    """One track of an audio message (a legacy or single-track tag has exactly one).

    Attributes:
        codec: the legacy :class:`SoundFormat`, or the E-RTMP :class:`AudioFourCC`.
        packet_type: the :class:`AudioPacketType` (shared by every track of a message). For
            legacy AAC it is the ``AACPacketType`` (same values); for other legacy formats
            it is ``CODED_FRAMES``.
        data: the codec payload after the header fields (AudioSpecificConfig, Opus ID
            header, coded frames, the MultichannelConfig bytes, ...).
        track_id: ``audioTrackId`` (UI8); 0 for legacy and single-track tags.
    """

    codec: SoundFormat | AudioFourCC
    packet_type: AudioPacketType
    data: bytes = b""
    track_id: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class AudioTag:
    """A parsed audio message payload / FLV AUDIODATA body.

    Attributes:
        sound_format: ``SoundFormat`` (UB[4]); ``SoundFormat.EX_HEADER`` for E-RTMP.
        tracks: the per-track entries (at least one).
        sound_rate: ``SoundRate`` (UB[2], a :class:`SoundRate` value); None for E-RTMP,
            where those bits are the ``AudioPacketType``.
        sound_size: ``SoundSize`` (UB[1]); None for E-RTMP.
        sound_type: ``SoundType`` (UB[1]); None for E-RTMP.
        multitrack_type: the ``AvMultitrackType`` if the message used
            ``AudioPacketType.Multitrack``, else None.
        mod_ex: the ``ModEx`` entries that preceded the packet type, in wire order.
    """

    sound_format: SoundFormat
    tracks: tuple[AudioTrack, ...]
    sound_rate: int | None = None
    sound_size: int | None = None
    sound_type: int | None = None
    multitrack_type: AvMultitrackType | None = None
    mod_ex: tuple[ModEx, ...] = ()

    @property
    def is_ex_header(self) -> bool:
        """True for the E-RTMP ExAudioTagHeader (``SoundFormat.ExHeader``)."""
        return self.sound_format is SoundFormat.EX_HEADER

    @property
    def packet_type(self) -> AudioPacketType:
        """The packet type shared by all tracks."""
        return self.tracks[0].packet_type

    @property
    def kind(self) -> AudioKind:
        """The :class:`AudioKind` :func:`classify_audio` returns for this tag's encoding."""
        return _AUDIO_KIND_BY_PACKET_TYPE[self.packet_type]

    @property
    def is_sequence_header(self) -> bool:
        """True for a legacy AAC sequence header and every E-RTMP ``SequenceStart``."""
        return self.packet_type is AudioPacketType.SEQUENCE_START

    @property
    def is_sequence_end(self) -> bool:
        """True for an E-RTMP ``SequenceEnd``."""
        return self.packet_type is AudioPacketType.SEQUENCE_END

    @property
    def timestamp_offset_ns(self) -> int:
        """The ``TimestampOffsetNano`` ModEx value in nanoseconds (0 if absent)."""
        return _timestamp_offset_ns(self.mod_ex)


@dataclass(frozen=True, kw_only=True, slots=True)
class MultichannelConfig:
    """The body of an E-RTMP ``AudioPacketType.MultichannelConfig`` packet.

    Attributes:
        channel_order: ``audioChannelOrder`` (:class:`AudioChannelOrder`).
        channel_count: ``channelCount`` (UI8).
        channel_mapping: ``audioChannelMapping`` (one ``AudioChannel`` per channel) for the
            Custom order, else None.
        channel_flags: ``audioChannelFlags`` (``AudioChannelMask`` bits, UI32) for the
            Native order, else None.
    """

    channel_order: AudioChannelOrder
    channel_count: int
    channel_mapping: tuple[int, ...] | None = None
    channel_flags: int | None = None


# --------------------------------------------------------------------------------------------
# Hot-path classifiers
# --------------------------------------------------------------------------------------------

_V_INVALID = VideoKind.INVALID
_V_SEQUENCE_HEADER = VideoKind.SEQUENCE_HEADER
_V_KEYFRAME = VideoKind.KEYFRAME
_V_INTER = VideoKind.INTER
_V_SEQUENCE_END = VideoKind.SEQUENCE_END
_V_COMMAND = VideoKind.COMMAND
_V_METADATA = VideoKind.METADATA

_A_INVALID = AudioKind.INVALID
_A_SILENCE = AudioKind.SILENCE
_A_SEQUENCE_HEADER = AudioKind.SEQUENCE_HEADER
_A_FRAME = AudioKind.FRAME


def _video_kind(frame_type: int, packet_type: int) -> VideoKind:
    """Kind of a non-command video packet from its frame type and (inner) packet type."""
    if packet_type == VideoPacketType.METADATA:
        return _V_METADATA
    if not 1 <= frame_type <= 4:
        return _V_INVALID
    if packet_type in (VideoPacketType.SEQUENCE_START, VideoPacketType.MPEG2TS_SEQUENCE_START):
        return _V_SEQUENCE_HEADER
    if packet_type == VideoPacketType.SEQUENCE_END:
        return _V_SEQUENCE_END
    if packet_type in (VideoPacketType.CODED_FRAMES, VideoPacketType.CODED_FRAMES_X):
        return _V_KEYFRAME if frame_type in (1, 4) else _V_INTER
    return _V_INVALID


# Kind of an ExVideoTagHeader indexed by (frameType << 4) | packetType, for the packet types
# that need no further bytes to classify (ModEx, Multitrack and Command are handled first).
_EX_VIDEO_KIND: tuple[VideoKind, ...] = tuple(_video_kind(i >> 4, i & 0x0F) for i in range(128))

# Kind of a legacy VideoTagHeader by its first byte, for codecs other than AVC (whose kind
# needs the AVCPacketType in the second byte) and frame types other than Command.
_LEGACY_VIDEO_KIND: tuple[VideoKind, ...] = tuple(
    _video_kind(b >> 4, VideoPacketType.CODED_FRAMES) if 2 <= (b & 0x0F) <= 6 else _V_INVALID
    for b in range(128)
)

# The AVC sequence header / end of sequence kinds by AVCPacketType (index 1 is resolved by the
# frame type).
_AVC_KIND = (_V_SEQUENCE_HEADER, _V_INVALID, _V_SEQUENCE_END)

_AUDIO_KIND_BY_PACKET_TYPE: tuple[AudioKind, ...] = (
    AudioKind.SEQUENCE_HEADER,  # SequenceStart
    AudioKind.FRAME,  # CodedFrames
    AudioKind.SEQUENCE_END,  # SequenceEnd
    AudioKind.INVALID,  # 3 reserved
    AudioKind.MULTICHANNEL_CONFIG,  # MultichannelConfig
    AudioKind.INVALID,  # Multitrack (never a final packet type)
    AudioKind.INVALID,  # 6 reserved
    AudioKind.INVALID,  # ModEx (never a final packet type)
) + (AudioKind.INVALID,) * 8

# Legacy AudioTagHeader kind by SoundFormat (AAC and ExHeader need more bytes).
_LEGACY_AUDIO_KIND: tuple[AudioKind, ...] = tuple(
    _A_INVALID if fmt in (9, 10, 12, 13) else _A_FRAME for fmt in range(16)
)


def _skip_mod_ex(payload: Buffer, n: int, pos: int) -> tuple[int, int]:
    """Skip a ModEx chain starting at ``pos``; return (position after it, packet type).

    Returns ``(-1, -1)`` if the chain is truncated. Only reached on the rare ModEx path, so
    the tuple it allocates does not touch the common case.
    """
    while True:
        if pos >= n:
            return -1, -1
        size = payload[pos] + 1
        pos += 1
        if size == 256:
            if pos + 2 > n:
                return -1, -1
            size = ((payload[pos] << 8) | payload[pos + 1]) + 1
            pos += 2
        pos += size
        if pos >= n:
            return -1, -1
        packet_type = payload[pos] & 0x0F
        pos += 1
        if packet_type != 7:
            return pos, packet_type


def classify_video(payload: Buffer) -> VideoKind:
    """Classify a video message payload by its first few bytes, for the relay hot path.

    Reads the legacy VideoTagHeader (FLV v10.1 E.4.3.1) or the ExVideoTagHeader (E-RTMP v2)
    only as far as needed: byte 0, the AVCPacketType, a ModEx chain if present, and the
    Multitrack byte. It checks that the FourCC and track id bytes are there but does not
    look them up. Never raises and allocates nothing (except on a ModEx prefix).

    Edge cases: ``Metadata`` wins over a Command frame type (the spec ignores the frame
    type for it); a Command frame type wins over ``Multitrack``; a multitrack message has
    the one kind of its shared packet type (see the module docstring).

    Args:
        payload: the RTMP video message payload (FLV VIDEODATA body).

    Returns:
        The :class:`VideoKind`; ``INVALID`` for an empty or too-short payload or reserved
        values. Whenever :func:`parse_video_tag` accepts ``payload``, the result equals the
        parsed tag's :attr:`VideoTag.kind`.
    """
    n = len(payload)
    if n == 0:
        return _V_INVALID
    b = payload[0]
    if b < 0x80:
        # Legacy VideoTagHeader: FrameType UB[4], CodecID UB[4].
        if b >> 4 == 5:
            return _V_COMMAND if n >= 2 else _V_INVALID
        if b & 0x0F != 7:
            return _LEGACY_VIDEO_KIND[b]
        if n < 5:  # AVCPacketType UI8 + CompositionTime SI24
            return _V_INVALID
        avc_packet_type = payload[1]
        if avc_packet_type == 1:
            return _LEGACY_VIDEO_KIND[b & 0xF0 | 2]  # same kind as any non-AVC coded frame
        return _AVC_KIND[avc_packet_type] if avc_packet_type <= 2 else _V_INVALID
    # ExVideoTagHeader: isExVideoHeader UB[1], videoFrameType UB[3], videoPacketType UB[4].
    frame_type = (b >> 4) & 0x07
    packet_type = b & 0x0F
    pos = 1
    if packet_type == 7:  # ModEx
        pos, packet_type = _skip_mod_ex(payload, n, pos)
        if pos < 0:
            return _V_INVALID
    if packet_type == 4:  # Metadata: "the FrameType flags ... should be ignored"
        return _V_METADATA if n >= pos + 4 else _V_INVALID
    if frame_type == 5:  # Command: videoCommand UI8, no FourCC
        return _V_COMMAND if n >= pos + 1 else _V_INVALID
    if packet_type == 6:  # Multitrack: AvMultitrackType UB[4], inner videoPacketType UB[4]
        if pos >= n:
            return _V_INVALID
        mt = payload[pos]
        packet_type = mt & 0x0F
        mt >>= 4
        if mt > 2 or packet_type >= 6:
            return _V_INVALID
        # This byte, a FourCC (in the header, or before the first track for
        # ManyTracksManyCodecs), then the first track id.
        pos += 6
        return _EX_VIDEO_KIND[frame_type << 4 | packet_type] if n >= pos else _V_INVALID
    if n < pos + 4:  # videoFourCc
        return _V_INVALID
    return _EX_VIDEO_KIND[frame_type << 4 | packet_type]


def classify_audio(payload: Buffer) -> AudioKind:
    """Classify an audio message payload by its first few bytes, for the relay hot path.

    Reads the legacy AudioTagHeader (FLV v10.1 E.4.2.1) or the ExAudioTagHeader (E-RTMP v2)
    only as far as needed: byte 0, the AACPacketType, a ModEx chain if present, and the
    Multitrack byte. Never raises and allocates nothing (except on a ModEx prefix).

    Args:
        payload: the RTMP audio message payload (FLV AUDIODATA body).

    Returns:
        The :class:`AudioKind`: ``SILENCE`` for an empty message (E-RTMP v2: "an empty audio
        message without an AudioTagHeader, indicating a period of silence"), ``INVALID`` for
        a too-short payload or reserved values. Whenever :func:`parse_audio_tag` accepts
        ``payload``, the result equals the parsed tag's :attr:`AudioTag.kind`.
    """
    n = len(payload)
    if n == 0:
        return _A_SILENCE
    b = payload[0]
    sound_format = b >> 4
    if sound_format == 10:  # AAC: AACPacketType UI8
        if n < 2:
            return _A_INVALID
        aac_packet_type = payload[1]
        if aac_packet_type == 0:
            return _A_SEQUENCE_HEADER
        return _A_FRAME if aac_packet_type == 1 else _A_INVALID
    if sound_format != 9:
        return _LEGACY_AUDIO_KIND[sound_format]
    # ExAudioTagHeader: the low UB[4] is the audioPacketType.
    packet_type = b & 0x0F
    pos = 1
    if packet_type == 7:  # ModEx
        pos, packet_type = _skip_mod_ex(payload, n, pos)
        if pos < 0:
            return _A_INVALID
    if packet_type == 5:  # Multitrack: AvMultitrackType UB[4], inner audioPacketType UB[4]
        if pos >= n:
            return _A_INVALID
        mt = payload[pos]
        packet_type = mt & 0x0F
        if mt >> 4 > 2:
            return _A_INVALID
        pos += 6  # the byte above, a FourCC (header or first track), the first track id
    else:
        pos += 4  # audioFourCc
    return _AUDIO_KIND_BY_PACKET_TYPE[packet_type] if n >= pos else _A_INVALID


# --------------------------------------------------------------------------------------------
# Full parsers
# --------------------------------------------------------------------------------------------

_VIDEO_FOURCCS: dict[bytes, VideoFourCC] = {m.value.encode("ascii"): m for m in VideoFourCC}
_AUDIO_FOURCCS: dict[bytes, AudioFourCC] = {m.value.encode("ascii"): m for m in AudioFourCC}
_CTS_FOURCCS = (VideoFourCC.AVC, VideoFourCC.HEVC, VideoFourCC.VVC)
_FourCC = TypeVar("_FourCC", VideoFourCC, AudioFourCC)


def _si24(data: bytes, pos: int) -> int:
    value = int.from_bytes(data[pos : pos + 3], "big")
    return value - 0x1000000 if value & 0x800000 else value


def _timestamp_offset_ns(mod_ex: tuple[ModEx, ...]) -> int:
    for entry in mod_ex:
        if entry.mod_ex_type == 0:  # TimestampOffsetNano
            return int.from_bytes(entry.data[:3], "big")
    return 0


def _as_bytes(payload: Buffer) -> bytes:
    return payload if isinstance(payload, bytes) else bytes(payload)


class _Cursor:
    """A bounds-checked reader over one payload; every shortfall is a CodecHeaderError."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def need(self, count: int, field: str) -> None:
        if self.pos + count > len(self.data):
            raise CodecHeaderError(
                f"{self.what} truncated: {field} needs {count} byte(s) at offset {self.pos}, "
                f"payload is {len(self.data)} bytes"
            )

    def u8(self, field: str) -> int:
        self.need(1, field)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uint(self, count: int, field: str) -> int:
        self.need(count, field)
        value = int.from_bytes(self.data[self.pos : self.pos + count], "big")
        self.pos += count
        return value

    def take(self, count: int, field: str) -> bytes:
        self.need(count, field)
        value = self.data[self.pos : self.pos + count]
        self.pos += count
        return value

    def rest(self) -> bytes:
        value = self.data[self.pos :]
        self.pos = len(self.data)
        return value


def _read_mod_ex(cur: _Cursor, packet_type: int) -> tuple[tuple[ModEx, ...], int]:
    """Read the ModEx loop (E-RTMP v2 "Process each ModEx data packet")."""
    entries: list[ModEx] = []
    while packet_type == 7:
        # "modExDataSize = UI8 + 1 ... if (modExDataSize == 256) modExDataSize = UI16 + 1"
        size = cur.u8("modExDataSize") + 1
        if size == 256:
            size = cur.uint(2, "modExDataSize (UI16)") + 1
        data = cur.take(size, "modExData")
        b = cur.u8("PacketModExType/PacketType")
        mod_ex_type = b >> 4
        packet_type = b & 0x0F
        if mod_ex_type == 0 and size < 3:
            # "modExData must be at least 3 bytes" for TimestampOffsetNano.
            raise CodecHeaderError(f"{cur.what}: TimestampOffsetNano ModEx has {size} byte(s)")
        entries.append(ModEx(mod_ex_type=mod_ex_type, data=data))
    return tuple(entries), packet_type


def _read_video_fourcc(cur: _Cursor) -> VideoFourCC:
    raw = cur.take(4, "videoFourCc")
    fourcc = _VIDEO_FOURCCS.get(raw)
    if fourcc is None:
        raise CodecHeaderError(f"unknown videoFourCc {raw!r}")
    return fourcc


def _read_audio_fourcc(cur: _Cursor) -> AudioFourCC:
    raw = cur.take(4, "audioFourCc")
    fourcc = _AUDIO_FOURCCS.get(raw)
    if fourcc is None:
        raise CodecHeaderError(f"unknown audioFourCc {raw!r}")
    return fourcc


def _read_command(cur: _Cursor) -> VideoCommand:
    value = cur.u8("videoCommand")
    if value > 1:
        raise CodecHeaderError(f"reserved VideoCommand {value}")
    if cur.remaining():
        raise CodecHeaderError(f"{cur.remaining()} byte(s) after the videoCommand")
    return VideoCommand(value)


def _video_track(
    body: bytes, fourcc: VideoFourCC, packet_type: VideoPacketType, track_id: int
) -> VideoTrack:
    composition_time_ms = 0
    if packet_type is VideoPacketType.CODED_FRAMES and fourcc in _CTS_FOURCCS:
        # "compositionTimeOffset = SI24" for Avc and Hevc CodedFrames only.
        if len(body) < 3:
            raise CodecHeaderError(f"{fourcc} CodedFrames truncated: no compositionTimeOffset")
        composition_time_ms = _si24(body, 0)
        body = body[3:]
    return VideoTrack(
        codec=fourcc,
        packet_type=packet_type,
        data=body,
        track_id=track_id,
        composition_time_ms=composition_time_ms,
    )


def _read_tracks(
    cur: _Cursor,
    multitrack_type: AvMultitrackType,
    read_fourcc: Callable[[_Cursor], _FourCC],
) -> list[tuple[_FourCC, int, bytes]]:
    """Read a multitrack body; return (FourCC, track id, track body) per track.

    E-RTMP v2 ExVideoTagBody / ExAudioTagBody: one FourCC for all tracks unless
    ManyTracksManyCodecs puts one before each track; then ``trackId`` UI8; then, unless
    OneTrack, ``sizeOf...Track`` UI24 ("starts counting immediately after the position where
    the `sizeOf...Track` value is located").
    """
    shared = None
    if multitrack_type is not AvMultitrackType.MANY_TRACKS_MANY_CODECS:
        shared = read_fourcc(cur)
    tracks: list[tuple[_FourCC, int, bytes]] = []
    while True:
        fourcc = read_fourcc(cur) if shared is None else shared
        track_id = cur.u8("trackId")
        if multitrack_type is AvMultitrackType.ONE_TRACK:
            tracks.append((fourcc, track_id, cur.rest()))
            return tracks
        size = cur.uint(3, "sizeOfTrack")
        tracks.append((fourcc, track_id, cur.take(size, "track data")))
        if not cur.remaining():
            return tracks


def parse_video_tag(payload: Buffer) -> VideoTag:
    """Parse a video message payload / FLV VIDEODATA body.

    Implements the legacy VideoTagHeader (FLV v10.1 E.4.3.1) and the ExVideoTagHeader and
    ExVideoTagBody of E-RTMP v2 ("Enhanced Video"): ModEx, Command frames, Metadata,
    Multitrack (OneTrack, ManyTracks, ManyTracksManyCodecs) and FourCC. The whole payload
    is consumed ("the bitstream MUST be processed completely").

    Args:
        payload: the whole message payload.

    Returns:
        The parsed :class:`VideoTag`; track data are copies.

    Raises:
        CodecHeaderError: the payload is empty or truncated, or uses a reserved frame type,
            codec id, packet type, multitrack type or command, or an unknown FourCC, or has
            bytes left over after a command frame.
    """
    data = _as_bytes(payload)
    if not data:
        raise CodecHeaderError("empty video payload")
    cur = _Cursor(data, "video tag")
    b = cur.u8("VideoTagHeader")
    if b < 0x80:
        return _parse_legacy_video(cur, b)
    frame_type = (b >> 4) & 0x07
    mod_ex, packet_type = _read_mod_ex(cur, b & 0x0F)
    if packet_type != VideoPacketType.METADATA and frame_type == VideoFrameType.COMMAND:
        command = _read_command(cur)
        return VideoTag(frame_type=frame_type, is_ex_header=True, command=command, mod_ex=mod_ex)
    if packet_type != VideoPacketType.METADATA and not 1 <= frame_type <= 4:
        raise CodecHeaderError(f"reserved videoFrameType {frame_type}")
    if packet_type == VideoPacketType.MULTITRACK:
        b = cur.u8("videoMultitrackType")
        if b >> 4 > 2:
            raise CodecHeaderError(f"reserved AvMultitrackType {b >> 4}")
        multitrack_type = AvMultitrackType(b >> 4)
        packet_type = b & 0x0F
        # "This fetch MUST not result in a VideoPacketType.Multitrack"
        if packet_type >= VideoPacketType.MULTITRACK:
            raise CodecHeaderError(f"invalid multitrack videoPacketType {packet_type}")
        inner = VideoPacketType(packet_type)
        tracks = tuple(
            _video_track(body, fourcc, inner, track_id)
            for fourcc, track_id, body in _read_tracks(cur, multitrack_type, _read_video_fourcc)
        )
        return VideoTag(
            frame_type=frame_type,
            is_ex_header=True,
            tracks=tracks,
            multitrack_type=multitrack_type,
            mod_ex=mod_ex,
        )
    if packet_type > VideoPacketType.MULTITRACK:
        raise CodecHeaderError(f"reserved videoPacketType {packet_type}")
    fourcc = _read_video_fourcc(cur)
    track = _video_track(cur.rest(), fourcc, VideoPacketType(packet_type), 0)
    return VideoTag(frame_type=frame_type, is_ex_header=True, tracks=(track,), mod_ex=mod_ex)


def _parse_legacy_video(cur: _Cursor, b: int) -> VideoTag:
    frame_type = b >> 4
    codec = b & 0x0F
    if not 2 <= codec <= 7:
        raise CodecHeaderError(f"reserved video CodecID {codec}")
    codec_id = VideoCodecId(codec)
    if frame_type == VideoFrameType.COMMAND:
        # "If FrameType == 5, instead of a video payload, the message stream contains a UI8"
        command = _read_command(cur)
        return VideoTag(
            frame_type=frame_type, is_ex_header=False, codec_id=codec_id, command=command
        )
    if not 1 <= frame_type <= 4:
        raise CodecHeaderError(f"reserved video FrameType {frame_type}")
    packet_type = VideoPacketType.CODED_FRAMES
    composition_time_ms = 0
    if codec_id is VideoCodecId.AVC:
        avc_packet_type = cur.u8("AVCPacketType")
        if avc_packet_type > 2:
            raise CodecHeaderError(f"reserved AVCPacketType {avc_packet_type}")
        packet_type = VideoPacketType(avc_packet_type)
        cur.need(3, "CompositionTime")
        composition_time_ms = _si24(cur.data, cur.pos)
        cur.pos += 3
    track = VideoTrack(
        codec=codec_id,
        packet_type=packet_type,
        data=cur.rest(),
        composition_time_ms=composition_time_ms,
    )
    return VideoTag(frame_type=frame_type, is_ex_header=False, tracks=(track,), codec_id=codec_id)


def parse_multichannel_config(data: Buffer) -> MultichannelConfig:
    """Parse the body of an E-RTMP ``AudioPacketType.MultichannelConfig`` packet.

    Args:
        data: the track data of a MultichannelConfig :class:`AudioTrack`.

    Returns:
        The decoded :class:`MultichannelConfig`.

    Raises:
        CodecHeaderError: truncated, a reserved ``audioChannelOrder``, or trailing bytes.
    """
    cur = _Cursor(_as_bytes(data), "MultichannelConfig")
    order = cur.u8("audioChannelOrder")
    if order > 2:
        raise CodecHeaderError(f"reserved audioChannelOrder {order}")
    count = cur.u8("channelCount")
    mapping: tuple[int, ...] | None = None
    flags: int | None = None
    if order == AudioChannelOrder.CUSTOM:
        mapping = tuple(cur.take(count, "audioChannelMapping"))
    elif order == AudioChannelOrder.NATIVE:
        flags = cur.uint(4, "audioChannelFlags")
    if cur.remaining():
        raise CodecHeaderError(f"{cur.remaining()} byte(s) after the MultichannelConfig")
    return MultichannelConfig(
        channel_order=AudioChannelOrder(order),
        channel_count=count,
        channel_mapping=mapping,
        channel_flags=flags,
    )


def _audio_track(
    body: bytes, fourcc: AudioFourCC, packet_type: AudioPacketType, track_id: int
) -> AudioTrack:
    if packet_type is AudioPacketType.MULTICHANNEL_CONFIG:
        parse_multichannel_config(body)  # validate: it is header, not codec data
    return AudioTrack(codec=fourcc, packet_type=packet_type, data=body, track_id=track_id)


_SOUND_FORMATS = frozenset(int(f) for f in SoundFormat)
_AUDIO_PACKET_TYPES = frozenset(
    (
        AudioPacketType.SEQUENCE_START,
        AudioPacketType.CODED_FRAMES,
        AudioPacketType.SEQUENCE_END,
        AudioPacketType.MULTICHANNEL_CONFIG,
    )
)


def parse_audio_tag(payload: Buffer) -> AudioTag:
    """Parse an audio message payload / FLV AUDIODATA body.

    Implements the legacy AudioTagHeader (FLV v10.1 E.4.2.1) and the ExAudioTagHeader and
    ExAudioTagBody of E-RTMP v2 ("Enhanced Audio"): ModEx, Multitrack (OneTrack,
    ManyTracks, ManyTracksManyCodecs), MultichannelConfig and FourCC.

    Args:
        payload: the whole message payload. An empty payload is E-RTMP's silence message,
            which has no AudioTagHeader: check ``classify_audio(p) is AudioKind.SILENCE``
            (or ``not p``) first.

    Returns:
        The parsed :class:`AudioTag`; track data are copies.

    Raises:
        CodecHeaderError: the payload is empty or truncated, or uses a reserved sound
            format, AACPacketType, packet type or multitrack type, or an unknown FourCC, or
            a malformed MultichannelConfig.
    """
    data = _as_bytes(payload)
    if not data:
        raise CodecHeaderError("empty audio payload (a silence message has no AudioTagHeader)")
    cur = _Cursor(data, "audio tag")
    b = cur.u8("AudioTagHeader")
    sound_format = b >> 4
    if sound_format in (12, 13):
        raise CodecHeaderError(f"reserved SoundFormat {sound_format}")
    if sound_format != SoundFormat.EX_HEADER:
        fmt = SoundFormat(sound_format)
        legacy_type = AudioPacketType.CODED_FRAMES
        if fmt is SoundFormat.AAC:
            aac_packet_type = cur.u8("AACPacketType")
            if aac_packet_type > 1:
                raise CodecHeaderError(f"reserved AACPacketType {aac_packet_type}")
            legacy_type = AudioPacketType(aac_packet_type)
        track = AudioTrack(codec=fmt, packet_type=legacy_type, data=cur.rest())
        return AudioTag(
            sound_format=fmt,
            tracks=(track,),
            sound_rate=(b >> 2) & 0x03,
            sound_size=(b >> 1) & 0x01,
            sound_type=b & 0x01,
        )
    mod_ex, packet_type = _read_mod_ex(cur, b & 0x0F)
    if packet_type == AudioPacketType.MULTITRACK:
        b = cur.u8("audioMultitrackType")
        if b >> 4 > 2:
            raise CodecHeaderError(f"reserved AvMultitrackType {b >> 4}")
        multitrack_type = AvMultitrackType(b >> 4)
        packet_type = b & 0x0F
        # "This fetch MUST not result in a AudioPacketType.Multitrack"
        if packet_type not in _AUDIO_PACKET_TYPES:
            raise CodecHeaderError(f"invalid multitrack audioPacketType {packet_type}")
        inner = AudioPacketType(packet_type)
        tracks = tuple(
            _audio_track(body, fourcc, inner, track_id)
            for fourcc, track_id, body in _read_tracks(cur, multitrack_type, _read_audio_fourcc)
        )
        return AudioTag(
            sound_format=SoundFormat.EX_HEADER,
            tracks=tracks,
            multitrack_type=multitrack_type,
            mod_ex=mod_ex,
        )
    if packet_type not in _AUDIO_PACKET_TYPES:
        raise CodecHeaderError(f"reserved audioPacketType {packet_type}")
    fourcc = _read_audio_fourcc(cur)
    track = _audio_track(cur.rest(), fourcc, AudioPacketType(packet_type), 0)
    return AudioTag(sound_format=SoundFormat.EX_HEADER, tracks=(track,), mod_ex=mod_ex)


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def _si24_bytes(value: int, field: str) -> bytes:
    if not -0x800000 <= value <= 0x7FFFFF:
        raise LocalProtocolError(f"{field} {value} does not fit in SI24")
    return (value & 0xFFFFFF).to_bytes(3, "big")


def _encode_mod_ex(mod_ex: tuple[ModEx, ...], packet_type: int) -> tuple[int, bytes]:
    """Encode a ModEx chain ending in ``packet_type``; return (first packet type, bytes)."""
    if not mod_ex:
        return packet_type, b""
    out = bytearray()
    for index, entry in enumerate(mod_ex):
        size = len(entry.data)
        if not 1 <= size <= 0x10000:
            raise LocalProtocolError(f"modExData must be 1..65536 bytes, not {size}")
        if not 0 <= entry.mod_ex_type <= 15:
            raise LocalProtocolError(f"PacketModExType {entry.mod_ex_type} does not fit UB[4]")
        if entry.mod_ex_type == 0 and size < 3:
            raise LocalProtocolError("TimestampOffsetNano modExData must be at least 3 bytes")
        # Shortest form: "modExDataSize = UI8 + 1", UI8 0xFF escapes to "UI16 + 1".
        if size < 256:
            out.append(size - 1)
        else:
            out.append(0xFF)
            out += (size - 1).to_bytes(2, "big")
        out += entry.data
        following = 7 if index + 1 < len(mod_ex) else packet_type
        out.append(entry.mod_ex_type << 4 | following)
    return 7, bytes(out)


def _encode_tracks(
    entries: list[tuple[str, int, bytes]], multitrack_type: AvMultitrackType | None
) -> bytes:
    """Lay out the track loop of an Ex(Video|Audio)TagBody from (FourCC, id, body) entries."""
    if multitrack_type is None:
        if len(entries) != 1 or entries[0][1] != 0:
            raise LocalProtocolError("a non-multitrack tag has exactly one track, with id 0")
        return entries[0][0].encode("ascii") + entries[0][2]
    if multitrack_type is AvMultitrackType.ONE_TRACK and len(entries) != 1:
        raise LocalProtocolError("AvMultitrackType.OneTrack carries exactly one track")
    out = bytearray()
    many_codecs = multitrack_type is AvMultitrackType.MANY_TRACKS_MANY_CODECS
    if not many_codecs:
        if len({fourcc for fourcc, _, _ in entries}) != 1:
            raise LocalProtocolError(f"{multitrack_type.name} tracks must share one FourCC")
        out += entries[0][0].encode("ascii")
    for fourcc, track_id, body in entries:
        if many_codecs:
            out += fourcc.encode("ascii")
        if not 0 <= track_id <= 0xFF:
            raise LocalProtocolError(f"trackId {track_id} does not fit in UI8")
        out.append(track_id)
        if multitrack_type is not AvMultitrackType.ONE_TRACK:
            if len(body) > 0xFFFFFF:
                raise LocalProtocolError("a track body does not fit in sizeOfTrack (UI24)")
            out += len(body).to_bytes(3, "big")
        out += body
    return bytes(out)


def _shared_packet_type(tracks: Sequence[VideoTrack] | Sequence[AudioTrack]) -> int:
    if not tracks:
        raise LocalProtocolError("a tag needs at least one track")
    packet_types = {track.packet_type for track in tracks}
    if len(packet_types) != 1:
        raise LocalProtocolError("all tracks of one message share one packet type")
    return int(tracks[0].packet_type)


def encode_video_tag(tag: VideoTag) -> bytes:
    """Encode a :class:`VideoTag` as a video message payload / FLV VIDEODATA body.

    The inverse of :func:`parse_video_tag` (FLV v10.1 E.4.3.1; E-RTMP v2 ExVideoTagHeader).
    ModEx sizes are written in their shortest form, and the (ignored) packet type nibble of
    an E-RTMP command frame as 0.

    Args:
        tag: the tag to encode.

    Returns:
        The payload bytes.

    Raises:
        LocalProtocolError: the tag cannot be represented: a legacy tag without a
            ``codec_id`` or with several tracks, a FourCC on a legacy tag (or the reverse),
            a reserved frame type, a composition time where the header has none or out of
            SI24 range, tracks with different packet types, and so on.
    """
    frame_type = tag.frame_type
    if not tag.is_ex_header:
        return _encode_legacy_video(tag)
    if tag.codec_id is not None:
        raise LocalProtocolError("an ExVideoTagHeader has no legacy codec_id")
    if tag.command is not None:
        if frame_type != VideoFrameType.COMMAND or tag.tracks or tag.multitrack_type is not None:
            raise LocalProtocolError("a command frame has frame type 5 and no tracks")
        first, chain = _encode_mod_ex(tag.mod_ex, 0)
        return bytes((0x80 | 5 << 4 | first,)) + chain + bytes((int(tag.command),))
    packet_type = _shared_packet_type(tag.tracks)
    if packet_type >= VideoPacketType.MULTITRACK:
        raise LocalProtocolError(f"videoPacketType {packet_type} is not a track packet type")
    if packet_type == VideoPacketType.METADATA and tag.multitrack_type is None:
        # The frame type is ignored only when the header's own packet type is Metadata; in
        # a multitrack message it is Multitrack, and frame type 5 would mean a command.
        if not 0 <= frame_type <= 7:
            raise LocalProtocolError(f"videoFrameType {frame_type} does not fit UB[3]")
    elif not 1 <= frame_type <= 4:
        raise LocalProtocolError(f"videoFrameType {frame_type} needs a command (or is reserved)")
    entries: list[tuple[str, int, bytes]] = []
    for track in tag.tracks:
        codec = track.codec
        if not isinstance(codec, VideoFourCC):
            raise LocalProtocolError(f"an ExVideoTagHeader track needs a FourCC, not {codec!r}")
        body = bytes(track.data)
        if packet_type == VideoPacketType.CODED_FRAMES and codec in _CTS_FOURCCS:
            body = _si24_bytes(track.composition_time_ms, "compositionTimeOffset") + body
        elif track.composition_time_ms:
            raise LocalProtocolError(f"{codec} packet type {packet_type} has no composition time")
        entries.append((codec, track.track_id, body))
    header_type = packet_type if tag.multitrack_type is None else VideoPacketType.MULTITRACK
    first, chain = _encode_mod_ex(tag.mod_ex, header_type)
    out = bytearray((0x80 | frame_type << 4 | first,))
    out += chain
    if tag.multitrack_type is not None:
        out.append(tag.multitrack_type << 4 | packet_type)
    out += _encode_tracks(entries, tag.multitrack_type)
    return bytes(out)


def _encode_legacy_video(tag: VideoTag) -> bytes:
    codec_id = tag.codec_id
    if codec_id is None or not 2 <= codec_id <= 7:
        raise LocalProtocolError(f"a legacy VideoTagHeader needs a CodecID 2..7, not {codec_id}")
    if tag.multitrack_type is not None or tag.mod_ex:
        raise LocalProtocolError("multitrack and ModEx need the ExVideoTagHeader")
    if tag.command is not None:
        if tag.frame_type != VideoFrameType.COMMAND or tag.tracks:
            raise LocalProtocolError("a command frame has frame type 5 and no tracks")
        return bytes((5 << 4 | codec_id, int(tag.command)))
    if not 1 <= tag.frame_type <= 4:
        raise LocalProtocolError(f"FrameType {tag.frame_type} needs a command (or is reserved)")
    if len(tag.tracks) != 1:
        raise LocalProtocolError("a legacy video tag has exactly one track")
    track = tag.tracks[0]
    if track.codec is not codec_id or track.track_id != 0:
        raise LocalProtocolError("a legacy track has the tag's codec_id and track id 0")
    first = bytes((tag.frame_type << 4 | codec_id,))
    if codec_id is VideoCodecId.AVC:
        if track.packet_type > 2:
            raise LocalProtocolError(f"AVCPacketType {track.packet_type} is reserved")
        cts = _si24_bytes(track.composition_time_ms, "CompositionTime")
        return first + bytes((track.packet_type,)) + cts + bytes(track.data)
    if track.packet_type is not VideoPacketType.CODED_FRAMES or track.composition_time_ms:
        raise LocalProtocolError(f"{codec_id.name} has no packet type or composition time")
    return first + bytes(track.data)


def encode_audio_tag(tag: AudioTag) -> bytes:
    """Encode an :class:`AudioTag` as an audio message payload / FLV AUDIODATA body.

    The inverse of :func:`parse_audio_tag` (FLV v10.1 E.4.2.1; E-RTMP v2 ExAudioTagHeader).
    ModEx sizes are written in their shortest form.

    Args:
        tag: the tag to encode.

    Returns:
        The payload bytes.

    Raises:
        LocalProtocolError: the tag cannot be represented: a reserved sound format, missing
            or out-of-range SoundRate/SoundSize/SoundType on a legacy tag (or present on an
            E-RTMP one), a FourCC on a legacy tag (or the reverse), a packet type the header
            cannot carry, tracks with different packet types, and so on.
    """
    fmt = tag.sound_format
    if fmt != SoundFormat.EX_HEADER:
        return _encode_legacy_audio(tag)
    if (tag.sound_rate, tag.sound_size, tag.sound_type) != (None, None, None):
        raise LocalProtocolError("an ExAudioTagHeader has no SoundRate/SoundSize/SoundType")
    packet_type = _shared_packet_type(tag.tracks)
    if packet_type not in _AUDIO_PACKET_TYPES:
        raise LocalProtocolError(f"audioPacketType {packet_type} is not a track packet type")
    entries: list[tuple[str, int, bytes]] = []
    for track in tag.tracks:
        codec = track.codec
        if not isinstance(codec, AudioFourCC):
            raise LocalProtocolError(f"an ExAudioTagHeader track needs a FourCC, not {codec!r}")
        entries.append((codec, track.track_id, bytes(track.data)))
    header_type = packet_type if tag.multitrack_type is None else AudioPacketType.MULTITRACK
    first, chain = _encode_mod_ex(tag.mod_ex, header_type)
    out = bytearray((SoundFormat.EX_HEADER << 4 | first,))
    out += chain
    if tag.multitrack_type is not None:
        out.append(tag.multitrack_type << 4 | packet_type)
    out += _encode_tracks(entries, tag.multitrack_type)
    return bytes(out)


def _encode_legacy_audio(tag: AudioTag) -> bytes:
    fmt = tag.sound_format
    if fmt not in _SOUND_FORMATS or fmt == SoundFormat.EX_HEADER:
        raise LocalProtocolError(f"SoundFormat {fmt} is reserved")
    if tag.multitrack_type is not None or tag.mod_ex:
        raise LocalProtocolError("multitrack and ModEx need the ExAudioTagHeader")
    rate, size, channels = tag.sound_rate, tag.sound_size, tag.sound_type
    if rate is None or size is None or channels is None:
        raise LocalProtocolError("a legacy AudioTagHeader needs SoundRate, SoundSize, SoundType")
    if not (0 <= rate <= 3 and 0 <= size <= 1 and 0 <= channels <= 1):
        raise LocalProtocolError("SoundRate is UB[2], SoundSize and SoundType are UB[1]")
    if len(tag.tracks) != 1:
        raise LocalProtocolError("a legacy audio tag has exactly one track")
    track = tag.tracks[0]
    if track.codec is not fmt or track.track_id != 0:
        raise LocalProtocolError("a legacy track has the tag's sound_format and track id 0")
    first = bytes((fmt << 4 | rate << 2 | size << 1 | channels,))
    if fmt is SoundFormat.AAC:
        if track.packet_type > 1:
            raise LocalProtocolError(f"AACPacketType {track.packet_type} is reserved")
        return first + bytes((track.packet_type,)) + bytes(track.data)
    if track.packet_type is not AudioPacketType.CODED_FRAMES:
        raise LocalProtocolError(f"{fmt.name} has no packet type")
    return first + bytes(track.data)


def build_video_tag(
    data: Buffer = b"",
    *,
    codec: VideoCodecId | VideoFourCC,
    frame_type: int = VideoFrameType.KEY_FRAME,
    packet_type: int = VideoPacketType.CODED_FRAMES,
    composition_time_ms: int = 0,
    mod_ex: Sequence[ModEx] = (),
) -> bytes:
    """Build a single-track video payload: legacy for a :class:`VideoCodecId`, E-RTMP
    ExVideoTagHeader for a :class:`VideoFourCC`.

    For multitrack or command frames, build a :class:`VideoTag` and call
    :func:`encode_video_tag`.

    Args:
        data: the codec data (configuration record, NAL units, ...).
        codec: the legacy CodecID or the FourCC.
        frame_type: the :class:`VideoFrameType` (1–4).
        packet_type: the :class:`VideoPacketType` (for legacy AVC, the AVCPacketType 0–2).
        composition_time_ms: the composition time offset in milliseconds (SI24), only for
            AVC / ``avc1`` / ``hvc1`` coded frames.
        mod_ex: ModEx entries to prefix (E-RTMP only).

    Returns:
        The payload bytes.

    Raises:
        LocalProtocolError: as :func:`encode_video_tag`.
    """
    codec_id = None
    if not isinstance(codec, VideoFourCC):
        if not 2 <= codec <= 7:
            raise LocalProtocolError(f"unknown video CodecID {codec}")
        codec = codec_id = VideoCodecId(codec)
    if not 0 <= packet_type <= 15 or packet_type not in VideoPacketType.__members__.values():
        raise LocalProtocolError(f"unknown videoPacketType {packet_type}")
    track = VideoTrack(
        codec=codec,
        packet_type=VideoPacketType(packet_type),
        data=bytes(data),
        composition_time_ms=composition_time_ms,
    )
    tag = VideoTag(
        frame_type=frame_type,
        is_ex_header=codec_id is None,
        tracks=(track,),
        codec_id=codec_id,
        mod_ex=tuple(mod_ex),
    )
    return encode_video_tag(tag)


def build_audio_tag(
    data: Buffer = b"",
    *,
    codec: SoundFormat | AudioFourCC,
    packet_type: int = AudioPacketType.CODED_FRAMES,
    sound_rate: int = SoundRate.KHZ_44,
    sound_size: int = SoundSize.BITS_16,
    sound_type: int = SoundType.STEREO,
    mod_ex: Sequence[ModEx] = (),
) -> bytes:
    """Build a single-track audio payload: legacy for a :class:`SoundFormat`, E-RTMP
    ExAudioTagHeader for an :class:`AudioFourCC`.

    The SoundRate/SoundSize/SoundType defaults are what FLV v10.1 E.4.2.1 asks for AAC
    ("If the SoundFormat indicates AAC, the SoundType should be set to 1 (stereo) and the
    SoundRate should be set to 3 (44 kHz)"); they are not written for E-RTMP.

    Args:
        data: the codec data (AudioSpecificConfig, coded frames, ...).
        codec: the legacy SoundFormat or the FourCC.
        packet_type: the :class:`AudioPacketType` (for legacy AAC, the AACPacketType 0–1).
        sound_rate: legacy ``SoundRate`` (:class:`SoundRate`).
        sound_size: legacy ``SoundSize`` (:class:`SoundSize`).
        sound_type: legacy ``SoundType`` (:class:`SoundType`).
        mod_ex: ModEx entries to prefix (E-RTMP only).

    Returns:
        The payload bytes.

    Raises:
        LocalProtocolError: as :func:`encode_audio_tag`.
    """
    if packet_type not in AudioPacketType.__members__.values():
        raise LocalProtocolError(f"unknown audioPacketType {packet_type}")
    if not isinstance(codec, AudioFourCC):
        if codec not in _SOUND_FORMATS:
            raise LocalProtocolError(f"unknown SoundFormat {codec}")
        codec = SoundFormat(codec)
    track = AudioTrack(codec=codec, packet_type=AudioPacketType(packet_type), data=bytes(data))
    if isinstance(codec, AudioFourCC):
        tag = AudioTag(sound_format=SoundFormat.EX_HEADER, tracks=(track,), mod_ex=tuple(mod_ex))
    else:
        tag = AudioTag(
            sound_format=SoundFormat(codec),
            tracks=(track,),
            sound_rate=sound_rate,
            sound_size=sound_size,
            sound_type=sound_type,
            mod_ex=tuple(mod_ex),
        )
    return encode_audio_tag(tag)
