"""A live stream: one source feeds it, many outputs read it. THIS MODULE IS THE HOT PATH.

The seams::

    Source ──ingest()/commit()──▶ Stream ──on_batch(data, packets)──▶ Output (inline)
                                    │   └────on_batch(None, packets)──▶ Output (queued)
                                    ├── Timeline      (hub/timeline.py)
                                    ├── StartupCache  (hub/cache.py)
                                    └── StreamInfo    (hub/info.py)

What the stream does per message and per output is kept to the minimum:

- Each message becomes one :class:`~aiortmp.hub.packet.Packet`, its timestamp normalized
  (:class:`~aiortmp.hub.timeline.Timeline`), classified, cached for late joiners.
- Messages are delivered in *batches*: what one read of the source brought
  (:meth:`Stream.commit`), or with ``fanout_interval_s`` > 0, several reads coalesced for
  up to that long (or until ``fanout_max_bytes`` wait). A batch is serialized once per
  wire format and every *inline* output of that format (RTMP and FLV players) gets the
  same bytes: one ``transport.write`` per player per batch.
- *Queued* outputs (``wire`` None: recorder, push, HLS) get the packets and only append
  them to their own bounded queue (:class:`~aiortmp.hub.queue.OutputQueue`); their work
  runs in their own task, never inside the source's read.

No sockets, no clock of its own: the coalescing timer comes from the scheduler passed in
(an asyncio loop, or a fake in tests).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiortmp.errors import AMFEncodeError, MessageError, StreamBusy
from aiortmp.protocol.messages import MessageType

from .cache import StartupCache
from .info import StreamInfo
from .packet import Packet, PacketKind, WireFormat, classify, metadata_packet
from .timeline import Timeline

__all__ = [
    "Output",
    "Scheduler",
    "Source",
    "StartAt",
    "Stream",
    "StreamKey",
    "StreamListener",
    "StreamSettings",
]

logger = logging.getLogger("aiortmp.stream")

StreamKey = tuple[str, str]  # (app, stream name)

_VIDEO = MessageType.VIDEO
_KEYFRAME = PacketKind.KEYFRAME
_VIDEO_CONFIG = PacketKind.VIDEO_CONFIG
_AUDIO_CONFIG = PacketKind.AUDIO_CONFIG
_AUDIO = PacketKind.AUDIO
_INTER = PacketKind.VIDEO


class Handle(Protocol):
    """A scheduled call that can be cancelled (``asyncio.TimerHandle``)."""

    def cancel(self) -> None:
        """Do not run it."""


class Scheduler(Protocol):
    """What a stream needs of an event loop: a timer (``asyncio.AbstractEventLoop`` fits)."""

    def call_later(self, delay: float, callback: Callable[[], object], /) -> Handle:
        """Call ``callback()`` after ``delay`` seconds."""
        ...


class Source(Protocol):
    """What feeds a stream: an RTMP publisher, a pull, a file, a worker/origin link.

    Attributes:
        kind: ``"rtmp"``, ``"pull"``, ``"file"``, ``"link"``...
        session_id: the server-wide session id of the source.
        remote: the client's ``host:port``, or the upstream URL.
    """

    kind: str
    session_id: int
    remote: str

    def stop(self, reason: str) -> None:
        """End the source (kicked by the API, replaced...): it detaches itself."""


class Output(Protocol):
    """What reads a stream.

    ``wire`` is the wire format an *inline* output wants shared bytes in, or None for a
    *queued* output (it gets packets only, and must return at once).
    """

    @property
    def wire(self) -> WireFormat | None:
        """The wire format of an inline output; None for a queued output."""

    def on_batch(self, data: bytes | None, packets: Sequence[Packet]) -> None:
        """One batch: ``data`` is ``packets`` joined in ``wire``; None for queued outputs
        and for the startup burst (an inline output then serializes what it keeps)."""

    def on_live(self, live: bool) -> None:
        """The stream got a source (or had one when the output subscribed), or lost it.

        An output that ends with its source (recorder, push) unsubscribes itself here.
        """


class StreamListener(Protocol):
    """Told when a stream gets or loses a source (the registry, which tells the bus)."""

    def stream_started(self, stream: Stream) -> None:
        """``stream.source`` was attached."""

    def stream_stopped(self, stream: Stream, source: Source) -> None:
        """``source`` was detached."""


class StartAt(enum.Enum):
    """Where a new output starts."""

    GOP = "gop"  #: metadata, configuration, then the cached GOP (instant start)
    KEYFRAME = "keyframe"  #: metadata, configuration, then the next keyframe


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamSettings:
    """How a stream caches, batches and normalizes.

    Attributes:
        gop_cache: keep the current GOP for late joiners.
        gop_cache_max_bytes: GOP cache cap (payload bytes).
        fanout_interval_s: how long :meth:`Stream.commit` may hold a batch to coalesce it
            with the next reads (0: deliver after every read).
        fanout_max_bytes: a held batch is delivered once it is this large (bytes).
        fanout_max_writes_per_s: with so many players that delivering every
            ``fanout_interval_s`` would take more writes per second than this, batches
            are held longer (up to ``fanout_max_interval_s``): a large audience of a
            low-bitrate stream costs a bounded number of writes (SRS "merged write").
        max_backward_ms / max_gap_ms: timestamp discontinuity thresholds (Timeline).
        normalize_timestamps: False keeps the source's timestamps (VOD: a player seeks in
            the file's time).
    """

    gop_cache: bool = True
    gop_cache_max_bytes: int = 8 << 20
    fanout_interval_s: float = 0.0
    fanout_max_bytes: int = 128 * 1024
    fanout_max_writes_per_s: int = 200_000
    fanout_max_interval_s: float = 0.1
    max_backward_ms: int = 1000
    max_gap_ms: int = 10_000
    normalize_timestamps: bool = True


class Stream:
    """One live stream: its source, caches, timeline and outputs.

    Args:
        app: application name.
        name: stream name (without query string).
        scheduler: the timer source for batch coalescing (the event loop).
        settings: caching, batching and timeline settings.
        listener: told when a source attaches or detaches (the registry).

    Attributes:
        source: the attached :class:`Source`, or None.
        successor: a source that takes over when :attr:`source` detaches, or None (see
            :meth:`detach`).
        cache: the :class:`StartupCache`.
        timeline: the :class:`Timeline`.
        info: codec information per track (:class:`StreamInfo`).
        metadata: the last ``onMetaData`` properties, or None.
        bytes_in / messages_in / video_frames_in / video_bytes_in / audio_bytes_in:
            counters of the current source.
        bitrate_bps: measured by :meth:`sample`.
        last_timestamp_ms: the newest normalized timestamp (ms).
    """

    def __init__(
        self,
        app: str,
        name: str,
        *,
        scheduler: Scheduler,
        settings: StreamSettings | None = None,
        listener: StreamListener | None = None,
    ) -> None:
        settings = settings or StreamSettings()
        self.app = app
        self.name = name
        self.settings = settings
        self.scheduler = scheduler
        self.listener = listener
        self.source: Source | None = None
        self.successor: Source | None = None
        self.cache = StartupCache(
            gop=settings.gop_cache,
            gop_max_bytes=settings.gop_cache_max_bytes,
            label=f"{app}/{name}",
        )
        self.timeline = Timeline(
            max_backward_ms=settings.max_backward_ms,
            max_gap_ms=settings.max_gap_ms,
            passthrough=not settings.normalize_timestamps,
        )
        self.metadata: dict[str, Any] | None = None
        self._inline: dict[WireFormat, list[Output]] = {}
        self._queued: list[Output] = []
        self._batch: list[Packet] = []
        self._batch_bytes = 0
        self._interval_s = settings.fanout_interval_s
        self._max_bytes = settings.fanout_max_bytes
        self._players = 0  # inline outputs, kept as a count for commit()
        # Outputs that joined while a batch was held -> how many of its packets they
        # already got from the cache.
        self._joined: dict[Output, int] = {}
        self._timer: Handle | None = None
        #: The source's reads are already batched (the kernel holds a publisher's bytes
        #: for a window, SO_RCVLOWAT): deliver each read at once, with no timer.
        self.reads_coalesced = False
        self.info = StreamInfo()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.bytes_in = 0
        self.messages_in = 0
        self.video_frames_in = 0
        self.video_bytes_in = 0
        self.audio_bytes_in = 0
        self.bitrate_bps = 0
        self.last_timestamp_ms = 0

    def __repr__(self) -> str:
        return f"<Stream {self.app}/{self.name} live={self.is_live} outputs={self.output_count}>"

    # -- views ----------------------------------------------------------------------------

    @property
    def key(self) -> StreamKey:
        """``(app, name)``."""
        return (self.app, self.name)

    @property
    def is_live(self) -> bool:
        """True while a source is attached."""
        return self.source is not None

    @property
    def players(self) -> list[Output]:
        """The inline outputs (RTMP and FLV players)."""
        return [o for group in self._inline.values() for o in group]

    @property
    def player_count(self) -> int:
        """Number of inline outputs."""
        return self._players

    @property
    def queued_outputs(self) -> list[Output]:
        """The queued outputs (recorders, pushes, muxers)."""
        return list(self._queued)

    @property
    def demand(self) -> int:
        """Outputs that stand for viewers: every inline output (players), and queued
        outputs that say so (``demand = True``: an HLS output being requested). An
        on-demand pull runs while this is not 0; recordings and pushes do not count."""
        return self.player_count + sum(1 for o in self._queued if getattr(o, "demand", False))

    @property
    def output_count(self) -> int:
        """Inline and queued outputs."""
        return self.player_count + len(self._queued)

    # -- outputs --------------------------------------------------------------------------

    def subscribe(self, output: Output, start: StartAt = StartAt.GOP) -> None:
        """Attach an output. If the stream is live, the output is told so and gets the
        startup cache at once (:meth:`StartupCache.replay`).

        Packets still held for coalescing are already in the cache the output starts
        from: when the held batch goes out, this output gets only what came after its
        start, so it gets each packet exactly once — without delivering the held batch
        to every other output early (with a large audience and long batches, a join must
        not cost a write per player).
        """
        if self._batch:
            self._joined[output] = len(self._batch)
        if output.wire is None:
            self._queued.append(output)
        else:
            self._inline.setdefault(output.wire, []).append(output)
            self._players += 1
        if self.source is not None:
            output.on_live(True)
            packets = self.cache.replay(gop=start is StartAt.GOP)
            if packets:
                output.on_batch(None, packets)

    def unsubscribe(self, output: Output, *, flush: bool = False) -> None:
        """Detach an output (no-op if it is not attached).

        Args:
            output: the output.
            flush: deliver the held batch first, so a queued output that stops cleanly
                (a recording stopped by the API) gets every packet up to now.
        """
        if flush:
            self.flush()
        self._joined.pop(output, None)
        if output.wire is None:
            if output in self._queued:
                self._queued.remove(output)
            return
        group = self._inline.get(output.wire)
        if group and output in group:
            group.remove(output)
            self._players -= 1
            if not group:
                del self._inline[output.wire]

    # -- source ---------------------------------------------------------------------------

    def attach(self, source: Source) -> None:
        """Make ``source`` the stream's source; outputs are told it is live.

        Raises:
            StreamBusy: the stream already has a source.
        """
        if self.source is not None:
            raise StreamBusy(self.key)
        self.flush()
        self.source = source
        self.metadata = None
        self.cache.clear()
        self.info = StreamInfo()
        self._reset_counters()
        self.timeline.new_source()
        for output in self._all_outputs():
            output.on_live(True)
        if self.listener is not None:
            self.listener.stream_started(self)

    def detach(self, source: Source) -> None:
        """``source`` left: deliver what is held, tell the outputs, drop the caches.

        With a :attr:`successor` set, the successor becomes the source instead and the
        players never notice: a publisher that moved (E-RTMP v2 ReconnectRequest: the
        old worker's stream goes on from a link to the new one). The timeline continues,
        the caches are kept until the successor's packets replace them; queued outputs
        (recorders, pushes) end with the source that left, as its ``unpublish`` says.

        No-op if ``source`` is not the stream's source (it was replaced already).
        """
        if self.source is not source:
            return
        self.flush()
        successor = self.successor
        if successor is not None:
            self.successor = None
            self.source = successor
            self.timeline.new_source()
            for output in tuple(self._queued):
                output.on_live(False)
            if self.listener is not None:
                self.listener.stream_stopped(self, source)
                self.listener.stream_started(self)
            return
        self.source = None
        for output in self._all_outputs():
            output.on_live(False)
        self.metadata = None
        self.cache.clear()
        if self.listener is not None:
            self.listener.stream_stopped(self, source)

    def _all_outputs(self) -> list[Output]:
        outputs = [o for group in self._inline.values() for o in group]
        outputs.extend(self._queued)
        return outputs

    # -- ingest (per message: keep it short) ----------------------------------------------

    def ingest(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Take one audio (8) or video (9) message into the batch.

        Args:
            type_id: 8 or 9.
            timestamp_ms: the source's timestamp (ms, 32-bit RTMP value); normalized here.
            payload: the message body (FLV tag body).
        """
        kind = classify(type_id, payload)
        size = len(payload)
        self.messages_in += 1
        self.bytes_in += size
        if type_id == _VIDEO:
            self.video_bytes_in += size
            if kind is _INTER or kind is _KEYFRAME:
                self.video_frames_in += 1
                if kind is _KEYFRAME and self.info.wants_keyframe:
                    self._info_changed(self.info.on_keyframe(payload))
            elif kind is _VIDEO_CONFIG:
                self._info_changed(self.info.on_video_header(payload))
        else:
            self.audio_bytes_in += size
            if kind is _AUDIO:
                if self.info.wants_audio_frame:
                    self._info_changed(self.info.on_audio_frame(payload))
            else:
                self._info_changed(self.info.on_audio_header(payload))
        timestamp_ms = self.timeline.map(timestamp_ms, kind >= _KEYFRAME)
        self.last_timestamp_ms = timestamp_ms
        packet = Packet(type_id, timestamp_ms, payload, kind)
        self._batch.append(packet)
        self._batch_bytes += size
        self.cache.add(packet)

    def ingest_metadata(self, metadata: dict[str, Any], timestamp_ms: int = 0) -> None:
        """Cache and relay new ``onMetaData`` properties (``@setDataFrame`` stripped).

        Raises:
            MessageError: the metadata cannot be written for outputs (AMF0 §2.9 references
                that make it cyclic): the source's fault.
        """
        try:
            packet = metadata_packet(metadata, self.timeline.map(timestamp_ms, False))
        except AMFEncodeError as exc:
            raise MessageError(f"onMetaData cannot be relayed: {exc}") from exc
        self.metadata = dict(metadata)
        self.cache.metadata = packet
        self._batch.append(packet)

    def ingest_data(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Relay another data message (onCuePoint, onTextData...) as is."""
        timestamp_ms = self.timeline.map(timestamp_ms, False)
        self._batch.append(Packet(type_id, timestamp_ms, payload, PacketKind.DATA))

    def _info_changed(self, changed: bool) -> None:
        if changed:
            logger.info("%s/%s: %s", self.app, self.name, self.info.summary())

    def sample(self, interval_s: float) -> None:
        """Once a second (called by the server): bitrate and measured rates."""
        info = self.info
        info.sample(self.video_frames_in, self.video_bytes_in, self.audio_bytes_in, interval_s)
        self.bitrate_bps = info.video_bitrate_bps + info.audio_bitrate_bps

    # -- delivery -------------------------------------------------------------------------

    def commit(self) -> None:
        """The source processed one read: deliver now, or within ``fanout_interval_s``."""
        if not self._batch:
            return
        if not self._queued and not self._players:
            # Nobody to deliver to (ingest only): no timer, no serialization.
            self._batch = []
            self._batch_bytes = 0
            return
        interval = self._interval_s
        settings = self.settings
        if interval > 0 and self._players > settings.fanout_max_writes_per_s * interval:
            # So many players that every write per batch counts: hold batches longer.
            interval = min(
                settings.fanout_max_interval_s, self._players / settings.fanout_max_writes_per_s
            )
        elif self.reads_coalesced:
            interval = 0.0  # the kernel held the source's bytes for the window already
        if interval <= 0 or self._batch_bytes >= self._max_bytes:
            self.flush()
        elif self._timer is None:
            self._timer = self.scheduler.call_later(interval, self.flush)

    def flush(self) -> None:
        """Deliver the held batch: one joined write per inline output, packets to queued."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self._batch
        if not batch:
            return
        self._batch = []
        self._batch_bytes = 0
        joined = self._joined
        if joined:
            self._joined = {}
        # Snapshots: an output may detach itself (a dropped player) while we iterate.
        for wire, group in list(self._inline.items()):
            if len(batch) == 1:
                data = batch[0].wire(wire)
            else:
                data = b"".join([p.wire(wire) for p in batch])
            if not joined:
                for output in tuple(group):
                    output.on_batch(data, batch)
                continue
            for output in tuple(group):
                start = joined.get(output)
                if start is None:
                    output.on_batch(data, batch)
                elif start < len(batch):
                    skip = sum(len(p.wire(wire)) for p in batch[:start])
                    output.on_batch(data[skip:], batch[start:])
        if self._queued:
            for output in tuple(self._queued):
                start = joined.get(output, 0) if joined else 0
                if start < len(batch):
                    output.on_batch(None, batch[start:] if start else batch)
