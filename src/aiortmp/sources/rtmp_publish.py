"""An RTMP publisher as the source of a stream.

One :class:`RTMPPublish` per publishing NetStream: the connection hands it the media,
metadata and data messages of that NetStream (RTMP 1.0 §7.1.4/§7.1.5, ``@setDataFrame``),
and it feeds them to the stream. Ending it (unpublish, deleteStream, connection lost, or
:meth:`RTMPPublish.stop` from the API) detaches it from the stream, which announces the
``unpublish`` for every kind of source alike.
"""

from __future__ import annotations

from typing import Protocol

from aiortmp.errors import AMFEncodeError, MessageError
from aiortmp.hub.stream import Stream
from aiortmp.protocol.events import DataReceived, MediaReceived, MetadataReceived

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

    def on_media(self, event: MediaReceived) -> None:
        """An audio or video message (the hot path)."""
        self.stream.ingest(event.type_id, event.timestamp_ms, event.payload)

    def on_metadata(self, event: MetadataReceived) -> None:
        """``@setDataFrame onMetaData``: cached and relayed as ``onMetaData``.

        Raises:
            MessageError: the metadata cannot be written for players (cyclic AMF0 §2.9
                references).
        """
        try:
            self.stream.ingest_metadata(dict(event.metadata), event.timestamp_ms)
        except AMFEncodeError as exc:
            raise MessageError(f"onMetaData cannot be relayed: {exc}") from exc

    def on_data(self, event: DataReceived) -> None:
        """Another data message (onCuePoint, onTextData...): relayed as is."""
        message = event.message
        self.stream.ingest_data(message.type_id, message.timestamp_ms, message.payload)
