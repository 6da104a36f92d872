"""RTMP players: per-player delivery and the slow-player policy. HOT PATH.

A healthy player costs one ``transport.write`` of the shared batch bytes plus one look at
its transport backlog (``get_write_buffer_size``). Everything else — receiveAudio /
receiveVideo filters, pause, dropping — happens in :meth:`Player._deliver_slow`, which only
runs for players that need it.

Slow-player policy (:class:`~aiortmp.server.config.PlayerPolicy`):

1. backlog above the soft limit (bytes, or estimated ms of media): non-key video is dropped
   and the player waits for the next keyframe before it gets video again. Sequence
   headers, metadata, audio and keyframes are never dropped.
2. backlog above the hard limit, or dropping for longer than ``max_behind_s``: the player is
   disconnected with a log line. The publisher and other players never wait on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from .stream import LiveStream, Packet, PacketKind, WireFormat

if TYPE_CHECKING:
    from .config import PlayerPolicy

__all__ = ["Player", "PlayerHost", "WriteTransport"]

logger = logging.getLogger("aiortmp.player")

_VIDEO_KINDS = (PacketKind.VIDEO, PacketKind.KEYFRAME, PacketKind.VIDEO_HEADER)


class WriteTransport(Protocol):
    """The part of ``asyncio.Transport`` a player writes to (an HTTP-FLV player may wrap
    its transport to add chunked framing)."""

    def write(self, data: bytes) -> None:
        """Queue bytes for sending."""

    def get_write_buffer_size(self) -> int:
        """Bytes queued and not yet sent."""
        ...


class PlayerHost:
    """What a player needs from its connection (the RTMP server protocol, an HTTP-FLV
    handler...)."""

    transport: WriteTransport

    def notify_publish(self, player: Player) -> None:
        """Send StreamBegin + NetStream.Play.PublishNotify and flush."""
        raise NotImplementedError

    def notify_unpublish(self, player: Player) -> None:
        """Send NetStream.Play.UnpublishNotify + StreamEOF and flush."""
        raise NotImplementedError

    def drop_player(self, player: Player, reason: str) -> None:
        """Disconnect a player that cannot keep up, with a log line."""
        raise NotImplementedError


class Player:
    """One player attached to a :class:`LiveStream`: an RTMP NetStream in PLAYING state, or
    an HTTP-FLV / WebSocket-FLV viewer.

    Args:
        host: the connection that owns the player.
        message_stream_id: the NetStream msid the player plays on (0 for non-RTMP).
        stream: the live stream it plays.
        policy: the slow-player policy.
        clock: monotonic clock in seconds (``loop.time``).
        wire_format: how packets are serialized for it; default: RTMP chunks for
            ``message_stream_id``.
    """

    __slots__ = (
        "host",
        "transport",
        "message_stream_id",
        "wire_format",
        "stream",
        "policy",
        "clock",
        "audio_enabled",
        "video_enabled",
        "paused",
        "waiting_keyframe",
        "dropping_since",
        "soft_limit_bytes",
        "_simple",
        "closed",
        "messages_dropped",
        "bytes_sent",
        "waited_for_publisher",
    )

    def __init__(
        self,
        host: PlayerHost,
        message_stream_id: int,
        stream: LiveStream,
        policy: PlayerPolicy,
        clock: Callable[[], float],
        wire_format: WireFormat | None = None,
    ) -> None:
        self.host = host
        self.transport = host.transport
        self.message_stream_id = message_stream_id
        self.wire_format: WireFormat = message_stream_id if wire_format is None else wire_format
        self.stream = stream
        self.policy = policy
        self.clock = clock
        self.audio_enabled = True
        self.video_enabled = True
        self.paused = False
        self.waiting_keyframe = False
        self.dropping_since = 0.0
        self.soft_limit_bytes = policy.backlog_soft_bytes
        self._simple = True
        self.closed = False
        self.messages_dropped = 0
        self.bytes_sent = 0
        self.waited_for_publisher = not stream.is_live

    # -- fan-out entry points (called by LiveStream) -----------------------------------

    def deliver(self, data: bytes, packets: Sequence[Packet]) -> None:
        """Send one batch. Fast path: a single write of the shared bytes."""
        if self._simple and self.transport.get_write_buffer_size() <= self.soft_limit_bytes:
            self.transport.write(data)
            self.bytes_sent += len(data)
            return
        self._deliver_slow(packets)

    def stream_started(self, stream: LiveStream) -> None:
        """Publisher live: notify if we waited for it, then send caches (headers, GOP)."""
        if self.waited_for_publisher:
            self.host.notify_publish(self)
        self.waited_for_publisher = True  # a later republish is notified too
        self.waiting_keyframe = False
        self.refresh_limits()
        packets = stream.startup_packets()
        if packets:
            self._deliver_slow(packets)

    def stream_stopped(self, stream: LiveStream) -> None:
        """Publisher left: UnpublishNotify + StreamEOF; the player waits for a republish."""
        if not self.closed:
            self.host.notify_unpublish(self)

    # -- flags --------------------------------------------------------------------------

    def set_receive(self, *, audio: bool | None = None, video: bool | None = None) -> None:
        """Apply ``receiveAudio`` / ``receiveVideo``; video resumes at the next keyframe."""
        if audio is not None:
            self.audio_enabled = audio
        if video is not None:
            if video and not self.video_enabled:
                self.waiting_keyframe = True
            self.video_enabled = video
        self._update_simple()

    def set_paused(self, paused: bool) -> None:
        """Pause (send nothing) or resume (from the next keyframe) a live player."""
        self.paused = paused
        if not paused:
            self.waiting_keyframe = True
        self._update_simple()

    def refresh_limits(self) -> None:
        """Recompute the soft limit in bytes from the ms limit and the stream's bitrate."""
        policy = self.policy
        limit = policy.backlog_soft_bytes
        bitrate_bps = self.stream.bitrate_bps
        if bitrate_bps and policy.backlog_soft_ms:
            limit = min(limit, int(bitrate_bps / 8 * policy.backlog_soft_ms / 1000))
        self.soft_limit_bytes = max(limit, 64 * 1024)

    def _update_simple(self) -> None:
        self._simple = (
            self.audio_enabled
            and self.video_enabled
            and not self.paused
            and not self.waiting_keyframe
            and not self.closed
        )

    # -- slow path ------------------------------------------------------------------------

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
        wire_format = self.wire_format
        chunk_size = self.stream.chunk_size
        out: list[bytes] = []
        for packet in packets:
            kind = packet.kind
            if kind in _VIDEO_KINDS:
                if not self.video_enabled:
                    continue
                if kind is PacketKind.VIDEO:
                    if self.waiting_keyframe or over_soft:
                        if not self.waiting_keyframe:
                            self.waiting_keyframe = True
                            self.dropping_since = self.clock()
                        self.messages_dropped += 1
                        continue
                elif kind is PacketKind.KEYFRAME and self.waiting_keyframe and not over_soft:
                    self.waiting_keyframe = False
            elif kind is PacketKind.AUDIO and not self.audio_enabled:
                continue
            out.append(packet.wire(wire_format, chunk_size))
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            transport.write(data)
            self.bytes_sent += len(data)
        if self.waiting_keyframe and self.dropping_since:
            if self.clock() - self.dropping_since > policy.max_behind_s:
                self._drop(f"dropping video for more than {policy.max_behind_s:g} s")
                return
        elif not self.waiting_keyframe:
            self.dropping_since = 0.0
        self._update_simple()

    def _drop(self, reason: str) -> None:
        self.closed = True
        self._simple = False
        self.host.drop_player(self, reason)
