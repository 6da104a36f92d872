"""HTTP viewers (HTTP-FLV, HLS, recordings): the play decision, and a stream that is not
live here.

:func:`authorize_play` runs the apps' ``play`` policies for an HTTP request as RTMP play
does, and counts, announces and logs a denial in one place.

An RTMP player simply waits (``NetStream.Play.PublishNotify`` comes when the stream
starts). An HTTP viewer (HTTP-FLV, HLS) cannot wait indefinitely: it asks — a ``play``
event that is not live, the same one an RTMP player's play causes, so whatever can bring
the stream (a ``[[relay.pull]]`` rule, a worker link, the cluster directory) starts a pull
synchronously — and then waits for the stream only while a source is on its way
(:meth:`~aiortmp.hub.registry.Registry.is_coming`); otherwise the answer is a 404 at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import Stream
from aiortmp.server.access import AccessControl, Decision, Request

__all__ = ["ask_for_stream", "authorize_play", "play_denied"]

logger = logging.getLogger("aiortmp.http")

#: How often a viewer looks whether the stream it waits for went live (seconds).
_POLL_S = 0.02


async def ask_for_stream(
    registry: Registry,
    bus: EventBus,
    app: str,
    name: str,
    *,
    remote: str,
    protocol: str,
    timeout_s: float,
) -> Stream | None:
    """The live stream ``app/name``, after asking for it if it is not live here.

    Args:
        registry: the streams.
        bus: where the ``play`` (not live) goes.
        app / name: the stream.
        remote: the viewer's address (for the event).
        protocol: ``"http-flv"``, ``"ws-flv"``, ``"hls"``.
        timeout_s: how long to wait for a source that is coming (seconds).

    Returns:
        The live stream, or None (nothing brings it, or not in time).
    """
    stream = registry.get(app, name)
    if stream is not None and stream.is_live:
        return stream
    bus.emit(
        ServerEvent(
            kind=EventKind.PLAY,
            session_id=0,
            remote=remote,
            app=app,
            name=name,
            details={"live": False, "protocol": protocol},
        )
    )
    if not registry.is_coming(app, name):
        return None
    # Polled, not awaited on an event: a worker link's stream goes live without a
    # publish event (only the owner announces it).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and registry.is_coming(app, name):
        stream = registry.get(app, name)
        if stream is not None and stream.is_live:
            return stream
        await asyncio.sleep(_POLL_S)
    stream = registry.get(app, name)
    if stream is None or not stream.is_live:
        # Nobody came: a stop, so an on-demand pull started for us can idle out.
        bus.emit(
            ServerEvent(
                kind=EventKind.STOP,
                session_id=0,
                remote=remote,
                app=app,
                name=name,
                details={"protocol": protocol},
            )
        )
        return None
    return stream


async def authorize_play(
    access: AccessControl,
    bus: EventBus,
    stats: collections.Counter[str],
    *,
    app: str,
    name: str,
    query: str,
    host: str,
    session_id: int,
    protocol: str,
    url: str,
) -> Decision:
    """The ``play`` decision for an HTTP viewer, by the same policies as RTMP ``play``.

    Args:
        access: the access policies.
        bus / stats: where a denial is announced (``auth_denied``) and counted.
        app / name: the stream asked for.
        query: the request's query string (tokens, keys), without ``?``.
        host: the client's address.
        session_id: the viewer's session id (0 for request-by-request viewers).
        protocol: ``"http-flv"``, ``"ws-flv"``, ``"hls"``, ``"recording"``.
        url: the request URL (the policies' ``tc_url``).

    Returns:
        The decision (a denial already counted, announced and logged).
    """
    decision = await access.authorize(
        Request(
            action="play",
            app=app,
            name=name,
            query=query,
            remote_host=host,
            session_id=session_id,
            tc_url=url,
        )
    )
    if not decision.allowed:
        play_denied(
            bus,
            stats,
            decision,
            app=app,
            name=name,
            host=host,
            session_id=session_id,
            protocol=protocol,
        )
    return decision


def play_denied(
    bus: EventBus,
    stats: collections.Counter[str],
    decision: Decision,
    *,
    app: str,
    name: str,
    host: str,
    session_id: int,
    protocol: str,
) -> None:
    """Count, announce (``auth_denied``) and log a denied HTTP play, in one line; the
    name logged is the one the policy names (a wrong channel key is not logged)."""
    stats["auth_denials"] += 1
    bus.emit(
        ServerEvent(
            kind=EventKind.AUTH_DENIED,
            session_id=session_id,
            remote=host,
            app=app,
            name=name,
            details={"action": "play", "reason": decision.reason, "protocol": protocol},
        )
    )
    logger.warning(
        "[%d %s] %s play %s/%s denied: %s",
        session_id,
        host,
        protocol,
        app,
        decision.name or name,
        decision.reason,
    )
