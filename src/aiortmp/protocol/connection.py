"""The RTMP connection: handshake, chunk stream and protocol control, both roles.

This layer turns bytes into messages and messages into bytes (RTMP 1.0 §5). It acts on
protocol control messages itself, as the spec requires of every endpoint:

- Set Chunk Size (§5.4.1) changes the reader's chunk size at the exact byte boundary.
- Abort Message (§5.4.2) discards the partial message.
- Window Acknowledgement Size (§5.4.4): "The receiving peer MUST send an Acknowledgement
  after receiving the indicated number of bytes since the last Acknowledgement".
- Ping Request (§7.1.7 event 6) is answered with a Ping Response carrying the same timestamp.

It is sans-I/O: :meth:`RTMPConnection.receive_data` takes bytes, :meth:`next_event`
returns what happened, :meth:`data_to_send` returns what to write. No sockets, no clock.
"""

from __future__ import annotations

import enum
import logging
from collections import deque

from .chunk import ChunkReader, ChunkWriter
from .control import (
    AbortMessage,
    Acknowledgement,
    ControlMessage,
    PingRequest,
    PingResponse,
    SetChunkSize,
    WindowAcknowledgementSize,
    decode_control,
    encode_control,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .events import ControlReceived, Event, HandshakeComplete, MessageReceived
from .handshake import Handshake, HandshakeRole
from .messages import Message, MessageType, split_aggregate

__all__ = ["ConnectionState", "RTMPConnection", "Role"]

logger = logging.getLogger("aiortmp.protocol")

Role = HandshakeRole

_CONTROL_TYPES = frozenset(
    {
        MessageType.SET_CHUNK_SIZE,
        MessageType.ABORT,
        MessageType.ACKNOWLEDGEMENT,
        MessageType.USER_CONTROL,
        MessageType.WINDOW_ACKNOWLEDGEMENT_SIZE,
        MessageType.SET_PEER_BANDWIDTH,
    }
)


class ConnectionState(enum.Enum):
    """Lifecycle of an :class:`RTMPConnection`."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class RTMPConnection:
    """Sans-I/O RTMP connection (RTMP 1.0 §5): handshake, chunking, protocol control.

    Args:
        role: ``Role.CLIENT`` or ``Role.SERVER``.
        digest_handshake: client only: use the FP9 digest handshake (FFmpeg, OBS and
            librtmp do; some servers require it).
        max_message_size: largest message accepted, in bytes (default 16 MiB).
        max_chunk_streams: most distinct csids the peer may use.
        max_pending_bytes: most bytes held in incomplete messages across all csids.
        epoch_ms: value of the handshake time field.

    Raises on :meth:`receive_data`:
        HandshakeError, ChunkError, MessageError, LimitExceededError: the peer broke the
        protocol or a limit; the connection is CLOSED and must be dropped.
    """

    def __init__(
        self,
        role: Role,
        *,
        digest_handshake: bool = True,
        max_message_size: int = 16 * 1024 * 1024,
        max_chunk_streams: int = 256,
        max_pending_bytes: int = 32 * 1024 * 1024,
        epoch_ms: int = 0,
    ) -> None:
        self.role = role
        self.state = ConnectionState.HANDSHAKE
        self._handshake = Handshake(role, digest=digest_handshake, epoch_ms=epoch_ms)
        self._reader = ChunkReader(
            max_message_size=max_message_size,
            max_chunk_streams=max_chunk_streams,
            max_pending_bytes=max_pending_bytes,
        )
        self._writer = ChunkWriter()
        self._out: list[bytes] = []
        self._events: deque[Event | Message] = deque()
        # Acknowledgement bookkeeping (RTMP 1.0 §5.4.3/§5.4.4).
        self._peer_window_bytes = 0  # the window the peer asked us to acknowledge
        self._last_ack_sent = 0
        self.peer_ack_bytes = 0  # last sequence number the peer acknowledged
        self.bytes_sent = 0

    # -- properties -------------------------------------------------------------------

    @property
    def chunk_size(self) -> int:
        """Our outgoing chunk size in bytes."""
        return self._writer.chunk_size

    @property
    def peer_chunk_size(self) -> int:
        """The peer's chunk size in bytes (what we read with)."""
        return self._reader.chunk_size

    @property
    def bytes_received(self) -> int:
        """Bytes received after the handshake."""
        return self._reader.bytes_received

    # -- input ------------------------------------------------------------------------

    def initiate(self) -> None:
        """Client: start the handshake (queue C0+C1).

        Raises:
            LocalProtocolError: called on a server connection.
        """
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("only a client initiates the handshake")
        self._handshake.initiate()
        self._flush_handshake()

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; parse as many complete messages as possible.

        Raises:
            RemoteProtocolError: any violation; the connection becomes CLOSED.
        """
        if self.state is ConnectionState.CLOSED:
            return
        try:
            if self.state is ConnectionState.HANDSHAKE:
                self._handshake.receive_data(data)
                self._flush_handshake()
                if not self._handshake.complete:
                    return
                self.state = ConnectionState.OPEN
                self._events.append(
                    HandshakeComplete(
                        peer_version=self._handshake.peer_version or 3,
                        digest_scheme=self._handshake.digest_scheme,
                    )
                )
                data = self._handshake.take_unused_data()
                if not data:
                    return
            self._reader.receive_data(data)
            self._parse()
        except RemoteProtocolError:
            self.state = ConnectionState.CLOSED
            raise

    def receive_eof(self) -> None:
        """The peer closed its side; the connection is CLOSED."""
        self.state = ConnectionState.CLOSED

    def next_event(self) -> Event | None:
        """Return the next event, or None when no complete event is buffered."""
        item = self.next_item()
        if type(item) is Message:
            return MessageReceived(message=item)
        return item  # type: ignore[return-value]

    def next_item(self) -> Event | Message | None:
        """The next event, with a complete non-control message as the :class:`Message`
        itself (no :class:`MessageReceived` wrapper): how the session layer reads its
        input, once per relayed message."""
        return self._events.popleft() if self._events else None

    def _flush_handshake(self) -> None:
        out = self._handshake.data_to_send()
        if out:
            self._out.append(out)
            self.bytes_sent += len(out)

    def _parse(self) -> None:
        reader = self._reader
        events = self._events
        while (message := reader.next_message()) is not None:
            type_id = message.type_id
            if type_id in _CONTROL_TYPES:
                self._handle_control(message)
            elif type_id == MessageType.AGGREGATE:
                events.extend(split_aggregate(message))
            else:
                events.append(message)  # wrapped lazily: see next_event / next_item
        window = self._peer_window_bytes
        if window and reader.bytes_received - self._last_ack_sent >= window:
            self._last_ack_sent = reader.bytes_received
            self.send_control(Acknowledgement(sequence_number=reader.bytes_received & 0xFFFFFFFF))

    def _handle_control(self, message: Message) -> None:
        control = decode_control(message.type_id, message.payload)
        if isinstance(control, SetChunkSize):
            self._reader.set_chunk_size(control.chunk_size)
        elif isinstance(control, AbortMessage):
            self._reader.abort(control.chunk_stream_id)
        elif isinstance(control, WindowAcknowledgementSize):
            self._peer_window_bytes = control.window_bytes
        elif isinstance(control, Acknowledgement):
            self.peer_ack_bytes = control.sequence_number
        elif isinstance(control, PingRequest):
            self.send_control(PingResponse(timestamp_ms=control.timestamp_ms))
        self._events.append(ControlReceived(control=control))

    # -- output -----------------------------------------------------------------------

    def _require_open(self) -> None:
        if self.state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"cannot send messages in state {self.state.value}")

    def send_message(self, message: Message) -> None:
        """Queue one message, chunked with header compression (RTMP 1.0 §5.3.1.2).

        Raises:
            LocalProtocolError: the handshake is not complete or the connection is closed.
        """
        self._require_open()
        data = self._writer.write(message)
        self._out.append(data)
        self.bytes_sent += len(data)

    def send_control(self, control: ControlMessage, *, timestamp_ms: int = 0) -> None:
        """Queue a protocol control / user control message (csid 2, msid 0).

        Raises:
            LocalProtocolError: not open, or an invalid chunk size.
        """
        self.send_message(encode_control(control, timestamp_ms=timestamp_ms))
        if isinstance(control, SetChunkSize):
            # The new size applies to the chunks *after* the Set Chunk Size message.
            self._writer.set_chunk_size(control.chunk_size)

    def send_raw(self, data: bytes, *, chunk_stream_ids: tuple[int, ...] = ()) -> None:
        """Queue bytes that are already chunked at :attr:`chunk_size` (shared fan-out bytes).

        Args:
            data: complete chunks, each message starting with a fmt 0 header.
            chunk_stream_ids: csids the bytes used; our writer forgets their header state
                so its next message on them starts with fmt 0 again.
        """
        self._require_open()
        for csid in chunk_stream_ids:
            self._writer.forget(csid)
        self._out.append(data)
        self.bytes_sent += len(data)

    def data_to_send(self) -> bytes:
        """Return (and clear) the bytes to write to the peer, b"" if none."""
        if not self._out:
            return b""
        out = self._out
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def close(self) -> None:
        """Mark the connection CLOSED (our side decided to drop it)."""
        self.state = ConnectionState.CLOSED
