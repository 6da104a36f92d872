"""HTTP-FLV and WebSocket-FLV viewers on the RTMP fan-out path. HOT PATH (the writers).

``GET /{app}/{name}.flv`` answers a chunked ``video/x-flv`` body; the same URL with a
WebSocket upgrade answers one binary message per write. Both are plain
:class:`~aiortmp.outputs.player.Player` objects with ``wire=FLV``: every packet is
serialized once as an FLV tag (FLV v10.1 E.4.1) and the joined bytes of a batch are shared by
all FLV viewers, with the same GOP cache and slow-player policy as RTMP players. Per write a
viewer only adds its framing — a chunk-size line (RFC 9112 §7.1) or a WebSocket frame header
(RFC 6455 §5.2) — and hands both to the transport in one ``writelines`` call.

Viewers go through the same access policies as RTMP ``play`` (the query string is passed
on, so ``?token=...`` works), appear in ``/api/sessions``, and emit ``play`` / ``stop``
events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from aiortmp.hub.bus import EventKind, ServerEvent
from aiortmp.hub.packet import FLV
from aiortmp.hub.stream import Stream
from aiortmp.media.flv import FLVHeader, encode_header
from aiortmp.server.connection import next_session_id

from .demand import ask_for_stream, authorize_play
from .player import Player, WriteTransport

if TYPE_CHECKING:
    from aiortmp.server.http import HTTPService

__all__ = [
    "FLV_FILE_HEADER",
    "ChunkedWriter",
    "FLVViewer",
    "WebSocketWriter",
    "handle_flv",
    "ws_frame_header",
]

logger = logging.getLogger("aiortmp.http")

#: The FLV header (audio + video flags) and PreviousTagSize0 (FLV v10.1 E.2, E.3).
FLV_FILE_HEADER = encode_header(FLVHeader(has_audio=True, has_video=True))

_CRLF = b"\r\n"


class _FramingWriter:
    """A :class:`WriteTransport` over an asyncio transport that frames each write."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def get_write_buffer_size(self) -> int:
        """Bytes queued in the transport."""
        return self._transport.get_write_buffer_size()


class ChunkedWriter(_FramingWriter):
    """A :class:`WriteTransport` that frames each write as one HTTP/1.1 chunk.

    RFC 9112 §7.1: ``chunk = chunk-size CRLF chunk-data CRLF`` with the size in hex.

    Args:
        transport: the connection's transport (after the response headers were sent).
    """

    __slots__ = ()

    def write(self, data: bytes) -> None:
        """Send ``data`` as one chunk (nothing if the connection is closing)."""
        transport = self._transport
        if data and not transport.is_closing():
            transport.writelines((b"%x\r\n" % len(data), data, _CRLF))


def ws_frame_header(length: int) -> bytes:
    """The header of an unmasked, final, binary WebSocket frame of ``length`` bytes.

    RFC 6455 §5.2: FIN=1, opcode 0x2; a server "MUST NOT mask any frames"; payload length
    7 bits, or 126 + 16 bits, or 127 + 64 bits.

    Args:
        length: payload length in bytes.

    Returns:
        2, 4 or 10 bytes.
    """
    if length < 126:
        return bytes((0x82, length))
    if length < 0x10000:
        return b"\x82\x7e" + length.to_bytes(2, "big")
    return b"\x82\x7f" + length.to_bytes(8, "big")


class WebSocketWriter(_FramingWriter):
    """A :class:`WriteTransport` that sends each write as one binary WebSocket message.

    The frames bypass aiohttp's writer (which is a coroutine); that is safe because the
    response is created without compression and each frame is written whole, so control
    frames aiohttp sends (pong, close) never interleave inside one.

    Args:
        transport: the connection's transport (after the upgrade).
    """

    __slots__ = ()

    def write(self, data: bytes) -> None:
        """Send ``data`` as one binary message (nothing if the connection is closing)."""
        transport = self._transport
        if data and not transport.is_closing():
            transport.writelines((ws_frame_header(len(data)), data))


class FLVViewer:
    """One HTTP-FLV or WebSocket-FLV viewer: the :class:`PlayerHost` of its player.

    Args:
        service: the HTTP service (server, viewers table).
        protocol: ``"http-flv"`` or ``"ws-flv"``.
        transport: the framing writer the player writes to.
        raw_transport: the connection's transport (closed to drop the viewer).
        remote: ``host:port`` of the viewer.
        app: application name.
        name: stream name.
        session_id: a server-wide session id (shared with RTMP connections).
    """

    transport: WriteTransport

    def __init__(
        self,
        service: HTTPService,
        *,
        protocol: str,
        transport: WriteTransport,
        raw_transport: asyncio.Transport,
        remote: str,
        app: str,
        name: str,
        session_id: int,
    ) -> None:
        self.service = service
        self.protocol = protocol
        self.transport = transport
        self.raw_transport = raw_transport
        self.remote = remote
        self.app = app
        self.name = name
        self.id = session_id
        self.started_at = time.time()
        self.player: Player | None = None
        self.done = asyncio.Event()
        self.end_reason = ""

    def finish(self, reason: str) -> None:
        """End the viewer: its handler detaches the player and ends the response."""
        if not self.done.is_set():
            self.end_reason = reason
            if self.player is not None:
                self.player.closed = True
            self.done.set()

    def close(self) -> None:
        """Kick the viewer (``DELETE /api/sessions/{id}``)."""
        self.finish("closed by the API")

    def notify_publish(self, player: Player) -> None:
        """Nothing to send: the FLV header went out before the player was attached."""

    def notify_unpublish(self, player: Player) -> None:
        """The publisher left: end the FLV body (a player reconnects for a republish)."""
        self.finish("unpublished")

    def drop_player(self, player: Player, reason: str) -> None:
        """Disconnect a viewer that cannot keep up (queued bytes are discarded)."""
        server = self.service.server
        server.stats["players_dropped"] += 1
        server.bus.emit(self.event(EventKind.PLAYER_DROPPED, reason=reason, protocol=self.protocol))
        logger.warning(
            "[%d %s] slow %s viewer of %s/%s disconnected: %s",
            self.id,
            self.remote,
            self.protocol,
            self.app,
            self.name,
            reason,
        )
        self.raw_transport.abort()
        self.finish(reason)

    def event(self, kind: EventKind, **details: Any) -> ServerEvent:
        """A :class:`ServerEvent` about this viewer."""
        return ServerEvent(
            kind=kind,
            session_id=self.id,
            remote=self.remote,
            app=self.app,
            name=self.name,
            details=details,
        )


def _remote(request: web.Request) -> tuple[str, str]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), f"{peer[0]}:{peer[1]}"
    return request.remote or "", request.remote or "?"


async def handle_flv(service: HTTPService, request: web.Request) -> web.StreamResponse:
    """``GET /{app}/{name}.flv``: HTTP-FLV, or WebSocket-FLV on an upgrade request.

    Args:
        service: the HTTP service (bind it with ``functools.partial`` for the route).
        request: the request.

    Answers 403 if an access policy denies the play, 404 if the stream is not live here
    and no pull brings it within ``relay.timeout_s``.
    """
    server = service.server
    app = request.match_info["app"]
    name = request.match_info["name"]
    host, remote = _remote(request)
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    protocol = "ws-flv" if websocket else "http-flv"
    session_id = next_session_id()
    decision = await authorize_play(
        server.access,
        server.bus,
        server.stats,
        app=app,
        name=name,
        query=request.query_string,
        host=host,
        session_id=session_id,
        protocol=protocol,
        url=str(request.url),
    )
    if not decision.allowed:
        raise web.HTTPForbidden(text=decision.reason or "playing not allowed")
    name = decision.name or name
    limit = server.config.limits.max_connections
    if len(server.connections) + len(service.viewers) >= limit:
        server.stats["connections_refused"] += 1
        logger.warning(
            "[%d %s] %s/%s refused: max_connections (%d)", session_id, remote, app, name, limit
        )
        raise web.HTTPServiceUnavailable(text="too many connections")
    # Not live here: a pull may bring it (a rule, a worker, the cluster directory).
    stream = await ask_for_stream(
        server.registry,
        server.bus,
        app,
        name,
        remote=remote,
        protocol=protocol,
        timeout_s=server.config.relay.timeout_s,
    )
    if stream is None or not stream.is_live:
        raise web.HTTPNotFound(text=f"{app}/{name} is not live")

    response: web.StreamResponse
    if websocket:
        ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="bad WebSocket upgrade")
        await ws.prepare(request)
        response = ws
    else:
        response = web.StreamResponse(
            headers={
                "Content-Type": "video/x-flv",
                "Cache-Control": "no-cache, no-store",
                # The media is public to whoever passes the play policies; players on other
                # origins (mpegts.js pages) need this.
                "Access-Control-Allow-Origin": "*",
            }
        )
        response.enable_chunked_encoding()
        # One live body per connection: nothing useful can follow it on the connection.
        response.force_close()
        await response.prepare(request)
    transport = request.transport
    if transport is None or transport.is_closing():
        return response
    raw = transport
    writer: WriteTransport = WebSocketWriter(raw) if websocket else ChunkedWriter(raw)
    viewer = FLVViewer(
        service,
        protocol=protocol,
        transport=writer,
        raw_transport=raw,
        remote=remote,
        app=app,
        name=name,
        session_id=session_id,
    )
    if isinstance(response, web.WebSocketResponse):
        reader = asyncio.ensure_future(_read_ws(viewer, response))
        try:
            await _serve(service, viewer, stream)
            if not raw.is_closing():
                await response.close()  # also ends the reader's receive loop
        finally:
            reader.cancel()
    else:
        await _serve(service, viewer, stream)
        if not raw.is_closing():
            try:
                await response.write_eof()
            except ConnectionError:
                pass
    return response


async def _serve(service: HTTPService, viewer: FLVViewer, stream: Stream) -> None:
    """Attach the viewer's player, wait until it ends, detach it."""
    server = service.server
    if not stream.is_live:  # unpublished while the response headers were sent
        return
    viewer.transport.write(FLV_FILE_HEADER)
    player = Player(viewer, stream, server.config.player, asyncio.get_running_loop().time, FLV)
    viewer.player = player
    service.viewers[viewer.id] = viewer
    logger.info(
        "[%d %s] %s play %s/%s started",
        viewer.id,
        viewer.remote,
        viewer.protocol,
        stream.app,
        stream.name,
    )
    stream.subscribe(player)  # sends metadata, configuration and the GOP at once
    server.bus.emit(viewer.event(EventKind.PLAY, live=True, protocol=viewer.protocol))
    try:
        await viewer.done.wait()
    finally:
        # Runs on cancellation too (the client went away: aiohttp cancels the handler).
        player.closed = True
        stream.unsubscribe(player)
        server.registry.release(stream)
        service.viewers.pop(viewer.id, None)
        server.stats["bytes_out"] += player.bytes_sent
        server.stats["messages_dropped"] += player.messages_dropped
        logger.info(
            "[%d %s] %s play %s/%s stopped (%d bytes sent, %d dropped%s)",
            viewer.id,
            viewer.remote,
            viewer.protocol,
            stream.app,
            stream.name,
            player.bytes_sent,
            player.messages_dropped,
            f", {viewer.end_reason}" if viewer.end_reason else "",
        )
        server.bus.emit(
            viewer.event(
                EventKind.STOP,
                bytes_sent=player.bytes_sent,
                messages_dropped=player.messages_dropped,
                protocol=viewer.protocol,
            )
        )


async def _read_ws(viewer: FLVViewer, ws: web.WebSocketResponse) -> None:
    """Read (and ignore) client messages; end the viewer when the client closes."""
    # aiohttp answers pings and the closing handshake while we iterate.
    async for _message in ws:
        pass
    viewer.finish("closed by the client")
