"""Pulls: a play of a stream that is not live here plays it from another server.

Configuration (``aiortmp.toml``)::

    [[relay.pull]]                 # a play of "mirror/<name>" that is not published here
    app = "mirror"                 # plays rtmp://origin.example/live/<name> and serves it
    url = "rtmp://origin.example/live"
    static = ["always-on"]         # pulled all the time, players or not
    idle_timeout_s = 10            # the pull stops this long after its last player left

Where a stream lives is a :class:`Locator`'s answer: today's ``[[relay.pull]]`` rules are
one (:class:`RuleLocator`); worker links and the cluster directory are others. A
:class:`Puller` plays the remote stream with :mod:`aiortmp.client` and is the local
stream's :class:`~aiortmp.hub.stream.Source`: the stream announces ``publish`` /
``unpublish`` for it like for any publisher, so pulled streams are recorded, pushed and
hooked alike. It starts on the first play of a name that is not live here, and stops
``idle_timeout_s`` after the last player left. A local publisher takes the name over: the
pull yields before the publish is accepted.

Liveness: an upstream that stops sending while its stream is live (no media for
``timeout_s``) is dropped and retried; TCP keepalive notices a peer that vanished while we
wait for its stream to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiortmp.client import Backoff, MediaMessage, Player, join_url, parse_url, reconnecting
from aiortmp.errors import ClientError, RTMPError, StreamBusy
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import Stream, StreamKey
from aiortmp.outputs.push import RelayState, error_text
from aiortmp.protocol.commands import NetStatusCode
from aiortmp.protocol.control import StreamEOF
from aiortmp.protocol.events import StatusReceived
from aiortmp.protocol.messages import MessageType

if TYPE_CHECKING:
    from aiortmp.server.access import AccessControl, Decision, Request
    from aiortmp.server.config import RelayConfig

__all__ = ["Locator", "PullService", "Puller", "RuleLocator", "Upstream"]

logger = logging.getLogger("aiortmp.relay")

_UPSTREAM_END = frozenset(
    {NetStatusCode.PLAY_UNPUBLISH_NOTIFY, NetStatusCode.PLAY_STOP, "NetStream.Play.Complete"}
)


def _no_query(url: str) -> str:
    """``url`` for logs: its query string may carry keys or tokens (cluster pulls)."""
    return url.partition("?")[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class Upstream:
    """Where to pull a stream from.

    Attributes:
        url: ``rtmp[s]://host[:port]/app/name[?query]`` (``rtmp+unix://`` for a worker).
        idle_timeout_s: stop pulling this long after the last player left (seconds).
        static: pull all the time, players or not.
        kind: the puller's :attr:`Source.kind`: ``"pull"``, or ``"link"`` for a copy of a
            stream another worker owns (not announced again; a local publisher takes it
            over only once the name is this worker's, see ``server/worker.py``).
        batched: coalesce reads as the stream settings say; False delivers each read at
            once (a link: its owner batched already, a second delay only adds latency).
    """

    url: str
    idle_timeout_s: float = 10.0
    static: bool = False
    kind: str = "pull"
    batched: bool = True


class Locator(Protocol):
    """Says where a stream that is not live here can be pulled from."""

    def locate(self, app: str, name: str) -> Upstream | None:
        """The upstream of ``app/name``, or None if this locator does not know it."""
        ...


class RuleLocator:
    """The ``[[relay.pull]]`` rules: ``app/<name>`` comes from ``url/<name>``."""

    def __init__(self, config: RelayConfig) -> None:
        self.rules = {rule.app: rule for rule in config.pull}

    def locate(self, app: str, name: str) -> Upstream | None:
        """``url/<name>`` for an app with a pull rule."""
        rule = self.rules.get(app)
        if rule is None:
            return None
        return Upstream(
            url=join_url(rule.url, name),
            idle_timeout_s=rule.idle_timeout_s,
            static=name in rule.static,
        )

    def static(self) -> list[tuple[str, str]]:
        """``(app, name)`` of every name pulled all the time."""
        return [(rule.app, name) for rule in self.rules.values() for name in rule.static]


class Puller:
    """Plays ``upstream.url`` and is the source of the local stream ``app/name``.

    Args:
        service: the pull service.
        app / name: the local stream.
        upstream: where from.
        session_id: a server-wide session id for the pull.

    Attributes:
        kind: ``"pull"`` (:class:`~aiortmp.hub.stream.Source`).
        state: the :class:`RelayState`.
        stream: the local stream while this pull feeds it, else None.
        connected_since: wall-clock time (Unix seconds) of the current connection, or None.
        reconnects: connections after the first one.
        bytes_received: payload bytes received.
        last_error: the last connection error, or "".
    """

    kind = "pull"

    def __init__(
        self, service: PullService, app: str, name: str, upstream: Upstream, session_id: int
    ) -> None:
        self.service = service
        self.app = app
        self.name = name
        self.upstream = upstream
        self.url = upstream.url
        self.static = upstream.static
        self.kind = upstream.kind
        self.session_id = session_id
        self.remote = parse_url(upstream.url).tc_url
        config = service.config
        self.timeout_s = config.timeout_s
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s)
        self.state = RelayState.CONNECTING
        self.stream: Stream | None = None
        self.connected_since: float | None = None
        self.reconnects = 0
        self.bytes_received = 0
        self.last_error = ""
        self.task: asyncio.Task[None] | None = None
        self._connected_once = False

    @property
    def key(self) -> StreamKey:
        """``(app, name)`` of the local stream."""
        return (self.app, self.name)

    def start(self) -> None:
        """Start the task."""
        self.task = asyncio.get_running_loop().create_task(
            self._run(), name=f"pull {self.url} -> {self.app}/{self.name}"
        )

    def stop(self, reason: str = "") -> None:
        """Stop now: the local stream ends (its players wait for a publisher)."""
        self._end_stream()
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        try:
            while await self._pull_from(self.upstream):
                # The stream moved (another origin, another worker) or is gone.
                upstream = self.service.locate(self.app, self.name)
                if upstream is None:
                    logger.info("pull %s/%s: no upstream has it any more", *self.key)
                    break
                self.upstream = upstream
                self.url = upstream.url
                self.kind = upstream.kind
                self.remote = parse_url(upstream.url).tc_url
        finally:
            self.state = RelayState.STOPPED
            self._end_stream()
            self.service.finished(self)

    async def _pull_from(self, upstream: Upstream) -> bool:
        """Play ``upstream`` and reconnect with backoff while the locators still point
        there. Returns True if the locators now point elsewhere (or nowhere), False if
        the pull is over (a local publisher took the name)."""

        def failed(exc: Exception, delay_s: float) -> None:
            self.state = RelayState.RETRYING
            self.last_error = error_text(exc)

        connections = reconnecting(
            upstream.url,
            timeout=self.timeout_s,
            backoff=self.backoff,
            retry_rejected=True,
            on_error=failed,
        )
        async with contextlib.aclosing(connections):
            async for conn in connections:
                self.state = RelayState.CONNECTING
                try:
                    player = await conn.play(
                        parse_url(upstream.url).stream,
                        stop_on_unpublish=False,
                        parse_headers=False,
                    )
                    if await self._pull(player):
                        return False  # a local publisher has the name
                except (ClientError, OSError, RTMPError, TimeoutError) as exc:
                    self.last_error = error_text(exc)
                    logger.warning(
                        "pull %s -> %s/%s: %s",
                        _no_query(upstream.url),
                        self.app,
                        self.name,
                        self.last_error,
                    )
                finally:
                    self.connected_since = None
                    self._end_stream()
                self.state = RelayState.RETRYING
                if self.service.locate(self.app, self.name) != upstream:
                    return True
        return False

    async def _pull(self, player: Player) -> bool:
        """Feed the local stream from ``player``; True if a local publisher has it."""
        self.connected_since = time.time()
        if self._connected_once:
            self.reconnects += 1
        self._connected_once = True
        self.state = RelayState.WAITING
        logger.info("pull %s -> %s/%s: playing", _no_query(self.url), self.app, self.name)
        async for item in player.events():
            if isinstance(item, MediaMessage):
                stream = self.stream or self._start_stream()
                if stream is None:
                    return True
                self.bytes_received += len(item.payload)
                if item.metadata is not None:
                    stream.ingest_metadata(dict(item.metadata), item.timestamp_ms)
                elif item.type_id == MessageType.AUDIO or item.type_id == MessageType.VIDEO:
                    stream.ingest(item.type_id, item.timestamp_ms, item.payload)
                else:
                    stream.ingest_data(item.type_id, item.timestamp_ms, item.payload)
                if not player.pending:
                    # The end of what one socket read brought.
                    if self.upstream.batched:
                        stream.commit()
                    else:
                        stream.flush()
                # Live: media must keep coming; silence means a stalled upstream.
                player.idle_timeout_s = self.timeout_s
            elif isinstance(item, StreamEOF) or (
                isinstance(item, StatusReceived) and item.code in _UPSTREAM_END
            ):
                # The remote publisher left; keep playing and wait for a republish.
                self._end_stream()
                self.state = RelayState.WAITING
                player.idle_timeout_s = None
        raise ClientError("connection closed by the server")

    def _start_stream(self) -> Stream | None:
        stream = self.service.registry.get_or_create(self.app, self.name)
        try:
            stream.attach(self)
        except StreamBusy:
            logger.info("pull %s/%s: published locally, pull stops", self.app, self.name)
            return None
        self.stream = stream
        self.state = RelayState.PULLING
        logger.info("pull %s -> %s/%s: live", _no_query(self.url), self.app, self.name)
        return stream

    def _end_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.detach(self)

    def status(self) -> dict[str, Any]:
        """JSON-ready state of this pull."""
        stream = self.service.registry.get(self.app, self.name)
        return {
            "app": self.app,
            "name": self.name,
            "url": self.url,
            "static": self.static,
            "kind": self.kind,
            "state": self.state.value,
            "players": stream.player_count if stream is not None else 0,
            "connected_since": self.connected_since,
            "reconnects": self.reconnects,
            "bytes_received": self.bytes_received,
            "last_error": self.last_error,
        }


class _YieldToPublisher:
    """Access policy: a local ``publish`` of a pulled name stops the pull first, so the
    stream is free when the publish is accepted. It never denies anything."""

    def __init__(self, service: PullService) -> None:
        self.service = service

    async def check(self, request: Request) -> Decision:
        from aiortmp.server.access import ALLOW

        if request.action == "publish":
            puller = self.service.pullers.get((request.app, request.name))
            # A link copies a name another worker owns: that worker's claim decides.
            if puller is not None and puller.kind != "link":
                logger.info("pull %s/%s: a local publisher takes over", request.app, request.name)
                self.service.finished(puller)
                puller.stop()
        return ALLOW


class PullService:
    """Pulls on demand (and static pulls): one :class:`Puller` per pulled stream.

    Args:
        registry: the streams.
        bus: ``play`` / ``stop`` / ``unpublish`` events come from here.
        access: where the yield-to-a-local-publisher policy is installed.
        config: the relay settings.
        session_ids: a source of server-wide session ids.

    Attributes:
        locators: asked in order where a stream lives (the ``[[relay.pull]]`` rules first).
        pullers: the running pulls by local stream key.
    """

    def __init__(
        self,
        registry: Registry,
        bus: EventBus,
        access: AccessControl,
        config: RelayConfig,
        session_ids: Callable[[], int],
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.access = access
        self.config = config
        self.session_ids = session_ids
        self.rules = RuleLocator(config)
        self.locators: list[Locator] = [self.rules]
        self.pullers: dict[StreamKey, Puller] = {}
        self._idle_timers: dict[StreamKey, asyncio.TimerHandle] = {}
        self._policy = _YieldToPublisher(self)
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        """Listen to plays and start the static pulls."""
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self.access.policies.append(self._policy)
        self._start_static()

    async def stop(self) -> None:
        """Stop every pull."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._policy in self.access.policies:
            self.access.policies.remove(self._policy)
        for timer in self._idle_timers.values():
            timer.cancel()
        self._idle_timers.clear()
        tasks = []
        for puller in list(self.pullers.values()):
            puller.stop()
            if puller.task is not None:
                tasks.append(puller.task)
        self.pullers.clear()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)

    def reload(self, config: RelayConfig) -> None:
        """Apply new ``[[relay.pull]]`` rules: pulls whose upstream changed stop."""
        self.config = config
        rules = RuleLocator(config)
        self.locators[self.locators.index(self.rules)] = rules
        self.rules = rules
        for puller in list(self.pullers.values()):
            upstream = self.locate(puller.app, puller.name)
            if upstream is None or upstream.url != puller.url:
                self.finished(puller)
                puller.stop()
            elif puller.static and not upstream.static:
                puller.static = False
                self._maybe_idle(puller.key)
        if self._unsubscribe is not None:
            self._start_static()

    def status(self) -> list[dict[str, Any]]:
        """One dict per running pull (see :meth:`Puller.status`)."""
        return [p.status() for p in self.pullers.values()]

    def locate(self, app: str, name: str) -> Upstream | None:
        """The first locator's answer for ``app/name``."""
        for locator in self.locators:
            upstream = locator.locate(app, name)
            if upstream is not None:
                return upstream
        return None

    def started_elsewhere(self, app: str, name: str) -> None:
        """A stream went live on another node or worker (a locator learnt it): players
        waiting for it here start pulling it now.

        Args:
            app / name: the stream.
        """
        stream = self.registry.get(app, name)
        if stream is not None and not stream.is_live and stream.demand:
            self._start(app, name)

    def finished(self, puller: Puller) -> None:
        """Forget ``puller`` (it stopped or yielded)."""
        if self.pullers.get(puller.key) is puller:
            del self.pullers[puller.key]
            self.registry.set_coming(*puller.key, False)
        timer = self._idle_timers.pop(puller.key, None)
        if timer is not None:
            timer.cancel()

    def _start(self, app: str, name: str) -> None:
        key = (app, name)
        if key in self.pullers:
            return
        stream = self.registry.get(app, name)
        if stream is not None and stream.is_live:
            return  # live here
        upstream = self.locate(app, name)
        if upstream is None:
            return
        puller = Puller(self, app, name, upstream, self.session_ids())
        self.pullers[key] = puller
        self.registry.set_coming(app, name, True)
        puller.start()

    def _start_static(self) -> None:
        for app, name in self.rules.static():
            puller = self.pullers.get((app, name))
            if puller is None:
                self._start(app, name)
            else:
                puller.static = True

    def _on_event(self, event: ServerEvent) -> None:
        kind = event.kind
        key = (event.app, event.name)
        if kind is EventKind.PLAY:
            timer = self._idle_timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            if not event.details.get("live", False):
                self._start(*key)
        elif kind is EventKind.STOP:
            self._maybe_idle(key)
        elif kind is EventKind.UNPUBLISH and event.details.get("source") != "pull":
            # A local source left: waiting players (or a static name) pull again.
            stream = self.registry.get(*key)
            upstream = self.locate(*key)
            if upstream is not None and (upstream.static or (stream and stream.demand)):
                self._start(*key)

    def _maybe_idle(self, key: StreamKey) -> None:
        puller = self.pullers.get(key)
        if puller is None or puller.static or key in self._idle_timers:
            return
        stream = self.registry.get(*key)
        if stream is not None and stream.demand:
            return
        self._idle_timers[key] = asyncio.get_running_loop().call_later(
            puller.upstream.idle_timeout_s, self._idle_expired, key
        )

    def _idle_expired(self, key: StreamKey) -> None:
        self._idle_timers.pop(key, None)
        puller = self.pullers.get(key)
        if puller is None or puller.static:
            return
        stream = self.registry.get(*key)
        if stream is not None and stream.demand:
            return
        logger.info("pull %s/%s: no players, stopping", *key)
        self.finished(puller)
        puller.stop()
