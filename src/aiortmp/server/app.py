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
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiortmp.errors import ConfigError
from aiortmp.hub.bus import EventBus, Listener, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import Handle, StreamSettings
from aiortmp.outputs.record import RecordingService

from .access import AccessControl, AccessPolicy, Decision, Request
from .components import Component, build_components
from .config import ServerConfig, load_config, parse_host_port
from .connection import RTMPServerProtocol

__all__ = ["RTMPServer"]

if TYPE_CHECKING:
    from .auth import ChannelKeyStore
    from .cluster import ClusterService
    from .relay import RelayService
    from .vod import VodService

logger = logging.getLogger("aiortmp.server")


class _RunningLoop:
    """The scheduler of the streams: the event loop that is running when a timer is set
    (a server may be built before its loop runs)."""

    def call_later(self, delay: float, callback: Callable[[], object], /) -> Handle:
        return asyncio.get_running_loop().call_later(delay, callback)


def stream_settings(config: ServerConfig) -> StreamSettings:
    """The hub's stream settings from the server configuration."""
    return StreamSettings(
        gop_cache=config.gop_cache,
        gop_cache_max_bytes=config.gop_cache_max_bytes,
        fanout_interval_s=config.fanout_interval_ms / 1000,
        fanout_max_bytes=config.fanout_max_bytes,
        fanout_max_writes_per_s=config.fanout_max_writes_per_s,
        fanout_max_interval_s=config.fanout_max_interval_ms / 1000,
    )


class RTMPServer:
    """An RTMP server on the running asyncio loop.

    Args:
        config: the validated configuration (defaults: RTMP on 0.0.0.0:1935).
        config_path: the file ``config`` was loaded from, re-read on SIGHUP.
        config_overrides: the CLI overrides applied on top of the file, re-applied on
            reload.

    Attributes:
        bus: server events (:meth:`subscribe` is a shortcut).
        registry: the streams.
        access: the access policies (:attr:`policies` is a shortcut).
        recording: the recordings (``record_dir``, the API).
        relay: push/pull relays (set by the relay component).
        cluster: the cluster directory, when ``[cluster] redis`` is set (server/cluster.py).
        channel_keys: livego-style channel keys (set by the auth component).
        connections: every open RTMP connection.
        listen_sockets: pre-bound listening sockets by ``(kind, address)`` — kind ``rtmp``,
            ``rtmps`` or ``http``, address as written in ``listen`` / ``tls.listen`` /
            ``http.listen`` — used instead of binding (a worker process gets its own
            SO_REUSEPORT sockets from the supervisor, see :mod:`.workers`); None: bind.
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
        self.bus = EventBus()
        self.registry = Registry(
            scheduler=_RunningLoop(), bus=self.bus, settings=stream_settings(self.config)
        )
        self.access = AccessControl()
        self.recording = RecordingService(
            self.registry, self.bus, self.config.record_dir, config=self.config
        )
        self.connections: set[RTMPServerProtocol] = set()
        self.listen_sockets: Mapping[tuple[str, str], socket.socket] | None = None
        self._per_ip: collections.Counter[str] = collections.Counter()
        self.stats: collections.Counter[str] = collections.Counter()
        self._servers: list[asyncio.Server] = []
        self._tls: ssl.SSLContext | None = None
        self._adopting: set[asyncio.Task[None]] = set()
        self._stopped = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        #: push/pull relays, set by the relay component (server/relay.py)
        self.relay: RelayService | None = None
        #: livego-style channel keys, set by the auth component (server/auth.py)
        self.channel_keys: ChannelKeyStore | None = None
        #: the [[vod]] applications, set by the VOD component (server/vod.py)
        self.vod: VodService | None = None
        #: the cluster component, when ``[cluster] redis`` is set (server/cluster.py)
        self.cluster: ClusterService | None = None
        self.components: list[Component] = build_components(self)

    @property
    def policies(self) -> list[AccessPolicy]:
        """The access policies, all of which must allow a request (see access.py)."""
        return self.access.policies

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every ``listen`` address and start accepting.

        Raises:
            OSError: an address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        _ignore_sigxfsz()
        listeners: list[tuple[str, str, int, ssl.SSLContext | None]] = [
            (item, *parse_host_port(item), None) for item in self.config.listen
        ]
        tls = self.config.tls
        if tls.listen:
            tls_context = self._tls = self.tls_context()
            listeners += [(item, *parse_host_port(item, 1936), tls_context) for item in tls.listen]
        try:
            for item, host, port, context in listeners:
                kind = "rtmps" if context else "rtmp"
                sock = (self.listen_sockets or {}).get((kind, item))
                where: dict[str, Any] = (
                    {"sock": sock}
                    if sock is not None
                    else {"host": host, "port": port, "reuse_address": True}
                )
                server = await loop.create_server(
                    lambda: RTMPServerProtocol(self),
                    **where,
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

    def adopt(self, kind: str, sock: socket.socket) -> None:
        """Serve a connection another process accepted on one of this server's listening
        addresses (a worker that died left it in its listen queue, see :mod:`.workers`).

        Args:
            kind: ``rtmp`` or ``rtmps`` (the TLS handshake happens here).
            sock: the connected socket; it is owned from now on (closed if it cannot be
                served).
        """
        if kind == "rtmps" and self._tls is None:
            sock.close()
            return
        loop = asyncio.get_running_loop()
        sock.setblocking(False)

        async def serve() -> None:
            try:
                await loop.connect_accepted_socket(
                    lambda: RTMPServerProtocol(self),
                    sock,
                    ssl=self._tls if kind == "rtmps" else None,
                    ssl_handshake_timeout=self.config.limits.handshake_timeout_s
                    if kind == "rtmps"
                    else None,
                )
            except (OSError, ssl.SSLError) as exc:
                logger.info("a handed-over %s connection failed: %s", kind, exc)
                sock.close()

        task = loop.create_task(serve())
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    def stop_accepting(self) -> None:
        """Close the RTMP/RTMPS listeners; open connections go on (a draining worker)."""
        for server in self._servers:
            server.close()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop accepting, end every stream (recordings closed), close every connection."""
        for server in self._servers:
            server.close()
        # End the live streams first: players are told, recordings closed, and the
        # unpublish / record_done events still reach the hooks, which stop last.
        for stream in self.registry.live():
            if stream.source is not None:
                stream.source.stop("server shutting down")
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                logger.exception("stopping %r failed", component)
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
        # Everything made at start-up lives as long as the server: keep it out of the
        # cyclic collector's way, so its full collections only look at what came later.
        gc.freeze()
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

        Streams created from now on get the new cache and batching settings; connections
        made from now on announce the new chunk size (their players get bytes cut at it).
        Listen addresses need a restart.
        """
        try:
            config = load_config(self.config_path, **self.config_overrides)
        except ConfigError as exc:
            logger.error("reload failed, keeping the old configuration: %s", exc)
            return
        self.config = config
        self.registry.settings = stream_settings(config)
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
                if conn.idle_for(now) > idle_s and not conn.playing:
                    conn.log(logging.WARNING, "no data for %gs, closing", idle_s)
                    self.stats["idle_timeouts"] += 1
                    conn.close(abort=True)
            for stream in self.registry:
                stream.sample(1.0)
                for player in stream.players:
                    refresh = getattr(player, "refresh_limits", None)
                    if refresh is not None:
                        refresh()
            window_s = self.config.fanout_interval_ms / 1000
            for conn in list(self.connections):
                if conn.publishing or conn.coalescing:
                    conn.coalesce_reads(window_s, now)

    # -- extension points -----------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every :class:`ServerEvent`; returns an unsubscriber.

        Listeners run on the event loop inside media processing: they must not block.
        """
        return self.bus.subscribe(listener)

    def emit(self, event: ServerEvent) -> None:
        """Deliver ``event`` to every listener (a failing listener is logged, not fatal)."""
        self.bus.emit(event)

    async def authorize(self, request: Request) -> Decision:
        """Ask every policy; the first denial wins (see :class:`AccessControl`)."""
        return await self.access.authorize(request)

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


def _ignore_sigxfsz() -> None:
    """Let a write past RLIMIT_FSIZE fail with EFBIG (a recording stops) instead of the
    default SIGXFSZ action, which kills the whole server."""
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (ValueError, AttributeError):  # not the main thread, or no SIGXFSZ here
        pass
