"""Server events and the bus that carries them.

Everything that happens — a connection, a publish (from any kind of source), a play, a
recording done or failed, an output stopped — is one :class:`ServerEvent` on one
:class:`EventBus`. Webhooks, exec hooks, the API's clocks, recording and relays subscribe;
listeners run synchronously on the event loop and must not block (queue and return).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EventBus", "EventKind", "Listener", "ServerEvent"]

logger = logging.getLogger("aiortmp.server")


class EventKind(enum.StrEnum):
    """Kinds of :class:`ServerEvent`."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    PUBLISH = "publish"  #: a stream got a source (RTMP publish, pull, VOD, link...)
    UNPUBLISH = "unpublish"  #: a stream lost its source
    PLAY = "play"
    STOP = "stop"
    RECORD_DONE = "record_done"
    RECORD_FAILED = "record_failed"  #: a recording stopped on an I/O error (the stream goes on)
    OUTPUT_STOPPED = "output_stopped"  #: a queued output fell too far behind and stopped
    AUTH_DENIED = "auth_denied"
    PROTOCOL_ERROR = "protocol_error"
    HANDSHAKE_FAILURE = "handshake_failure"
    PLAYER_DROPPED = "player_dropped"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerEvent:
    """Something that happened on the server.

    Attributes:
        kind: the :class:`EventKind`.
        session_id: the session (RTMP connection, HTTP viewer, pull...) it is about; 0 if
            none.
        remote: ``host:port`` of the client, the upstream URL of a pull, or "".
        app: application name ("" before connect).
        name: stream name ("" if not about a stream).
        details: extra fields (``path`` for record_done, ``reason`` for denials,
            ``source`` for publish...).
    """

    kind: EventKind
    session_id: int
    remote: str
    app: str = ""
    name: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[ServerEvent], None]


class EventBus:
    """Delivers each :class:`ServerEvent` to every listener, in subscription order."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns the unsubscriber."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: ServerEvent) -> None:
        """Deliver ``event``; a failing listener is logged, not fatal."""
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed on %s", listener, event.kind)
