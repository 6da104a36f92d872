"""Seed inputs for the fuzz targets: real bytes that the mutations start from.

Random bytes rarely get past a parser's first check (a handshake digest, a chunk header that
starts a chunk stream, an AMF marker followed by a plausible length), so every target also
mutates valid inputs: bytes our own client and server exchange, the codec fixtures made with
FFmpeg (tests/media/fixtures/codecs) and the tags of the FLV fixtures (tests/media/fixtures/flv).
Everything here is computed once, on first use.
"""

from __future__ import annotations

import functools
import io
from datetime import UTC, datetime
from pathlib import Path

from aiortmp.media.av1 import parse_av1_codec_configuration_record
from aiortmp.media.avc import parse_avc_decoder_configuration_record
from aiortmp.media.flv import FLVReader, FLVTag
from aiortmp.media.hevc import NAL_UNIT_TYPE_SPS, parse_hevc_decoder_configuration_record
from aiortmp.protocol import amf0, amf3
from aiortmp.protocol.amf0 import ECMAArray, TypedObject, XMLDocument
from aiortmp.protocol.chunk import ChunkWriter, serialize_message
from aiortmp.protocol.control import (
    AbortMessage,
    Acknowledgement,
    LimitType,
    PingRequest,
    SetBufferLength,
    SetChunkSize,
    SetPeerBandwidth,
    StreamBegin,
    UnknownUserControl,
    WindowAcknowledgementSize,
    encode_control,
)
from aiortmp.protocol.handshake import Handshake, HandshakeRole
from aiortmp.protocol.messages import Message, MessageType
from aiortmp.protocol.session import ClientSession, ServerSession

__all__ = [
    "CLIENT_HANDSHAKE",
    "SERVER_HANDSHAKE_REPLY",
    "amf0_seeds",
    "amf3_seeds",
    "audio_tag_seeds",
    "chunk_seeds",
    "client_session_seeds",
    "codec_fixture",
    "codec_fixtures",
    "command_seeds",
    "control_seeds",
    "fixed_random",
    "flv_files",
    "handshake_client_seeds",
    "handshake_server_seeds",
    "server_session_seeds",
    "video_tag_seeds",
]

_FIXTURES = Path(__file__).resolve().parent.parent / "media" / "fixtures"


def fixed_random(n: int) -> bytes:
    """Deterministic "random" bytes, so that two runs of a handshake are comparable."""
    return bytes((i * 37 + 11) & 0xFF for i in range(n))


def _handshake_bytes(*, digest: bool, scheme: int = 0) -> tuple[bytes, bytes]:
    """(C0+C1+C2 of our client, S0+S1+S2 of our server) for one complete handshake."""
    client = Handshake(
        HandshakeRole.CLIENT, digest=digest, scheme=scheme, random_bytes=fixed_random
    )
    server = Handshake(HandshakeRole.SERVER, random_bytes=fixed_random)
    client.initiate()
    c01 = client.data_to_send()
    server.receive_data(c01)
    s012 = server.data_to_send()
    client.receive_data(s012)
    c2 = client.data_to_send()
    return c01 + c2, s012


#: A complete, valid C0+C1+C2 (digest scheme 0) that the session targets start with.
CLIENT_HANDSHAKE, SERVER_HANDSHAKE_REPLY = _handshake_bytes(digest=True)


def handshake_server_seeds() -> list[bytes]:
    """What clients send a server: digest schemes 0 and 1, plain, and with chunks after."""
    seeds = [_handshake_bytes(digest=True, scheme=s)[0] for s in (0, 1)]
    seeds.append(_handshake_bytes(digest=False)[0])
    seeds.append(CLIENT_HANDSHAKE + b"\x02\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00")
    return seeds


def handshake_client_seeds() -> list[bytes]:
    """What a server answers our digest client (S0+S1+S2), valid for :func:`fixed_random`."""
    return [SERVER_HANDSHAKE_REPLY, SERVER_HANDSHAKE_REPLY + b"\x02"]


@functools.cache
def _amf_values() -> list[object]:
    nested: dict[str, object] = {"level": 0.0}
    for level in range(1, 6):
        nested = {"level": float(level), "inner": nested}
    return [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
            "tcUrl": "rtmp://127.0.0.1/live",
            "fourCcList": ["av01", "hvc1", "vp09"],
            "objectEncoding": 0.0,
        },
        ECMAArray({"duration": 0.0, "width": 1280.0, "height": 720.0, "encoder": "Lavf"}),
        [1.0, "two", None, True, False, amf0.UNDEFINED],
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        XMLDocument("<a><b/></a>"),
        TypedObject(class_name="flex.Point", properties={"x": 1.0, "y": -2.5}),
        "x" * 70000,
        nested,
    ]


def amf0_seeds() -> list[bytes]:
    """Each seed value alone, all of them as one body, and values wrapped in AMF3."""
    values = _amf_values()
    seeds = [amf0.encode(value) for value in values]
    seeds.append(amf0.encode(*values[:8]))
    seeds.append(amf0.encode(amf0.AMF3Value(value={"a": [1, 2, 3], "b": b"bytes"})))
    # References (AMF0 §2.9): an object, then a strict array referring to it twice.
    seeds.append(bytes.fromhex("0300016103000009000009" + "0a00000002" + "070001" + "070001"))
    return seeds


def amf3_seeds() -> list[bytes]:
    """AMF3 encodings, with string, object and traits references."""
    shared = {"k": "v"}
    values: list[object] = [
        *(v for v in _amf_values() if not isinstance(v, XMLDocument)),
        [shared, shared, "k", "k"],
        amf3.Vector(kind=amf3.VectorKind.INT, items=[1, -2, 3]),
        amf3.Vector(kind=amf3.VectorKind.OBJECT, items=[shared, "s"], class_name="Obj"),
        amf3.Dictionary(items=[("a", 1), (2.5, shared)]),
        amf3.AMF3Array(dense=[1, 2], assoc={"x": "y"}),
        amf3.XML("<x/>"),
        b"\x00\x01\x02",
        2**40,
        -5,
    ]
    seeds = [amf3.encode(value) for value in values]
    seeds.append(amf3.encode(*values))
    return seeds


def command_seeds() -> list[bytes]:
    """One selector byte (see the ``commands`` target) + an AMF0 command or data body."""
    connect = amf0.encode(*_amf_values()[:3])
    publish = amf0.encode("publish", 5.0, None, "stream?token=abc", "live")
    metadata = amf0.encode("@setDataFrame", "onMetaData", _amf_values()[3])
    return [
        b"\x00" + connect,
        b"\x01" + b"\x00" + connect,
        b"\x00" + publish,
        b"\x02" + metadata,
        b"\x03" + b"\x00" + metadata,
        b"\x00" + amf0.encode("_result", 1.0, None, amf0.AMF3Value(value={"code": "x"})),
    ]


def control_seeds() -> list[bytes]:
    """One selector byte (the message type id) + a control message payload."""
    controls = [
        SetChunkSize(chunk_size=4096),
        AbortMessage(chunk_stream_id=4),
        Acknowledgement(sequence_number=123456),
        WindowAcknowledgementSize(window_bytes=2_500_000),
        SetPeerBandwidth(window_bytes=2_500_000, limit_type=LimitType.DYNAMIC),
        StreamBegin(stream_id=1),
        SetBufferLength(stream_id=1, buffer_length_ms=3000),
        PingRequest(timestamp_ms=99),
        UnknownUserControl(event_type=31, data=b"\x00\x00\x00\x01"),
    ]
    out = []
    for control in controls:
        message = encode_control(control)
        out.append(bytes((message.type_id,)) + message.payload)
    return out


def _media_messages() -> list[Message]:
    """A short publish: metadata, AVC/AAC sequence headers, a keyframe, frames."""
    video = flv_files()["h264_aac.flv"]
    messages = []
    for tag in video[:12]:
        messages.append(
            Message(
                type_id=tag.tag_type,
                timestamp_ms=tag.timestamp_ms,
                message_stream_id=1,
                payload=tag.payload,
                chunk_stream_id=4 if tag.tag_type == MessageType.AUDIO else 6,
            )
        )
    return messages


def chunk_seeds() -> list[bytes]:
    """One selector byte (the chunk size, see the ``chunk`` target) + a chunk stream."""
    messages = _media_messages()
    seeds = []
    for selector, size in ((0, 1), (2, 128), (3, 4096)):
        writer = ChunkWriter(chunk_size=size)
        seeds.append(bytes((selector,)) + b"".join(writer.write(m) for m in messages))
    # Extended timestamps, a 3-byte basic header and interleaved chunk streams.
    writer = ChunkWriter()
    late = [
        Message(type_id=9, timestamp_ms=0x1000000 + i * 40, message_stream_id=1, payload=b"v" * 300)
        for i in range(3)
    ]
    high = Message(
        type_id=8, timestamp_ms=5, message_stream_id=1, payload=b"a" * 200, chunk_stream_id=400
    )
    seeds.append(b"\x02" + b"".join(writer.write(m) for m in [*late, high]))
    seeds.append(b"\x02" + serialize_message(late[0], 128) + serialize_message(high, 128))
    return seeds


def _client_bytes(client: ClientSession, server: ServerSession) -> bytes:
    """Move bytes both ways until quiet; return what the client sent after its handshake."""
    sent = bytearray()
    while True:
        data = client.data_to_send()
        sent += data
        if data:
            server.receive_data(data)
        while (event := server.next_event()) is not None:
            name = type(event).__name__
            if name == "ConnectRequest":
                server.accept_connect(event)  # type: ignore[arg-type]
            elif name == "PublishRequest":
                server.accept_publish(event)  # type: ignore[arg-type]
            elif name == "PlayRequest":
                server.accept_play(event)  # type: ignore[arg-type]
        reply = server.data_to_send()
        if reply:
            client.receive_data(reply)
        while client.next_event() is not None:
            pass
        if not data and not reply:
            return bytes(sent)


def _session_pair() -> tuple[ClientSession, ServerSession]:
    client = ClientSession(digest_handshake=True)
    server = ServerSession()
    client.initiate()
    _client_bytes(client, server)
    return client, server


@functools.cache
def _sessions() -> tuple[list[bytes], list[bytes]]:
    """(client chunk streams, server chunk streams) of a publish and a play session."""
    client_side: list[bytes] = []
    server_side: list[bytes] = []
    # Publish: connect, releaseStream/FCPublish, createStream, publish, metadata, media.
    client, server = _session_pair()
    server_out = bytearray()
    original = server.data_to_send

    def record() -> bytes:
        data = original()
        server_out.extend(data)
        return data

    server.data_to_send = record  # type: ignore[method-assign]
    server_out.clear()
    client.connect("live", "rtmp://127.0.0.1/live")
    sent = _client_bytes(client, server)
    client.release_stream("cam")
    client.create_stream()
    sent += _client_bytes(client, server)
    client.publish(1, "cam?key=secret")
    sent += _client_bytes(client, server)
    client.send_metadata(1, {"width": 320.0, "height": 240.0})
    for message in _media_messages():
        client.send_media(1, message.type_id, message.timestamp_ms, message.payload)
    client.fc_unpublish("cam")
    client.delete_stream(1)
    client_side.append(sent + _client_bytes(client, server))
    server_side.append(bytes(server_out))
    # Play, pause, receiveVideo, closeStream.
    client, server = _session_pair()
    client.connect("live?token=abc", "rtmp://127.0.0.1/live?token=abc")
    sent = _client_bytes(client, server)
    client.create_stream()
    sent += _client_bytes(client, server)
    client.play(1, "cam")
    sent += _client_bytes(client, server)
    client.call("pause", True, 1000.0, stream_id=1)
    client.call("receiveVideo", False, stream_id=1)
    client.send_command("closeStream", 0.0, None, stream_id=1)
    client.call("someCustomCall", {"a": [1, 2]})
    client_side.append(sent + _client_bytes(client, server))
    return client_side, server_side


def server_session_seeds() -> list[bytes]:
    """Chunk streams our client sent (after the handshake) in a publish and a play session."""
    return list(_sessions()[0])


def client_session_seeds() -> list[bytes]:
    """Chunk streams our server sent back in a publish session (after S0+S1+S2)."""
    return [data for data in _sessions()[1] if data]


@functools.cache
def flv_files() -> dict[str, list[FLVTag]]:
    """The tags of every FLV fixture, by file name."""
    files = {}
    for path in sorted((_FIXTURES / "flv").glob("*.flv")):
        with path.open("rb") as fh:
            files[path.name] = list(FLVReader(fh))
    return files


def flv_file_bytes() -> list[bytes]:
    """The FLV fixture files themselves (a few KiB each)."""
    return [path.read_bytes() for path in sorted((_FIXTURES / "flv").glob("*.flv"))]


def _tag_payloads(tag_type: int) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for tags in flv_files().values():
        for tag in tags:
            if tag.tag_type == tag_type:
                # The first bytes decide the header; keep one example per header shape.
                seen.setdefault(tag.payload[:64], None)
    return list(seen)


def video_tag_seeds() -> list[bytes]:
    """Video tag bodies (legacy AVC, E-RTMP hvc1/av01/vp09, multitrack), cut at 64 bytes."""
    return _tag_payloads(MessageType.VIDEO)


def audio_tag_seeds() -> list[bytes]:
    """Audio tag bodies (legacy AAC, E-RTMP Opus/fLaC, multitrack), cut at 64 bytes."""
    return _tag_payloads(MessageType.AUDIO)


@functools.cache
def codec_fixtures() -> dict[str, bytes]:
    """Every codec fixture (``tests/media/fixtures/codecs/*.bin``) by file name."""
    return {path.name: path.read_bytes() for path in sorted((_FIXTURES / "codecs").glob("*.bin"))}


def codec_fixture(prefix: str, *, keyframe: bool = False) -> list[bytes]:
    """The codec fixtures whose name starts with ``prefix`` (keyframes or records)."""
    return [
        data
        for name, data in codec_fixtures().items()
        if name.startswith(prefix) and name.endswith(".keyframe.bin") == keyframe
    ] or [b""]


def avc_sps_seeds() -> list[bytes]:
    """The SPS NAL units inside the H.264 configuration records."""
    return [
        sps
        for record in codec_fixture("h264_")
        for sps in parse_avc_decoder_configuration_record(record).sps
    ]


def hevc_sps_seeds() -> list[bytes]:
    """The SPS NAL units inside the H.265 configuration records."""
    return [
        sps
        for record in codec_fixture("hevc_")
        for sps in parse_hevc_decoder_configuration_record(record).nal_units_of_type(
            NAL_UNIT_TYPE_SPS
        )
    ]


def av1_obu_seeds() -> list[bytes]:
    """The ``configOBUs`` of the AV1 configuration records."""
    return [parse_av1_codec_configuration_record(r).config_obus for r in codec_fixture("av1_")]


def flv_stream(tags: list[FLVTag]) -> bytes:
    """An FLV file holding ``tags`` (used to build small FLV seeds)."""
    from aiortmp.media.flv import FLVWriter

    out = io.BytesIO()
    writer = FLVWriter(out, has_audio=True, has_video=True)
    for tag in tags:
        writer.write_tag(tag.tag_type, tag.timestamp_ms, tag.payload)
    return out.getvalue()
