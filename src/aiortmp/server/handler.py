"""The asyncio adapter of one server connection: bytes to the session, events to the server.

Thin by design (websockets' ``asyncio/connection.py`` is the model): ``data_received`` feeds
:class:`~aiortmp.protocol.session.ServerSession`, acts on the events it returns, writes what
the session wants sent, then lets every stream it publishes fan out the batch.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.errors import (
    AMFEncodeError,
    HandshakeError,
    MessageError,
    RemoteProtocolError,
)
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
    StreamClosed,
)
from aiortmp.protocol.session import NetStreamState, ServerSession

from .player import Player, PlayerHost
from .policy import ALLOW, Decision, EventKind, Request, ServerEvent
from .stream import LiveStream

if TYPE_CHECKING:
    from .app import RTMPServer

__all__ = ["RTMPServerProtocol"]

logger = logging.getLogger("aiortmp.server")

_session_ids = itertools.count(1)


def next_session_id() -> int:
    """A new server-wide session id (RTMP connections and HTTP-FLV viewers share them)."""
    return next(_session_ids)


class RTMPServerProtocol(asyncio.Protocol, PlayerHost):
    """One RTMP connection accepted by :class:`~aiortmp.server.app.RTMPServer`.

    Bad input from the peer (any :class:`RemoteProtocolError`) is logged in one line and
    closes this connection only; its published stream is stopped cleanly (players are told,
    recordings are closed).
    """

    transport: asyncio.Transport

    def __init__(self, server: RTMPServer) -> None:
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
        self.publishing: dict[int, LiveStream] = {}
        self.playing: dict[int, Player] = {}
        self.closed = False
        self.connected = False
        self.last_rx = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            HandshakeComplete: self._on_handshake,
            ConnectRequest: self._on_connect,
            PublishRequest: self._on_publish,
            PlayRequest: self._on_play,
            MediaReceived: self._on_media,
            MetadataReceived: self._on_metadata,
            DataReceived: self._on_data,
            StreamClosed: self._on_stream_closed,
            ReceiveMediaChanged: self._on_receive_media,
            PauseRequest: self._on_pause,
            ControlReceived: self._ignore,
            CommandReceived: self._on_command,
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
        self.last_rx = self._loop.time()
        session = self.session
        try:
            session.receive_data(data)
            handlers = self._handlers
            while (event := session.next_event()) is not None:
                handlers[type(event)](event)
        except RemoteProtocolError as exc:
            self.log(logging.WARNING, "protocol error, closing: %s: %s", type(exc).__name__, exc)
            self.server.stats["protocol_errors"] += 1
            if isinstance(exc, HandshakeError):
                self.server.stats["handshake_failures"] += 1
                self.server.emit(self.event(EventKind.HANDSHAKE_FAILURE, reason=str(exc)))
            self.server.emit(
                self.event(EventKind.PROTOCOL_ERROR, error=type(exc).__name__, message=str(exc))
            )
            self._flush()
            self.close(abort=True)
            return
        self._flush()
        for stream in self.publishing.values():
            stream.end_of_read()

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
            self.server.emit(self.event(EventKind.DISCONNECT))
        self.log(logging.DEBUG, "disconnected%s", f": {exc}" if exc else "")

    # -- helpers --------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

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
            self._unpublish(stream_id)
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
            self.server.emit(self.event(EventKind.HANDSHAKE_FAILURE, reason="timeout"))
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
        if not self.server.policies:
            finish(ALLOW)
            return

        def done(task: asyncio.Task[Decision]) -> None:
            if self.closed or task.cancelled():
                return
            finish(task.result())
            self._flush()
            for stream in self.publishing.values():
                stream.end_of_read()

        task = self._loop.create_task(self.server.authorize(request))
        task.add_done_callback(done)

    def _denied(self, action: str, name: str, decision: Decision) -> None:
        # A denial may name what to log instead of the request (a wrong channel key is
        # still a key: it is not logged).
        name = decision.name or name
        self.log(logging.WARNING, "%s %s denied: %s", action, name or self.app, decision.reason)
        self.server.stats["auth_denials"] += 1
        self.server.emit(
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
            self._flush()
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
            self._flush()
            self.close()
            return
        self.session.accept_connect(request)
        self.connected = True
        # The query string is cut: it may carry keys or tokens.
        self.log(logging.INFO, "connect tcUrl=%s", request.tc_url.partition("?")[0])
        self.server.emit(self.event(EventKind.CONNECT, tc_url=request.tc_url))

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
        stream = self.server.registry.get_or_create(self.app, name)
        if stream.is_live:
            session.reject_publish(request, f"{label} is already being published")
            self.log(logging.WARNING, "publish %s refused: already publishing", label)
            return
        session.accept_publish(request)
        self._flush()
        self.publishing[request.stream_id] = stream
        stream.start(self)
        self.log(logging.INFO, "publish %s (%s) started", label, request.publish_type)
        self.server.on_publish(stream, self)

    def _unpublish(self, stream_id: int) -> None:
        stream = self.publishing.pop(stream_id, None)
        if stream is None:
            return
        stream.stop()
        self.server.stats["bytes_in"] += stream.bytes_in
        self.server.on_unpublish(stream, self)
        self.server.registry.release(stream)
        self.log(
            logging.INFO,
            "publish %s/%s stopped (%d messages, %d bytes)",
            stream.app,
            stream.name,
            stream.messages_in,
            stream.bytes_in,
        )

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
        stream = self.server.registry.get_or_create(self.app, name)
        self.session.accept_play(request)
        self._flush()
        player = Player(self, request.stream_id, stream, self.server.config.player, self._loop.time)
        self.playing[request.stream_id] = player
        live = stream.is_live
        self.log(
            logging.INFO,
            "play %s/%s started%s",
            self.app,
            name,
            "" if live else " (waiting for the publisher)",
        )
        stream.add_player(player)
        self.server.emit(self.event(EventKind.PLAY, name, live=live))

    def _stop_playing(self, stream_id: int, *, quiet: bool = False) -> None:
        player = self.playing.pop(stream_id, None)
        if player is None:
            return
        player.closed = True
        stream = player.stream
        stream.remove_player(player)
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
        self.server.emit(
            self.event(
                EventKind.STOP,
                stream.name,
                bytes_sent=player.bytes_sent,
                messages_dropped=player.messages_dropped,
            )
        )

    def _on_media(self, event: MediaReceived) -> None:
        stream = self.publishing.get(event.stream_id)
        if stream is not None:
            stream.ingest(event.type_id, event.timestamp_ms, event.payload)

    def _on_metadata(self, event: MetadataReceived) -> None:
        stream = self.publishing.get(event.stream_id)
        if stream is not None:
            try:
                stream.set_metadata(dict(event.metadata), event.timestamp_ms)
            except AMFEncodeError as exc:
                # Cyclic (AMF0 §2.9 references) metadata cannot be written for players.
                raise MessageError(f"onMetaData cannot be relayed: {exc}") from exc

    def _on_data(self, event: DataReceived) -> None:
        stream = self.publishing.get(event.stream_id)
        if stream is not None:
            message = event.message
            stream.ingest_data(message.type_id, message.timestamp_ms, message.payload)

    def _on_stream_closed(self, event: StreamClosed) -> None:
        self._unpublish(event.stream_id)
        self._stop_playing(event.stream_id)

    def _on_receive_media(self, event: ReceiveMediaChanged) -> None:
        player = self.playing.get(event.stream_id)
        if player is not None:
            player.set_receive(audio=event.audio, video=event.video)

    def _on_pause(self, event: PauseRequest) -> None:
        player = self.playing.get(event.stream_id)
        if player is not None:
            player.set_paused(event.paused)

    # -- PlayerHost -----------------------------------------------------------------------

    def notify_publish(self, player: Player) -> None:
        """StreamBegin + NetStream.Play.PublishNotify to a waiting player."""
        if self.closed or not self.session.is_open:
            return
        self.session.notify_publish(player.message_stream_id, player.stream.name)
        self._flush()

    def notify_unpublish(self, player: Player) -> None:
        """NetStream.Play.UnpublishNotify + StreamEOF; the player stays for a republish."""
        # The peer may have sent EOF already (connection_lost not run yet).
        if self.closed or not self.session.is_open:
            return
        self.session.notify_unpublish(player.message_stream_id, player.stream.name)
        self._flush()

    def drop_player(self, player: Player, reason: str) -> None:
        """Disconnect a player that cannot keep up."""
        self.server.stats["players_dropped"] += 1
        self.server.emit(self.event(EventKind.PLAYER_DROPPED, player.stream.name, reason=reason))
        self.log(
            logging.WARNING,
            "slow player on %s/%s disconnected: %s",
            player.stream.app,
            player.stream.name,
            reason,
        )
        # Removing the player from the stream while it iterates is safe (it iterates a copy).
        self.close(abort=True)
