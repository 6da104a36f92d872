"""Command and data messages: NetConnection / NetStream commands and their status objects.

RTMP 1.0 §7.1.1 (command message, types 20/17), §7.1.2 (data message, types 18/15) and
§7.2 (NetConnection and NetStream commands). A command is an AMF-encoded sequence:
``name, transaction id, command object, *optional arguments``.

AMF3 messages (types 17 and 15) start with one format byte (0x00) followed by AMF0 values
that may switch to AMF3 with the avmplus-object marker (AMF0 §3.1, marker 0x11).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import amf0
from .errors import AMFError, CommandError
from .messages import ChunkStreamId, Message, MessageType

__all__ = [
    "Command",
    "DataMessage",
    "NetStatusCode",
    "decode_command",
    "decode_data",
    "encode_command",
    "encode_data",
    "status_object",
]


class NetStatusCode(enum.StrEnum):
    """The ``code`` values of NetStatus info objects (RTMP 1.0 §7.2, Adobe NetStatusEvent)."""

    CONNECT_SUCCESS = "NetConnection.Connect.Success"
    CONNECT_REJECTED = "NetConnection.Connect.Rejected"
    CONNECT_FAILED = "NetConnection.Connect.Failed"
    CONNECT_CLOSED = "NetConnection.Connect.Closed"
    #: E-RTMP v2, "Reconnect Request": the server asks the client to reconnect (level status).
    CONNECT_RECONNECT_REQUEST = "NetConnection.Connect.ReconnectRequest"
    CALL_FAILED = "NetConnection.Call.Failed"
    PUBLISH_START = "NetStream.Publish.Start"
    PUBLISH_BAD_NAME = "NetStream.Publish.BadName"
    PUBLISH_DENIED = "NetStream.Publish.Denied"
    UNPUBLISH_SUCCESS = "NetStream.Unpublish.Success"
    PLAY_START = "NetStream.Play.Start"
    PLAY_RESET = "NetStream.Play.Reset"
    PLAY_STOP = "NetStream.Play.Stop"
    PLAY_FAILED = "NetStream.Play.Failed"
    PLAY_STREAM_NOT_FOUND = "NetStream.Play.StreamNotFound"
    PLAY_PUBLISH_NOTIFY = "NetStream.Play.PublishNotify"
    PLAY_UNPUBLISH_NOTIFY = "NetStream.Play.UnpublishNotify"
    PLAY_COMPLETE = "NetStream.Play.Complete"
    SEEK_NOTIFY = "NetStream.Seek.Notify"
    SEEK_FAILED = "NetStream.Seek.Failed"
    SEEK_INVALID_TIME = "NetStream.Seek.InvalidTime"
    PAUSE_NOTIFY = "NetStream.Pause.Notify"
    UNPAUSE_NOTIFY = "NetStream.Unpause.Notify"
    DATA_START = "NetStream.Data.Start"
    RECORD_START = "NetStream.Record.Start"
    RECORD_STOP = "NetStream.Record.Stop"
    FAILED = "NetStream.Failed"


_ERROR_SUFFIXES = ("Rejected", "Failed", "BadName", "Denied", "StreamNotFound", "InvalidTime")


def status_object(
    code: str, description: str = "", *, level: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Build a NetStatus info object ``{level, code, description, ...}``.

    Args:
        code: the status code, e.g. ``NetStream.Publish.Start``.
        description: human-readable text sent to the peer (never include secrets).
        level: ``"status"``, ``"error"`` or ``"warning"``; derived from the code when omitted.
        **extra: further properties (``details``, ``clientid``, ``objectEncoding``...).

    Returns:
        A dict ready to be AMF-encoded as the info object of ``onStatus``/``_result``/``_error``.
    """
    if level is None:
        level = "error" if code.rsplit(".", 1)[-1] in _ERROR_SUFFIXES else "status"
    info: dict[str, Any] = {"level": level, "code": code, "description": description}
    info.update(extra)
    return info


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    """A decoded command message (RTMP 1.0 §7.1.1).

    Attributes:
        name: the command name (``connect``, ``publish``, ``_result``, ``onStatus``...).
        transaction_id: the transaction id (0 when no response is expected).
        command_object: the command object (a dict) or ``None`` (AMF null).
        arguments: the optional user arguments that follow the command object.
        message_stream_id: msid the command arrived on (0 = NetConnection, ≥1 = NetStream).
        amf3: True if it came as (or is to be sent as) a type-17 AMF3 command message.
    """

    name: str
    transaction_id: float = 0.0
    command_object: Any = None
    arguments: tuple[Any, ...] = ()
    message_stream_id: int = 0
    amf3: bool = False

    def argument(self, index: int, default: Any = None) -> Any:
        """Return optional argument ``index`` (0-based, after the command object) or ``default``."""
        return self.arguments[index] if index < len(self.arguments) else default


@dataclass(frozen=True, kw_only=True, slots=True)
class DataMessage:
    """A decoded data message (RTMP 1.0 §7.1.2), e.g. ``@setDataFrame``/``onMetaData``.

    Attributes:
        name: the handler name (first AMF string).
        values: the remaining AMF values.
        timestamp_ms: the message timestamp in ms.
        message_stream_id: msid the message arrived on.
        amf3: True for a type-15 message.
    """

    name: str
    values: tuple[Any, ...] = ()
    timestamp_ms: int = 0
    message_stream_id: int = 0
    amf3: bool = False


def _decode_values(message: Message, *, max_depth: int) -> list[Any]:
    payload = memoryview(message.payload)
    if message.type_id in (MessageType.COMMAND_AMF3, MessageType.DATA_AMF3):
        # "AMF3 command messages ... the first byte is the format selector (0)". Some
        # encoders omit it; accept both, as FFmpeg and Red5 do.
        if len(payload) and payload[0] == 0x00:
            payload = payload[1:]
    return amf0.decode_all(payload, max_depth=max_depth)


def decode_command(message: Message, *, max_depth: int = 64) -> Command:
    """Decode a type 20 (AMF0) or type 17 (AMF3) command message.

    Args:
        message: the command message.
        max_depth: AMF nesting limit.

    Returns:
        The :class:`Command`.

    Raises:
        CommandError: no name string or no transaction id number.
        AMFError: the AMF body is malformed.
        LimitExceededError: nesting deeper than ``max_depth``.
    """
    values = _decode_values(message, max_depth=max_depth)
    if not values or not isinstance(values[0], str):
        raise CommandError(f"command message without a command name: {values[:1]!r}")
    name = values[0]
    tid_value = values[1] if len(values) > 1 else 0.0
    if isinstance(tid_value, bool) or not isinstance(tid_value, int | float):
        # Some encoders send null for transaction id 0 on notifications; tolerate None.
        if tid_value is not None:
            raise CommandError(f"{name}: transaction id is not a number: {tid_value!r}")
        tid_value = 0.0
    return Command(
        name=name,
        transaction_id=float(tid_value),
        command_object=values[2] if len(values) > 2 else None,
        arguments=tuple(values[3:]),
        message_stream_id=message.message_stream_id,
        amf3=message.type_id == MessageType.COMMAND_AMF3,
    )


def encode_command(
    command: Command, *, timestamp_ms: int = 0, chunk_stream_id: int | None = None
) -> Message:
    """Encode a command as a type 20 message (type 17 with a 0x00 prefix if ``command.amf3``).

    Args:
        command: the command to send.
        timestamp_ms: message timestamp in ms.
        chunk_stream_id: csid to send on; ``ChunkStreamId.COMMAND`` (3) by default.

    Returns:
        The :class:`~aiortmp.protocol.messages.Message`.

    Raises:
        AMFEncodeError: an argument has no AMF0 representation.
    """
    body = amf0.encode(
        command.name, command.transaction_id, command.command_object, *command.arguments
    )
    type_id = MessageType.COMMAND_AMF0
    if command.amf3:
        body = b"\x00" + body
        type_id = MessageType.COMMAND_AMF3
    return Message(
        type_id=type_id,
        timestamp_ms=timestamp_ms,
        message_stream_id=command.message_stream_id,
        payload=body,
        chunk_stream_id=ChunkStreamId.COMMAND if chunk_stream_id is None else chunk_stream_id,
    )


def decode_data(message: Message, *, max_depth: int = 64) -> DataMessage:
    """Decode a type 18 (AMF0) or type 15 (AMF3) data message.

    Raises:
        AMFError: malformed AMF, or the first value is not a string handler name.
        LimitExceededError: nesting deeper than ``max_depth``.
    """
    values = _decode_values(message, max_depth=max_depth)
    if not values or not isinstance(values[0], str):
        raise AMFError("data message does not start with a handler name string")
    return DataMessage(
        name=values[0],
        values=tuple(values[1:]),
        timestamp_ms=message.timestamp_ms,
        message_stream_id=message.message_stream_id,
        amf3=message.type_id == MessageType.DATA_AMF3,
    )


def encode_data(
    name: str,
    *values: Any,
    message_stream_id: int,
    timestamp_ms: int = 0,
    chunk_stream_id: int = ChunkStreamId.DATA,
) -> Message:
    """Encode a type 18 AMF0 data message ``name, *values`` (RTMP 1.0 §7.1.2).

    Raises:
        AMFEncodeError: a value has no AMF0 representation.
    """
    return Message(
        type_id=MessageType.DATA_AMF0,
        timestamp_ms=timestamp_ms,
        message_stream_id=message_stream_id,
        payload=amf0.encode(name, *values),
        chunk_stream_id=chunk_stream_id,
    )


def metadata_from_data(message: DataMessage) -> Mapping[str, Any] | None:
    """Return the metadata dict of ``onMetaData`` / ``@setDataFrame onMetaData``, else None."""
    values = message.values
    if message.name == "@setDataFrame":
        if not values or values[0] != "onMetaData":
            return None
        values = values[1:]
    elif message.name != "onMetaData":
        return None
    if values and isinstance(values[0], Mapping):
        return values[0]
    return {}
