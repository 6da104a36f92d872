"""Events produced by the sans-I/O core.

Two layers produce events, in the manner of aioquic (QUIC events feed H3, H3 emits its own):

- :class:`~aiortmp.protocol.connection.RTMPConnection` (handshake + chunk stream + protocol
  control) emits :class:`HandshakeComplete`, :class:`MessageReceived`,
  :class:`ControlReceived`.
- :class:`~aiortmp.protocol.session.ServerSession` / ``ClientSession`` (NetConnection and
  NetStream commands, RTMP 1.0 §7.2) consume those and emit the request, status and media
  events below.

Every event is a frozen keyword-only dataclass; fields carry their unit in the name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .commands import Command, DataMessage
from .control import ControlMessage
from .messages import Message

__all__ = [
    "CommandReceived",
    "CommandResult",
    "ConnectRequest",
    "ControlReceived",
    "DataReceived",
    "Event",
    "HandshakeComplete",
    "MediaReceived",
    "MetadataReceived",
    "PauseRequest",
    "PlayRequest",
    "PublishRequest",
    "ReceiveMediaChanged",
    "ReconnectRequested",
    "SeekRequest",
    "StatusReceived",
    "StreamClosed",
    "StreamLengthRequest",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Base class of all events."""


# -- connection layer -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class HandshakeComplete(Event):
    """The handshake finished (RTMP 1.0 §5.2).

    Attributes:
        peer_version: the C0/S0 version byte (3).
        digest_scheme: 0 or 1 when the peer used the FP9 digest handshake, else None.
    """

    peer_version: int
    digest_scheme: int | None


@dataclass(frozen=True, kw_only=True, slots=True)
class MessageReceived(Event):
    """A complete non-control message (command, data, media, shared object).

    Aggregate messages (type 22) arrive already split into their sub-messages.
    """

    message: Message


@dataclass(frozen=True, kw_only=True, slots=True)
class ControlReceived(Event):
    """A protocol control or user control message, after the connection acted on it.

    Set Chunk Size, Abort, Window Acknowledgement Size and Ping Request are handled by the
    connection itself (and still reported here for logging and statistics).
    """

    control: ControlMessage


# -- session layer: both roles ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaReceived(Event):
    """An audio (8) or video (9) message on a NetStream (RTMP 1.0 §7.1.4/§7.1.5).

    Attributes:
        stream_id: the msid of the NetStream.
        type_id: 8 (audio) or 9 (video).
        timestamp_ms: absolute timestamp in ms (32-bit wrapping).
        payload: the FLV AUDIODATA / VIDEODATA body (tag header included).
    """

    stream_id: int
    type_id: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class MetadataReceived(Event):
    """``@setDataFrame onMetaData`` (publisher) or ``onMetaData`` (player side).

    Attributes:
        stream_id: the msid of the NetStream.
        timestamp_ms: message timestamp in ms.
        metadata: the metadata properties (width, height, videocodecid, ...).
    """

    stream_id: int
    timestamp_ms: int
    metadata: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class DataReceived(Event):
    """Any other data message on a NetStream (onCuePoint, onTextData, onFI, ...).

    Attributes:
        stream_id: the msid.
        data: the decoded data message.
        message: the original message, so a relay can forward the exact bytes.
    """

    stream_id: int
    data: DataMessage
    message: Message


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandReceived(Event):
    """A command the session does not handle itself (custom RPC calls, ``onBWDone``...).

    If ``command.transaction_id`` is not 0 the peer waits for a ``_result``/``_error``.
    """

    command: Command


# -- session layer: server role -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectRequest(Event):
    """The client sent ``connect`` (RTMP 1.0 §7.2.1.1). Answer with accept/reject_connect.

    Attributes:
        transaction_id: 1 by convention.
        app: the application name, query string removed (``live``).
        query: the query string of the app or tcUrl, without ``?`` (for auth).
        tc_url: the tcUrl property (``rtmp://host/live``), or "".
        object_encoding: 0 (AMF0) or 3 (AMF3).
        command_object: every connect property as sent.
        arguments: optional user arguments after the command object.
    """

    transaction_id: float
    app: str
    query: str
    tc_url: str
    object_encoding: float
    command_object: Mapping[str, Any]
    arguments: tuple[Any, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class PublishRequest(Event):
    """The client sent ``publish`` (RTMP 1.0 §7.2.2.6). Answer with accept/reject_publish.

    Attributes:
        stream_id: the msid of the NetStream.
        name: the stream name (stream key) without its query string.
        query: the query string after ``?`` (tokens, keys), or "".
        publish_type: ``live``, ``record`` or ``append``.
        transaction_id: the transaction id (usually 0 or 5).
    """

    stream_id: int
    name: str
    query: str
    publish_type: str
    transaction_id: float


@dataclass(frozen=True, kw_only=True, slots=True)
class PlayRequest(Event):
    """The client sent ``play`` (RTMP 1.0 §7.2.2.1). Answer with accept/reject_play.

    Attributes:
        stream_id: the msid of the NetStream.
        name: the stream name without its query string.
        query: the query string, or "".
        start_ms: -2 (live, else recorded), -1 (live only), or ≥ 0 (recorded from that ms).
        duration_ms: -1 (until the end), 0 (a single frame) or a duration in ms.
        reset: whether to flush a previous playlist.
        transaction_id: the transaction id.
    """

    stream_id: int
    name: str
    query: str
    start_ms: float
    duration_ms: float
    reset: bool
    transaction_id: float


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamClosed(Event):
    """A NetStream stopped publishing/playing (``closeStream``, ``deleteStream``, or
    ``FCUnpublish`` on a publishing stream).

    Attributes:
        stream_id: the msid.
        deleted: True for ``deleteStream`` (the msid is freed).
    """

    stream_id: int
    deleted: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ReceiveMediaChanged(Event):
    """``receiveAudio`` / ``receiveVideo`` (RTMP 1.0 §7.2.2.2/§7.2.2.3).

    Attributes:
        stream_id: the msid.
        audio: new receiveAudio flag, or None if unchanged.
        video: new receiveVideo flag, or None if unchanged.
    """

    stream_id: int
    audio: bool | None = None
    video: bool | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PauseRequest(Event):
    """``pause`` (RTMP 1.0 §7.2.2.8). Answered by the session; the server stops/resumes sending.

    Attributes:
        stream_id: the msid.
        paused: True to pause, False to resume.
        position_ms: the playhead position the client reports, in ms.
    """

    stream_id: int
    paused: bool
    position_ms: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SeekRequest(Event):
    """``seek`` (RTMP 1.0 §7.2.2.7): "The client sends the seek command to seek the offset
    (in milliseconds) within a media file or playlist." Answer with accept/reject_seek.

    Attributes:
        stream_id: the msid of the playing NetStream.
        position_ms: the requested offset, ms (never negative).
        transaction_id: the transaction id (0 by the spec).
    """

    stream_id: int
    position_ms: float
    transaction_id: float


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamLengthRequest(Event):
    """``getStreamLength`` (Flash, FFmpeg, JW Player: the duration of a recorded stream).
    Answer with ``answer_stream_length`` (0 for a live stream).

    Attributes:
        stream_id: the msid it arrived on (FFmpeg sends it on the NetStream, Flash on 0).
        name: the stream name asked about, without its query string.
        query: the query string, or "".
        transaction_id: the transaction the ``_result`` answers.
    """

    stream_id: int
    name: str
    query: str
    transaction_id: float


# -- session layer: client role -----------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CommandResult(Event):
    """A ``_result`` or ``_error`` answering one of our transactions.

    Attributes:
        transaction_id: the transaction answered.
        success: True for ``_result``.
        command_object: the properties object (connect) or None.
        arguments: the values after it (info object, stream id...).
    """

    transaction_id: float
    success: bool
    command_object: Any
    arguments: tuple[Any, ...] = ()

    @property
    def info(self) -> Mapping[str, Any]:
        """The first mapping among the arguments (the NetStatus info object), or {}."""
        for value in self.arguments:
            if isinstance(value, Mapping):
                return value
        return {}


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusReceived(Event):
    """An ``onStatus`` (or ``onFCPublish``...) NetStatus notification.

    Attributes:
        stream_id: the msid it arrived on.
        code: e.g. ``NetStream.Publish.Start``.
        level: ``status``, ``error`` or ``warning``.
        description: the server's text.
        info: the whole info object.
        name: the command name (``onStatus``, ``onFCPublish``...).
    """

    stream_id: int
    code: str
    level: str
    description: str
    info: Mapping[str, Any] = field(default_factory=dict)
    name: str = "onStatus"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconnectRequested(Event):
    """The server asks the client to reconnect (E-RTMP v2, "Reconnect Request"): a
    NetConnection ``onStatus`` with code ``NetConnection.Connect.ReconnectRequest``.

    "When the client receives the NetConnection.Connect.ReconnectRequest event, it persists
    in streaming to/from the current server up to the next appropriate media boundary, such
    as a keyframe. Subsequently, it establishes a connection with a new server and
    disconnects from the old server."

    Attributes:
        tc_url: where to reconnect: the info object's ``tcUrl`` resolved against the tcUrl
            of the current connection, or that tcUrl when the server sent none ("If not
            specified, use the tcUrl for the current connection").
        description: the server's text ("" if none).
        info: the whole info object.
    """

    tc_url: str
    description: str
    info: Mapping[str, Any] = field(default_factory=dict)
