"""The stream registry: live streams by (app, stream name)."""

from __future__ import annotations

from collections.abc import Iterator

from .stream import LiveStream, StreamKey

__all__ = ["StreamRegistry"]


class StreamRegistry:
    """Live streams keyed by ``(app, name)``; query strings are kept out of the key.

    A stream exists while it has a publisher or at least one player (players may arrive
    before the publisher and wait for it).

    Args:
        chunk_size: the server's outgoing chunk size (bytes) for every stream.
        gop_cache: whether streams cache their current GOP.
        gop_cache_max_bytes: GOP cache cap per stream (bytes).
        fanout_interval_s / fanout_max_bytes: batch coalescing (see LiveStream).
    """

    def __init__(
        self,
        *,
        chunk_size: int = 4096,
        gop_cache: bool = True,
        gop_cache_max_bytes: int = 8 << 20,
        fanout_interval_s: float = 0.0,
        fanout_max_bytes: int = 128 * 1024,
    ) -> None:
        self._streams: dict[StreamKey, LiveStream] = {}
        self.chunk_size = chunk_size
        self.gop_cache = gop_cache
        self.gop_cache_max_bytes = gop_cache_max_bytes
        self.fanout_interval_s = fanout_interval_s
        self.fanout_max_bytes = fanout_max_bytes

    def get(self, app: str, name: str) -> LiveStream | None:
        """The stream, or None."""
        return self._streams.get((app, name))

    def get_or_create(self, app: str, name: str) -> LiveStream:
        """The stream, created (not live, no players) if needed."""
        stream = self._streams.get((app, name))
        if stream is None:
            stream = LiveStream(
                app,
                name,
                chunk_size=self.chunk_size,
                gop_cache=self.gop_cache,
                gop_cache_max_bytes=self.gop_cache_max_bytes,
                fanout_interval_s=self.fanout_interval_s,
                fanout_max_bytes=self.fanout_max_bytes,
            )
            self._streams[(app, name)] = stream
        return stream

    def release(self, stream: LiveStream) -> None:
        """Forget ``stream`` if it has neither a publisher nor players."""
        if not stream.is_live and not stream.player_count:
            if self._streams.get(stream.key) is stream:
                del self._streams[stream.key]

    def __iter__(self) -> Iterator[LiveStream]:
        return iter(list(self._streams.values()))

    def __len__(self) -> int:
        return len(self._streams)

    def live(self) -> list[LiveStream]:
        """Streams that have a publisher."""
        return [s for s in self._streams.values() if s.is_live]
