"""An RTMP player: one playing NetStream of a connection, as an inline output.

The :class:`~aiortmp.outputs.player.Player` does the delivery (shared bytes, slow-player
policy); :class:`RTMPPlay` is its host: it tells the client when the stream starts or
stops (RTMP 1.0 §7.1.7 StreamBegin/StreamEOF, ``NetStream.Play.PublishNotify`` /
``UnpublishNotify``) through the connection's sans-I/O session.

The wire format is RTMP chunks for this NetStream's msid at the chunk size this
connection announced (RTMP 1.0 §5.4.1), so connections that announced different sizes
never share bytes cut at the wrong size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from aiortmp.hub.packet import rtmp_wire
from aiortmp.hub.stream import Stream
from aiortmp.protocol.session import ServerSession

from .player import Player, WriteTransport

if TYPE_CHECKING:
    from aiortmp.server.config import PlayerPolicy

__all__ = ["PlayingConnection", "RTMPPlay"]


class PlayingConnection(Protocol):
    """What a play needs of its connection."""

    session: ServerSession
    closed: bool

    @property
    def transport(self) -> WriteTransport:
        """The connection's transport."""

    def flush(self) -> None:
        """Write what the session wants sent."""

    def player_dropped(self, play: RTMPPlay, reason: str) -> None:
        """The player could not keep up: log, count, close the connection."""


class RTMPPlay:
    """The host of one RTMP player.

    Args:
        connection: the connection that plays.
        message_stream_id: the NetStream's msid.
        stream: the stream played.
        policy: the slow-player policy.
        clock: monotonic seconds (``loop.time``).
    """

    __slots__ = ("connection", "message_stream_id", "transport", "player")

    def __init__(
        self,
        connection: PlayingConnection,
        message_stream_id: int,
        stream: Stream,
        policy: PlayerPolicy,
        clock: Callable[[], float],
    ) -> None:
        self.connection = connection
        self.message_stream_id = message_stream_id
        self.transport = connection.transport
        session = connection.session
        self.player = Player(
            self,
            stream,
            policy,
            clock,
            rtmp_wire(message_stream_id, session.chunk_size),
            counter=session.connection,
        )

    @property
    def stream(self) -> Stream:
        """The stream played."""
        return self.player.stream

    def notify_publish(self, player: Player) -> None:
        """StreamBegin + NetStream.Play.PublishNotify to a player that waited."""
        connection = self.connection
        if connection.closed or not connection.session.is_open:
            return
        connection.session.notify_publish(self.message_stream_id, player.stream.name)
        connection.flush()

    def notify_unpublish(self, player: Player) -> None:
        """NetStream.Play.UnpublishNotify + StreamEOF; the player stays for a republish."""
        connection = self.connection
        # The peer may have sent EOF already (connection_lost not run yet).
        if connection.closed or not connection.session.is_open:
            return
        connection.session.notify_unpublish(self.message_stream_id, player.stream.name)
        connection.flush()

    def drop_player(self, player: Player, reason: str) -> None:
        """The player cannot keep up: the connection closes (the stream goes on)."""
        self.connection.player_dropped(self, reason)
