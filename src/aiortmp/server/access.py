"""Access decisions: who may connect, publish and play.

:class:`AccessPolicy` objects decide connect / publish / play. Decisions may be
asynchronous (an HTTP auth callback); the RTMP session keeps the request pending meanwhile
(the client waits for its ``_result`` / ``onStatus``), so media never flows before a yes.
:class:`AccessControl` asks every policy in order; the first denial wins.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger("aiortmp.server")

__all__ = ["ALLOW", "AccessControl", "AccessPolicy", "Decision", "Request"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The answer of an :class:`AccessPolicy`.

    Attributes:
        allowed: True to accept.
        reason: why it was refused (sent to the client as the description; never include
            secrets).
        name: for publish/play: the stream name to use instead of the requested one
            (livego-style channel keys map ``live/<key>`` to the room's name).
        final: allowed, and the policies after this one are not asked (a cluster node's
            signed pull: the node asked the play rules for its own players).
    """

    allowed: bool
    reason: str = ""
    name: str | None = None
    final: bool = False


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


class AccessControl:
    """The server's access policies, asked in order; all must allow a request.

    Attributes:
        policies: the policies (components add and remove theirs: auth rules, relays).
    """

    def __init__(self) -> None:
        self.policies: list[AccessPolicy] = []

    def __bool__(self) -> bool:
        return bool(self.policies)

    async def authorize(self, request: Request) -> Decision:
        """Ask every policy; the first denial wins. A failing policy denies (logged).

        A policy may rename the stream (``Decision.name``, livego channel keys); the
        policies after it are asked about the new name. A ``final`` yes ends the round.
        """
        decision = ALLOW
        for policy in tuple(self.policies):
            try:
                answer = await policy.check(request)
            except Exception as exc:
                logger.exception("access policy %r failed", policy)
                return Decision(allowed=False, reason=f"authorization failed: {type(exc).__name__}")
            if not answer.allowed:
                return answer
            if answer.final:
                return answer if answer.name is not None else decision
            if answer.name is not None:
                decision = answer
                request = dataclasses.replace(request, name=answer.name)
        return decision
