"""Tests for aiortmp.protocol.chunk (RTMP 1.0 §5.3).

Every byte vector is fed whole, one byte at a time, and followed by trailing bytes of an
incomplete chunk. The reader is checked against hand-written vectors (the spec's own examples
included), bytes captured from an FFmpeg publish session, and the writer in property tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiortmp.protocol.chunk import (
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    ChunkReader,
    ChunkWriter,
    serialize_message,
)
from aiortmp.protocol.errors import (
    ChunkError,
    LimitExceededError,
    LocalProtocolError,
    RemoteProtocolError,
)
from aiortmp.protocol.messages import Message

# An incomplete fmt 0 chunk on csid 63, which no test otherwise uses.
TRAILING = bytes.fromhex("3f000001")
FEEDS = ["whole", "bytewise", "trailing"]


def h(text: str) -> bytes:
    """Bytes from hex with spaces, so vectors can be laid out field by field."""
    return bytes.fromhex(text)


def drain(
    reader: ChunkReader, on_message: Callable[[Message], None] | None = None
) -> list[Message]:
    out = []
    while (message := reader.next_message()) is not None:
        out.append(message)
        if on_message is not None:
            on_message(message)
    return out


def apply_set_chunk_size(reader: ChunkReader) -> Callable[[Message], None]:
    """What the connection layer does: apply a Set Chunk Size before parsing further."""

    def on_message(message: Message) -> None:
        if message.type_id == 1:
            reader.set_chunk_size(int.from_bytes(message.payload, "big"))

    return on_message


def parse(
    data: bytes,
    feed: str,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    follow_set_chunk_size: bool = False,
    **limits: int,
) -> list[Message]:
    reader = ChunkReader(**limits)
    reader.set_chunk_size(chunk_size)
    on_message = apply_set_chunk_size(reader) if follow_set_chunk_size else None
    out: list[Message] = []
    if feed == "bytewise":
        for i in range(len(data)):
            reader.receive_data(data[i : i + 1])
            out += drain(reader, on_message)
        assert reader.buffered_bytes == 0
    elif feed == "whole":
        reader.receive_data(data)
        out = drain(reader, on_message)
        assert reader.buffered_bytes == 0
    else:
        reader.receive_data(data + TRAILING)
        out = drain(reader, on_message)
        assert reader.buffered_bytes == len(TRAILING)
    assert reader.bytes_received == len(data) + (len(TRAILING) if feed == "trailing" else 0)
    return out


def msg(type_id: int, timestamp_ms: int, msid: int, payload: bytes, csid: int) -> Message:
    return Message(
        type_id=type_id,
        timestamp_ms=timestamp_ms,
        message_stream_id=msid,
        payload=payload,
        chunk_stream_id=csid,
    )


def write_all(messages: list[Message], chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    writer = ChunkWriter(chunk_size=chunk_size)
    return b"".join(writer.write(m) for m in messages)


# --- Reader: byte vectors, each fed whole / bytewise / with trailing bytes --------------------


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize(
    ("basic_header", "csid"),
    [
        ("03", 3),  # 1 byte: csid 2..63
        ("02", 2),
        ("3e", 62),
        ("00 00", 64),  # 2 bytes: csid 64..319
        ("00 ff", 319),
        ("01 00 01", 320),  # 3 bytes: csid 64..65599
        ("01 ff ff", 65599),
        ("01 00 00", 64),  # csid 64..319 may use the 3-byte form too (§5.3.1.1)
        ("01 ec 00", 300),
    ],
)
def test_basic_header_forms(feed: str, basic_header: str, csid: int) -> None:
    data = h(basic_header + " 000064 000005 14 00000000") + b"hello"
    assert parse(data, feed) == [msg(20, 100, 0, b"hello", csid)]


@pytest.mark.parametrize("feed", FEEDS)
def test_basic_header_forms_for_every_fmt(feed: str) -> None:
    # csid 320 in the 3-byte form, through fmt 0, 1, 2, 3 (new message) and a continuation.
    data = b"".join(
        [
            h("01 00 01  000010 000002 08 05000000") + b"ab",  # fmt 0, ts 16, msid 5
            h("41 00 01  000004 000003 09") + b"cde",  # fmt 1, delta 4, type 9, length 3
            h("81 00 01  000006") + b"fgh",  # fmt 2, delta 6
            h("c1 00 01") + b"ijk",  # fmt 3 new message, delta 6 again
        ]
    )
    assert parse(data, feed) == [
        msg(8, 16, 5, b"ab", 320),
        msg(9, 20, 5, b"cde", 320),
        msg(9, 26, 5, b"fgh", 320),
        msg(9, 32, 5, b"ijk", 320),
    ]


@pytest.mark.parametrize("feed", FEEDS)
def test_message_stream_id_is_little_endian(feed: str) -> None:
    data = h("03 000000 000001 12 04030201") + b"x"
    assert parse(data, feed) == [msg(18, 0, 0x01020304, b"x", 3)]


@pytest.mark.parametrize("feed", FEEDS)
def test_fmt1_fmt2_fmt3_take_fields_from_previous_header(feed: str) -> None:
    data = b"".join(
        [
            h("03 0003e8 000002 08 07000000") + b"a1",  # fmt 0: ts 1000, msid 7
            h("43 000014 000003 09") + b"v12",  # fmt 1: +20, new type and length
            h("83 00000a") + b"v34",  # fmt 2: +10
            h("c3") + b"v56",  # fmt 3 starting a message: +10 again (§5.3.1.2.4)
            h("c3") + b"v78",
        ]
    )
    assert parse(data, feed) == [
        msg(8, 1000, 7, b"a1", 3),
        msg(9, 1020, 7, b"v12", 3),
        msg(9, 1030, 7, b"v34", 3),
        msg(9, 1040, 7, b"v56", 3),
        msg(9, 1050, 7, b"v78", 3),
    ]


@pytest.mark.parametrize("feed", FEEDS)
def test_fmt3_after_fmt0_repeats_the_fmt0_timestamp_as_delta(feed: str) -> None:
    # RTMP 1.0 §5.3.1.2.4: "If a Type 3 chunk follows a Type 0 chunk, then the timestamp delta
    # for this Type 3 chunk is the same as the timestamp of the Type 0 chunk." SRS documents
    # FMLE sending exactly this (audio at 26, then 0xC4 -> 52).
    data = h("04 00001a 000002 08 01000000") + b"a1" + h("c4") + b"a2" + h("c4") + b"a3"
    assert parse(data, feed) == [
        msg(8, 26, 1, b"a1", 4),
        msg(8, 52, 1, b"a2", 4),
        msg(8, 78, 1, b"a3", 4),
    ]


SPEC_EXAMPLE_1 = [msg(8, 1000 + 20 * i, 12345, bytes([i]) * 32, 3) for i in range(4)]
SPEC_EXAMPLE_1_WIRE = b"".join(
    [
        h("03 0003e8 000020 08 39300000") + bytes([0]) * 32,
        h("83 000014") + bytes([1]) * 32,
        h("c3") + bytes([2]) * 32,
        h("c3") + bytes([3]) * 32,
    ]
)
SPEC_EXAMPLE_2_PAYLOAD = bytes(i % 251 for i in range(307))
SPEC_EXAMPLE_2 = msg(9, 1000, 12346, SPEC_EXAMPLE_2_PAYLOAD, 4)
SPEC_EXAMPLE_2_WIRE = b"".join(
    [
        h("04 0003e8 000133 09 3a300000") + SPEC_EXAMPLE_2_PAYLOAD[:128],
        h("c4") + SPEC_EXAMPLE_2_PAYLOAD[128:256],
        h("c4") + SPEC_EXAMPLE_2_PAYLOAD[256:],
    ]
)


@pytest.mark.parametrize("feed", FEEDS)
def test_spec_example_1_audio_stream(feed: str) -> None:
    # RTMP 1.0 §5.3.2.1: chunks of 44, 36, 33 and 33 bytes.
    assert len(SPEC_EXAMPLE_1_WIRE) == 44 + 36 + 33 + 33
    assert parse(SPEC_EXAMPLE_1_WIRE, feed) == SPEC_EXAMPLE_1


@pytest.mark.parametrize("feed", FEEDS)
def test_spec_example_2_message_split_into_chunks(feed: str) -> None:
    # RTMP 1.0 §5.3.2.2: chunks of 140, 129 and 52 bytes.
    assert len(SPEC_EXAMPLE_2_WIRE) == 140 + 129 + 52
    assert parse(SPEC_EXAMPLE_2_WIRE, feed) == [SPEC_EXAMPLE_2]


@pytest.mark.parametrize("feed", FEEDS)
def test_zero_length_messages(feed: str) -> None:
    data = h("03 000005 000000 14 00000000") + h("c3") + h("43 000001 000000 12") + h("83 000002")
    assert parse(data, feed) == [
        msg(20, 5, 0, b"", 3),
        msg(20, 10, 0, b"", 3),
        msg(18, 11, 0, b"", 3),
        msg(18, 13, 0, b"", 3),
    ]


# --- Extended timestamps (§5.3.1.3) ----------------------------------------------------------

PAYLOAD_200 = b"\xaa" * 200  # never mistaken for a repeated extended timestamp


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("timestamp", [0xFFFFFF, 0x01000000, 0xFFFFFFFF])
def test_extended_timestamp_on_fmt0(feed: str, timestamp: int) -> None:
    data = h("03 ffffff 000003 09 01000000") + timestamp.to_bytes(4, "big") + b"abc"
    assert parse(data, feed) == [msg(9, timestamp, 1, b"abc", 3)]


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("repeated", [True, False], ids=["repeated", "omitted"])
def test_extended_timestamp_on_fmt3_continuations(feed: str, repeated: bool) -> None:
    # FFmpeg and Flash repeat the field on every fmt 3 chunk; old librtmp does not.
    ext = h("01000000") if repeated else b""
    data = b"".join(
        [
            h("03 ffffff 0000c8 09 01000000 01000000") + PAYLOAD_200[:128],
            h("c3") + ext + PAYLOAD_200[128:],
        ]
    )
    assert parse(data, feed) == [msg(9, 0x01000000, 1, PAYLOAD_200, 3)]


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("repeated", ["delta", "absolute", "omitted"])
def test_extended_delta_on_fmt1_and_continuations(feed: str, repeated: str) -> None:
    # The continuation may repeat the extended field (FFmpeg: the delta) or, as SRS
    # expects, the absolute timestamp; both are consumed, anything else is payload.
    ext = {"delta": h("01000000"), "absolute": h("01000005"), "omitted": b""}[repeated]
    data = b"".join(
        [
            h("03 000005 000001 08 01000000") + b"a",
            h("43 ffffff 0000c8 09 01000000") + PAYLOAD_200[:128],
            h("c3") + ext + PAYLOAD_200[128:],
        ]
    )
    assert parse(data, feed) == [
        msg(8, 5, 1, b"a", 3),
        msg(9, 0x01000005, 1, PAYLOAD_200, 3),
    ]


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("repeated", [True, False], ids=["repeated", "omitted"])
def test_fmt3_new_message_after_extended_fmt0(feed: str, repeated: bool) -> None:
    ext = h("01000000") if repeated else b""
    data = h("03 ffffff 000001 08 01000000 01000000") + b"a" + h("c3") + ext + b"b"
    assert parse(data, feed) == [
        msg(8, 0x01000000, 1, b"a", 3),
        msg(8, 0x02000000, 1, b"b", 3),
    ]


@pytest.mark.parametrize("feed", FEEDS)
def test_fmt3_new_message_after_extended_delta(feed: str) -> None:
    data = b"".join(
        [
            h("03 000000 000001 08 01000000") + b"a",
            h("83 ffffff 01000000") + b"b",
            h("c3 01000000") + b"c",
            h("83 000001") + b"d",  # no longer extended
            h("c3") + b"e",
        ]
    )
    assert parse(data, feed) == [
        msg(8, 0, 1, b"a", 3),
        msg(8, 0x01000000, 1, b"b", 3),
        msg(8, 0x02000000, 1, b"c", 3),
        msg(8, 0x02000001, 1, b"d", 3),
        msg(8, 0x02000002, 1, b"e", 3),
    ]


@pytest.mark.parametrize("feed", FEEDS)
def test_timestamps_wrap_at_32_bits(feed: str) -> None:
    data = b"".join(
        [
            h("03 ffffff 000001 08 01000000 fffffff0") + b"a",
            h("83 000020") + b"b",  # 0xFFFFFFF0 + 0x20 wraps to 0x10
            h("c3") + b"c",
            h("83 ffffff ffffffff") + b"d",  # + (2**32 - 1) is -1
        ]
    )
    assert parse(data, feed) == [
        msg(8, 0xFFFFFFF0, 1, b"a", 3),
        msg(8, 0x10, 1, b"b", 3),
        msg(8, 0x30, 1, b"c", 3),
        msg(8, 0x2F, 1, b"d", 3),
    ]


def test_omitted_extended_timestamp_decided_before_four_bytes_arrive() -> None:
    # The last chunk holds one byte, 0xAA, which cannot start 0x01000000: the message is
    # complete without waiting for more bytes.
    data = h("03 ffffff 000081 09 01000000 01000000") + PAYLOAD_200[:128] + h("c3") + b"\xaa"
    reader = ChunkReader()
    reader.receive_data(data)
    assert drain(reader) == [msg(9, 0x01000000, 1, PAYLOAD_200[:128] + b"\xaa", 3)]


def test_omitted_extended_timestamp_ambiguous_prefix_waits_for_more_bytes() -> None:
    # The last chunk's two bytes 01 00 could be the start of a repeated 01000000: the
    # reader waits until the next bytes tell them apart.
    payload = b"\xaa" * 128 + b"\x01\x00"
    data = h("03 ffffff 000082 09 01000000 01000000") + payload[:128] + h("c3") + payload[128:]
    reader = ChunkReader()
    reader.receive_data(data)
    assert reader.next_message() is None
    reader.receive_data(h("04 000000 000000 08 00000000"))
    assert drain(reader) == [msg(9, 0x01000000, 1, payload, 3), msg(8, 0, 0, b"", 4)]


# --- Interleaving, abort, Set Chunk Size ------------------------------------------------------

VIDEO_300 = bytes(range(256)) + bytes(range(44))
INTERLEAVED = b"".join(
    [
        h("06 000064 00012c 09 01000000") + VIDEO_300[:128],
        h("04 000064 000002 08 01000000") + b"a1",
        h("c6") + VIDEO_300[128:256],
        h("c4") + b"a2",  # new audio message: delta 100 repeated from the fmt 0 timestamp
        h("c6") + VIDEO_300[256:],
    ]
)


@pytest.mark.parametrize("feed", FEEDS)
def test_interleaved_chunk_streams(feed: str) -> None:
    # A video message on csid 6 split by whole audio messages on csid 4 (§5.3: chunks of
    # different chunk streams interleave).
    assert parse(INTERLEAVED, feed) == [
        msg(8, 100, 1, b"a1", 4),
        msg(8, 200, 1, b"a2", 4),
        msg(9, 100, 1, VIDEO_300, 6),
    ]


def test_abort_drops_partial_message_and_keeps_header() -> None:
    reader = ChunkReader(max_pending_bytes=300)
    reader.receive_data(h("06 00000a 00012c 09 01000000") + VIDEO_300[:128])
    assert reader.next_message() is None
    reader.abort(6)  # RTMP 1.0 §5.4.2
    # The next fmt 3 chunk starts a new message from the kept header (delta 10 again),
    # and its 300 bytes fit because the aborted message no longer counts as pending.
    reader.receive_data(
        h("c6") + VIDEO_300[:128] + h("c6") + VIDEO_300[128:256] + h("c6") + VIDEO_300[256:]
    )
    assert drain(reader) == [msg(9, 20, 1, VIDEO_300, 6)]


def test_abort_without_partial_message_is_a_no_op() -> None:
    reader = ChunkReader()
    reader.abort(6)
    reader.abort(0xFFFFFFFF)
    reader.receive_data(SPEC_EXAMPLE_1_WIRE)
    reader.abort(3)
    assert drain(reader) == SPEC_EXAMPLE_1


SET_CHUNK_SIZE_256 = h("02 000000 000004 01 00000000 00000100")


@pytest.mark.parametrize("feed", FEEDS)
def test_set_chunk_size_applies_before_the_next_byte_is_parsed(feed: str) -> None:
    # The 200-byte message after the Set Chunk Size is one 256-byte chunk: parsed at the
    # old size of 128 it would not be.
    data = SET_CHUNK_SIZE_256 + h("06 000000 0000c8 09 01000000") + PAYLOAD_200
    assert parse(data, feed, follow_set_chunk_size=True) == [
        msg(1, 0, 0, h("00000100"), 2),
        msg(9, 0, 1, PAYLOAD_200, 6),
    ]


@pytest.mark.parametrize("feed", FEEDS)
def test_set_chunk_size_in_the_middle_of_a_message(feed: str) -> None:
    data = b"".join(
        [
            h("06 000000 00012c 09 01000000") + VIDEO_300[:128],
            SET_CHUNK_SIZE_256,
            h("c6") + VIDEO_300[128:],  # the remaining 172 bytes in one chunk
        ]
    )
    assert parse(data, feed, follow_set_chunk_size=True) == [
        msg(1, 0, 0, h("00000100"), 2),
        msg(9, 0, 1, VIDEO_300, 6),
    ]


@pytest.mark.parametrize("size", [1, 128, 0xFFFFFF, MAX_CHUNK_SIZE])
def test_reader_accepts_valid_chunk_sizes(size: int) -> None:
    reader = ChunkReader()
    reader.set_chunk_size(size)
    assert reader.chunk_size == size


@pytest.mark.parametrize("size", [0, -1, 0x80000000, 0xFFFFFFFF])
def test_reader_rejects_invalid_chunk_sizes(size: int) -> None:
    reader = ChunkReader()
    with pytest.raises(ChunkError):
        reader.set_chunk_size(size)
    assert reader.chunk_size == DEFAULT_CHUNK_SIZE


def test_chunk_size_one() -> None:
    data = h("03 000000 000003 14 00000000") + b"a" + h("c3") + b"b" + h("c3") + b"c"
    assert parse(data, "bytewise", chunk_size=1) == [msg(20, 0, 0, b"abc", 3)]


def test_counters_and_buffer_compaction() -> None:
    messages = [msg(9, i, 1, bytes([i % 256]) * 1000, 6) for i in range(300)]
    wire = write_all(messages, chunk_size=4096)
    reader = ChunkReader()
    reader.set_chunk_size(4096)
    got: list[Message] = []
    for i in range(0, len(wire), 9999):
        reader.receive_data(memoryview(wire)[i : i + 9999])
        got += drain(reader)
        assert reader.buffered_bytes < 9999 + 1100
    assert got == messages
    assert reader.bytes_received == len(wire)
    assert reader.buffered_bytes == 0


# --- Protocol errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        h("43 000000 000001 08") + b"a",  # fmt 1 on a fresh csid 3
        h("83 000000") + b"a",  # fmt 2 on a fresh csid
        h("c3") + b"a",  # fmt 3 on a fresh csid
        h("82 000000"),  # fmt 2 on a fresh csid 2
        h("c2"),
        h("c0 05"),  # fmt 3 on fresh csid 69 (2-byte form)
    ],
)
def test_first_chunk_must_be_fmt0(data: bytes) -> None:
    reader = ChunkReader()
    reader.receive_data(data)
    with pytest.raises(ChunkError):
        while reader.next_message() is not None:
            pass


@pytest.mark.parametrize("feed", FEEDS)
def test_first_chunk_fmt1_accepted_on_csid2(feed: str) -> None:
    # librtmp answers a ping with fmt 1 on a fresh csid 2 (SRS issue #98 accepts it).
    data = h("42 000000 000006 04 0007 00000d0f")
    assert parse(data, feed) == [msg(4, 0, 0, h("0007 00000d0f"), 2)]


@pytest.mark.parametrize(
    "header",
    [
        h("06 000000 00012c 09 01000000"),  # fmt 0
        h("46 000000 00012c 09"),  # fmt 1, same length
        h("46 000000 000100 09"),  # fmt 1, new length
        h("86 000000"),  # fmt 2
        h("86"),  # rejected on the basic header alone
    ],
)
def test_new_header_while_message_incomplete(header: bytes) -> None:
    reader = ChunkReader()
    reader.receive_data(h("06 000000 00012c 09 01000000") + VIDEO_300[:128])
    assert reader.next_message() is None
    reader.receive_data(header)
    with pytest.raises(ChunkError):
        reader.next_message()


# --- Limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        h("06 000000 0003e9 09 01000000"),  # fmt 0 announcing 1001 bytes
        h("06 000000 000001 09 01000000") + b"x" + h("46 000000 0003e9 09"),  # fmt 1
    ],
)
def test_message_size_limit_raised_on_the_header(header: bytes) -> None:
    reader = ChunkReader(max_message_size=1000)
    reader.receive_data(header)  # no payload byte needed
    with pytest.raises(LimitExceededError):
        drain(reader)


def test_message_size_limit_is_inclusive() -> None:
    payload = b"\x01" * 1000
    data = h("06 000000 0003e8 09 01000000") + payload
    assert parse(data, "whole", chunk_size=1000, max_message_size=1000) == [
        msg(9, 0, 1, payload, 6)
    ]


def test_chunk_stream_limit() -> None:
    reader = ChunkReader(max_chunk_streams=2)
    reader.receive_data(
        h("03 000000 000000 14 00000000") + h("04 000000 000000 08 01000000") + h("c3")
    )
    assert len(drain(reader)) == 3
    reader.receive_data(h("05 000000"))  # a third chunk stream, header still incomplete
    with pytest.raises(LimitExceededError):
        reader.next_message()


def test_pending_bytes_limit_counts_declared_lengths() -> None:
    reader = ChunkReader(max_pending_bytes=500)
    reader.receive_data(h("04 000000 0000fa 08 01000000") + PAYLOAD_200[:128])  # 250 pending
    reader.receive_data(h("05 000000 0000fa 08 01000000") + PAYLOAD_200[:128])  # 500 pending
    assert reader.next_message() is None
    reader.receive_data(h("06 000000 000081 09 01000000"))  # 129 more, no payload yet
    with pytest.raises(LimitExceededError):
        reader.next_message()


def test_pending_bytes_released_on_completion_and_single_chunks_not_counted() -> None:
    reader = ChunkReader(max_pending_bytes=200)
    data = b"".join(
        [
            h("04 000000 0000c8 08 01000000") + PAYLOAD_200[:128] + h("c4") + PAYLOAD_200[128:],
            h("c4") + PAYLOAD_200[:128] + h("c4") + PAYLOAD_200[128:],
            h("05 000000 000080 08 01000000") + PAYLOAD_200[:128],  # single chunk: not pending
        ]
    )
    reader.receive_data(data)
    assert [len(m.payload) for m in drain(reader)] == [200, 200, 128]


def test_limit_errors_are_remote_protocol_errors() -> None:
    assert issubclass(LimitExceededError, RemoteProtocolError)
    assert issubclass(ChunkError, RemoteProtocolError)


# --- Writer ------------------------------------------------------------------------------------


def test_writer_reproduces_spec_example_1() -> None:
    assert write_all(SPEC_EXAMPLE_1) == SPEC_EXAMPLE_1_WIRE


def test_writer_and_serialize_message_reproduce_spec_example_2() -> None:
    assert write_all([SPEC_EXAMPLE_2]) == SPEC_EXAMPLE_2_WIRE
    assert serialize_message(SPEC_EXAMPLE_2, 128) == SPEC_EXAMPLE_2_WIRE


def test_writer_header_compression() -> None:
    writer = ChunkWriter()
    assert writer.write(msg(8, 20, 1, b"ab", 3)) == h("03 000014 000002 08 01000000") + b"ab"
    # Same delta as the fmt 0 timestamp: fmt 2, never fmt 3 straight after fmt 0.
    assert writer.write(msg(8, 40, 1, b"cd", 3)) == h("83 000014") + b"cd"
    assert writer.write(msg(8, 60, 1, b"ef", 3)) == h("c3") + b"ef"
    assert writer.write(msg(8, 60, 1, b"gh", 3)) == h("83 000000") + b"gh"
    assert writer.write(msg(9, 61, 1, b"ijk", 3)) == h("43 000001 000003 09") + b"ijk"
    assert writer.write(msg(8, 62, 1, b"lmn", 3)) == h("43 000001 000003 08") + b"lmn"
    assert writer.write(msg(8, 62, 2, b"opq", 3)) == h("03 00003e 000003 08 02000000") + b"opq"
    assert writer.write(msg(8, 61, 2, b"rst", 3)) == h("03 00003d 000003 08 02000000") + b"rst"
    # Other chunk streams keep their own state.
    assert writer.write(msg(8, 100, 2, b"u", 4)) == h("04 000064 000001 08 02000000") + b"u"


def test_writer_extended_timestamps_on_every_chunk() -> None:
    writer = ChunkWriter()
    assert writer.write(msg(9, 0xFFFFFF, 1, PAYLOAD_200, 6)) == b"".join(
        [
            h("06 ffffff 0000c8 09 01000000 00ffffff") + PAYLOAD_200[:128],
            h("c6 00ffffff") + PAYLOAD_200[128:],
        ]
    )
    delta = 0x01000000
    assert writer.write(msg(9, 0xFFFFFF + delta, 1, PAYLOAD_200, 6)) == (
        h("86 ffffff 01000000") + PAYLOAD_200[:128] + h("c6 01000000") + PAYLOAD_200[128:]
    )
    assert writer.write(msg(9, 0xFFFFFF + 2 * delta, 1, PAYLOAD_200, 6)) == (
        h("c6 01000000") + PAYLOAD_200[:128] + h("c6 01000000") + PAYLOAD_200[128:]
    )
    assert writer.write(msg(9, 0xFFFFFF + 2 * delta + 1, 1, b"x", 6)) == (
        h("46 000001 000001 09") + b"x"
    )


@pytest.mark.parametrize(
    ("csid", "first", "continuation"),
    [
        (2, "02", "c2"),
        (63, "3f", "ff"),
        (64, "00 00", "c0 00"),
        (319, "00 ff", "c0 ff"),
        (320, "01 00 01", "c1 00 01"),
        (65599, "01 ff ff", "c1 ff ff"),
    ],
)
def test_writer_basic_headers(csid: int, first: str, continuation: str) -> None:
    payload = bytes(range(129))
    expected = (
        h(first + " 000000 000081 09 00000000") + payload[:128] + h(continuation) + payload[128:]
    )
    message = msg(9, 0, 0, payload, csid)
    assert ChunkWriter().write(message) == expected
    assert serialize_message(message, 128) == expected


def test_writer_forget_restarts_with_fmt0() -> None:
    writer = ChunkWriter()
    first = writer.write(msg(8, 0, 1, b"a", 4))
    assert writer.write(msg(8, 10, 1, b"b", 4))[0] >> 6 == 2
    writer.forget(4)
    writer.forget(5)  # unknown: no-op
    assert writer.write(msg(8, 0, 1, b"a", 4)) == first


def test_writer_chunk_size() -> None:
    writer = ChunkWriter(chunk_size=100)
    assert writer.chunk_size == 100
    writer.set_chunk_size(MAX_CHUNK_SIZE)
    assert writer.write(msg(9, 0, 1, PAYLOAD_200, 6)).count(h("c6")) == 0
    writer.set_chunk_size(1)
    assert len(writer.write(msg(9, 1, 1, b"abc", 6))) == len(h("46 000001 000003 09")) + 5
    for bad in (0, -1, MAX_CHUNK_SIZE + 1):
        with pytest.raises(LocalProtocolError):
            writer.set_chunk_size(bad)
        with pytest.raises(LocalProtocolError):
            ChunkWriter(chunk_size=bad)
        with pytest.raises(LocalProtocolError):
            serialize_message(msg(9, 0, 1, b"", 6), bad)
    assert writer.chunk_size == 1


@pytest.mark.parametrize(
    "message",
    [
        msg(9, 0, 1, b"", 1),
        msg(9, 0, 1, b"", 0),
        msg(9, 0, 1, b"", 65600),
        msg(256, 0, 1, b"", 6),
        msg(-1, 0, 1, b"", 6),
        msg(9, -1, 1, b"", 6),
        msg(9, 2**32, 1, b"", 6),
        msg(9, 0, -1, b"", 6),
        msg(9, 0, 2**32, b"", 6),
        msg(9, 0, 1, bytes(0x1000000), 6),
    ],
)
def test_writer_rejects_out_of_range_messages(message: Message) -> None:
    with pytest.raises(LocalProtocolError):
        ChunkWriter().write(message)
    with pytest.raises(LocalProtocolError):
        serialize_message(message, 128)


def test_serialize_message_is_stateless_fmt0() -> None:
    message = msg(9, 0x01000000, 1, PAYLOAD_200, 6)
    wire = serialize_message(message, 128)
    assert wire == serialize_message(message, 128)
    assert wire == b"".join(
        [
            h("06 ffffff 0000c8 09 01000000 01000000") + PAYLOAD_200[:128],
            h("c6 01000000") + PAYLOAD_200[128:],
        ]
    )
    assert parse(wire + wire, "bytewise") == [message, message]


# FFmpeg 9 (Lavf63) publishing a 48x32 flv1 + pcm_u8 test stream with -output_ts_offset 17000,
# so media timestamps are >= 0xFFFFFF: every fmt 3 continuation repeats the extended timestamp.
# The client-to-server bytes after the handshake, zlib-compressed.
FFMPEG_PUBLISH = zlib.decompress(
    base64.b64decode(
        "eNqtVwtUE2cW/ieTTCYyIUOKZVAK0YIiKkx8FV3QII+qoKINPtpKJobYkEUIIUB4SCYkkafCaUVs67rYdrcY6oqe"
        "PlzKqROa2q71dNmjdNvutoKnD9fVGulaqQrszATBrq6nHjs5SU7ud+f+33f/e//MhQF3NQRznwIg1hXk5+t1FrDM"
        "x9sBDGCtySQAwrzcEj0QWspMegGYlF+QbzLnlmgteoBuy9MWGTbozQLweNrqjNS4+bGkIlpXsN2kteRuzdP/RpGh"
        "Ldm2aH6sMlZJzpsFRBZdljlPAKaaLdtNS+LilPOeiCXZl3KJcvH78xcq4/iFgETALy+E/DQAncx/hQcLgNSsz9Nr"
        "i/RPWcx67XagGvMQCQBk9XtNYb0kacmZxVvzcosMQIXe5RHKemA69n7LeBh8zMnvMJl1QDU6g173262lQBU8Bvoj"
        "RQRD/myZbq9A3LHCWLKEnAFaIPe7SlVFekuK1qJNM2u3cyksyF+tt2g5CxdTCtCcYjObsYJ8MH6JSnNzLGzwFWO/"
        "EYM+9zmDBahuS5aW5OboC3LYGGZuK1QGo98u2cYt4rdFcgYv+8Z4Z11Bjl6XmzOeNSDVFufk3hEjtdZvl/H2Iu12"
        "U95YpLfugRTllrOI4jbBIoverC9gFWO8z+3F/AS4S6zP54xssWB3lgVbRbljwSYuCTI6OgpEL0u4DELwNpUcACcg"
        "8KADaRgMlR+MJiCaCnMeu9F2vPLQujLb4D/V7emxo9+vfifSmL7ygIeWIdDxbgJhpAjkXbnRMC3m1W9UxJZtAryl"
        "KuroCVFouUsjN770+uBq+FRDd2iUg76mmIL3AFIIGLFk+Tqr7zghBlRoCo2Bc9FZvuSTHAl0lZ3GEehNQhwRUjBs"
        "fAP0UvByMLyyWP1GcPIHirLN5W2fRBMCitrvcUqQF7/NIUS9Unk/CZ0TyqqGdqglxrPPiN+5eGtLom/u9I6T7gNv"
        "XiCpUA8dgYB4IoCkJnvozRsHLpDSkVgEZLIS7Xk045KEI1AbAa5GTuNJdMg7TN0wpXBAgRorhiqLY4Ocx4au73eA"
        "RRjWpkKCLhAa2hDus9NTEXGnAkb/g81RLZA9p2CkDjgah5zlSEj/FHG3gkI89kso6EmEA3ApfG4oHlzE5DhZ3XZG"
        "aXOABCxoH+kAZ8SJl7hcC1mGYshHBj7Ok+ivXlo/FJma+hOErVqP6o5Gn5ibVfrV34KedolGNnQkz1VRj6riqzBg"
        "IjGKiadNL9A7l76S4o75/RYwMHtk1H2qz3bu5Znffjd85VJRLSlkPIsdqFw6/3R7vGwRZJdkLkeAl8syJXbiNAaT"
        "iER3LYa5wJoXEGLSGcWTcAoGzjcn9idkYzCNDK9tSTV6ZAGjQ+1d4CkFGWBHKzHxYXCNiLJ7YkZQ93tLs3xLEPX6"
        "CwlPa7owAjFxmTchMEqIKEo8Ejm8iRSUMkwADL5oX7HRNoTTCSsQ8CwB4a6DcFXbKt/z7YR4oWXaza8Q0eXNpj1H"
        "WnkSZwXZ+wPhM5LkQR8lttOTNzy7NC5OjdtprdzZWXNt1YlRCXwRA52kFJok8747IyRkXeRKubP9cLYV9x69WtKU"
        "PhwRjEEkuYbqEToyBr2YgCHFKmahUKlIR43VBClQqj+prMLV9r5CtQGeUzD8r0O9lBCioxCoG67mSRB7cWEzNa1v"
        "NgrKv3it27pMnZ0YHlKnESqWuO1X3n7llHjZ9BOzfTmDGGwghW2MFBhI6CysWkCITGyF19D9e8RJ0ObK+vOdy+qp"
        "1u+/fD+zOpPEHP3U1CR6Fld+gmZqSnc7AfmoxHaETRHuESrqyPQ2GleQgYAnwaCtMRtVi1U36owt7K61T5ulzl4y"
        "1Dr3xcDurwmok2JPPrJJ1XMLVl13YuAzMtEOiCfbtFuhtopStt4/I5BOKizFlYStkifR+OAr1xYHfDgQWGk5cvFP"
        "7eCbwhOxxgRCQFOTIToIXb5iD95Sp2IW95VWnB+YpgrLyvqUJ9ETdrhi/xOBGNS7N8oBVvuo4H5SOAD3M5EqKSKI"
        "J2QaB3jMRz2eRDfDDFMiwCPCmZ1iD/2TCG3d9ypE1940rplXDUhBP8NW7x4MCrKycrvZ/TTFAYaKhOgGeUN1SF8m"
        "FQZ8ZJDCKW6PGApH4K+tHQvXQEOf8yS+O+4AGdgj+0i74kzCRw76h+mbbjhAGAa1LXcMXoxsDYEBE9Vat05jx45X"
        "RtJWEjrlPHjj2OXwoePpG/DqiJpTlzI1VxXpB95unZ3wJu6htQhI4NpPXLdUSDqXoo+ci+gAQx3M9lWNwulXh4ff"
        "+TxRbBu+3rJ25MDuODHEk7gC0VPY21ZuwJ2dbAs919ca/cWzUUDvu7yx5fR6DH7J/fdPF42wwXUI9AaB+GR2lEB6"
        "KTSlmUL6OjKjejNpm/PdK2Xq2D68ssPx57MpP6iYOIYK/dhOZyCQk0Ag9hRmpGihxk5LEZAC9wS7E1BI1s+gMAjP"
        "5klExgwlvZeZnR1FmxQqGfzVj+5YeZ/MZJGKL6RwJzy4inJuwF6zq2l3XXV5kclkqXDUNzU17qwqKTSZS21jgMUP"
        "7OaAUh7Y2di0u766ggPKq1lg105bqdlUWFrFAk31jjGgjgVqeKDkDqBoDKCtHLDD5eVIsGiDs7KYRcvsHFp7G23w"
        "A4UcUMsDZUWmwuJKJwe4drCA2UrXsjxr7Sxg8gONrh0lPMALuA1wyly8MqutJgWAOQCCUHC39tL7aPdL3H0PiaX3"
        "kGjjRVS5eIBXV27/mfbGJu+E7tr76PbLm9BdMq677v/r5lQV37mjVtvdW+2tcgIQCyZE1/9M9IS23b9wX23j2u6/"
        "pXdoLjN7WW1jyA5e9MSe/lLRtocqY295GgDsE9NhyXT2aQcjcKWgFUkTzV2TMTVYBE6Pvih6QXGK/t3amTNmzpiU"
        "MfnwMReEzgaUUZnqai449OFMiAq2zlt7vpP7c6iP0/zlJkUyKUmYzNv/1lMHgtqvmXdFm/YmqLGQr1VzJpUtfmIP"
        "HD2yBoObyXD33hvbDhmfVw62UJ7l2MzLJ3/IXr9pw5xJcxZCdhR/b9+reEDLISRxGFJWXm+flfPvTegfnqmZXDF6"
        "07gnuNrqBQ/bfw/Zet4H771ft+W89WwBx4EHbbyH7bv/0ex94Mar+nVbzlvoL+AavoAJtoDj1R460CcO+euNiwf7"
        "Wrp6en0vPDniCel6rMF99NNouOsfhFL+oYvx7KhYP6nn9cR5l7fW7FuAQB8PCLvctz7Qndh0Vm8yaJxHQlpvEQoN"
        "MyNGfWTUt2vg+9cNvWpv7ZYff3y0Me7SsY9OC4+OtsR0vWZL3JX3Zag7a/Tkl+vdP/0xVZXCnSugCAX3K7LGexwG"
        "D38W+GfJMHaWDEhLzsofHxfD7hpIp3MDaQ472E4MpGNTlWh8Fv8vAJ8JAA=="
    )
)

FFMPEG_PUBLISH_MESSAGES = [
    # (csid, type id, timestamp, msid, length, payload prefix)
    (3, 20, 0, 0, 139, b"\x02\x00\x07connect"),
    (2, 1, 0, 0, 4, h("00000080")),  # Set Chunk Size 128
    (3, 20, 0, 0, 30, b"\x02\x00\x0dreleaseStream"),
    (3, 20, 0, 0, 26, b"\x02\x00\x09FCPublish"),
    (3, 20, 0, 0, 25, b"\x02\x00\x0ccreateStream"),
    (3, 20, 0, 0, 21, b"\x02\x00\x08_checkbw"),
    (8, 20, 0, 1, 31, b"\x02\x00\x07publish"),
    (4, 18, 0, 1, 308, b"\x02\x00\x0d@setDataFrame"),
    (6, 9, 17000000, 1, 1435, b"\x12"),  # flv1 key frame, first chunk fmt 0, extended
    (4, 8, 17000000, 1, 241, b"\x00"),  # fmt 1 with an extended delta
    (4, 8, 17000044, 1, 257, b"\x00"),
    (4, 8, 17000090, 1, 257, b"\x00"),
    (6, 9, 17000100, 1, 173, b"\x22"),
    (4, 8, 17000136, 1, 257, b"\x00"),
    (4, 8, 17000183, 1, 257, b"\x00"),
    (6, 9, 17000200, 1, 135, b"\x22"),
    (4, 8, 17000229, 1, 115, b"\x00"),
    (3, 20, 0, 0, 28, b"\x02\x00\x0bFCUnpublish"),
    (3, 20, 0, 0, 34, b"\x02\x00\x0cdeleteStream"),
]


@pytest.mark.parametrize("feed", FEEDS)
def test_ffmpeg_publish_capture(feed: str) -> None:
    # The key frame's 11 continuation chunks each repeat the extended timestamp 17000000.
    assert FFMPEG_PUBLISH.count(h("c6 01036640")) >= 11
    messages = parse(FFMPEG_PUBLISH, feed, follow_set_chunk_size=True)
    assert [
        (m.chunk_stream_id, m.type_id, m.timestamp_ms, m.message_stream_id, len(m.payload))
        for m in messages
    ] == [fields[:5] for fields in FFMPEG_PUBLISH_MESSAGES]
    for message, fields in zip(messages, FFMPEG_PUBLISH_MESSAGES, strict=True):
        assert message.payload.startswith(fields[5])


@pytest.mark.parametrize("chunk_size", [1, 60, 128, 4096, MAX_CHUNK_SIZE])
def test_ffmpeg_publish_capture_rechunked(chunk_size: int) -> None:
    reader = ChunkReader()
    reader.receive_data(FFMPEG_PUBLISH)
    messages = drain(reader, apply_set_chunk_size(reader))
    assert parse(write_all(messages, chunk_size), "whole", chunk_size=chunk_size) == messages
    wire = b"".join(serialize_message(m, chunk_size) for m in messages)
    assert parse(wire, "whole", chunk_size=chunk_size) == messages


# --- Property tests ----------------------------------------------------------------------------

SMALL_CSIDS = [2, 3, 4, 5, 6, 63, 64, 65, 319, 320, 65599]
csids = st.one_of(st.sampled_from(SMALL_CSIDS), st.integers(2, 65599))
chunk_sizes = st.one_of(st.integers(1, 300), st.integers(1, 70000))
U32 = 0xFFFFFFFF


@st.composite
def message_sequences(draw: st.DrawFn, *, max_messages: int = 25) -> list[Message | int]:
    """Messages (and ints: chunk size changes) with the header reuse that exercises fmt 1-3."""
    rnd = draw(st.randoms(use_true_random=False))
    pool = draw(st.lists(csids, min_size=1, max_size=4, unique=True))
    ops: list[Message | int] = []
    last: dict[int, tuple[Message, int]] = {}  # csid -> (last message, its delta)
    for _ in range(draw(st.integers(1, max_messages))):
        if draw(st.integers(0, 7)) == 0:
            ops.append(draw(chunk_sizes))
            continue
        csid = draw(st.sampled_from(pool))
        prev = last.get(csid)
        if prev is None or draw(st.integers(0, 7)) == 0:
            msid = draw(st.sampled_from([0, 1, 2, U32]))
            type_id = draw(st.integers(0, 255))
            length = draw(st.one_of(st.integers(0, 300), st.integers(0, 3000)))
        else:
            msid, type_id, length = (
                prev[0].message_stream_id,
                prev[0].type_id,
                len(prev[0].payload),
            )
            if draw(st.integers(0, 3)) == 0:
                length = draw(st.integers(0, 3000))
        base = prev[0].timestamp_ms if prev else 0
        delta = prev[1] if prev else 0
        same_delta = st.just(min(max(base + delta, 0), U32))  # fmt 3 new message
        timestamp = draw(
            st.one_of(
                same_delta,
                same_delta,
                st.integers(base, min(base + 100, U32)),
                st.integers(0xFFFFFF - 2, 0xFFFFFF + 2),
                st.integers(base, U32),  # extended deltas
                st.integers(0, U32),  # anything, backwards included
            )
        )
        message = msg(type_id, timestamp, msid, rnd.randbytes(length), csid)
        last[csid] = (message, timestamp - base)
        ops.append(message)
    return ops


def set_chunk_size_message(size: int) -> Message:
    return msg(1, 0, 0, size.to_bytes(4, "big"), 2)


def feed_randomly(
    reader: ChunkReader, data: bytes, rnd: random.Random, on: Callable[[Message], None]
) -> list[Message]:
    out: list[Message] = []
    pos = 0
    while pos < len(data):
        step = rnd.choice([1, 2, 3, 7, 100, 1000, 5000, 100000])
        reader.receive_data(data[pos : pos + step])
        pos += step
        out += drain(reader, on)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=message_sequences(), initial=chunk_sizes, rnd=st.randoms(use_true_random=False))
def test_writer_reader_round_trip(
    ops: list[Message | int], initial: int, rnd: random.Random
) -> None:
    writer = ChunkWriter(chunk_size=initial)
    expected: list[Message] = []
    wire = bytearray()
    for op in ops:
        if isinstance(op, int):
            # Announce the new size at the old one, then switch (RTMP 1.0 §5.4.1).
            message = set_chunk_size_message(op)
            wire += writer.write(message)
            writer.set_chunk_size(op)
        else:
            message = op
            wire += writer.write(message)
        expected.append(message)
    reader = ChunkReader()
    reader.set_chunk_size(initial)
    got: list[Message] = []

    def on_message(message: Message) -> None:
        # Apply a Set Chunk Size when the reader hands it over, as the connection layer does.
        if len(got) < len(ops) and isinstance(ops[len(got)], int):
            reader.set_chunk_size(int.from_bytes(message.payload, "big"))
        got.append(message)

    feed_randomly(reader, bytes(wire), rnd, on_message)
    assert got == expected
    assert reader.buffered_bytes == 0


@settings(max_examples=200, deadline=None)
@given(ops=message_sequences(), chunk_size=chunk_sizes, rnd=st.randoms(use_true_random=False))
def test_serialize_message_mixed_with_writer_round_trip(
    ops: list[Message | int], chunk_size: int, rnd: random.Random
) -> None:
    messages = [op for op in ops if isinstance(op, Message)]
    writer = ChunkWriter(chunk_size=chunk_size)
    wire = bytearray()
    for message in messages:
        if rnd.random() < 0.5:
            wire += serialize_message(message, chunk_size)
            writer.forget(message.chunk_stream_id)
        else:
            wire += writer.write(message)
    reader = ChunkReader()
    reader.set_chunk_size(chunk_size)
    assert feed_randomly(reader, bytes(wire), rnd, lambda m: None) == messages


def chunk_boundaries(message: Message, chunk_size: int) -> list[int]:
    """Lengths of the chunks serialize_message produces for ``message``."""
    csid = message.chunk_stream_id
    basic = 1 if csid < 64 else 2 if csid < 320 else 3
    ext = 4 if message.timestamp_ms >= 0xFFFFFF else 0
    remaining = len(message.payload)
    sizes = [basic + 11 + ext + min(chunk_size, remaining)]
    remaining -= min(chunk_size, remaining)
    while remaining:
        n = min(chunk_size, remaining)
        sizes.append(basic + ext + n)
        remaining -= n
    return sizes


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    chunk_size=st.integers(1, 500),
    stream_ids=st.lists(csids, min_size=1, max_size=6, unique=True),
)
def test_interleaved_chunks_of_different_chunk_streams(
    data: st.DataObject, chunk_size: int, stream_ids: list[int]
) -> None:
    messages = [
        msg(
            data.draw(st.integers(0, 255)),
            data.draw(st.integers(0, U32)),
            data.draw(st.integers(0, U32)),
            data.draw(st.binary(max_size=2000)),
            csid,
        )
        for csid in stream_ids
    ]
    queues = []
    for message in messages:
        wire = serialize_message(message, chunk_size)
        pieces, pos = [], 0
        for size in chunk_boundaries(message, chunk_size):
            pieces.append(wire[pos : pos + size])
            pos += size
        assert pos == len(wire)
        queues.append((message, pieces))
    # Interleave whole chunks at random, keeping each chunk stream's order.
    rnd = data.draw(st.randoms(use_true_random=False))
    interleaved, completion_order = bytearray(), []
    while queues:
        i = rnd.randrange(len(queues))
        message, pieces = queues[i]
        interleaved += pieces.pop(0)
        if not pieces:
            completion_order.append(message)
            queues.pop(i)
    assert parse(bytes(interleaved), "whole", chunk_size=chunk_size) == completion_order


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=3000), chunk_size=st.integers(1, 300))
def test_random_bytes_raise_only_chunk_and_limit_errors(data: bytes, chunk_size: int) -> None:
    reader = ChunkReader(max_message_size=2000, max_chunk_streams=4, max_pending_bytes=3000)
    reader.set_chunk_size(chunk_size)
    try:
        for i in range(0, len(data), 97):
            reader.receive_data(data[i : i + 97])
            drain(reader)
    except (ChunkError, LimitExceededError):
        pass


@settings(max_examples=300, deadline=None)
@given(ops=message_sequences(max_messages=8), chunk_size=st.integers(1, 300), data=st.data())
def test_mutated_streams_raise_only_chunk_and_limit_errors(
    ops: list[Message | int], chunk_size: int, data: st.DataObject
) -> None:
    wire = bytearray(
        write_all([op for op in ops if isinstance(op, Message)], chunk_size=chunk_size)
    )
    for _ in range(data.draw(st.integers(1, 5))):
        if not wire:
            break
        pos = data.draw(st.integers(0, len(wire) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            wire[pos] ^= data.draw(st.integers(1, 255))
        elif action == "delete":
            del wire[pos]
        else:
            wire.insert(pos, data.draw(st.integers(0, 255)))
    reader = ChunkReader(max_message_size=4000, max_chunk_streams=8, max_pending_bytes=10000)
    reader.set_chunk_size(chunk_size)
    reader.receive_data(wire)
    try:
        drain(reader)
    except (ChunkError, LimitExceededError):
        pass


def test_core_modules_do_not_import_asyncio_or_socket() -> None:
    code = (
        "import sys, aiortmp.protocol.chunk, aiortmp.protocol.control\n"
        "bad = {'asyncio', 'socket'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- Interop: FFmpeg reads what ChunkWriter writes --------------------------------------------


def _ffmpeg() -> str:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.interop
@pytest.mark.parametrize("chunk_size", [60, 4096])
def test_ffmpeg_reads_writer_output(chunk_size: int) -> None:
    """Replays the captured publish session, re-chunked by ChunkWriter, to ``ffmpeg -listen``.

    Audio messages are given one length and a fixed 46 ms spacing so the writer sends fmt 3
    new messages; timestamps stay above 0xFFFFFF, so at chunk size 60 every continuation
    carries the extended timestamp. FFmpeg must demux every frame with the same bytes.
    """
    reader = ChunkReader()
    reader.receive_data(FFMPEG_PUBLISH)
    messages = [m for m in drain(reader, apply_set_chunk_size(reader)) if m.type_id != 1]
    timestamp = 17_000_000
    for i, m in enumerate(messages):
        if m.type_id == 8:
            messages[i] = m._replace(
                payload=m.payload[:1] + bytes(range(199)), timestamp_ms=timestamp
            )
            timestamp += 46
    port = _free_port()
    server = subprocess.Popen(
        [
            _ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-listen",
            "1",
            "-i",
            f"rtmp://127.0.0.1:{port}/live/x",
            "-c",
            "copy",
            "-f",
            "framemd5",
            "-",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=20)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with sock:
            # Simple handshake (RTMP 1.0 §5.2): C0 C1, read S0 S1 S2, echo S1 as C2.
            sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))
            handshake = b""
            while len(handshake) < 3073:
                handshake += sock.recv(65536)
            sock.sendall(handshake[1:1537])
            threading.Thread(target=lambda: _drain_socket(sock), daemon=True).start()
            writer = ChunkWriter()
            sock.sendall(writer.write(set_chunk_size_message(chunk_size)))
            writer.set_chunk_size(chunk_size)
            formats = set()
            for message in messages:
                wire = writer.write(message)
                formats.add(wire[0] >> 6)
                sock.sendall(wire)
            assert formats == {0, 1, 2, 3}
            time.sleep(0.5)
            sock.shutdown(socket.SHUT_RDWR)
        out, _ = server.communicate(timeout=30)
    finally:
        server.kill()
    frames = sorted(
        (int(fields[4]), fields[5])
        for line in out.decode().splitlines()
        if not line.startswith("#")
        for fields in [[f.strip() for f in line.split(",")]]
    )
    # An FLV audio/video payload is one header byte, then the frame.
    sent = sorted(
        (len(m.payload) - 1, hashlib.md5(m.payload[1:]).hexdigest())
        for m in messages
        if m.type_id in (8, 9)
    )
    assert frames == sent


def _drain_socket(sock: socket.socket) -> None:
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass
