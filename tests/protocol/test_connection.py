"""RTMPConnection: protocol control handled by the connection itself (RTMP 1.0 §5.4)."""

from __future__ import annotations

import pytest

from aiortmp.protocol.connection import ConnectionState, Role, RTMPConnection
from aiortmp.protocol.control import (
    Acknowledgement,
    PingRequest,
    PingResponse,
    SetChunkSize,
    WindowAcknowledgementSize,
)
from aiortmp.protocol.errors import ChunkError, LocalProtocolError, MessageError
from aiortmp.protocol.events import ControlReceived, HandshakeComplete, MessageReceived
from aiortmp.protocol.messages import Message, MessageType, split_aggregate


def pair() -> tuple[RTMPConnection, RTMPConnection]:
    client = RTMPConnection(Role.CLIENT)
    server = RTMPConnection(Role.SERVER)
    client.initiate()
    for _ in range(3):
        server.receive_data(client.data_to_send())
        client.receive_data(server.data_to_send())
    assert client.state is server.state is ConnectionState.OPEN
    return client, server


def events(conn: RTMPConnection) -> list[object]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def media(size: int, ts: int = 0) -> Message:
    return Message(
        type_id=9, timestamp_ms=ts, message_stream_id=1, payload=bytes(size), chunk_stream_id=6
    )


def test_handshake_event_and_digest_scheme() -> None:
    client, server = pair()
    (hs,) = [e for e in events(server) if isinstance(e, HandshakeComplete)]
    assert hs.peer_version == 3 and hs.digest_scheme in (0, 1)


def test_acknowledgement_sent_when_window_is_crossed() -> None:
    client, server = pair()
    events(server)
    client.send_control(WindowAcknowledgementSize(window_bytes=5000))
    server.receive_data(client.data_to_send())
    assert server.data_to_send() == b""  # nothing to acknowledge yet
    client.send_message(media(3000))
    server.receive_data(client.data_to_send())
    assert server.data_to_send() == b""
    client.send_message(media(3000, 40))
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    acks = [e.control for e in events(client) if isinstance(e, ControlReceived)]
    assert len(acks) == 1 and isinstance(acks[0], Acknowledgement)
    assert acks[0].sequence_number == server.bytes_received
    assert client.peer_ack_bytes == server.bytes_received


def test_ping_request_is_answered_with_the_same_timestamp() -> None:
    client, server = pair()
    server.send_control(PingRequest(timestamp_ms=123456))
    client.receive_data(server.data_to_send())
    server.receive_data(client.data_to_send())
    controls = [e.control for e in events(server) if isinstance(e, ControlReceived)]
    assert PingResponse(timestamp_ms=123456) in controls


def test_set_chunk_size_applies_to_following_chunks() -> None:
    client, server = pair()
    client.send_control(SetChunkSize(chunk_size=60_000))
    client.send_message(media(50_000))
    data = client.data_to_send()
    # One chunk: 12-byte header + 50 000 bytes after the 16-byte Set Chunk Size message.
    assert len(data) == 16 + 12 + 50_000
    server.receive_data(data)
    (msg,) = [e.message for e in events(server) if isinstance(e, MessageReceived)]
    assert len(msg.payload) == 50_000 and server.peer_chunk_size == 60_000


def test_aggregate_message_split_with_corrected_timestamps() -> None:
    def sub(type_id: int, ts: int, body: bytes) -> bytes:
        head = bytes([type_id]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        head += bytes([ts >> 24]) + b"\x00\x00\x00"
        return head + body + (11 + len(body)).to_bytes(4, "big")

    body = sub(9, 1000, b"\x17\x01video") + sub(8, 1020, b"\xaf\x01audio")
    client, server = pair()
    client.send_message(
        Message(
            type_id=MessageType.AGGREGATE,
            timestamp_ms=5000,
            message_stream_id=1,
            payload=body,
            chunk_stream_id=6,
        )
    )
    server.receive_data(client.data_to_send())
    msgs = [e.message for e in events(server) if isinstance(e, MessageReceived)]
    assert [(m.type_id, m.timestamp_ms, m.payload) for m in msgs] == [
        (9, 5000, b"\x17\x01video"),
        (8, 5020, b"\xaf\x01audio"),
    ]
    assert all(m.message_stream_id == 1 for m in msgs)


@pytest.mark.parametrize("body", [b"\x09\x00\x00", b"\x09\x00\x01\x00" + bytes(7)])
def test_truncated_aggregate_raises_message_error(body: bytes) -> None:
    with pytest.raises(MessageError):
        split_aggregate(Message(type_id=22, timestamp_ms=0, message_stream_id=1, payload=body))


def test_bad_input_closes_the_connection() -> None:
    client, server = pair()
    with pytest.raises(ChunkError):
        server.receive_data(b"\xc5" + bytes(20))  # fmt 3 on a csid never seen
    assert server.state is ConnectionState.CLOSED
    server.receive_data(b"more")  # ignored once closed
    with pytest.raises(LocalProtocolError):
        server.send_message(media(1))
