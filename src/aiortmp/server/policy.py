"""Extension points of the server: access decisions and server events.

- :class:`AccessPolicy`: decides connect / publish / play. Decisions may be asynchronous
  (an HTTP auth callback); the RTMP session keeps the request pending meanwhile (the
  client waits for its ``_result`` / ``onStatus``), so media never flows before a yes.
- :class:`ServerEvent`: what happened (connect, publish, play, record_done...). Listeners
  (webhooks, metrics, relays) subscribe with :meth:`RTMPServer.subscribe`; they run
  synchronously on the event loop and must not block (queue and return).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AccessPolicy", "Decision", "EventKind", "Request", "ServerEvent", "ALLOW"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The answer of an :class:`AccessPolicy`.

    Attributes:
        allowed: True to accept.
        reason: why it was refused (sent to the client as the description; never include
            secrets).
        name: for publish/play: the stream name to use instead of the requested one
            (livego-style channel keys map ``live/<key>`` to the room's name).
    """

    allowed: bool
    reason: str = ""
    name: str | None = None


ALLOW = Decision(allowed=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """What a policy is asked about.

    Attributes:
        action: ``connect``, ``publish`` or ``play``.
        app: application name.
        name: stream name ("" for connect), without the query string.
        query: the query string (``token=...&expires=...``), without ``?``.
        remote_host: the client's IP address.
        session_id: the server connection id.
        tc_url: the tcUrl the client sent.
        properties: the connect properties (connect only).
    """

    action: str
    app: str
    name: str
    query: str
    remote_host: str
    session_id: int
    tc_url: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)


class AccessPolicy(Protocol):
    """Decides whether a request is allowed. ``check`` may be a coroutine function."""

    async def check(self, request: Request) -> Decision:
        """Return the decision; exceptions count as a denial (logged)."""
        ...


class EventKind(enum.StrEnum):
    """Kinds of :class:`ServerEvent`."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    PLAY = "play"
    STOP = "stop"
    RECORD_DONE = "record_done"
    AUTH_DENIED = "auth_denied"
    PROTOCOL_ERROR = "protocol_error"
    HANDSHAKE_FAILURE = "handshake_failure"
    PLAYER_DROPPED = "player_dropped"


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerEvent:
    """Something that happened on the server.

    Attributes:
        kind: the :class:`EventKind`.
        session_id: the connection id.
        remote: ``host:port`` of the client.
        app: application name ("" before connect).
        name: stream name ("" if not about a stream).
        details: extra fields (``path`` for record_done, ``reason`` for denials...).
    """

    kind: EventKind
    session_id: int
    remote: str
    app: str = ""
    name: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
