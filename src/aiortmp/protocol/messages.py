"""RTMP message types and the message container.

RTMP 1.0 §5.4 (protocol control messages 1, 2, 3, 5, 6), §6.2 (user control, 4) and
§7.1 (command 20/17, data 18/15, shared object 19/16, audio 8, video 9, aggregate 22).
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from .errors import MessageError

__all__ = ["ChunkStreamId", "Message", "MessageType", "split_aggregate"]


class MessageType(enum.IntEnum):
    """RTMP message type ids (RTMP 1.0 §5.4, §6.2, §7.1)."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACKNOWLEDGEMENT_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class ChunkStreamId(enum.IntEnum):
    """The chunk stream ids aiortmp sends on, following FFmpeg/librtmp's layout.

    csid 2 is reserved for protocol control messages (RTMP 1.0 §5.4: "Protocol control
    messages MUST have message stream ID 0 and be sent in chunk stream ID 2").
    """

    CONTROL = 2
    COMMAND = 3
    AUDIO = 4
    DATA = 5
    VIDEO = 6


class Message(NamedTuple):
    """One complete RTMP message, reassembled from (or to be split into) chunks.

    An immutable value, like the events; a named tuple rather than a frozen dataclass
    because one is made per relayed message (it costs a third as much to build). Build it
    with keywords.

    Attributes:
        type_id: the message type id (a :class:`MessageType` value, or any 0–255 for
            unknown types).
        timestamp_ms: absolute timestamp in milliseconds, 32-bit wrapping (RTMP 1.0 §5.3.1.3).
        message_stream_id: the msid (0 for NetConnection-level and control messages).
        payload: the message body.
        chunk_stream_id: the csid it arrived on / is sent on (2–65599).
    """

    type_id: int
    timestamp_ms: int
    message_stream_id: int
    payload: bytes
    chunk_stream_id: int = ChunkStreamId.COMMAND


_SUB_HEADER = struct.Struct(">B3s3sB3s")


def split_aggregate(message: Message) -> list[Message]:
    """Split an aggregate message (type 22) into its sub-messages.

    RTMP 1.0 §7.1.6: the body is a sequence of FLV-tag-shaped sub-messages (header of
    11 bytes, body, 4-byte back pointer). "The message stream ID of the aggregate message
    overrides the message stream IDs of the sub-messages inside the aggregate. The
    difference between the timestamps of the aggregate message and the first
    sub-message is the offset used to renormalize the timestamps of the sub-messages."

    Args:
        message: a message with ``type_id == MessageType.AGGREGATE``.

    Returns:
        The sub-messages, timestamps corrected (ms, 32-bit wrapping), on the aggregate's
        msid and csid.

    Raises:
        MessageError: a sub-message header or size runs past the end of the body.
    """
    body = message.payload
    end = len(body)
    pos = 0
    out: list[Message] = []
    offset: int | None = None
    while pos < end:
        if end - pos < 11:
            raise MessageError(f"aggregate: truncated sub-message header at byte {pos}")
        type_id, size_b, ts_b, ts_ext, _ = _SUB_HEADER.unpack_from(body, pos)
        size = int.from_bytes(size_b, "big")
        ts = int.from_bytes(ts_b, "big") | (ts_ext << 24)
        start = pos + 11
        if start + size > end:
            raise MessageError(
                f"aggregate: sub-message of {size} bytes at byte {pos} runs past the end"
            )
        if offset is None:
            offset = message.timestamp_ms - ts
        out.append(
            Message(
                type_id=type_id,
                timestamp_ms=(ts + offset) & 0xFFFFFFFF,
                message_stream_id=message.message_stream_id,
                payload=bytes(body[start : start + size]),
                chunk_stream_id=message.chunk_stream_id,
            )
        )
        # The 4-byte back pointer is optional at the very end (some encoders drop it).
        pos = min(start + size + 4, end)
    return out
