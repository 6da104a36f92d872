"""Inside one worker process: what makes N worker processes one server.

:func:`run_worker` runs an ordinary :class:`~aiortmp.server.app.RTMPServer` on the
listening sockets the :class:`~aiortmp.server.workers.Supervisor` bound, with one more
component, :class:`WorkerComponent`:

- **Ownership** (:class:`OwnershipPolicy`, the last access policy): a publish that every
  other policy allowed claims its name from the supervisor; a name another worker owns
  is refused with ``NetStream.Publish.BadName``. The claim is released when the stream's
  source leaves (a bus listener), or after :data:`CLAIM_CHECK_S` if the publish never
  started. Recording, hooks, push relays and publish auth thus happen once, in the owner.
- **Links** (:class:`WorkerLocator`, the first pull locator): a play of a name another
  worker owns pulls it from the owner's internal unix socket
  (:func:`~aiortmp.sources.link.link_upstream`); players that waited are started when a
  claim is broadcast (``PullService.started_elsewhere``), links stop when their owner
  releases the name. The owner serves links on its internal socket like RTMP players, but
  as no session of the server: no access policies (the player's worker asked them), no
  events, not counted (:class:`LinkHost`).
- **The whole server on every worker**: snapshots for the aggregated API and metrics
  (:mod:`.http.aggregate`), and the API actions the supervisor routes here.
- **Draining** (a new generation took over): stop accepting, ask publishers that
  announced ``capsEx`` Reconnect to reconnect (E-RTMP v2 ReconnectRequest with their
  tcUrl), give each of their streams a :class:`~aiortmp.sources.link.HandoverLink`
  successor that plays it from the new owner once the publisher moved, and stop when no
  player is left or at the deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiortmp.client import unix_url
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import LINK
from aiortmp.hub.stream import Output, Stream, StreamKey
from aiortmp.protocol.session import CapsExMask
from aiortmp.sources.link import HandoverLink, link_upstream
from aiortmp.sources.pull import Puller, PullService, Upstream

from .access import ALLOW, AccessControl, Decision, Request
from .app import RTMPServer
from .connection import RTMPServerProtocol, next_session_id, number_sessions_from
from .workers import Channel

if TYPE_CHECKING:
    from .config import ServerConfig
    from .http import HTTPService

__all__ = [
    "CLAIM_CHECK_S",
    "LinkHost",
    "OwnershipPolicy",
    "WorkerComponent",
    "WorkerLocator",
    "run_worker",
]

logger = logging.getLogger("aiortmp.workers")

#: A claim whose publish did not start (the client left while policies were asked) is
#: released after this long (seconds).
CLAIM_CHECK_S: Final = 3.0
#: How long a claim may wait for the supervisor (seconds).
CLAIM_TIMEOUT_S: Final = 5.0
#: How long an API request waits for the other workers (seconds).
GATHER_TIMEOUT_S: Final = 10.0
#: A draining worker waits for connections younger than this to play or publish (seconds).
IDLE_GRACE_S: Final = 5.0
#: A link that took a stream over stops this long after its last player left (seconds).
LINK_IDLE_S: Final = 10.0


class LinkHost:
    """The :class:`~aiortmp.server.connection.ConnectionHost` of the links other workers
    open to this one: the server's streams and settings, but no access policies (the
    player's worker asked them), a bus of its own (a link is no session of the server:
    no hooks, no events) and its own connection table and counters.

    Args:
        server: the worker's server.

    Attributes:
        connections: the open link connections.
    """

    def __init__(self, server: RTMPServer) -> None:
        self.config = server.config
        self.registry = server.registry
        self.bus = EventBus()
        self.access = AccessControl()
        self.stats: collections.Counter[str] = collections.Counter()
        self.connections: set[RTMPServerProtocol] = set()

    def register(self, conn: RTMPServerProtocol) -> str | None:
        """Admit a link connection (always)."""
        self.connections.add(conn)
        return None

    def unregister(self, conn: RTMPServerProtocol) -> None:
        """Forget a closed link connection."""
        self.connections.discard(conn)


class OwnershipPolicy:
    """Access policy: a publish claims its name for the whole server first.

    Args:
        worker: the worker component (it talks to the supervisor).
    """

    def __init__(self, worker: WorkerComponent) -> None:
        self.worker = worker

    async def check(self, request: Request) -> Decision:
        """Allow a publish only if its name is free or already this worker's."""
        if request.action != "publish":
            return ALLOW
        return await self.worker.claim(request.app, request.name)


class WorkerLocator:
    """Pull locator: a name another worker owns is played from that worker.

    Args:
        worker: the worker component (its replica of the directory).
    """

    def __init__(self, worker: WorkerComponent) -> None:
        self.worker = worker

    def locate(self, app: str, name: str) -> Upstream | None:
        """The owner's link upstream, or None (nobody owns it, or this worker does)."""
        owner = self.worker.owners.get((app, name))
        if owner is None or owner == self.worker.number:
            return None
        return link_upstream(str(self.worker.link_path_of(owner)), app, name)


class WorkerComponent:
    """The component that makes a worker's server part of the whole (module docstring).

    Args:
        server: the worker's server (not started yet: the aggregating HTTP middleware is
            installed here).
        channel: the channel to the supervisor.
        number: this worker's number.
        generation: its generation.
        link_path: where it serves links to the other workers.
        handoff: where the supervisor passes connections a dead worker left in its listen
            queues (SCM_RIGHTS; see :meth:`Supervisor.hand_off
            <aiortmp.server.workers.Supervisor.hand_off>`).

    Attributes:
        owners: the replica of the directory, ``(app, name)`` → owner's number.
        links: the host of the link connections other workers opened here.
        draining: True once a newer generation took over.
    """

    def __init__(
        self,
        server: RTMPServer,
        channel: Channel,
        *,
        number: int,
        generation: int,
        link_path: Path,
        handoff: socket.socket | None = None,
    ) -> None:
        self.server = server
        self.channel = channel
        self.handoff = handoff
        self.number = number
        self.generation = generation
        self.link_path = link_path
        self.owners: dict[StreamKey, int] = {}
        self.links = LinkHost(server)
        self.policy = OwnershipPolicy(self)
        self.locator = WorkerLocator(self)
        self.draining = False
        self.stopping = False
        self._handovers: dict[StreamKey, HandoverLink] = {}
        self._claimed_at: dict[StreamKey, float] = {}
        self._rates: dict[StreamKey, int] = {}
        self._last_sent: dict[Output, int] = {}
        self._idle_since: dict[StreamKey, float] = {}
        self._link_server: asyncio.AbstractServer | None = None
        self._unsubscribe: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopper: asyncio.Task[None] | None = None
        http = self.http
        if http is not None:
            from .http.aggregate import aggregating_middleware

            http.middlewares.append(aggregating_middleware(self))

    # -- helpers ------------------------------------------------------------------------

    @property
    def http(self) -> HTTPService | None:
        """The server's HTTP component, if it has one."""
        from .http import HTTPService

        return next((c for c in self.server.components if isinstance(c, HTTPService)), None)

    @property
    def pulls(self) -> PullService | None:
        """The server's pull service."""
        relay = self.server.relay
        return relay.pulls if relay is not None else None

    def link_path_of(self, number: int) -> Path:
        """The internal socket of worker ``number``."""
        return self.link_path.with_name(f"w{number}.sock")

    def _task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def load_directory(self, hello: dict[str, Any] | None) -> None:
        """Take the directory the supervisor sent first."""
        for app, name, number in (hello or {}).get("owners", []):
            self.owners[(str(app), str(name))] = int(number)

    # -- Component ----------------------------------------------------------------------

    async def start(self) -> None:
        """Serve links, join the access policies and locators, report ready."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            self.link_path.unlink()
        self._link_server = await loop.create_unix_server(
            lambda: RTMPServerProtocol(self.links), str(self.link_path)
        )
        self.server.access.policies.append(self.policy)
        pulls = self.pulls
        if pulls is not None:
            pulls.locators.insert(0, self.locator)
        self._unsubscribe = self.server.bus.subscribe(self._on_event)
        if self.handoff is not None:
            self.handoff.setblocking(False)
            loop.add_reader(self.handoff.fileno(), self._receive_connections)
        self._task(self._tick())
        self.channel.send({"op": "ready", "pid": os.getpid()})

    async def stop(self) -> None:
        """Stop serving links and leave the policies; never raises."""
        self.stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.handoff is not None:
            asyncio.get_running_loop().remove_reader(self.handoff.fileno())
            self.handoff.close()
            self.handoff = None
        if self.policy in self.server.access.policies:
            self.server.access.policies.remove(self.policy)
        pulls = self.pulls
        if pulls is not None and self.locator in pulls.locators:
            pulls.locators.remove(self.locator)
        for link in list(self._handovers.values()):
            link.stop("server shutting down")
        if self._link_server is not None:
            self._link_server.close()
        for conn in list(self.links.connections):
            conn.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(OSError):
            self.link_path.unlink()

    def reload(self, config: ServerConfig) -> None:
        """Links follow the reloaded limits and player policy."""
        self.links.config = config

    def _receive_connections(self) -> None:
        """Serve the connections the supervisor hands over (a datagram per batch: the
        listener kind as JSON, the sockets as SCM_RIGHTS)."""
        assert self.handoff is not None
        http = self.http
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.handoff, 1024, 253)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.error("hand-over socket failed: %s", exc)
                asyncio.get_running_loop().remove_reader(self.handoff.fileno())
                return
            try:
                kind = str(json.loads(data)["kind"])
            except (ValueError, KeyError, TypeError):
                kind = ""
            for fd in fds:
                conn = socket.socket(fileno=fd)
                if kind in ("rtmp", "rtmps"):
                    self.server.adopt(kind, conn)
                elif kind == "http" and http is not None:
                    http.adopt(conn)
                else:
                    conn.close()
            if fds:
                logger.info("serving %d %s connection(s) of a worker that died", len(fds), kind)

    def supervisor_gone(self) -> None:
        """The channel closed: the supervisor died; stop rather than run orphaned."""
        if not self.stopping and not self.draining:
            logger.error("the supervisor is gone; stopping")
            self._stop_server()

    def _stop_server(self) -> None:
        # Not one of self._tasks: stop() cancels those, and this one runs stop().
        if self._stopper is None:
            self._stopper = asyncio.get_running_loop().create_task(self.server.stop())

    # -- the directory ------------------------------------------------------------------

    async def claim(self, app: str, name: str) -> Decision:
        """Claim ``app/name`` for this worker (a publish every other policy allowed).

        Returns:
            ALLOW, or a denial (another worker owns it; the supervisor does not answer).
        """
        key = (app, name)
        try:
            answer = await self.channel.request(
                {"op": "claim", "app": app, "name": name}, CLAIM_TIMEOUT_S
            )
        except (ConnectionError, TimeoutError):
            return Decision(allowed=False, reason="the stream directory does not answer")
        if not answer.get("ok"):
            return Decision(allowed=False, reason=f"{app}/{name} is already being published")
        # A link here that copied the name from its previous owner is taken over by the
        # publisher when it is accepted (connection.py), without a gap for its players.
        self.owners[key] = self.number
        loop = asyncio.get_running_loop()
        self._claimed_at[key] = loop.time()
        loop.call_later(CLAIM_CHECK_S, self._check_claim, key)
        return ALLOW

    def _check_claim(self, key: StreamKey) -> None:
        if self.owners.get(key) != self.number or self.stopping:
            return
        if asyncio.get_running_loop().time() - self._claimed_at.get(key, 0.0) < CLAIM_CHECK_S:
            return  # claimed again since
        stream = self.server.registry.get(*key)
        if stream is None or not stream.is_live:
            self._release(key)

    def _release(self, key: StreamKey) -> None:
        if self.owners.get(key) == self.number:
            del self.owners[key]
            self.channel.send({"op": "release", "app": key[0], "name": key[1]})

    def _on_event(self, event: ServerEvent) -> None:
        if event.kind is EventKind.UNPUBLISH:
            key = (event.app, event.name)
            stream = self.server.registry.get(*key)
            # Still live: a successor took over (the publisher moved); the claim stays
            # until the new owner's takes it over.
            if stream is None or not stream.is_live:
                self._release(key)

    def _on_claimed(self, app: str, name: str, number: int, handover: bool) -> None:
        key = (app, name)
        self.owners[key] = number
        if number == self.number:
            return
        url = unix_url(str(self.link_path_of(number)), app, name)
        link = self._handovers.get(key)
        if link is not None and link.url is None:
            link.point_to(url)  # our publisher moved there: our stream follows it
            return
        stream = self.server.registry.get(app, name)
        pulls = self.pulls
        if pulls is None:
            return
        puller = pulls.pullers.get(key)
        if (
            handover
            and not self.draining
            and stream is not None
            and puller is not None
            and puller.kind == LINK
            and stream.source is puller
            and stream.successor is None
        ):
            self._move_link(stream, puller, url)
            return
        pulls.started_elsewhere(app, name)

    def _on_released(self, app: str, name: str, number: int) -> None:
        key = (app, name)
        if self.owners.get(key) == number:
            del self.owners[key]
        if number == self.number:
            return
        pulls = self.pulls
        puller = pulls.pullers.get(key) if pulls is not None else None
        if pulls is not None and puller is not None and puller.kind == LINK:
            # Its owner released the name: a republish may be anywhere (a new claim
            # starts a new link for the players, who wait meanwhile).
            pulls.finished(puller)
            puller.stop("the owner released the name")
        link = self._handovers.get(key)
        if link is not None and link.url == unix_url(str(self.link_path_of(number)), app, name):
            link.stop("the owner released the name")

    def _move_link(self, stream: Stream, puller: Puller, url: str) -> None:
        """A link to a draining owner follows the publisher to the new owner: the new
        link takes over as soon as it holds a keyframe."""
        pulls = self.pulls

        def ready(_: HandoverLink) -> None:
            if pulls is not None:
                pulls.finished(puller)
            puller.stop("moved to the new owner")

        self._handover(stream, url=url, on_ready=ready)

    def _handover(self, stream: Stream, **options: Any) -> HandoverLink:
        link = HandoverLink(
            stream,
            next_session_id(),
            timeout_s=self.server.config.relay.timeout_s,
            on_end=self._handover_ended,
            **options,
        )
        stream.successor = link
        self._handovers[stream.key] = link
        return link

    def _handover_ended(self, link: HandoverLink) -> None:
        if self._handovers.get(link.key) is link:
            del self._handovers[link.key]
        stream = self.server.registry.get(*link.key)
        if stream is None or not stream.is_live:
            self._release(link.key)  # we kept the name for a publisher that never came
            if stream is not None:
                self.server.registry.release(stream)

    # -- the supervisor's messages -------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> Any:
        """A message from the supervisor; returns the answer of a request."""
        op = message.get("op")
        if op == "claimed":
            self._on_claimed(
                str(message["app"]),
                str(message["name"]),
                int(message["worker"]),
                bool(message.get("handover")),
            )
        elif op == "released":
            self._on_released(str(message["app"]), str(message["name"]), int(message["worker"]))
        elif op == "drain":
            if not self.draining:
                self._task(self.drain(float(message.get("deadline_s", 300.0))))
        elif op == "snapshot":
            return {"data": self.snapshot()}
        elif op == "call":
            return {"result": self.act(str(message.get("action")), message.get("args") or {})}
        return None

    # -- for the aggregated API (http/aggregate.py) -------------------------------------

    async def gather(self) -> list[dict[str, Any]]:
        """Every worker's snapshot (through the supervisor)."""
        try:
            answer = await self.channel.request({"op": "gather"}, GATHER_TIMEOUT_S)
        except (ConnectionError, TimeoutError) as exc:
            logger.warning("the other workers did not answer: %r", exc)
            return [{"worker": self.info(), "data": self.snapshot()}]
        items: list[dict[str, Any]] = answer.get("items", [])
        return items

    async def call(self, to: int | str | None, action: str, **args: Any) -> list[dict[str, Any]]:
        """Run ``action`` on another worker (see :class:`~.http.aggregate.Workers`)."""
        try:
            answer = await self.channel.request(
                {"op": "call", "to": to, "action": action, "args": args}, GATHER_TIMEOUT_S
            )
        except (ConnectionError, TimeoutError) as exc:
            logger.warning("the other workers did not answer: %r", exc)
            return []
        results: list[dict[str, Any]] = answer.get("results", [])
        return results

    def owner(self, app: str, name: str) -> int | None:
        """The worker that owns ``app/name``."""
        return self.owners.get((app, name))

    def info(self) -> dict[str, Any]:
        """This worker, as the API lists it."""
        return {
            "number": self.number,
            "pid": os.getpid(),
            "generation": self.generation,
            "state": "draining" if self.draining else "ready",
        }

    def snapshot(self) -> dict[str, Any]:
        """This worker's part of the server (:func:`~.http.aggregate.local_snapshot`)."""
        http = self.http
        if http is None:
            return {}
        from .http.aggregate import local_snapshot

        return local_snapshot(http, self)

    def link_players(self, stream: Stream) -> list[Output]:
        """The players of ``stream`` that are other workers' links."""
        return [
            play.player
            for conn in self.links.connections
            for play in conn.playing.values()
            if play.stream is stream
        ]

    def link_bitrate_bps(self, key: StreamKey) -> int:
        """Bits per second sent to other workers' links for ``key`` (last second)."""
        return self._rates.get(key, 0)

    def is_copy(self, stream: Stream) -> bool:
        """True if a link feeds ``stream`` (another worker owns it)."""
        source = stream.source
        return source is not None and source.kind == LINK

    def act(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """An API action the supervisor routed here; ``{"status", "body"}``."""
        server = self.server
        if action == "close_session":
            session_id = int(args.get("id", 0))
            for conn in list(server.connections):
                if conn.id == session_id:
                    conn.log(logging.WARNING, "closed through the HTTP API")
                    conn.close()
                    return {"status": 200, "body": {"closed": session_id}}
            http = self.http
            viewer = http.viewers.get(session_id) if http is not None else None
            if viewer is not None:
                viewer.close()
                return {"status": 200, "body": {"closed": session_id}}
            return {"status": 404, "body": {"error": f"no session {session_id}"}}
        if action == "reload_keys":
            keys = server.channel_keys
            if keys is not None and keys.path is not None:
                try:
                    keys.load()
                except Exception as exc:
                    logger.error("cannot reload the channel keys: %s", exc)
            return {"status": 200, "body": {}}
        if action == "relay_add" and server.relay is not None:
            try:
                relay_id = server.relay.add_push(
                    str(args.get("app")), str(args.get("url")), args.get("stream")
                )
            except ValueError as exc:
                return {"status": 400, "body": {"error": str(exc)}}
            return {"status": 201, "body": {"id": relay_id}}
        if action == "relay_remove" and server.relay is not None:
            removed = server.relay.remove_push(str(args.get("id")))
            return {"status": 200 if removed else 404, "body": {}}
        if action == "relays" and server.relay is not None:
            body = {"relays": server.relay.status(), "pulls": server.relay.pull_status()}
            return {"status": 200, "body": _json_ready(body)}
        stream = server.registry.get(str(args.get("app")), str(args.get("name")))
        if stream is None:
            return _answer(404, error="no such stream")
        label = f"{stream.app}/{stream.name}"
        if action == "kick":
            source = stream.source
            if source is None:
                return _answer(404, error=f"{label} has no publisher")
            logger.warning(
                "[%d %s] publisher of %s kicked through the HTTP API",
                source.session_id,
                source.remote,
                label,
            )
            source.stop("kicked through the HTTP API")
            return _answer(200, kicked=source.session_id)
        if action == "record_POST":
            if not stream.is_live:
                return _answer(409, error=f"{label} is not live")
            if server.config.record_dir is None:
                return _answer(409, error="recording is not configured (record_dir)")
            recorder = server.recording.start_recording(stream)
            if recorder is None:
                return _answer(500, error="cannot create the recording file")
            path, size = str(recorder.path), recorder.bytes_written
            return _answer(200, recording={"path": path, "bytes": size})
        if action == "record_DELETE":
            recorder = server.recording.stop_recording(stream)
            if recorder is None:
                return _answer(404, error=f"{label} is not being recorded")
            path, size = str(recorder.path), recorder.bytes_written
            return _answer(200, stopped={"path": path, "bytes": size})
        return _answer(404, error=f"unknown action {action}")

    # -- every second ---------------------------------------------------------------------

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            self._sample_links()
            now = loop.time()
            # A link that took a stream over has no pull service to stop it when idle.
            for key, link in list(self._handovers.items()):
                stream = link.stream
                if stream.source is not link or stream.player_count:
                    self._idle_since.pop(key, None)
                    continue
                since = self._idle_since.setdefault(key, now)
                if now - since > LINK_IDLE_S:
                    link.stop("no players")

    def _sample_links(self) -> None:
        current: dict[Output, int] = {}
        rates: dict[StreamKey, int] = {}
        for conn in self.links.connections:
            for play in conn.playing.values():
                player = play.player
                current[player] = player.bytes_sent
                sent = max(0, player.bytes_sent - self._last_sent.get(player, 0))
                rates[play.stream.key] = rates.get(play.stream.key, 0) + sent * 8
        self._last_sent = current
        self._rates = rates

    # -- draining -----------------------------------------------------------------------

    async def drain(self, deadline_s: float) -> None:
        """A newer generation took over: stop accepting, move the publishers that can
        move, stop when no player is left (or at ``deadline_s``).

        Args:
            deadline_s: the longest drain (seconds).
        """
        self.draining = True
        server = self.server
        server.stop_accepting()
        http = self.http
        if http is not None:
            await http.stop_accepting()
        asked = 0
        for conn in list(server.connections):
            session = conn.session
            if not conn.publishing or CapsExMask.RECONNECT not in session.peer_caps_ex:
                continue
            for publish in conn.publishing.values():
                stream = publish.stream
                if stream.source is publish and stream.successor is None:
                    link = self._handover(stream)
                    owner = self.owners.get(stream.key)
                    if owner is not None and owner != self.number:
                        link.point_to(unix_url(str(self.link_path_of(owner)), *stream.key))
            tc_url = session.connect_properties.get("tcUrl")
            # E-RTMP v2: the client reconnects to the tcUrl it used, where the new
            # generation listens on the same sockets.
            session.request_reconnect(
                tc_url=tc_url if isinstance(tc_url, str) and tc_url else None,
                description="The server is restarting.",
            )
            conn.flush()
            asked += 1
        logger.info(
            "draining: stopped accepting; %d publisher(s) asked to reconnect; exiting when "
            "no player is left or in %g s",
            asked,
            deadline_s,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while loop.time() < deadline:
            await asyncio.sleep(0.25)
            if not self._busy():
                logger.info("draining: no player left")
                break
        else:
            logger.warning("draining: deadline reached, closing the remaining connections")
        self._stop_server()

    def _busy(self) -> bool:
        now = asyncio.get_running_loop().time()
        for conn in self.server.connections:
            if conn.playing or conn.publishing or now - conn.last_rx < IDLE_GRACE_S:
                return True
        http = self.http
        if http is not None and http.viewers:
            return True
        return any(conn.playing for conn in self.links.connections)


def _answer(status: int, **body: Any) -> dict[str, Any]:
    return {"status": status, "body": body}


def _json_ready(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# -- the process ---------------------------------------------------------------------------------


async def run_worker(spec: dict[str, Any], config: ServerConfig) -> int:
    """Run one worker: the server on the supervisor's sockets until stopped or drained.

    Args:
        spec: what the supervisor said (number, generation, file descriptors, paths).
        config: the loaded configuration.

    Returns:
        The exit status.
    """
    number = int(spec["number"])
    # Session ids are unique across workers: the worker number in the high bits.
    number_sessions_from((number << 32) + 1)
    channel = await Channel.over(socket.socket(fileno=int(spec["control_fd"])))
    handoff = socket.socket(fileno=int(spec["handoff_fd"])) if "handoff_fd" in spec else None
    hello = await channel.receive()
    server = RTMPServer(config, config_path=spec["config_path"], config_overrides=spec["overrides"])
    server.listen_sockets = {
        (str(kind), str(item)): socket.socket(fileno=int(fd)) for kind, item, fd in spec["sockets"]
    }
    worker = WorkerComponent(
        server,
        channel,
        number=number,
        generation=int(spec["generation"]),
        link_path=Path(spec["link_path"]),
        handoff=handoff,
    )
    worker.load_directory(hello)
    server.components.append(worker)
    channel.handler = worker.handle
    reader = asyncio.get_running_loop().create_task(channel.run())
    reader.add_done_callback(lambda _: worker.supervisor_gone())
    try:
        await server.serve_forever()
    finally:
        reader.cancel()
        channel.close()
    return 0
