"""A viewer for a stream that is not live here: ask for it, and wait while it comes.

An RTMP player simply waits (``NetStream.Play.PublishNotify`` comes when the stream
starts). An HTTP viewer (HTTP-FLV, HLS) cannot wait indefinitely: it asks — a ``play``
event that is not live, the same one an RTMP player's play causes, so whatever can bring
the stream (a ``[[relay.pull]]`` rule, a worker link, the cluster directory) starts a pull
synchronously — and then waits for the stream only while a source is on its way
(:meth:`~aiortmp.hub.registry.Registry.is_coming`); otherwise the answer is a 404 at once.
"""

from __future__ import annotations

import asyncio

from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import Stream

__all__ = ["ask_for_stream"]


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
    went_live = asyncio.Event()

    def on_event(event: ServerEvent) -> None:
        if event.kind is EventKind.PUBLISH and event.app == app and event.name == name:
            went_live.set()

    unsubscribe = bus.subscribe(on_event)
    try:
        stream = registry.get(app, name)
        if stream is None or not stream.is_live:
            # asyncio.timeout, not wait_for: a viewer that leaves cancels this, and
            # Python 3.11's wait_for can swallow a cancellation.
            try:
                async with asyncio.timeout(timeout_s):
                    await went_live.wait()
            except TimeoutError:
                pass
    finally:
        unsubscribe()
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
