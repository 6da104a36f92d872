"""Streams by ``(app, name)``, and the one place a stream's start and stop are announced.

Every kind of source — an RTMP publisher, a pull, a VOD file, a worker or origin link —
attaches to a :class:`~aiortmp.hub.stream.Stream` the same way, and the registry turns
that into one ``publish`` / ``unpublish`` :class:`~aiortmp.hub.bus.ServerEvent` on the bus.
Recording, hooks, pushes and the API subscribe to those, so they treat every source alike.

A worker link (kind ``"link"``) is the exception: it copies a stream that its owner worker
announces, records, pushes and hooks; announcing the copy again would do all that twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from .bus import EventBus, EventKind, ServerEvent
from .stream import Scheduler, Source, Stream, StreamKey, StreamSettings

__all__ = ["LINK", "Registry"]

#: The :attr:`Source.kind` of a copy of a stream announced elsewhere (a worker link).
LINK = "link"


class Registry:
    """The streams of a server, keyed by ``(app, name)`` (query strings are not part of it).

    A stream exists while it has a source or at least one output (players may arrive
    before the source and wait for it).

    Args:
        scheduler: the event loop (timers for batch coalescing).
        bus: where ``publish`` / ``unpublish`` events go.
        settings: the settings of streams created from now on.
    """

    def __init__(
        self, *, scheduler: Scheduler, bus: EventBus, settings: StreamSettings | None = None
    ) -> None:
        self._streams: dict[StreamKey, Stream] = {}
        self._coming: set[StreamKey] = set()
        self.scheduler = scheduler
        self.bus = bus
        self.settings = settings or StreamSettings()

    def get(self, app: str, name: str) -> Stream | None:
        """The stream, or None."""
        return self._streams.get((app, name))

    def get_or_create(self, app: str, name: str) -> Stream:
        """The stream, created (no source, no outputs) if needed."""
        stream = self._streams.get((app, name))
        if stream is None:
            stream = Stream(
                app, name, scheduler=self.scheduler, settings=self.settings, listener=self
            )
            self._streams[(app, name)] = stream
        return stream

    def release(self, stream: Stream) -> None:
        """Forget ``stream`` if it has neither a source nor outputs."""
        if stream.source is None and not stream.output_count:
            if self._streams.get(stream.key) is stream:
                del self._streams[stream.key]

    def __iter__(self) -> Iterator[Stream]:
        return iter(list(self._streams.values()))

    def __len__(self) -> int:
        return len(self._streams)

    def set_coming(self, app: str, name: str, coming: bool) -> None:
        """Say that a source is on its way to ``app/name`` (a pull started, not live yet)
        or no longer is; outputs that could wait for it (HLS) ask :meth:`is_coming`."""
        if coming:
            self._coming.add((app, name))
        else:
            self._coming.discard((app, name))

    def is_coming(self, app: str, name: str) -> bool:
        """True while a source is on its way to ``app/name`` (see :meth:`set_coming`)."""
        return (app, name) in self._coming

    def live(self) -> list[Stream]:
        """Streams that have a source."""
        return [s for s in self._streams.values() if s.source is not None]

    # -- StreamListener -------------------------------------------------------------------

    def stream_started(self, stream: Stream) -> None:
        """Announce ``publish`` for a stream's new source."""
        source = stream.source
        if source is None or source.kind == LINK:
            return
        self.bus.emit(
            ServerEvent(
                kind=EventKind.PUBLISH,
                session_id=source.session_id,
                remote=source.remote,
                app=stream.app,
                name=stream.name,
                details={"source": source.kind},
            )
        )

    def stream_stopped(self, stream: Stream, source: Source) -> None:
        """Announce ``unpublish``, then forget the stream if nothing else holds it."""
        if source.kind == LINK:
            self.release(stream)
            return
        self.bus.emit(
            ServerEvent(
                kind=EventKind.UNPUBLISH,
                session_id=source.session_id,
                remote=source.remote,
                app=stream.app,
                name=stream.name,
                details={
                    "source": source.kind,
                    "bytes_in": stream.bytes_in,
                    "messages_in": stream.messages_in,
                },
            )
        )
        self.release(stream)
