"""Push relays: publish local streams to other servers, as queued outputs.

Configuration (``aiortmp.toml``)::

    [[relay.push]]                 # every stream published in app "live" (by any source:
    app = "live"                   # an RTMP publisher, a pull...) also goes to
    url = "rtmp://upstream.example/live"   # rtmp://upstream.example/live/<stream>

A :class:`Pusher` is a :class:`~aiortmp.outputs.queued.QueuedOutput` of the local stream:
the stream only appends to its bounded queue; its task publishes upstream with
:mod:`aiortmp.client`. On every (re)connect it sends the stream's cached metadata and
configuration first, then starts at the next keyframe. Failed or lost connections are
retried with backoff (:func:`aiortmp.client.reconnecting`); an upstream that asks for a
reconnect (E-RTMP v2 ReconnectRequest) gets it at the next keyframe, without a gap
(:class:`aiortmp.client.Publisher`). A stalled upstream — one that
accepts and stops reading — is noticed two ways: a write that does not drain within
``timeout_s``, or a queue that overflows; either drops that connection and retries. Local
players never notice (the stream feeds them, not the pusher).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortmp.client import Backoff, Connection, Publisher, join_url, parse_url, reconnecting
from aiortmp.errors import ClientError, RTMPError
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import StartAt, Stream, StreamKey
from aiortmp.protocol.messages import MessageType

from .queued import QueuedOutput

if TYPE_CHECKING:
    from aiortmp.server.config import RelayConfig

__all__ = ["PushDestination", "PushService", "Pusher", "RelayState"]

logger = logging.getLogger("aiortmp.relay")

_SENT_TYPES = (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0)
#: Bytes written upstream before waiting for the socket buffer to drain.
_WRITE_BATCH_BYTES = 256 * 1024


class RelayState(enum.StrEnum):
    """State of one push or pull."""

    IDLE = "idle"  #: push destination with no matching live stream
    CONNECTING = "connecting"  #: TCP + handshake + connect + publish/play in progress
    PUBLISHING = "publishing"  #: push: sending media upstream
    WAITING = "waiting"  #: pull: playing, but the remote stream is not live
    PULLING = "pulling"  #: pull: the remote stream feeds the local one
    RETRYING = "retrying"  #: waiting out the backoff after an error
    STOPPED = "stopped"


def error_text(exc: BaseException) -> str:
    """``Type: message`` of an exception, for logs and the relay status."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Stalled(ClientError):
    """The upstream stopped reading (queue overflow or a write that did not drain)."""


class Pusher(QueuedOutput):
    """Pushes one local stream to one destination.

    Args:
        destination: the destination it belongs to.
        stream: the local live stream.
        config: the relay settings (queue size, backoff, timeout).

    Attributes:
        state: the :class:`RelayState`.
        connected_since: wall-clock time (Unix seconds) of the current publish, or None.
        reconnects: successful publishes after the first one.
        bytes_sent: payload bytes sent upstream.
        last_error: the last connection error, or "".
    """

    def __init__(self, destination: PushDestination, stream: Stream, config: RelayConfig):
        self.destination = destination
        self.url = join_url(destination.url, stream.name)
        super().__init__(
            stream,
            max_bytes=config.push_queue_bytes,
            label=f"push {stream.app}/{stream.name} -> {self.url}",
        )
        self.timeout_s = config.timeout_s
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.state = RelayState.CONNECTING
        self.connected_since: float | None = None
        self.reconnects = 0
        self.bytes_sent = 0
        self.last_error = ""
        self._published_once = False
        self._stalled = False

    @property
    def dropped(self) -> int:
        """Video messages dropped because the upstream did not keep up."""
        return self.queue.dropped

    # -- QueuedOutput ---------------------------------------------------------------------

    def on_batch(self, data: bytes | None, packets: Any) -> None:
        """Queue a batch while publishing; ignored while (re)connecting (the cached
        configuration and the next keyframe restart the push)."""
        if self.state is RelayState.PUBLISHING:
            super().on_batch(data, packets)

    def overflowed(self) -> None:
        """The upstream stopped reading: drop the connection and retry (logged by the
        task)."""
        self._stalled = True
        self.queue.clear()
        self._wake.set()

    def on_live(self, live: bool) -> None:
        """The source left: finish the upstream publish, or stop retrying at once."""
        super().on_live(live)
        if not live and self.state is not RelayState.PUBLISHING and self.task is not None:
            self.task.cancel()

    def start(self, start: StartAt = StartAt.KEYFRAME) -> None:
        """Subscribe (packets are taken once publishing) and start the task."""
        super().start(start)

    async def _run(self) -> None:  # the reconnect loop replaces QueuedOutput's
        def failed(exc: Exception, delay_s: float) -> None:
            self.state = RelayState.RETRYING
            self.last_error = error_text(exc)

        try:
            connections = reconnecting(
                self.url,
                timeout=self.timeout_s,
                backoff=self.backoff,
                retry_rejected=True,
                on_error=failed,
            )
            async with contextlib.aclosing(connections):
                async for conn in connections:
                    try:
                        await self._push_on(conn)
                    except (ClientError, OSError, RTMPError, TimeoutError) as exc:
                        self.last_error = error_text(exc)
                        logger.warning("%s: %s", self.label, self.last_error)
                    finally:
                        self.connected_since = None
                        self.queue.clear()
                    if self.ended:
                        break
                    self.state = RelayState.RETRYING
        finally:
            self.state = RelayState.STOPPED
            self.ended = True
            self.queue.clear()
            self.stream.unsubscribe(self)

    async def _push_on(self, conn: Connection) -> None:
        self.state = RelayState.CONNECTING
        publisher = await conn.publish(parse_url(self.url).stream)
        if self.ended:
            await publisher.close()
            return
        logger.info("%s: publishing", self.label)
        self._begin()
        watcher = asyncio.ensure_future(conn.wait_closed())
        watcher.add_done_callback(lambda _: self._wake.set())
        try:
            await self._forward(conn, publisher)
        finally:
            watcher.cancel()

    def _begin(self) -> None:
        """Publishing upstream: queue metadata and configuration, wait for a keyframe."""
        stream = self.stream
        # Packets held for coalescing predate this start (the cache holds them): deliver
        # them while this push is not PUBLISHING, so it ignores them.
        stream.flush()
        queue = self.queue
        queue.clear()
        queue.overflowed = False
        queue.gate.close()
        self._stalled = False
        queue.push(stream.cache.replay(gop=False))
        self.state = RelayState.PUBLISHING
        self.connected_since = time.time()
        if self._published_once:
            self.reconnects += 1
        self._published_once = True
        self._wake.set()

    async def _forward(self, conn: Connection, publisher: Publisher) -> None:
        queue = self.queue
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Not ``conn``: a publisher that followed a ReconnectRequest (E-RTMP v2)
            # publishes on a new connection, and ``conn`` closed behind it.
            current = publisher.connection
            if current.closed:
                raise ClientError(
                    f"connection lost: {current.close_reason}"
                    if current.close_reason
                    else "connection closed by the server"
                )
            while len(queue) and not self._stalled:
                written = 0
                for packet in queue.pop_all():
                    if packet.type_id in _SENT_TYPES:
                        publisher.write(packet.type_id, packet.timestamp_ms, packet.payload)
                        written += len(packet.payload)
                    if written >= _WRITE_BATCH_BYTES:
                        await self._drain(publisher)
                        written = 0
                self.bytes_sent += written
                await self._drain(publisher)
            if self._stalled:
                raise _Stalled(
                    f"upstream fell more than {queue.max_bytes} bytes behind; reconnecting"
                )
            if self.ended:
                await publisher.close()
                await self._drain(publisher)
                return

    async def _drain(self, publisher: Publisher) -> None:
        try:
            await asyncio.wait_for(publisher.drain(), self.timeout_s)
        except TimeoutError:
            raise _Stalled(f"upstream did not read for {self.timeout_s:g} s") from None

    def status(self) -> dict[str, Any]:
        """JSON-ready state of this stream's push."""
        return {
            "name": self.stream.name,
            "url": self.url,
            "state": self.state.value,
            "connected_since": self.connected_since,
            "reconnects": self.reconnects,
            "bytes_sent": self.bytes_sent,
            "dropped": self.dropped,
            "queued_bytes": self.queue.queued_bytes,
            "last_error": self.last_error,
        }


_STATE_RANK = {
    RelayState.RETRYING: 0,
    RelayState.CONNECTING: 1,
    RelayState.PUBLISHING: 2,
    RelayState.STOPPED: 3,
}


class PushDestination:
    """One push target: ``url`` for the streams of ``app`` (or only ``stream``).

    Attributes:
        id: the destination id (``push-1``...).
        app: the local application.
        stream: the only stream name pushed, or None for every stream of ``app``.
        url: the upstream application URL (the stream name is appended).
        from_config: True for ``[[relay.push]]`` entries (replaced on reload), False for
            destinations added at run time.
        pushers: the running pushes, by local stream key.
    """

    def __init__(
        self, id: str, app: str, url: str, stream: str | None, *, from_config: bool
    ) -> None:
        self.id = id
        self.app = app
        self.url = url
        self.stream = stream
        self.from_config = from_config
        self.pushers: dict[StreamKey, Pusher] = {}
        # Totals of finished pushes.
        self._reconnects = 0
        self._bytes_sent = 0
        self._dropped = 0
        self._last_error = ""

    def matches(self, stream: Stream) -> bool:
        """True if ``stream`` is pushed to this destination."""
        return stream.app == self.app and (self.stream is None or stream.name == self.stream)

    def attach(self, stream: Stream, config: RelayConfig) -> Pusher | None:
        """Start pushing ``stream`` here (no-op if it already is)."""
        current = self.pushers.get(stream.key)
        if current is not None and current.stream is stream and not current.ended:
            return None
        pusher = Pusher(self, stream, config)
        self.pushers[stream.key] = pusher
        pusher.start()
        assert pusher.task is not None
        pusher.task.add_done_callback(lambda _: self._finished(pusher))
        return pusher

    def _finished(self, pusher: Pusher) -> None:
        self._reconnects += pusher.reconnects
        self._bytes_sent += pusher.bytes_sent
        self._dropped += pusher.dropped
        if pusher.last_error:
            self._last_error = pusher.last_error
        if self.pushers.get(pusher.stream.key) is pusher:
            del self.pushers[pusher.stream.key]

    def cancel(self) -> list[asyncio.Task[None]]:
        """Stop every push to this destination; returns the tasks to await."""
        tasks = []
        for pusher in list(self.pushers.values()):
            pusher.cancel()
            if pusher.task is not None:
                tasks.append(pusher.task)
        return tasks

    def status(self) -> dict[str, Any]:
        """JSON-ready state: the fields of the HTTP API plus one entry per stream."""
        pushers = list(self.pushers.values())
        if pushers:
            state = min((p.state for p in pushers), key=lambda s: _STATE_RANK.get(s, 9))
        else:
            state = RelayState.IDLE
        since = [p.connected_since for p in pushers if p.connected_since is not None]
        errors = [p.last_error for p in pushers if p.last_error]
        return {
            "id": self.id,
            "app": self.app,
            "stream": self.stream,
            "url": self.url,
            "state": state.value,
            "connected_since": min(since) if since else None,
            "reconnects": self._reconnects + sum(p.reconnects for p in pushers),
            "bytes_sent": self._bytes_sent + sum(p.bytes_sent for p in pushers),
            "dropped": self._dropped + sum(p.dropped for p in pushers),
            "last_error": errors[-1] if errors else self._last_error,
            "origin": "config" if self.from_config else "api",
            "streams": [p.status() for p in pushers],
        }


class PushService:
    """Push destinations: starts a :class:`Pusher` for every stream that goes live (any
    source) and matches a destination.

    Args:
        registry: the streams.
        bus: ``publish`` events come from here.
        config: the relay settings.
    """

    def __init__(self, registry: Registry, bus: EventBus, config: RelayConfig) -> None:
        self.registry = registry
        self.bus = bus
        self.config = config
        self._next_id = 1
        self.destinations: dict[str, PushDestination] = {}
        self._unsubscribe: Callable[[], None] | None = None
        for push in config.push:
            self.add(push.app, push.url, push.stream, from_config=True)

    async def start(self) -> None:
        """Push the live streams, and every stream that goes live from now on."""
        self._unsubscribe = self.bus.subscribe(self._on_event)
        for destination in self.destinations.values():
            self._attach_live(destination)

    async def stop(self) -> None:
        """Stop every push (upstream connections are closed)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks: list[asyncio.Task[None]] = []
        for destination in self.destinations.values():
            tasks += destination.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    def reload(self, config: RelayConfig) -> None:
        """Apply new ``[[relay.push]]`` tables: changed destinations are replaced;
        run-time destinations stay."""
        self.config = config
        wanted = {(p.app, p.url, p.stream) for p in config.push}
        have = {(d.app, d.url, d.stream): d for d in self.destinations.values() if d.from_config}
        for key, destination in have.items():
            if key not in wanted:
                self.remove(destination.id)
        for push in config.push:
            if (push.app, push.url, push.stream) not in have:
                self._attach_live(self.add(push.app, push.url, push.stream, from_config=True))

    def add(self, app: str, url: str, stream: str | None, *, from_config: bool) -> PushDestination:
        """A new destination (not started: see :meth:`attach_live`)."""
        destination = PushDestination(
            f"push-{self._next_id}", app, url, stream, from_config=from_config
        )
        self._next_id += 1
        self.destinations[destination.id] = destination
        return destination

    def remove(self, id: str) -> bool:
        """Stop and forget destination ``id``; False if there is none."""
        destination = self.destinations.pop(id, None)
        if destination is None:
            return False
        destination.cancel()
        logger.info("push destination %s (%s) removed", id, destination.url)
        return True

    def attach_live(self, destination: PushDestination) -> None:
        """Start pushing the live streams ``destination`` matches (once started)."""
        if self._unsubscribe is not None:
            self._attach_live(destination)

    def _attach_live(self, destination: PushDestination) -> None:
        for stream in self.registry.live():
            if destination.matches(stream):
                destination.attach(stream, self.config)

    def _on_event(self, event: ServerEvent) -> None:
        if event.kind is not EventKind.PUBLISH:
            return
        stream = self.registry.get(event.app, event.name)
        if stream is None or not stream.is_live:
            return
        for destination in self.destinations.values():
            if destination.matches(stream):
                destination.attach(stream, self.config)
