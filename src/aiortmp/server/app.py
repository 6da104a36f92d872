"""The RTMP server: listeners, connections, streams, recording, shutdown.

Embedding::

    server = RTMPServer(ServerConfig(listen=["127.0.0.1:1935"], record_dir=Path("rec")))
    await server.start()
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .components import Component, build_components
from .config import ConfigError, ServerConfig, load_config, parse_host_port
from .handler import RTMPServerProtocol
from .policy import ALLOW, AccessPolicy, Decision, EventKind, Request, ServerEvent
from .recorder import Recorder
from .registry import StreamRegistry
from .stream import LiveStream

__all__ = ["RTMPServer"]

if TYPE_CHECKING:
    from .auth import ChannelKeyStore
    from .relay import RelayService

logger = logging.getLogger("aiortmp.server")


class RTMPServer:
    """An RTMP server on the running asyncio loop.

    Args:
        config: the validated configuration (defaults: RTMP on 0.0.0.0:1935).
        config_path: the file ``config`` was loaded from, re-read on SIGHUP.
        config_overrides: the CLI overrides applied on top of the file, re-applied on
            reload.

    Attributes:
        registry: the live streams.
        connections: every open connection.
        stats: counters of finished things (``connections_total``, ``protocol_errors``,
            ``handshake_failures``, ``players_dropped``, ``connections_refused``,
            ``auth_denials``, ``idle_timeouts``; ``bytes_in`` of ended publishes,
            ``bytes_out`` / ``messages_dropped`` of ended players — add the live streams'
            ``bytes_in`` and live players' ``bytes_sent`` for totals).
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        config_path: str | Path | None = None,
        config_overrides: dict[str, object] | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.config_path = config_path
        self.config_overrides = dict(config_overrides or {})
        self.registry = StreamRegistry(
            chunk_size=self.config.chunk_size,
            gop_cache=self.config.gop_cache,
            gop_cache_max_bytes=self.config.gop_cache_max_bytes,
            fanout_interval_s=self.config.fanout_interval_ms / 1000,
            fanout_max_bytes=self.config.fanout_max_bytes,
        )
        self.connections: set[RTMPServerProtocol] = set()
        self._per_ip: collections.Counter[str] = collections.Counter()
        self.recorders: dict[tuple[str, str], Recorder] = {}
        self.stats: collections.Counter[str] = collections.Counter()
        self._servers: list[asyncio.Server] = []
        self._stopped = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        #: access policies, all of which must allow a request (see policy.py)
        self.policies: list[AccessPolicy] = []
        self._listeners: list[Callable[[ServerEvent], None]] = []
        #: push/pull relays, set by the relay component (server/relay.py)
        self.relay: RelayService | None = None
        #: livego-style channel keys, set by the auth component (server/auth.py)
        self.channel_keys: ChannelKeyStore | None = None
        self.components: list[Component] = build_components(self)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every ``listen`` address and start accepting.

        Raises:
            OSError: an address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        listeners: list[tuple[str, int, ssl.SSLContext | None]] = [
            (*parse_host_port(item), None) for item in self.config.listen
        ]
        tls = self.config.tls
        if tls.listen:
            tls_context = self.tls_context()
            listeners += [(*parse_host_port(item, 1936), tls_context) for item in tls.listen]
        try:
            for host, port, context in listeners:
                server = await loop.create_server(
                    lambda: RTMPServerProtocol(self),
                    host,
                    port,
                    reuse_address=True,
                    backlog=4096,
                    ssl=context,
                    ssl_handshake_timeout=self.config.limits.handshake_timeout_s
                    if context
                    else None,
                )
                self._servers.append(server)
                for sock in server.sockets:
                    logger.info(
                        "listening for %s on %s:%d",
                        "RTMPS" if context else "RTMP",
                        *sock.getsockname()[:2],
                    )
            for component in self.components:
                await component.start()
        except BaseException:
            await self.stop()
            raise
        self._ticker = asyncio.create_task(self._tick())

    def tls_context(self) -> ssl.SSLContext:
        """The server TLS context for RTMPS listeners.

        Raises:
            ConfigError: the certificate or key cannot be loaded.
        """
        tls = self.config.tls
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(str(tls.cert), str(tls.key))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load TLS certificate/key: {exc}") from exc
        return context

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) pairs (useful with port 0)."""
        return [s.getsockname()[:2] for srv in self._servers for s in srv.sockets]

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, end every stream (recordings closed), close every connection."""
        for server in self._servers:
            server.close()
        # End the published streams first: players are told, recordings closed, and the
        # unpublish / record_done events still reach the hooks, which stop last.
        for conn in list(self.connections):
            for stream_id in list(conn.publishing):
                conn._unpublish(stream_id)
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                logger.exception("stopping %r failed", component)
        for recorder in list(self.recorders.values()):
            recorder.close()
        for conn in list(self.connections):
            conn.close()
        if self._ticker is not None:
            self._ticker.cancel()
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout_s)
            except TimeoutError:
                logger.warning("connections did not close within %gs", timeout_s)
        self._servers.clear()
        self._stopped.set()

    async def serve_forever(self) -> None:
        """Start, then run until SIGINT/SIGTERM (or :meth:`stop`), then shut down cleanly."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop_requested.set)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        except (NotImplementedError, RuntimeError, AttributeError):
            pass
        waiter = asyncio.create_task(stop_requested.wait())
        stopped = asyncio.create_task(self._stopped.wait())
        await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopped.cancel()
        if not self._stopped.is_set():
            logger.info("shutting down")
            await self.stop()

    def reload(self) -> None:
        """Re-read the configuration file (SIGHUP): limits, player policy, auth rules and
        other component settings change for new requests; streams are not dropped.

        Listen addresses, record directory and chunk size need a restart.
        """
        try:
            config = load_config(self.config_path, **self.config_overrides)
        except ConfigError as exc:
            logger.error("reload failed, keeping the old configuration: %s", exc)
            return
        self.config = config
        for component in self.components:
            try:
                component.reload(config)
            except Exception:
                logger.exception("reloading %r failed", component)
        logger.info("configuration reloaded from %s", self.config_path or "defaults")

    async def _tick(self) -> None:
        """Once a second: stream bitrates, player limits, idle connections."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            idle_s = self.config.limits.idle_timeout_s
            for conn in list(self.connections):
                # Players may legitimately send nothing for minutes (acks only every
                # window); everything else must show life.
                if not conn.playing and now - conn.last_rx > idle_s:
                    conn.log(logging.WARNING, "no data for %gs, closing", idle_s)
                    self.stats["idle_timeouts"] += 1
                    conn.close(abort=True)
            for stream in self.registry:
                stream.sample(1.0)
                for player in stream.players:
                    refresh = getattr(player, "refresh_limits", None)
                    if refresh is not None:
                        refresh()

    # -- extension points -----------------------------------------------------------------

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every :class:`ServerEvent`; returns an unsubscriber.

        Listeners run on the event loop inside media processing: they must not block.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, event: ServerEvent) -> None:
        """Deliver ``event`` to every listener (a failing listener is logged, not fatal)."""
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed on %s", listener, event.kind)

    async def authorize(self, request: Request) -> Decision:
        """Ask every policy; the first denial wins. A failing policy denies (logged)."""
        decision = ALLOW
        for policy in self.policies:
            try:
                answer = await policy.check(request)
            except Exception as exc:
                logger.exception("access policy %r failed", policy)
                return Decision(allowed=False, reason=f"authorization failed: {type(exc).__name__}")
            if not answer.allowed:
                return answer
            if answer.name is not None:
                decision = answer
                request = Request(
                    action=request.action,
                    app=request.app,
                    name=answer.name,
                    query=request.query,
                    remote_host=request.remote_host,
                    session_id=request.session_id,
                    tc_url=request.tc_url,
                    properties=request.properties,
                )
        return decision

    # -- connections ----------------------------------------------------------------------

    def register(self, conn: RTMPServerProtocol) -> str | None:
        """Admit a new connection; return a refusal reason, or None."""
        limits = self.config.limits
        if len(self.connections) >= limits.max_connections:
            self.stats["connections_refused"] += 1
            return f"{len(self.connections)} connections open (max_connections)"
        if self._per_ip[conn.remote_host] >= limits.max_connections_per_ip:
            self.stats["connections_refused"] += 1
            return f"too many connections from {conn.remote_host} (max_connections_per_ip)"
        self.connections.add(conn)
        self._per_ip[conn.remote_host] += 1
        self.stats["connections_total"] += 1
        return None

    def unregister(self, conn: RTMPServerProtocol) -> None:
        """Forget a closed connection."""
        if conn in self.connections:
            self.connections.discard(conn)
            self._per_ip[conn.remote_host] -= 1
            if self._per_ip[conn.remote_host] <= 0:
                del self._per_ip[conn.remote_host]

    # -- streams --------------------------------------------------------------------------

    def on_publish(self, stream: LiveStream, conn: RTMPServerProtocol) -> None:
        """A stream went live: start its recording (if configured) and run callbacks."""
        if self.config.record_dir is not None:
            self.start_recording(stream, conn)
        self.emit(conn.event(EventKind.PUBLISH, stream.name))

    def on_unpublish(self, stream: LiveStream, conn: RTMPServerProtocol) -> None:
        """A stream stopped (its sinks, recorders included, were closed by the stream)."""
        self.stop_recording(stream)
        self.emit(conn.event(EventKind.UNPUBLISH, stream.name))

    def start_recording(
        self, stream: LiveStream, conn: RTMPServerProtocol | None = None
    ) -> Recorder | None:
        """Start recording a live stream into ``record_dir`` (no-op if already recording).

        Returns:
            The recorder, or None if there is no record directory or the file cannot be
            created (logged).
        """
        if stream.key in self.recorders:
            return self.recorders[stream.key]
        if self.config.record_dir is None:
            return None
        stream.flush()  # held packets are in the caches the recorder starts from
        remote = conn.remote if conn is not None else ""
        session_id = conn.id if conn is not None else 0

        def done(recorder: Recorder) -> None:
            self.recorders.pop(stream.key, None)
            self.emit(
                ServerEvent(
                    kind=EventKind.RECORD_DONE,
                    session_id=session_id,
                    remote=remote,
                    app=stream.app,
                    name=stream.name,
                    details={"path": str(recorder.path), "bytes": recorder.bytes_written},
                )
            )

        try:
            recorder = Recorder(stream, self.config.record_dir, on_close=done)
        except OSError as exc:
            logger.error("%s/%s: cannot record: %s", stream.app, stream.name, exc)
            return None
        self.recorders[stream.key] = recorder
        stream.add_sink(recorder)
        return recorder

    def stop_recording(self, stream: LiveStream) -> None:
        """Stop recording ``stream`` (the file is closed and ``record_done`` emitted)."""
        recorder = self.recorders.pop(stream.key, None)
        if recorder is not None:
            stream.remove_sink(recorder)
            recorder.close()
