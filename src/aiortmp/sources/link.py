"""Worker links: a stream another worker process owns, played over its unix socket.

With ``aiortmp serve --workers N`` a live name has one owner worker (its publisher is
there); a player on another worker is served through one link per stream per worker:

- :func:`link_upstream` is where a :class:`~aiortmp.sources.pull.Puller` plays it from
  (kind ``"link"``): the owner's internal ``rtmp+unix://`` socket. The owner serves the
  link like any RTMP player (shared bytes, its GOP cache, the slow-player policy); the
  copy here is a stream with its own cache, so late players start at once on both sides.
  A link is never announced (the owner announces, records, pushes and hooks), and is not
  coalesced a second time (:attr:`Upstream.batched` False: the owner batched already).
- :class:`HandoverLink` is the link that takes a stream over without its players
  noticing (:attr:`Stream.successor`): when a draining worker's publisher moves to the new
  generation (E-RTMP v2 ReconnectRequest), the old worker's stream goes on from the new
  owner; and a link to a draining owner moves to the new owner the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from aiortmp.client import MediaMessage, connect, parse_url, unix_url
from aiortmp.errors import AMFEncodeError, ClientError, RTMPError
from aiortmp.hub.packet import PacketKind, classify, config_key
from aiortmp.hub.registry import LINK
from aiortmp.hub.stream import Stream, StreamKey
from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.control import StreamEOF
from aiortmp.protocol.events import StatusReceived
from aiortmp.protocol.messages import MessageType

from .pull import Upstream

__all__ = ["HandoverLink", "ingest", "link_upstream"]

logger = logging.getLogger("aiortmp.workers")

_UPSTREAM_END: Final = frozenset(
    {NetStatusCode.PLAY_UNPUBLISH_NOTIFY, NetStatusCode.PLAY_STOP, "NetStream.Play.Complete"}
)


def link_upstream(path: str, app: str, name: str, *, idle_timeout_s: float = 10.0) -> Upstream:
    """Where a link to the worker listening on ``path`` plays ``app/name`` from.

    Args:
        path: the owner's internal unix socket.
        app / name: the stream.
        idle_timeout_s: the link stops this long after its last player left (seconds).

    Returns:
        An ``rtmp+unix://`` :class:`Upstream` of kind ``"link"``, not coalesced again.
    """
    return Upstream(
        url=unix_url(path, app, name), idle_timeout_s=idle_timeout_s, kind=LINK, batched=False
    )


def ingest(stream: Stream, item: MediaMessage) -> None:
    """Feed one played message to ``stream`` (metadata, audio/video, other data).

    Raises:
        AMFEncodeError: the metadata cannot be relayed (cyclic references).
    """
    if item.metadata is not None:
        stream.ingest_metadata(dict(item.metadata), item.timestamp_ms)
    elif item.type_id == MessageType.AUDIO or item.type_id == MessageType.VIDEO:
        stream.ingest(item.type_id, item.timestamp_ms, item.payload)
    else:
        stream.ingest_data(item.type_id, item.timestamp_ms, item.payload)


class HandoverLink:
    """A link that becomes its stream's source when the current one leaves.

    It is set as ``stream.successor``; until it takes over it holds what it plays the way
    a startup cache does (the last metadata, the configuration, media from the last
    keyframe on), and delivers that first when it does. Where to play from may be known at
    once (``url``) or later (:meth:`point_to`: the new owner claimed the name). Having
    taken over without knowing where to play from for ``wait_s``, it ends the stream (the
    publisher left for good).

    Args:
        stream: the stream it takes over.
        session_id: a server-wide session id.
        url: where to play from (``rtmp+unix://...``), or None until :meth:`point_to`.
        wait_s: how long a stream it took over waits for a new owner (seconds).
        timeout_s: per request, and the longest silence of a live link (seconds).
        on_ready: called once when a keyframe is held (the switch can happen now).
        on_end: called once when the link ends (whether it took over or not).

    Attributes:
        kind: ``"link"`` (not announced, see :mod:`aiortmp.hub.registry`).
        ended: True once the link is over.
    """

    kind = LINK

    def __init__(
        self,
        stream: Stream,
        session_id: int,
        *,
        url: str | None = None,
        wait_s: float = 5.0,
        timeout_s: float = 10.0,
        on_ready: Callable[[HandoverLink], None] | None = None,
        on_end: Callable[[HandoverLink], None] | None = None,
    ) -> None:
        self.stream = stream
        self.session_id = session_id
        self.url: str | None = None
        self.remote = ""
        self.wait_s = wait_s
        self.timeout_s = timeout_s
        self.on_ready = on_ready
        self.on_end = on_end
        self.ended = False
        self._metadata: MediaMessage | None = None
        self._configs: dict[tuple[int, int, tuple[int, ...]], MediaMessage] = {}
        self._gop: list[MediaMessage] = []
        self._pointed = asyncio.Event()
        if url is not None:
            self.point_to(url)
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"handover link {stream.app}/{stream.name}"
        )

    @property
    def key(self) -> StreamKey:
        """``(app, name)`` of the stream."""
        return self.stream.key

    def point_to(self, url: str) -> None:
        """Play from ``url`` (the new owner's ``rtmp+unix://`` URL); once only."""
        if self.url is None:
            self.url = url
            self.remote = parse_url(url).tc_url
            self._pointed.set()

    def stop(self, reason: str) -> None:
        """End the link now (the stream ends if it took over)."""
        self.task.cancel()
        self._end()

    # -- the task ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            if await self._wait_for_owner():
                await self._play()
        except (ClientError, OSError, RTMPError, TimeoutError) as exc:
            logger.warning("handover link %s/%s: %s", *self.key, exc)
        finally:
            self._end()

    async def _wait_for_owner(self) -> bool:
        """Wait for :meth:`point_to`; False once the stream was ours for ``wait_s``."""
        loop = asyncio.get_running_loop()
        took_over_at: float | None = None
        while not self._pointed.is_set():
            if self.stream.source is self:
                took_over_at = took_over_at or loop.time()
                if loop.time() - took_over_at > self.wait_s:
                    logger.info("handover link %s/%s: no new owner, stream ends", *self.key)
                    return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pointed.wait(), 0.05)
        return True

    async def _play(self) -> None:
        assert self.url is not None
        url = self.url
        async with connect(url, timeout=self.timeout_s, follow_reconnect=False) as conn:
            player = await conn.play(
                parse_url(url).stream,
                stop_on_unpublish=False,
                parse_headers=False,
                idle_timeout_s=self.timeout_s,
            )
            logger.info("handover link %s/%s: playing %s", *self.key, url)
            media = False
            async for item in player.events():
                if isinstance(item, MediaMessage):
                    media = True
                    self._take(item)
                    if not player.pending and self.stream.source is self:
                        self.stream.flush()
                elif media and (
                    isinstance(item, StreamEOF)
                    or (isinstance(item, StatusReceived) and item.code in _UPSTREAM_END)
                ):
                    logger.info("handover link %s/%s: the publisher left", *self.key)
                    return
        raise ClientError("connection closed by the server")

    def _take(self, item: MediaMessage) -> None:
        stream = self.stream
        if stream.source is self and not self._held():
            ingest(stream, item)
            return
        keyframe = self._hold(item)
        if keyframe and self.on_ready is not None:
            on_ready, self.on_ready = self.on_ready, None
            on_ready(self)
        if stream.source is self:
            self._release()

    def _held(self) -> bool:
        return self._metadata is not None or bool(self._configs) or bool(self._gop)

    def _hold(self, item: MediaMessage) -> bool:
        """Keep ``item`` as a startup cache would; True for a keyframe."""
        if item.metadata is not None:
            self._metadata = item
            return False
        type_id = item.type_id
        if type_id == MessageType.AUDIO or type_id == MessageType.VIDEO:
            kind = classify(type_id, item.payload)
            if kind is PacketKind.KEYFRAME:
                self._gop = [item]
                return True
            if kind is PacketKind.VIDEO_CONFIG or kind is PacketKind.AUDIO_CONFIG:
                self._configs[config_key(type_id, item.payload)] = item
                return False
        if self._gop:  # nothing before the first keyframe is decodable
            self._gop.append(item)
        return False

    def _release(self) -> None:
        """Deliver what was held, configuration first (the link just took over)."""
        held = [self._metadata] if self._metadata is not None else []
        held += sorted(self._configs.values(), key=lambda m: classify(m.type_id, m.payload))
        held += self._gop
        self._metadata, self._configs, self._gop = None, {}, []
        for item in held:
            try:
                ingest(self.stream, item)
            except AMFEncodeError:
                pass  # the owner relayed it, so it encodes; nothing to do if not
        self.stream.flush()

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        stream = self.stream
        if stream.successor is self:
            stream.successor = None
        if stream.source is self:
            stream.detach(self)
        if self.on_end is not None:
            on_end, self.on_end = self.on_end, None
            on_end(self)
