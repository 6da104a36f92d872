"""Per-stream figures the RTMP core does not keep: publish time and outgoing bitrate.

The core counts bytes (``stream.bytes_in``, each player's ``bytes_sent``) and measures the
incoming bitrate itself; this module adds what only the HTTP surface needs, off the media
path: a one-second sampler of players' ``bytes_sent`` and a publish clock fed by server
events.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.hub.stream import Output, Stream, StreamKey

if TYPE_CHECKING:
    from aiortmp.outputs.hls import HLSService

    from ..app import RTMPServer

__all__ = ["StreamSampler", "player_bytes_sent", "player_messages_dropped"]


def player_bytes_sent(player: Output) -> int:
    """Bytes a player has been sent (0 for subscribers that do not count)."""
    value = getattr(player, "bytes_sent", 0)
    return value if isinstance(value, int) else 0


def player_messages_dropped(player: Output) -> int:
    """Messages dropped for a slow player (0 for subscribers that do not count)."""
    value = getattr(player, "messages_dropped", 0)
    return value if isinstance(value, int) else 0


class StreamSampler:
    """Publish times and outgoing bitrates of the live streams.

    Args:
        server: the server whose registry is sampled.
        interval_s: sampling period in seconds.
        hls: the HLS service, whose bytes served count as sent (None: no HLS).

    Attributes:
        published_at: stream key → ``(wall clock s, monotonic s)`` of the last publish.
        bitrate_out_bps: stream key → bits per second sent to its players (HLS viewers
            included) over the last period.
    """

    def __init__(
        self, server: RTMPServer, *, interval_s: float = 1.0, hls: HLSService | None = None
    ) -> None:
        self.server = server
        self.hls = hls
        self._last_hls: dict[StreamKey, int] = {}
        self.interval_s = interval_s
        self.published_at: dict[StreamKey, tuple[float, float]] = {}
        self.bitrate_out_bps: dict[StreamKey, int] = {}
        self._last_sent: dict[Output, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = server.subscribe(self._on_event)
        # Streams already live when the sampler starts (an embedder adding it late).
        for stream in server.registry.live():
            self.published_at[stream.key] = (time.time(), time.monotonic())

    def start(self) -> None:
        """Start sampling on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """Stop sampling and stop listening to server events."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._unsubscribe()

    def uptime_s(self, stream: Stream) -> float | None:
        """Seconds since ``stream`` was published, or None if it is not live."""
        started = self.published_at.get(stream.key)
        if started is None or not stream.is_live:
            return None
        return time.monotonic() - started[1]

    def published_wall_s(self, stream: Stream) -> float | None:
        """UNIX time of the publish, or None."""
        started = self.published_at.get(stream.key)
        return None if started is None else started[0]

    def _on_event(self, event: ServerEvent) -> None:
        key = (event.app, event.name)
        if event.kind is EventKind.PUBLISH:
            self.published_at[key] = (time.time(), time.monotonic())
        elif event.kind is EventKind.UNPUBLISH:
            self.published_at.pop(key, None)
            self.bitrate_out_bps.pop(key, None)

    def sample(self, interval_s: float) -> None:
        """Measure every stream's outgoing bitrate over the last ``interval_s`` seconds.

        A player that joined during the period counts from 0 (its start-up burst — caches,
        GOP — is part of what was sent); a player that left no longer counts.
        """
        last = self._last_sent
        current: dict[Output, int] = {}
        rates: dict[StreamKey, int] = {}
        hls_now = dict(self.hls.bytes_sent) if self.hls is not None else {}
        hls_last = self._last_hls
        for stream in self.server.registry:
            key = stream.key
            sent = max(0, hls_now.get(key, 0) - hls_last.get(key, 0))
            for player in stream.players:
                total = player_bytes_sent(player)
                current[player] = total
                sent += max(0, total - last.get(player, 0))
            rates[key] = int(sent * 8 / interval_s) if interval_s > 0 else 0
        self._last_sent = current
        self._last_hls = hls_now
        self.bitrate_out_bps = rates

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        previous = loop.time()
        while True:
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            self.sample(now - previous)
            previous = now
