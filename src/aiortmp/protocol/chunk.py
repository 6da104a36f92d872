"""The RTMP chunk stream: messages split into chunks and reassembled (RTMP 1.0 §5.3).

HOT PATH. Every media message a server relays passes through :meth:`ChunkReader.next_message`
once and through :func:`serialize_message` once (the bytes are then shared by every player), so
both do as little per chunk as possible: the reader parses a ``bytearray`` in place with
``struct.unpack_from`` and an offset (compacting the buffer now and then in
:meth:`ChunkReader.receive_data`, never per chunk), copies a single-chunk message's payload once
(a multi-chunk one once per chunk plus one join), and builds no objects for headers; the
serializer joins memoryview slices of the payload.

Decisions on points the spec leaves open, with what other implementations do:

- **A fmt 3 chunk that starts a new message** repeats the previous timestamp delta of its chunk
  stream. After a fmt 0 chunk that delta is the fmt 0 *timestamp*: RTMP 1.0 §5.3.1.2.4 says "If a
  Type 3 chunk follows a Type 0 chunk, then the timestamp delta for this Type 3 chunk is the same as
  the timestamp of the Type 0 chunk". FFmpeg (``rtmppkt.c``: ``ts_field`` is kept from the fmt 0
  header and added to the previous timestamp), librtmp (``RTMP_ReadPacket`` adds the stored header
  value to ``m_channelTimestamp``) and SRS (``read_message_header``: "timestamp=26+26=52" for the
  ``0xC4`` FMLE sends after a fmt 0 audio chunk) all read it that way. nginx-rtmp does not
  (``ngx_rtmp_recv`` sets ``st->dtime = 0`` on fmt 0, so it reads a delta of 0), so
  :class:`ChunkWriter` never sends a new message as fmt 3 straight after a fmt 0 chunk: it sends a
  fmt 2 chunk first, which every reader interprets alike.
- **Extended timestamp on fmt 3 chunks.** §5.3.1.3: "This field is present in Type 3 chunks when
  the most recent Type 0, 1, or 2 chunk for the same chunk stream ID indicated the presence of an
  extended timestamp field." FFmpeg and Flash send it; some encoders (old librtmp) do not. Like SRS,
  the reader peeks at the 4 bytes and consumes them only if they equal the stored extended field
  (what FFmpeg repeats) or the message's absolute timestamp (what SRS compares against; the same
  value after a fmt 0 chunk). With fewer than 4 bytes buffered it waits only while the bytes it has
  still match. The writer always sends the field on every chunk.
- **A first chunk with fmt 1 on chunk stream 2** is accepted as if the chunk stream had started at
  timestamp 0 on message stream 0: librtmp's ``RTMP_SendPacket`` sends its first Ping response or
  Acknowledgement with a fmt 1 header on a fresh csid 2 (SRS issue #98 accepts exactly this), and
  control messages are on message stream 0 by §5.4. Any other first chunk that is not fmt 0 is a
  :class:`~aiortmp.protocol.errors.ChunkError` (§5.3.1.2.1: Type 0 "MUST be used at the start of a
  chunk stream").
- **A fmt 0, 1 or 2 chunk while a message on that chunk stream is incomplete** is a
  :class:`~aiortmp.protocol.errors.ChunkError`: its header would redefine a message whose length
  and stream are already fixed. SRS rejects fmt 0 and a changed length there and FFmpeg a changed
  length; both let a fmt 1/2 chunk that keeps the length continue the message. This reader is
  stricter: §5.3.1.2.4 has continuations use Type 3, and no encoder is known to do otherwise.
- Timestamps are 32-bit and wrap (§4: "Because timestamps are generally only 32 bits long, they
  will roll over after fewer than 50 days"); deltas are added modulo 2**32.
"""

from __future__ import annotations

import struct
from typing import Final

from .errors import ChunkError, LimitExceededError, LocalProtocolError
from .messages import Message

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "MAX_CHUNK_STREAM_ID",
    "MAX_MESSAGE_LENGTH",
    "MIN_CHUNK_STREAM_ID",
    "ChunkReader",
    "ChunkWriter",
    "serialize_message",
]

DEFAULT_CHUNK_SIZE: Final = 128
"""The chunk size both directions start with (RTMP 1.0 §5.4.1), in bytes."""

MAX_CHUNK_SIZE: Final = 0x7FFFFFFF
"""The largest Set Chunk Size value (RTMP 1.0 §5.4.1: "Valid sizes are 1 to 2147483647")."""

MAX_MESSAGE_LENGTH: Final = 0xFFFFFF
"""The largest message length a 3-byte message length field can carry, in bytes."""

MIN_CHUNK_STREAM_ID: Final = 2
"""csid 0 and 1 are the markers of the 2- and 3-byte basic headers (RTMP 1.0 §5.3.1.1)."""

MAX_CHUNK_STREAM_ID: Final = 65599
"""The largest csid the 3-byte basic header can carry (RTMP 1.0 §5.3.1.1)."""

_EXTENDED: Final = 0xFFFFFF  # timestamp field value announcing an Extended Timestamp
_U32: Final = 0xFFFFFFFF

_unpack_u32be = struct.Struct(">I").unpack_from
_unpack_2u32be = struct.Struct(">II").unpack_from
_unpack_u32le = struct.Struct("<I").unpack_from
_pack_u32be = struct.Struct(">I").pack


class _InStream:
    """What the reader remembers about one incoming chunk stream."""

    __slots__ = (
        "delta",
        "ext",
        "ext_field",
        "length",
        "msid",
        "parts",
        "received",
        "timestamp",
        "type_id",
    )

    def __init__(self) -> None:
        self.timestamp = 0  # absolute timestamp of the current (or last) message
        self.delta = 0  # the delta a fmt 3 chunk starting a new message adds
        self.length = 0
        self.type_id = 0
        self.msid = 0
        self.ext = False  # the last fmt 0/1/2 header had an Extended Timestamp
        self.ext_field = 0  # ...and this was its value (timestamp or delta)
        self.parts: list[bytes] | None = None  # data of the incomplete message, if any
        self.received = 0  # bytes of the incomplete message received so far


class ChunkReader:
    """Reassembles RTMP messages from the peer's chunk stream (RTMP 1.0 §5.3).

    Sans-I/O: feed bytes with :meth:`receive_data`, then call :meth:`next_message` until it
    returns ``None``. Parsing is lazy: :meth:`next_message` reads only as far as needed for one
    complete message, so the caller can apply a Set Chunk Size (:meth:`set_chunk_size`) or an
    Abort Message (:meth:`abort`) before the next byte is parsed, as RTMP 1.0 §5.4 requires
    ("Protocol control messages take effect as soon as they are received").

    Every limit is checked when a chunk header is parsed, before any memory is set aside for
    the message it announces.

    Args:
        max_message_size: largest message length accepted, in bytes.
        max_chunk_streams: most distinct chunk stream ids the peer may use.
        max_pending_bytes: largest sum, in bytes, of the declared lengths of all messages
            that are started but not yet complete.
    """

    __slots__ = (
        "_buf",
        "_chunk_size",
        "_max_chunk_streams",
        "_max_message_size",
        "_max_pending_bytes",
        "_off",
        "_pending",
        "_received",
        "_streams",
    )

    def __init__(
        self,
        *,
        max_message_size: int = 16 * 1024 * 1024,
        max_chunk_streams: int = 256,
        max_pending_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self._buf = bytearray()
        self._off = 0  # parse position in _buf; bytes before it are consumed
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _InStream] = {}
        self._pending = 0  # sum of declared lengths of incomplete messages
        self._received = 0
        self._max_message_size = max_message_size
        self._max_chunk_streams = max_chunk_streams
        self._max_pending_bytes = max_pending_bytes

    @property
    def chunk_size(self) -> int:
        """The peer's current maximum chunk size, in bytes (RTMP 1.0 §5.4.1)."""
        return self._chunk_size

    def set_chunk_size(self, size: int) -> None:
        """Apply the peer's Set Chunk Size to every chunk parsed from now on (RTMP 1.0 §5.4.1).

        Args:
            size: the new chunk size, in bytes.

        Raises:
            ChunkError: ``size`` is 0 or has the high bit set (§5.4.1: "This bit MUST be zero";
                "Valid sizes are 1 to 2147483647").
        """
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ChunkError(f"invalid chunk size {size} (RTMP 1.0 §5.4.1: 1..2147483647)")
        self._chunk_size = size

    @property
    def bytes_received(self) -> int:
        """All bytes fed to :meth:`receive_data`, for Acknowledgements (RTMP 1.0 §5.4.3)."""
        return self._received

    @property
    def buffered_bytes(self) -> int:
        """Bytes fed but not yet parsed into chunks."""
        return len(self._buf) - self._off

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer. Nothing is parsed until :meth:`next_message`.

        Args:
            data: the bytes, in order; may split chunks anywhere.
        """
        buf = self._buf
        off = self._off
        if off:
            if off == len(buf):
                buf.clear()
                self._off = 0
            elif off >= 65536 and off * 2 >= len(buf):
                # Compact occasionally rather than per chunk: one memmove of the unparsed tail.
                del buf[:off]
                self._off = 0
        before = len(buf)
        buf += data
        self._received += len(buf) - before

    def abort(self, chunk_stream_id: int) -> None:
        """Discard the partially received message on a chunk stream (RTMP 1.0 §5.4.2).

        The chunk stream keeps its last header, so a later fmt 1/2/3 chunk on it is still
        valid. Aborting a chunk stream with no incomplete message does nothing.

        Args:
            chunk_stream_id: the csid carried by the peer's Abort Message.
        """
        st = self._streams.get(chunk_stream_id)
        if st is not None and st.parts is not None:
            self._pending -= st.length
            st.parts = None
            st.received = 0

    def next_message(self) -> Message | None:
        """Parse chunks until one message is complete.

        Returns:
            The next complete message, or ``None`` if more bytes are needed. Chunks already
            parsed are kept, so calling again after :meth:`receive_data` continues.

        Raises:
            ChunkError: a chunk header breaks RTMP 1.0 §5.3 (a chunk stream starting with
                fmt 2/3, a header redefining an incomplete message).
            LimitExceededError: a message longer than ``max_message_size``, more than
                ``max_chunk_streams`` chunk streams, or more than ``max_pending_bytes`` in
                incomplete messages.
        """
        buf = self._buf
        if self._off >= len(buf):
            return None  # everything parsed (the common end of a read): no view needed
        mv = memoryview(buf)
        try:
            return self._parse(buf, mv)
        finally:
            # Release the export so receive_data can resize the bytearray.
            mv.release()

    def _parse(self, buf: bytearray, mv: memoryview) -> Message | None:
        end = len(buf)
        streams = self._streams
        while True:
            off = self._off
            if off >= end:
                return None
            b0 = buf[off]
            fmt = b0 >> 6
            csid = b0 & 0x3F
            p = off + 1
            # RTMP 1.0 §5.3.1.1: csid 0 and 1 select the 2- and 3-byte forms.
            if csid == 0:
                if p >= end:
                    return None
                csid = 64 + buf[p]
                p += 1
            elif csid == 1:
                if p + 2 > end:
                    return None
                csid = 64 + buf[p] + (buf[p + 1] << 8)
                p += 2
            st = streams.get(csid)

            if fmt == 3:
                if st is None:
                    raise ChunkError(
                        f"chunk stream {csid} starts with a fmt 3 chunk "
                        "(RTMP 1.0 §5.3.1.2.1: Type 0 MUST be used at the start of a chunk stream)"
                    )
                parts = st.parts
                if parts is None:
                    # A new message with every header field repeated, delta included
                    # (RTMP 1.0 §5.3.1.2.4, Example 1 in §5.3.2.1).
                    length = st.length
                    timestamp = (st.timestamp + st.delta) & _U32
                else:
                    length = st.length - st.received
                    timestamp = st.timestamp
                if st.ext:
                    have = end - p
                    field = st.ext_field
                    if have >= 4:
                        value = _unpack_u32be(buf, p)[0]
                        if value == field or value == timestamp:
                            p += 4
                    elif _may_be_extended(bytes(mv[p:end]), field, timestamp):
                        return None
                n = length if length < self._chunk_size else self._chunk_size
                if parts is None and n < length:
                    self._reserve(length, csid)
                data_end = p + n
                if data_end > end:
                    return None
                self._off = data_end
                if parts is None:
                    st.timestamp = timestamp
                    if n == length:
                        return Message(
                            type_id=st.type_id,
                            timestamp_ms=timestamp,
                            message_stream_id=st.msid,
                            payload=bytes(mv[p:data_end]),
                            chunk_stream_id=csid,
                        )
                    self._pending += length
                    st.parts = [bytes(mv[p:data_end])]
                    st.received = n
                    continue
                parts.append(bytes(mv[p:data_end]))
                if n < length:
                    st.received += n
                    continue
                st.parts = None
                st.received = 0
                self._pending -= st.length
                return Message(
                    type_id=st.type_id,
                    timestamp_ms=timestamp,
                    message_stream_id=st.msid,
                    payload=b"".join(parts),
                    chunk_stream_id=csid,
                )

            # fmt 0, 1 or 2: a new message with (part of) its header spelled out.
            if st is None:
                if fmt == 2 or (fmt == 1 and csid != 2):
                    raise ChunkError(
                        f"chunk stream {csid} starts with a fmt {fmt} chunk "
                        "(RTMP 1.0 §5.3.1.2.1: Type 0 MUST be used at the start of a chunk stream)"
                    )
                if len(streams) >= self._max_chunk_streams:
                    raise LimitExceededError(
                        f"peer opened more than {self._max_chunk_streams} chunk streams"
                    )
                prev_timestamp = 0
                msid = 0
                length = 0
                type_id = 0
            else:
                if st.parts is not None:
                    raise ChunkError(
                        f"fmt {fmt} chunk on chunk stream {csid} while its "
                        f"{st.length}-byte message is incomplete ({st.received} bytes received)"
                    )
                prev_timestamp = st.timestamp
                msid = st.msid
                length = st.length
                type_id = st.type_id
            if fmt == 0:
                if p + 11 > end:
                    return None
                # One read covers the basic header's last byte + timestamp, the next
                # covers message length + type id (all big-endian, §5.3.1.2.1).
                a, b = _unpack_2u32be(buf, p - 1)
                field = a & 0xFFFFFF
                length = b >> 8
                type_id = b & 0xFF
                msid = _unpack_u32le(buf, p + 7)[0]  # §5.3.1.2.5: "little-endian format"
                p += 11
            elif fmt == 1:
                if p + 7 > end:
                    return None
                a, b = _unpack_2u32be(buf, p - 1)
                field = a & 0xFFFFFF
                length = b >> 8
                type_id = b & 0xFF
                p += 7
            else:
                if p + 3 > end:
                    return None
                field = _unpack_u32be(buf, p - 1)[0] & 0xFFFFFF
                p += 3
            if length > self._max_message_size:
                raise LimitExceededError(
                    f"message of {length} bytes on chunk stream {csid} exceeds "
                    f"max_message_size={self._max_message_size}"
                )
            ext = field == _EXTENDED
            if ext:
                if p + 4 > end:
                    return None
                field = _unpack_u32be(buf, p)[0]
                p += 4
            if fmt == 0:
                timestamp = field
            else:
                timestamp = (prev_timestamp + field) & _U32
            n = length if length < self._chunk_size else self._chunk_size
            if n < length:
                self._reserve(length, csid)
            data_end = p + n
            if data_end > end:
                return None

            self._off = data_end
            if st is None:
                st = _InStream()
                streams[csid] = st
            st.timestamp = timestamp
            # §5.3.1.2.4: after a Type 0 chunk, "the timestamp delta for this Type 3 chunk
            # is the same as the timestamp of the Type 0 chunk".
            st.delta = field
            st.length = length
            st.type_id = type_id
            st.msid = msid
            st.ext = ext
            st.ext_field = field
            if n == length:
                return Message(
                    type_id=type_id,
                    timestamp_ms=timestamp,
                    message_stream_id=msid,
                    payload=bytes(mv[p:data_end]),
                    chunk_stream_id=csid,
                )
            self._pending += length
            st.parts = [bytes(mv[p:data_end])]
            st.received = n

    def _reserve(self, length: int, csid: int) -> None:
        if self._pending + length > self._max_pending_bytes:
            raise LimitExceededError(
                f"message of {length} bytes on chunk stream {csid} would bring incomplete "
                f"messages to {self._pending + length} bytes "
                f"(max_pending_bytes={self._max_pending_bytes})"
            )


def _may_be_extended(head: bytes, field: int, timestamp: int) -> bool:
    """Whether ``head`` (under 4 bytes) may be the start of a repeated Extended Timestamp."""
    n = len(head)
    return _pack_u32be(field)[:n] == head or _pack_u32be(timestamp)[:n] == head


def _basic_header(fmt: int, csid: int) -> bytes:
    """The smallest basic header for ``csid`` (RTMP 1.0 §5.3.1.1)."""
    if csid < 64:
        return bytes((fmt << 6 | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    csid -= 64
    return bytes((fmt << 6 | 1, csid & 0xFF, csid >> 8))


def _check_message(message: Message) -> None:
    csid = message.chunk_stream_id
    if not MIN_CHUNK_STREAM_ID <= csid <= MAX_CHUNK_STREAM_ID:
        raise LocalProtocolError(f"chunk stream id {csid} is outside 2..65599 (RTMP 1.0 §5.3.1.1)")
    if not 0 <= message.type_id <= 0xFF:
        raise LocalProtocolError(f"message type id {message.type_id} does not fit in a byte")
    if not 0 <= message.message_stream_id <= _U32:
        raise LocalProtocolError(f"message stream id {message.message_stream_id} is not 32-bit")
    if not 0 <= message.timestamp_ms <= _U32:
        raise LocalProtocolError(f"timestamp {message.timestamp_ms} ms is not 32-bit")
    if len(message.payload) > MAX_MESSAGE_LENGTH:
        raise LocalProtocolError(
            f"payload of {len(message.payload)} bytes exceeds {MAX_MESSAGE_LENGTH} "
            "(RTMP 1.0 §5.3.1.2.5: 3-byte message length)"
        )


def _chunked(header: bytes, continuation: bytes, payload: bytes, chunk_size: int) -> bytes:
    """``header``, then ``payload`` cut every ``chunk_size`` bytes by ``continuation``."""
    length = len(payload)
    if length <= chunk_size:
        return header + payload
    view = memoryview(payload)
    chunks: list[bytes | memoryview] = [
        view[start : start + chunk_size] for start in range(0, length, chunk_size)
    ]
    chunks[0] = header + chunks[0]
    return continuation.join(chunks)


def _check_chunk_size(size: int) -> None:
    if not 1 <= size <= MAX_CHUNK_SIZE:
        raise LocalProtocolError(f"invalid chunk size {size} (RTMP 1.0 §5.4.1: 1..2147483647)")


def serialize_message(message: Message, chunk_size: int) -> bytes:
    """Serialize one message as a fmt 0 chunk and fmt 3 continuations, without state.

    Meant for relaying: serialize a media message once and write the same bytes to every
    player whose outgoing chunk size is ``chunk_size``; then call
    :meth:`ChunkWriter.forget` on each player's writer for that chunk stream, since the
    peer's header state for it is now this message's.

    Args:
        message: the message; sent on ``message.chunk_stream_id``.
        chunk_size: the chunk size announced to the peer, in bytes.

    Returns:
        The chunks, with the Extended Timestamp on every chunk when the timestamp is
        0xFFFFFF or more (RTMP 1.0 §5.3.1.3).

    Raises:
        LocalProtocolError: ``chunk_size`` or a field of ``message`` is out of range.
    """
    _check_chunk_size(chunk_size)
    _check_message(message)
    payload = message.payload
    timestamp = message.timestamp_ms
    csid = message.chunk_stream_id
    fields = (len(payload) << 8) | message.type_id
    msid = message.message_stream_id.to_bytes(4, "little")
    if timestamp >= _EXTENDED:
        ext = _pack_u32be(timestamp)
        header = (
            _basic_header(0, csid) + ((_EXTENDED << 32) | fields).to_bytes(7, "big") + msid + ext
        )
        continuation = _basic_header(3, csid) + ext
    else:
        header = _basic_header(0, csid) + ((timestamp << 32) | fields).to_bytes(7, "big") + msid
        continuation = _basic_header(3, csid)
    return _chunked(header, continuation, payload, chunk_size)


class _OutStream:
    """What the writer remembers about one outgoing chunk stream."""

    __slots__ = ("delta", "length", "msid", "timestamp", "type_id")

    def __init__(
        self, msid: int, type_id: int, length: int, timestamp: int, delta: int | None
    ) -> None:
        self.msid = msid
        self.type_id = type_id
        self.length = length
        self.timestamp = timestamp
        self.delta = delta  # None after fmt 0: readers disagree on what fmt 3 would repeat


class ChunkWriter:
    """Splits outgoing messages into chunks with header compression (RTMP 1.0 §5.3.1.2).

    Per chunk stream: fmt 0 on its first message, when the message stream id changes or the
    timestamp goes backwards (§5.3.1.2.1: "whenever the stream timestamp goes backward");
    fmt 1 for the same message stream; fmt 2 when type and length repeat too; fmt 3 when the
    timestamp delta repeats as well. A new message is never sent as fmt 3 straight after a
    fmt 0 chunk, because nginx-rtmp reads that delta as 0 where the spec, FFmpeg, librtmp and
    SRS read the fmt 0 timestamp (see the module docstring).

    Args:
        chunk_size: the initial outgoing chunk size, in bytes. Announce any value other than
            128 to the peer with a Set Chunk Size message first (RTMP 1.0 §5.4.1).

    Raises:
        LocalProtocolError: ``chunk_size`` is outside 1..0x7FFFFFFF.
    """

    __slots__ = ("_chunk_size", "_streams")

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        _check_chunk_size(chunk_size)
        self._chunk_size = chunk_size
        self._streams: dict[int, _OutStream] = {}

    @property
    def chunk_size(self) -> int:
        """The outgoing maximum chunk size, in bytes (RTMP 1.0 §5.4.1)."""
        return self._chunk_size

    def set_chunk_size(self, size: int) -> None:
        """Use a new outgoing chunk size for every message written from now on.

        Send the Set Chunk Size message (itself chunked at the old size) before calling this.

        Args:
            size: the new chunk size, in bytes.

        Raises:
            LocalProtocolError: ``size`` is outside 1..0x7FFFFFFF (RTMP 1.0 §5.4.1).
        """
        _check_chunk_size(size)
        self._chunk_size = size

    def forget(self, chunk_stream_id: int) -> None:
        """Make the next message on a chunk stream start with a fmt 0 chunk.

        Call it after writing bytes that did not come from this writer (for example from
        :func:`serialize_message`) on that chunk stream.

        Args:
            chunk_stream_id: the csid.
        """
        self._streams.pop(chunk_stream_id, None)

    def write(self, message: Message) -> bytes:
        """Serialize one message as chunks, compressing headers against the previous one.

        Args:
            message: the message; sent on ``message.chunk_stream_id``.

        Returns:
            The chunks to send, with the Extended Timestamp on every chunk (fmt 3
            continuations included) when the timestamp or delta is 0xFFFFFF or more
            (RTMP 1.0 §5.3.1.3).

        Raises:
            LocalProtocolError: a field of ``message`` is out of range.
        """
        _check_message(message)
        payload = message.payload
        length = len(payload)
        csid = message.chunk_stream_id
        type_id = message.type_id
        msid = message.message_stream_id
        timestamp = message.timestamp_ms
        st = self._streams.get(csid)
        if st is None or st.msid != msid or timestamp < st.timestamp:
            fmt = 0
            field = timestamp
            self._streams[csid] = _OutStream(msid, type_id, length, timestamp, None)
        else:
            field = timestamp - st.timestamp
            if st.type_id != type_id or st.length != length:
                fmt = 1
            elif st.delta != field:
                fmt = 2
            else:
                fmt = 3
            st.type_id = type_id
            st.length = length
            st.timestamp = timestamp
            st.delta = field
        ext = _pack_u32be(field) if field >= _EXTENDED else b""
        ts_field = _EXTENDED if ext else field
        if fmt == 0:
            message_header = ((ts_field << 32) | (length << 8) | type_id).to_bytes(
                7, "big"
            ) + msid.to_bytes(4, "little")
        elif fmt == 1:
            message_header = ((ts_field << 32) | (length << 8) | type_id).to_bytes(7, "big")
        elif fmt == 2:
            message_header = ts_field.to_bytes(3, "big")
        else:
            message_header = b""
        header = _basic_header(fmt, csid) + message_header + ext
        continuation = _basic_header(3, csid) + ext
        return _chunked(header, continuation, payload, self._chunk_size)
