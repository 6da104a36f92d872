"""Relays: push local streams to other servers, pull remote streams on demand.

Configuration (``aiortmp.toml``)::

    [[relay.push]]                 # every stream published in app "live" is also
    app = "live"                   # published to rtmp://upstream.example/live/<stream>
    url = "rtmp://upstream.example/live"

    [[relay.pull]]                 # a play of "mirror/<name>" that is not published here
    app = "mirror"                 # plays rtmp://origin.example/live/<name> and serves it
    url = "rtmp://origin.example/live"
    static = ["always-on"]         # pulled all the time, players or not
    idle_timeout_s = 10            # the pull stops this long after its last player left

**Push.** A :class:`Pusher` is a :class:`~aiortmp.server.stream.Sink` of the local
:class:`~aiortmp.server.stream.LiveStream`. ``on_packets`` runs inside the stream's fan-out,
so it only appends to a bounded queue (never blocks, never awaits); a task drains the
queue into an :class:`aiortmp.client.Publisher`. When the queue fills, non-key video is
dropped first (then the pusher waits for the next keyframe), then audio and keyframes;
sequence headers and metadata are always kept. On every (re)connect the pusher first sends
the stream's cached metadata and sequence headers, then waits for the next keyframe before
sending video. Failed or lost connections are retried with exponential backoff; local
players never notice (they are fed by the stream, not by the pusher).

**Pull.** A :class:`Puller` plays the remote stream with :mod:`aiortmp.client` and is the
local stream's publisher: ``stream.start(puller)``, then ``ingest``/``set_metadata`` per
message and ``flush`` after each batch read from the socket. It starts on the first play
of a name that is not live here (the ``play`` server event with ``live`` False) and stops
``idle_timeout_s`` after the last player left (``stop`` events). If a local publisher asks
for the name, the pull yields: an access policy (installed while pull rules exist) stops
it before the handler looks at the stream, and players wait for the local publisher.

Ownership: :class:`RelayService` is the server component; it sets ``server.relay`` so the
HTTP API can call :meth:`RelayService.add_push`, :meth:`RelayService.remove_push` and
:meth:`RelayService.status`.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiortmp.client import (
    Backoff,
    ClientError,
    MediaMessage,
    Publisher,
    connect,
    join_url,
    parse_url,
)
from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.control import StreamEOF
from aiortmp.protocol.errors import RTMPError
from aiortmp.protocol.events import StatusReceived
from aiortmp.protocol.messages import MessageType

from .policy import ALLOW, Decision, EventKind, Request, ServerEvent
from .stream import LiveStream, Packet, PacketKind, StreamKey

if TYPE_CHECKING:
    from .app import RTMPServer
    from .config import RelayConfig, RelayPull, ServerConfig

__all__ = ["PushDestination", "Puller", "Pusher", "RelayService", "RelayState"]

logger = logging.getLogger("aiortmp.relay")

_SENT_TYPES = (MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0)
_UPSTREAM_END = frozenset(
    {NetStatusCode.PLAY_UNPUBLISH_NOTIFY, NetStatusCode.PLAY_STOP, "NetStream.Play.Complete"}
)
#: Bytes written to the upstream socket before waiting for its buffer to drain.
_WRITE_BATCH_BYTES = 256 * 1024
#: A connection that lived this long resets the reconnect backoff (seconds).
_STABLE_S = 10.0


class RelayState(enum.StrEnum):
    """State of one push or pull."""

    IDLE = "idle"  #: push destination with no matching live stream
    CONNECTING = "connecting"  #: TCP + handshake + connect + publish/play in progress
    PUBLISHING = "publishing"  #: push: sending media upstream
    WAITING = "waiting"  #: pull: playing, but the remote stream is not live
    PULLING = "pulling"  #: pull: the remote stream feeds the local one
    RETRYING = "retrying"  #: waiting out the backoff after an error
    STOPPED = "stopped"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- push -----------------------------------------------------------------------------------------


class Pusher:
    """Pushes one local stream to one destination. A :class:`Sink` of the stream.

    Args:
        destination: the destination it belongs to.
        stream: the local live stream.
        config: the relay settings (queue size, backoff, timeout).

    Attributes:
        state: the :class:`RelayState`.
        connected_since: wall-clock time (Unix seconds) of the current publish, or None.
        reconnects: successful publishes after the first one.
        bytes_sent: payload bytes sent upstream.
        dropped: messages dropped because the queue was full.
        last_error: the last connection error, or "".
    """

    def __init__(self, destination: PushDestination, stream: LiveStream, config: RelayConfig):
        self.destination = destination
        self.stream = stream
        self.url = join_url(destination.url, stream.name)
        self.max_queue_bytes = config.push_queue_bytes
        self.timeout_s = config.timeout_s
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.state = RelayState.CONNECTING
        self.connected_since: float | None = None
        self.reconnects = 0
        self.bytes_sent = 0
        self.dropped = 0
        self.last_error = ""
        self.task: asyncio.Task[None] | None = None
        self._queue: collections.deque[Packet] = collections.deque()
        self._queued_bytes = 0
        self._need_keyframe = False
        self._stopping = False
        self._published_once = False
        self._wake = asyncio.Event()

    # -- Sink (called by the stream's fan-out: must not block) -------------------------

    def on_packets(self, packets: Sequence[Packet]) -> None:
        """Queue a batch for upstream; drop per policy when the queue is full."""
        if self.state is not RelayState.PUBLISHING:
            return  # reconnecting: the cached headers and the next keyframe restart it
        limit = self.max_queue_bytes
        half = limit // 2
        queue = self._queue
        for packet in packets:
            kind = packet.kind
            size = len(packet.payload)
            if kind is PacketKind.VIDEO:
                # Non-key video goes first, and everything up to the next keyframe with it
                # (the frames after a gap cannot be decoded).
                if self._need_keyframe or self._queued_bytes > half:
                    self._need_keyframe = True
                    self.dropped += 1
                    continue
            elif kind is PacketKind.KEYFRAME:
                if self._queued_bytes + size > limit:
                    self._need_keyframe = True
                    self.dropped += 1
                    continue
                self._need_keyframe = False
            elif kind is PacketKind.AUDIO:
                if self._queued_bytes + size > limit:
                    self.dropped += 1
                    continue
            # Metadata and sequence headers are always kept: small, and needed to decode.
            queue.append(packet)
            self._queued_bytes += size
        self._wake.set()

    def on_stop(self) -> None:
        """The local publisher left: send what is queued, unpublish upstream, finish."""
        self._stopping = True
        self._wake.set()

    # -- the task -------------------------------------------------------------------------

    @property
    def queued_bytes(self) -> int:
        """Payload bytes waiting to be sent upstream."""
        return self._queued_bytes

    def start(self) -> None:
        """Attach to the stream and start the task."""
        self.stream.add_sink(self)
        self.task = asyncio.get_running_loop().create_task(
            self.run(), name=f"relay push {self.stream.app}/{self.stream.name} -> {self.url}"
        )

    def cancel(self) -> None:
        """Detach from the stream and stop at once (the upstream connection is closed)."""
        self._stopping = True
        self.stream.remove_sink(self)
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        """Connect, publish, forward; on errors retry with backoff until the stream stops."""
        loop = asyncio.get_running_loop()
        try:
            while not self._stopping:
                self.state = RelayState.CONNECTING
                began = loop.time()
                try:
                    await self._push_once()
                except (ClientError, OSError, RTMPError) as exc:
                    self.last_error = _error_text(exc)
                    logger.warning(
                        "push %s/%s -> %s: %s",
                        self.stream.app,
                        self.stream.name,
                        self.url,
                        self.last_error,
                    )
                finally:
                    self.connected_since = None
                    self._clear_queue()
                if self._stopping:
                    break
                if loop.time() - began >= _STABLE_S:
                    self.backoff.reset()
                self.state = RelayState.RETRYING
                await self._sleep(self.backoff.next_delay())
        finally:
            self.state = RelayState.STOPPED
            self._clear_queue()

    async def _sleep(self, delay_s: float) -> None:
        """Sleep ``delay_s`` seconds, or less if the stream stops."""
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), delay_s)
        except TimeoutError:
            pass

    def _clear_queue(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0

    def _begin(self) -> None:
        """Publishing upstream: queue metadata and sequence headers, wait for a keyframe."""
        stream = self.stream
        # Packets held for coalescing predate this start (the caches below hold them): fan
        # them out while this push is not PUBLISHING, so it ignores them.
        stream.flush()
        self._clear_queue()
        if stream.metadata_packet is not None:
            self._queue.append(stream.metadata_packet)
            self._queued_bytes += len(stream.metadata_packet.payload)
        has_video = False
        for packet in sorted(stream.headers.values(), key=lambda p: p.kind):
            self._queue.append(packet)
            self._queued_bytes += len(packet.payload)
            has_video = has_video or packet.type_id == MessageType.VIDEO
        self._need_keyframe = has_video or stream.video_frames_in > 0
        self.state = RelayState.PUBLISHING
        self.connected_since = time.time()
        if self._published_once:
            self.reconnects += 1
        self._published_once = True
        self._wake.set()

    async def _push_once(self) -> None:
        url = parse_url(self.url)
        async with connect(self.url, timeout=self.timeout_s) as conn:
            publisher = await conn.publish(url.stream)
            if self._stopping:
                await publisher.close()
                return
            logger.info("push %s/%s -> %s: publishing", self.stream.app, self.stream.name, self.url)
            self._begin()
            watcher = asyncio.ensure_future(conn.wait_closed())
            watcher.add_done_callback(lambda _: self._wake.set())
            try:
                await self._forward(publisher)
            finally:
                watcher.cancel()

    async def _forward(self, publisher: Publisher) -> None:
        queue = self._queue
        connection = publisher.connection
        while True:
            await self._wake.wait()
            self._wake.clear()
            if connection.closed:
                raise ClientError(
                    f"connection lost: {connection.close_reason}"
                    if connection.close_reason
                    else "connection closed by the server"
                )
            while queue:
                written = 0
                while queue and written < _WRITE_BATCH_BYTES:
                    packet = queue.popleft()
                    size = len(packet.payload)
                    self._queued_bytes -= size
                    if packet.type_id in _SENT_TYPES:
                        publisher.write(packet.type_id, packet.timestamp_ms, packet.payload)
                        written += size
                        self.bytes_sent += size
                await publisher.drain()
            if self._stopping:
                await publisher.close()
                await publisher.drain()
                return

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
            "queued_bytes": self._queued_bytes,
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
            destinations added at run time (:meth:`RelayService.add_push`).
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

    def matches(self, stream: LiveStream) -> bool:
        """True if ``stream`` is pushed to this destination."""
        return stream.app == self.app and (self.stream is None or stream.name == self.stream)

    def attach(self, stream: LiveStream, config: RelayConfig) -> Pusher | None:
        """Start pushing ``stream`` here (no-op if it already is)."""
        current = self.pushers.get(stream.key)
        if current is not None and current.stream is stream and not current._stopping:
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


# -- pull -----------------------------------------------------------------------------------------


class Puller:
    """Plays ``url/<name>`` and publishes it locally as ``app/<name>``.

    Args:
        service: the relay service.
        rule: the ``[[relay.pull]]`` rule.
        name: the stream name.
        static: pulled all the time (not stopped when idle).

    Attributes:
        state: the :class:`RelayState`.
        stream: the local stream while this puller publishes it, else None.
        connected_since: wall-clock time (Unix seconds) of the current connection, or None.
        reconnects: connections after the first one.
        bytes_received: payload bytes received.
        last_error: the last connection error, or "".
    """

    def __init__(self, service: RelayService, rule: RelayPull, name: str, *, static: bool):
        self.service = service
        self.rule = rule
        self.app = rule.app
        self.name = name
        self.url = join_url(rule.url, name)
        self.static = static
        config = service.config
        self.timeout_s = config.timeout_s
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.state = RelayState.CONNECTING
        self.stream: LiveStream | None = None
        self.connected_since: float | None = None
        self.reconnects = 0
        self.bytes_received = 0
        self.last_error = ""
        self.task: asyncio.Task[None] | None = None
        self._connected_once = False
        self._yielded = False

    @property
    def key(self) -> StreamKey:
        """``(app, name)`` of the local stream."""
        return (self.app, self.name)

    def start(self) -> None:
        """Start the task."""
        self.task = asyncio.get_running_loop().create_task(
            self.run(), name=f"relay pull {self.url} -> {self.app}/{self.name}"
        )

    def stop(self) -> None:
        """Stop now: the local stream ends (its players wait for a publisher)."""
        self._stop_stream()
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        """Play the remote stream; reconnect with backoff until stopped."""
        loop = asyncio.get_running_loop()
        try:
            while not self._yielded:
                self.state = RelayState.CONNECTING
                began = loop.time()
                try:
                    await self._pull_once()
                except (ClientError, OSError, RTMPError) as exc:
                    self.last_error = _error_text(exc)
                    logger.warning(
                        "pull %s -> %s/%s: %s", self.url, self.app, self.name, self.last_error
                    )
                finally:
                    self.connected_since = None
                    self._stop_stream()
                if self._yielded:
                    break
                if loop.time() - began >= _STABLE_S:
                    self.backoff.reset()
                self.state = RelayState.RETRYING
                await asyncio.sleep(self.backoff.next_delay())
        finally:
            self.state = RelayState.STOPPED
            self._stop_stream()

    async def _pull_once(self) -> None:
        url = parse_url(self.url)
        async with connect(self.url, timeout=self.timeout_s) as conn:
            player = await conn.play(url.stream, stop_on_unpublish=False, parse_headers=False)
            self.connected_since = time.time()
            if self._connected_once:
                self.reconnects += 1
            self._connected_once = True
            self.state = RelayState.WAITING
            logger.info("pull %s -> %s/%s: playing", self.url, self.app, self.name)
            async for item in player.events():
                if isinstance(item, MediaMessage):
                    stream = self.stream or self._start_stream()
                    if stream is None:
                        return  # a local publisher has the name: yield to it
                    self.bytes_received += len(item.payload)
                    if item.metadata is not None:
                        stream.set_metadata(dict(item.metadata), item.timestamp_ms)
                    elif item.type_id == MessageType.AUDIO or item.type_id == MessageType.VIDEO:
                        stream.ingest(item.type_id, item.timestamp_ms, item.payload)
                    else:
                        stream.ingest_data(item.type_id, item.timestamp_ms, item.payload)
                    if not player.pending:
                        stream.end_of_read()  # end of what one socket read brought: fan out
                elif isinstance(item, StreamEOF) or (
                    isinstance(item, StatusReceived) and item.code in _UPSTREAM_END
                ):
                    # The remote publisher left; keep playing and wait for a republish.
                    self._stop_stream()
                    self.state = RelayState.WAITING
            raise ClientError("connection closed by the server")

    def _start_stream(self) -> LiveStream | None:
        registry = self.service.server.registry
        stream = registry.get_or_create(self.app, self.name)
        if stream.is_live:
            logger.info("pull %s/%s: published locally, pull stops", self.app, self.name)
            self._yielded = True
            self.service._puller_done(self)
            return None
        stream.start(self)
        self.stream = stream
        self.state = RelayState.PULLING
        logger.info("pull %s -> %s/%s: live", self.url, self.app, self.name)
        self.service._stream_started(stream)
        return stream

    def _stop_stream(self) -> None:
        stream = self.stream
        self.stream = None
        if stream is not None and stream.publisher is self:
            stream.stop()
            self.service.server.registry.release(stream)

    def status(self) -> dict[str, Any]:
        """JSON-ready state of this pull."""
        stream = self.service.server.registry.get(self.app, self.name)
        return {
            "app": self.app,
            "name": self.name,
            "url": self.url,
            "static": self.static,
            "state": self.state.value,
            "players": stream.player_count if stream is not None else 0,
            "connected_since": self.connected_since,
            "reconnects": self.reconnects,
            "bytes_received": self.bytes_received,
            "last_error": self.last_error,
        }


class _YieldPullToPublisher:
    """Access policy: a local ``publish`` of a pulled name stops the pull first, so the
    handler finds the stream free. It never denies anything."""

    def __init__(self, service: RelayService) -> None:
        self.service = service

    async def check(self, request: Request) -> Decision:
        if request.action == "publish":
            puller = self.service._pullers.get((request.app, request.name))
            if puller is not None:
                logger.info("pull %s/%s: a local publisher takes over", request.app, request.name)
                self.service._puller_done(puller)
                puller.stop()
        return ALLOW


# -- the component --------------------------------------------------------------------------------


class RelayService:
    """The relay component: push destinations and pulls (see the module docstring).

    Sets ``server.relay`` to itself.

    Args:
        server: the RTMP server.
    """

    def __init__(self, server: RTMPServer) -> None:
        self.server = server
        self.config: RelayConfig = server.config.relay
        self._ids = itertools.count(1)
        self._destinations: dict[str, PushDestination] = {}
        self._pull_rules: dict[str, RelayPull] = {}
        self._pullers: dict[StreamKey, Puller] = {}
        self._idle_timers: dict[StreamKey, asyncio.TimerHandle] = {}
        self._policy = _YieldPullToPublisher(self)
        self._unsubscribe: Any = None
        self._running = False
        for push in self.config.push:
            self._new_destination(push.app, push.url, push.stream, from_config=True)
        self._pull_rules = {rule.app: rule for rule in self.config.pull}
        # app.py does not declare the attribute; the HTTP API looks it up by this name.
        server.relay = self

    # -- Component ------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to server events, start static pulls and pushes of live streams."""
        self._running = True
        self._unsubscribe = self.server.subscribe(self._on_event)
        self._update_policy()
        for stream in self.server.registry.live():
            self._stream_started(stream)
        self._start_static_pulls()

    async def stop(self) -> None:
        """Stop every push and pull (upstream connections are closed)."""
        self._running = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._policy in self.server.policies:
            self.server.policies.remove(self._policy)
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        tasks: list[asyncio.Task[None]] = []
        for destination in self._destinations.values():
            tasks += destination.cancel()
        for puller in list(self._pullers.values()):
            puller.stop()
            if puller.task is not None:
                tasks.append(puller.task)
        self._pullers.clear()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    def reload(self, config: ServerConfig) -> None:
        """Apply new ``[[relay.*]]`` tables: changed destinations and rules are replaced;
        run-time destinations stay."""
        relay = config.relay
        self.config = relay
        wanted = {(p.app, p.url, p.stream) for p in relay.push}
        have = {(d.app, d.url, d.stream): d for d in self._destinations.values() if d.from_config}
        for key, destination in have.items():
            if key not in wanted:
                self.remove_push(destination.id)
        for push in relay.push:
            if (push.app, push.url, push.stream) not in have:
                destination = self._new_destination(
                    push.app, push.url, push.stream, from_config=True
                )
                self._attach_live(destination)
        self._pull_rules = {rule.app: rule for rule in relay.pull}
        for puller in list(self._pullers.values()):
            rule = self._pull_rules.get(puller.app)
            if rule is None or rule.url != puller.rule.url:
                self._puller_done(puller)
                puller.stop()
            else:
                puller.rule = rule
                if puller.static and puller.name not in rule.static:
                    puller.static = False
                    self._maybe_idle(puller.key, rule)
        self._update_policy()
        self._start_static_pulls()

    # -- push API ---------------------------------------------------------------------------

    def add_push(self, app: str, url: str, stream: str | None = None) -> str:
        """Push every stream of ``app`` (or only ``stream``) to ``url/<stream>`` from now on.

        Streams already live start pushing at once.

        Args:
            app: the local application.
            url: the upstream application URL, ``rtmp[s]://host[:port]/app[?query]``.
            stream: only this stream name (default: every stream of ``app``).

        Returns:
            The destination id.

        Raises:
            ValueError: ``url`` is not an RTMP application URL, or ``app`` is empty (the
                HTTP API answers 400 with the message).
        """
        if not app:
            raise ValueError("the application name is empty")
        try:
            parse_url(url)
        except ClientError as exc:
            raise ValueError(str(exc)) from None
        destination = self._new_destination(app, url, stream, from_config=False)
        self._attach_live(destination)
        return destination.id

    def remove_push(self, id: str) -> bool:
        """Stop and forget destination ``id``; False if there is none."""
        destination = self._destinations.pop(id, None)
        if destination is None:
            return False
        destination.cancel()
        logger.info("push destination %s (%s) removed", id, destination.url)
        return True

    def status(self) -> list[dict[str, Any]]:
        """One dict per push destination: ``id``, ``app``, ``stream`` (the filter, or
        None), ``url``, ``state``, ``connected_since`` (Unix seconds or None),
        ``reconnects``, ``bytes_sent``, ``dropped``, ``last_error``, plus ``origin``
        (``config``/``api``) and ``streams`` (the same per pushed stream)."""
        return [d.status() for d in self._destinations.values()]

    def pull_status(self) -> list[dict[str, Any]]:
        """One dict per running pull (see :meth:`Puller.status`)."""
        return [p.status() for p in self._pullers.values()]

    # -- internals --------------------------------------------------------------------------

    def _new_destination(
        self, app: str, url: str, stream: str | None, *, from_config: bool
    ) -> PushDestination:
        destination = PushDestination(
            f"push-{next(self._ids)}", app, url, stream, from_config=from_config
        )
        self._destinations[destination.id] = destination
        return destination

    def _attach_live(self, destination: PushDestination) -> None:
        if not self._running:
            return
        for stream in self.server.registry.live():
            if destination.matches(stream):
                destination.attach(stream, self.config)

    def _stream_started(self, stream: LiveStream) -> None:
        """A stream went live (local publisher or pull): start its pushes."""
        for destination in self._destinations.values():
            if destination.matches(stream):
                destination.attach(stream, self.config)

    def _update_policy(self) -> None:
        policies = self.server.policies
        if self._pull_rules and self._running:
            if self._policy not in policies:
                policies.append(self._policy)
        elif self._policy in policies:
            policies.remove(self._policy)

    def _on_event(self, event: ServerEvent) -> None:
        kind = event.kind
        if kind is EventKind.PUBLISH:
            stream = self.server.registry.get(event.app, event.name)
            if stream is not None and stream.is_live:
                self._stream_started(stream)
            return
        rule = self._pull_rules.get(event.app)
        if rule is None:
            return
        key = (event.app, event.name)
        if kind is EventKind.PLAY:
            timer = self._idle_timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            if key not in self._pullers and not event.details.get("live", False):
                self._start_pull(rule, event.name, static=False)
        elif kind is EventKind.STOP:
            self._maybe_idle(key, rule)
        elif kind is EventKind.UNPUBLISH:
            # The local publisher left: players still waiting (or a static name) pull again.
            stream = self.server.registry.get(event.app, event.name)
            static = event.name in rule.static
            if key not in self._pullers and (static or (stream and stream.player_count)):
                self._start_pull(rule, event.name, static=static)

    def _start_pull(self, rule: RelayPull, name: str, *, static: bool) -> None:
        stream = self.server.registry.get(rule.app, name)
        if stream is not None and stream.is_live:
            return  # published here
        puller = Puller(self, rule, name, static=static)
        self._pullers[puller.key] = puller
        puller.start()

    def _start_static_pulls(self) -> None:
        if not self._running:
            return
        for rule in self._pull_rules.values():
            for name in rule.static:
                puller = self._pullers.get((rule.app, name))
                if puller is None:
                    self._start_pull(rule, name, static=True)
                else:
                    puller.static = True

    def _maybe_idle(self, key: StreamKey, rule: RelayPull) -> None:
        puller = self._pullers.get(key)
        if puller is None or puller.static or key in self._idle_timers:
            return
        stream = self.server.registry.get(*key)
        if stream is not None and stream.player_count:
            return
        loop = asyncio.get_running_loop()
        self._idle_timers[key] = loop.call_later(rule.idle_timeout_s, self._idle_expired, key)

    def _idle_expired(self, key: StreamKey) -> None:
        self._idle_timers.pop(key, None)
        puller = self._pullers.get(key)
        if puller is None or puller.static:
            return
        stream = self.server.registry.get(*key)
        if stream is not None and stream.player_count:
            return
        logger.info("pull %s/%s: no players, stopping", *key)
        self._puller_done(puller)
        puller.stop()

    def _puller_done(self, puller: Puller) -> None:
        if self._pullers.get(puller.key) is puller:
            del self._pullers[puller.key]
        timer = self._idle_timers.pop(puller.key, None)
        if timer is not None:
            timer.cancel()
