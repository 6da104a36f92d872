"""Structure-aware inputs: well-framed messages whose *contents* are arbitrary.

Byte mutations mostly break the chunk framing, so the command layer behind it sees few
interesting commands. These strategies build valid chunk streams of commands with any
AMF arguments (NaN and infinite numbers, wrong types, deep or empty values), data
messages and control messages, so the NetConnection/NetStream tables and the argument
handling of every command are exercised.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from aiortmp.protocol import amf0, amf3
from aiortmp.protocol.chunk import ChunkWriter
from aiortmp.protocol.commands import status_object
from aiortmp.protocol.control import (
    AbortMessage,
    Acknowledgement,
    ControlMessage,
    LimitType,
    PingRequest,
    PingResponse,
    SetBufferLength,
    SetChunkSize,
    SetPeerBandwidth,
    StreamBegin,
    StreamEOF,
    UnknownUserControl,
    WindowAcknowledgementSize,
    encode_control,
)
from aiortmp.protocol.messages import Message, MessageType

__all__ = [
    "amf0_bodies",
    "amf3_bodies",
    "amf_values",
    "client_streams",
    "command_bodies",
    "server_streams",
]

SERVER_COMMANDS = (
    "connect",
    "createStream",
    "releaseStream",
    "FCPublish",
    "FCUnpublish",
    "FCSubscribe",
    "FCUnsubscribe",
    "publish",
    "play",
    "play2",
    "deleteStream",
    "closeStream",
    "receiveAudio",
    "receiveVideo",
    "pause",
    "seek",
    "getStreamLength",
    "_result",
    "_error",
    "onBWDone",
    "_checkbw",
    "customCall",
)
CLIENT_COMMANDS = ("_result", "_error", "onStatus", "onFCPublish", "onBWDone", "|RtmpSampleAccess")

_numbers = st.one_of(
    st.floats(),
    st.sampled_from([0.0, 1.0, 2.0, -1.0, -2.0, 1e300, float("nan"), float("inf"), 2.0**32]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _numbers,
    st.text(max_size=12),
    st.sampled_from(["live", "cam", "cam?key=a", "", "NetStream.Play.Start", "../x"]),
    st.just(amf0.UNDEFINED),
)


def amf_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any value both AMF encoders accept: scalars, lists, objects, ECMA arrays."""
    return st.recursive(
        _scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4),
            st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4).map(
                amf0.ECMAArray
            ),
        ),
        max_leaves=max_leaves,
    )


def amf0_bodies() -> st.SearchStrategy[bytes]:
    """AMF0 encodings of a few arbitrary values."""
    return st.lists(amf_values(), min_size=1, max_size=4).map(lambda vs: amf0.encode(*vs))


def amf3_bodies() -> st.SearchStrategy[bytes]:
    """AMF3 encodings of a few arbitrary values."""
    return st.lists(amf_values(), min_size=1, max_size=4).map(lambda vs: amf3.encode(*vs))


@st.composite
def _command(draw: st.DrawFn, names: tuple[str, ...]) -> Message:
    name = draw(st.one_of(st.sampled_from(names), st.text(max_size=8)))
    tid = draw(st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0]), _numbers))
    command_object = draw(st.one_of(st.none(), amf_values(6)))
    arguments = draw(st.lists(amf_values(6), max_size=4))
    if name == "onStatus" and draw(st.booleans()):
        arguments = [status_object(draw(st.text(max_size=30)), draw(st.text(max_size=10)))]
    body = amf0.encode(name, tid, command_object, *arguments)
    amf3_framed = draw(st.booleans()) and draw(st.booleans())
    return Message(
        type_id=MessageType.COMMAND_AMF3 if amf3_framed else MessageType.COMMAND_AMF0,
        timestamp_ms=0,
        message_stream_id=draw(st.sampled_from([0, 0, 1, 1, 2, 7, 0xFFFFFFFF])),
        payload=(b"\x00" if amf3_framed else b"") + body,
    )


@st.composite
def _data(draw: st.DrawFn) -> Message:
    name = draw(st.sampled_from(["@setDataFrame", "onMetaData", "onCuePoint", "x"]))
    values = draw(st.lists(amf_values(8), max_size=3))
    if name == "@setDataFrame" and draw(st.booleans()):
        values = ["onMetaData", *values]
    return Message(
        type_id=MessageType.DATA_AMF0,
        timestamp_ms=draw(st.integers(0, 0xFFFFFFFF)),
        message_stream_id=draw(st.sampled_from([0, 1, 2])),
        payload=amf0.encode(name, *values),
        chunk_stream_id=5,
    )


@st.composite
def _media(draw: st.DrawFn) -> Message:
    type_id = draw(st.sampled_from([MessageType.AUDIO, MessageType.VIDEO, 22, 16, 200]))
    return Message(
        type_id=type_id,
        timestamp_ms=draw(st.integers(0, 0xFFFFFFFF)),
        message_stream_id=draw(st.sampled_from([0, 1, 2])),
        payload=draw(st.binary(max_size=64)),
        chunk_stream_id=draw(st.sampled_from([4, 6, 7, 64, 320, 65599])),
    )


_controls: st.SearchStrategy[ControlMessage] = st.one_of(
    st.builds(SetChunkSize, chunk_size=st.sampled_from([1, 2, 128, 4096, 0x7FFFFFFF])),
    st.builds(AbortMessage, chunk_stream_id=st.sampled_from([2, 3, 4, 6, 0xFFFFFFFF])),
    st.builds(Acknowledgement, sequence_number=st.integers(0, 0xFFFFFFFF)),
    st.builds(WindowAcknowledgementSize, window_bytes=st.sampled_from([1, 100, 2_500_000])),
    st.builds(
        SetPeerBandwidth,
        window_bytes=st.sampled_from([1, 2_500_000]),
        limit_type=st.sampled_from(LimitType),
    ),
    st.builds(StreamBegin, stream_id=st.integers(0, 3)),
    st.builds(StreamEOF, stream_id=st.integers(0, 3)),
    st.builds(SetBufferLength, stream_id=st.integers(0, 3), buffer_length_ms=st.integers(0, 5000)),
    st.builds(PingRequest, timestamp_ms=st.integers(0, 0xFFFFFFFF)),
    st.builds(PingResponse, timestamp_ms=st.integers(0, 0xFFFFFFFF)),
    st.builds(UnknownUserControl, event_type=st.integers(0, 0xFFFF), data=st.binary(max_size=8)),
)


def _chunked(messages: list[Message]) -> bytes:
    """Chunk ``messages``, applying each Set Chunk Size as a peer must (RTMP 1.0 §5.4.1)."""
    writer = ChunkWriter()
    out = bytearray()
    for message in messages:
        out += writer.write(message)
        if message.type_id == MessageType.SET_CHUNK_SIZE:
            writer.set_chunk_size(int.from_bytes(message.payload, "big"))
    return bytes(out)


def _stream(names: tuple[str, ...], prefix: list[Message]) -> st.SearchStrategy[bytes]:
    message = st.one_of(
        _command(names),
        _command(names),
        _data(),
        _media(),
        _controls.map(encode_control),
    )
    return st.lists(message, max_size=10).map(lambda ms: _chunked(prefix + ms))


_CONNECT = Message(
    type_id=MessageType.COMMAND_AMF0,
    timestamp_ms=0,
    message_stream_id=0,
    payload=amf0.encode("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"}),
)
_CREATE_STREAM = Message(
    type_id=MessageType.COMMAND_AMF0,
    timestamp_ms=0,
    message_stream_id=0,
    payload=amf0.encode("createStream", 2.0, None),
)


def server_streams() -> st.SearchStrategy[bytes]:
    """What a client may send a server after the handshake: connect first, usually."""
    return st.one_of(
        _stream(SERVER_COMMANDS, []),
        _stream(SERVER_COMMANDS, [_CONNECT]),
        _stream(SERVER_COMMANDS, [_CONNECT, _CREATE_STREAM]),
    )


def client_streams() -> st.SearchStrategy[bytes]:
    """What a server may send a client after the handshake."""
    return _stream(CLIENT_COMMANDS, [])


@st.composite
def _command_body(draw: st.DrawFn) -> bytes:
    message = draw(_command(SERVER_COMMANDS + CLIENT_COMMANDS))
    selector = 1 if message.type_id == MessageType.COMMAND_AMF3 else 0
    return bytes((selector,)) + message.payload


def command_bodies() -> st.SearchStrategy[bytes]:
    """A selector byte (see the ``commands`` target) + a command or data body."""
    data = _data().map(lambda m: b"\x02" + m.payload)
    return st.one_of(_command_body(), data)
