"""One relayed message, serialized once per wire format. THIS MODULE IS THE HOT PATH.

A :class:`Packet` is made once per audio/video/data message a source brings, and shared by
every output. Its bytes are serialized at most **once per wire format** and kept on the
packet (:meth:`Packet.wire`): every player of a format gets the same ``bytes`` object.

Wire formats (:data:`WireFormat`):

- RTMP chunks: ``(message_stream_id, chunk_size)`` — a chunk size is part of the format,
  so connections that announced different chunk sizes (a SIGHUP between them) never share
  bytes cut at the wrong size (RTMP 1.0 §5.4.1: the peer reads with the size we announced).
- :data:`FLV`: one FLV tag with its PreviousTagSize (FLV v10.1 E.3), for HTTP-FLV and
  WebSocket-FLV viewers.

Muxers (HLS, MP4 recording) do not want bytes but access units: :attr:`Packet.units` parses
the tag once, lazily, and caches the :class:`~aiortmp.media.samples.Frame` /
:class:`~aiortmp.media.samples.TrackConfig` list; a server with no muxer never pays for it.
"""

from __future__ import annotations

import enum
from typing import Final

from aiortmp.errors import CodecHeaderError
from aiortmp.media.flv import FLVTag, encode_tag
from aiortmp.media.samples import Frame, TrackConfig, parse_media
from aiortmp.media.tags import (
    AudioKind,
    VideoKind,
    classify_audio,
    classify_video,
    parse_audio_tag,
    parse_video_tag,
)
from aiortmp.protocol.amf0 import ECMAArray
from aiortmp.protocol.amf0 import encode as amf0_encode
from aiortmp.protocol.chunk import serialize_message
from aiortmp.protocol.messages import ChunkStreamId, Message, MessageType

__all__ = [
    "FLV",
    "Packet",
    "PacketKind",
    "WireFormat",
    "classify",
    "config_key",
    "metadata_packet",
    "rtmp_wire",
]

#: How an output wants packets on the wire: ``(message_stream_id, chunk_size)`` for RTMP
#: chunks, or :data:`FLV` for FLV tags.
WireFormat = tuple[int, int] | str
FLV: Final[WireFormat] = "flv"

_U32 = 0xFFFFFFFF


def rtmp_wire(message_stream_id: int, chunk_size: int) -> WireFormat:
    """The RTMP wire format for a NetStream msid and the chunk size announced to its peer."""
    return (message_stream_id, chunk_size)


class PacketKind(enum.IntEnum):
    """How the relay treats a packet. Values below :attr:`KEYFRAME` are never dropped."""

    DATA = 0  #: metadata and other data messages
    VIDEO_CONFIG = 1  #: video sequence header, E-RTMP video Metadata (colorInfo)
    AUDIO_CONFIG = 2  #: audio sequence header, E-RTMP MultichannelConfig
    KEYFRAME = 3  #: video keyframe (a GOP starts here)
    AUDIO = 4  #: audio frame
    VIDEO = 5  #: non-key video frame (and sequence end, commands): dropped first


#: Kinds whose timestamps drive a stream's timeline (coded frames, see hub/timeline.py).
MEDIA_KINDS: Final = frozenset({PacketKind.KEYFRAME, PacketKind.AUDIO, PacketKind.VIDEO})

_VIDEO_KIND = {
    VideoKind.INTER: PacketKind.VIDEO,
    VideoKind.KEYFRAME: PacketKind.KEYFRAME,
    VideoKind.SEQUENCE_HEADER: PacketKind.VIDEO_CONFIG,
    # E-RTMP v2: "colorInfo ... should be sent ... before the first frame": a late joiner
    # needs it as much as the sequence header, so it is configuration, never dropped.
    VideoKind.METADATA: PacketKind.VIDEO_CONFIG,
}
_AUDIO_KIND = {
    AudioKind.SEQUENCE_HEADER: PacketKind.AUDIO_CONFIG,
    # E-RTMP v2 MultichannelConfig describes the channel layout of the coded frames.
    AudioKind.MULTICHANNEL_CONFIG: PacketKind.AUDIO_CONFIG,
}
_CSID: dict[int, int] = {
    MessageType.AUDIO: ChunkStreamId.AUDIO,
    MessageType.VIDEO: ChunkStreamId.VIDEO,
}


def classify(type_id: int, payload: bytes) -> PacketKind:
    """The :class:`PacketKind` of an audio (8) or video (9) message body.

    Reads the first bytes only (:func:`~aiortmp.media.tags.classify_video`); sequence ends,
    command frames and invalid video are droppable :attr:`PacketKind.VIDEO`, everything
    audio that is not configuration is :attr:`PacketKind.AUDIO`.
    """
    if type_id == MessageType.VIDEO:
        return _VIDEO_KIND.get(classify_video(payload), PacketKind.VIDEO)
    return _AUDIO_KIND.get(classify_audio(payload), PacketKind.AUDIO)


def config_key(type_id: int, payload: bytes) -> tuple[int, int, tuple[int, ...]]:
    """What a configuration packet configures, so each is cached apart and replaced by its
    successor: ``(type_id, packet type, track ids)``.

    Legacy headers configure track 0; E-RTMP multitrack headers name their tracks. A
    sequence header, a video Metadata packet and a MultichannelConfig of the same track are
    kept side by side; a codec change on a track replaces the track's header. Configuration
    packets are rare, so the full parse costs nothing here.
    """
    try:
        if type_id == MessageType.VIDEO:
            video = parse_video_tag(payload)
            tracks = {t.track_id for t in video.tracks}
            packet_type = int(video.packet_type or 0)
        else:
            audio = parse_audio_tag(payload)
            tracks = {t.track_id for t in audio.tracks}
            packet_type = int(audio.packet_type)
    except CodecHeaderError:
        return (type_id, 0, (0,))
    # Legacy sequence headers and E-RTMP SequenceStart share packet type 0.
    return (type_id, packet_type, tuple(sorted(tracks)) or (0,))


class Packet:
    """One relayed message, shared by every output.

    Attributes:
        type_id: RTMP message type (8 audio, 9 video, 18 data; 15 AMF3 data).
        timestamp_ms: the stream's normalized timestamp in ms (monotonic, unwrapped: may
            exceed 2**32 after 49 days; serializers write it modulo 2**32).
        payload: the message body (the FLV tag body for audio/video).
        kind: the :class:`PacketKind`.
    """

    __slots__ = ("type_id", "timestamp_ms", "payload", "kind", "_wire", "_units")

    def __init__(self, type_id: int, timestamp_ms: int, payload: bytes, kind: PacketKind) -> None:
        self.type_id = type_id
        self.timestamp_ms = timestamp_ms
        self.payload = payload
        self.kind = kind
        self._wire: dict[WireFormat, bytes] | None = None
        self._units: list[TrackConfig | Frame] | None = None

    def wire(self, wire_format: WireFormat) -> bytes:
        """The message in ``wire_format``, serialized once and cached on the packet.

        Args:
            wire_format: ``(msid, chunk_size)`` for RTMP or :data:`FLV`.

        Returns:
            RTMP: fmt 0 + fmt 3 chunks (RTMP 1.0 §5.3.1), on csid 4 (audio), 6 (video) or
            5 (data). FLV: one tag and its PreviousTagSize (FLV v10.1 E.3).
        """
        cache = self._wire
        if cache is None:
            cache = self._wire = {}
        else:
            data = cache.get(wire_format)
            if data is not None:
                return data
        if isinstance(wire_format, tuple):
            data = serialize_message(
                Message(
                    type_id=self.type_id,
                    timestamp_ms=self.timestamp_ms & _U32,
                    message_stream_id=wire_format[0],
                    payload=self.payload,
                    chunk_stream_id=_CSID.get(self.type_id, ChunkStreamId.DATA),
                ),
                wire_format[1],
            )
        else:
            data = encode_tag(
                FLVTag(
                    tag_type=self.type_id,
                    timestamp_ms=self.timestamp_ms & _U32,
                    payload=self.payload,
                )
            )
        cache[wire_format] = data
        return data

    @property
    def units(self) -> list[TrackConfig | Frame]:
        """The access units and track configurations of an audio/video packet, parsed once.

        ``[]`` for data packets and for tags no muxer can use (a malformed tag header
        included: the relay passes such a tag through, a muxer skips it).
        """
        units = self._units
        if units is None:
            try:
                units = parse_media(self.type_id, self.timestamp_ms, self.payload)
            except CodecHeaderError:
                units = []
            self._units = units
        return units

    def __repr__(self) -> str:
        return (
            f"Packet(type={self.type_id}, ts={self.timestamp_ms}, kind={self.kind.name}, "
            f"{len(self.payload)} bytes)"
        )


def metadata_packet(metadata: dict[str, object], timestamp_ms: int = 0) -> Packet:
    """The ``onMetaData`` data packet outputs get (``@setDataFrame`` stripped, AMF0)."""
    payload = amf0_encode("onMetaData", ECMAArray(metadata))
    return Packet(MessageType.DATA_AMF0, timestamp_ms, payload, PacketKind.DATA)
