"""One fuzz target per parser; each accepts only the exceptions its parser documents.

A target is a function of one ``bytes`` argument (the shape atheris' ``TestOneInput`` and
hypothesis' ``fuzz_one_input`` both expect). It runs the parser, swallows the documented
exceptions and lets anything else escape, so hypothesis reports (and shrinks) the input.
Where a parser is incremental, the target also feeds the input whole and one byte at a time
and requires the same result both ways; where an encoder exists, it checks that what was
decoded encodes again, within a bounded size.

The inputs come from :func:`FuzzTarget.strategy`: random bytes, and valid seeds from
:mod:`tests.fuzz.corpus` with bytes flipped, inserted, deleted, duplicated or cut.
Targets whose input needs more than one value read a selector byte first.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from aiortmp.hub.info import StreamInfo
from aiortmp.media import audio_config, av1, avc, codec_info, hevc, tags, vp9
from aiortmp.media.errors import CodecHeaderError, FLVError
from aiortmp.media.flv import FLVParser, FLVReader
from aiortmp.protocol import amf0, amf3
from aiortmp.protocol.chunk import ChunkReader
from aiortmp.protocol.commands import decode_command, decode_data, metadata_from_data
from aiortmp.protocol.connection import RTMPConnection
from aiortmp.protocol.control import CONTROL_MESSAGE_TYPES, decode_control, encode_control
from aiortmp.protocol.errors import (
    AMFEncodeError,
    AMFError,
    ChunkError,
    CommandError,
    HandshakeError,
    LimitExceededError,
    LocalProtocolError,
    MessageError,
    RemoteProtocolError,
)
from aiortmp.protocol.events import (
    ConnectRequest,
    Event,
    PlayRequest,
    PublishRequest,
)
from aiortmp.protocol.handshake import Handshake, HandshakeRole
from aiortmp.protocol.messages import Message, MessageType, split_aggregate
from aiortmp.protocol.session import ClientSession, NetStreamState, ServerSession

from . import corpus, structured

__all__ = ["TARGETS", "FuzzTarget", "mutations"]

# Small limits, so that the limit paths are reached by short inputs.
_MAX_MESSAGE = 64 * 1024
_MAX_CSIDS = 16
_MAX_PENDING = 128 * 1024
_MAX_DEPTH = 16
# A decoded AMF body re-encodes to at most this many times its size (plus a constant):
# references (AMF0 §2.9, AMF3 §2.1) must not let a small body stand for a huge value.
_AMF_GROWTH = 64
_AMF_SLACK = 1 << 21


@dataclass(frozen=True)
class FuzzTarget:
    """A parser under fuzzing.

    Attributes:
        name: the name ``python -m tests.fuzz --target`` takes.
        covers: the functions exercised.
        one_input: runs the parser on one input; raises only on a bug.
        seeds: valid inputs the mutations start from.
        max_size: longest random input, in bytes.
        structured: well-framed inputs with arbitrary contents (see
            :mod:`tests.fuzz.structured`), for targets behind a framing layer.
    """

    name: str
    covers: str
    one_input: Callable[[bytes], None]
    seeds: Callable[[], Sequence[bytes]]
    max_size: int = 2048
    structured: Callable[[], st.SearchStrategy[bytes]] | None = None

    def strategy(self) -> st.SearchStrategy[bytes]:
        """Random bytes, a seed with a few mutations, or a structured input."""
        choices = [st.binary(max_size=self.max_size), mutations(list(self.seeds()))]
        if self.structured is not None:
            structured = self.structured()
            choices += [structured, structured.flatmap(lambda b: mutations([b]))]
        return st.one_of(choices)


_INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x05, 0x07, 0x0A, 0x11, 0x3F, 0x7F, 0x80, 0xC0, 0xFF)


def mutations(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed from ``seeds`` with up to eight random edits.

    The edits are the usual ones of mutation fuzzers: flip bits of a byte, set a byte to
    a boundary value, insert random bytes, delete a range, duplicate a range, truncate.
    """
    if not seeds:
        return st.binary(max_size=64)

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 8))):
            op = draw(st.integers(0, 5))
            pos = draw(st.integers(0, len(data)))
            if op == 2 or not data:
                data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
            elif op == 0:
                pos = min(pos, len(data) - 1)
                data[pos] ^= draw(st.integers(1, 255))
            elif op == 1:
                pos = min(pos, len(data) - 1)
                data[pos] = draw(st.sampled_from(_INTERESTING))
            elif op == 3:
                del data[pos : pos + draw(st.integers(1, 64))]
            elif op == 4:
                piece = data[pos : pos + draw(st.integers(1, 64))]
                data[pos:pos] = piece
            else:
                del data[pos:]
        return bytes(data)

    return build()


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def _same_outcome(whole: tuple[list[Any], Any], bytewise: tuple[list[Any], Any]) -> None:
    """Whole and byte-at-a-time feeding give the same items, and fail alike.

    When a call raises, the items it parsed before the error may not have been handed
    out (the peer is dropped anyway), so then the whole run's items need only be a
    prefix of the byte-at-a-time run's. The error may come from another layer: fed at
    once, the chunk layer parses every message before the command layer decodes one.
    """
    assert (whole[1] is None) == (bytewise[1] is None)
    # repr(), because NaN arguments are not equal to themselves.
    if whole[1] is None:
        assert repr(whole[0]) == repr(bytewise[0])
    else:
        assert repr(bytewise[0][: len(whole[0])]) == repr(whole[0])


# --------------------------------------------------------------------------- handshake


def _handshake(role: HandshakeRole, pieces: Sequence[bytes], strict: bool) -> tuple[Any, ...]:
    hs = Handshake(role, random_bytes=corpus.fixed_random, strict=strict)
    if role is HandshakeRole.CLIENT:
        hs.initiate()
        hs.data_to_send()
    sent = bytearray()
    error: type[BaseException] | None = None
    try:
        for piece in pieces:
            hs.receive_data(piece)
            sent += hs.data_to_send()
    except HandshakeError as exc:
        error = type(exc)
    # What was queued before a failure (S0+S1+S2 before a bad C2) is still there to send.
    sent += hs.data_to_send()
    return hs.state, error, bytes(sent), hs.take_unused_data(), hs.digest_scheme


def _fuzz_handshake(role: HandshakeRole) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        for strict in (False, True):
            whole = _handshake(role, [data], strict)
            assert _handshake(role, _bytewise(data), strict) == whole
            # Trailing bytes are kept for the chunk layer and change nothing else.
            if whole[1] is None and whole[0].name == "COMPLETE":
                trailing = _handshake(role, [data + b"\x02\x00"], strict)
                assert trailing[:3] == whole[:3] and trailing[3] == whole[3] + b"\x02\x00"

    return one_input


# --------------------------------------------------------------------------- chunk layer

_CHUNK_SIZES = (1, 2, 128, 4096, 0x7FFFFFFF, 7)


def _read_chunks(pieces: Sequence[bytes], chunk_size: int) -> tuple[Any, ...]:
    reader = ChunkReader(
        max_message_size=_MAX_MESSAGE, max_chunk_streams=_MAX_CSIDS, max_pending_bytes=_MAX_PENDING
    )
    reader.set_chunk_size(chunk_size)
    messages: list[Message] = []
    error: type[BaseException] | None = None
    try:
        for piece in pieces:
            reader.receive_data(piece)
            while (message := reader.next_message()) is not None:
                messages.append(message)
                if message.type_id == MessageType.ABORT and len(message.payload) == 4:
                    reader.abort(int.from_bytes(message.payload, "big"))
    except (ChunkError, LimitExceededError) as exc:
        error = type(exc)
    return messages, error


def fuzz_chunk(data: bytes) -> None:
    """ChunkReader: byte 0 picks the peer's chunk size, the rest is the chunk stream."""
    if not data:
        return
    size = _CHUNK_SIZES[data[0] % len(_CHUNK_SIZES)]
    stream = data[1:]
    whole = _read_chunks([stream], size)
    _same_outcome(whole, _read_chunks(_bytewise(stream), size))
    for message in whole[0]:
        assert len(message.payload) <= _MAX_MESSAGE
        assert 0 <= message.timestamp_ms <= 0xFFFFFFFF


def _connection_events(pieces: Sequence[bytes]) -> tuple[list[Event], Any]:
    conn = RTMPConnection(
        HandshakeRole.SERVER,
        max_message_size=_MAX_MESSAGE,
        max_chunk_streams=_MAX_CSIDS,
        max_pending_bytes=_MAX_PENDING,
    )
    events: list[Event] = []
    error: type[BaseException] | None = None
    try:
        for piece in [corpus.CLIENT_HANDSHAKE, *pieces]:
            conn.receive_data(piece)
            while (event := conn.next_event()) is not None:
                events.append(event)
    except RemoteProtocolError as exc:
        error = type(exc)
    conn.data_to_send()
    return events, error


def fuzz_connection(data: bytes) -> None:
    """RTMPConnection (server) after a valid handshake: chunks + protocol control."""
    _same_outcome(_connection_events([data]), _connection_events(_bytewise(data)))


def fuzz_control(data: bytes) -> None:
    """decode_control: byte 0 picks the message type (1-6), the rest is the payload."""
    if not data:
        return
    types = sorted(CONTROL_MESSAGE_TYPES)
    type_id = types[data[0] % len(types)]
    payload = data[1:]
    try:
        control = decode_control(type_id, payload)
    except MessageError:
        return
    # What decodes encodes back to the same bytes.
    assert encode_control(control).payload == payload


def fuzz_aggregate(data: bytes) -> None:
    """split_aggregate (RTMP 1.0 §7.1.6) on an aggregate message body."""
    message = Message(
        type_id=MessageType.AGGREGATE, timestamp_ms=1000, message_stream_id=1, payload=data
    )
    try:
        parts = split_aggregate(message)
    except MessageError:
        return
    assert sum(len(p.payload) + 11 for p in parts) <= len(data)


# --------------------------------------------------------------------------- AMF


def _check_reencode(
    values: list[Any], size: int, encode: Callable[..., bytes], decode_all: Callable[..., list[Any]]
) -> None:
    try:
        again = encode(*values)
    except AMFEncodeError:
        # Cyclic references (AMF0 does not emit references) and AMF3-only values (ByteArray,
        # Vector...) after an AMF0 avmplus marker have no AMF0 form.
        return
    assert len(again) <= _AMF_GROWTH * size + _AMF_SLACK
    # The encoding of a decoded value is a fixed point.
    assert encode(*decode_all(again, max_depth=_MAX_DEPTH + 1)) == again


def fuzz_amf0(data: bytes) -> None:
    """amf0.decode_all on a message body; what decodes must re-encode, within bounds."""
    try:
        values = amf0.decode_all(data, max_depth=_MAX_DEPTH)
    except (AMFError, LimitExceededError):
        return
    _check_reencode(values, len(data), amf0.encode, amf0.decode_all)


def fuzz_amf3(data: bytes) -> None:
    """amf3.decode_all on a message body; what decodes must re-encode, within bounds."""
    try:
        values = amf3.decode_all(data, max_depth=_MAX_DEPTH)
    except (AMFError, LimitExceededError):
        return
    _check_reencode(values, len(data), amf3.encode, amf3.decode_all)


_COMMAND_TYPES = (
    MessageType.COMMAND_AMF0,
    MessageType.COMMAND_AMF3,
    MessageType.DATA_AMF0,
    MessageType.DATA_AMF3,
)


def fuzz_commands(data: bytes) -> None:
    """decode_command / decode_data: byte 0 picks type 20, 17, 18 or 15."""
    if not data:
        return
    type_id = _COMMAND_TYPES[data[0] % 4]
    message = Message(type_id=type_id, timestamp_ms=0, message_stream_id=1, payload=data[1:])
    try:
        if type_id in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            command = decode_command(message, max_depth=_MAX_DEPTH)
            assert isinstance(command.name, str)
        else:
            metadata_from_data(decode_data(message, max_depth=_MAX_DEPTH))
    except (CommandError, AMFError, LimitExceededError):
        return


# --------------------------------------------------------------------------- sessions


_PUBLISH_PENDING = NetStreamState.PUBLISH_PENDING
_PLAY_PENDING = NetStreamState.PLAY_PENDING


def _serve(session: ServerSession, pieces: Sequence[bytes]) -> tuple[list[Event], Any]:
    """Feed a server session, accepting connect/play and every other publish."""
    events: list[Event] = []
    error: type[BaseException] | None = None
    try:
        for piece in [corpus.CLIENT_HANDSHAKE, *pieces]:
            session.receive_data(piece)
            while (event := session.next_event()) is not None:
                events.append(event)
                # Like the server's handler, answer only requests still pending: the
                # same bytes may already have closed the stream again.
                state = session.stream_state(getattr(event, "stream_id", -1))
                if isinstance(event, ConnectRequest):
                    session.accept_connect(event)
                elif isinstance(event, PublishRequest) and state is _PUBLISH_PENDING:
                    if len(event.name) % 2:
                        session.accept_publish(event)
                    else:
                        session.reject_publish(event, "even")
                elif isinstance(event, PlayRequest) and state is _PLAY_PENDING:
                    session.accept_play(event)
            session.data_to_send()
    except RemoteProtocolError as exc:
        error = type(exc)
    return events, error


def _server_session() -> ServerSession:
    return ServerSession(
        max_streams=4,
        max_amf_depth=_MAX_DEPTH,
        max_message_size=_MAX_MESSAGE,
        max_chunk_streams=_MAX_CSIDS,
        max_pending_bytes=_MAX_PENDING,
    )


def fuzz_server_session(data: bytes) -> None:
    """ServerSession (commands, NetStream state table) fed a client's chunk stream.

    Whole and byte-at-a-time runs are not compared: what a session holds back depends on
    when its owner answers ``connect`` (commands pipelined behind a pending connect are
    deferred, up to a limit), and byte by byte the owner answers earlier.
    """
    _serve(_server_session(), [data])
    _serve(_server_session(), _bytewise(data))


def _client(pieces: Sequence[bytes]) -> tuple[list[Event], Any]:
    session = ClientSession(
        digest_handshake=True,
        max_amf_depth=_MAX_DEPTH,
        max_message_size=_MAX_MESSAGE,
        max_chunk_streams=_MAX_CSIDS,
        max_pending_bytes=_MAX_PENDING,
    )
    session.connection._handshake = Handshake(  # deterministic C1, so the reply verifies
        HandshakeRole.CLIENT, random_bytes=corpus.fixed_random
    )
    events: list[Event] = []
    error: type[BaseException] | None = None
    session.initiate()
    try:
        session.receive_data(corpus.SERVER_HANDSHAKE_REPLY)
        session.connect("live", "rtmp://127.0.0.1/live")
        session.create_stream()
        for piece in [b"", *pieces]:
            session.receive_data(piece)
            while (event := session.next_event()) is not None:
                events.append(event)
            session.data_to_send()
    except RemoteProtocolError as exc:
        error = type(exc)
    return events, error


def fuzz_client_session(data: bytes) -> None:
    """ClientSession fed a server's chunk stream (results, onStatus, media)."""
    _same_outcome(_client([data]), _client(_bytewise(data)))


# --------------------------------------------------------------------------- FLV and tags


def _flv(pieces: Sequence[bytes]) -> tuple[Any, ...]:
    parser = FLVParser(max_tag_size=_MAX_MESSAGE)
    found = []
    error: type[BaseException] | None = None
    try:
        for piece in pieces:
            found += parser.feed(piece)
    except FLVError as exc:
        error = type(exc)
    return found, error, parser.header


def fuzz_flv(data: bytes) -> None:
    """FLVParser whole and bytewise, FLVReader over a file, and the tags in it."""
    whole = _flv([data])
    bytewise = _flv(_bytewise(data))
    # A feed() that raises loses the tags it completed before the error; a byte-at-a-time
    # feed returned them already.
    assert bytewise[1:] == whole[1:]
    assert bytewise[0] == whole[0] if whole[1] is None else bytewise[0][: len(whole[0])] == whole[0]
    try:
        reader = FLVReader(io.BytesIO(data), max_tag_size=_MAX_MESSAGE)
        read = list(reader)
    except FLVError:
        return
    assert read == whole[0]
    for tag in read:
        if tag.tag_type == MessageType.VIDEO:
            fuzz_video_tag(tag.payload)
        elif tag.tag_type == MessageType.AUDIO:
            fuzz_audio_tag(tag.payload)


def fuzz_video_tag(data: bytes) -> None:
    """parse_video_tag / classify_video / encode_video_tag (legacy and E-RTMP v2)."""
    kind = tags.classify_video(data)  # never raises
    try:
        tag = tags.parse_video_tag(data)
    except CodecHeaderError:
        return
    assert kind == tag.kind
    try:
        encoded = tags.encode_video_tag(tag)
    except LocalProtocolError:
        return
    assert tags.parse_video_tag(encoded) == tag


def fuzz_audio_tag(data: bytes) -> None:
    """parse_audio_tag / classify_audio / encode_audio_tag / parse_multichannel_config."""
    kind = tags.classify_audio(data)  # never raises
    try:
        tags.parse_multichannel_config(data)
    except CodecHeaderError:
        pass
    try:
        tag = tags.parse_audio_tag(data)
    except CodecHeaderError:
        return
    assert kind == tag.kind
    try:
        encoded = tags.encode_audio_tag(tag)
    except LocalProtocolError:
        return
    assert tags.parse_audio_tag(encoded) == tag


def fuzz_stream_info(data: bytes) -> None:
    """The server's StreamInfo hooks on sequence headers and first frames: never raise."""
    info = StreamInfo()
    info.on_video_header(data)
    info.on_keyframe(data)
    info.on_audio_header(data)
    info.on_audio_frame(data)
    info.summary()


# --------------------------------------------------------------------------- codec configs


def _codec(parse: Callable[[bytes], object]) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        try:
            result = parse(data)
        except CodecHeaderError:
            return
        if hasattr(result, "__iter__") and not isinstance(result, bytes | tuple):
            for _ in result:  # iter_obus is lazy
                pass

    one_input.__doc__ = parse.__doc__
    return one_input


def _consume_obus(data: bytes) -> list[tuple[int, bytes]]:
    return list(av1.iter_obus(data))


_VIDEO_FOURCCS = ("avc1", "hvc1", "av01", "vp09", "vp08", "avc3", "hev1", "xxxx")
_AUDIO_FOURCCS = (
    "mp4a",
    "Opus",
    "fLaC",
    "ac-3",
    "ec-3",
    ".mp3",
    "lpcm",
    "adpcm",
    "nellymoser",
    "alaw",
    "ulaw",
    "speex",
    "xxxx",
)


def fuzz_video_info(data: bytes) -> None:
    """video_info_from_config / video_info_from_keyframe: byte 0 picks the FourCC."""
    if not data:
        return
    fourcc = _VIDEO_FOURCCS[data[0] % len(_VIDEO_FOURCCS)]
    try:
        info = codec_info.video_info_from_config(fourcc, data[1:])
    except CodecHeaderError:
        info = codec_info.VideoInfo(
            codec=fourcc, profile=None, level=None, width=None, height=None, frame_rate=None
        )
    try:
        codec_info.video_info_from_keyframe(info, data[1:])
    except CodecHeaderError:
        pass


def fuzz_audio_info(data: bytes) -> None:
    """audio_info_from_config / audio_info_from_flv_sound_flags: byte 0 picks the FourCC."""
    if not data:
        return
    fourcc = _AUDIO_FOURCCS[data[0] % len(_AUDIO_FOURCCS)]
    for call in (
        lambda: codec_info.audio_info_from_config(fourcc, data[1:]),
        lambda: codec_info.audio_info_from_flv_sound_flags(data[0]),
        lambda: audio_config.parse_flv_sound_flags(data[-1]),
    ):
        try:
            call()
        except CodecHeaderError:
            pass


def _seeded(
    prefixes: Sequence[bytes], seeds: Callable[[], Sequence[bytes]]
) -> Callable[[], list[bytes]]:
    return lambda: [p + s for s in seeds() for p in prefixes]


TARGETS: dict[str, FuzzTarget] = {
    t.name: t
    for t in [
        FuzzTarget(
            "handshake_server",
            "Handshake(SERVER).receive_data: C0, C1 (digest schemes 0/1, plain), C2",
            _fuzz_handshake(HandshakeRole.SERVER),
            corpus.handshake_server_seeds,
            max_size=4096,
        ),
        FuzzTarget(
            "handshake_client",
            "Handshake(CLIENT).receive_data: S0, S1, S2 (digest verification)",
            _fuzz_handshake(HandshakeRole.CLIENT),
            corpus.handshake_client_seeds,
            max_size=4096,
        ),
        FuzzTarget(
            "chunk", "ChunkReader.receive_data/next_message/abort", fuzz_chunk, corpus.chunk_seeds
        ),
        FuzzTarget(
            "connection",
            "RTMPConnection: chunks, Set Chunk Size, Abort, Ack, Ping, aggregates",
            fuzz_connection,
            lambda: [s[1:] for s in corpus.chunk_seeds()] + corpus.server_session_seeds(),
        ),
        FuzzTarget(
            "control",
            "decode_control / encode_control (types 1-6)",
            fuzz_control,
            corpus.control_seeds,
            max_size=64,
        ),
        FuzzTarget("aggregate", "split_aggregate (type 22)", fuzz_aggregate, lambda: [b""]),
        FuzzTarget(
            "amf0",
            "amf0.decode_all / amf0.encode",
            fuzz_amf0,
            corpus.amf0_seeds,
            structured=structured.amf0_bodies,
        ),
        FuzzTarget(
            "amf3",
            "amf3.decode_all / amf3.encode",
            fuzz_amf3,
            corpus.amf3_seeds,
            structured=structured.amf3_bodies,
        ),
        FuzzTarget(
            "commands",
            "decode_command / decode_data / metadata_from_data",
            fuzz_commands,
            corpus.command_seeds,
            structured=structured.command_bodies,
        ),
        FuzzTarget(
            "server_session",
            "ServerSession: every NetConnection/NetStream command",
            fuzz_server_session,
            corpus.server_session_seeds,
            structured=structured.server_streams,
        ),
        FuzzTarget(
            "client_session",
            "ClientSession: _result/_error/onStatus/media",
            fuzz_client_session,
            corpus.client_session_seeds,
            structured=structured.client_streams,
        ),
        FuzzTarget(
            "flv", "FLVParser.feed / FLVReader", fuzz_flv, corpus.flv_file_bytes, max_size=4096
        ),
        FuzzTarget(
            "video_tag",
            "parse_video_tag / classify_video / encode_video_tag",
            fuzz_video_tag,
            corpus.video_tag_seeds,
            max_size=256,
        ),
        FuzzTarget(
            "audio_tag",
            "parse_audio_tag / classify_audio / encode_audio_tag / parse_multichannel_config",
            fuzz_audio_tag,
            corpus.audio_tag_seeds,
            max_size=256,
        ),
        FuzzTarget(
            "stream_info",
            "server StreamInfo.on_video_header/on_keyframe/on_audio_header/on_audio_frame",
            fuzz_stream_info,
            lambda: corpus.video_tag_seeds() + corpus.audio_tag_seeds(),
            max_size=256,
        ),
        FuzzTarget(
            "avc_record",
            "parse_avc_decoder_configuration_record",
            _codec(avc.parse_avc_decoder_configuration_record),
            lambda: corpus.codec_fixture("h264_"),
            max_size=256,
        ),
        FuzzTarget(
            "avc_sps",
            "parse_avc_sps",
            _codec(avc.parse_avc_sps),
            corpus.avc_sps_seeds,
            max_size=256,
        ),
        FuzzTarget(
            "hevc_record",
            "parse_hevc_decoder_configuration_record",
            _codec(hevc.parse_hevc_decoder_configuration_record),
            lambda: corpus.codec_fixture("hevc_"),
            max_size=512,
        ),
        FuzzTarget(
            "hevc_sps",
            "parse_hevc_sps",
            _codec(hevc.parse_hevc_sps),
            corpus.hevc_sps_seeds,
            max_size=256,
        ),
        FuzzTarget(
            "av1_record",
            "parse_av1_codec_configuration_record",
            _codec(av1.parse_av1_codec_configuration_record),
            lambda: corpus.codec_fixture("av1_"),
            max_size=256,
        ),
        FuzzTarget(
            "av1_sequence_header",
            "parse_av1_sequence_header / iter_obus",
            _codec(lambda d: (av1.parse_av1_sequence_header(d), _consume_obus(d))),
            corpus.av1_obu_seeds,
            max_size=256,
        ),
        FuzzTarget(
            "vp_record",
            "parse_vp_codec_configuration_record",
            _codec(vp9.parse_vp_codec_configuration_record),
            lambda: corpus.codec_fixture("vp9_"),
            max_size=64,
        ),
        FuzzTarget(
            "vp9_frame",
            "parse_vp9_frame_header / parse_vp9_frame_size",
            _codec(lambda d: (vp9.parse_vp9_frame_header(d), vp9.parse_vp9_frame_size(d))),
            lambda: corpus.codec_fixture("vp9_", keyframe=True),
            max_size=128,
        ),
        FuzzTarget(
            "vp8_frame",
            "parse_vp8_frame_size",
            _codec(vp9.parse_vp8_frame_size),
            lambda: corpus.codec_fixture("vp8_", keyframe=True),
            max_size=128,
        ),
        FuzzTarget(
            "aac_config",
            "parse_audio_specific_config / aac_profile_name",
            _codec(
                lambda d: audio_config.aac_profile_name(audio_config.parse_audio_specific_config(d))
            ),
            lambda: corpus.codec_fixture("aac_"),
            max_size=64,
        ),
        FuzzTarget(
            "opus_head",
            "parse_opus_head",
            _codec(audio_config.parse_opus_head),
            lambda: corpus.codec_fixture("opus_"),
            max_size=128,
        ),
        FuzzTarget(
            "flac_streaminfo",
            "parse_flac_stream_info",
            _codec(audio_config.parse_flac_stream_info),
            lambda: corpus.codec_fixture("flac_"),
            max_size=128,
        ),
        FuzzTarget(
            "ac3_frame",
            "parse_ac3_frame_header (AC-3 and E-AC-3)",
            _codec(audio_config.parse_ac3_frame_header),
            lambda: corpus.codec_fixture("ac3_") + corpus.codec_fixture("eac3_"),
            max_size=128,
        ),
        FuzzTarget(
            "mpeg_audio_frame",
            "parse_mpeg_audio_frame_header",
            _codec(audio_config.parse_mpeg_audio_frame_header),
            lambda: corpus.codec_fixture("mp3_"),
            max_size=64,
        ),
        FuzzTarget(
            "video_info",
            "video_info_from_config / video_info_from_keyframe",
            fuzz_video_info,
            _seeded(
                [bytes((i,)) for i in range(5)],
                lambda: [
                    d
                    for name, d in corpus.codec_fixtures().items()
                    if name.startswith(("h264", "hevc", "av1", "vp"))
                ],
            ),
            max_size=512,
        ),
        FuzzTarget(
            "audio_info",
            "audio_info_from_config / audio_info_from_flv_sound_flags / parse_flv_sound_flags",
            fuzz_audio_info,
            _seeded(
                [bytes((i,)) for i in range(13)],
                lambda: [
                    d
                    for name, d in corpus.codec_fixtures().items()
                    if not name.startswith(("h264", "hevc", "av1", "vp"))
                ],
            ),
            max_size=128,
        ),
    ]
}
