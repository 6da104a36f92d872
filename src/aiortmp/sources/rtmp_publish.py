"""An RTMP publisher as the source of a stream.

One :class:`RTMPPublish` per publishing NetStream. Its media, metadata and data messages
(RTMP 1.0 §7.1.4/§7.1.5, ``@setDataFrame``) go from the session straight to the stream, in
order, as each message is parsed (``ServerSession.set_media_sink``: the ingest fast path,
no event objects). Ending it (unpublish, deleteStream, connection lost, or
:meth:`RTMPPublish.stop` from the API) detaches it from the stream, which announces the
``unpublish`` for every kind of source alike.
"""

from __future__ import annotations

from typing import Protocol

from aiortmp.hub.stream import Stream

__all__ = ["PublishingConnection", "RTMPPublish"]


class PublishingConnection(Protocol):
    """What a publish needs of its connection."""

    id: int
    remote: str

    def close(self, *, abort: bool = False) -> None:
        """Close the connection."""


class RTMPPublish:
    """The source of ``stream``: NetStream ``message_stream_id`` of ``connection``.

    Attributes:
        kind: ``"rtmp"``.
        session_id / remote: the connection's.
    """

    kind = "rtmp"

    __slots__ = ("connection", "stream", "message_stream_id", "session_id", "remote")

    def __init__(
        self, connection: PublishingConnection, stream: Stream, message_stream_id: int
    ) -> None:
        self.connection = connection
        self.stream = stream
        self.message_stream_id = message_stream_id
        self.session_id = connection.id
        self.remote = connection.remote

    def stop(self, reason: str) -> None:
        """End the publish by closing its connection (the API kicks a publisher)."""
        self.connection.close()
