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
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AuthConfig",
    "ConfigError",
    "HTTPConfig",
    "HooksConfig",
    "Limits",
    "PlayerPolicy",
    "RelayConfig",
    "RelayPull",
    "RelayPush",
    "ServerConfig",
    "TLSConfig",
    "load_config",
    "parse_host_port",
]


class ConfigError(ValueError):
    """The configuration file or a flag is invalid; the message says where and why."""


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
    """The HTTP surface (API, metrics, HTTP-FLV, dashboard). An empty list disables it."""

    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0:8080"])
    api_token: str | None = Field(None, description="bearer token required by /api")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_host_port(item, 8080)
        return value


class RelayPush(_Model):
    """Push every stream published in ``app`` (or only ``stream``) to ``url/<stream>``."""

    app: str
    url: str
    stream: str | None = None


class RelayPull(_Model):
    """A play of ``app/<name>`` not published here pulls ``url/<name>``."""

    app: str
    url: str
    static: list[str] = Field(default_factory=list, description="names always mirrored")
    idle_timeout_s: float = Field(10.0, ge=0, description="grace after the last player")


class RelayConfig(_Model):
    """Relays: ``[[relay.push]]`` and ``[[relay.pull]]`` tables."""

    push: list[RelayPush] = Field(default_factory=list)
    pull: list[RelayPull] = Field(default_factory=list)


class AuthConfig(_Model):
    """Access control (see the README's security section)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class HooksConfig(_Model):
    """Event hooks (webhooks, exec hooks)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ServerConfig(_Model):
    """Everything ``aiortmp serve`` can be told; defaults give RTMP on 0.0.0.0:1935."""

    listen: list[str] = Field(default_factory=lambda: ["0.0.0.0:1935"])
    record_dir: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    chunk_size: int = Field(4096, ge=128, le=65536, description="outgoing chunk size, bytes")
    window_ack_size: int = Field(5_000_000, ge=1024, description="bytes")
    gop_cache: bool = True
    gop_cache_max_bytes: int = Field(8 * 1024 * 1024, ge=0, description="per stream")
    limits: Limits = Field(default_factory=Limits)
    player: PlayerPolicy = Field(default_factory=PlayerPolicy)
    tls: TLSConfig = Field(default_factory=TLSConfig)
    http: HTTPConfig = Field(default_factory=HTTPConfig)
    relay: RelayConfig = Field(default_factory=RelayConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    hooks: HooksConfig = Field(default_factory=HooksConfig)

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
