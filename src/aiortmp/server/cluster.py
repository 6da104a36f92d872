"""The cluster: origins and edges on one stream directory kept in Redis (docs/cluster.md).

Configuration (``aiortmp.toml``, the same on every node but ``node_url``)::

    [cluster]
    redis = "redis://10.0.0.5:6379/0"
    node_url = "rtmp://10.0.0.1:1935"   # how the other nodes reach this one
    secret = "a long random string"     # signs node-to-node pulls
    ttl_s = 10                          # a dead node's claims expire after this long

What is kept in Redis (``prefix`` is ``aiortmp`` unless configured)::

    aiortmp:stream:<app>/<name>   the node_url of the stream's origin      PX ttl_s
    aiortmp:node:<node_url>       the node's load as JSON (heartbeat)      PX ttl_s
    aiortmp:events                pub/sub: {"event": "publish" | "unpublish",
                                            "app", "name", "node"}

(``<app>`` and ``<name>`` are percent-encoded, so a ``/`` in a name cannot be mistaken.)

- **Claims.** A publish claims its name with a compare-and-set script (set it if nobody
  holds it or this node does, with an expiry of ``ttl_s``: ``SET NX PX`` that lets the
  owner renew); when another node holds it, the publish is refused with
  ``NetStream.Publish.BadName``. A keep-alive task renews the node's claims every
  ``ttl_s / 3`` while their streams are live, and ``unpublish`` deletes the claim (only if
  it is still this node's). Any source but a pull claims: RTMP publishers through the
  publish policy, other sources when their ``publish`` event comes. This is the
  single-instance lock of the Redis documentation ("Distributed Locks with Redis",
  "Correct Implementation with a Single Instance": ``SET key value NX PX ttl``, and "remove
  the key only if it exists and the value stored at the key is exactly the one I expect"),
  with the node's URL as the value.
- **The directory.** Every node mirrors the claims in memory: a full read every
  ``ttl_s / 3`` and the ``publish`` / ``unpublish`` messages in between.
  :class:`ClusterLocator` answers the pull service from that mirror, so a play of a
  name that is not live here pulls it from its origin (one pull per stream per node,
  GOP cache, stopped ``idle_timeout_s`` after its last player). A player waiting for a
  name that is live nowhere is served as soon as a ``publish`` message (or the next full
  read) names its origin.
- **Node-to-node pulls** carry ``?cluster_expires=<unix s>&cluster_token=<hex>``, the
  HMAC-SHA256 of ``"aiortmp-cluster/<app>/<name>:<expires>"`` with ``secret``
  (:func:`~aiortmp.server.auth.sign_token` over the app ``aiortmp-cluster/<app>``). A play
  that carries either parameter is an internal pull: with a valid token it is let in
  without asking the other play rules (the edge asked them for its own players), without
  one it is refused (``NetStream.Play.Failed``). A play without them is an ordinary
  player, and every play rule applies to it.
- **Failures.** A node that dies stops renewing: its claims expire after at most
  ``ttl_s``, a publish on another node takes the name over, and the edges follow the
  directory to the new origin. When Redis is unreachable the node logs it once, keeps
  serving its local streams and accepts local publishes (their names cannot be checked);
  when Redis answers again every claim is re-asserted. If another node took a name
  meanwhile, the directory keeps that node, and this one logs the conflict and keeps
  trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from aiortmp.errors import ConfigError
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import Output, StreamKey
from aiortmp.sources.pull import PullService, Upstream

from .access import ALLOW, AccessControl, Decision, Request
from .auth import sign_token

if TYPE_CHECKING:
    from .config import ClusterConfig, ServerConfig

__all__ = [
    "EXPIRES_PARAM",
    "TOKEN_PARAM",
    "ClusterLocator",
    "ClusterService",
    "NodeLoad",
    "check_pull_token",
    "is_node_url",
    "pull_query",
    "sign_pull",
]

logger = logging.getLogger("aiortmp.cluster")

#: The query parameters of a node-to-node pull.
TOKEN_PARAM = "cluster_token"
EXPIRES_PARAM = "cluster_expires"

# What the HMAC of a pull token signs is told apart from a player's token (auth.py's
# TokenPolicy), so that a secret used for both cannot turn one into the other.
_TOKEN_DOMAIN = "aiortmp-cluster/"
_MAX_QUERY_FIELDS = 64

# Set the claim if nobody holds it or this node does; answer the holder.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return owner
"""
# Delete the claim only if this node still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_REDIS_ERRORS = (RedisError, OSError)


def _stop_if_cancelled() -> None:
    """Raise CancelledError if the running task is being cancelled: a Redis command
    cancelled while its own read timeout expires may surface as a Redis error instead,
    and the loops below would then go on forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# -- tokens ----------------------------------------------------------------------------------


def sign_pull(secret: str, app: str, name: str, expires: int) -> str:
    """The token of a node-to-node pull of ``app/name`` valid until ``expires``.

    ``hex(HMAC-SHA256(secret, "aiortmp-cluster/<app>/<name>:<expires>"))``, that is
    :func:`~aiortmp.server.auth.sign_token` with the app ``aiortmp-cluster/<app>``.

    Args:
        secret: the cluster's ``secret``.
        app: the application name.
        name: the stream name, without the query string.
        expires: the expiry, in Unix seconds.

    Returns:
        64 lowercase hex digits.
    """
    return sign_token(secret, _TOKEN_DOMAIN + app, name, expires)


def pull_query(secret: str, app: str, name: str, expires: int) -> str:
    """The query string (without ``?``) a node adds to its pull of ``app/name``.

    Args:
        secret: the cluster's ``secret``.
        app: the application name.
        name: the stream name.
        expires: the expiry, in Unix seconds.

    Returns:
        ``cluster_expires=<expires>&cluster_token=<hex>``.
    """
    token = sign_pull(secret, app, name, expires)
    return urllib.parse.urlencode({EXPIRES_PARAM: expires, TOKEN_PARAM: token})


def check_pull_token(secret: str, request: Request, now_s: float) -> Decision | None:
    """Decide on a play that may be a node-to-node pull.

    Args:
        secret: the cluster's ``secret``.
        request: the play request.
        now_s: the wall-clock time, Unix seconds.

    Returns:
        None if the request carries neither ``cluster_token`` nor ``cluster_expires`` (an
        ordinary player); a final yes for a valid, unexpired token; a denial otherwise.
    """
    query = request.query
    if TOKEN_PARAM not in query and EXPIRES_PARAM not in query:
        return None
    try:
        parsed = urllib.parse.parse_qs(
            query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
        )
    except ValueError:
        return Decision(allowed=False, reason="malformed query string")
    if TOKEN_PARAM not in parsed and EXPIRES_PARAM not in parsed:
        return None
    token = parsed.get(TOKEN_PARAM, [""])[0].lower()
    try:
        expires = int(parsed.get(EXPIRES_PARAM, [""])[0])
    except ValueError:
        return Decision(allowed=False, reason="invalid cluster token")
    expected = sign_pull(secret, request.app, request.name, expires)
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        return Decision(allowed=False, reason="invalid cluster token")
    if expires < now_s:
        return Decision(allowed=False, reason="cluster token expired")
    return Decision(allowed=True, final=True)


def is_node_url(text: object) -> bool:
    """Whether ``text`` looks like a ``node_url`` (``rtmp[s]://HOST[:PORT]``): what Redis
    says is checked before an edge pulls from it.

    Args:
        text: a value read from Redis.

    Returns:
        True for an RTMP URL without path, query or credentials.
    """
    if not isinstance(text, str):
        return False
    scheme, sep, rest = text.partition("://")
    return (
        bool(sep)
        and scheme in ("rtmp", "rtmps")
        and bool(rest)
        and not any(c in rest for c in "/?#@ ")
    )


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeLoad:
    """What a node says about itself in its heartbeat.

    Attributes:
        node: its ``node_url``.
        connections: open RTMP connections.
        players: players of every protocol (edge pulls of its streams included).
        streams: live streams (published and pulled).
        bitrate_in_bps: media received, bits per second.
        bitrate_out_bps: media sent to players, bits per second.
        heartbeat_unix_s: when it was written (the node's clock, Unix seconds).
    """

    node: str
    connections: int
    players: int
    streams: int
    bitrate_in_bps: int
    bitrate_out_bps: int
    heartbeat_unix_s: float

    def to_json(self) -> str:
        """The JSON text stored in Redis."""
        return json.dumps(
            {
                "node": self.node,
                "connections": self.connections,
                "players": self.players,
                "streams": self.streams,
                "bitrate_in_bps": self.bitrate_in_bps,
                "bitrate_out_bps": self.bitrate_out_bps,
                "heartbeat_unix_s": self.heartbeat_unix_s,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> NodeLoad | None:
        """Parse a heartbeat; None if it is not one (another version, a stray key)."""
        try:
            data = json.loads(text)
            return cls(
                node=str(data["node"]),
                connections=int(data["connections"]),
                players=int(data["players"]),
                streams=int(data["streams"]),
                bitrate_in_bps=int(data["bitrate_in_bps"]),
                bitrate_out_bps=int(data["bitrate_out_bps"]),
                heartbeat_unix_s=float(data["heartbeat_unix_s"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(kw_only=True, slots=True)
class _Claim:
    """A name this node claimed (or means to claim when Redis answers)."""

    since_s: float  # monotonic
    live: bool = False
    confirmed: bool = False  # Redis said yes at least once
    conflict: str | None = None  # the node Redis names instead of us


# -- the locator -------------------------------------------------------------------------------


class ClusterLocator:
    """The pull service's :class:`~aiortmp.sources.pull.Locator` for the directory: a name
    claimed by another node is pulled from ``<node_url>/<app>/<name>?<signed token>``.

    Args:
        service: the cluster component (its directory mirror and settings).
    """

    def __init__(self, service: ClusterService) -> None:
        self.service = service

    def locate(self, app: str, name: str) -> Upstream | None:
        """Where ``app/name`` is published, if on another node.

        Args:
            app: the application name.
            name: the stream name.

        Returns:
            The origin's URL with a fresh token, or None (unknown, or published here).
        """
        service = self.service
        owner = service.directory.get((app, name))
        if owner is None or owner == service.node:
            return None
        config = service.config
        expires = int(time.time() + config.token_lifetime_s)
        query = pull_query(service.secret, app, name, expires)
        path = f"{urllib.parse.quote(app, safe='')}/{urllib.parse.quote(name)}"
        return Upstream(url=f"{owner}/{path}?{query}", idle_timeout_s=config.idle_timeout_s)


# -- policies ----------------------------------------------------------------------------------


class _PullGate:
    """Play: a node-to-node pull needs a valid token and then skips the other play rules.
    Installed first."""

    def __init__(self, service: ClusterService) -> None:
        self.service = service

    async def check(self, request: Request) -> Decision:
        if request.action != "play":
            return ALLOW
        service = self.service
        decision = check_pull_token(service.secret, request, time.time())
        if decision is None or not decision.allowed:
            return ALLOW if decision is None else decision
        return service.admit_link(request)

    def __repr__(self) -> str:
        return "ClusterPullGate()"


class _ClaimPolicy:
    """Publish: claim the name in the cluster; refused if another node holds it. Installed
    after the other publish rules (a refused publisher claims nothing) and before the
    pull service's yield-to-a-local-publisher policy (a refused publish stops no pull)."""

    def __init__(self, service: ClusterService) -> None:
        self.service = service

    async def check(self, request: Request) -> Decision:
        if request.action != "publish":
            return ALLOW
        return await self.service.claim(request.app, request.name)

    def __repr__(self) -> str:
        return "ClusterClaimPolicy()"


# -- the component -----------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class _Meter:
    """Bytes sent to players between two heartbeats."""

    last_sent: dict[Output, int] = field(default_factory=dict)
    last_s: float = 0.0

    def bitrate_out_bps(self, registry: Registry, now_s: float) -> int:
        current: dict[Output, int] = {}
        sent = 0
        for stream in registry:
            for player in stream.players:
                total = getattr(player, "bytes_sent", 0)
                if not isinstance(total, int):
                    continue
                current[player] = total
                sent += max(0, total - self.last_sent.get(player, 0))
        elapsed = now_s - self.last_s
        self.last_sent, self.last_s = current, now_s
        return int(sent * 8 / elapsed) if elapsed > 0 else 0


def _safe_redis_url(url: str) -> str:
    """``scheme://host:port/db`` without credentials, for logs."""
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


class ClusterService:
    """The cluster component: claims, the directory mirror, node-to-node pulls, heartbeats.

    Args:
        registry: the streams.
        bus: ``publish`` / ``unpublish`` events come from here.
        access: where the pull gate (first) and the claim policy (last) are installed.
        pulls: the pull service; the directory becomes one of its locators.
        config: the ``[cluster]`` settings (``redis`` set).
        addresses: the bound plain-RTMP addresses, for the default ``node_url``.
        connections: the number of open RTMP connections (for the heartbeat).

    Attributes:
        node: this node's ``node_url`` (set by :meth:`start`).
        directory: the mirror of the claims, ``(app, name)`` → origin ``node_url``.
        claims: the names this node claimed.
        reachable: False while Redis does not answer.
        locator: the :class:`ClusterLocator` given to the pull service.
    """

    def __init__(
        self,
        registry: Registry,
        bus: EventBus,
        access: AccessControl,
        pulls: PullService,
        config: ClusterConfig,
        *,
        addresses: Callable[[], Sequence[tuple[str, int]]],
        connections: Callable[[], int],
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.access = access
        self.pulls = pulls
        self.config = config
        self._addresses = addresses
        self._connections = connections
        self.node = config.node_url or ""
        self.directory: dict[StreamKey, str] = {}
        self.claims: dict[StreamKey, _Claim] = {}
        self.reachable = True
        self.locator = ClusterLocator(self)
        self._client: aioredis.Redis | None = None
        self._claim_script: Any = None
        self._release_script: Any = None
        self._gate = _PullGate(self)
        self._claim_policy = _ClaimPolicy(self)
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._writes = asyncio.Lock()  # claims and releases reach Redis in event order
        self._wake = asyncio.Event()
        self._meter = _Meter()
        self._nodes: dict[str, NodeLoad] = {}
        self._links: set[tuple[int, StreamKey]] = set()  # (session id, stream) of node pulls

    # -- settings ---------------------------------------------------------------------------

    @property
    def secret(self) -> str:
        """The cluster secret (validated non-empty when ``redis`` is set)."""
        secret = self.config.secret
        return secret.get_secret_value() if secret is not None else ""

    @property
    def ttl_ms(self) -> int:
        """The claim and heartbeat expiry, milliseconds."""
        return int(self.config.ttl_s * 1000)

    def _key(self, kind: str, *parts: str) -> str:
        quoted = "/".join(urllib.parse.quote(p, safe="") for p in parts)
        return f"{self.config.prefix}:{kind}:{quoted}"

    def _stream_key(self, key: StreamKey) -> str:
        return self._key("stream", *key)

    @property
    def _channel(self) -> str:
        return f"{self.config.prefix}:events"

    # -- Component --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (lazily: an unreachable Redis is logged, not fatal), install the
        policies and the locator, and start the keep-alive and listener tasks.

        Raises:
            ConfigError: no ``node_url`` and no address to derive it from.
        """
        config = self.config
        assert config.redis is not None
        if not self.node:
            self.node = self._default_node_url()
        timeout_s = config.redis_timeout_s
        self._client = aioredis.from_url(
            config.redis,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # One immediate retry on a fresh connection (the pooled one may predate a Redis
            # restart); the keep-alive loop is the retry after that.
            retry=Retry(NoBackoff(), 1),
        )
        self._claim_script = self._client.register_script(_CLAIM)
        self._release_script = self._client.register_script(_RELEASE)
        policies = self.access.policies
        policies.insert(0, self._gate)
        policies.append(self._claim_policy)
        self.pulls.locators.append(self.locator)
        self._unsubscribe = self.bus.subscribe(self._on_event)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._keep_alive(), name="cluster keep-alive"),
            loop.create_task(self._listen(), name="cluster listener"),
        ]
        logger.info(
            "cluster node %s on %s (ttl %gs)",
            self.node,
            _safe_redis_url(config.redis),
            config.ttl_s,
        )

    async def stop(self) -> None:
        """Release this node's claims and heartbeat (best effort) and disconnect."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for policy in (self._gate, self._claim_policy):
            if policy in self.access.policies:
                self.access.policies.remove(policy)
        if self.locator in self.pulls.locators:
            self.pulls.locators.remove(self.locator)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.config.redis_timeout_s)
            if pending:
                logger.warning("cluster: %d tasks did not stop", len(pending))
        self._tasks = []
        if self._background:
            await asyncio.wait(self._background, timeout=self.config.redis_timeout_s)
        client, self._client = self._client, None
        if client is None:
            return
        if self.reachable:
            try:
                for key in list(self.claims):
                    await self._release_script(keys=[self._stream_key(key)], args=[self.node])
                await client.delete(self._key("node", self.node))
            except _REDIS_ERRORS as exc:
                logger.warning("cluster: claims not released on stop: %s", _error_text(exc))
        self.claims.clear()
        await client.aclose()

    def reload(self, config: ServerConfig) -> None:
        """Take the new ``secret``, ``ttl_s`` and timeouts; ``redis``, ``node_url`` and
        ``prefix`` need a restart. The pull gate goes back to the front of the policies
        (the auth component puts its own there on reload)."""
        new = config.cluster
        old = self.config
        if (new.redis, new.prefix) != (old.redis, old.prefix) or (
            new.node_url is not None and new.node_url != self.node
        ):
            logger.warning("cluster: redis, node_url and prefix change only on a restart")
            new = new.model_copy(
                update={"redis": old.redis, "prefix": old.prefix, "node_url": old.node_url}
            )
        if new.redis is None or new.secret is None:
            logger.warning("cluster: [cluster] cannot be turned off without a restart")
            return
        self.config = new
        policies = self.access.policies
        if self._gate in policies:
            policies.remove(self._gate)
            policies.insert(0, self._gate)

    def _default_node_url(self) -> str:
        for host, port in self._addresses():
            if host in ("0.0.0.0", "::", ""):
                break
            return f"rtmp://[{host}]:{port}" if ":" in host else f"rtmp://{host}:{port}"
        raise ConfigError(
            "cluster.node_url is needed: the first RTMP listen address is a wildcard or none"
        )

    # -- links (other nodes pulling from this one) ----------------------------------------

    def admit_link(self, request: Request) -> Decision:
        """A node-to-node pull with a valid token: let it in, unless the directory puts
        the stream on a third node (the puller then asks its own directory again, rather
        than this node pulling it to pass it on).

        Args:
            request: the play request (token checked).

        Returns:
            A final yes, or a denial (``NetStream.Play.Failed``).
        """
        key = (request.app, request.name)
        stream = self.registry.get(*key)
        owner = self.directory.get(key)
        if (stream is None or not stream.is_live) and owner is not None and owner != self.node:
            return Decision(allowed=False, reason=f"{key[0]}/{key[1]} is on another node")
        self._links.add((request.session_id, key))
        return Decision(allowed=True, final=True)

    def links(self, key: StreamKey) -> int:
        """How many other nodes pull ``key`` from this one."""
        return sum(1 for _, linked in self._links if linked == key)

    # -- claims -----------------------------------------------------------------------------

    async def claim(self, app: str, name: str) -> Decision:
        """Claim ``app/name`` for a local publish (the claim policy).

        Args:
            app: the application name.
            name: the stream name.

        Returns:
            A yes if this node holds the name now (or Redis cannot be asked), a denial
            (``NetStream.Publish.BadName``) if another node does.
        """
        key = (app, name)
        if key in self.claims:
            return ALLOW  # ours already: the connection refuses a second local publisher
        if not self.reachable:
            # Availability first: serve it here; the keep-alive claims it when Redis
            # answers (and logs a conflict if another node got it meanwhile).
            self.claims[key] = _Claim(since_s=time.monotonic())
            return ALLOW
        async with self._writes:
            if key in self.claims:
                return ALLOW
            try:
                owner = await self._claim_script(
                    keys=[self._stream_key(key)], args=[self.node, self.ttl_ms]
                )
            except _REDIS_ERRORS as exc:
                self._unreachable(exc)
                self.claims[key] = _Claim(since_s=time.monotonic())
                return ALLOW
            self._reached()
        if owner != self.node:
            if is_node_url(owner):
                self.directory[key] = owner
            logger.info("cluster: publish %s/%s refused: published on %s", app, name, owner)
            return Decision(allowed=False, reason=f"{app}/{name} is published on another node")
        self.claims[key] = _Claim(since_s=time.monotonic(), confirmed=True)
        self.directory[key] = self.node
        return ALLOW

    async def _assert(self, key: StreamKey, claim: _Claim) -> None:
        """Claim or renew ``key`` (keep-alive, sources that skip the claim policy)."""
        async with self._writes:
            if self.claims.get(key) is not claim:
                return  # released meanwhile
            owner = str(
                await self._claim_script(
                    keys=[self._stream_key(key)], args=[self.node, self.ttl_ms]
                )
            )
        if owner == self.node:
            if claim.conflict is not None:
                logger.info("cluster: %s/%s is this node's again", *key)
            elif not claim.confirmed:
                logger.info("cluster: claim of %s/%s asserted", *key)
                if claim.live:
                    self._spawn(self._announce("publish", key))
            claim.conflict = None
            claim.confirmed = True
            self.directory[key] = self.node
        else:
            if claim.conflict != owner:
                logger.warning(
                    "cluster: %s/%s is live here but %s holds its claim; the edges follow %s",
                    *key,
                    owner,
                    owner,
                )
            claim.conflict = owner
            if is_node_url(owner):
                self.directory[key] = owner

    async def _release(self, key: StreamKey) -> None:
        async with self._writes:
            if key in self.claims:
                return  # claimed again meanwhile
            try:
                released = await self._release_script(
                    keys=[self._stream_key(key)], args=[self.node]
                )
            except _REDIS_ERRORS as exc:
                # It expires by itself within ttl_s.
                self._unreachable(exc)
                return
            self._reached()
        if self.directory.get(key) == self.node:
            del self.directory[key]
        if released:
            await self._announce("unpublish", key)

    async def _announce(self, event: str, key: StreamKey) -> None:
        if self._client is None:
            return
        message = json.dumps({"event": event, "app": key[0], "name": key[1], "node": self.node})
        try:
            await self._client.publish(self._channel, message)
        except _REDIS_ERRORS as exc:
            self._unreachable(exc)

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, event: ServerEvent) -> None:
        kind = event.kind
        if kind is EventKind.STOP or kind is EventKind.DISCONNECT:
            if self._links:
                session = event.session_id
                self._links = {
                    link
                    for link in self._links
                    if link[0] != session
                    or (kind is EventKind.STOP and link[1] != (event.app, event.name))
                }
            return
        if kind is not EventKind.PUBLISH and kind is not EventKind.UNPUBLISH:
            return
        if event.details.get("source") == "pull":
            return  # a copy of a stream whose origin is elsewhere
        key = (event.app, event.name)
        if kind is EventKind.PUBLISH:
            claim = self.claims.get(key)
            if claim is None:  # a source that did not ask the claim policy
                claim = self.claims[key] = _Claim(since_s=time.monotonic(), live=True)
                self._spawn(self._assert_quietly(key, claim))
                return
            claim.live = True
            if claim.confirmed:
                self._spawn(self._announce("publish", key))
        elif self.claims.pop(key, None) is not None:
            self._spawn(self._release(key))

    async def _assert_quietly(self, key: StreamKey, claim: _Claim) -> None:
        try:
            await self._assert(key, claim)
        except _REDIS_ERRORS as exc:
            self._unreachable(exc)
        else:
            self._reached()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- reachability -----------------------------------------------------------------------

    def _unreachable(self, exc: BaseException) -> None:
        if self.reachable:
            self.reachable = False
            logger.warning(
                "cluster: Redis %s unreachable (%s): serving the local streams; claims are "
                "re-asserted when it answers",
                _safe_redis_url(self.config.redis or ""),
                _error_text(exc),
            )

    def _reached(self) -> None:
        if not self.reachable:
            self.reachable = True
            logger.info("cluster: Redis answers again; re-asserting %d claims", len(self.claims))
            self._wake.set()

    # -- the keep-alive ---------------------------------------------------------------------

    async def _keep_alive(self) -> None:
        """Every ``ttl_s / 3``: heartbeat, renew (or re-assert) claims, read the directory."""
        while True:
            try:
                await self._heartbeat()
                self._reached()
                await self._renew()
                self._apply_directory(await self._read_directory())
            except _REDIS_ERRORS as exc:
                _stop_if_cancelled()
                self._unreachable(exc)
            _stop_if_cancelled()
            self._wake.clear()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the
            # cancellation of stop() when the event is set at the same moment.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.ttl_s / 3):
                    await self._wake.wait()

    def load(self) -> NodeLoad:
        """This node's load now (what the heartbeat writes)."""
        live = self.registry.live()
        now = time.monotonic()
        return NodeLoad(
            node=self.node,
            connections=self._connections(),
            players=sum(s.player_count for s in self.registry),
            streams=len(live),
            bitrate_in_bps=sum(s.bitrate_bps for s in live),
            bitrate_out_bps=self._meter.bitrate_out_bps(self.registry, now),
            heartbeat_unix_s=time.time(),
        )

    async def _heartbeat(self) -> None:
        assert self._client is not None
        load = self.load()
        await self._client.set(self._key("node", self.node), load.to_json(), px=self.ttl_ms)
        self._nodes[self.node] = load

    async def _renew(self) -> None:
        now = time.monotonic()
        for key, claim in list(self.claims.items()):
            if not claim.live and now - claim.since_s > self.config.ttl_s:
                # Claimed for a publish that never started (the client left, another
                # policy said no): let it go.
                del self.claims[key]
                await self._release(key)
            else:
                await self._assert(key, claim)

    async def _scan(self, kind: str) -> dict[str, str]:
        """Every ``<prefix>:<kind>:*`` key and its value."""
        assert self._client is not None
        keys = [key async for key in self._client.scan_iter(match=self._key(kind) + "*", count=500)]
        if not keys:
            return {}
        values = await self._client.mget(keys)
        return {str(k): str(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def _read_directory(self) -> dict[StreamKey, str]:
        prefix = self._key("stream")
        directory: dict[StreamKey, str] = {}
        for redis_key, owner in (await self._scan("stream")).items():
            app, sep, name = redis_key[len(prefix) :].partition("/")
            if sep and is_node_url(owner):
                directory[(urllib.parse.unquote(app), urllib.parse.unquote(name))] = owner
        return directory

    def _apply_directory(self, directory: dict[StreamKey, str]) -> None:
        """Take a full read of the claims; follow what moved, drop pulls of what is gone."""
        old, self.directory = self.directory, directory
        for key, owner in directory.items():
            if owner != self.node and old.get(key) != owner:
                self._moved(key, owner)
        for key, owner in old.items():
            if key not in directory and owner != self.node:
                self._gone(key)

    # -- following the directory ------------------------------------------------------------

    def _cluster_puller_elsewhere(self, key: StreamKey, owner: str | None) -> bool:
        """Whether a cluster pull of ``key`` runs here from another node than ``owner``."""
        puller = self.pulls.pullers.get(key)
        return (
            puller is not None
            and f"{TOKEN_PARAM}=" in puller.url
            and (owner is None or not puller.url.startswith(owner + "/"))
        )

    def _moved(self, key: StreamKey, owner: str) -> None:
        """``key`` went live on ``owner``: pulls of it from elsewhere stop, and players
        waiting here pull it from ``owner`` (other nodes' links waiting here do not count:
        they follow the directory themselves)."""
        if self._cluster_puller_elsewhere(key, owner):
            puller = self.pulls.pullers[key]
            logger.info("cluster: %s/%s moved to %s, pulling from there", *key, owner)
            self.pulls.finished(puller)
            puller.stop("the stream moved to another node")
        stream = self.registry.get(*key)
        if stream is not None and stream.player_count > self.links(key):
            self.pulls.started_elsewhere(*key)

    def _gone(self, key: StreamKey) -> None:
        """``key``'s claim is gone: a pull that cannot reach its dead origin stops (one
        that is connected waits there for a republish)."""
        puller = self.pulls.pullers.get(key)
        if (
            puller is not None
            and self._cluster_puller_elsewhere(key, None)
            and puller.connected_since is None
        ):
            logger.info("cluster: %s/%s is published nowhere, pull stops", *key)
            self.pulls.finished(puller)
            puller.stop("the stream is published nowhere")

    # -- the listener -----------------------------------------------------------------------

    async def _listen(self) -> None:
        """Follow ``publish`` / ``unpublish`` messages; resubscribe after an outage."""
        assert self._client is not None
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._reached()
                # What happened while we were not listening.
                self._apply_directory(await self._read_directory())
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    _stop_if_cancelled()
                    if message is not None and message.get("type") == "message":
                        self._on_message(message.get("data"))
            except _REDIS_ERRORS as exc:
                _stop_if_cancelled()
                self._unreachable(exc)
            finally:
                with contextlib.suppress(*_REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            _stop_if_cancelled()
            await asyncio.sleep(self.config.ttl_s / 3)

    def _on_message(self, data: object) -> None:
        try:
            message = json.loads(data) if isinstance(data, str | bytes) else {}
            fields = [message.get(k) for k in ("event", "app", "name", "node")]
        except (ValueError, AttributeError):
            fields = []
        if len(fields) != 4 or not all(isinstance(v, str) for v in fields):
            logger.debug("cluster: ignoring message %r", data)
            return
        event, app, name, node = (str(v) for v in fields)
        if node == self.node or not is_node_url(node):
            return
        key = (app, name)
        if event == "publish":
            self.directory[key] = node
            self._moved(key, node)
        elif event == "unpublish" and self.directory.get(key) == node:
            del self.directory[key]

    # -- the API ----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The cluster as the API shows it (``GET /api/cluster``).

        Read from Redis; while it does not answer, the last known state, with ``"redis":
        "unreachable"``.

        Returns:
            ``{"node", "redis", "ttl_s", "streams": [{"app", "name", "origin", "here"}],
            "nodes": [{"node", "connections", "players", "streams", "bitrate_in_bps",
            "bitrate_out_bps", "heartbeat_age_s"}], "conflicts": [{"app", "name",
            "origin"}]}``, where ``here`` is ``"origin"``, ``"pulled"`` or None.
        """
        directory = self.directory
        if self._client is not None:
            try:
                directory = await self._read_directory()
                nodes = {}
                for text in (await self._scan("node")).values():
                    load = NodeLoad.from_json(text)
                    if load is not None:
                        nodes[load.node] = load
                self._nodes = nodes
                self._reached()
            except _REDIS_ERRORS as exc:
                self._unreachable(exc)
        now = time.time()
        streams = []
        for (app, name), origin in sorted(directory.items()):
            here = None
            if origin == self.node:
                here = "origin"
            elif self._cluster_puller_elsewhere((app, name), None):
                here = "pulled"
            streams.append({"app": app, "name": name, "origin": origin, "here": here})
        return {
            "node": self.node,
            "redis": "reachable" if self.reachable else "unreachable",
            "ttl_s": self.config.ttl_s,
            "streams": streams,
            "nodes": [
                {
                    "node": load.node,
                    "connections": load.connections,
                    "players": load.players,
                    "streams": load.streams,
                    "bitrate_in_bps": load.bitrate_in_bps,
                    "bitrate_out_bps": load.bitrate_out_bps,
                    "heartbeat_age_s": round(max(0.0, now - load.heartbeat_unix_s), 3),
                }
                for load in sorted(self._nodes.values(), key=lambda n: n.node)
            ],
            "conflicts": [
                {"app": app, "name": name, "origin": claim.conflict}
                for (app, name), claim in sorted(self.claims.items())
                if claim.conflict is not None
            ],
        }

    def __repr__(self) -> str:
        return f"ClusterService({self.node})"


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
