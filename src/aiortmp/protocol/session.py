"""NetConnection / NetStream command layer for both roles (RTMP 1.0 §7.2).

:class:`ServerSession` and :class:`ClientSession` sit on an
:class:`~aiortmp.protocol.connection.RTMPConnection` and turn command, data and media
messages into request/status/media events, as aioquic's H3 layer sits on QUIC.

The server session answers the plumbing itself (``createStream``, ``releaseStream``,
``FCPublish``, ``pause``, ``_error`` for unknown calls) and leaves policy to its owner: a
:class:`~aiortmp.protocol.events.ConnectRequest`,
:class:`~aiortmp.protocol.events.PublishRequest`,
:class:`~aiortmp.protocol.events.PlayRequest` or
:class:`~aiortmp.protocol.events.SeekRequest` waits until the owner calls ``accept_*`` or
``reject_*``, and a :class:`~aiortmp.protocol.events.StreamLengthRequest` until it calls
``answer_stream_length`` (only the owner knows whether a name is a file, and how long).

The states are tables keyed by (state, input), as in h11's ``_state.py``: an input with no
entry is a protocol error of the peer (:class:`~aiortmp.protocol.errors.CommandError`).
"""

from __future__ import annotations

import enum
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .commands import (
    Command,
    NetStatusCode,
    decode_command,
    decode_data,
    encode_command,
    encode_data,
    metadata_from_data,
    status_object,
)
from .connection import ConnectionState, Role, RTMPConnection
from .control import (
    LimitType,
    SetBufferLength,
    SetChunkSize,
    SetPeerBandwidth,
    StreamBegin,
    StreamEOF,
    StreamIsRecorded,
    WindowAcknowledgementSize,
)
from .errors import CommandError, LimitExceededError, LocalProtocolError
from .events import (
    CommandReceived,
    CommandResult,
    ConnectRequest,
    ControlReceived,
    DataReceived,
    Event,
    MediaReceived,
    MetadataReceived,
    PauseRequest,
    PlayRequest,
    PublishRequest,
    ReceiveMediaChanged,
    ReconnectRequested,
    SeekRequest,
    StatusReceived,
    StreamClosed,
    StreamLengthRequest,
)
from .messages import ChunkStreamId, Message, MessageType

__all__ = [
    "CapsExMask",
    "ClientSession",
    "ENHANCED_RTMP_KEYS",
    "FourCcInfoMask",
    "NetConnectionState",
    "NetStreamState",
    "ServerSession",
    "resolve_tc_url",
    "split_query",
]

logger = logging.getLogger("aiortmp.protocol")

_MEDIA_TYPES = (MessageType.AUDIO, MessageType.VIDEO)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_DATA_TYPES = (MessageType.DATA_AMF0, MessageType.DATA_AMF3)
_COMMAND_TYPES = (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3)


def split_query(value: str) -> tuple[str, str]:
    """Split ``"name?a=b"`` into ``("name", "a=b")``; no ``?`` gives ``(value, "")``."""
    name, _, query = value.partition("?")
    return name, query


def resolve_tc_url(base: str, reference: str) -> str:
    """Resolve the ``tcUrl`` of a ReconnectRequest against the current connection's.

    E-RTMP v2, "Reconnect Request": "Absolute or relative URI reference of the server to
    which to reconnect ... A relative URI reference should be resolved relative to the
    tcUrl for the current connection" (examples: ``rtmp://foo.mydomain.com:1935/app``,
    ``//192.0.2.0/app``, ``/app``). ``urllib.parse.urljoin`` does not resolve ``rtmp:``
    URLs (the scheme is not in its table), hence this RFC 3986 §5.2 subset.

    Args:
        base: the tcUrl of the current connection (``rtmp://host[:port]/app``).
        reference: the ``tcUrl`` property of the info object ("" or absent: ``base``).

    Returns:
        The absolute tcUrl to connect to.
    """
    if not reference:
        return base
    if _SCHEME.match(reference):
        return reference  # absolute: scheme://authority/path
    scheme, sep, rest = base.partition("://")
    if not sep:
        return reference  # no usable base
    if reference.startswith("//"):
        return f"{scheme}:{reference}"
    authority, _, path = rest.partition("/")
    if reference.startswith("/"):
        return f"{scheme}://{authority}{reference}"
    # A relative path replaces the last segment of the base path (RFC 3986 §5.2.3).
    directory = path.rpartition("/")[0]
    return f"{scheme}://{authority}/{directory + '/' if directory else ''}{reference}"


class FourCcInfoMask(enum.IntFlag):
    """E-RTMP v2 ``[audio|video]FourCcInfoMap`` capability flags."""

    CAN_DECODE = 0x01
    CAN_ENCODE = 0x02
    CAN_FORWARD = 0x04


class CapsExMask(enum.IntFlag):
    """E-RTMP v2 ``capsEx`` extended capability flags."""

    RECONNECT = 0x01
    MULTITRACK = 0x02
    MOD_EX = 0x04
    TIMESTAMP_NANO_OFFSET = 0x08


#: connect properties by which a client declares E-RTMP support (E-RTMP v2, "Enhancing
#: NetConnection connect Command").
ENHANCED_RTMP_KEYS = ("fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap", "capsEx")

#: What a relay server answers: it forwards every codec ("*" = CanForward), relays
#: multitrack, and parses ModEx (incl. the nanosecond timestamp offset, forwarded as is).
#: "The server SHOULD state its support via attributes such as videoFourCcInfoMap, capsEx".
SERVER_ENHANCED_RTMP_PROPERTIES: dict[str, Any] = {
    "fourCcList": ["*"],
    "videoFourCcInfoMap": {"*": float(FourCcInfoMask.CAN_FORWARD)},
    "audioFourCcInfoMap": {"*": float(FourCcInfoMask.CAN_FORWARD)},
    "capsEx": float(CapsExMask.MULTITRACK | CapsExMask.MOD_EX | CapsExMask.TIMESTAMP_NANO_OFFSET),
}

#: What our client declares: it can receive and forward any codec, and its publishers follow
#: a ``NetConnection.Connect.ReconnectRequest`` (E-RTMP v2, "Reconnect Request").
CLIENT_ENHANCED_RTMP_PROPERTIES: dict[str, Any] = {
    "fourCcList": ["*"],
    "videoFourCcInfoMap": {"*": float(FourCcInfoMask.CAN_FORWARD)},
    "audioFourCcInfoMap": {"*": float(FourCcInfoMask.CAN_FORWARD)},
    "capsEx": float(CapsExMask.RECONNECT | CapsExMask.MULTITRACK | CapsExMask.MOD_EX),
}


class MediaSink(Protocol):
    """Where a publishing NetStream's media and data go on the fast path (a relay's
    stream), in the order they arrive."""

    def ingest(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """An audio (8) or video (9) message."""

    def ingest_metadata(self, metadata: dict[str, Any], timestamp_ms: int) -> None:
        """``@setDataFrame onMetaData`` / ``onMetaData`` properties."""

    def ingest_data(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Another data message (18 or 15), as received."""


#: Commands a client may pipeline behind a connect that is still being decided.
MAX_DEFERRED_COMMANDS = 64


class NetConnectionState(enum.Enum):
    """Server-side NetConnection state."""

    AWAIT_CONNECT = "await-connect"
    CONNECT_PENDING = "connect-pending"
    CONNECTED = "connected"
    CLOSED = "closed"


class NetStreamState(enum.Enum):
    """Server-side state of one NetStream (msid)."""

    IDLE = "idle"
    PUBLISH_PENDING = "publish-pending"
    PUBLISHING = "publishing"
    PLAY_PENDING = "play-pending"
    PLAYING = "playing"


class _In(enum.Enum):
    """Inputs of the NetStream table: peer commands and owner decisions."""

    PUBLISH = "publish"
    PLAY = "play"
    ACCEPT = "accept"
    REJECT = "reject"
    CLOSE = "close"
    SEEK = "seek"


_S = NetStreamState
#: NetStream transitions (server role). A missing (state, input) is a protocol error.
STREAM_TRANSITIONS: dict[tuple[NetStreamState, _In], NetStreamState] = {
    (_S.IDLE, _In.PUBLISH): _S.PUBLISH_PENDING,
    (_S.IDLE, _In.PLAY): _S.PLAY_PENDING,
    (_S.IDLE, _In.CLOSE): _S.IDLE,
    (_S.PUBLISH_PENDING, _In.ACCEPT): _S.PUBLISHING,
    (_S.PUBLISH_PENDING, _In.REJECT): _S.IDLE,
    (_S.PUBLISH_PENDING, _In.CLOSE): _S.IDLE,
    (_S.PUBLISHING, _In.CLOSE): _S.IDLE,
    (_S.PLAY_PENDING, _In.ACCEPT): _S.PLAYING,
    (_S.PLAY_PENDING, _In.REJECT): _S.IDLE,
    (_S.PLAY_PENDING, _In.CLOSE): _S.IDLE,
    # A player may switch streams with a new play on the same NetStream (Flash does).
    (_S.PLAYING, _In.PLAY): _S.PLAY_PENDING,
    (_S.PLAYING, _In.CLOSE): _S.IDLE,
    # RTMP 1.0 §7.2.2.7: seek within the media played. A seek sent right behind play (in
    # the same read, before the play is answered) is queued for the owner in order.
    (_S.PLAYING, _In.SEEK): _S.PLAYING,
    (_S.PLAY_PENDING, _In.SEEK): _S.PLAY_PENDING,
}


class _SessionBase:
    """What both roles share: the connection, the event queue, command encoding."""

    def __init__(self, connection: RTMPConnection, *, max_amf_depth: int) -> None:
        self.connection = connection
        self._events: deque[Event] = deque()
        self._max_amf_depth = max_amf_depth
        self.object_encoding = 0.0

    # Bytes in / events out / bytes to send ----------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer.

        Raises:
            RemoteProtocolError: the peer broke the protocol; drop the session.
        """
        connection = self.connection
        connection.receive_data(data)
        while (item := connection.next_item()) is not None:
            if type(item) is Message:
                self._handle_message(item)
            else:
                self._handle_connection_event(item)  # type: ignore[arg-type]
                self._events.append(item)  # type: ignore[arg-type]

    def receive_eof(self) -> None:
        """The peer closed its side."""
        self.connection.receive_eof()

    def next_event(self) -> Event | None:
        """Return the next event, or None."""
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        """Return (and clear) the bytes to write."""
        return self.connection.data_to_send()

    @property
    def is_open(self) -> bool:
        """True once the handshake is done and until the connection is closed."""
        return self.connection.state is ConnectionState.OPEN

    # Sending --------------------------------------------------------------------------

    def send_command(
        self,
        name: str,
        transaction_id: float = 0.0,
        command_object: Any = None,
        *arguments: Any,
        stream_id: int = 0,
    ) -> None:
        """Send a command message (type 20, or 17 when AMF3 was negotiated).

        Raises:
            LocalProtocolError: the connection is not open.
            AMFEncodeError: an argument cannot be encoded.
        """
        command = Command(
            name=name,
            transaction_id=transaction_id,
            command_object=command_object,
            arguments=arguments,
            message_stream_id=stream_id,
            amf3=self.object_encoding == 3,
        )
        self.connection.send_message(encode_command(command))

    def send_status(self, stream_id: int, code: str, description: str = "", **extra: Any) -> None:
        """Send ``onStatus`` with a NetStatus info object on NetStream ``stream_id``."""
        self.send_command(
            "onStatus", 0.0, None, status_object(code, description, **extra), stream_id=stream_id
        )

    def send_data(
        self,
        stream_id: int,
        name: str,
        *values: Any,
        timestamp_ms: int = 0,
        chunk_stream_id: int = ChunkStreamId.COMMAND,
    ) -> None:
        """Send a data message (type 18) ``name, *values`` on NetStream ``stream_id``.

        The default csid is 3, not the media data csid 5: a server writes pre-serialized
        fan-out bytes on csids 4, 5 and 6, and this session's header-compressing writer
        must not share a csid with them.
        """
        message = encode_data(
            name,
            *values,
            message_stream_id=stream_id,
            timestamp_ms=timestamp_ms,
            chunk_stream_id=chunk_stream_id,
        )
        self.connection.send_message(message)

    # Message dispatch -----------------------------------------------------------------

    def _handle_message(self, message: Message) -> None:
        type_id = message.type_id
        if type_id in _MEDIA_TYPES:
            self._handle_media(message)
        elif type_id in _COMMAND_TYPES:
            self._handle_command(decode_command(message, max_depth=self._max_amf_depth))
        elif type_id in _DATA_TYPES:
            self._handle_data(message)
        else:
            # Shared objects (16/19) and unknown types: not used by live streaming;
            # ignored, as nginx-rtmp and SRS do.
            logger.debug("< ignoring message type %d (%d bytes)", type_id, len(message.payload))

    def _handle_connection_event(self, event: Event) -> None:
        """A handshake or control event of the connection layer (passed on as is)."""

    def _handle_media(self, message: Message) -> None:
        raise NotImplementedError

    def _handle_command(self, command: Command) -> None:
        raise NotImplementedError

    def _handle_data(self, message: Message) -> None:
        data = decode_data(message, max_depth=self._max_amf_depth)
        metadata = metadata_from_data(data)
        stream_id = message.message_stream_id
        if metadata is not None:
            self._events.append(
                MetadataReceived(
                    stream_id=stream_id, timestamp_ms=message.timestamp_ms, metadata=metadata
                )
            )
        else:
            self._events.append(DataReceived(stream_id=stream_id, data=data, message=message))


class ServerSession(_SessionBase):
    """Server side of one RTMP connection (RTMP 1.0 §7.2).

    Args:
        chunk_size: the chunk size announced after connect (bytes; 4096 like nginx-rtmp/SRS).
        window_ack_size: Window Acknowledgement Size announced to the client (bytes).
        peer_bandwidth: Set Peer Bandwidth value (bytes).
        max_streams: most NetStreams (createStream) per connection.
        max_amf_depth: AMF nesting limit for commands and data.
        **connection_options: passed to :class:`RTMPConnection` (limits).
    """

    def __init__(
        self,
        *,
        chunk_size: int = 4096,
        window_ack_size: int = 5_000_000,
        peer_bandwidth: int = 5_000_000,
        max_streams: int = 16,
        max_amf_depth: int = 64,
        **connection_options: Any,
    ) -> None:
        super().__init__(
            RTMPConnection(Role.SERVER, **connection_options), max_amf_depth=max_amf_depth
        )
        self.state = NetConnectionState.AWAIT_CONNECT
        self.chunk_size = chunk_size
        self.window_ack_size = window_ack_size
        self.peer_bandwidth = peer_bandwidth
        self.max_streams = max_streams
        self.streams: dict[int, NetStreamState] = {}
        self.stream_names: dict[int, str] = {}  # msid -> name it publishes/plays
        self.buffer_lengths_ms: dict[int, int] = {}  # msid -> the client's Set Buffer Length
        self._next_stream_id = 1
        self.app = ""
        self.connect_properties: Mapping[str, Any] = {}
        self._deferred: list[Command] = []  # commands pipelined behind a pending connect
        self._media_sinks: dict[int, MediaSink] = {}
        self._handlers: dict[str, Callable[[Command], None]] = {
            "connect": self._on_connect,
            "createStream": self._on_create_stream,
            "releaseStream": self._on_simple_result,
            "FCPublish": self._on_fc_publish,
            "FCUnpublish": self._on_fc_unpublish,
            "FCSubscribe": self._on_fc_subscribe,
            "FCUnsubscribe": self._on_simple_result,
            "publish": self._on_publish,
            "play": self._on_play,
            "deleteStream": self._on_delete_stream,
            "closeStream": self._on_close_stream,
            "receiveAudio": self._on_receive_audio,
            "receiveVideo": self._on_receive_video,
            "pause": self._on_pause,
            "seek": self._on_seek,
            "getStreamLength": self._on_get_stream_length,
        }

    # -- tables -------------------------------------------------------------------------

    @property
    def handled_commands(self) -> frozenset[str]:
        """The command names this session answers itself or turns into request events."""
        return frozenset(self._handlers)

    def stream_state(self, stream_id: int) -> NetStreamState | None:
        """The state of NetStream ``stream_id``, or None if it was never created."""
        return self.streams.get(stream_id)

    def _transition(self, stream_id: int, event: _In) -> NetStreamState:
        state = self.streams.get(stream_id)
        if state is None:
            raise CommandError(f"{event.value} on stream {stream_id}, which was not created")
        new = STREAM_TRANSITIONS.get((state, event))
        if new is None:
            raise CommandError(
                f"{event.value} not allowed on stream {stream_id} in state {state.value}"
            )
        self._set_state(stream_id, new)
        return new

    def _local_transition(self, stream_id: int, event: _In) -> None:
        state = self.streams.get(stream_id)
        new = None if state is None else STREAM_TRANSITIONS.get((state, event))
        if new is None:
            raise LocalProtocolError(
                f"cannot {event.value} stream {stream_id} in state {state.value if state else None}"
            )
        self._set_state(stream_id, new)

    def _set_state(self, stream_id: int, state: NetStreamState) -> None:
        self.streams[stream_id] = state
        if state is not NetStreamState.PUBLISHING:
            self._media_sinks.pop(stream_id, None)

    # -- dispatch -----------------------------------------------------------------------

    def _handle_command(self, command: Command) -> None:
        name = command.name
        logger.debug("< %s tid=%s msid=%d", name, command.transaction_id, command.message_stream_id)
        if self.state is NetConnectionState.AWAIT_CONNECT and name != "connect":
            raise CommandError(f"{name!r} before connect")
        if self.state is NetConnectionState.CONNECT_PENDING:
            # Clients pipeline connect, createStream and publish in one write; the owner
            # may still be deciding connect (an HTTP auth callback). Answer them in order
            # once connect is accepted.
            if len(self._deferred) >= MAX_DEFERRED_COMMANDS:
                raise LimitExceededError(
                    f"more than {MAX_DEFERRED_COMMANDS} commands while connect is pending"
                )
            self._deferred.append(command)
            return
        if self.state is NetConnectionState.CONNECTED and name == "connect":
            raise CommandError("second connect on one NetConnection")
        handler = self._handlers.get(name)
        if handler is not None:
            handler(command)
        elif name in ("_result", "_error", "onBWDone", "_checkbw") and not command.transaction_id:
            pass
        elif command.transaction_id:
            # "unknown commands with a transaction id get _error"
            self.send_command(
                "_error",
                command.transaction_id,
                None,
                status_object(NetStatusCode.CALL_FAILED, f"unknown command {name!r}"),
            )
            self._events.append(CommandReceived(command=command))
        else:
            self._events.append(CommandReceived(command=command))

    def _handle_connection_event(self, event: Event) -> None:
        if isinstance(event, ControlReceived) and isinstance(event.control, SetBufferLength):
            # RTMP 1.0 §7.1.7: "the client sends this event to inform the server of the
            # buffer size (in milliseconds) that is used to buffer any data coming over a
            # stream"; a VOD source paces its sending by it.
            control = event.control
            self.buffer_lengths_ms[control.stream_id] = control.buffer_length_ms

    def buffer_length_ms(self, stream_id: int) -> int | None:
        """The buffer length the client announced for NetStream ``stream_id`` (ms), or
        None if it sent no Set Buffer Length for it."""
        return self.buffer_lengths_ms.get(stream_id)

    def set_media_sink(self, stream_id: int, sink: MediaSink | None) -> None:
        """Hand the audio, video and data messages of publishing NetStream ``stream_id``
        to ``sink`` as they are parsed, in order, instead of queueing
        :class:`MediaReceived` / :class:`MetadataReceived` / :class:`DataReceived` events.

        The relay's fast path: one call per message, no event object. The sink runs
        inside :meth:`receive_data` and may raise (a :class:`RemoteProtocolError` closes
        the session like any other). It is forgotten when the NetStream stops publishing.

        Args:
            stream_id: the msid.
            sink: the :class:`MediaSink`, or None to go back to events.
        """
        if sink is None:
            self._media_sinks.pop(stream_id, None)
        else:
            self._media_sinks[stream_id] = sink

    def _handle_media(self, message: Message) -> None:
        stream_id = message.message_stream_id
        sink = self._media_sinks.get(stream_id)
        if sink is not None:
            sink.ingest(message.type_id, message.timestamp_ms, message.payload)
        elif self.streams.get(stream_id) is NetStreamState.PUBLISHING:
            self._events.append(
                MediaReceived(
                    stream_id=stream_id,
                    type_id=message.type_id,
                    timestamp_ms=message.timestamp_ms,
                    payload=message.payload,
                )
            )
        # Media on a stream that is not publishing is dropped (nginx-rtmp does the same).

    def _handle_data(self, message: Message) -> None:
        sink = self._media_sinks.get(message.message_stream_id)
        if sink is not None:
            data = decode_data(message, max_depth=self._max_amf_depth)
            metadata = metadata_from_data(data)
            if metadata is not None:
                sink.ingest_metadata(dict(metadata), message.timestamp_ms)
            else:
                sink.ingest_data(message.type_id, message.timestamp_ms, message.payload)
        elif self.streams.get(message.message_stream_id) is NetStreamState.PUBLISHING:
            super()._handle_data(message)

    # -- NetConnection ------------------------------------------------------------------

    def _on_connect(self, command: Command) -> None:
        props = command.command_object if isinstance(command.command_object, Mapping) else {}
        app_value = props.get("app", "")
        app, query = split_query(app_value if isinstance(app_value, str) else "")
        tc_url = props.get("tcUrl", "")
        tc_url = tc_url if isinstance(tc_url, str) else ""
        if not query and "?" in tc_url:
            query = tc_url.partition("?")[2]
        encoding = props.get("objectEncoding", 0.0)
        encoding = float(encoding) if isinstance(encoding, int | float) else 0.0
        self.app = app.strip("/")
        self.connect_properties = props
        self.state = NetConnectionState.CONNECT_PENDING
        self._connect_tid = command.transaction_id
        self._requested_encoding = encoding
        self._events.append(
            ConnectRequest(
                transaction_id=command.transaction_id,
                app=self.app,
                query=query,
                tc_url=tc_url,
                object_encoding=encoding,
                command_object=props,
                arguments=command.arguments,
            )
        )

    def accept_connect(
        self,
        request: ConnectRequest,
        *,
        properties: Mapping[str, Any] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Accept ``connect``: Window Ack Size, Set Peer Bandwidth, Set Chunk Size, ``_result``.

        Args:
            request: the pending request.
            properties: extra properties for the ``_result`` properties object. When the
                client declared E-RTMP support (``fourCcList``, ``*FourCcInfoMap``,
                ``capsEx``), the server's E-RTMP capabilities are added (E-RTMP v2,
                "Enhancing NetConnection connect Command").
            info: extra properties for the info object.

        Raises:
            LocalProtocolError: no connect is pending.
        """
        if self.state is not NetConnectionState.CONNECT_PENDING:
            raise LocalProtocolError("accept_connect without a pending connect")
        conn = self.connection
        conn.send_control(WindowAcknowledgementSize(window_bytes=self.window_ack_size))
        conn.send_control(
            SetPeerBandwidth(window_bytes=self.peer_bandwidth, limit_type=LimitType.DYNAMIC)
        )
        conn.send_control(SetChunkSize(chunk_size=self.chunk_size))
        props: dict[str, Any] = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0, "mode": 1.0}
        if any(key in request.command_object for key in ENHANCED_RTMP_KEYS):
            # Answer E-RTMP clients only; legacy clients get the legacy result.
            props.update(SERVER_ENHANCED_RTMP_PROPERTIES)
        props.update(properties or {})
        status = status_object(
            NetStatusCode.CONNECT_SUCCESS,
            "Connection succeeded.",
            objectEncoding=request.object_encoding,
            **(info or {}),
        )
        # The _result itself is AMF0-framed; AMF3 applies after it is negotiated.
        self.send_command("_result", request.transaction_id, props, status)
        self.object_encoding = 3.0 if request.object_encoding == 3 else 0.0
        self.state = NetConnectionState.CONNECTED
        deferred, self._deferred = self._deferred, []
        for command in deferred:
            self._handle_command(command)

    def reject_connect(self, request: ConnectRequest, description: str) -> None:
        """Reject ``connect`` with ``_error`` NetConnection.Connect.Rejected; then close.

        Raises:
            LocalProtocolError: no connect is pending.
        """
        if self.state is not NetConnectionState.CONNECT_PENDING:
            raise LocalProtocolError("reject_connect without a pending connect")
        self.send_command(
            "_error",
            request.transaction_id,
            None,
            status_object(NetStatusCode.CONNECT_REJECTED, description),
        )
        self.state = NetConnectionState.CLOSED
        self._deferred.clear()

    @property
    def peer_caps_ex(self) -> CapsExMask:
        """The ``capsEx`` flags the client announced in ``connect`` (E-RTMP v2, "Enhancing
        NetConnection connect Command"); none before connect or when absent or invalid."""
        value = self.connect_properties.get("capsEx", 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return CapsExMask(0)
        if not math.isfinite(value) or value < 0:
            return CapsExMask(0)
        return CapsExMask(int(value) & 0xFF)

    def request_reconnect(self, *, tc_url: str | None = None, description: str = "") -> None:
        """Ask the client to reconnect: NetConnection ``onStatus``
        ``NetConnection.Connect.ReconnectRequest`` (E-RTMP v2, "Reconnect Request").

        "Prior to the shutdown of the live streaming server ... it dispatches an onStatus
        command to the client with a code of NetConnection.Connect.ReconnectRequest"; the
        level "MUST be set to status", the transaction id is 0. Send it only to clients
        whose ``capsEx`` has :attr:`CapsExMask.RECONNECT` (:attr:`peer_caps_ex`); "the
        server managing the original connection ... SHOULD continue processing messages
        from the client until the client disconnects".

        Args:
            tc_url: where to reconnect (absolute or relative to the client's tcUrl); None:
                the client reconnects to the tcUrl it used.
            description: human-readable reason.

        Raises:
            LocalProtocolError: the NetConnection is not connected.
        """
        if self.state is not NetConnectionState.CONNECTED:
            raise LocalProtocolError("request_reconnect before connect was accepted")
        extra: dict[str, Any] = {} if tc_url is None else {"tcUrl": tc_url}
        info = status_object(
            NetStatusCode.CONNECT_RECONNECT_REQUEST, description, level="status", **extra
        )
        self.send_command("onStatus", 0.0, None, info)

    def _on_simple_result(self, command: Command) -> None:
        if command.transaction_id:
            self.send_command("_result", command.transaction_id, None)

    def _on_create_stream(self, command: Command) -> None:
        if len(self.streams) >= self.max_streams:
            self.send_command(
                "_error",
                command.transaction_id,
                None,
                status_object(NetStatusCode.CALL_FAILED, "too many streams on this connection"),
            )
            return
        stream_id = self._next_stream_id
        self._next_stream_id += 1
        self.streams[stream_id] = NetStreamState.IDLE
        self.send_command("_result", command.transaction_id, None, float(stream_id))

    def _on_fc_publish(self, command: Command) -> None:
        name = command.argument(0, "")
        self.send_command(
            "onFCPublish",
            0.0,
            None,
            status_object(NetStatusCode.PUBLISH_START, str(name)),
        )
        self._on_simple_result(command)

    def _on_fc_unpublish(self, command: Command) -> None:
        name = command.argument(0, "")
        self.send_command(
            "onFCUnpublish",
            0.0,
            None,
            status_object(NetStatusCode.UNPUBLISH_SUCCESS, str(name)),
        )
        self._on_simple_result(command)

    def _on_fc_subscribe(self, command: Command) -> None:
        name = command.argument(0, "")
        self.send_command(
            "onFCSubscribe", 0.0, None, status_object(NetStatusCode.PLAY_START, str(name))
        )
        self._on_simple_result(command)

    def _on_get_stream_length(self, command: Command) -> None:
        raw_name = command.argument(0, "")
        name, query = split_query(raw_name if isinstance(raw_name, str) else "")
        self._events.append(
            StreamLengthRequest(
                stream_id=command.message_stream_id,
                name=name,
                query=query,
                transaction_id=command.transaction_id,
            )
        )

    def answer_stream_length(self, request: StreamLengthRequest, length_s: float) -> None:
        """Answer ``getStreamLength``: ``_result`` with the length in seconds (0 for a live
        stream or an unknown name, as FMS and nginx-rtmp answer)."""
        if request.transaction_id:
            self.send_command("_result", request.transaction_id, None, float(length_s))

    def _stream_argument(self, command: Command) -> int | None:
        value = command.argument(0)
        # NaN and infinities are numbers to AMF0 but have no int(): refused below.
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return int(value)
        if isinstance(value, str):
            # GStreamer's rtmp2sink sends deleteStream with the stream *name*; resolve it
            # to the NetStream that published or played that name.
            name = split_query(value)[0]
            for stream_id, stream_name in self.stream_names.items():
                if stream_name == name:
                    return stream_id
            return None
        raise CommandError(f"{command.name}: stream id is not a number: {value!r}")

    def _on_delete_stream(self, command: Command) -> None:
        stream_id = self._stream_argument(command)
        if stream_id is None:
            return
        state = self.streams.pop(stream_id, None)
        self._media_sinks.pop(stream_id, None)
        self.stream_names.pop(stream_id, None)
        if state is not None:
            self._events.append(StreamClosed(stream_id=stream_id, deleted=True))

    def _on_close_stream(self, command: Command) -> None:
        stream_id = command.message_stream_id
        if stream_id in self.streams:
            self._transition(stream_id, _In.CLOSE)
            self._events.append(StreamClosed(stream_id=stream_id, deleted=False))

    # -- NetStream: publish ---------------------------------------------------------------

    def _on_publish(self, command: Command) -> None:
        stream_id = command.message_stream_id
        raw_name = command.argument(0, "")
        if not isinstance(raw_name, str):
            raise CommandError(f"publish: stream name is not a string: {raw_name!r}")
        publish_type = command.argument(1, "live")
        publish_type = publish_type if isinstance(publish_type, str) else "live"
        self._transition(stream_id, _In.PUBLISH)
        name, query = split_query(raw_name)
        self.stream_names[stream_id] = name
        self._events.append(
            PublishRequest(
                stream_id=stream_id,
                name=name,
                query=query,
                publish_type=publish_type,
                transaction_id=command.transaction_id,
            )
        )

    def accept_publish(self, request: PublishRequest) -> None:
        """Accept ``publish``: ``onStatus NetStream.Publish.Start``.

        Raises:
            LocalProtocolError: the stream has no pending publish.
        """
        self._local_transition(request.stream_id, _In.ACCEPT)
        self.connection.send_control(StreamBegin(stream_id=request.stream_id))
        self.send_status(
            request.stream_id,
            NetStatusCode.PUBLISH_START,
            f"{request.name} is now published.",
            details=request.name,
        )

    def reject_publish(
        self,
        request: PublishRequest,
        description: str,
        *,
        code: str = NetStatusCode.PUBLISH_BAD_NAME,
    ) -> None:
        """Reject ``publish`` with an error ``onStatus`` (BadName by default).

        Raises:
            LocalProtocolError: the stream has no pending publish.
        """
        self._local_transition(request.stream_id, _In.REJECT)
        self.send_status(request.stream_id, code, description, details=request.name)

    # -- NetStream: play ------------------------------------------------------------------

    def _on_play(self, command: Command) -> None:
        stream_id = command.message_stream_id
        raw_name = command.argument(0, "")
        if not isinstance(raw_name, str):
            raise CommandError(f"play: stream name is not a string: {raw_name!r}")
        start = command.argument(1, -2.0)
        duration = command.argument(2, -1.0)
        reset = command.argument(3, True)
        self._transition(stream_id, _In.PLAY)
        name, query = split_query(raw_name)
        self.stream_names[stream_id] = name
        self._events.append(
            PlayRequest(
                stream_id=stream_id,
                name=name,
                query=query,
                start_ms=float(start) if isinstance(start, int | float) else -2.0,
                duration_ms=float(duration) if isinstance(duration, int | float) else -1.0,
                reset=bool(reset) if isinstance(reset, bool | int | float) else True,
                transaction_id=command.transaction_id,
            )
        )

    def accept_play(self, request: PlayRequest, *, recorded: bool = False) -> None:
        """Accept ``play``: StreamBegin, ``NetStream.Play.Reset`` (if reset),
        ``NetStream.Play.Start``, ``|RtmpSampleAccess`` (as nginx-rtmp does; no
        ``NetStream.Data.Start`` data message: FFmpeg turns it into a phantom data stream
        with a packet at timestamp 0, which skews the start of late players).

        The owner then sends metadata, sequence headers and media.

        Args:
            request: the pending play.
            recorded: the stream is a file (VOD): StreamIsRecorded follows Play.Start
                (RTMP 1.0 §7.1.7: "the stream ID specified is a recorded stream").

        Raises:
            LocalProtocolError: the stream has no pending play.
        """
        self._local_transition(request.stream_id, _In.ACCEPT)
        sid = request.stream_id
        self.connection.send_control(StreamBegin(stream_id=sid))
        if request.reset:
            self.send_status(
                sid,
                NetStatusCode.PLAY_RESET,
                f"Playing and resetting {request.name}.",
                details=request.name,
            )
        self.send_status(
            sid, NetStatusCode.PLAY_START, f"Started playing {request.name}.", details=request.name
        )
        if recorded:
            self.connection.send_control(StreamIsRecorded(stream_id=sid))
        self.send_data(sid, "|RtmpSampleAccess", True, True)

    def reject_play(
        self,
        request: PlayRequest,
        description: str,
        *,
        code: str = NetStatusCode.PLAY_STREAM_NOT_FOUND,
    ) -> None:
        """Reject ``play`` with an error ``onStatus`` (StreamNotFound by default).

        Raises:
            LocalProtocolError: the stream has no pending play.
        """
        self._local_transition(request.stream_id, _In.REJECT)
        self.send_status(request.stream_id, code, description, details=request.name)

    def notify_publish(self, stream_id: int, name: str) -> None:
        """Tell a waiting player its stream started: StreamBegin + ``Play.PublishNotify``."""
        self.connection.send_control(StreamBegin(stream_id=stream_id))
        self.send_status(
            stream_id,
            NetStatusCode.PLAY_PUBLISH_NOTIFY,
            f"{name} is now published.",
            details=name,
        )

    def notify_play_complete(
        self, stream_id: int, name: str, *, duration_ms: int = 0, bytes_sent: int = 0
    ) -> None:
        """The recorded stream played to its end: ``onPlayStatus NetStream.Play.Complete``
        (a data message: players see it in order with the media), ``onStatus
        NetStream.Play.Stop``, StreamEOF. The NetStream stays playing: a ``seek`` plays
        again.

        Args:
            stream_id: the NetStream.
            name: the name played.
            duration_ms: the duration played, ms (the info object's ``duration``, s).
            bytes_sent: the bytes sent (its ``bytes``).
        """
        info = status_object(
            NetStatusCode.PLAY_COMPLETE,
            f"Finished playing {name}.",
            duration=duration_ms / 1000,
            bytes=float(bytes_sent),
        )
        self.send_data(stream_id, "onPlayStatus", info)
        self.send_status(
            stream_id, NetStatusCode.PLAY_STOP, f"Stopped playing {name}.", details=name
        )
        self.connection.send_control(StreamEOF(stream_id=stream_id))

    def notify_unpublish(self, stream_id: int, name: str) -> None:
        """Tell a player its publisher left: ``Play.UnpublishNotify`` + StreamEOF."""
        self.send_status(
            stream_id,
            NetStatusCode.PLAY_UNPUBLISH_NOTIFY,
            f"{name} is now unpublished.",
            details=name,
        )
        self.connection.send_control(StreamEOF(stream_id=stream_id))

    # -- NetStream: flow control ----------------------------------------------------------

    def _flag_argument(self, command: Command, index: int) -> bool:
        value = command.argument(index, True)
        return bool(value) if isinstance(value, bool | int | float) else True

    def _on_receive_audio(self, command: Command) -> None:
        self._events.append(
            ReceiveMediaChanged(
                stream_id=command.message_stream_id, audio=self._flag_argument(command, 0)
            )
        )

    def _on_receive_video(self, command: Command) -> None:
        self._events.append(
            ReceiveMediaChanged(
                stream_id=command.message_stream_id, video=self._flag_argument(command, 0)
            )
        )

    def _on_seek(self, command: Command) -> None:
        stream_id = command.message_stream_id
        position = command.argument(0, 0.0)
        if (
            not isinstance(position, int | float)
            or isinstance(position, bool)
            or not math.isfinite(position)
        ):
            raise CommandError(f"seek: offset is not a number: {position!r}")
        self._transition(stream_id, _In.SEEK)
        self._events.append(
            SeekRequest(
                stream_id=stream_id,
                position_ms=max(0.0, float(position)),
                transaction_id=command.transaction_id,
            )
        )

    def accept_seek(self, request: SeekRequest, position_ms: float) -> None:
        """Accept ``seek``: StreamEOF, ``NetStream.Seek.Notify``, StreamBegin (as
        nginx-rtmp; RTMP 1.0 §7.2.2.7: "The server sends a status message
        NetStream.Seek.Notify when seek is successful"). The owner then sends the media
        from the new position.

        Args:
            request: the seek.
            position_ms: where playing goes on (the keyframe at or before the request).

        Raises:
            LocalProtocolError: the NetStream is not playing.
        """
        sid = request.stream_id
        if self.streams.get(sid) is not NetStreamState.PLAYING:
            raise LocalProtocolError(f"cannot accept a seek on stream {sid}: not playing")
        name = self.stream_names.get(sid, "")
        self.connection.send_control(StreamEOF(stream_id=sid))
        self.send_status(
            sid,
            NetStatusCode.SEEK_NOTIFY,
            f"Seeking {position_ms:.0f} (stream ID: {sid}).",
            details=name,
            position=float(position_ms),
        )
        self.connection.send_control(StreamBegin(stream_id=sid))

    def reject_seek(
        self, request: SeekRequest, description: str, *, code: str = NetStatusCode.SEEK_FAILED
    ) -> None:
        """Refuse ``seek`` with an error ``onStatus`` (``NetStream.Seek.Failed`` by
        default; ``NetStream.Seek.InvalidTime`` for a time past the end). Playing goes on.
        """
        name = self.stream_names.get(request.stream_id, "")
        self.send_status(request.stream_id, code, description, details=name)

    def _on_pause(self, command: Command) -> None:
        stream_id = command.message_stream_id
        paused = self._flag_argument(command, 0)
        position = command.argument(1, 0.0)
        position = float(position) if isinstance(position, int | float) else 0.0
        if paused:
            self.send_status(stream_id, NetStatusCode.PAUSE_NOTIFY, "Paused live stream.")
            self.connection.send_control(StreamEOF(stream_id=stream_id))
        else:
            self.connection.send_control(StreamBegin(stream_id=stream_id))
            self.send_status(stream_id, NetStatusCode.UNPAUSE_NOTIFY, "Unpaused live stream.")
        self._events.append(PauseRequest(stream_id=stream_id, paused=paused, position_ms=position))


class ClientSession(_SessionBase):
    """Client side of an RTMP connection: connect, createStream, publish, play.

    Every request method returns the transaction id; the answer arrives as a
    :class:`~aiortmp.protocol.events.CommandResult` with the same id, and stream
    notifications as :class:`~aiortmp.protocol.events.StatusReceived`.

    Args:
        digest_handshake: use the FP9 digest handshake (FFmpeg/OBS do).
        chunk_size: our outgoing chunk size (bytes), announced before ``connect``.
        window_ack_size: Window Acknowledgement Size announced after connect (bytes).
        max_amf_depth: AMF nesting limit.
        **connection_options: passed to :class:`RTMPConnection`.
    """

    def __init__(
        self,
        *,
        digest_handshake: bool = True,
        chunk_size: int = 4096,
        window_ack_size: int = 5_000_000,
        max_amf_depth: int = 64,
        **connection_options: Any,
    ) -> None:
        super().__init__(
            RTMPConnection(Role.CLIENT, digest_handshake=digest_handshake, **connection_options),
            max_amf_depth=max_amf_depth,
        )
        self.chunk_size = chunk_size
        self.window_ack_size = window_ack_size
        self.tc_url = ""
        self._next_tid = 1
        self._connect_tid = 0.0

    def initiate(self) -> None:
        """Start the handshake (queue C0+C1)."""
        self.connection.initiate()

    def _tid(self) -> float:
        tid = self._next_tid
        self._next_tid += 1
        return float(tid)

    def call(
        self, name: str, *arguments: Any, command_object: Any = None, stream_id: int = 0
    ) -> float:
        """Send command ``name`` expecting a ``_result``/``_error``; return its transaction id."""
        tid = self._tid()
        self.send_command(name, tid, command_object, *arguments, stream_id=stream_id)
        return tid

    def connect(
        self, app: str, tc_url: str, *, properties: Mapping[str, Any] | None = None
    ) -> float:
        """Send Set Chunk Size then ``connect`` (RTMP 1.0 §7.2.1.1); return the transaction id.

        Args:
            app: the application name, with its query string if any (``live?token=x``).
            tc_url: ``rtmp://host[:port]/app``.
            properties: extra or overriding connect properties (``flashVer``,
                ``objectEncoding``, E-RTMP ``fourCcList``...).
        """
        self.connection.send_control(SetChunkSize(chunk_size=self.chunk_size))
        self.tc_url = tc_url
        props: dict[str, Any] = {
            "app": app,
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; aiortmp)",
            "tcUrl": tc_url,
            "fpad": False,
            "capabilities": 15.0,
            "audioCodecs": 4071.0,
            "videoCodecs": 252.0,
            "videoFunction": 1.0,
            "objectEncoding": 0.0,
            **CLIENT_ENHANCED_RTMP_PROPERTIES,
        }
        props.update(properties or {})
        self._connect_tid = self.call("connect", command_object=props)
        return self._connect_tid

    def create_stream(self) -> float:
        """Send ``createStream``; the stream id comes in the ``_result``."""
        return self.call("createStream")

    def release_stream(self, name: str) -> None:
        """Send ``releaseStream`` and ``FCPublish`` as OBS and FFmpeg do before publishing."""
        self.send_command("releaseStream", self._tid(), None, name)
        self.send_command("FCPublish", self._tid(), None, name)

    def publish(self, stream_id: int, name: str, publish_type: str = "live") -> None:
        """Send ``publish`` on NetStream ``stream_id``; wait for ``NetStream.Publish.Start``."""
        self.send_command("publish", self._tid(), None, name, publish_type, stream_id=stream_id)

    def play(
        self,
        stream_id: int,
        name: str,
        *,
        start_ms: float = -2.0,
        duration_ms: float = -1.0,
        reset: bool = True,
        buffer_ms: int = 1000,
    ) -> None:
        """Send Set Buffer Length and ``play`` on NetStream ``stream_id``."""
        self.connection.send_control(
            SetBufferLength(stream_id=stream_id, buffer_length_ms=buffer_ms)
        )
        self.send_command(
            "play", self._tid(), None, name, start_ms, duration_ms, reset, stream_id=stream_id
        )

    def seek(self, stream_id: int, position_ms: float) -> None:
        """Send ``seek`` (RTMP 1.0 §7.2.2.7) on NetStream ``stream_id``; the server answers
        ``NetStream.Seek.Notify`` (or ``Seek.Failed``) and sends media from the keyframe
        at or before ``position_ms``."""
        self.send_command("seek", 0.0, None, float(position_ms), stream_id=stream_id)

    def pause(self, stream_id: int, paused: bool, position_ms: float = 0.0) -> None:
        """Send ``pause`` (RTMP 1.0 §7.2.2.8): pause (True) or resume (False) a played
        stream; ``position_ms`` is the playhead ("the stream time at which the stream is
        paused or play resumed")."""
        self.send_command("pause", 0.0, None, paused, float(position_ms), stream_id=stream_id)

    def get_stream_length(self, name: str, stream_id: int = 0) -> float:
        """Send ``getStreamLength`` for ``name``; the ``_result`` carries the length in
        seconds (0 for live streams). Returns the transaction id."""
        return self.call("getStreamLength", name, stream_id=stream_id)

    def fc_unpublish(self, name: str) -> None:
        """Send ``FCUnpublish`` (the publisher is about to stop)."""
        self.send_command("FCUnpublish", self._tid(), None, name)

    def delete_stream(self, stream_id: int) -> None:
        """Send ``deleteStream`` (RTMP 1.0 §7.2.2.3)."""
        self.send_command("deleteStream", 0.0, None, float(stream_id))

    def send_metadata(
        self, stream_id: int, metadata: Mapping[str, Any], *, timestamp_ms: int = 0
    ) -> None:
        """Send ``@setDataFrame onMetaData {metadata}`` (what encoders send after publishing)."""
        from .amf0 import ECMAArray

        self.send_data(
            stream_id,
            "@setDataFrame",
            "onMetaData",
            ECMAArray(metadata),
            timestamp_ms=timestamp_ms,
            chunk_stream_id=ChunkStreamId.DATA,
        )

    def send_media(self, stream_id: int, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        """Send one audio (8) or video (9) message (FLV tag body) on NetStream ``stream_id``."""
        csid = ChunkStreamId.AUDIO if type_id == MessageType.AUDIO else ChunkStreamId.VIDEO
        self.connection.send_message(
            Message(
                type_id=type_id,
                timestamp_ms=timestamp_ms,
                message_stream_id=stream_id,
                payload=payload,
                chunk_stream_id=csid,
            )
        )

    def send_message(self, message: Message) -> None:
        """Send any message as is (for relaying data messages unchanged)."""
        self.connection.send_message(message)

    # -- dispatch -----------------------------------------------------------------------

    def _handle_media(self, message: Message) -> None:
        self._events.append(
            MediaReceived(
                stream_id=message.message_stream_id,
                type_id=message.type_id,
                timestamp_ms=message.timestamp_ms,
                payload=message.payload,
            )
        )

    def _handle_command(self, command: Command) -> None:
        name = command.name
        if name in ("_result", "_error"):
            if name == "_result" and command.transaction_id == self._connect_tid:
                info = next((a for a in command.arguments if isinstance(a, Mapping)), {})
                # Commands after a successful connect use the negotiated encoding.
                if info.get("objectEncoding") == 3:
                    self.object_encoding = 3.0
                self.connection.send_control(
                    WindowAcknowledgementSize(window_bytes=self.window_ack_size)
                )
            self._events.append(
                CommandResult(
                    transaction_id=command.transaction_id,
                    success=name == "_result",
                    command_object=command.command_object,
                    arguments=command.arguments,
                )
            )
        elif name in ("onStatus", "onFCPublish", "onFCUnpublish", "onFCSubscribe"):
            info = next((a for a in command.arguments if isinstance(a, Mapping)), {})
            code = info.get("code", "")
            if (
                code == NetStatusCode.CONNECT_RECONNECT_REQUEST
                and name == "onStatus"
                and command.message_stream_id == 0
            ):
                reference = info.get("tcUrl", "")
                description = info.get("description", "")
                self._events.append(
                    ReconnectRequested(
                        tc_url=resolve_tc_url(
                            self.tc_url, reference if isinstance(reference, str) else ""
                        ),
                        description=description if isinstance(description, str) else "",
                        info=info,
                    )
                )
                return
            self._events.append(
                StatusReceived(
                    stream_id=command.message_stream_id,
                    code=str(info.get("code", "")),
                    level=str(info.get("level", "")),
                    description=str(info.get("description", "")),
                    info=info,
                    name=name,
                )
            )
        else:
            self._events.append(CommandReceived(command=command))
