"""Live streams and their fan-out. THIS MODULE IS THE HOT PATH.

One publisher feeds a :class:`LiveStream`; the stream relays every message to every
subscriber. What it does per message and per player is kept to the minimum:

- Each relayed message becomes one :class:`Packet`. Its bytes are serialized **once** per
  *wire format* — RTMP chunks for one message stream id (all players share one chunk size,
  and nearly all use msid 1), or FLV tags for HTTP-FLV/WebSocket-FLV players — and shared
  by every player of that format.
- Messages are fanned out in *batches*: everything parsed from one read of the publisher's
  socket is joined once per wire format, and each player gets one ``transport.write`` per
  batch (several messages per syscall, no added latency). With ``fanout_interval_ms`` > 0,
  batches of several reads are coalesced for up to that long (or until
  ``fanout_max_bytes`` are pending): fewer, larger writes per player for a bounded delay.
- A player's own work is that write, plus a check of its transport backlog; the slow-player
  policy lives in :mod:`aiortmp.server.player` and only runs for players that fall behind.

Caches for late joiners: the last metadata, the audio/video sequence headers (per track)
and the current GOP (from the last keyframe, capped in bytes).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.flv import FLVTag, encode_tag
from aiortmp.media.tags import (
    AudioKind,
    AudioTrack,
    VideoKind,
    VideoTrack,
    classify_audio,
    classify_video,
    parse_audio_tag,
    parse_video_tag,
)
from aiortmp.protocol.amf0 import ECMAArray
from aiortmp.protocol.amf0 import encode as amf0_encode
from aiortmp.protocol.chunk import serialize_message
from aiortmp.protocol.messages import ChunkStreamId, Message, MessageType

from .info import StreamInfo

__all__ = [
    "FLV",
    "LiveStream",
    "Packet",
    "PacketKind",
    "Sink",
    "StreamKey",
    "Subscriber",
    "WireFormat",
]

logger = logging.getLogger("aiortmp.stream")

StreamKey = tuple[str, str]  # (app, stream name)

#: How a player wants packets on the wire: an ``int`` is RTMP chunks for that message
#: stream id; :data:`FLV` is FLV tags (tag header + body + PreviousTagSize).
WireFormat = int | str
FLV: WireFormat = "flv"


class PacketKind(enum.IntEnum):
    """How the relay treats a packet. Lower values are never dropped for slow players."""

    DATA = 0  #: metadata and other data messages
    VIDEO_HEADER = 1  #: video sequence header (per track)
    AUDIO_HEADER = 2  #: audio sequence header (per track)
    KEYFRAME = 3  #: video keyframe (a GOP starts here)
    AUDIO = 4  #: audio frame
    VIDEO = 5  #: non-key video frame: dropped first for slow players


_CSID: dict[int, int] = {
    MessageType.AUDIO: ChunkStreamId.AUDIO,
    MessageType.VIDEO: ChunkStreamId.VIDEO,
}


class Packet:
    """One relayed message, shared by every subscriber.

    Attributes:
        type_id: RTMP message type (8 audio, 9 video, 18 data).
        timestamp_ms: absolute timestamp in ms, as the publisher sent it.
        payload: the message body (FLV tag body for audio/video).
        kind: the :class:`PacketKind`.
    """

    __slots__ = ("type_id", "timestamp_ms", "payload", "kind", "_wire")

    def __init__(self, type_id: int, timestamp_ms: int, payload: bytes, kind: PacketKind) -> None:
        self.type_id = type_id
        self.timestamp_ms = timestamp_ms
        self.payload = payload
        self.kind = kind
        self._wire: dict[WireFormat, bytes] = {}

    def wire(self, wire_format: WireFormat, chunk_size: int) -> bytes:
        """The message in ``wire_format``, serialized once and cached.

        Args:
            wire_format: an RTMP msid (``int``) or :data:`FLV`.
            chunk_size: the server's outgoing chunk size (the same for every RTMP player).

        Returns:
            RTMP: fmt 0 + fmt 3 chunks (RTMP 1.0 §5.3). FLV: one FLV tag with its
            PreviousTagSize (FLV v10.1 E.3), ready for ``transport.write``.
        """
        data = self._wire.get(wire_format)
        if data is None:
            if isinstance(wire_format, int):
                data = serialize_message(
                    Message(
                        type_id=self.type_id,
                        timestamp_ms=self.timestamp_ms,
                        message_stream_id=wire_format,
                        payload=self.payload,
                        chunk_stream_id=_CSID.get(self.type_id, ChunkStreamId.DATA),
                    ),
                    chunk_size,
                )
            else:
                data = encode_tag(
                    FLVTag(
                        tag_type=self.type_id, timestamp_ms=self.timestamp_ms, payload=self.payload
                    )
                )
            self._wire[wire_format] = data
        return data

    def __repr__(self) -> str:
        return (
            f"Packet(type={self.type_id}, ts={self.timestamp_ms}, kind={self.kind.name}, "
            f"{len(self.payload)} bytes)"
        )


def metadata_packet(metadata: dict[str, object], timestamp_ms: int = 0) -> Packet:
    """Build the ``onMetaData`` data packet players get (``@setDataFrame`` stripped)."""
    payload = amf0_encode("onMetaData", ECMAArray(metadata))
    return Packet(MessageType.DATA_AMF0, timestamp_ms, payload, PacketKind.DATA)


class Subscriber(Protocol):
    """A player attached to a stream (see :class:`aiortmp.server.player.Player`)."""

    wire_format: WireFormat

    def deliver(self, data: bytes, packets: Sequence[Packet]) -> None:
        """Send one batch: ``data`` is ``packets`` joined in this player's wire format."""

    def stream_started(self, stream: LiveStream) -> None:
        """The publisher started (or was already live when the player joined)."""

    def stream_stopped(self, stream: LiveStream) -> None:
        """The publisher left; the player stays for a republish."""


class Sink(Protocol):
    """A non-RTMP consumer of raw packets (recorder, HTTP-FLV)."""

    def on_packets(self, packets: Sequence[Packet]) -> None:
        """Consume one batch of packets."""

    def on_stop(self) -> None:
        """The publisher left."""


class LiveStream:
    """One live stream: its publisher, caches, players and sinks.

    Args:
        app: application name.
        name: stream name (without query string).
        chunk_size: the server's outgoing chunk size in bytes.
        gop_cache: keep the current GOP for late joiners.
        gop_cache_max_bytes: cap of the GOP cache (bytes of payload); past it the cache is
            emptied until the next keyframe.
        fanout_interval_s: how long :meth:`end_of_read` may hold a batch to coalesce it with
            the next reads (0: fan out after every read).
        fanout_max_bytes: a held batch is fanned out at once when it reaches this size.
    """

    def __init__(
        self,
        app: str,
        name: str,
        *,
        chunk_size: int = 4096,
        gop_cache: bool = True,
        gop_cache_max_bytes: int = 8 * 1024 * 1024,
        fanout_interval_s: float = 0.0,
        fanout_max_bytes: int = 128 * 1024,
    ) -> None:
        self.app = app
        self.name = name
        self.chunk_size = chunk_size
        self.gop_cache_enabled = gop_cache
        self.gop_cache_max_bytes = gop_cache_max_bytes
        self.publisher: object | None = None
        self.metadata: dict[str, object] | None = None
        self.metadata_packet: Packet | None = None
        self.headers: dict[tuple[int, tuple[int, ...]], Packet] = {}
        self.gop: list[Packet] = []
        self.gop_bytes = 0
        self._groups: dict[WireFormat, list[Subscriber]] = {}
        self.sinks: list[Sink] = []
        self._batch: list[Packet] = []
        self._batch_bytes = 0
        self.fanout_interval_s = fanout_interval_s
        self.fanout_max_bytes = fanout_max_bytes
        self._flush_timer: asyncio.TimerHandle | None = None
        # Statistics.
        self.bytes_in = 0
        self.messages_in = 0
        self.video_frames_in = 0
        self.video_bytes_in = 0
        self.audio_bytes_in = 0
        self.info = StreamInfo()
        self.last_timestamp_ms = 0
        self.bitrate_bps = 0  # measured once a second by the server

    # -- players --------------------------------------------------------------------------

    @property
    def key(self) -> StreamKey:
        """``(app, name)``."""
        return (self.app, self.name)

    @property
    def is_live(self) -> bool:
        """True while a publisher is attached."""
        return self.publisher is not None

    @property
    def players(self) -> list[Subscriber]:
        """Every attached player."""
        return [p for group in self._groups.values() for p in group]

    @property
    def player_count(self) -> int:
        """Number of attached players."""
        return sum(len(group) for group in self._groups.values())

    def add_player(self, player: Subscriber) -> None:
        """Attach a player; if the stream is live it gets the caches at once."""
        # Packets still held for coalescing are already in the caches: fan them out first,
        # or the new player would get them twice (in its start-up burst and in the batch).
        self.flush()
        self._groups.setdefault(player.wire_format, []).append(player)
        if self.is_live:
            player.stream_started(self)

    def remove_player(self, player: Subscriber) -> None:
        """Detach a player (no-op if it is not attached)."""
        group = self._groups.get(player.wire_format)
        if group and player in group:
            group.remove(player)
            if not group:
                del self._groups[player.wire_format]

    def add_sink(self, sink: Sink) -> None:
        """Attach a sink (recorder, push relay); it gets packets from the next batch on.

        Packets still held for coalescing are fanned out first: the sink starts from the
        caches, which already hold them.
        """
        self.flush()
        self.sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        """Detach a sink (no-op if it is not attached) after it got every held packet."""
        if sink in self.sinks:
            self.flush()
            if sink in self.sinks:  # a sink may detach itself while being fed
                self.sinks.remove(sink)

    def startup_packets(self) -> list[Packet]:
        """What a player needs before live packets: metadata, sequence headers, the GOP."""
        packets: list[Packet] = []
        if self.metadata_packet is not None:
            packets.append(self.metadata_packet)
        # Video headers first: players probe the video codec before audio.
        packets.extend(sorted(self.headers.values(), key=lambda p: p.kind))
        packets.extend(self.gop)
        return packets

    # -- publisher ------------------------------------------------------------------------

    def start(self, publisher: object) -> None:
        """A publisher took the stream: notify waiting players."""
        self.publisher = publisher
        self.metadata = None
        self.metadata_packet = None
        self.headers.clear()
        self.info = StreamInfo()
        self._clear_gop()
        for player in self.players:
            player.stream_started(self)

    def stop(self) -> None:
        """The publisher left: flush, notify players and sinks, drop the caches."""
        self.flush()
        self.publisher = None
        for player in self.players:
            player.stream_stopped(self)
        for sink in list(self.sinks):
            sink.on_stop()
        self.sinks.clear()
        self.metadata = None
        self.metadata_packet = None
        self.headers.clear()
        self._clear_gop()

    def _clear_gop(self) -> None:
        self.gop = []
        self.gop_bytes = 0

    def set_metadata(self, metadata: dict[str, object], timestamp_ms: int = 0) -> None:
        """Cache and relay new metadata (``onMetaData``)."""
        self.metadata = dict(metadata)
        packet = metadata_packet(self.metadata, timestamp_ms)
        self.metadata_packet = packet
        self._batch.append(packet)

    def ingest_data(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Relay another data message (onCuePoint, onTextData...) as is."""
        self._batch.append(Packet(type_id, timestamp_ms, payload, PacketKind.DATA))

    def ingest(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Take one audio (8) or video (9) message from the publisher into the batch.

        Classifies it (sequence header, keyframe...), updates the caches, and queues it for
        the next :meth:`flush`.
        """
        self.messages_in += 1
        self.bytes_in += len(payload)
        self.last_timestamp_ms = timestamp_ms
        if type_id == MessageType.VIDEO:
            self.video_bytes_in += len(payload)
            vkind = classify_video(payload)
            if vkind == VideoKind.INTER:
                kind = PacketKind.VIDEO
            elif vkind == VideoKind.KEYFRAME:
                kind = PacketKind.KEYFRAME
                if self.info.wants_keyframe and self.info.on_keyframe(payload):
                    self._log_info()
            elif vkind == VideoKind.SEQUENCE_HEADER:
                kind = PacketKind.VIDEO_HEADER
                if self.info.on_video_header(payload):
                    self._log_info()
            else:
                kind = PacketKind.VIDEO  # sequence end, commands: relayed, droppable
            if kind is not PacketKind.VIDEO_HEADER:
                self.video_frames_in += 1
        else:
            self.audio_bytes_in += len(payload)
            if classify_audio(payload) == AudioKind.SEQUENCE_HEADER:
                kind = PacketKind.AUDIO_HEADER
                if self.info.on_audio_header(payload):
                    self._log_info()
            else:
                kind = PacketKind.AUDIO
                if self.info.wants_audio_frame and self.info.on_audio_frame(payload):
                    self._log_info()
        packet = Packet(type_id, timestamp_ms, payload, kind)
        self._batch.append(packet)
        self._batch_bytes += len(payload)
        if kind <= PacketKind.AUDIO_HEADER and kind != PacketKind.DATA:
            self.headers[(type_id, header_track_key(type_id, payload))] = packet
        elif self.gop_cache_enabled:
            self._cache(packet)

    def _log_info(self) -> None:
        logger.info("%s/%s: %s", self.app, self.name, self.info.summary())

    def sample(self, interval_s: float) -> None:
        """Once a second (called by the server): bitrate and measured rates."""
        self.info.sample(self.video_frames_in, self.video_bytes_in, self.audio_bytes_in, interval_s)
        self.bitrate_bps = self.info.video_bitrate_bps + self.info.audio_bitrate_bps

    def _cache(self, packet: Packet) -> None:
        if packet.kind is PacketKind.KEYFRAME:
            self.gop = [packet]
            self.gop_bytes = len(packet.payload)
            return
        if not self.gop:
            return  # no keyframe yet: nothing a late player could decode
        self.gop.append(packet)
        self.gop_bytes += len(packet.payload)
        if self.gop_bytes > self.gop_cache_max_bytes:
            logger.info(
                "%s/%s: GOP exceeds the %d-byte cache cap; caching resumes at the next keyframe",
                self.app,
                self.name,
                self.gop_cache_max_bytes,
            )
            self._clear_gop()

    def end_of_read(self) -> None:
        """The publisher processed one read: fan out now, or within ``fanout_interval_s``."""
        if not self._batch:
            return
        if self.fanout_interval_s <= 0 or self._batch_bytes >= self.fanout_max_bytes:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                self.fanout_interval_s, self.flush
            )

    def flush(self) -> None:
        """Fan out the batch: one joined write per player, packets to every sink."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        batch = self._batch
        if not batch:
            return
        self._batch = []
        self._batch_bytes = 0
        chunk_size = self.chunk_size
        # Snapshots: a player dropped by the slow-player policy detaches itself (and may
        # empty its group) while we iterate.
        for wire_format, group in list(self._groups.items()):
            if len(batch) == 1:
                data = batch[0].wire(wire_format, chunk_size)
            else:
                data = b"".join([p.wire(wire_format, chunk_size) for p in batch])
            # Copy: a player may detach itself (disconnect) while we iterate.
            for player in tuple(group):
                player.deliver(data, batch)
        for sink in self.sinks:
            sink.on_packets(batch)


def header_track_key(type_id: int, payload: bytes) -> tuple[int, ...]:
    """The track ids a sequence header configures, so each track's header is cached apart.

    Legacy headers configure track 0. E-RTMP multitrack headers name their tracks. Keyed by
    track only (not codec), a codec change on a track replaces its cached header, and a
    repeated header (FFmpeg 9 sends an empty ``av01`` SequenceStart before the real one)
    keeps the last one. Sequence headers are rare, so a full parse costs nothing here.
    """
    try:
        if type_id == MessageType.VIDEO:
            tracks: Sequence[VideoTrack | AudioTrack] = parse_video_tag(payload).tracks
        else:
            tracks = parse_audio_tag(payload).tracks
    except CodecHeaderError:
        return (0,)
    return tuple(sorted({t.track_id for t in tracks})) or (0,)


def iter_players(streams: Iterable[LiveStream]) -> Iterable[Subscriber]:
    """Every player of every stream (for statistics and shutdown)."""
    for stream in streams:
        yield from stream.players
