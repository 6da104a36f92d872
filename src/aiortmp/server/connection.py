"""The asyncio adapter of one RTMP connection: bytes to the session, events to the hub.

Thin by design (websockets' ``asyncio/connection.py`` is the model): ``data_received`` feeds
:class:`~aiortmp.protocol.session.ServerSession`, acts on the events it returns, writes what
the session wants sent, then commits the read to every stream it publishes (the stream
delivers the batch). Publishing NetStreams are sources
(:class:`~aiortmp.sources.rtmp_publish.RTMPPublish`), playing ones are outputs
(:class:`~aiortmp.outputs.rtmp_play.RTMPPlay`); access decisions go through the server's
:class:`~aiortmp.server.access.AccessControl`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from aiortmp.errors import HandshakeError, RemoteProtocolError, StreamBusy
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import LINK, Registry
from aiortmp.outputs.rtmp_play import RTMPPlay
from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.events import (
    CommandReceived,
    ConnectRequest,
    ControlReceived,
    DataReceived,
    Event,
    HandshakeComplete,
    MediaReceived,
    MetadataReceived,
    PauseRequest,
    PlayRequest,
    PublishRequest,
    ReceiveMediaChanged,
    SeekRequest,
    StreamClosed,
    StreamLengthRequest,
)
from aiortmp.protocol.session import NetStreamState, ServerSession
from aiortmp.sources.rtmp_publish import RTMPPublish

from .access import ALLOW, AccessControl, Decision, Request

if TYPE_CHECKING:
    from .config import ServerConfig
    from .vod import VodService

__all__ = ["ConnectionHost", "RTMPServerProtocol", "next_session_id", "number_sessions_from"]

logger = logging.getLogger("aiortmp.server")

_session_ids = itertools.count(1)

#: Read coalescing (``coalesce_reads``): marks below this are not worth it, and the mark
#: never asks for more than this (bytes).
_MIN_LOWAT = 2048
_MAX_LOWAT = 64 * 1024


def next_session_id() -> int:
    """A new server-wide session id (RTMP connections, HTTP viewers and pulls share them)."""
    return next(_session_ids)


def number_sessions_from(first: int) -> None:
    """Number new sessions from ``first`` on: a worker process puts its number in the high
    bits, so session ids are unique across the workers of a server."""
    global _session_ids
    _session_ids = itertools.count(first)


class ConnectionHost(Protocol):
    """What a connection needs of the server (the server provides exactly this)."""

    config: ServerConfig
    registry: Registry
    bus: EventBus
    access: AccessControl
    stats: collections.Counter[str]

    def register(self, conn: RTMPServerProtocol) -> str | None:
        """Admit a new connection; a refusal reason, or None."""

    def unregister(self, conn: RTMPServerProtocol) -> None:
        """Forget a closed connection."""


class RTMPServerProtocol(asyncio.Protocol):
    """One RTMP connection accepted by :class:`~aiortmp.server.app.RTMPServer`.

    Bad input from the peer (any :class:`RemoteProtocolError`) is logged in one line and
    closes this connection only; its published stream is stopped cleanly (players are told,
    recordings are closed).

    Args:
        server: what the connection needs of the server (:class:`ConnectionHost`).
    """

    transport: asyncio.Transport

    def __init__(self, server: ConnectionHost) -> None:
        self.server = server
        config = server.config
        limits = config.limits
        self.session = ServerSession(
            chunk_size=config.chunk_size,
            window_ack_size=config.window_ack_size,
            peer_bandwidth=config.window_ack_size,
            max_streams=limits.max_streams_per_connection,
            max_amf_depth=limits.max_amf_depth,
            max_message_size=limits.max_message_size,
            max_chunk_streams=limits.max_chunk_streams,
            max_pending_bytes=limits.max_pending_bytes,
        )
        self.id = next_session_id()
        self.remote = "?"
        self.remote_host = ""
        self.app = ""
        self.publishing: dict[int, RTMPPublish] = {}
        self.playing: dict[int, RTMPPlay] = {}
        self.closed = False
        self.connected = False
        self.last_rx = 0.0  # monotonic time bytes last arrived, as seen by idle_for
        self._socket: Any = None
        self._lowat = 1  # SO_RCVLOWAT of the socket (see coalesce_reads)
        self._rx_mark = 0  # bytes received at that time
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            HandshakeComplete: self._on_handshake,
            ConnectRequest: self._on_connect,
            PublishRequest: self._on_publish,
            PlayRequest: self._on_play,
            # Publishing NetStreams deliver to their stream directly (set_media_sink).
            MediaReceived: self._ignore,
            MetadataReceived: self._ignore,
            DataReceived: self._ignore,
            StreamClosed: self._on_stream_closed,
            ReceiveMediaChanged: self._on_receive_media,
            PauseRequest: self._on_pause,
            ControlReceived: self._ignore,
            CommandReceived: self._on_command,
            SeekRequest: self._on_seek,
            StreamLengthRequest: self._on_stream_length,
        }

    # -- logging ------------------------------------------------------------------------

    def log(self, level: int, msg: str, *args: object) -> None:
        """Log one line prefixed with the session id, remote address and app."""
        if logger.isEnabledFor(level):
            logger.log(level, f"[{self.id} {self.remote} {self.app or '-'}] {msg}", *args)

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.remote_host = str(peer[0])
            self.remote = f"{peer[0]}:{peer[1]}"
        sock = transport.get_extra_info("socket")
        self._socket = sock
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        # Backpressure is ours (see player.py); keep asyncio from pausing us early.
        self.transport.set_write_buffer_limits(
            high=self.server.config.player.backlog_hard_bytes * 2
        )
        refused = self.server.register(self)
        if refused:
            self.log(logging.WARNING, "connection refused: %s", refused)
            self.transport.abort()
            self.closed = True
            return
        self.log(logging.DEBUG, "connected")
        self.last_rx = self._loop.time()
        self._timer = self._loop.call_later(
            self.server.config.limits.handshake_timeout_s, self._on_handshake_timeout
        )

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self._run(self.session.receive_data, data)

    @property
    def coalescing(self) -> bool:
        """True while the kernel holds this connection's bytes to a mark (see below)."""
        return self._lowat > 1

    def coalesce_reads(self, window_s: float, now: float) -> None:
        """Let the kernel hold a publisher's bytes until about ``window_s`` of its media
        arrived, so the server reads (and delivers) in batches: what costs most per byte
        ingested is the fixed work of each read (wake-up, syscall, parse, dispatch).

        ``SO_RCVLOWAT`` (socket(7)) is set to the bytes the published streams bring in
        ``window_s`` at their measured bitrate, and their streams deliver each read at once
        (the kernel did the coalescing ``fanout_interval_ms`` would do), so the added
        latency is the same. Below 2 KiB a window is not worth it; a connection that
        brought nothing since the last call drops the mark, so a tail shorter than it (a
        last command before a pause) is never held for more than about a second. Called
        once a second by the server.

        Args:
            window_s: the coalescing window (``fanout_interval_ms``), seconds.
            now: the loop's monotonic time (s).
        """
        if self._socket is None or self.closed:
            return
        lowat = 1
        if self.publishing and window_s > 0 and self.idle_for(now) < 0.5:
            rate_bps = sum(p.stream.bitrate_bps for p in self.publishing.values())
            lowat = min(int(rate_bps / 8 * window_s), _MAX_LOWAT)
            if lowat < _MIN_LOWAT:
                lowat = 1
        if lowat != self._lowat:
            try:
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
            except (OSError, AttributeError):
                self._socket = None  # not a socket that takes it (a unix socket, a test)
                return
            self._lowat = lowat
        for publish in self.publishing.values():
            publish.stream.reads_coalesced = lowat > 1

    def idle_for(self, now: float) -> float:
        """Seconds since bytes last arrived, to a precision of the calls to this method
        (the server asks once a second; reads themselves pay nothing for it).

        Args:
            now: the loop's monotonic time (s).
        """
        received = self.session.connection.bytes_received
        if received != self._rx_mark:
            self._rx_mark = received
            self.last_rx = now
        return now - self.last_rx

    def _run(self, step: Callable[[Any], None], argument: Any) -> None:
        """``step(argument)`` on the session, then act on every event it produced; a
        :class:`RemoteProtocolError` closes the connection with one log line."""
        session = self.session
        try:
            step(argument)
            handlers = self._handlers
            while (event := session.next_event()) is not None:
                handlers[type(event)](event)
        except RemoteProtocolError as exc:
            self.log(logging.WARNING, "protocol error, closing: %s: %s", type(exc).__name__, exc)
            self.server.stats["protocol_errors"] += 1
            if isinstance(exc, HandshakeError):
                self.server.stats["handshake_failures"] += 1
                self.server.bus.emit(self.event(EventKind.HANDSHAKE_FAILURE, reason=str(exc)))
            self.server.bus.emit(
                self.event(EventKind.PROTOCOL_ERROR, error=type(exc).__name__, message=str(exc))
            )
            self.flush()
            self.close(abort=True)
            return
        self.flush()
        for publish in self.publishing.values():
            publish.stream.commit()

    def eof_received(self) -> bool | None:
        self.session.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.closed = True
        self._cleanup()
        self.server.unregister(self)
        if self.connected:
            self.server.bus.emit(self.event(EventKind.DISCONNECT))
        self.log(logging.DEBUG, "disconnected%s", f": {exc}" if exc else "")

    # -- helpers --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the session wants sent.

        A client that sends commands and never reads the answers would make us buffer
        them without end: past ``limits.max_output_bytes`` queued (on a connection that
        plays nothing: players' backlogs follow the slow-player policy) it is closed.
        """
        data = self.session.data_to_send()
        if data and not self.closed:
            transport = self.transport
            transport.write(data)
            limit = self.server.config.limits.max_output_bytes
            if not self.playing and transport.get_write_buffer_size() > limit:
                self.log(
                    logging.WARNING,
                    "closing: more than %d bytes of answers unread (max_output_bytes)",
                    limit,
                )
                self.close(abort=True)

    def close(self, *, abort: bool = False) -> None:
        """Close the connection (abort: drop buffered output at once)."""
        if self.closed:
            return
        self.closed = True
        self._cleanup()
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    def _cleanup(self) -> None:
        for stream_id in list(self.publishing):
            self.unpublish(stream_id)
        for stream_id in list(self.playing):
            self._stop_playing(stream_id)

    def _on_handshake_timeout(self) -> None:
        self._timer = None
        if not self.session.is_open:
            self.log(
                logging.WARNING,
                "handshake not completed within %gs, closing",
                self.server.config.limits.handshake_timeout_s,
            )
            self.server.stats["handshake_failures"] += 1
            self.server.bus.emit(self.event(EventKind.HANDSHAKE_FAILURE, reason="timeout"))
            self.close(abort=True)

    # -- events ---------------------------------------------------------------------------

    def _ignore(self, event: Event) -> None:
        pass

    def _on_command(self, event: CommandReceived) -> None:
        self.log(logging.DEBUG, "unhandled command %r", event.command.name)

    def _on_handshake(self, event: HandshakeComplete) -> None:
        self.log(
            logging.DEBUG,
            "handshake done (%s)",
            "simple" if event.digest_scheme is None else f"digest scheme {event.digest_scheme}",
        )

    # -- access decisions ---------------------------------------------------------------

    def event(self, kind: EventKind, name: str = "", **details: Any) -> ServerEvent:
        """A :class:`ServerEvent` about this connection."""
        return ServerEvent(
            kind=kind,
            session_id=self.id,
            remote=self.remote,
            app=self.app,
            name=name,
            details=details,
        )

    def _decide(self, request: Request, finish: Callable[[Decision], None]) -> None:
        """Run the access policies, then ``finish(decision)``.

        Without policies the decision is immediate (no task per request). With policies the
        RTMP request stays pending in the session until the decision arrives.
        """
        access = self.server.access
        if not access:
            finish(ALLOW)
            return

        def done(task: asyncio.Task[Decision]) -> None:
            if self.closed or task.cancelled():
                return
            # Accepting connect answers the commands pipelined behind it: their events
            # (and errors) are handled like those of a read.
            self._run(finish, task.result())

        task = self._loop.create_task(access.authorize(request))
        task.add_done_callback(done)

    def _denied(self, action: str, name: str, decision: Decision) -> None:
        # A denial may name what to log instead of the request (a wrong channel key is
        # still a key: it is not logged).
        name = decision.name or name
        self.log(logging.WARNING, "%s %s denied: %s", action, name or self.app, decision.reason)
        self.server.stats["auth_denials"] += 1
        self.server.bus.emit(
            self.event(EventKind.AUTH_DENIED, name, action=action, reason=decision.reason)
        )

    def _request(self, action: str, name: str, query: str, **extra: Any) -> Request:
        return Request(
            action=action,
            app=self.app,
            name=name,
            query=query,
            remote_host=self.remote_host,
            session_id=self.id,
            **extra,
        )

    # -- connect / publish / play ---------------------------------------------------------

    def _on_connect(self, request: ConnectRequest) -> None:
        self.app = request.app
        if not request.app:
            self.session.reject_connect(request, "missing application name")
            self.log(logging.INFO, "connect rejected: no app name")
            self.flush()
            self.close()
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._decide(
            self._request(
                "connect",
                "",
                request.query,
                tc_url=request.tc_url,
                properties=request.command_object,
            ),
            lambda decision: self._finish_connect(request, decision),
        )

    def _finish_connect(self, request: ConnectRequest, decision: Decision) -> None:
        if not decision.allowed:
            self._denied("connect", "", decision)
            self.session.reject_connect(request, decision.reason or "connection refused")
            self.flush()
            self.close()
            return
        self.session.accept_connect(request)
        self.connected = True
        # The query string is cut: it may carry keys or tokens.
        self.log(logging.INFO, "connect tcUrl=%s", request.tc_url.partition("?")[0])
        self.server.bus.emit(self.event(EventKind.CONNECT, tc_url=request.tc_url))

    def _pending(self, request: PublishRequest | PlayRequest, state: NetStreamState) -> bool:
        """Whether ``request`` still waits for an answer.

        It may not: one read can carry ``play`` and ``closeStream``, and an access policy
        may answer after the client closed, deleted or reused the NetStream.
        """
        session = self.session
        return (
            session.stream_state(request.stream_id) is state
            and session.stream_names.get(request.stream_id) == request.name
        )

    def _on_publish(self, request: PublishRequest) -> None:
        if not self._pending(request, NetStreamState.PUBLISH_PENDING):
            return
        if not request.name:
            self.session.reject_publish(request, "empty stream name")
            self.log(logging.INFO, "publish refused: empty stream name")
            return
        self._decide(
            self._request("publish", request.name, request.query),
            lambda decision: self._finish_publish(request, decision),
        )

    def _finish_publish(self, request: PublishRequest, decision: Decision) -> None:
        session = self.session
        if not self._pending(request, NetStreamState.PUBLISH_PENDING):
            return
        if not decision.allowed:
            self._denied("publish", request.name, decision)
            session.reject_publish(request, decision.reason or "publishing not allowed")
            return
        name = decision.name or request.name
        label = f"{self.app}/{name}"
        registry = self.server.registry
        stream = registry.get_or_create(self.app, name)
        # A worker link copies a name whose owner moved it here (the policies gave it to
        # us): the publisher takes the stream over, its players see no gap.
        link = stream.source if stream.successor is None else None
        takeover = link is not None and link.kind == LINK
        if stream.is_live and not takeover:
            session.reject_publish(request, f"{label} is already being published")
            self.log(logging.WARNING, "publish %s refused: already publishing", label)
            registry.release(stream)
            return
        session.accept_publish(request)
        self.flush()
        publish = RTMPPublish(self, stream, request.stream_id)
        if link is not None and takeover:
            stream.successor = publish
            link.stop("a local publisher takes over")  # detaches: the successor is the source
        try:
            if stream.source is not publish:
                stream.attach(publish)
        except StreamBusy:  # a source attached while policies were asked: cannot happen
            session.reject_publish(request, f"{label} is already being published")
            return
        self.publishing[request.stream_id] = publish
        # The fast path: the session hands this NetStream's audio/video straight to the
        # stream as each message is parsed (no event objects).
        session.set_media_sink(request.stream_id, stream)
        self.log(logging.INFO, "publish %s (%s) started", label, request.publish_type)

    def unpublish(self, stream_id: int) -> None:
        """End the publish on NetStream ``stream_id`` (no-op if there is none)."""
        publish = self.publishing.pop(stream_id, None)
        if publish is None:
            return
        self.session.set_media_sink(stream_id, None)
        publish.stream.reads_coalesced = False
        stream = publish.stream
        self.server.stats["bytes_in"] += stream.bytes_in
        self.log(
            logging.INFO,
            "publish %s/%s stopped (%d messages, %d bytes)",
            stream.app,
            stream.name,
            stream.messages_in,
            stream.bytes_in,
        )
        stream.detach(publish)

    def _on_play(self, request: PlayRequest) -> None:
        if not self._pending(request, NetStreamState.PLAY_PENDING):
            return
        # A new play on the same NetStream replaces the previous one.
        self._stop_playing(request.stream_id, quiet=True)
        if not request.name:
            self.session.reject_play(request, "empty stream name")
            return
        self._decide(
            self._request("play", request.name, request.query),
            lambda decision: self._finish_play(request, decision),
        )

    def _finish_play(self, request: PlayRequest, decision: Decision) -> None:
        if not self._pending(request, NetStreamState.PLAY_PENDING):
            return
        if not decision.allowed:
            self._denied("play", request.name, decision)
            self.session.reject_play(
                request, decision.reason or "playing not allowed", code=NetStatusCode.PLAY_FAILED
            )
            return
        name = decision.name or request.name
        vod = self._vod()
        if vod is not None and vod.handles(self.app):
            vod.play(self, request, name)  # a file: server/vod.py answers the play
            return
        stream = self.server.registry.get_or_create(self.app, name)
        self.session.accept_play(request)
        self.flush()
        play = RTMPPlay(self, request.stream_id, stream, self.server.config.player, self._loop.time)
        self.playing[request.stream_id] = play
        live = stream.is_live
        self.log(
            logging.INFO,
            "play %s/%s started%s",
            self.app,
            name,
            "" if live else " (waiting for the publisher)",
        )
        stream.subscribe(play.player)
        self.server.bus.emit(self.event(EventKind.PLAY, name, live=live))

    def _stop_playing(self, stream_id: int, *, quiet: bool = False) -> None:
        play = self.playing.pop(stream_id, None)
        if play is None:
            return
        player = play.player
        player.closed = True
        stream = player.stream
        stream.unsubscribe(player)
        self.server.stats["bytes_out"] += player.bytes_sent
        self.server.stats["messages_dropped"] += player.messages_dropped
        self.server.registry.release(stream)
        if not quiet:
            self.log(
                logging.INFO,
                "play %s/%s stopped (%d bytes sent, %d dropped)",
                stream.app,
                stream.name,
                player.bytes_sent,
                player.messages_dropped,
            )
        self.server.bus.emit(
            self.event(
                EventKind.STOP,
                stream.name,
                bytes_sent=player.bytes_sent,
                messages_dropped=player.messages_dropped,
            )
        )

    def _on_stream_closed(self, event: StreamClosed) -> None:
        self.unpublish(event.stream_id)
        self._stop_playing(event.stream_id)

    def _on_receive_media(self, event: ReceiveMediaChanged) -> None:
        play = self.playing.get(event.stream_id)
        if play is not None:
            play.player.set_receive(audio=event.audio, video=event.video)

    def _on_pause(self, event: PauseRequest) -> None:
        play = self.playing.get(event.stream_id)
        if play is not None:
            play.player.set_paused(event.paused)

    def _vod(self) -> VodService | None:
        # The [[vod]] component of a server that has one (a worker's link host has none).
        vod: VodService | None = getattr(self.server, "vod", None)
        return vod

    def _on_seek(self, event: SeekRequest) -> None:
        seek = getattr(self.playing.get(event.stream_id), "seek", None)
        if seek is not None:
            seek(event)  # a file (server/vod.py)
        else:
            self.session.reject_seek(event, "a live stream cannot seek")

    def _on_stream_length(self, event: StreamLengthRequest) -> None:
        vod = self._vod()
        if vod is not None and vod.handles(self.app):
            vod.stream_length(self, event)
        else:
            self.session.answer_stream_length(event, 0.0)  # live streams have no length

    # -- for RTMPPlay ---------------------------------------------------------------------

    def player_dropped(self, play: RTMPPlay, reason: str) -> None:
        """A player of this connection cannot keep up: log, count, close the connection."""
        stream = play.stream
        self.server.stats["players_dropped"] += 1
        self.server.bus.emit(self.event(EventKind.PLAYER_DROPPED, stream.name, reason=reason))
        self.log(
            logging.WARNING,
            "slow player on %s/%s disconnected: %s",
            stream.app,
            stream.name,
            reason,
        )
        # Detaching the player while the stream delivers is safe (it iterates a copy).
        self.close(abort=True)
