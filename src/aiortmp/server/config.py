"""Server configuration: a TOML file validated with pydantic, overridden by CLI flags.

Example ``aiortmp.toml``::

    listen = ["0.0.0.0:1935"]
    record_dir = "/var/lib/aiortmp/records"
    log_level = "info"

    [limits]
    max_message_size = 16777216
    handshake_timeout_s = 5

    [player]
    backlog_soft_bytes = 1048576

Recording, retention and VOD (docs/recording.md)::

    record_dir = "/var/lib/aiortmp/records"
    record_format = "mp4"            # fragmented MP4 ("flv" is the default)
    record_segment_s = 3600          # a new file at the first keyframe after an hour
    record_delete_after = "7d"       # retention: s, m, h, d, w (or a number of seconds)

    [apps.cctv]                      # per-application overrides of the record_* keys
    record_segment_s = 600
    record_max_total_bytes = 50_000_000_000

    [apps.scratch]
    record = false

    [[vod]]                          # rtmp://host/vod/dir/clip.mp4 plays DIR/dir/clip.mp4
    app = "vod"
    dir = "/var/lib/aiortmp/records/live"
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from aiortmp.errors import ConfigError
from aiortmp.hub.bus import EventKind

__all__ = [
    "AppConfig",
    "AppAuth",
    "AuthConfig",
    "AuthRule",
    "ClusterConfig",
    "ConfigError",
    "ExecHookConfig",
    "HLSConfig",
    "HTTPConfig",
    "HooksConfig",
    "Limits",
    "PlayerPolicy",
    "RelayConfig",
    "RelayPull",
    "RelayPush",
    "ServerConfig",
    "TLSConfig",
    "VodConfig",
    "WebhookConfig",
    "load_config",
    "parse_duration_s",
    "parse_host_port",
]


def parse_host_port(value: str, default_port: int = 1935) -> tuple[str, int]:
    """Parse ``HOST:PORT``, ``:PORT``, ``[v6]:PORT`` or ``HOST`` into ``(host, port)``.

    Raises:
        ValueError: the port is not an integer in 0..65535.
    """
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":")
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    elif ":" in value:  # bare IPv6 address
        host, port_text = value, ""
    else:
        host, port_text = value, ""
    port = int(port_text) if port_text else default_port
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return host or "0.0.0.0", port


_DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration_s(value: Any) -> float:
    """A duration in seconds from a number of seconds or a text like ``"7d"``,
    ``"12h"``, ``"1d12h"``, ``"90m"``, ``"30s"`` (units s, m, h, d, w).

    Raises:
        ValueError: anything else, or a negative number.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text and _DURATION.sub("", text) == "":
            return float(sum(float(n) * _DURATION_UNITS_S[u] for n, u in _DURATION.findall(text)))
        try:
            return parse_duration_s(float(text))
        except ValueError:
            pass
    raise ValueError(f'not a duration (use e.g. "7d", "12h", "30m" or seconds): {value!r}')


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Model):
    """Per-connection protocol limits (see the README's security section)."""

    max_message_size: int = Field(16 * 1024 * 1024, ge=1024, description="bytes")
    max_chunk_streams: int = Field(256, ge=8, description="distinct csids per connection")
    max_pending_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="bytes in partial messages"
    )
    max_streams_per_connection: int = Field(16, ge=1)
    max_amf_depth: int = Field(64, ge=4)
    handshake_timeout_s: float = Field(5.0, gt=0)
    idle_timeout_s: float = Field(60.0, gt=0, description="no bytes from a publisher/idle client")
    max_connections: int = Field(10_000, ge=1)
    max_connections_per_ip: int = Field(2_000, ge=1)
    max_output_bytes: int = Field(
        1024 * 1024, ge=64 * 1024, description="answers queued to a client that does not read"
    )


class PlayerPolicy(_Model):
    """What happens to a player that cannot keep up (bytes queued towards it)."""

    backlog_soft_bytes: int = Field(1024 * 1024, ge=0, description="start dropping non-key video")
    backlog_hard_bytes: int = Field(8 * 1024 * 1024, ge=1, description="disconnect")
    backlog_soft_ms: int = Field(2_000, ge=0, description="estimated media ms queued: drop")
    max_behind_s: float = Field(10.0, gt=0, description="disconnect after dropping this long")


class TLSConfig(_Model):
    """RTMPS listeners (RTMP over TLS). A listen address without a port uses 1936."""

    listen: list[str] = Field(default_factory=list)
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> TLSConfig:
        for item in self.listen:
            parse_host_port(item, 1936)
        if self.listen and (self.cert is None or self.key is None):
            raise ValueError("tls.listen needs tls.cert and tls.key")
        return self


class HTTPConfig(_Model):
    """The HTTP surface (API, metrics, HTTP-FLV, dashboard). An empty list disables it.

    Playback is public; the control routes (``/api``, ``/control``, ``/metrics``) answer
    ``Authorization: Bearer <api_token>`` when a token is set, else trusted clients only
    (docs/security.md, "The HTTP control surface").
    """

    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0:8080"])
    api_token: str | None = Field(
        None,
        description="bearer token required by /api, /control and /metrics from everyone "
        "(None: only trusted clients may use them)",
    )
    trust_loopback: bool = Field(
        True,
        description="without api_token, loopback clients are trusted (false: they count as "
        "remote, and the control routes answer nobody)",
    )
    flv: bool = Field(True, description="serve HTTP-FLV and WebSocket-FLV at /{app}/{name}.flv")
    dashboard: bool = Field(True, description="serve the dashboard at /")
    metrics: bool = Field(True, description="serve Prometheus metrics at /metrics")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_host_port(item, 8080)
        return value


class HLSConfig(_Model):
    """``[hls]``: HLS and Low-Latency HLS at ``/{app}/{name}/index.m3u8`` (docs/http.md).

    An output starts on a stream's first HLS request and stops ``idle_timeout_s`` after
    the last one (``always_on`` apps: from publish to unpublish). LL-HLS over fMP4 by
    default; ``?format=ts`` serves classic HLS over MPEG-TS.
    """

    enabled: bool = Field(True, description="serve HLS (needs the HTTP surface)")
    segment_target_s: float = Field(
        1.0, ge=0.2, le=30, description="segment duration to aim for (cut at keyframes)"
    )
    part_target_s: float = Field(0.2, ge=0.05, le=2, description="LL-HLS part duration")
    window_segments: int = Field(12, ge=3, le=1000, description="segments per playlist")
    max_stream_bytes: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024, description="segments held per stream and format"
    )
    queue_bytes: int = Field(
        16 * 1024 * 1024, ge=64 * 1024, description="an output that falls this far behind stops"
    )
    idle_timeout_s: float = Field(30.0, gt=0, description="stop an output unrequested this long")
    start_timeout_s: float = Field(
        10.0, gt=0, description="how long a first request waits for the first segment"
    )
    always_on: list[str] = Field(
        default_factory=list, description="apps whose streams run HLS from publish on"
    )
    directory: Path | None = Field(
        None, description="also write <app>/<name>/ playlists and segments here (classic HLS)"
    )
    viewer_timeout_s: float = Field(
        10.0, gt=0, description="a client counts as an HLS viewer this long after a request"
    )
    auth_cache_s: float = Field(
        10.0, ge=0, description="reuse a play authorization for the same client and query"
    )
    cors_origin: str = Field("*", description="Access-Control-Allow-Origin ('' for none)")

    @model_validator(mode="after")
    def _check(self) -> HLSConfig:
        if self.part_target_s >= self.segment_target_s:
            raise ValueError("part_target_s must be below segment_target_s")
        return self


def _check_rtmp_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("rtmp", "rtmps") or not rest.split("/", 1)[0]:
        raise ValueError(f"not an rtmp:// or rtmps:// URL: {value!r}")
    if "/" not in rest.strip("/"):
        raise ValueError(f"the URL needs an application: rtmp://host/app, got {value!r}")
    return value


class RelayPush(_Model):
    """``[[relay.push]]``: every stream published in ``app`` (or only ``stream``) is also
    published to ``url/<stream>`` (the query string of ``url``, if any, is kept at the end).
    """

    app: str
    url: str
    stream: str | None = Field(None, description="only this stream name (default: every one)")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_rtmp_url(value)


class RelayPull(_Model):
    """``[[relay.pull]]``: a play of ``app/<name>`` that is not published here pulls
    ``url/<name>``; the pull stops ``idle_timeout_s`` after its last player left. Names in
    ``static`` are pulled all the time.
    """

    app: str
    url: str
    static: list[str] = Field(default_factory=list, description="names always mirrored")
    idle_timeout_s: float = Field(10.0, ge=0, description="grace after the last player")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _check_rtmp_url(value)


class RelayConfig(_Model):
    """Relays: ``[[relay.push]]`` and ``[[relay.pull]]`` tables, and how they reconnect."""

    push: list[RelayPush] = Field(default_factory=list)
    pull: list[RelayPull] = Field(default_factory=list)
    reconnect_initial_s: float = Field(0.5, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(10.0, gt=0, description="reconnect delay cap (doubling)")
    timeout_s: float = Field(10.0, gt=0, description="per request to the remote server")
    push_queue_bytes: int = Field(
        4 * 1024 * 1024, ge=64 * 1024, description="per pushed stream; past it video is dropped"
    )


def _check_networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {item!r}") from exc
    return value


class AuthRule(_Model):
    """``[auth.apps.<app>.publish]`` / ``[auth.apps.<app>.play]``: who may do that.

    Every check that is configured must pass, in this order: ``deny``/``allow`` (client
    address), ``channel_keys`` (publish only), ``keys``/``stream_keys``/``keys_file``,
    ``token_secrets``, then ``callback``. An empty rule allows everything.
    """

    allow: list[str] = Field(
        default_factory=list, description="client addresses/networks allowed (empty: any)"
    )
    deny: list[str] = Field(default_factory=list, description="addresses/networks refused")
    keys: list[SecretStr] = Field(
        default_factory=list, description="stream keys valid for any stream name"
    )
    stream_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="stream name -> its own key"
    )
    keys_file: Path | None = Field(
        None, description="lines 'KEY' or 'NAME KEY' (# comments); re-read when it changes"
    )
    key_param: str = Field("key", min_length=1, description="query parameter carrying the key")
    token_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="HMAC-SHA256 secrets for ?expires=&token= (several: key rotation)",
    )
    channel_keys: bool = Field(
        False, description="publish: the stream name is a room's channel key (livego)"
    )
    callback: str | None = Field(
        None, description="POST JSON here; 2xx allows, anything else or a timeout denies"
    )
    callback_timeout_s: float = Field(5.0, gt=0)

    _check_allow = field_validator("allow", "deny")(_check_networks)

    @field_validator("callback")
    @classmethod
    def _check_callback(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/]+", value):
            raise ValueError(f"callback must be an http:// or https:// URL, got {value!r}")
        return value


class AppAuth(_Model):
    """``[auth.apps.<app>]``: the rules of one application (``"*"``: any other app)."""

    publish: AuthRule | None = None
    play: AuthRule | None = None


class AuthConfig(_Model):
    """Access control (see docs/security.md).

    Example::

        [auth]
        deny = ["203.0.113.0/24"]            # refused at connect, every app
        channel_keys_file = "/var/lib/aiortmp/channel-keys.json"

        [auth.apps.live.publish]
        keys = ["s3cret"]                    # rtmp://host/live/cam?key=s3cret

        [auth.apps.live.play]
        token_secrets = ["t0ps3cret"]        # rtmp://host/live/cam?expires=...&token=...
    """

    allow: list[str] = Field(
        default_factory=list, description="client networks allowed to connect (empty: any)"
    )
    deny: list[str] = Field(default_factory=list, description="networks refused at connect")
    apps: dict[str, AppAuth] = Field(default_factory=dict, description='by app name; "*": others')
    channel_keys_file: Path | None = Field(
        None, description="JSON file persisting the channel keys (None: memory only)"
    )

    _check_allow = field_validator("allow", "deny")(_check_networks)


#: The events a webhook gets when it does not list its own.
DEFAULT_WEBHOOK_EVENTS = (
    EventKind.CONNECT,
    EventKind.DISCONNECT,
    EventKind.PUBLISH,
    EventKind.UNPUBLISH,
    EventKind.PLAY,
    EventKind.STOP,
    EventKind.RECORD_DONE,
)


class WebhookConfig(_Model):
    """``[[hooks.webhook]]``: POST each event as JSON to ``url``, in order, off the media path.

    Each webhook has a bounded queue and one sender: a slow or dead receiver only fills its
    queue (then events are dropped and counted); media never waits on it.
    """

    url: str
    events: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS))
    timeout_s: float = Field(5.0, gt=0, description="per attempt")
    retries: int = Field(3, ge=0, description="attempts after the first one")
    backoff_s: float = Field(0.5, ge=0, description="delay before the first retry; doubles")
    queue_size: int = Field(1000, ge=1, description="events waiting; more are dropped")
    secret: str | None = Field(None, description="HMAC-SHA256 key for X-Aiortmp-Signature")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return value


class ExecHookConfig(_Model):
    """``[[hooks.exec]]``: run ``command`` on an event.

    ``on = "publish"`` runs it for as long as the stream is live (restarted with backoff if
    it exits, SIGTERM then SIGKILL on unpublish); any other event runs it once (killed after
    ``timeout_s``). ``{app}``, ``{name}``, ``{session_id}``, ``{remote}`` and the event's
    details (``{path}`` for record_done) are substituted in every argument.
    """

    on: EventKind = EventKind.PUBLISH
    command: list[str] = Field(min_length=1)
    app: str | None = Field(None, description="only streams of this app")
    name_regex: str | None = Field(None, description="only stream names matching (fullmatch)")
    restart_delay_s: float = Field(1.0, ge=0, description="first restart delay; doubles")
    restart_delay_max_s: float = Field(30.0, ge=0)
    stop_timeout_s: float = Field(5.0, gt=0, description="SIGTERM to SIGKILL")
    timeout_s: float = Field(300.0, gt=0, description="one-shot hooks are killed after this")

    @field_validator("name_regex")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class HooksConfig(_Model):
    """Event hooks: ``[[hooks.webhook]]`` and ``[[hooks.exec]]`` tables."""

    webhook: list[WebhookConfig] = Field(default_factory=list)
    exec: list[ExecHookConfig] = Field(default_factory=list)


RecordFormat = Literal["flv", "mp4"]


class AppConfig(_Model):
    """``[apps.<app>]``: settings of one application that differ from the top level.

    Every key is optional; a key not given takes the top-level value. The ``record_*``
    keys are the top-level ones (see :class:`ServerConfig`); ``record = false`` turns
    recording off for the app (``record_dir`` must be set for it to be on).
    """

    record: bool = True
    record_format: RecordFormat | None = None
    record_segment_s: float | None = Field(None, ge=0)
    record_max_bytes: int | None = Field(None, ge=0)
    record_delete_after: float | None = Field(None, ge=0)
    record_max_total_bytes: int | None = Field(None, ge=0)

    @field_validator("record_delete_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration_s(value)


class VodConfig(_Model):
    """``[[vod]]``: ``rtmp://HOST/<app>/<REL/PATH.flv>`` (or ``mp4:REL/PATH.mp4``) plays
    the file ``dir/REL/PATH`` on demand. Paths cannot leave ``dir`` (``..``, absolute
    paths and symlinks out of it are refused with ``NetStream.Play.StreamNotFound``).
    """

    app: str = Field(min_length=1)
    dir: Path
    max_lead_s: float = Field(
        30.0, gt=0, description="most media sent ahead of real time, whatever the client's buffer"
    )

    @field_validator("app")
    @classmethod
    def _check_app(cls, value: str) -> str:
        if "/" in value.strip("/") or not value.strip("/"):
            raise ValueError(f"an app name has no '/': {value!r}")
        return value.strip("/")


def _check_node_url(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.rstrip("/")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("rtmp", "rtmps") or not rest:
        raise ValueError(f"not an rtmp:// or rtmps:// URL: {value!r}")
    if "/" in rest or "?" in rest or "#" in rest or "@" in rest:
        raise ValueError(f"node_url is rtmp[s]://HOST[:PORT], without a path: {value!r}")
    return value


class ClusterConfig(_Model):
    """``[cluster]``: origins and edges sharing a stream directory in Redis (docs/cluster.md).

    A publish claims its name in Redis for the whole cluster; a play of a name that is not
    live here pulls it from the node that claimed it, with a token signed with ``secret``.
    Without ``redis`` the server is on its own.
    """

    redis: str | None = Field(
        None, description="redis://[:PASSWORD@]HOST[:PORT]/DB (rediss:// with TLS); None: off"
    )
    node_url: str | None = Field(
        None,
        description="rtmp[s]://HOST[:PORT] other nodes pull from (default: the first listen "
        "address, unless it is a wildcard)",
    )
    ttl_s: float = Field(10.0, ge=1.0, description="a claim expires this long after its node died")
    secret: SecretStr | None = Field(None, description="signs node-to-node pulls (same everywhere)")
    idle_timeout_s: float = Field(10.0, ge=0, description="an edge pull stops this long idle")
    token_lifetime_s: float = Field(
        300.0, ge=10, description="a pull token's validity (seconds; allows for clock skew)"
    )
    redis_timeout_s: float = Field(2.0, gt=0, description="per Redis command")
    prefix: str = Field("aiortmp", min_length=1, description="Redis key prefix of this cluster")

    _check_node = field_validator("node_url")(_check_node_url)

    @field_validator("redis")
    @classmethod
    def _check_redis(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"(rediss?|unix)://", value):
            raise ValueError(f"not a redis://, rediss:// or unix:// URL: {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> ClusterConfig:
        if self.redis is not None and (self.secret is None or not self.secret.get_secret_value()):
            raise ValueError("cluster.redis needs cluster.secret (it signs node-to-node pulls)")
        return self


class ServerConfig(_Model):
    """Everything ``aiortmp serve`` can be told; defaults give RTMP on 0.0.0.0:1935."""

    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0:1935"])
    record_dir: Path | None = None
    record_format: RecordFormat = Field(
        "flv", description='"flv", or "mp4" (fragmented MP4: a crash loses at most a second)'
    )
    record_segment_s: float = Field(
        0, ge=0, description="start a new file at the first keyframe after this long (0: never)"
    )
    record_max_bytes: int = Field(
        0, ge=0, description="start a new file at the first keyframe past this size (0: never)"
    )
    record_delete_after: float | None = Field(
        None, ge=0, description='delete recordings older than this ("7d", "12h"; None: never)'
    )
    record_max_total_bytes: int = Field(
        0, ge=0, description="per app: delete the oldest recordings above this total (0: never)"
    )
    apps: dict[str, AppConfig] = Field(
        default_factory=dict, description="per-application overrides (record_* keys)"
    )
    vod: list[VodConfig] = Field(default_factory=list, description="[[vod]] applications")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    chunk_size: int = Field(4096, ge=128, le=65536, description="outgoing chunk size, bytes")
    window_ack_size: int = Field(5_000_000, ge=1024, description="bytes")
    gop_cache: bool = True
    gop_cache_max_bytes: int = Field(8 * 1024 * 1024, ge=0, description="per stream")
    fanout_interval_ms: float = Field(
        20, ge=0, le=1000, description="coalesce publisher reads for up to this long (0: off)"
    )
    fanout_max_bytes: int = Field(
        128 * 1024, ge=1024, description="fan a coalesced batch out once it is this large"
    )
    fanout_max_writes_per_s: int = Field(
        200_000,
        ge=1000,
        description="with a large audience, hold batches longer so that delivering one "
        "stream takes at most this many writes per second",
    )
    fanout_max_interval_ms: float = Field(
        100, ge=0, le=1000, description="...but never longer than this"
    )
    limits: Limits = Field(default_factory=Limits)
    player: PlayerPolicy = Field(default_factory=PlayerPolicy)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    http: HTTPConfig = Field(default_factory=HTTPConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    hooks: HooksConfig = Field(default_factory=HooksConfig)
    hls: HLSConfig = Field(default_factory=HLSConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    workers: int | Literal["auto"] | None = Field(
        None,
        description="worker processes sharing the listeners and streams (docs/workers.md); "
        '"auto": one per core; None: one process, no supervisor',
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _check_workers(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or (isinstance(value, int) and not 1 <= value <= 1024):
            raise ValueError(f'workers must be 1..1024 or "auto", got {value!r}')
        return value

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_host_port(item)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("record_delete_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration_s(value)

    @field_validator("vod")
    @classmethod
    def _check_vod(cls, value: list[VodConfig]) -> list[VodConfig]:
        apps = [entry.app for entry in value]
        if len(set(apps)) != len(apps):
            raise ValueError("two [[vod]] entries for one app")
        return value


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, **overrides: Any) -> ServerConfig:
    """Load ``path`` (TOML) if given, apply non-None ``overrides``, validate.

    Args:
        path: a TOML file, or None for the defaults.
        **overrides: settings from CLI flags; None values are ignored; a key
            ``"section.field"`` sets a field of a section (pass it with ``**{...}``).

    Returns:
        The validated :class:`ServerConfig`.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown key or invalid value.
    """
    data: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML in {path}: {exc}") from exc
    for key, value in overrides.items():
        if value is None:
            continue
        if "." in key:  # "tls.listen" -> data["tls"]["listen"]
            section, _, field = key.partition(".")
            data.setdefault(section, {})[field] = value
        else:
            data[key] = value
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
