"""The asyncio RTMP client: publish and play from Python, on the same sans-I/O core.

::

    async with aiortmp.connect("rtmp://127.0.0.1/live", timeout=10) as conn:
        publisher = await conn.publish("cam")
        await publisher.send_metadata({"width": 1280.0, "height": 720.0})
        await publisher.send_video(0, video_tag_body)

    async with aiortmp.connect("rtmp://127.0.0.1/live") as conn:
        async for message in await conn.play("cam"):
            print(message.type_id, message.timestamp_ms, message.header)

The adapter is thin (websockets' ``asyncio/connection.py`` is the model):
:class:`_ClientProtocol` feeds bytes to :class:`~aiortmp.protocol.session.ClientSession`,
writes what it wants sent and hands its events to the :class:`Connection`, which resolves
pending calls and queues media for :class:`Player` iterators.

:func:`reconnecting` (with :class:`Backoff`) keeps a connection up across server restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
import ssl as ssl_module
import time
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, cast

from .errors import (
    ClientError,
    ClientTimeoutError,
    LocalProtocolError,
    RejectedError,
    RemoteProtocolError,
)
from .hub.packet import config_key
from .media.errors import CodecHeaderError
from .media.tags import (
    AudioKind,
    AudioTag,
    VideoKind,
    VideoTag,
    classify_audio,
    classify_video,
    parse_audio_tag,
    parse_video_tag,
)
from .protocol import amf0
from .protocol.commands import DataMessage, NetStatusCode
from .protocol.control import StreamBegin, StreamEOF
from .protocol.events import (
    CommandResult,
    ControlReceived,
    DataReceived,
    Event,
    HandshakeComplete,
    MediaReceived,
    MetadataReceived,
    ReconnectRequested,
    StatusReceived,
)
from .protocol.messages import ChunkStreamId, Message, MessageType
from .protocol.session import CLIENT_ENHANCED_RTMP_PROPERTIES, CapsExMask, ClientSession

__all__ = [
    "Backoff",
    "ClientError",
    "ClientTimeoutError",
    "Connection",
    "MediaMessage",
    "PlayEvent",
    "Player",
    "Publisher",
    "RTMPURL",
    "RejectedError",
    "connect",
    "parse_url",
    "reconnecting",
    "unix_url",
]

logger = logging.getLogger("aiortmp.client")

DEFAULT_PORTS: Final = {"rtmp": 1935, "rtmps": 443}
#: RTMP over a unix stream socket: ``rtmp+unix://<percent-encoded socket path>/app/stream``
#: (the ``http+unix://`` convention); a server's worker processes link through these.
UNIX_SCHEME: Final = "rtmp+unix"

#: Data messages that are session plumbing, not stream content: servers send them right
#: after ``NetStream.Play.Start`` (``|RtmpSampleAccess``, ``onStatus NetStream.Data.Start``).
_PLUMBING_DATA: Final = frozenset({"|RtmpSampleAccess", "onStatus"})

#: The AMF0 string ``onMetaData`` that starts an FLV script tag body (FLV v10.1 E.4.4.1).
_ON_METADATA: Final = amf0.encode("onMetaData")
_SET_DATA_FRAME: Final = amf0.encode("@setDataFrame")

#: Message types a :class:`Publisher` sends (audio, video, AMF0 data).
_PUBLISHED_TYPES: Final = frozenset({MessageType.AUDIO, MessageType.VIDEO, MessageType.DATA_AMF0})

#: A publisher that follows a ReconnectRequest moves at the next keyframe, or at the next
#: message once this many seconds passed without one (seconds).
MOVE_WAIT_S: Final = 10.0

#: Status codes after which a played stream has no more media for now.
_END_CODES: Final = frozenset(
    {NetStatusCode.PLAY_STOP, NetStatusCode.PLAY_UNPUBLISH_NOTIFY, "NetStream.Play.Complete"}
)


# -- URLs -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RTMPURL:
    """A parsed ``rtmp[s]://host[:port]/app[/stream][?query]`` URL.

    Attributes:
        scheme: ``rtmp``, ``rtmps`` or ``rtmp+unix``.
        host: host name or address (the socket path for ``rtmp+unix``).
        port: TCP port (1935 for rtmp, 443 for rtmps by default; 0 for a unix socket).
        app: the application (first path segment); with the query string when the URL has
            no stream name (the token then goes with ``connect``).
        stream: the rest of the path (the stream name) with the query string, or "".
        tc_url: ``scheme://host:port/app`` as sent in ``connect``.
        unix_path: the unix socket path of an ``rtmp+unix://`` URL, else "".
    """

    scheme: str
    host: str
    port: int
    app: str
    stream: str
    tc_url: str
    unix_path: str = ""


def parse_url(url: str) -> RTMPURL:
    """Parse an RTMP URL; the app is the first path segment, as in nginx-rtmp.

    The query string goes with the stream name when there is one (``publish``/``play``
    ``name?token=x``, as FFmpeg sends it), else with the app (``connect``), which is where
    servers look for authentication tokens.

    ``rtmp+unix://%2Frun%2Faiortmp%2Fw1.sock/live/cam`` is RTMP over the unix socket
    ``/run/aiortmp/w1.sock`` (the percent-encoded path takes the place of host and port).

    Args:
        url: ``rtmp[s]://host[:port]/app[/stream][?query]`` or
            ``rtmp+unix://<encoded path>/app[/stream][?query]``.

    Returns:
        The parsed URL.

    Raises:
        ClientError: not an rtmp://, rtmps:// or rtmp+unix:// URL, no host, or no app.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port_value = None if parts.scheme.lower() == UNIX_SCHEME else parts.port
    except ValueError as exc:
        raise ClientError(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS and scheme != UNIX_SCHEME:
        raise ClientError(f"not an rtmp:// or rtmps:// URL: {url!r}")
    unix_path = urllib.parse.unquote(parts.netloc) if scheme == UNIX_SCHEME else ""
    host = unix_path or parts.hostname or ""
    if not host:
        raise ClientError(f"no host in {url!r}")
    port = 0 if unix_path else port_value or DEFAULT_PORTS[scheme]
    path = urllib.parse.unquote(parts.path).lstrip("/")
    app, _, stream = path.partition("/")
    if not app:
        raise ClientError(f"no application in {url!r}")
    query = f"?{parts.query}" if parts.query else ""
    if unix_path:
        authority = urllib.parse.quote(unix_path, safe="")
    else:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return RTMPURL(
        scheme=scheme,
        host=host,
        port=port,
        app=app + (query if not stream else ""),
        stream=stream + query if stream else "",
        tc_url=f"{scheme}://{authority}/{app}",
        unix_path=unix_path,
    )


def unix_url(path: str, app: str, name: str = "") -> str:
    """The ``rtmp+unix://`` URL of ``app[/name]`` on the unix socket ``path``.

    Args:
        path: the socket path.
        app: the application.
        name: the stream name ("" for an application URL).

    Returns:
        ``rtmp+unix://<percent-encoded path>/app[/name]`` (app and name percent-encoded).
    """
    quoted = urllib.parse.quote
    tail = f"/{quoted(name, safe='/')}" if name else ""
    return f"{UNIX_SCHEME}://{quoted(path, safe='')}/{quoted(app, safe='')}{tail}"


def _moved_url(current: RTMPURL, tc_url: str) -> RTMPURL:
    """The URL to connect to when following a ReconnectRequest to ``tc_url``: its scheme,
    host, port and application, with the query string the current ``connect`` carried
    (a token for the application goes along)."""
    parsed = parse_url(tc_url)
    head = tc_url.partition("?")[0]
    path = urllib.parse.unquote(urllib.parse.urlsplit(head).path).strip("/")
    query = current.app.partition("?")[2]
    return dataclasses.replace(
        parsed, app=path + (f"?{query}" if query else ""), stream="", tc_url=head
    )


def join_url(base: str, name: str) -> str:
    """``rtmp://h/app?q`` + ``name`` → ``rtmp://h/app/name?q`` (a relay's upstream URL).

    Args:
        base: an application URL, optionally with a query string (kept at the end).
        name: the stream name to append.

    Returns:
        The stream URL.
    """
    head, sep, query = base.partition("?")
    return f"{head.rstrip('/')}/{name}" + (f"?{query}" if sep else "")


# -- media messages ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaMessage:
    """One message received while playing.

    Attributes:
        type_id: 8 (audio), 9 (video) or 18 (data; ``metadata`` or ``data`` is set).
        timestamp_ms: the message timestamp in ms (32-bit, as the server sent it).
        payload: the FLV tag body (audio/video: tag header + codec data; data messages
            other than metadata: the AMF0 body as received). ``b""`` for metadata.
        header: the parsed tag header (E-RTMP v2 ExVideoTagHeader/ExAudioTagHeader, or
            legacy FLV v10.1 E.4.2/E.4.3): a :class:`~aiortmp.media.tags.VideoTag` or
            :class:`~aiortmp.media.tags.AudioTag`; None for data messages, for payloads
            that do not parse, or when the player was created with ``parse_headers=False``.
        metadata: the ``onMetaData`` properties for a metadata message, else None.
        data: the decoded data message (``onCuePoint``, ``onFI``, ``onTextData``...) for
            other data messages, else None.
    """

    type_id: int
    timestamp_ms: int
    payload: bytes
    header: VideoTag | AudioTag | None = None
    metadata: Mapping[str, Any] | None = None
    data: DataMessage | None = None

    @property
    def video(self) -> VideoTag | None:
        """The parsed video tag header, or None for non-video (or unparsed) messages."""
        header = self.header
        return header if isinstance(header, VideoTag) else None

    @property
    def audio(self) -> AudioTag | None:
        """The parsed audio tag header, or None for non-audio (or unparsed) messages."""
        header = self.header
        return header if isinstance(header, AudioTag) else None

    @property
    def is_keyframe(self) -> bool:
        """True for a video keyframe (not a sequence header)."""
        header = self.header
        return isinstance(header, VideoTag) and header.kind is VideoKind.KEYFRAME

    @property
    def is_sequence_header(self) -> bool:
        """True for an audio or video sequence header (decoder configuration)."""
        header = self.header
        if isinstance(header, VideoTag):
            return header.kind is VideoKind.SEQUENCE_HEADER
        if isinstance(header, AudioTag):
            return header.kind is AudioKind.SEQUENCE_HEADER
        return False


def parse_header(type_id: int, payload: bytes) -> VideoTag | AudioTag | None:
    """Parse the tag header of an audio/video payload; None if it does not parse.

    Args:
        type_id: 8 (audio) or 9 (video); anything else gives None.
        payload: the FLV tag body.

    Returns:
        The parsed header, or None.
    """
    try:
        if type_id == MessageType.VIDEO:
            return parse_video_tag(payload)
        if type_id == MessageType.AUDIO:
            return parse_audio_tag(payload)
    except CodecHeaderError as exc:
        logger.debug("< unparsable %s tag header: %s", type_id, exc)
    return None


#: What :meth:`Player.events` yields: media in order with the stream notifications
#: (``onStatus``, and the user control events Stream Begin / Stream EOF, RTMP 1.0 §7.1.7).
PlayEvent = MediaMessage | StatusReceived | StreamBegin | StreamEOF

_END: Final = object()  # end-of-iteration marker in a player's queue


# -- the asyncio adapter ------------------------------------------------------------------------


#: TCP keepalive of client connections (seconds, probes): a peer that vanished without a
#: FIN (power loss, a dropped route) is noticed in about 25 s even when nothing is sent.
_KEEPALIVE = (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))


def _tune_socket(sock: socket.socket | None) -> None:
    """TCP_NODELAY (small command messages go out at once) and TCP keepalive."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in _KEEPALIVE:
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:
        pass  # not TCP (a unix socket), or the platform lacks the option


class _ClientProtocol(asyncio.Protocol):
    """Thin adapter: bytes into the ClientSession, events to the Connection."""

    def __init__(
        self,
        session: ClientSession,
        on_event: Callable[[Event], None],
        on_lost: Callable[[Exception | None], None],
    ) -> None:
        self.session = session
        self.transport: asyncio.Transport | None = None
        self._on_event = on_event
        self._on_lost = on_lost
        loop = asyncio.get_running_loop()
        self.handshake_done: asyncio.Future[None] = loop.create_future()
        self._drain_waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        _tune_socket(transport.get_extra_info("socket"))
        self.session.initiate()
        self.flush()

    def flush(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            self.session.receive_data(data)
        except RemoteProtocolError as exc:
            logger.warning("protocol error from server: %s", exc)
            if self.transport is not None:
                self.transport.abort()
            self._lose(exc)
            return
        self.flush()
        while (event := self.session.next_event()) is not None:
            if isinstance(event, HandshakeComplete):
                if not self.handshake_done.done():
                    self.handshake_done.set_result(None)
            else:
                self._on_event(event)
        self.flush()

    def eof_received(self) -> bool | None:
        self.session.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(exc)

    def _lose(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.session.connection.close()
        if not self.handshake_done.done():
            self.handshake_done.set_exception(
                ClientError(
                    f"connection lost during the handshake: {exc}"
                    if exc
                    else "connection closed during the handshake"
                )
            )
            self.handshake_done.exception()  # mark retrieved: nobody may be waiting
        self._wake_drain()
        self._on_lost(exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        self._drain_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if not self.paused or self.lost:
            return
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        # Shielded: one cancelled writer must not cancel the wait of the others.
        await asyncio.shield(waiter)


# -- the connection -------------------------------------------------------------------------------


class Connection:
    """An RTMP NetConnection. Create with :func:`connect`.

    Attributes:
        url: the parsed URL.
        timeout: seconds to wait for each answer from the server.
        server_properties: the properties object of the connect ``_result``.
        server_info: the info object of the connect ``_result``.
        reconnect_request: the last ``NetConnection.Connect.ReconnectRequest`` the server
            sent (E-RTMP v2), or None. Publishers of this connection follow it (see
            :class:`Publisher`); players stay.
    """

    def __init__(
        self,
        url: RTMPURL,
        timeout: float,
        session: ClientSession | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._options: dict[str, Any] = dict(options or _DEFAULT_OPTIONS)
        self._session = session or ClientSession()
        self._protocol: _ClientProtocol | None = None
        self._pending: dict[float, asyncio.Future[CommandResult]] = {}
        self._status_waiters: dict[int, asyncio.Queue[StatusReceived]] = {}
        self._players: dict[int, Player] = {}
        self._publishers: dict[int, Publisher] = {}
        self._closed = asyncio.get_running_loop().create_future()
        self._closing = False
        self.close_reason: Exception | None = None
        self.server_properties: Mapping[str, Any] = {}
        self.server_info: Mapping[str, Any] = {}
        self.reconnect_request: ReconnectRequested | None = None
        # Connections publishers of this one moved to (closed with it).
        self._moved: list[Connection] = []

    # -- plumbing ----------------------------------------------------------------------

    @property
    def session(self) -> ClientSession:
        """The sans-I/O session (for advanced use)."""
        return self._session

    def _on_event(self, event: Event) -> None:
        if isinstance(event, MediaReceived):
            player = self._players.get(event.stream_id)
            if player is not None:
                player._on_media(event)
        elif isinstance(event, CommandResult):
            future = self._pending.pop(event.transaction_id, None)
            if future is not None and not future.done():
                future.set_result(event)
        elif isinstance(event, StatusReceived):
            logger.debug("< %s %s on stream %d", event.name, event.code, event.stream_id)
            waiter = self._status_waiters.get(event.stream_id)
            if waiter is not None:
                waiter.put_nowait(event)
            player = self._players.get(event.stream_id)
            if player is not None:
                player._on_status(event)
            publisher = self._publishers.get(event.stream_id)
            if publisher is not None:
                publisher.statuses.append(event)
        elif isinstance(event, MetadataReceived):
            player = self._players.get(event.stream_id)
            if player is not None:
                player._put(
                    MediaMessage(
                        type_id=MessageType.DATA_AMF0,
                        timestamp_ms=event.timestamp_ms,
                        payload=b"",
                        metadata=event.metadata,
                    )
                )
        elif isinstance(event, DataReceived):
            player = self._players.get(event.stream_id)
            if player is not None and event.data.name not in _PLUMBING_DATA:
                message = event.message
                player._put(
                    MediaMessage(
                        type_id=message.type_id,
                        timestamp_ms=message.timestamp_ms,
                        payload=message.payload,
                        data=event.data,
                    )
                )
        elif isinstance(event, ControlReceived):
            control = event.control
            if isinstance(control, StreamBegin | StreamEOF):
                player = self._players.get(control.stream_id)
                if player is not None:
                    player._on_control(control)
        elif isinstance(event, ReconnectRequested):
            logger.info("< reconnect request to %s: %s", event.tc_url, event.description or "-")
            self.reconnect_request = event
            if self._options["follow_reconnect"]:
                for publisher in list(self._publishers.values()):
                    publisher._reconnect_requested(event.tc_url)

    def _on_lost(self, exc: Exception | None) -> None:
        if self._closed.done():
            return
        self.close_reason = exc
        error = ClientError(f"connection lost: {exc}" if exc else "connection closed by the server")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        # A player's stream ends normally only when we closed the connection ourselves.
        for player in list(self._players.values()):
            player._end(None if self._closing and exc is None else error)
        self._closed.set_result(None)

    async def _wait(self, what: str, awaitable: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except TimeoutError:
            raise ClientTimeoutError(f"no answer to {what} within {self.timeout:g} s") from None

    def _send(self, send: Callable[[], Any]) -> Any:
        """Run a session send method; a closed connection is a :class:`ClientError`."""
        if self._closed.done():
            raise ClientError("connection is closed")
        try:
            result = send()
        except LocalProtocolError as exc:
            raise ClientError(f"cannot send: {exc}") from exc
        self._flush()
        return result

    async def _call(self, what: str, send: Callable[[], float]) -> CommandResult:
        tid: float = self._send(send)
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[tid] = future
        try:
            result: CommandResult = await self._wait(what, future)
        finally:
            self._pending.pop(tid, None)
        return result

    async def _await_status(self, stream_id: int, what: str, success: str) -> StatusReceived:
        """Wait for ``success`` on ``stream_id``; an error-level status is a rejection."""
        queue = self._status_waiters.setdefault(stream_id, asyncio.Queue())

        async def wait() -> StatusReceived:
            while True:
                status = await queue.get()
                if status.code == success:
                    return status
                if status.level == "error" or status.code in _END_CODES:
                    raise RejectedError(status.code, status.description)

        closed = asyncio.ensure_future(asyncio.shield(self._closed))
        waiter = asyncio.ensure_future(wait())
        try:
            done, _ = await self._wait(
                what, asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
            )
        finally:
            closed.cancel()
            if not waiter.done():
                waiter.cancel()
            self._status_waiters.pop(stream_id, None)
        if waiter in done:
            result: StatusReceived = waiter.result()
            return result
        raise ClientError(f"connection closed while waiting for {what}")

    def _flush(self) -> None:
        if self._protocol is not None:
            self._protocol.flush()

    async def _drain(self) -> None:
        if self._protocol is not None:
            await self._protocol.drain()
        if self._closed.done():
            raise ClientError(
                f"connection lost: {self.close_reason}"
                if self.close_reason
                else "connection closed by the server"
            )

    def _pause_reading(self, paused: bool) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            transport = self._protocol.transport
            if transport.is_closing():
                return
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    # -- NetConnection ------------------------------------------------------------------

    async def _open(
        self, ssl: ssl_module.SSLContext | None, properties: Mapping[str, Any] | None
    ) -> None:
        loop = asyncio.get_running_loop()
        if ssl is None and self.url.scheme == "rtmps":
            ssl = ssl_module.create_default_context()

        def factory() -> _ClientProtocol:
            return _ClientProtocol(self._session, self._on_event, self._on_lost)

        try:
            if self.url.unix_path:
                _, protocol = await self._wait(
                    "unix socket connect",
                    loop.create_unix_connection(factory, self.url.unix_path),
                )
            else:
                _, protocol = await self._wait(
                    "TCP connect",
                    loop.create_connection(
                        factory,
                        self.url.host,
                        self.url.port,
                        ssl=ssl,
                        server_hostname=self.url.host if ssl is not None else None,
                    ),
                )
        except OSError as exc:
            where = self.url.unix_path or f"{self.url.host}:{self.url.port}"
            raise ClientError(f"cannot connect to {where}: {exc}") from exc
        self._protocol = protocol
        # RTMP 1.0 §5.2: "the client MUST wait until S1 has been received before sending any
        # other data" — connect goes out once S0+S1+S2 are in.
        await self._wait("the handshake", asyncio.shield(protocol.handshake_done))
        result = await self._call(
            "connect",
            lambda: self.session.connect(self.url.app, self.url.tc_url, properties=properties),
        )
        if not result.success:
            info = result.info
            raise RejectedError(
                str(info.get("code", NetStatusCode.CONNECT_REJECTED)),
                str(info.get("description", "")),
            )
        self.server_properties = (
            result.command_object if isinstance(result.command_object, Mapping) else {}
        )
        self.server_info = result.info

    async def get_stream_length(self, name: str | None = None) -> float:
        """``getStreamLength``: the duration of a recorded stream, seconds (0: live or
        unknown).

        Raises:
            ClientTimeoutError: no answer in time.
            ClientError: the connection is closed.
        """
        name = name if name is not None else self.url.stream
        result = await self._call(
            "getStreamLength", lambda: self.session.get_stream_length(name or "")
        )
        value = result.arguments[0] if result.success and result.arguments else 0.0
        return float(value) if isinstance(value, int | float) else 0.0

    async def create_stream(self) -> int:
        """``createStream`` (RTMP 1.0 §7.2.1.3); returns the NetStream msid.

        Raises:
            RejectedError: the server answered ``_error``.
            ClientTimeoutError: no answer in time.
            ClientError: the connection is closed.
        """
        result = await self._call("createStream", self.session.create_stream)
        if not result.success or not result.arguments:
            raise RejectedError(
                str(result.info.get("code", "NetConnection.Call.Failed")),
                str(result.info.get("description", "createStream failed")),
            )
        stream_id = result.arguments[0]
        if not isinstance(stream_id, int | float) or not 0 < stream_id < 2**32:
            raise ClientError(f"createStream answered an invalid stream id {stream_id!r}")
        return int(stream_id)

    async def publish(self, name: str | None = None, publish_type: str = "live") -> Publisher:
        """Start publishing ``name`` (default: the stream name in the URL).

        Sends releaseStream, FCPublish, createStream, publish (RTMP 1.0 §7.2.2.6), as FFmpeg
        and OBS do, and waits for ``NetStream.Publish.Start``.

        Args:
            name: the stream name; a query string (``cam?key=x``) is sent as is.
            publish_type: ``live``, ``record`` or ``append``.

        Returns:
            The :class:`Publisher`.

        Raises:
            RejectedError: e.g. ``NetStream.Publish.BadName`` (name in use, bad key).
            ClientTimeoutError: no answer in time.
            ClientError: no stream name, or the connection is closed.
        """
        name = name if name is not None else self.url.stream
        if not name:
            raise ClientError("no stream name to publish")
        publisher = Publisher(self, 0, name, publish_type)
        publisher.stream_id = await self._start_publish(publisher)
        return publisher

    async def _start_publish(self, publisher: Publisher) -> int:
        """releaseStream/FCPublish, createStream, publish; the NetStream's msid once
        ``NetStream.Publish.Start`` arrived (statuses go to ``publisher`` meanwhile)."""
        name = publisher.name
        self._send(lambda: self.session.release_stream(name))
        stream_id = await self.create_stream()
        self._publishers[stream_id] = publisher
        try:
            self._send(lambda: self.session.publish(stream_id, name, publisher.publish_type))
            await self._await_status(stream_id, "publish", NetStatusCode.PUBLISH_START)
        except BaseException:
            self._publishers.pop(stream_id, None)
            raise
        return stream_id

    async def _follow(self, tc_url: str) -> Connection:
        """A new connection to ``tc_url`` with this one's options (a ReconnectRequest)."""
        conn = Connection(_moved_url(self.url, tc_url), self.timeout, options=self._options)
        try:
            await conn._open_with_options()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _open_with_options(self) -> None:
        options = self._options
        self._session = ClientSession(
            digest_handshake=options["digest_handshake"], chunk_size=options["chunk_size"]
        )
        properties = dict(options["properties"] or {})
        if not options["follow_reconnect"] and "capsEx" not in properties:
            # Only announce what we do (E-RTMP v2: capsEx states the client's support).
            caps = int(CLIENT_ENHANCED_RTMP_PROPERTIES["capsEx"]) & ~CapsExMask.RECONNECT
            properties["capsEx"] = float(caps)
        await self._open(options["ssl"], properties)

    async def play(
        self,
        name: str | None = None,
        *,
        start_ms: float = -2.0,
        duration_ms: float = -1.0,
        queue_size: int = 1024,
        stop_on_unpublish: bool = True,
        idle_timeout_s: float | None = None,
        parse_headers: bool = True,
        buffer_ms: int = 1000,
    ) -> Player:
        """Start playing ``name`` (default: the stream name in the URL).

        Sends createStream, Set Buffer Length and play (RTMP 1.0 §7.2.2.1), and waits for
        ``NetStream.Play.Start``.

        Args:
            name: the stream name (query string allowed).
            start_ms: -2 (live or recorded), -1 (live only), ≥ 0 (recorded from ms).
            duration_ms: how much of a recorded stream to play (ms; -1: to its end).
            queue_size: messages buffered before reading from the socket pauses.
            stop_on_unpublish: end the iteration when the publisher leaves
                (``NetStream.Play.UnpublishNotify``, ``Play.Stop`` or Stream EOF), as FFmpeg
                does. When False the player waits for a republish.
            idle_timeout_s: raise :class:`ClientTimeoutError` from the iteration when
                nothing arrives for that long (seconds); None waits forever.
            parse_headers: parse each audio/video tag header into ``MediaMessage.header``.
            buffer_ms: the Set Buffer Length sent before play (ms).

        Returns:
            The :class:`Player`, an async iterator of :class:`MediaMessage`.

        Raises:
            RejectedError: e.g. ``NetStream.Play.StreamNotFound``, ``NetStream.Play.Failed``.
            ClientTimeoutError: no answer in time.
            ClientError: no stream name, or the connection is closed.
        """
        name = name if name is not None else self.url.stream
        if not name:
            raise ClientError("no stream name to play")
        stream_id = await self.create_stream()
        player = Player(
            self,
            stream_id,
            name,
            queue_size=queue_size,
            stop_on_unpublish=stop_on_unpublish,
            idle_timeout_s=idle_timeout_s,
            parse_headers=parse_headers,
        )
        self._players[stream_id] = player
        try:
            self._send(
                lambda: self.session.play(
                    stream_id, name, start_ms=start_ms, duration_ms=duration_ms, buffer_ms=buffer_ms
                )
            )
            await self._await_status(stream_id, "play", NetStatusCode.PLAY_START)
        except BaseException:
            self._players.pop(stream_id, None)
            raise
        player.started = True
        return player

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed.done()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side)."""
        await asyncio.shield(self._closed)

    async def close(self) -> None:
        """Close the connection (idempotent); players end, pending calls fail.

        Connections its publishers moved to (following a ReconnectRequest) close too.
        """
        await self._close_own()
        for moved in self._moved:
            await moved.close()

    async def _close_own(self) -> None:
        self._closing = True
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None and not protocol.lost:
            protocol.flush()
            protocol.transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), 2.0)
            except TimeoutError:
                protocol.transport.abort()
        if not self._closed.done():
            self._on_lost(None)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


# -- publishing ----------------------------------------------------------------------------------


class Publisher:
    """A publishing NetStream. Timestamps are in ms; payloads are FLV tag bodies.

    The ``send_*`` coroutines queue one message, write it, and wait while the socket's
    write buffer is full (backpressure). :meth:`write` + :meth:`drain` do the same for
    many messages at once.

    **Following a ReconnectRequest** (E-RTMP v2, "Reconnect Request"; on unless the
    connection was made with ``follow_reconnect=False``): when the server sends
    ``NetConnection.Connect.ReconnectRequest``, the publisher "persists in streaming ... up
    to the next appropriate media boundary, such as a keyframe": from the next video
    keyframe on (the next message for a stream without video; any message once
    :data:`MOVE_WAIT_S` passed) messages are held, and the next :meth:`drain` connects to
    the given tcUrl, publishes the same name, sends the last metadata and configuration
    (sequence headers) and the held messages there, then unpublishes from the old server
    and closes the old connection if nothing else uses it. The server's players see the
    stream go on from that keyframe. :attr:`connection` is then the new connection (it is
    closed with the original one, or by :meth:`close`). If the new server cannot be
    reached, publishing goes on where it was.

    Attributes:
        connection: the :class:`Connection` publishing now.
        stream_id: the NetStream msid.
        name: the published name.
        publish_type: ``live``, ``record`` or ``append``.
        statuses: ``onStatus`` notifications received on this NetStream.
        bytes_sent: payload bytes queued so far.
        moves: how many ReconnectRequests it followed.
    """

    def __init__(
        self, connection: Connection, stream_id: int, name: str, publish_type: str = "live"
    ) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.name = name
        self.publish_type = publish_type
        self.statuses: list[StatusReceived] = []
        self.bytes_sent = 0
        self.moves = 0
        # What a new server needs before the held keyframe: onMetaData, configuration.
        self._metadata: bytes | None = None
        self._configs: dict[tuple[int, int, tuple[int, ...]], tuple[int, bytes]] = {}
        self._has_video = False
        self._move_to: str | None = None  # tcUrl of a pending ReconnectRequest
        self._move_requested_s = 0.0
        self._held: list[tuple[int, int, bytes]] | None = None
        self._moving = False
        self._owns_connection = False

    async def send_metadata(self, metadata: Mapping[str, Any], timestamp_ms: int = 0) -> None:
        """Send ``@setDataFrame onMetaData {metadata}`` (what encoders send first).

        Args:
            metadata: AMF0-encodable properties (``width``, ``height``, ``framerate``...).
            timestamp_ms: message timestamp in ms.

        Raises:
            ClientError: the connection is closed.
            AMFEncodeError: a value cannot be encoded.
        """
        body = amf0.encode("onMetaData", amf0.ECMAArray(metadata))
        self.write(MessageType.DATA_AMF0, timestamp_ms, body)
        await self.drain()

    async def send_audio(self, timestamp_ms: int, payload: bytes) -> None:
        """Send one audio message (AUDIODATA: tag header + data, FLV v10.1 E.4.2).

        Raises:
            ClientError: the connection is closed.
        """
        self.write(MessageType.AUDIO, timestamp_ms, payload)
        await self.drain()

    async def send_video(self, timestamp_ms: int, payload: bytes) -> None:
        """Send one video message (VIDEODATA: tag header + data, FLV v10.1 E.4.3).

        Raises:
            ClientError: the connection is closed.
        """
        self.write(MessageType.VIDEO, timestamp_ms, payload)
        await self.drain()

    async def send_data(self, timestamp_ms: int, name: str, *values: Any) -> None:
        """Send a data message ``name, *values`` (``onCuePoint``, ``onFI``, ``onTextData``).

        Raises:
            ClientError: the connection is closed.
            AMFEncodeError: a value cannot be encoded.
        """
        self.write(MessageType.DATA_AMF0, timestamp_ms, amf0.encode(name, *values))
        await self.drain()

    async def send_flv_tag(self, tag_type: int, timestamp_ms: int, payload: bytes) -> None:
        """Send an FLV tag (8 audio, 9 video, 18 script data) as the matching message.

        A script tag holding ``onMetaData`` is sent as ``@setDataFrame onMetaData``, as
        FFmpeg's RTMP muxer does, so servers keep it for late players.

        Args:
            tag_type: the FLV ``TagType`` (FLV v10.1 E.4.1), equal to the RTMP type id.
            timestamp_ms: the tag timestamp in ms.
            payload: the tag body.

        Raises:
            ClientError: an unsupported tag type, or the connection is closed.
        """
        self.write(tag_type, timestamp_ms, payload)
        await self.drain()

    def write(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Queue one message (8, 9 or 18) for sending without waiting (see :meth:`drain`).

        Args:
            type_id: 8 (audio), 9 (video) or 18 (AMF0 data; ``onMetaData`` bodies get the
                ``@setDataFrame`` prefix).
            timestamp_ms: the message timestamp in ms (wraps at 2**32).
            payload: the message body.

        Raises:
            ClientError: an unsupported type, or the connection is closed.
        """
        if self.connection.closed:
            raise ClientError("connection is closed")
        if type_id not in _PUBLISHED_TYPES:
            raise ClientError(f"unsupported FLV tag type {type_id}")
        boundary = self._remember(type_id, payload)
        if self._move_to is not None and self._held is None:
            # E-RTMP v2: stream to the current server "up to the next appropriate media
            # boundary, such as a keyframe", then move.
            if boundary or time.monotonic() - self._move_requested_s > MOVE_WAIT_S:
                self._held = []
        if self._held is not None:
            self._held.append((type_id, timestamp_ms, payload))
            self.bytes_sent += len(payload)
            return
        self._send_message(type_id, timestamp_ms, payload)
        self.bytes_sent += len(payload)

    def _send_message(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        session = self.connection.session
        timestamp_ms &= 0xFFFFFFFF
        # Not flushed here: drain() writes everything queued in one transport.write.
        try:
            if type_id == MessageType.AUDIO or type_id == MessageType.VIDEO:
                session.send_media(self.stream_id, type_id, timestamp_ms, payload)
            else:
                if payload.startswith(_ON_METADATA):
                    payload = _SET_DATA_FRAME + payload
                session.send_message(
                    Message(
                        type_id=type_id,
                        timestamp_ms=timestamp_ms,
                        message_stream_id=self.stream_id,
                        payload=payload,
                        chunk_stream_id=ChunkStreamId.DATA,
                    )
                )
        except LocalProtocolError as exc:
            raise ClientError(f"cannot send: {exc}") from exc

    def _remember(self, type_id: int, payload: bytes) -> bool:
        """Keep what a new server needs first; return True at a media boundary."""
        if type_id == MessageType.VIDEO:
            self._has_video = True
            kind = classify_video(payload)
            if kind is VideoKind.KEYFRAME:
                return True
            if kind is VideoKind.SEQUENCE_HEADER or kind is VideoKind.METADATA:
                self._configs[config_key(type_id, payload)] = (type_id, payload)
            return False
        if type_id == MessageType.AUDIO:
            kind_a = classify_audio(payload)
            if kind_a is AudioKind.SEQUENCE_HEADER or kind_a is AudioKind.MULTICHANNEL_CONFIG:
                self._configs[config_key(type_id, payload)] = (type_id, payload)
                return False
            return not self._has_video
        if payload.startswith(_ON_METADATA):
            self._metadata = payload
            return False
        return not self._has_video

    def _reconnect_requested(self, tc_url: str) -> None:
        if self._move_to is None and not self._moving:
            self._move_to = tc_url
            self._move_requested_s = time.monotonic()

    async def drain(self) -> None:
        """Write what is queued and wait while the socket's write buffer is full; move to
        the new server first when a ReconnectRequest reached its boundary.

        Raises:
            ClientError: the connection is closed.
        """
        if self._held is not None and not self._moving:
            await self._move()
        self.connection._flush()
        await self.connection._drain()

    async def _move(self) -> None:
        """Follow the ReconnectRequest: publish on a new connection from the held
        keyframe on, then leave the old one (E-RTMP v2, "Message Flow When Handling
        NetConnection.Connect.ReconnectRequest")."""
        old = self.connection
        target = self._move_to or old.url.tc_url
        self._moving = True
        try:
            moved = await self._publish_at(target)
            held, self._held = self._held or [], None
            self._move_to = None
            if moved is None:
                for message in held:  # stay: what was held goes where it was going
                    self._send_message(*message)
                return
            new, stream_id = moved
            old_stream_id = self.stream_id
            old._publishers.pop(old_stream_id, None)
            old._moved.append(new)
            self.connection, self.stream_id = new, stream_id
            self._owns_connection = True
            self.moves += 1
            # The new server's stream starts here: metadata and configuration first.
            start_ms = held[0][1] if held else 0
            if self._metadata is not None:
                self._send_message(MessageType.DATA_AMF0, start_ms, self._metadata)
            for type_id, payload in self._configs.values():
                self._send_message(type_id, start_ms, payload)
            for message in held:
                self._send_message(*message)
            new._flush()
            logger.info("publish %s moved to %s", self.name, target)
            await self._leave(old, old_stream_id)
        finally:
            self._moving = False

    async def _publish_at(self, tc_url: str) -> tuple[Connection, int] | None:
        """Connect to ``tc_url`` and publish this name there; None if that fails."""
        try:
            new = await self.connection._follow(tc_url)
        except (ClientError, OSError) as exc:
            logger.warning("cannot follow the reconnect request to %s: %s", tc_url, exc)
            return None
        try:
            stream_id = await new._start_publish(self)
        except (ClientError, OSError) as exc:
            logger.warning("cannot publish %s at %s: %s", self.name, tc_url, exc)
            await new.close()
            return None
        except BaseException:
            await new.close()
            raise
        return new, stream_id

    async def _leave(self, old: Connection, stream_id: int) -> None:
        """Unpublish from the old server; close the old connection if nothing else uses it
        ("it establishes a connection with a new server and disconnects from the old
        server")."""
        if old.closed:
            return
        try:
            old._send(lambda: old.session.fc_unpublish(self.name))
            old._send(lambda: old.session.delete_stream(stream_id))
        except ClientError:
            return
        if not old._publishers and not old._players:
            await old._close_own()

    async def close(self) -> None:
        """Stop publishing (FCUnpublish + deleteStream). The connection stays open, unless
        the publisher moved to it following a ReconnectRequest (then it closes)."""
        connection = self.connection
        connection._publishers.pop(self.stream_id, None)
        if connection.closed:
            return
        session = connection.session
        connection._send(lambda: session.fc_unpublish(self.name))
        connection._send(lambda: session.delete_stream(self.stream_id))
        if self._owns_connection:
            await connection._close_own()


# -- playing ------------------------------------------------------------------------------------


class Player:
    """A playing NetStream: an async iterator of :class:`MediaMessage`.

    ``async for message in player`` yields media and data messages;
    ``async for event in player.events()`` also yields the stream notifications
    (:data:`PlayEvent`) in order with the media. Only one consumer may iterate.

    Attributes:
        connection: the :class:`Connection`.
        stream_id: the NetStream msid.
        name: the played name.
        statuses: every ``onStatus`` notification received on this NetStream.
        started: True once ``NetStream.Play.Start`` was received.
        ended: True once the iteration will end (or has ended).
        idle_timeout_s: the iteration raises :class:`ClientTimeoutError` when nothing
            arrives for this long (seconds); None waits forever. May be changed while
            iterating (a relay only expects media once the remote stream is live).
    """

    def __init__(
        self,
        connection: Connection,
        stream_id: int,
        name: str,
        queue_size: int = 1024,
        stop_on_unpublish: bool = True,
        *,
        idle_timeout_s: float | None = None,
        parse_headers: bool = True,
    ) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.name = name
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue_size = max(1, queue_size)
        self._stop_on_unpublish = stop_on_unpublish
        self.idle_timeout_s = idle_timeout_s
        self._parse_headers = parse_headers
        self._paused_reading = False
        self.statuses: list[StatusReceived] = []
        self.started = False
        self.ended = False
        # A seek or a pause makes the server send Stream EOF (then Stream Begin): it does
        # not end the iteration.
        self._interrupted = False

    # -- from the connection (synchronous, in arrival order) ----------------------------

    def _put(self, item: Any) -> None:
        if self.ended:
            return
        self._queue.put_nowait(item)
        if not self._paused_reading and self._queue.qsize() >= self._queue_size:
            self._paused_reading = True
            self.connection._pause_reading(True)

    def _on_media(self, event: MediaReceived) -> None:
        type_id = event.type_id
        payload = event.payload
        self._put(
            MediaMessage(
                type_id=type_id,
                timestamp_ms=event.timestamp_ms,
                payload=payload,
                header=parse_header(type_id, payload) if self._parse_headers else None,
            )
        )

    def _on_status(self, status: StatusReceived) -> None:
        self.statuses.append(status)
        self._put(status)
        if status.code == NetStatusCode.PLAY_START:
            # Here, not when play() resumes: a short recorded play may bring Play.Start,
            # its media, Play.Stop and Stream EOF in the same read.
            self.started = True
        if self._stop_on_unpublish and self.started and status.code in _END_CODES:
            self._end(None)

    def _on_control(self, control: StreamBegin | StreamEOF) -> None:
        self._put(control)
        if isinstance(control, StreamBegin):
            self._interrupted = False
        # nginx-rtmp sends Stream EOF alone (no UnpublishNotify unless publish_notify is on).
        elif self._stop_on_unpublish and self.started and not self._interrupted:
            self._end(None)

    def _end(self, error: BaseException | None) -> None:
        if not self.ended:
            self._queue.put_nowait(error if error is not None else _END)
            self.ended = True

    # -- consumer side ------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Items received and not yet iterated (0: the next one is still on the wire)."""
        return self._queue.qsize()

    async def _next(self) -> Any:
        queue = self._queue
        if queue.empty():
            if self.idle_timeout_s is None:
                item = await queue.get()
            else:
                try:
                    item = await asyncio.wait_for(queue.get(), self.idle_timeout_s)
                except TimeoutError:
                    raise ClientTimeoutError(
                        f"nothing received on {self.name!r} for {self.idle_timeout_s:g} s"
                    ) from None
        else:
            item = queue.get_nowait()
        if self._paused_reading and queue.qsize() <= self._queue_size // 2:
            self._paused_reading = False
            self.connection._pause_reading(False)
        return item

    async def events(self) -> AsyncIterator[PlayEvent]:
        """Yield media messages and stream notifications in arrival order.

        Raises:
            ClientError: the connection was lost.
            ClientTimeoutError: nothing arrived within ``idle_timeout_s``.
        """
        while True:
            item = await self._next()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def __aiter__(self) -> AsyncIterator[MediaMessage]:
        return self._media()

    async def _media(self) -> AsyncIterator[MediaMessage]:
        async for item in self.events():
            if isinstance(item, MediaMessage):
                yield item

    # -- recorded streams ---------------------------------------------------------------

    def seek(self, position_ms: float) -> None:
        """Ask the server to play from ``position_ms`` (RTMP 1.0 §7.2.2.7): it answers
        ``NetStream.Seek.Notify`` (seen in :meth:`events`) and sends media from the
        keyframe at or before the position. Live streams answer ``NetStream.Seek.Failed``.

        Raises:
            ClientError: the connection is closed.
        """
        self._interrupted = True
        self.connection._send(lambda: self.connection.session.seek(self.stream_id, position_ms))

    def pause(self, position_ms: float = 0.0) -> None:
        """Pause a recorded stream (``pause`` true, RTMP 1.0 §7.2.2.8); the server stops
        sending until :meth:`resume`.

        Raises:
            ClientError: the connection is closed.
        """
        self._interrupted = True
        self.connection._send(
            lambda: self.connection.session.pause(self.stream_id, True, position_ms)
        )

    def resume(self, position_ms: float = 0.0) -> None:
        """Resume after :meth:`pause` (``pause`` false).

        Raises:
            ClientError: the connection is closed.
        """
        self.connection._send(
            lambda: self.connection.session.pause(self.stream_id, False, position_ms)
        )

    async def close(self) -> None:
        """Stop playing (deleteStream); the connection stays open; the iteration ends."""
        self.connection._players.pop(self.stream_id, None)
        if not self.connection.closed:
            self.connection._send(lambda: self.connection.session.delete_stream(self.stream_id))
        self._end(None)


# -- connect ------------------------------------------------------------------------------------


class _Connector:
    """``await connect(...)`` or ``async with connect(...) as conn``."""

    def __init__(self, url: str, timeout: float, options: dict[str, Any]) -> None:
        self._url = url
        self._timeout = timeout
        self._options = options
        self._conn: Connection | None = None

    async def _connect(self) -> Connection:
        conn = Connection(parse_url(self._url), self._timeout, options=self._options)
        try:
            await conn._open_with_options()
        except BaseException:
            await conn.close()
            raise
        return conn

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await self._connect()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            await self._conn.close()


def connect(
    url: str,
    *,
    timeout: float = 10.0,
    ssl: ssl_module.SSLContext | None = None,
    properties: Mapping[str, Any] | None = None,
    digest_handshake: bool = True,
    chunk_size: int = 4096,
    follow_reconnect: bool = True,
) -> _Connector:
    """Open an RTMP connection: TCP (or TLS for rtmps://, or a unix socket for
    rtmp+unix://), handshake, ``connect``.

    RTMP 1.0 §5.2 (handshake; the FP9 digest variant by default, as FFmpeg, OBS and
    librtmp send it) and §7.2.1.1 (connect).

    Args:
        url: ``rtmp[s]://host[:port]/app[/stream][?query]``; see :func:`parse_url` for
            where the query string goes.
        timeout: seconds to wait for each step (TCP connect, handshake, connect,
            createStream, publish/play answers).
        ssl: TLS context for rtmps:// (default: the system trust store).
        properties: extra or overriding ``connect`` properties (``flashVer``...).
        digest_handshake: False for the simple (RTMP 1.0) handshake.
        chunk_size: our outgoing chunk size in bytes (sent before ``connect``).
        follow_reconnect: announce ``capsEx`` Reconnect and let publishers follow a
            ``NetConnection.Connect.ReconnectRequest`` (E-RTMP v2): at their next keyframe
            they publish on a new connection to the given tcUrl and leave this one
            (:class:`Publisher`). False: neither announced nor followed.

    Returns:
        An awaitable and async context manager giving a :class:`Connection`.

    Raises (when awaited):
        ClientError: bad URL, TCP failure, connection lost.
        RejectedError: the server refused (``NetConnection.Connect.Rejected``...).
        ClientTimeoutError: no answer within ``timeout``.
    """
    return _Connector(
        url,
        timeout,
        {
            "ssl": ssl,
            "properties": properties,
            "digest_handshake": digest_handshake,
            "chunk_size": chunk_size,
            "follow_reconnect": follow_reconnect,
        },
    )


_DEFAULT_OPTIONS: Final[Mapping[str, Any]] = {
    "ssl": None,
    "properties": None,
    "digest_handshake": True,
    "chunk_size": 4096,
    "follow_reconnect": True,
}


# -- reconnecting -------------------------------------------------------------------------------


class Backoff:
    """Exponential backoff with jitter for reconnect loops.

    Args:
        initial_s: the first delay in seconds.
        max_s: the cap in seconds.
        factor: the growth factor per failure.
        jitter: the random fraction added or removed (0.1 = ±10 %).
    """

    def __init__(
        self,
        initial_s: float = 0.5,
        max_s: float = 10.0,
        factor: float = 2.0,
        jitter: float = 0.1,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (seconds); counts one failure."""
        base = min(self.max_s, self.initial_s * self.factor**self.failures)
        self.failures += 1
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        """Back to ``initial_s`` (after a connection that worked)."""
        self.failures = 0


async def reconnecting(
    url: str,
    *,
    timeout: float = 10.0,
    backoff: Backoff | None = None,
    stable_s: float = 10.0,
    retry_rejected: bool = False,
    on_error: Callable[[Exception, float], None] | None = None,
    **connect_options: Any,
) -> AsyncGenerator[Connection, None]:
    """Yield a connected :class:`Connection`, again and again, with backoff in between.

    ::

        async for conn in aiortmp.client.reconnecting(url):
            try:
                publisher = await conn.publish()
                ...
            except aiortmp.client.ClientError:
                continue  # reconnects after a backoff delay

    The previous connection is closed when the loop asks for the next one. The delay grows
    after each failed attempt and after connections that lasted less than ``stable_s``;
    it starts again from the beginning after a connection that lasted longer.

    Args:
        url: as for :func:`connect`.
        timeout: as for :func:`connect`.
        backoff: the delays (default: 0.5 s doubling up to 10 s).
        stable_s: a connection that lived this long (seconds) resets the backoff.
        retry_rejected: also retry when ``connect`` is rejected (else the
            :class:`RejectedError` propagates: a bad key does not get better by retrying).
        on_error: called with each connection error and the delay before the next try.
        **connect_options: passed to :func:`connect`.

    Yields:
        Connected connections.

    Raises:
        RejectedError: ``connect`` was rejected and ``retry_rejected`` is False.
    """
    backoff = backoff or Backoff()
    while True:
        error: Exception | None = None
        try:
            conn = await connect(url, timeout=timeout, **connect_options)
        except RejectedError as exc:
            if not retry_rejected:
                raise
            error = exc
        except ClientError as exc:
            error = exc
        else:
            started = time.monotonic()
            try:
                yield conn
            finally:
                await conn.close()
            if time.monotonic() - started >= stable_s:
                backoff.reset()
        delay = backoff.next_delay()
        if error is not None:
            # Without the query string: it may carry keys or tokens.
            logger.info(
                "connecting to %s failed: %s; retrying in %.1f s",
                url.partition("?")[0],
                error,
                delay,
            )
            if on_error is not None:
                on_error(error, delay)
        await asyncio.sleep(delay)
