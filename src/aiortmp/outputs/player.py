"""Players: inline outputs that write shared bytes to a socket. HOT PATH.

A healthy player costs one ``transport.write`` of the batch bytes the stream serialized
once for every player of its wire format, plus one look at its transport backlog
(``get_write_buffer_size``). Everything else — ``receiveAudio`` / ``receiveVideo``, pause,
dropping, the startup burst — happens in :meth:`Player._deliver_slow`, which only runs for
players that need it.

Slow-player policy (:class:`~aiortmp.server.config.PlayerPolicy`):

1. backlog above the soft limit (bytes, or estimated ms of media): non-key video is
   dropped and the player's :class:`~aiortmp.hub.gate.KeyframeGate` waits for the next
   keyframe. Configuration, metadata, audio and keyframes are never dropped.
2. backlog above the hard limit, or dropping for longer than ``max_behind_s``: the player
   is disconnected with a log line. The source and the other players never wait on it.

The same class serves RTMP players (:mod:`.rtmp_play`) and HTTP-FLV / WebSocket-FLV
viewers (:mod:`.http_flv`); what differs is the :class:`PlayerHost` and the wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from aiortmp.hub.gate import KeyframeGate
from aiortmp.hub.packet import Packet, PacketKind, WireFormat
from aiortmp.hub.stream import Stream

if TYPE_CHECKING:
    from aiortmp.server.config import PlayerPolicy

__all__ = ["ByteCounter", "Player", "PlayerHost", "WriteTransport"]

logger = logging.getLogger("aiortmp.player")

_VIDEO_KINDS = (PacketKind.VIDEO, PacketKind.KEYFRAME, PacketKind.VIDEO_CONFIG)
_INTER = PacketKind.VIDEO
_AUDIO = PacketKind.AUDIO
_MIN_SOFT_LIMIT = 64 * 1024


class WriteTransport(Protocol):
    """The part of ``asyncio.Transport`` a player writes to (an HTTP-FLV player wraps its
    transport to add chunked or WebSocket framing)."""

    def write(self, data: bytes) -> None:
        """Queue bytes for sending."""

    def get_write_buffer_size(self) -> int:
        """Bytes queued and not yet sent."""
        ...


class ByteCounter(Protocol):
    """Where the bytes a player sends are accounted besides the player itself: the RTMP
    connection's sans-I/O core (``RTMPConnection.bytes_sent``), or an HTTP viewer."""

    bytes_sent: int


class PlayerHost(Protocol):
    """What a player needs from the session that owns it."""

    transport: WriteTransport

    def notify_publish(self, player: Player) -> None:
        """The stream went live while the player waited: StreamBegin + PublishNotify."""

    def notify_unpublish(self, player: Player) -> None:
        """The source left: UnpublishNotify + StreamEOF (RTMP), end of body (HTTP)."""

    def drop_player(self, player: Player, reason: str) -> None:
        """Disconnect a player that cannot keep up, with a log line."""


class Player:
    """One player of a :class:`~aiortmp.hub.stream.Stream` (an inline output).

    Args:
        host: the session that owns the player.
        stream: the stream it plays.
        policy: the slow-player policy.
        clock: monotonic clock in seconds (``loop.time``).
        wire: its wire format (``rtmp_wire(msid, chunk_size)`` or ``FLV``).
        counter: also counts the bytes sent (the connection core), or None.

    Attributes:
        bytes_sent: bytes written for this play.
        messages_dropped: video messages dropped by the slow-player policy.
        closed: set once the player is detached or dropped.
    """

    __slots__ = (
        "host",
        "transport",
        "wire",
        "stream",
        "policy",
        "clock",
        "counter",
        "gate",
        "audio_enabled",
        "video_enabled",
        "paused",
        "dropping_since",
        "soft_limit_bytes",
        "_simple",
        "closed",
        "bytes_sent",
        "waited_for_publisher",
    )

    def __init__(
        self,
        host: PlayerHost,
        stream: Stream,
        policy: PlayerPolicy,
        clock: Callable[[], float],
        wire: WireFormat,
        counter: ByteCounter | None = None,
    ) -> None:
        self.host = host
        self.transport = host.transport
        self.wire: WireFormat = wire
        self.stream = stream
        self.policy = policy
        self.clock = clock
        self.counter = counter
        self.gate = KeyframeGate(closed=True)
        self.audio_enabled = True
        self.video_enabled = True
        self.paused = False
        self.dropping_since = 0.0
        self.soft_limit_bytes = policy.backlog_soft_bytes
        self._simple = False
        self.closed = False
        self.bytes_sent = 0
        self.waited_for_publisher = not stream.is_live

    @property
    def messages_dropped(self) -> int:
        """Video messages dropped for this player (slow, or waiting for a keyframe)."""
        return self.gate.dropped

    # -- Output -----------------------------------------------------------------------------

    def on_batch(self, data: bytes | None, packets: Sequence[Packet]) -> None:
        """Send one batch. Fast path: a single write of the shared bytes."""
        if (
            data is not None
            and self._simple
            and self.transport.get_write_buffer_size() <= self.soft_limit_bytes
        ):
            self.transport.write(data)
            size = len(data)
            self.bytes_sent += size
            counter = self.counter
            if counter is not None:
                counter.bytes_sent += size
            return
        self._deliver_slow(packets)

    def on_live(self, live: bool) -> None:
        """The source started (notify if we waited; the startup burst follows) or left."""
        if self.closed:
            return
        if live:
            if self.waited_for_publisher:
                self.host.notify_publish(self)
            self.waited_for_publisher = True  # a later republish is notified too
            self.gate.close()  # start at a keyframe (the cached GOP begins with one)
            self.refresh_limits()
            self._update_simple()
        else:
            self.host.notify_unpublish(self)

    # -- flags ------------------------------------------------------------------------------

    def set_receive(self, *, audio: bool | None = None, video: bool | None = None) -> None:
        """Apply ``receiveAudio`` / ``receiveVideo``; video resumes at the next keyframe."""
        if audio is not None:
            self.audio_enabled = audio
        if video is not None:
            if video and not self.video_enabled:
                self.gate.close()
            self.video_enabled = video
        self._update_simple()

    def set_paused(self, paused: bool) -> None:
        """Pause (send nothing) or resume (from the next keyframe) a live player."""
        self.paused = paused
        if not paused:
            self.gate.close()
        self._update_simple()

    def refresh_limits(self) -> None:
        """Recompute the soft limit in bytes from the ms limit and the stream's bitrate."""
        policy = self.policy
        limit = policy.backlog_soft_bytes
        bitrate_bps = self.stream.bitrate_bps
        if bitrate_bps and policy.backlog_soft_ms:
            limit = min(limit, int(bitrate_bps / 8 * policy.backlog_soft_ms / 1000))
        self.soft_limit_bytes = max(limit, _MIN_SOFT_LIMIT)

    def _update_simple(self) -> None:
        self._simple = (
            self.audio_enabled
            and self.video_enabled
            and not self.paused
            and not self.gate.closed
            and not self.closed
        )

    # -- slow path --------------------------------------------------------------------------

    def _deliver_slow(self, packets: Sequence[Packet]) -> None:
        if self.closed or self.paused:
            return
        transport = self.transport
        backlog = transport.get_write_buffer_size()
        policy = self.policy
        if backlog > policy.backlog_hard_bytes:
            self._drop(
                f"backlog {backlog} bytes exceeds the hard limit of "
                f"{policy.backlog_hard_bytes} bytes"
            )
            return
        over_soft = backlog > self.soft_limit_bytes
        gate = self.gate
        wire = self.wire
        out: list[bytes] = []
        for packet in packets:
            kind = packet.kind
            if kind in _VIDEO_KINDS:
                if not self.video_enabled:
                    continue
                if over_soft and kind is _INTER:
                    gate.close()
                    if not self.dropping_since:
                        self.dropping_since = self.clock()
                if not gate.admit(kind, hold=over_soft):
                    continue
            elif kind is _AUDIO and not self.audio_enabled:
                continue
            out.append(packet.wire(wire))
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            transport.write(data)
            size = len(data)
            self.bytes_sent += size
            if self.counter is not None:
                self.counter.bytes_sent += size
        if not gate.closed:
            self.dropping_since = 0.0
        elif self.dropping_since and self.clock() - self.dropping_since > policy.max_behind_s:
            # Behind since the soft limit was first crossed (not merely waiting for the
            # keyframe after a start, an unpause or receiveVideo true).
            self._drop(f"dropping video for more than {policy.max_behind_s:g} s")
            return
        self._update_simple()

    def _drop(self, reason: str) -> None:
        self.closed = True
        self._simple = False
        self.host.drop_player(self, reason)
