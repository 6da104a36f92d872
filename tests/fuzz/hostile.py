"""Known hostile inputs, tried first by every run of the matching fuzz target.

They are the attacks the robustness issue names (a connect holding a 50 000-level AMF0
object, which kills an nginx-rtmp 1.2.2 worker; random bytes after the handshake, which
kill node-media-server 4.4.3; chunk size 0 and 0x7FFFFFFF; thousands of chunk stream
ids; oversized message lengths) and the bugs fuzzing found (AMF reference bombs, NaN
stream ids).
"""

from __future__ import annotations

import functools
import struct

from aiortmp.protocol import amf0
from aiortmp.protocol.chunk import ChunkWriter
from aiortmp.protocol.messages import Message, MessageType

from . import corpus

__all__ = ["amf0_reference_bomb", "amf3_reference_bomb", "deep_amf0_object", "hostile_inputs"]


def deep_amf0_object(levels: int) -> bytes:
    """An AMF0 object nested ``levels`` deep: ``{"a": {"a": ... {} ...}}`` (AMF0 §2.5)."""
    return b"\x03\x00\x01a" * levels + b"\x03\x00\x00\x09" + b"\x00\x00\x09" * levels


def amf0_reference_bomb(levels: int) -> bytes:
    """An AMF0 object whose property ``k<i>`` is a strict array of two references to
    property ``k<i-1>``: ``levels`` * 12 bytes that stand for 2**levels values (AMF0 §2.9).
    """
    # Reference table: 0 the object, 1 the first array, i+1 the array of k<i>.
    out = bytearray(b"\x03" + b"\x00\x02k0" + b"\x0a\x00\x00\x00\x01" + b"\x00" + bytes(8))
    for i in range(1, levels):
        key = f"k{i}".encode()
        out += struct.pack(">H", len(key)) + key
        out += b"\x0a\x00\x00\x00\x02" + (b"\x07" + struct.pack(">H", i)) * 2
    out += b"\x00\x00\x09"
    return bytes(out)


def amf3_reference_bomb(levels: int) -> bytes:
    """An AMF3 dense array of arrays, each holding two object references to the previous
    one (AMF3 §3.11, §2.1), and a string referenced 10 000 times (AMF3 §1.3.2)."""
    # Outer array: slot 0. Inner array i: slot i + 1.
    out = bytearray(b"\x09" + _u29((levels << 1) | 1) + b"\x01")
    out += b"\x09\x03\x01\x04\x00"  # slot 1: [0]
    for i in range(1, levels):
        out += b"\x09\x05\x01" + (b"\x09" + _u29(i << 1)) * 2
    text = b"x" * 4096
    strings = b"\x09" + _u29((10_001 << 1) | 1) + b"\x01"
    strings += b"\x06" + _u29((len(text) << 1) | 1) + text + b"\x06\x00" * 10_000
    return bytes(out) + strings


def _u29(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes(((n >> 7) | 0x80, n & 0x7F))
    if n < 0x200000:
        return bytes(((n >> 14) | 0x80, ((n >> 7) & 0x7F) | 0x80, n & 0x7F))
    return bytes(((n >> 22) | 0x80, ((n >> 15) & 0x7F) | 0x80, ((n >> 8) & 0x7F) | 0x80, n & 0xFF))


def _command(*values: object, msid: int = 0, raw: bytes = b"") -> Message:
    return Message(
        type_id=MessageType.COMMAND_AMF0,
        timestamp_ms=0,
        message_stream_id=msid,
        payload=amf0.encode(*values) + raw,
    )


def _chunks(messages: list[Message], chunk_size: int = 128) -> bytes:
    writer = ChunkWriter(chunk_size=chunk_size)
    return b"".join(writer.write(m) for m in messages)


def _set_chunk_size(size: int) -> bytes:
    # Built by hand: the encoder refuses 0 and sizes with the high bit set.
    return b"\x02" + bytes(3) + b"\x00\x00\x04\x01" + bytes(4) + size.to_bytes(4, "big")


_CONNECT = _command("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"})


def _session_attacks() -> list[bytes]:
    create = _command("createStream", 2.0, None)
    deep_connect = _command("connect", 1.0, raw=deep_amf0_object(50_000))
    csid_flood = bytearray()
    for csid in range(64, 64 + 3000):
        # fmt 0 on a 2-/3-byte basic header, a 1-byte message on every chunk stream.
        basic = (
            bytes((0, csid - 64))
            if csid < 320
            else bytes((1, (csid - 64) & 0xFF, (csid - 64) >> 8))
        )
        csid_flood += basic + b"\x00\x00\x00\x00\x00\x01\x08" + b"\x01\x00\x00\x00" + b"\xaf"
    oversized = b"\x06\x00\x00\x00\xff\xff\xff\x09\x01\x00\x00\x00" + b"\x17" * 100
    return [
        _chunks([deep_connect]),
        _chunks([_CONNECT, create, _command("deleteStream", 0.0, None, float("nan"))]),
        _chunks([_CONNECT, create, _command("deleteStream", 0.0, None, float("inf"))]),
        _chunks([_CONNECT, create, _command("deleteStream", 0.0, None, -1e300)]),
        _chunks([_CONNECT, _command("FCPublish", 3.0, None, raw=amf0_reference_bomb(40))]),
        _chunks([_CONNECT, *[create] * 100]),
        _chunks([_CONNECT]) + _set_chunk_size(0),
        _chunks([_CONNECT]) + _set_chunk_size(0x7FFFFFFF) + oversized,
        _chunks([_CONNECT]) + _set_chunk_size(0x80000000),
        _chunks([_CONNECT]) + bytes(csid_flood),
        _chunks([_CONNECT]) + oversized,
        _chunks([_CONNECT])[:-5],
        bytes(range(256)) * 8,
    ]


@functools.cache
def _hostile() -> dict[str, list[bytes]]:
    session = _session_attacks()
    handshake = corpus.CLIENT_HANDSHAKE
    return {
        "handshake_server": [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),
            b"\x06" + bytes(1536),
            bytes(range(256)) * 16,
            handshake[:1537] + bytes(1536),
        ],
        "chunk": [b"\x04" + s for s in session] + [b"\x00" + b"\xc4" * 100],
        "connection": session,
        "server_session": session,
        "client_session": session[:4],
        "amf0": [
            deep_amf0_object(50_000),
            b"\x0a" * 50_000,
            amf0_reference_bomb(40),
            b"\x03\x00\x04self\x07\x00\x00\x00\x00\x09",
            b"\x0c\xff\xff\xff\xff",
            b"\x0a\xff\xff\xff\xff",
            b"\x11" * 50_000,
        ],
        "amf3": [
            b"\x09\x03\x01" * 50_000,
            b"\x0a\x0b\x01\x03a" + b"\x0a\x0b\x01\x03a" * 20_000,
            amf3_reference_bomb(40),
            b"\x0d\xff\xff\xff\xff\x00",
        ],
        "commands": [
            b"\x00" + amf0.encode("connect", 1.0) + deep_amf0_object(50_000),
            b"\x00" + amf0.encode("FCPublish", 1.0, None) + amf0_reference_bomb(40),
            b"\x01\x00" + amf0.encode("connect", 1.0) + b"\x11" + amf3_reference_bomb(40),
            b"\x02" + amf0.encode("@setDataFrame", "onMetaData") + amf0_reference_bomb(40),
        ],
        "flv": [
            b"FLV\x01\x05\xff\xff\xff\xff",
            b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x09\xff\xff\xff" + bytes(7),
        ],
    }


def hostile_inputs(target: str) -> list[bytes]:
    """The hostile inputs for the fuzz target named ``target`` (maybe none)."""
    return _hostile().get(target, [])
