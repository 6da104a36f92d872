"""ServerSession and ClientSession against each other in memory (RTMP 1.0 §7.2)."""

from __future__ import annotations

import pytest

from aiortmp.protocol import amf0
from aiortmp.protocol.commands import Command, NetStatusCode, encode_command, encode_data
from aiortmp.protocol.control import SetBufferLength, StreamBegin, StreamEOF, StreamIsRecorded
from aiortmp.protocol.errors import CommandError, LimitExceededError, LocalProtocolError
from aiortmp.protocol.events import (
    CommandResult,
    ConnectRequest,
    ControlReceived,
    MediaReceived,
    MessageReceived,
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
from aiortmp.protocol.messages import Message, MessageType
from aiortmp.protocol.session import (
    ENHANCED_RTMP_KEYS,
    MAX_DEFERRED_COMMANDS,
    STREAM_TRANSITIONS,
    CapsExMask,
    ClientSession,
    FourCcInfoMask,
    NetConnectionState,
    NetStreamState,
    ServerSession,
    _In,
    resolve_tc_url,
)

from .pair import drain as _drain_all
from .pair import handshaken_pair, roundtrip


def connected_pair(**opts: object) -> tuple[ClientSession, ServerSession]:
    client, server = handshaken_pair(**opts)
    tid = client.connect("live?token=abc", "rtmp://127.0.0.1/live")
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, ConnectRequest)]
    assert request.app == "live" and request.query == "token=abc"
    server.accept_connect(request)
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert result.transaction_id == tid and result.success
    assert result.info["code"] == NetStatusCode.CONNECT_SUCCESS
    assert result.info["objectEncoding"] == 0
    assert server.state is NetConnectionState.CONNECTED
    # Set Chunk Size 4096 applies to what the server sends next.
    assert server.connection.chunk_size == 4096
    assert client.connection.peer_chunk_size == 4096
    return client, server


def create_stream(client: ClientSession, server: ServerSession) -> int:
    tid = client.create_stream()
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult) and e.transaction_id == tid]
    assert result.success
    return int(result.arguments[0])


def test_connect_reject() -> None:
    client, server = handshaken_pair()
    client.connect("live", "rtmp://h/live")
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, ConnectRequest)]
    server.reject_connect(request, "no such app")
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert not result.success
    assert result.info["code"] == NetStatusCode.CONNECT_REJECTED
    assert result.info["level"] == "error"


def test_publish_flow_media_and_metadata() -> None:
    client, server = connected_pair()
    client.release_stream("cam")
    cevents, _ = roundtrip(client, server)
    assert [e.name for e in cevents if isinstance(e, StatusReceived)] == ["onFCPublish"]
    assert [e.success for e in cevents if isinstance(e, CommandResult)] == [True, True]
    sid = create_stream(client, server)
    assert sid == 1
    client.publish(sid, "cam?key=1")
    cevents, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PublishRequest)]
    assert (request.name, request.query, request.publish_type) == ("cam", "key=1", "live")
    server.accept_publish(request)
    cevents, _ = roundtrip(client, server)
    codes = [e.code for e in cevents if isinstance(e, StatusReceived)]
    assert codes == [NetStatusCode.PUBLISH_START]
    client.send_metadata(sid, {"width": 320.0, "height": 240.0})
    client.send_media(sid, MessageType.VIDEO, 40, b"\x17\x01\x00\x00\x00frame")
    client.send_media(sid, MessageType.AUDIO, 41, b"\xaf\x01aac")
    _, sevents = roundtrip(client, server)
    (meta,) = [e for e in sevents if isinstance(e, MetadataReceived)]
    assert meta.metadata == {"width": 320.0, "height": 240.0}
    media = [e for e in sevents if isinstance(e, MediaReceived)]
    assert [(m.type_id, m.timestamp_ms, m.payload) for m in media] == [
        (9, 40, b"\x17\x01\x00\x00\x00frame"),
        (8, 41, b"\xaf\x01aac"),
    ]
    client.fc_unpublish("cam")
    client.delete_stream(sid)
    cevents, sevents = roundtrip(client, server)
    assert StreamClosed(stream_id=sid, deleted=True) in sevents
    assert [e.code for e in cevents if isinstance(e, StatusReceived)] == [
        NetStatusCode.UNPUBLISH_SUCCESS
    ]


def test_publish_rejected_bad_name() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.publish(sid, "taken")
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PublishRequest)]
    server.reject_publish(request, "already publishing")
    cevents, _ = roundtrip(client, server)
    (status,) = [e for e in cevents if isinstance(e, StatusReceived)]
    assert (status.code, status.level) == (NetStatusCode.PUBLISH_BAD_NAME, "error")
    assert server.stream_state(sid) is NetStreamState.IDLE
    # Media on a stream that is not publishing is dropped, not an error.
    client.send_media(sid, MessageType.VIDEO, 0, b"\x17\x01")
    _, sevents = roundtrip(client, server)
    assert not [e for e in sevents if isinstance(e, MediaReceived)]


def test_play_flow_statuses_and_controls() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.play(sid, "cam", start_ms=-1)
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PlayRequest)]
    assert (request.name, request.start_ms, request.duration_ms, request.reset) == (
        "cam",
        -1.0,
        -1.0,
        True,
    )
    server.accept_play(request)
    cevents, _ = roundtrip(client, server)
    controls = [e.control for e in cevents if isinstance(e, ControlReceived)]
    assert StreamBegin(stream_id=sid) in controls
    codes = [e.code for e in cevents if isinstance(e, StatusReceived)]
    assert codes == [NetStatusCode.PLAY_RESET, NetStatusCode.PLAY_START]
    server.notify_unpublish(sid, "cam")
    cevents, _ = roundtrip(client, server)
    assert [e.code for e in cevents if isinstance(e, StatusReceived)] == [
        NetStatusCode.PLAY_UNPUBLISH_NOTIFY
    ]
    assert StreamEOF(stream_id=sid) in [
        e.control for e in cevents if isinstance(e, ControlReceived)
    ]
    # receiveVideo / pause
    client.send_command("receiveVideo", 0.0, None, False, stream_id=sid)
    client.send_command("pause", 0.0, None, True, 1234.0, stream_id=sid)
    cevents, sevents = roundtrip(client, server)
    assert ReceiveMediaChanged(stream_id=sid, video=False) in sevents
    assert PauseRequest(stream_id=sid, paused=True, position_ms=1234.0) in sevents
    assert [e.code for e in cevents if isinstance(e, StatusReceived)] == [
        NetStatusCode.PAUSE_NOTIFY
    ]


def test_unknown_command_with_transaction_id_gets_error() -> None:
    client, server = connected_pair()
    tid = client.call("noSuchCommand", "x")
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert result.transaction_id == tid and not result.success
    assert result.info["code"] == NetStatusCode.CALL_FAILED


def test_get_stream_length_is_asked_of_the_owner_and_answered() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    tid = client.get_stream_length("mp4:dir/clip.mp4?t=1", stream_id=sid)
    cevents, sevents = roundtrip(client, server)
    assert not [e for e in cevents if isinstance(e, CommandResult)]  # the owner answers
    (request,) = [e for e in sevents if isinstance(e, StreamLengthRequest)]
    assert request == StreamLengthRequest(
        stream_id=sid, name="mp4:dir/clip.mp4", query="t=1", transaction_id=tid
    )
    server.answer_stream_length(request, 12.5)
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert result.transaction_id == tid and result.success and result.arguments == (12.5,)
    # A name that is not a string is asked about as "" (live: answered 0).
    client.call("getStreamLength", 3.0)
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, StreamLengthRequest)]
    assert request.name == "" and request.stream_id == 0


def test_too_many_streams() -> None:
    client, server = connected_pair(max_streams=2)
    create_stream(client, server)
    create_stream(client, server)
    tid = client.create_stream()
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert result.transaction_id == tid and not result.success


def test_command_before_connect_is_a_protocol_error() -> None:
    client, server = handshaken_pair()
    client.send_command("createStream", 2.0, None)
    with pytest.raises(CommandError, match="before connect"):
        roundtrip(client, server)


def test_publish_on_uncreated_stream_is_a_protocol_error() -> None:
    client, server = connected_pair()
    client.publish(7, "cam")
    with pytest.raises(CommandError, match="not created"):
        roundtrip(client, server)


def test_amf3_object_encoding_is_echoed_and_used() -> None:
    client, server = handshaken_pair()
    client.connect("live", "rtmp://h/live", properties={"objectEncoding": 3.0})
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, ConnectRequest)]
    assert request.object_encoding == 3.0
    server.accept_connect(request)
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert result.info["objectEncoding"] == 3.0
    assert client.object_encoding == 3.0 and server.object_encoding == 3.0
    # Later commands travel as type 17 and still decode.
    sid = create_stream(client, server)
    assert sid == 1


def test_type17_command_from_peer_is_decoded() -> None:
    client, server = handshaken_pair()
    message = encode_command(
        Command(name="connect", transaction_id=1.0, command_object={"app": "live"}, amf3=True)
    )
    assert message.type_id == MessageType.COMMAND_AMF3 and message.payload[0] == 0
    client.connection.send_message(message)
    _, sevents = roundtrip(client, server)
    assert [e.app for e in sevents if isinstance(e, ConnectRequest)] == ["live"]


def test_local_misuse_raises_local_protocol_error() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    fake = PublishRequest(stream_id=sid, name="x", query="", publish_type="live", transaction_id=0)
    with pytest.raises(LocalProtocolError):
        server.accept_publish(fake)


def test_stream_transition_table_is_total_over_known_pairs() -> None:
    """Every (state, input) pair either has an entry or is refused by the session."""
    for state in NetStreamState:
        for event in _In:
            server = ServerSession()
            server.streams[1] = state
            if (state, event) in STREAM_TRANSITIONS:
                assert server._transition(1, event) is STREAM_TRANSITIONS[(state, event)]
            else:
                with pytest.raises(CommandError):
                    server._transition(1, event)


def test_data_message_decoding_ignores_non_publishing_streams() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.connection.send_message(
        encode_data("onMetaData", amf0.ECMAArray({"a": 1.0}), message_stream_id=sid)
    )
    _, sevents = roundtrip(client, server)
    assert not [e for e in sevents if isinstance(e, MetadataReceived)]


def test_delete_stream_by_name_as_gstreamer_sends_it() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.publish(sid, "gstpub")
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PublishRequest)]
    server.accept_publish(request)
    roundtrip(client, server)
    client.send_command("deleteStream", 0.0, None, "gstpub")
    _, sevents = roundtrip(client, server)
    assert StreamClosed(stream_id=sid, deleted=True) in sevents
    # An unknown name is ignored; a non-number non-string is a protocol error.
    client.send_command("deleteStream", 0.0, None, "nope")
    assert not [e for e in roundtrip(client, server)[1] if isinstance(e, StreamClosed)]
    client.send_command("deleteStream", 0.0, None, True)
    with pytest.raises(CommandError):
        roundtrip(client, server)


def test_enhanced_rtmp_capabilities_answered_only_to_e_rtmp_clients() -> None:
    client, server = handshaken_pair()
    client.connect("live", "rtmp://h/live")  # our client declares E-RTMP by default
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, ConnectRequest)]
    assert request.command_object["fourCcList"] == ["*"]
    server.accept_connect(request)
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    props = result.command_object
    assert props["videoFourCcInfoMap"] == {"*": float(FourCcInfoMask.CAN_FORWARD)}
    assert int(props["capsEx"]) & CapsExMask.MULTITRACK
    # A legacy client (no E-RTMP keys) gets a legacy answer.
    client, server = handshaken_pair()
    client.connect("live", "rtmp://h/live", properties={k: None for k in ENHANCED_RTMP_KEYS})
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, ConnectRequest)]
    legacy = {k: v for k, v in request.command_object.items() if k not in ENHANCED_RTMP_KEYS}
    server.accept_connect(
        ConnectRequest(
            transaction_id=request.transaction_id,
            app=request.app,
            query="",
            tc_url="",
            object_encoding=0.0,
            command_object=legacy,
        )
    )
    cevents, _ = roundtrip(client, server)
    (result,) = [e for e in cevents if isinstance(e, CommandResult)]
    assert "videoFourCcInfoMap" not in result.command_object


def _publishing_pair() -> tuple[ClientSession, ServerSession, int]:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.publish(sid, "cam")
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PublishRequest)]
    server.accept_publish(request)
    roundtrip(client, server)
    return client, server, sid


def test_amf3_data_message_metadata_is_decoded() -> None:
    from aiortmp.protocol import amf3
    from aiortmp.protocol.messages import Message

    client, server, sid = _publishing_pair()
    # Type 15: a 0x00 format byte, then AMF0 values, the object switched to AMF3.
    payload = (
        b"\x00"
        + amf0.encode("@setDataFrame", "onMetaData")
        + b"\x11"
        + amf3.encode({"width": 640, "height": 360})
    )
    client.connection.send_message(
        Message(
            type_id=MessageType.DATA_AMF3,
            timestamp_ms=0,
            message_stream_id=sid,
            payload=payload,
            chunk_stream_id=5,
        )
    )
    _, sevents = roundtrip(client, server)
    (meta,) = [e for e in sevents if isinstance(e, MetadataReceived)]
    assert meta.metadata == {"width": 640, "height": 360}


@pytest.mark.parametrize(
    "type_id", [MessageType.SHARED_OBJECT_AMF0, MessageType.SHARED_OBJECT_AMF3]
)
def test_shared_object_messages_are_ignored_cleanly(type_id: int) -> None:
    from aiortmp.protocol.messages import Message

    client, server, sid = _publishing_pair()
    # A SharedObject "use" event for "so1" (name, version, persistent, reserved, events).
    body = b"\x00\x03so1" + bytes(4) + bytes(4) + bytes(4) + b"\x01" + bytes(4)
    if type_id == MessageType.SHARED_OBJECT_AMF3:
        body = b"\x00" + body
    client.connection.send_message(
        Message(
            type_id=type_id, timestamp_ms=0, message_stream_id=0, payload=body, chunk_stream_id=3
        )
    )
    client.send_media(sid, MessageType.VIDEO, 0, b"\x17\x01\x00\x00\x00")
    _, sevents = roundtrip(client, server)
    # Nothing surfaces for the shared object; the session carries on with media.
    assert [type(e).__name__ for e in sevents] == ["MediaReceived"]


# -- recorded streams: seek, getStreamLength, the end of a file ---------------------------


def _server_messages(client: ClientSession, server: ServerSession) -> list[object]:
    """What the server queued, as the client's connection layer reassembles it: each
    message (its payload bytes as sent), control messages decoded."""
    client.connection.receive_data(server.data_to_send())
    out: list[object] = []
    while (event := client.connection.next_event()) is not None:
        if isinstance(event, MessageReceived):
            out.append(event.message)
        elif isinstance(event, ControlReceived):
            out.append(event.control)
    return out


def _playing_pair(name: str = "clip.mp4") -> tuple[ClientSession, ServerSession, int]:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.play(sid, name, start_ms=0.0, buffer_ms=3000)
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PlayRequest)]
    server.accept_play(request, recorded=True)
    roundtrip(client, server)
    return client, server, sid


def test_recorded_play_start_sends_stream_is_recorded_and_keeps_the_buffer_length() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    client.play(sid, "clip.flv", start_ms=4000.0, buffer_ms=3000)
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, PlayRequest)]
    assert request.start_ms == 4000.0
    assert server.buffer_length_ms(sid) == 3000 and server.buffer_length_ms(sid + 1) is None
    server.accept_play(request, recorded=True)
    sent = _server_messages(client, server)
    # StreamBegin, Play.Reset, Play.Start, StreamIsRecorded, |RtmpSampleAccess.
    assert sent[0] == StreamBegin(stream_id=sid)
    assert [amf0.decode_all(m.payload)[3]["code"] for m in sent[1:3]] == [  # type: ignore[attr-defined]
        NetStatusCode.PLAY_RESET,
        NetStatusCode.PLAY_START,
    ]
    assert sent[3] == StreamIsRecorded(stream_id=sid)
    assert sent[4].payload == amf0.encode("|RtmpSampleAccess", True, True)  # type: ignore[attr-defined]
    # A later Set Buffer Length (FFmpeg sends one after play) replaces it.
    client.connection.send_control(SetBufferLength(stream_id=sid, buffer_length_ms=500))
    roundtrip(client, server)
    assert server.buffer_length_ms(sid) == 500


def test_seek_is_a_request_and_its_answer_is_byte_exact() -> None:
    client, server, sid = _playing_pair()
    client.seek(sid, 6500.0)
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, SeekRequest)]
    assert request == SeekRequest(stream_id=sid, position_ms=6500.0, transaction_id=0.0)
    server.accept_seek(request, 6000.0)
    eof, notify, begin = _server_messages(client, server)
    assert eof == StreamEOF(stream_id=sid) and begin == StreamBegin(stream_id=sid)
    assert isinstance(notify, Message)
    assert notify.type_id == MessageType.COMMAND_AMF0 and notify.message_stream_id == sid
    assert notify.payload == amf0.encode(
        "onStatus",
        0.0,
        None,
        {
            "level": "status",
            "code": "NetStream.Seek.Notify",
            "description": "Seeking 6000 (stream ID: 1).",
            "details": "clip.mp4",
            "position": 6000.0,
        },
    )
    # Negative offsets are clamped; a non-number is the peer's protocol error.
    client.seek(sid, -5.0)
    _, sevents = roundtrip(client, server)
    assert [e.position_ms for e in sevents if isinstance(e, SeekRequest)] == [0.0]
    client.send_command("seek", 0.0, None, "later", stream_id=sid)
    with pytest.raises(CommandError, match="not a number"):
        roundtrip(client, server)


def test_seek_is_refused_with_an_error_status_and_playing_goes_on() -> None:
    client, server, sid = _playing_pair()
    client.seek(sid, 1e9)
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if isinstance(e, SeekRequest)]
    server.reject_seek(request, "past the end", code=NetStatusCode.SEEK_INVALID_TIME)
    cevents, _ = roundtrip(client, server)
    (status,) = [e for e in cevents if isinstance(e, StatusReceived)]
    assert (status.code, status.level) == ("NetStream.Seek.InvalidTime", "error")
    assert server.stream_state(sid) is NetStreamState.PLAYING


def test_seek_outside_playing_follows_the_table() -> None:
    client, server = connected_pair()
    sid = create_stream(client, server)
    # Right behind play, in the same read: queued for the owner in order.
    client.play(sid, "clip.mp4")
    client.seek(sid, 1000.0)
    _, sevents = roundtrip(client, server)
    assert [type(e).__name__ for e in sevents if isinstance(e, PlayRequest | SeekRequest)] == [
        "PlayRequest",
        "SeekRequest",
    ]
    (seek,) = [e for e in sevents if isinstance(e, SeekRequest)]
    with pytest.raises(LocalProtocolError):
        server.accept_seek(seek, 0.0)  # the play is not accepted yet
    # On a NetStream that plays nothing: a protocol error of the peer.
    other = create_stream(client, server)
    client.seek(other, 0.0)
    with pytest.raises(CommandError, match="seek not allowed"):
        roundtrip(client, server)


def test_play_complete_is_on_play_status_then_stop_then_eof() -> None:
    client, server, sid = _playing_pair("mp4:clip.mp4")
    server.notify_play_complete(sid, "mp4:clip.mp4", duration_ms=6040, bytes_sent=123456)
    complete, stop, eof = _server_messages(client, server)
    assert isinstance(complete, Message) and isinstance(stop, Message)
    assert complete.type_id == MessageType.DATA_AMF0 and complete.message_stream_id == sid
    assert complete.payload == amf0.encode(
        "onPlayStatus",
        {
            "level": "status",
            "code": "NetStream.Play.Complete",
            "description": "Finished playing mp4:clip.mp4.",
            "duration": 6.04,
            "bytes": 123456.0,
        },
    )
    assert stop.payload == amf0.encode(
        "onStatus",
        0.0,
        None,
        {
            "level": "status",
            "code": "NetStream.Play.Stop",
            "description": "Stopped playing mp4:clip.mp4.",
            "details": "mp4:clip.mp4",
        },
    )
    assert eof == StreamEOF(stream_id=sid)
    # The NetStream still plays: a seek starts it again.
    assert server.stream_state(sid) is NetStreamState.PLAYING
    client.seek(sid, 0.0)
    _, sevents = roundtrip(client, server)
    assert [e for e in sevents if isinstance(e, SeekRequest)]


def test_client_pause_and_resume_reach_the_server() -> None:
    client, server, sid = _playing_pair()
    client.pause(sid, True, 2500.0)
    client.pause(sid, False, 2500.0)
    cevents, sevents = roundtrip(client, server)
    assert [e for e in sevents if isinstance(e, PauseRequest)] == [
        PauseRequest(stream_id=sid, paused=True, position_ms=2500.0),
        PauseRequest(stream_id=sid, paused=False, position_ms=2500.0),
    ]
    assert [e.code for e in cevents if isinstance(e, StatusReceived)] == [
        NetStatusCode.PAUSE_NOTIFY,
        NetStatusCode.UNPAUSE_NOTIFY,
    ]


def test_commands_pipelined_behind_a_pending_connect_are_answered_in_order() -> None:
    """FFmpeg and OBS send connect, releaseStream, FCPublish, createStream and publish
    without waiting; the owner may still be deciding connect (an HTTP auth callback)."""
    client, server = handshaken_pair()
    connect_tid = client.connect("live", "rtmp://h/live")
    client.release_stream("cam")
    stream_tid = client.create_stream()
    client.publish(1, "cam")
    _, sevents = roundtrip(client, server)
    # Nothing but the connect request yet: the rest waits for the decision.
    (request,) = [e for e in sevents if not isinstance(e, ControlReceived)]
    assert isinstance(request, ConnectRequest)
    assert server.state is NetConnectionState.CONNECT_PENDING
    server.accept_connect(request)
    (publish,) = [e for e in _drain_all(server) if isinstance(e, PublishRequest)]
    assert publish.stream_id == 1 and publish.name == "cam"
    cevents, _ = roundtrip(client, server)
    results = [e.transaction_id for e in cevents if isinstance(e, CommandResult)]
    assert results[0] == connect_tid and stream_tid in results


def test_pipelined_commands_are_dropped_with_a_rejected_connect() -> None:
    client, server = handshaken_pair()
    client.connect("live", "rtmp://h/live")
    client.create_stream()
    _, sevents = roundtrip(client, server)
    (request,) = [e for e in sevents if not isinstance(e, ControlReceived)]
    assert isinstance(request, ConnectRequest)
    server.reject_connect(request, "no")
    assert _drain_all(server) == []
    cevents, _ = roundtrip(client, server)
    assert [e.success for e in cevents if isinstance(e, CommandResult)] == [False]


def test_too_many_commands_behind_a_pending_connect() -> None:
    client, server = handshaken_pair()
    client.connect("live", "rtmp://h/live")
    for _ in range(MAX_DEFERRED_COMMANDS + 1):
        client.create_stream()
    with pytest.raises(LimitExceededError):
        roundtrip(client, server)


class _Sink:
    def __init__(self) -> None:
        self.got: list[tuple[str, object]] = []

    def ingest(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        self.got.append(("media", (type_id, timestamp_ms, payload)))

    def ingest_metadata(self, metadata: dict[str, object], timestamp_ms: int) -> None:
        self.got.append(("metadata", metadata))

    def ingest_data(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        self.got.append(("data", type_id))


def test_media_sink_gets_a_publishers_messages_in_order_without_events() -> None:
    client, server, sid = _publishing_pair()
    sink = _Sink()
    server.set_media_sink(sid, sink)
    client.send_metadata(sid, {"width": 320.0})
    client.send_media(sid, MessageType.VIDEO, 0, b"\x17\x00\x00\x00\x00")
    client.send_message(
        encode_data("onCuePoint", {"name": "x"}, message_stream_id=sid, timestamp_ms=40)
    )
    client.send_media(sid, MessageType.AUDIO, 40, b"\xaf\x01")
    _, sevents = roundtrip(client, server)
    assert not [e for e in sevents if isinstance(e, MediaReceived | MetadataReceived)]
    assert [kind for kind, _ in sink.got] == ["metadata", "media", "data", "media"]
    assert sink.got[0][1] == {"width": 320.0}
    # Closing the NetStream forgets the sink: media after it are dropped, not delivered.
    client.send_command("closeStream", 0.0, None, stream_id=sid)
    roundtrip(client, server)
    client.send_media(sid, MessageType.AUDIO, 80, b"\xaf\x01")
    roundtrip(client, server)
    assert len(sink.got) == 4


# -- E-RTMP v2 "Reconnect Request" --------------------------------------------------------


def _reconnect_message_bytes(info: bytes, *, fmt: int = 0) -> bytes:
    """A NetConnection onStatus as one chunk on csid 3 (RTMP 1.0 §5.3.1), by hand: fmt 0,
    or fmt 1 (same msid as the previous message on csid 3, as a server sends it)."""
    body = b"\x02\x00\x08onStatus" + b"\x00" + bytes(8) + b"\x05" + info
    assert len(body) <= 4096
    header = bytes([fmt << 6 | 3]) + bytes(3) + len(body).to_bytes(3, "big") + b"\x14"
    return header + (bytes(4) if fmt == 0 else b"") + body


def _amf0_object(*pairs: tuple[str, str]) -> bytes:
    out = b"\x03"
    for key, value in pairs:
        raw_key, raw_value = key.encode(), value.encode()
        out += len(raw_key).to_bytes(2, "big") + raw_key
        out += b"\x02" + len(raw_value).to_bytes(2, "big") + raw_value
    return out + b"\x00\x00\x09"


_RECONNECT_INFO = _amf0_object(
    ("level", "status"),
    ("code", "NetConnection.Connect.ReconnectRequest"),
    ("description", "The streaming server is undergoing updates."),
    ("tcUrl", "rtmp://127.0.0.1:1935/live"),
)


def test_request_reconnect_bytes_are_a_netconnection_onstatus() -> None:
    client, server = connected_pair()
    server.request_reconnect(
        tc_url="rtmp://127.0.0.1:1935/live",
        description="The streaming server is undergoing updates.",
    )
    # Transaction id 0, null command object, level "status", on the NetConnection (msid 0).
    assert server.data_to_send() == _reconnect_message_bytes(_RECONNECT_INFO, fmt=1)


def test_request_reconnect_without_tc_url_omits_it() -> None:
    client, server = connected_pair()
    server.request_reconnect()
    info = _amf0_object(
        ("level", "status"),
        ("code", "NetConnection.Connect.ReconnectRequest"),
        ("description", ""),
    )
    data = server.data_to_send()
    assert data == _reconnect_message_bytes(info, fmt=1)
    client.receive_data(data)
    cevents, _ = roundtrip(client, server)
    # "If not specified, use the tcUrl for the current connection."
    assert [e.tc_url for e in cevents if isinstance(e, ReconnectRequested)] == [
        "rtmp://127.0.0.1/live"
    ]


def test_request_reconnect_before_connect_is_a_local_error() -> None:
    _, server = handshaken_pair()
    with pytest.raises(LocalProtocolError):
        server.request_reconnect()


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_client_turns_the_reconnect_request_into_an_event(mode: str) -> None:
    client, server = connected_pair()
    data = _reconnect_message_bytes(_RECONNECT_INFO)
    if mode == "whole":
        client.receive_data(data)
    elif mode == "bytewise":
        for byte in data:
            client.receive_data(bytes([byte]))
    else:
        # A second, ordinary onStatus on the NetConnection right behind it.
        tail = _reconnect_message_bytes(
            _amf0_object(("level", "status"), ("code", "NetConnection.Connect.Closed"))
        )
        client.receive_data(data + tail)
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    requested = [e for e in events if isinstance(e, ReconnectRequested)]
    assert requested == [
        ReconnectRequested(
            tc_url="rtmp://127.0.0.1:1935/live",
            description="The streaming server is undergoing updates.",
            info=requested[0].info,
        )
    ]
    assert requested[0].info["level"] == "status"
    if mode == "trailing":
        statuses = [e for e in events if isinstance(e, StatusReceived)]
        assert [s.code for s in statuses] == ["NetConnection.Connect.Closed"]


def test_a_reconnect_code_on_a_netstream_is_an_ordinary_status() -> None:
    client, server, sid = _publishing_pair()
    server.send_status(sid, NetStatusCode.CONNECT_RECONNECT_REQUEST, "odd")
    cevents, _ = roundtrip(client, server)
    assert not [e for e in cevents if isinstance(e, ReconnectRequested)]
    assert [e.code for e in cevents if isinstance(e, StatusReceived)] == [
        NetStatusCode.CONNECT_RECONNECT_REQUEST
    ]


def test_caps_ex_reconnect_is_announced_and_read() -> None:
    client, server = connected_pair()
    # Our client's publishers follow ReconnectRequest, so it says so in connect.
    assert CapsExMask.RECONNECT in server.peer_caps_ex
    assert CapsExMask.MULTITRACK in server.peer_caps_ex
    # Absent, or not a usable number: no capability.
    for value in (None, "1", float("nan"), float("inf"), True, -1.0, 2.0):
        client, server = handshaken_pair()
        client.connect("live", "rtmp://h/live", properties={"capsEx": value})
        roundtrip(client, server)
        assert CapsExMask.RECONNECT not in server.peer_caps_ex


@pytest.mark.parametrize(
    ("reference", "resolved"),
    [
        ("", "rtmp://h:1935/live"),
        ("rtmp://foo.mydomain.com:1935/realtimeapp", "rtmp://foo.mydomain.com:1935/realtimeapp"),
        ("rtmps://127.0.0.1/realtimeapp", "rtmps://127.0.0.1/realtimeapp"),
        ("//192.0.2.0/realtimeapp", "rtmp://192.0.2.0/realtimeapp"),
        ("/realtimeapp", "rtmp://h:1935/realtimeapp"),
        ("other", "rtmp://h:1935/other"),
    ],
)
def test_resolve_tc_url_follows_the_spec_examples(reference: str, resolved: str) -> None:
    assert resolve_tc_url("rtmp://h:1935/live", reference) == resolved
