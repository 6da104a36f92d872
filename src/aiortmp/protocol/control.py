"""Protocol control messages (RTMP 1.0 §5.4) and user control messages (§6.2, §7.1.7).

Protocol control messages (types 1, 2, 3, 5, 6) configure the chunk stream; user control
messages (type 4) carry stream events and pings. Both "MUST have message stream ID 0 ... and
be sent in chunk stream ID 2" (§5.4; §6.2 says SHOULD for type 4), which is what
:func:`encode_control` produces. :func:`decode_control` turns a payload into one of the frozen
dataclasses below; user control events it does not model (SWF verification, FMS/red5's
BufferEmpty/BufferReady, anything newer) come back as :class:`UnknownUserControl` rather than an
error, so a session survives events it does not need.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final, TypeAlias

from .errors import LocalProtocolError, MessageError
from .messages import ChunkStreamId, Message, MessageType

__all__ = [
    "CONTROL_MESSAGE_TYPES",
    "AbortMessage",
    "Acknowledgement",
    "ControlMessage",
    "LimitType",
    "PingRequest",
    "PingResponse",
    "SetBufferLength",
    "SetChunkSize",
    "SetPeerBandwidth",
    "StreamBegin",
    "StreamDry",
    "StreamEOF",
    "StreamIsRecorded",
    "UnknownUserControl",
    "UserControlEventType",
    "UserControlMessage",
    "WindowAcknowledgementSize",
    "decode_control",
    "encode_control",
]

CONTROL_MESSAGE_TYPES: Final = frozenset(
    {
        MessageType.SET_CHUNK_SIZE,
        MessageType.ABORT,
        MessageType.ACKNOWLEDGEMENT,
        MessageType.USER_CONTROL,
        MessageType.WINDOW_ACKNOWLEDGEMENT_SIZE,
        MessageType.SET_PEER_BANDWIDTH,
    }
)
"""The message type ids :func:`decode_control` accepts (RTMP 1.0 §5.4 and §6.2)."""

_U32: Final = 0xFFFFFFFF
_MAX_CHUNK_SIZE: Final = 0x7FFFFFFF

_u32 = struct.Struct(">I")
_u16_u32 = struct.Struct(">HI")
_u16_2u32 = struct.Struct(">HII")
_u32_u8 = struct.Struct(">IB")


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= _U32:
        raise LocalProtocolError(f"{name}={value} does not fit in 32 bits")


def _check_window(value: int) -> None:
    if not 1 <= value <= _U32:
        raise LocalProtocolError(f"window_bytes={value} is outside 1..0xFFFFFFFF")


class LimitType(enum.IntEnum):
    """How the peer applies a Set Peer Bandwidth window (RTMP 1.0 §5.4.5)."""

    HARD = 0
    """Limit output bandwidth to the indicated window."""
    SOFT = 1
    """Limit to this window or the limit already in effect, whichever is smaller."""
    DYNAMIC = 2
    """Treat as Hard if the previous limit type was Hard, otherwise ignore."""


class UserControlEventType(enum.IntEnum):
    """User control event types (RTMP 1.0 §7.1.7, plus events seen from FMS and red5)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7
    SWF_VERIFY_REQUEST = 26
    """FMS asks for SWF verification (not in RTMP 1.0; librtmp answers it)."""
    SWF_VERIFY_RESPONSE = 27
    """The 42-byte SWF verification answer (not in RTMP 1.0)."""
    BUFFER_EMPTY = 31
    """FMS/red5: the server has run out of data for a stream (not in RTMP 1.0)."""
    BUFFER_READY = 32
    """FMS/red5: data for a stream is flowing again (not in RTMP 1.0)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SetChunkSize:
    """Set Chunk Size (type 1, RTMP 1.0 §5.4.1): the sender's new maximum chunk size.

    Attributes:
        chunk_size: the new chunk size, in bytes, 1..0x7FFFFFFF ("This bit MUST be zero").

    Raises:
        LocalProtocolError: ``chunk_size`` is out of range.
    """

    chunk_size: int

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= _MAX_CHUNK_SIZE:
            raise LocalProtocolError(
                f"chunk_size={self.chunk_size} is outside 1..0x7FFFFFFF (RTMP 1.0 §5.4.1)"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class AbortMessage:
    """Abort Message (type 2, RTMP 1.0 §5.4.2): discard the partial message on a chunk stream.

    Attributes:
        chunk_stream_id: the csid whose current message is to be discarded (32-bit on the
            wire).

    Raises:
        LocalProtocolError: ``chunk_stream_id`` does not fit in 32 bits.
    """

    chunk_stream_id: int

    def __post_init__(self) -> None:
        _check_u32("chunk_stream_id", self.chunk_stream_id)


@dataclass(frozen=True, kw_only=True, slots=True)
class Acknowledgement:
    """Acknowledgement (type 3, RTMP 1.0 §5.4.3): bytes received so far.

    Attributes:
        sequence_number: the number of bytes received so far, modulo 2**32.

    Raises:
        LocalProtocolError: ``sequence_number`` does not fit in 32 bits.
    """

    sequence_number: int

    def __post_init__(self) -> None:
        _check_u32("sequence_number", self.sequence_number)


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowAcknowledgementSize:
    """Window Acknowledgement Size (type 5, RTMP 1.0 §5.4.4).

    Attributes:
        window_bytes: the peer must acknowledge after receiving this many bytes, 1..2**32-1.

    Raises:
        LocalProtocolError: ``window_bytes`` is 0 or does not fit in 32 bits.
    """

    window_bytes: int

    def __post_init__(self) -> None:
        _check_window(self.window_bytes)


@dataclass(frozen=True, kw_only=True, slots=True)
class SetPeerBandwidth:
    """Set Peer Bandwidth (type 6, RTMP 1.0 §5.4.5): limit the peer's unacknowledged output.

    Attributes:
        window_bytes: the window, in bytes, 1..2**32-1.
        limit_type: how to apply it.

    Raises:
        LocalProtocolError: ``window_bytes`` is 0 or does not fit in 32 bits.
    """

    window_bytes: int
    limit_type: LimitType

    def __post_init__(self) -> None:
        _check_window(self.window_bytes)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamBegin:
    """User control Stream Begin (event 0, RTMP 1.0 §7.1.7): a stream became functional.

    Attributes:
        stream_id: the message stream id.

    Raises:
        LocalProtocolError: ``stream_id`` does not fit in 32 bits.
    """

    stream_id: int

    def __post_init__(self) -> None:
        _check_u32("stream_id", self.stream_id)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamEOF:
    """User control Stream EOF (event 1, RTMP 1.0 §7.1.7): playback of a stream is over.

    Attributes:
        stream_id: the message stream id.

    Raises:
        LocalProtocolError: ``stream_id`` does not fit in 32 bits.
    """

    stream_id: int

    def __post_init__(self) -> None:
        _check_u32("stream_id", self.stream_id)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamDry:
    """User control StreamDry (event 2, RTMP 1.0 §7.1.7): no more data on a stream for now.

    Attributes:
        stream_id: the message stream id.

    Raises:
        LocalProtocolError: ``stream_id`` does not fit in 32 bits.
    """

    stream_id: int

    def __post_init__(self) -> None:
        _check_u32("stream_id", self.stream_id)


@dataclass(frozen=True, kw_only=True, slots=True)
class SetBufferLength:
    """User control SetBuffer Length (event 3, RTMP 1.0 §7.1.7): the client's buffer size.

    Attributes:
        stream_id: the message stream id.
        buffer_length_ms: the client's buffer length, in milliseconds.

    Raises:
        LocalProtocolError: a field does not fit in 32 bits.
    """

    stream_id: int
    buffer_length_ms: int

    def __post_init__(self) -> None:
        _check_u32("stream_id", self.stream_id)
        _check_u32("buffer_length_ms", self.buffer_length_ms)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamIsRecorded:
    """User control StreamIsRecorded (event 4, RTMP 1.0 §7.1.7): the stream is recorded.

    Attributes:
        stream_id: the message stream id.

    Raises:
        LocalProtocolError: ``stream_id`` does not fit in 32 bits.
    """

    stream_id: int

    def __post_init__(self) -> None:
        _check_u32("stream_id", self.stream_id)


@dataclass(frozen=True, kw_only=True, slots=True)
class PingRequest:
    """User control PingRequest (event 6, RTMP 1.0 §7.1.7): is the peer reachable?

    Attributes:
        timestamp_ms: the sender's local time when it sent the request, in milliseconds
            (32-bit, wrapping).

    Raises:
        LocalProtocolError: ``timestamp_ms`` does not fit in 32 bits.
    """

    timestamp_ms: int

    def __post_init__(self) -> None:
        _check_u32("timestamp_ms", self.timestamp_ms)


@dataclass(frozen=True, kw_only=True, slots=True)
class PingResponse:
    """User control PingResponse (event 7, RTMP 1.0 §7.1.7): the answer to a PingRequest.

    Attributes:
        timestamp_ms: the ``timestamp_ms`` of the PingRequest, echoed, in milliseconds.

    Raises:
        LocalProtocolError: ``timestamp_ms`` does not fit in 32 bits.
    """

    timestamp_ms: int

    def __post_init__(self) -> None:
        _check_u32("timestamp_ms", self.timestamp_ms)


@dataclass(frozen=True, kw_only=True, slots=True)
class UnknownUserControl:
    """A user control event this module does not model (RTMP 1.0 §6.2).

    Attributes:
        event_type: the 16-bit event type (see :class:`UserControlEventType` for names).
        data: the event data, after the event type.

    Raises:
        LocalProtocolError: ``event_type`` does not fit in 16 bits.
    """

    event_type: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.event_type <= 0xFFFF:
            raise LocalProtocolError(f"event_type={self.event_type} does not fit in 16 bits")


UserControlMessage: TypeAlias = (
    StreamBegin
    | StreamEOF
    | StreamDry
    | SetBufferLength
    | StreamIsRecorded
    | PingRequest
    | PingResponse
    | UnknownUserControl
)
"""Any user control message (type 4)."""

ControlMessage: TypeAlias = (
    SetChunkSize
    | AbortMessage
    | Acknowledgement
    | WindowAcknowledgementSize
    | SetPeerBandwidth
    | UserControlMessage
)
"""Any protocol control or user control message (types 1–6)."""

# User control events whose data is one 32-bit message stream id (RTMP 1.0 §7.1.7).
_STREAM_ID_EVENTS: Final[
    dict[int, type[StreamBegin] | type[StreamEOF] | type[StreamDry] | type[StreamIsRecorded]]
] = {
    UserControlEventType.STREAM_BEGIN: StreamBegin,
    UserControlEventType.STREAM_EOF: StreamEOF,
    UserControlEventType.STREAM_DRY: StreamDry,
    UserControlEventType.STREAM_IS_RECORDED: StreamIsRecorded,
}


def _expect_length(what: str, payload: bytes | memoryview, length: int) -> None:
    if len(payload) != length:
        raise MessageError(f"{what} payload is {len(payload)} bytes, expected {length}")


def _decode_window(what: str, payload: bytes | memoryview, length: int) -> int:
    _expect_length(what, payload, length)
    window = _u32.unpack_from(payload)[0]
    if window == 0:
        raise MessageError(f"{what} with a window of 0 bytes")
    return int(window)


def _decode_user_control(payload: bytes | memoryview) -> UserControlMessage:
    if len(payload) < 2:
        raise MessageError(
            f"user control payload is {len(payload)} bytes; the event type alone takes 2 "
            "(RTMP 1.0 §6.2)"
        )
    event_type = (payload[0] << 8) | payload[1]
    stream_event = _STREAM_ID_EVENTS.get(event_type)
    if stream_event is not None:
        _expect_length(f"user control {stream_event.__name__}", payload, 6)
        return stream_event(stream_id=_u16_u32.unpack_from(payload)[1])
    if event_type == UserControlEventType.PING_REQUEST:
        _expect_length("user control PingRequest", payload, 6)
        return PingRequest(timestamp_ms=_u16_u32.unpack_from(payload)[1])
    if event_type == UserControlEventType.PING_RESPONSE:
        _expect_length("user control PingResponse", payload, 6)
        return PingResponse(timestamp_ms=_u16_u32.unpack_from(payload)[1])
    if event_type == UserControlEventType.SET_BUFFER_LENGTH:
        _expect_length("user control SetBufferLength", payload, 10)
        _, stream_id, buffer_length_ms = _u16_2u32.unpack_from(payload)
        return SetBufferLength(stream_id=stream_id, buffer_length_ms=buffer_length_ms)
    return UnknownUserControl(event_type=event_type, data=bytes(payload[2:]))


def decode_control(type_id: int, payload: bytes | memoryview) -> ControlMessage:
    """Decode the payload of a protocol control or user control message.

    Args:
        type_id: the message type id, one of :data:`CONTROL_MESSAGE_TYPES`.
        payload: the message payload.

    Returns:
        The decoded message. User control events other than 0–4, 6 and 7 are returned as
        :class:`UnknownUserControl`.

    Raises:
        MessageError: the payload has the wrong length for its type or event (RTMP 1.0 §5.4,
            §7.1.7), a Set Chunk Size is 0 or has its first bit set (§5.4.1), a window is 0,
            or a Set Peer Bandwidth limit type is not 0, 1 or 2 (§5.4.5).
        LocalProtocolError: ``type_id`` is not a control message type (a caller bug).
    """
    if type_id == MessageType.USER_CONTROL:
        return _decode_user_control(payload)
    if type_id == MessageType.SET_CHUNK_SIZE:
        _expect_length("Set Chunk Size", payload, 4)
        size = _u32.unpack_from(payload)[0]
        # RTMP 1.0 §5.4.1: "0: This bit MUST be zero." / "Valid sizes are 1 to 2147483647".
        if size == 0 or size > _MAX_CHUNK_SIZE:
            raise MessageError(f"Set Chunk Size {size:#x} is outside 1..0x7FFFFFFF")
        return SetChunkSize(chunk_size=size)
    if type_id == MessageType.ABORT:
        _expect_length("Abort Message", payload, 4)
        return AbortMessage(chunk_stream_id=_u32.unpack_from(payload)[0])
    if type_id == MessageType.ACKNOWLEDGEMENT:
        _expect_length("Acknowledgement", payload, 4)
        return Acknowledgement(sequence_number=_u32.unpack_from(payload)[0])
    if type_id == MessageType.WINDOW_ACKNOWLEDGEMENT_SIZE:
        return WindowAcknowledgementSize(
            window_bytes=_decode_window("Window Acknowledgement Size", payload, 4)
        )
    if type_id == MessageType.SET_PEER_BANDWIDTH:
        window = _decode_window("Set Peer Bandwidth", payload, 5)
        limit = payload[4]
        if limit > LimitType.DYNAMIC:
            raise MessageError(f"Set Peer Bandwidth limit type {limit} is not 0, 1 or 2")
        return SetPeerBandwidth(window_bytes=window, limit_type=LimitType(limit))
    raise LocalProtocolError(f"message type {type_id} is not a control message type")


def _encode_payload(msg: ControlMessage) -> tuple[int, bytes]:
    if isinstance(msg, SetChunkSize):
        return MessageType.SET_CHUNK_SIZE, _u32.pack(msg.chunk_size)
    if isinstance(msg, AbortMessage):
        return MessageType.ABORT, _u32.pack(msg.chunk_stream_id)
    if isinstance(msg, Acknowledgement):
        return MessageType.ACKNOWLEDGEMENT, _u32.pack(msg.sequence_number)
    if isinstance(msg, WindowAcknowledgementSize):
        return MessageType.WINDOW_ACKNOWLEDGEMENT_SIZE, _u32.pack(msg.window_bytes)
    if isinstance(msg, SetPeerBandwidth):
        return MessageType.SET_PEER_BANDWIDTH, _u32_u8.pack(msg.window_bytes, msg.limit_type)
    if isinstance(msg, StreamBegin):
        event = _u16_u32.pack(UserControlEventType.STREAM_BEGIN, msg.stream_id)
    elif isinstance(msg, StreamEOF):
        event = _u16_u32.pack(UserControlEventType.STREAM_EOF, msg.stream_id)
    elif isinstance(msg, StreamDry):
        event = _u16_u32.pack(UserControlEventType.STREAM_DRY, msg.stream_id)
    elif isinstance(msg, SetBufferLength):
        event = _u16_2u32.pack(
            UserControlEventType.SET_BUFFER_LENGTH, msg.stream_id, msg.buffer_length_ms
        )
    elif isinstance(msg, StreamIsRecorded):
        event = _u16_u32.pack(UserControlEventType.STREAM_IS_RECORDED, msg.stream_id)
    elif isinstance(msg, PingRequest):
        event = _u16_u32.pack(UserControlEventType.PING_REQUEST, msg.timestamp_ms)
    elif isinstance(msg, PingResponse):
        event = _u16_u32.pack(UserControlEventType.PING_RESPONSE, msg.timestamp_ms)
    elif isinstance(msg, UnknownUserControl):
        event = msg.event_type.to_bytes(2, "big") + bytes(msg.data)
    else:
        raise LocalProtocolError(f"{type(msg).__name__} is not a control message")
    return MessageType.USER_CONTROL, event


def encode_control(msg: ControlMessage, *, timestamp_ms: int = 0) -> Message:
    """Build the message carrying a protocol control or user control message.

    Args:
        msg: the control message.
        timestamp_ms: the message timestamp, in milliseconds; receivers ignore it
            (RTMP 1.0 §5.4: "their timestamps are ignored").

    Returns:
        A message on chunk stream 2 and message stream 0 (RTMP 1.0 §5.4, §6.2).

    Raises:
        LocalProtocolError: ``msg`` is not a control message or ``timestamp_ms`` does not fit
            in 32 bits.
    """
    _check_u32("timestamp_ms", timestamp_ms)
    type_id, payload = _encode_payload(msg)
    return Message(
        type_id=type_id,
        timestamp_ms=timestamp_ms,
        message_stream_id=0,
        payload=payload,
        chunk_stream_id=ChunkStreamId.CONTROL,
    )
