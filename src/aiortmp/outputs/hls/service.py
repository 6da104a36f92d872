"""The HLS service: one :class:`~.output.HLSOutput` per requested stream, viewers, access.

An output starts on a stream's first HLS request (or at publish, for the apps in ``[hls]
always_on``), runs while requests keep coming, and stops ``idle_timeout_s`` after the last
one. When the stream ends the output completes its last segments and keeps serving them
(``EXT-X-ENDLIST``) until it is idle; a republish replaces it.

Viewers: HLS has no session, so a viewer is a distinct client — its address and
``User-Agent`` — that made a request in the last ``viewer_timeout_s``. Behind a CDN or a
NAT the count is of edges or households, not people.

Access: every request passes the apps' ``play`` rules like an RTMP play (the query string,
where a ``?token=`` lives, is passed on). A client polls several times a second, so an
allowed decision is reused for ``auth_cache_s`` for the same client, stream and query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import StartAt, Stream, StreamKey
from aiortmp.server.access import AccessControl, Decision, Request
from aiortmp.server.config import HLSConfig

from ..queued import QueuedOutput
from .disk import DirectoryWriter, stream_directory
from .output import HLSOutput, HLSSettings

__all__ = ["HLSService", "settings_from_config"]

logger = logging.getLogger("aiortmp.hls")

#: Authorization decisions kept at most (the oldest half is dropped past it).
_AUTH_CACHE_SIZE = 10_000
#: Clients remembered per stream (past it, new ones are not counted until some expire).
_MAX_CLIENTS = 100_000
#: How often idle outputs, viewers and cached decisions are swept, seconds.
SWEEP_INTERVAL_S = 1.0


def settings_from_config(config: HLSConfig) -> HLSSettings:
    """The outputs' settings from ``[hls]``."""
    return HLSSettings(
        segment_target_ms=round(config.segment_target_s * 1000),
        part_target_ms=round(config.part_target_s * 1000),
        window_segments=config.window_segments,
        max_bytes=config.max_stream_bytes,
        queue_bytes=config.queue_bytes,
    )


class HLSService:
    """The HLS outputs of a server's streams.

    Args:
        registry: the streams.
        bus: where ``output_stopped`` goes and ``publish`` comes from (``always_on``).
        access: the play policies.
        config: the ``[hls]`` settings.

    Attributes:
        outputs: the outputs by stream key (running, or finished and still served).
        writers: the directory writers by stream key (``[hls] directory``).
        bytes_sent: response body bytes served per stream key (playlists, segments,
            parts, initialization segments), since the server started.
        bytes_sent_total: their sum over every stream ever served.
    """

    def __init__(
        self, registry: Registry, bus: EventBus, access: AccessControl, config: HLSConfig
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.access = access
        self.config = config
        self.settings = settings_from_config(config)
        self.outputs: dict[StreamKey, HLSOutput] = {}
        self.writers: dict[StreamKey, DirectoryWriter] = {}
        self.bytes_sent: dict[StreamKey, int] = {}
        self.bytes_sent_total = 0
        self._viewers: dict[StreamKey, dict[str, float]] = {}
        self._auth: dict[tuple[str, str, str, str], tuple[float, Decision]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start sweeping; run the ``always_on`` apps' live streams."""
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        for stream in self.registry.live():
            if stream.app in self.config.always_on:
                self.output(stream.app, stream.name)

    async def stop(self) -> None:
        """Stop every output (their last segments are completed) and the writers."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        tasks = []
        for output in list(self.outputs.values()):
            output.stop()
            if output.task is not None:
                tasks.append(output.task)
        tasks.extend(self._closing)
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for writer in list(self.writers.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.close(), 5.0)
        self.outputs.clear()
        self.writers.clear()

    def reload(self, config: HLSConfig) -> None:
        """New settings apply to outputs started from now on; ``always_on`` at once."""
        self.config = config
        self.settings = settings_from_config(config)
        for stream in self.registry.live():
            if stream.app in config.always_on:
                self.output(stream.app, stream.name)

    # -- outputs -----------------------------------------------------------------------

    def output(self, app: str, name: str) -> HLSOutput | None:
        """The stream's output, started if the stream is live and it has none (or only
        a finished one, from before a republish); None if the stream is not live and
        has no output."""
        key = (app, name)
        output = self.outputs.get(key)
        stream = self.registry.get(app, name)
        live = stream is not None and stream.is_live
        if output is not None and (not output.ended or not live):
            return output
        if stream is None or not live:
            return output
        return self._start(stream)

    def _start(self, stream: Stream) -> HLSOutput:
        key = stream.key
        old = self.outputs.pop(key, None)
        if old is not None:
            old.stop()
        writer = None
        if self.config.directory is not None:
            writer = self.writers.get(key)
            if writer is None:
                writer = DirectoryWriter(stream_directory(self.config.directory, *key))
                self.writers[key] = writer
        output = HLSOutput(
            stream,
            self.settings,
            on_overflow=self._overflowed,
            on_change=writer.update if writer is not None else None,
        )
        self.outputs[key] = output
        output.start(StartAt.GOP)
        task = output.task
        assert task is not None
        task.add_done_callback(lambda _: self.registry.release(stream))
        logger.info("%s/%s: HLS started", stream.app, stream.name)
        return output

    def _overflowed(self, output: QueuedOutput) -> None:
        stream = output.stream
        if self.outputs.get(stream.key) is output:
            del self.outputs[stream.key]
        source = stream.source
        self.bus.emit(
            ServerEvent(
                kind=EventKind.OUTPUT_STOPPED,
                session_id=source.session_id if source is not None else 0,
                remote=source.remote if source is not None else "",
                app=stream.app,
                name=stream.name,
                details={"output": "hls", "reason": "fell behind"},
            )
        )

    def _on_event(self, event: ServerEvent) -> None:
        if event.kind is EventKind.PUBLISH and event.app in self.config.always_on:
            self.output(event.app, event.name)

    def _always_on(self, output: HLSOutput) -> bool:
        return output.stream.app in self.config.always_on and output.stream.is_live

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            self.sweep(asyncio.get_running_loop().time())

    def sweep(self, now: float) -> None:
        """Stop idle outputs, forget old viewers and decisions (called every second).

        Args:
            now: the event loop time.
        """
        idle_s = self.config.idle_timeout_s
        for key, output in list(self.outputs.items()):
            if now - output.last_request <= idle_s or self._always_on(output):
                continue
            del self.outputs[key]
            self.bytes_sent.pop(key, None)
            if not output.ended:
                logger.info("%s/%s: HLS idle, stopping", *key)
            output.stop()
            self.unwanted(*key)
            writer = self.writers.pop(key, None)
            if writer is not None:
                task = asyncio.get_running_loop().create_task(writer.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        for stream in self.registry.live():
            # An always-on stream whose output stopped (it fell behind) starts again.
            if stream.app in self.config.always_on and stream.key not in self.outputs:
                self.output(stream.app, stream.name)
        horizon = now - self.config.viewer_timeout_s
        for key, clients in list(self._viewers.items()):
            for client, seen in list(clients.items()):
                if seen < horizon:
                    del clients[client]
            if not clients:
                del self._viewers[key]
        for auth_key, (expires, _) in list(self._auth.items()):
            if expires < now:
                del self._auth[auth_key]

    def unwanted(self, app: str, name: str) -> None:
        """HLS no longer asks for the stream (its output idled): a ``stop``, so an
        on-demand pull can idle too."""
        self.bus.emit(
            ServerEvent(
                kind=EventKind.STOP,
                session_id=0,
                remote="",
                app=app,
                name=name,
                details={"protocol": "hls"},
            )
        )

    # -- viewers -----------------------------------------------------------------------

    def touch(self, key: StreamKey, client: str, now: float) -> None:
        """A request from ``client`` (address and user agent) for stream ``key``."""
        clients = self._viewers.get(key)
        if clients is None:
            clients = self._viewers[key] = {}
        if len(clients) < _MAX_CLIENTS or client in clients:
            clients[client] = now

    def viewers(self, key: StreamKey, now: float | None = None) -> int:
        """Distinct clients of stream ``key`` with a request in the last
        ``viewer_timeout_s``."""
        clients = self._viewers.get(key)
        if not clients:
            return 0
        if now is None:
            now = asyncio.get_running_loop().time()
        horizon = now - self.config.viewer_timeout_s
        return sum(1 for seen in clients.values() if seen >= horizon)

    def viewer_counts(self) -> dict[StreamKey, int]:
        """:meth:`viewers` of every stream with one."""
        counts = {key: self.viewers(key) for key in list(self._viewers)}
        return {key: count for key, count in counts.items() if count}

    # -- access ------------------------------------------------------------------------

    def cached_decision(
        self, app: str, name: str, query: str, remote_host: str, now: float
    ) -> Decision | None:
        """An allowed decision for this client, stream and query younger than
        ``auth_cache_s``, or None."""
        cached = self._auth.get((app, name, query, remote_host))
        if cached is not None and cached[0] >= now:
            return cached[1]
        return None

    async def authorize(self, request: Request, now: float) -> Decision:
        """The play decision for ``request``, reused for ``auth_cache_s`` when allowed.

        Args:
            request: the play request (``action="play"``).
            now: the event loop time.
        """
        key = (request.app, request.name, request.query, request.remote_host)
        cached = self.cached_decision(*key, now)
        if cached is not None:
            return cached
        decision = await self.access.authorize(request)
        if decision.allowed and self.config.auth_cache_s > 0:
            if len(self._auth) >= _AUTH_CACHE_SIZE:
                for old in list(self._auth)[: _AUTH_CACHE_SIZE // 2]:
                    del self._auth[old]
            self._auth[key] = (now + self.config.auth_cache_s, decision)
        return decision

    def sent(self, key: StreamKey, nbytes: int) -> None:
        """Count ``nbytes`` of response body served for stream ``key``."""
        self.bytes_sent[key] = self.bytes_sent.get(key, 0) + nbytes
        self.bytes_sent_total += nbytes

    def hls_viewers_total(self) -> int:
        """Viewers of every stream."""
        return sum(self.viewer_counts().values())
