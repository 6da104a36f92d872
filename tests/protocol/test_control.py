"""Tests for aiortmp.protocol.control (RTMP 1.0 §5.4, §6.2, §7.1.7)."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiortmp.protocol.chunk import ChunkReader, ChunkWriter
from aiortmp.protocol.control import (
    CONTROL_MESSAGE_TYPES,
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
    StreamDry,
    StreamEOF,
    StreamIsRecorded,
    UnknownUserControl,
    UserControlEventType,
    WindowAcknowledgementSize,
    decode_control,
    encode_control,
)
from aiortmp.protocol.errors import LocalProtocolError, MessageError
from aiortmp.protocol.messages import Message


def h(text: str) -> bytes:
    return bytes.fromhex(text)


VECTORS: list[tuple[ControlMessage, int, str]] = [
    (SetChunkSize(chunk_size=1), 1, "00000001"),
    (SetChunkSize(chunk_size=4096), 1, "00001000"),
    (SetChunkSize(chunk_size=0x7FFFFFFF), 1, "7fffffff"),
    (AbortMessage(chunk_stream_id=6), 2, "00000006"),
    (AbortMessage(chunk_stream_id=0xFFFFFFFF), 2, "ffffffff"),
    (Acknowledgement(sequence_number=0), 3, "00000000"),
    (Acknowledgement(sequence_number=0x12345678), 3, "12345678"),
    (WindowAcknowledgementSize(window_bytes=2500000), 5, "002625a0"),
    (WindowAcknowledgementSize(window_bytes=0xFFFFFFFF), 5, "ffffffff"),
    (SetPeerBandwidth(window_bytes=2500000, limit_type=LimitType.HARD), 6, "002625a0 00"),
    (SetPeerBandwidth(window_bytes=1, limit_type=LimitType.SOFT), 6, "00000001 01"),
    (SetPeerBandwidth(window_bytes=2500000, limit_type=LimitType.DYNAMIC), 6, "002625a0 02"),
    (StreamBegin(stream_id=0), 4, "0000 00000000"),
    (StreamBegin(stream_id=1), 4, "0000 00000001"),
    (StreamEOF(stream_id=1), 4, "0001 00000001"),
    (StreamDry(stream_id=0xFFFFFFFF), 4, "0002 ffffffff"),
    (SetBufferLength(stream_id=1, buffer_length_ms=3000), 4, "0003 00000001 00000bb8"),
    (StreamIsRecorded(stream_id=1), 4, "0004 00000001"),
    (PingRequest(timestamp_ms=0xDEADBEEF), 4, "0006 deadbeef"),
    (PingResponse(timestamp_ms=3343), 4, "0007 00000d0f"),
    (UnknownUserControl(event_type=5, data=b""), 4, "0005"),  # unassigned in RTMP 1.0
    (UnknownUserControl(event_type=26, data=h("00")), 4, "001a 00"),  # SWF verify request
    (UnknownUserControl(event_type=27, data=bytes(range(42))), 4, "001b" + bytes(range(42)).hex()),
    (UnknownUserControl(event_type=31, data=h("00000001")), 4, "001f 00000001"),  # BufferEmpty
    (UnknownUserControl(event_type=32, data=h("00000001")), 4, "0020 00000001"),  # BufferReady
    (UnknownUserControl(event_type=0xFFFF, data=b"xyz"), 4, "ffff 78797a"),
]
IDS = [f"{type(m).__name__}-{payload}" for m, _, payload in VECTORS]


@pytest.mark.parametrize(("message", "type_id", "payload"), VECTORS, ids=IDS)
def test_encode(message: ControlMessage, type_id: int, payload: str) -> None:
    # RTMP 1.0 §5.4: "MUST have message stream ID 0 ... and be sent in chunk stream ID 2".
    assert encode_control(message) == Message(
        type_id=type_id, timestamp_ms=0, message_stream_id=0, payload=h(payload), chunk_stream_id=2
    )
    assert encode_control(message, timestamp_ms=0xFFFFFFFF).timestamp_ms == 0xFFFFFFFF


@pytest.mark.parametrize(("message", "type_id", "payload"), VECTORS, ids=IDS)
def test_decode(message: ControlMessage, type_id: int, payload: str) -> None:
    assert decode_control(type_id, h(payload)) == message
    decoded = decode_control(type_id, memoryview(h(payload)))
    assert decoded == message
    if isinstance(decoded, UnknownUserControl):
        assert type(decoded.data) is bytes


@pytest.mark.parametrize(("message", "type_id", "payload"), VECTORS, ids=IDS)
def test_decode_rejects_trailing_and_missing_bytes(
    message: ControlMessage, type_id: int, payload: str
) -> None:
    if isinstance(message, UnknownUserControl):
        # Unknown events have no known length: extra bytes are data.
        assert decode_control(type_id, h(payload) + b"!") == UnknownUserControl(
            event_type=message.event_type, data=message.data + b"!"
        )
        return
    with pytest.raises(MessageError):
        decode_control(type_id, h(payload) + b"\x00")
    with pytest.raises(MessageError):
        decode_control(type_id, h(payload)[:-1])


@pytest.mark.parametrize(
    ("type_id", "payload"),
    [
        (1, "00000000"),  # §5.4.1: "MUST be at least 1 byte"
        (1, "80000000"),  # §5.4.1: "This bit MUST be zero"
        (1, "ffffffff"),
        (5, "00000000"),
        (6, "00000000 00"),
        (6, "00001000 03"),  # §5.4.5: limit type 0, 1 or 2
        (6, "00001000 ff"),
        (4, ""),
        (4, "00"),
        (4, "0000"),  # Stream Begin without its stream id
        (4, "0003 00000001"),  # SetBufferLength without the buffer length
        (4, "0006"),
    ],
)
def test_decode_rejects_bad_values(type_id: int, payload: str) -> None:
    with pytest.raises(MessageError):
        decode_control(type_id, h(payload))


@pytest.mark.parametrize("type_id", [0, 7, 8, 9, 18, 20, 22, 255])
def test_decode_rejects_non_control_types(type_id: int) -> None:
    with pytest.raises(LocalProtocolError):
        decode_control(type_id, h("00000001"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SetChunkSize(chunk_size=0),
        lambda: SetChunkSize(chunk_size=0x80000000),
        lambda: SetChunkSize(chunk_size=-1),
        lambda: AbortMessage(chunk_stream_id=-1),
        lambda: AbortMessage(chunk_stream_id=2**32),
        lambda: Acknowledgement(sequence_number=2**32),
        lambda: WindowAcknowledgementSize(window_bytes=0),
        lambda: WindowAcknowledgementSize(window_bytes=2**32),
        lambda: SetPeerBandwidth(window_bytes=0, limit_type=LimitType.HARD),
        lambda: StreamBegin(stream_id=-1),
        lambda: StreamEOF(stream_id=2**32),
        lambda: StreamDry(stream_id=2**32),
        lambda: SetBufferLength(stream_id=1, buffer_length_ms=2**32),
        lambda: SetBufferLength(stream_id=-1, buffer_length_ms=0),
        lambda: StreamIsRecorded(stream_id=2**32),
        lambda: PingRequest(timestamp_ms=-1),
        lambda: PingResponse(timestamp_ms=2**32),
        lambda: UnknownUserControl(event_type=0x10000, data=b""),
        lambda: UnknownUserControl(event_type=-1, data=b""),
    ],
)
def test_constructors_validate_ranges(make: Callable[[], object]) -> None:
    with pytest.raises(LocalProtocolError):
        make()


def test_encode_rejects_non_control_messages_and_bad_timestamps() -> None:
    with pytest.raises(LocalProtocolError):
        encode_control("not a message")  # type: ignore[arg-type]
    for timestamp in (-1, 2**32):
        with pytest.raises(LocalProtocolError):
            encode_control(StreamBegin(stream_id=1), timestamp_ms=timestamp)


def test_enums_follow_the_spec() -> None:
    assert [e.value for e in LimitType] == [0, 1, 2]
    assert {e.name: e.value for e in UserControlEventType} == {
        "STREAM_BEGIN": 0,
        "STREAM_EOF": 1,
        "STREAM_DRY": 2,
        "SET_BUFFER_LENGTH": 3,
        "STREAM_IS_RECORDED": 4,
        "PING_REQUEST": 6,
        "PING_RESPONSE": 7,
        "SWF_VERIFY_REQUEST": 26,
        "SWF_VERIFY_RESPONSE": 27,
        "BUFFER_EMPTY": 31,
        "BUFFER_READY": 32,
    }
    assert CONTROL_MESSAGE_TYPES == {1, 2, 3, 4, 5, 6}


@pytest.mark.parametrize("feed", ["whole", "bytewise", "trailing"])
def test_through_the_chunk_stream(feed: str) -> None:
    writer = ChunkWriter()
    messages = [m for m, _, _ in VECTORS]
    wire = b"".join(writer.write(encode_control(m, timestamp_ms=i)) for i, m in enumerate(messages))
    trailing = h("02 000000") if feed == "trailing" else b""
    reader = ChunkReader()
    got = []
    if feed == "bytewise":
        for i in range(len(wire)):
            reader.receive_data(wire[i : i + 1])
            while (m := reader.next_message()) is not None:
                got.append(m)
    else:
        reader.receive_data(wire + trailing)
        while (m := reader.next_message()) is not None:
            got.append(m)
    assert reader.buffered_bytes == len(trailing)
    assert [m.timestamp_ms for m in got] == list(range(len(messages)))
    assert [decode_control(m.type_id, m.payload) for m in got] == messages


# FFmpeg 9 as a server (ffmpeg -listen 1) answering an FFmpeg publisher: the server-to-client
# bytes after the handshake, zlib-compressed. Its control messages come first.
FFMPEG_SERVER = zlib.decompress(
    base64.b64decode(
        "eNp1kdFKwzAUhk+ztnNsDpGKV5Mi6NWozj3Axqq7U4SCXkrXHDXSJaNJdZc+ik8igi/kI5g2XbeBnoucPzl/Didf"
        "CBRhO2U6PfmYlMJxC03MxrXLBGZnW3p5b5T60ytWAs2HDGWeKhj9GGsD3Me5vMOMwO70Ojob9s/7g/7gYgidJF7E"
        "M5YyxVDCeARVtBrgpPiKKQFXqljlEuxEUCTQu0EVCs4xUUzwoJJBlCcJSglt+o0yydiiqBI4WFt9WViQIg2gK2Yv"
        "+vSK656MP8E6WmGZjjwCO4JP7i8Fx7rowPjLKOPyvI3HjlcmU+vqWlvwaXibz1Imn81pb+vG3qrtCtRfbb3KtEXf"
        "MsSXnlUS16NGhlI96r8ADzXASGUYz4NqtEDfzZRGt0luf+kz6XPx5i+MCyk0KaqYpZKAtSz/qIjj6tc7FFNUaFrX"
        "L3LqiX4BG4h2xw=="
    )
)


def test_ffmpeg_server_capture() -> None:
    reader = ChunkReader()
    reader.receive_data(FFMPEG_SERVER)
    control = []
    while (m := reader.next_message()) is not None:
        if m.type_id in CONTROL_MESSAGE_TYPES:
            control.append(decode_control(m.type_id, m.payload))
    assert reader.buffered_bytes == 0
    assert control == [
        WindowAcknowledgementSize(window_bytes=2500000),
        SetPeerBandwidth(window_bytes=2500000, limit_type=LimitType.DYNAMIC),
        StreamBegin(stream_id=0),
        SetChunkSize(chunk_size=128),
        StreamBegin(stream_id=1),
    ]


u32 = st.integers(0, 0xFFFFFFFF)
control_messages = st.one_of(
    st.builds(SetChunkSize, chunk_size=st.integers(1, 0x7FFFFFFF)),
    st.builds(AbortMessage, chunk_stream_id=u32),
    st.builds(Acknowledgement, sequence_number=u32),
    st.builds(WindowAcknowledgementSize, window_bytes=st.integers(1, 0xFFFFFFFF)),
    st.builds(
        SetPeerBandwidth,
        window_bytes=st.integers(1, 0xFFFFFFFF),
        limit_type=st.sampled_from(LimitType),
    ),
    st.builds(StreamBegin, stream_id=u32),
    st.builds(StreamEOF, stream_id=u32),
    st.builds(StreamDry, stream_id=u32),
    st.builds(SetBufferLength, stream_id=u32, buffer_length_ms=u32),
    st.builds(StreamIsRecorded, stream_id=u32),
    st.builds(PingRequest, timestamp_ms=u32),
    st.builds(PingResponse, timestamp_ms=u32),
    st.builds(
        UnknownUserControl,
        event_type=st.integers(0, 0xFFFF).filter(lambda e: e not in {0, 1, 2, 3, 4, 6, 7}),
        data=st.binary(max_size=64),
    ),
)


@given(message=control_messages, timestamp=u32)
def test_round_trip(message: ControlMessage, timestamp: int) -> None:
    encoded = encode_control(message, timestamp_ms=timestamp)
    assert encoded.timestamp_ms == timestamp
    assert decode_control(encoded.type_id, encoded.payload) == message


@settings(max_examples=500)
@given(type_id=st.sampled_from(sorted(CONTROL_MESSAGE_TYPES)), payload=st.binary(max_size=12))
def test_random_payloads_decode_exactly_or_raise_message_error(
    type_id: int, payload: bytes
) -> None:
    try:
        decoded = decode_control(type_id, payload)
    except MessageError:
        return
    # Whatever decodes re-encodes to the same bytes.
    encoded = encode_control(decoded)
    assert (encoded.type_id, encoded.payload) == (type_id, payload)
