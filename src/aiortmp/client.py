"""The asyncio RTMP client: publish and play from Python, on the same sans-I/O core.

::

    async with aiortmp.connect("rtmp://127.0.0.1/live", timeout=10) as conn:
        publisher = await conn.publish("cam")
        await publisher.send_metadata({"width": 1280.0, "height": 720.0})
        await publisher.send_video(0, video_tag_body)

    async with aiortmp.connect("rtmp://127.0.0.1/live") as conn:
        async for message in await conn.play("cam"):
            print(message.type_id, message.timestamp_ms, len(message.payload))
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

from .media.tags import AudioTag, VideoTag, parse_audio_tag, parse_video_tag
from .protocol.control import StreamEOF
from .protocol.errors import RemoteProtocolError, RTMPError
from .protocol.events import (
    CommandResult,
    ControlReceived,
    DataReceived,
    Event,
    MediaReceived,
    MetadataReceived,
    StatusReceived,
)
from .protocol.messages import MessageType
from .protocol.session import ClientSession

__all__ = [
    "ClientError",
    "ClientTimeoutError",
    "Connection",
    "MediaMessage",
    "Player",
    "Publisher",
    "RTMPURL",
    "RejectedError",
    "connect",
    "parse_url",
]

logger = logging.getLogger("aiortmp.client")

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443}


class ClientError(RTMPError):
    """The client could not do what was asked (connection lost, bad URL...)."""


class RejectedError(ClientError):
    """The server refused connect, publish or play.

    Attributes:
        code: the NetStatus code (``NetConnection.Connect.Rejected``,
            ``NetStream.Publish.BadName``...).
        description: the server's description.
    """

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


class ClientTimeoutError(ClientError, TimeoutError):
    """The server did not answer within the timeout."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RTMPURL:
    """A parsed ``rtmp[s]://host[:port]/app[/stream][?query]`` URL.

    Attributes:
        scheme: ``rtmp`` or ``rtmps``.
        host: host name or address.
        port: TCP port (1935 for rtmp, 443 for rtmps by default).
        app: the application (first path segment), with the query string if any.
        stream: the rest of the path (the stream name), or "".
        tc_url: ``scheme://host:port/app`` as sent in ``connect``.
    """

    scheme: str
    host: str
    port: int
    app: str
    stream: str
    tc_url: str


def parse_url(url: str) -> RTMPURL:
    """Parse an RTMP URL; the app is the first path segment, as in nginx-rtmp.

    The query string is attached to the app (for ``connect``) and to the stream name (for
    ``publish``/``play``), where servers look for tokens.

    Raises:
        ClientError: not an rtmp:// or rtmps:// URL, or no app.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ClientError(f"not an rtmp:// or rtmps:// URL: {url!r}")
    host = parts.hostname or ""
    if not host:
        raise ClientError(f"no host in {url!r}")
    port = parts.port or DEFAULT_PORTS[scheme]
    path = parts.path.lstrip("/")
    app, _, stream = path.partition("/")
    if not app:
        raise ClientError(f"no application in {url!r}")
    query = f"?{parts.query}" if parts.query else ""
    host_text = f"[{host}]" if ":" in host else host
    return RTMPURL(
        scheme=scheme,
        host=host,
        port=port,
        app=app + (query if not stream else ""),
        stream=stream + query if stream else "",
        tc_url=f"{scheme}://{host_text}:{port}/{app}",
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaMessage:
    """One message received while playing.

    Attributes:
        type_id: 8 (audio), 9 (video) or 18 (data: ``metadata`` is set).
        timestamp_ms: the message timestamp in ms.
        payload: the FLV tag body (audio/video) or the AMF0 body (data).
        metadata: the ``onMetaData`` properties for a metadata message, else None.
    """

    type_id: int
    timestamp_ms: int
    payload: bytes
    metadata: Mapping[str, Any] | None = None

    @property
    def video(self) -> VideoTag | None:
        """The parsed video tag header (legacy or E-RTMP), or None for non-video.

        Raises:
            CodecHeaderError: the payload is not a valid VIDEODATA body.
        """
        return parse_video_tag(self.payload) if self.type_id == MessageType.VIDEO else None

    @property
    def audio(self) -> AudioTag | None:
        """The parsed audio tag header (legacy or E-RTMP), or None for non-audio.

        Raises:
            CodecHeaderError: the payload is not a valid AUDIODATA body.
        """
        return parse_audio_tag(self.payload) if self.type_id == MessageType.AUDIO else None


class _ClientProtocol(asyncio.Protocol):
    """Thin adapter: bytes into the ClientSession, events to the Connection."""

    def __init__(
        self, on_event: Callable[[Event], None], on_lost: Callable[[Exception | None], None]
    ) -> None:
        self.session = ClientSession()
        self.transport: asyncio.Transport | None = None
        self._on_event = on_event
        self._on_lost = on_lost
        self._drain_waiter: asyncio.Future[None] | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
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
            self._on_lost(exc)
            return
        self.flush()
        while (event := self.session.next_event()) is not None:
            self._on_event(event)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake_drain()
        self._on_lost(exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._drain_waiter = None

    async def drain(self) -> None:
        if self.paused:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter


class Connection:
    """An RTMP NetConnection. Create with :func:`connect`.

    Attributes:
        url: the parsed URL.
        server_properties: the properties object of the connect ``_result``.
        server_info: the info object of the connect ``_result``.
    """

    def __init__(self, url: RTMPURL, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self._protocol: _ClientProtocol | None = None
        self._pending: dict[float, asyncio.Future[CommandResult]] = {}
        self._status: dict[int, asyncio.Queue[StatusReceived]] = {}
        self._players: dict[int, Player] = {}
        self._closed = asyncio.get_running_loop().create_future()
        self.server_properties: Mapping[str, Any] = {}
        self.server_info: Mapping[str, Any] = {}

    # -- plumbing ----------------------------------------------------------------------

    @property
    def session(self) -> ClientSession:
        """The sans-I/O session (for advanced use)."""
        assert self._protocol is not None
        return self._protocol.session

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CommandResult):
            future = self._pending.pop(event.transaction_id, None)
            if future is not None and not future.done():
                future.set_result(event)
        elif isinstance(event, StatusReceived):
            self._status.setdefault(event.stream_id, asyncio.Queue()).put_nowait(event)
            player = self._players.get(event.stream_id)
            if player is not None:
                player._on_status(event)
        elif isinstance(event, MediaReceived):
            player = self._players.get(event.stream_id)
            if player is not None:
                player._put(
                    MediaMessage(
                        type_id=event.type_id,
                        timestamp_ms=event.timestamp_ms,
                        payload=event.payload,
                    )
                )
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
            pass
        elif isinstance(event, ControlReceived) and isinstance(event.control, StreamEOF):
            player = self._players.get(event.control.stream_id)
            if player is not None:
                player._on_eof()

    def _on_lost(self, exc: Exception | None) -> None:
        error = ClientError(f"connection lost: {exc}" if exc else "connection closed by server")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        for player in self._players.values():
            player._end(error)
        if not self._closed.done():
            self._closed.set_result(None)

    async def _wait(self, what: str, awaitable: Awaitable[Any]) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.timeout)
        except TimeoutError:
            raise ClientTimeoutError(f"no answer to {what} within {self.timeout:g}s") from None

    async def _call(self, what: str, send: Callable[[], float]) -> CommandResult:
        if self._protocol is None or self._closed.done():
            raise ClientError("connection is closed")
        tid = send()
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._pending[tid] = future
        self._protocol.flush()
        result: CommandResult = await self._wait(what, future)
        return result

    async def _await_status(self, stream_id: int, what: str, success: str) -> StatusReceived:
        queue = self._status.setdefault(stream_id, asyncio.Queue())

        async def wait() -> StatusReceived:
            while True:
                status = await queue.get()
                if status.code == success:
                    return status
                if status.level == "error":
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
        if waiter in done:
            result: StatusReceived = waiter.result()
            return result
        raise ClientError(f"connection closed while waiting for {what}")

    # -- NetConnection ------------------------------------------------------------------

    async def _open(
        self, ssl: ssl_module.SSLContext | None, properties: Mapping[str, Any] | None
    ) -> None:
        loop = asyncio.get_running_loop()
        if ssl is None and self.url.scheme == "rtmps":
            ssl = ssl_module.create_default_context()
        try:
            _, protocol = await self._wait(
                "TCP connect",
                loop.create_connection(
                    lambda: _ClientProtocol(self._on_event, self._on_lost),
                    self.url.host,
                    self.url.port,
                    ssl=ssl,
                ),
            )
        except OSError as exc:
            raise ClientError(f"cannot connect to {self.url.host}:{self.url.port}: {exc}") from exc
        self._protocol = protocol
        result = await self._call(
            "connect",
            lambda: self.session.connect(self.url.app, self.url.tc_url, properties=properties),
        )
        if not result.success:
            info = result.info
            await self.close()
            raise RejectedError(
                str(info.get("code", "NetConnection.Connect.Rejected")),
                str(info.get("description", "")),
            )
        self.server_properties = (
            result.command_object if isinstance(result.command_object, Mapping) else {}
        )
        self.server_info = result.info

    async def create_stream(self) -> int:
        """``createStream``; returns the NetStream msid.

        Raises:
            RejectedError: the server answered ``_error``.
            ClientTimeoutError: no answer in time.
        """
        result = await self._call("createStream", self.session.create_stream)
        if not result.success or not result.arguments:
            raise RejectedError(
                str(result.info.get("code", "createStream failed")),
                str(result.info.get("description", "")),
            )
        return int(result.arguments[0])

    async def publish(self, name: str | None = None, publish_type: str = "live") -> Publisher:
        """Start publishing ``name`` (default: the stream name in the URL).

        Sends releaseStream, FCPublish, createStream, publish, and waits for
        ``NetStream.Publish.Start``.

        Raises:
            RejectedError: e.g. ``NetStream.Publish.BadName`` (name in use, bad key).
            ClientTimeoutError: no answer in time.
        """
        name = name if name is not None else self.url.stream
        if not name:
            raise ClientError("no stream name to publish")
        self.session.release_stream(name)
        stream_id = await self.create_stream()
        self.session.publish(stream_id, name, publish_type)
        assert self._protocol is not None
        self._protocol.flush()
        await self._await_status(stream_id, "publish", "NetStream.Publish.Start")
        return Publisher(self, stream_id, name)

    async def play(
        self,
        name: str | None = None,
        *,
        start_ms: float = -2.0,
        queue_size: int = 1024,
        stop_on_unpublish: bool = True,
    ) -> Player:
        """Start playing ``name`` (default: the stream name in the URL).

        Args:
            name: the stream name (query string allowed).
            start_ms: -2 (live or recorded), -1 (live only), ≥ 0 (recorded from ms).
            queue_size: messages buffered before reading from the socket pauses.
            stop_on_unpublish: end the iteration when the publisher leaves
                (``NetStream.Play.UnpublishNotify``), as FFmpeg does.

        Raises:
            RejectedError: e.g. ``NetStream.Play.StreamNotFound``.
            ClientTimeoutError: no answer in time.
        """
        name = name if name is not None else self.url.stream
        if not name:
            raise ClientError("no stream name to play")
        stream_id = await self.create_stream()
        player = Player(self, stream_id, name, queue_size, stop_on_unpublish)
        self._players[stream_id] = player
        self.session.play(stream_id, name, start_ms=start_ms)
        assert self._protocol is not None
        self._protocol.flush()
        await self._await_status(stream_id, "play", "NetStream.Play.Start")
        return player

    def _flush(self) -> None:
        if self._protocol is not None:
            self._protocol.flush()

    async def _drain(self) -> None:
        if self._protocol is not None:
            await self._protocol.drain()

    def _pause_reading(self, paused: bool) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            transport = self._protocol.transport
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed.done()

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.flush()
            protocol.transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), 2.0)
            except TimeoutError:
                protocol.transport.abort()
        if not self._closed.done():
            self._closed.set_result(None)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Publisher:
    """A publishing NetStream. Timestamps are in ms; payloads are FLV tag bodies."""

    def __init__(self, connection: Connection, stream_id: int, name: str) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.name = name

    async def send_metadata(self, metadata: Mapping[str, Any], timestamp_ms: int = 0) -> None:
        """Send ``@setDataFrame onMetaData``."""
        self.connection.session.send_metadata(self.stream_id, metadata, timestamp_ms=timestamp_ms)
        await self._sent()

    async def send_audio(self, timestamp_ms: int, payload: bytes) -> None:
        """Send one audio message (AUDIODATA: tag header + data)."""
        self.connection.session.send_media(self.stream_id, MessageType.AUDIO, timestamp_ms, payload)
        await self._sent()

    async def send_video(self, timestamp_ms: int, payload: bytes) -> None:
        """Send one video message (VIDEODATA: tag header + data)."""
        self.connection.session.send_media(self.stream_id, MessageType.VIDEO, timestamp_ms, payload)
        await self._sent()

    async def send_flv_tag(self, tag_type: int, timestamp_ms: int, payload: bytes) -> None:
        """Send an FLV tag (8 audio, 9 video, 18 script data) as the matching message."""
        if tag_type in (MessageType.AUDIO, MessageType.VIDEO):
            self.connection.session.send_media(self.stream_id, tag_type, timestamp_ms, payload)
        elif tag_type == MessageType.DATA_AMF0:
            from .protocol.messages import ChunkStreamId, Message

            self.connection.session.send_message(
                Message(
                    type_id=tag_type,
                    timestamp_ms=timestamp_ms,
                    message_stream_id=self.stream_id,
                    payload=payload,
                    chunk_stream_id=ChunkStreamId.DATA,
                )
            )
        else:
            raise ClientError(f"unsupported FLV tag type {tag_type}")
        await self._sent()

    async def _sent(self) -> None:
        self.connection._flush()
        await self.connection._drain()

    async def close(self) -> None:
        """Stop publishing (FCUnpublish + deleteStream); the connection stays open."""
        session = self.connection.session
        session.fc_unpublish(self.name)
        session.delete_stream(self.stream_id)
        self.connection._flush()


class Player:
    """A playing NetStream: an async iterator of :class:`MediaMessage`."""

    def __init__(
        self,
        connection: Connection,
        stream_id: int,
        name: str,
        queue_size: int,
        stop_on_unpublish: bool,
    ) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.name = name
        self._queue: asyncio.Queue[MediaMessage | BaseException | None] = asyncio.Queue()
        self._queue_size = queue_size
        self._stop_on_unpublish = stop_on_unpublish
        self._paused_reading = False
        self.statuses: list[StatusReceived] = []
        self.ended = False

    def _put(self, item: MediaMessage | BaseException | None) -> None:
        self._queue.put_nowait(item)
        if self._queue.qsize() >= self._queue_size and not self._paused_reading:
            self._paused_reading = True
            self.connection._pause_reading(True)

    def _on_status(self, status: StatusReceived) -> None:
        self.statuses.append(status)
        if status.code in ("NetStream.Play.Stop", "NetStream.Play.UnpublishNotify"):
            if self._stop_on_unpublish:
                self._end(None)

    def _on_eof(self) -> None:
        pass  # StreamEOF comes with UnpublishNotify, handled there

    def _end(self, error: BaseException | None) -> None:
        if not self.ended:
            self.ended = True
            self._put(error)

    def __aiter__(self) -> AsyncIterator[MediaMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[MediaMessage]:
        while True:
            item = await self._queue.get()
            if self._paused_reading and self._queue.qsize() < self._queue_size // 2:
                self._paused_reading = False
                self.connection._pause_reading(False)
            if item is None:
                return
            if isinstance(item, BaseException):
                if isinstance(item, ClientError) and "closed by server" in str(item):
                    return
                raise item
            yield item

    async def close(self) -> None:
        """Stop playing (deleteStream); the connection stays open."""
        self.connection.session.delete_stream(self.stream_id)
        self.connection._flush()
        self._end(None)


class _Connector:
    """``await connect(...)`` or ``async with connect(...) as conn``."""

    def __init__(
        self,
        url: str,
        timeout: float,
        ssl: ssl_module.SSLContext | None,
        properties: Mapping[str, Any] | None,
    ) -> None:
        self._args = (url, timeout, ssl, properties)
        self._conn: Connection | None = None

    async def _connect(self) -> Connection:
        url, timeout, ssl, properties = self._args
        conn = Connection(parse_url(url), timeout)
        try:
            await conn._open(ssl, properties)
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
) -> _Connector:
    """Open an RTMP connection: TCP (or TLS for rtmps://), handshake, ``connect``.

    Args:
        url: ``rtmp[s]://host[:port]/app[/stream][?query]``.
        timeout: seconds to wait for each answer (TCP connect, connect, createStream...).
        ssl: TLS context for rtmps:// (default: system trust store).
        properties: extra ``connect`` properties.

    Returns:
        Awaitable / async context manager giving a :class:`Connection`.

    Raises (when awaited):
        ClientError: bad URL, TCP failure, connection lost.
        RejectedError: ``NetConnection.Connect.Rejected``.
        ClientTimeoutError: no answer within ``timeout``.
    """
    return _Connector(url, timeout, ssl, properties)
