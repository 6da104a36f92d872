"""Access control: stream keys, signed tokens, HTTP callbacks, channel keys, IP lists.

:class:`AuthService` reads the ``[auth]`` section (:class:`~aiortmp.server.config.AuthConfig`)
and puts one :class:`~aiortmp.server.access.AccessPolicy` per configured method at the front
of ``server.policies``; :meth:`RTMPServer.authorize` asks them in order and the first denial
wins. Rules are per application and per action (publish, play); the IP lists of ``[auth]``
itself apply at ``connect``. The methods, in the order they are checked:

- :class:`IPPolicy`: ``deny`` networks are refused, and when ``allow`` is not empty only
  its networks are let in.
- :class:`ChannelKeyPolicy` (publish): livego-style channel keys. A room's key is published
  as ``<app>/<key>`` and the stream goes live under the room's name; keys are created and
  revoked through ``server.channel_keys`` (the HTTP API), a :class:`ChannelKeyStore`.
- :class:`StaticKeyPolicy`: ``?key=<key>`` on the stream name must be one of the rule's
  ``keys``, the stream's own ``stream_keys`` entry, or a key of its ``keys_file``.
- :class:`TokenPolicy`: ``?expires=<unix seconds>&token=<hex>`` where the token is
  HMAC-SHA256 of ``"<app>/<name>:<expires>"`` (see :func:`sign_token`), in the manner of
  nginx ``secure_link`` and SRS tokens.
- :class:`HTTPCallbackPolicy`: POSTs the request as JSON to the rule's ``callback`` (as
  nginx-rtmp ``on_publish``/``on_play`` and SRS ``http_hooks`` do); a 2xx answer allows,
  any other answer, an error or a timeout denies.

Denials are answered with ``NetConnection.Connect.Rejected``, ``NetStream.Publish.BadName``
or ``NetStream.Play.Failed`` and the reason as description. Reasons and log lines never
contain keys, tokens or query strings.

On SIGHUP, :meth:`AuthService.reload` swaps in the new rules (and re-reads the keys files and
the channel keys file) for the requests that follow; streams already running are not touched.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from .access import ALLOW, AccessPolicy, Decision, Request
from .config import AuthConfig, AuthRule, ConfigError, ServerConfig

if TYPE_CHECKING:
    from .app import RTMPServer

__all__ = [
    "AuthService",
    "ChannelKeyPolicy",
    "ChannelKeyStore",
    "HTTPCallbackPolicy",
    "IPPolicy",
    "StaticKeyPolicy",
    "TokenPolicy",
    "sign_token",
]

logger = logging.getLogger("aiortmp.auth")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What a denial by :class:`ChannelKeyPolicy` puts in ``Decision.name``: the server logs it
#: instead of the requested name, which is a (wrong) key.
REDACTED_KEY = "<channel key>"

_MAX_QUERY_FIELDS = 64


def sign_token(secret: str, app: str, name: str, expires: int) -> str:
    """The token :class:`TokenPolicy` expects for ``app/name`` until ``expires``.

    ``hex(HMAC-SHA256(secret, "<app>/<name>:<expires>"))``, the same as
    ``printf '%s' "live/cam:1735689600" | openssl dgst -sha256 -hmac "$SECRET"``.

    Args:
        secret: one of the rule's ``token_secrets``.
        app: the application name (``live``).
        name: the stream name, without the query string.
        expires: the expiry, in Unix seconds.

    Returns:
        64 lowercase hex digits.
    """
    message = f"{app}/{name}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _query(request: Request) -> dict[str, str] | None:
    """The query parameters (first value of each), or None if the query is malformed."""
    try:
        parsed = urllib.parse.parse_qs(
            request.query, keep_blank_values=True, max_num_fields=_MAX_QUERY_FIELDS
        )
    except ValueError:
        return None
    return {key: values[0] for key, values in parsed.items()}


def _networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _safe_url(url: str) -> str:
    """``scheme://host[:port]/path``: no credentials, no query string (for logs)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, kw_only=True, slots=True)
class _Rules:
    """One configuration's rules, swapped as a whole on reload."""

    connect_allow: tuple[IPNetwork, ...]
    connect_deny: tuple[IPNetwork, ...]
    config: AuthConfig

    @classmethod
    def from_config(cls, config: AuthConfig) -> _Rules:
        return cls(
            connect_allow=_networks(config.allow),
            connect_deny=_networks(config.deny),
            config=config,
        )

    def rule(self, app: str, action: str) -> AuthRule | None:
        apps = self.config.apps
        app_auth = apps.get(app) or apps.get("*")
        if app_auth is None:
            return None
        if action == "publish":
            return app_auth.publish
        if action == "play":
            return app_auth.play
        return None

    def all_rules(self) -> list[AuthRule]:
        return [
            rule
            for app_auth in self.config.apps.values()
            for rule in (app_auth.publish, app_auth.play)
            if rule is not None
        ]


# -- channel keys --------------------------------------------------------------------------


class ChannelKeyStore:
    """livego-style channel keys: one secret key per room, ``server.channel_keys``.

    A publisher sends the room's key as the stream name (``rtmp://host/live/<key>``); with
    ``channel_keys = true`` in the app's publish rule the stream goes live as
    ``live/<room>``, so players never see the key. Keys are 32 URL-safe characters
    (192 random bits).

    The keys are kept as a JSON object ``{"room": "key"}`` in ``path`` when one is given,
    rewritten atomically (and readable by the owner only) on every change.

    Args:
        path: the JSON file, or None to keep the keys in memory only.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._keys: dict[str, str] = {}  # room -> key
        self._rooms: dict[str, str] = {}  # key -> room

    @property
    def path(self) -> Path | None:
        """The JSON file the keys are persisted to, if any."""
        return self._path

    def load(self) -> None:
        """Read the keys from the file (a missing file means no keys yet).

        Raises:
            ConfigError: the file cannot be read or is not a JSON object of strings.
        """
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read channel keys from {self._path}: {exc}") from exc
        if not isinstance(data, dict) or not all(
            isinstance(room, str) and room and isinstance(key, str) and key
            for room, key in data.items()
        ):
            raise ConfigError(f"{self._path}: expected a JSON object of room -> key strings")
        self._keys = dict(data)
        self._rooms = {key: room for room, key in data.items()}

    def set_path(self, path: Path | None) -> None:
        """Use another file (a reloaded configuration): read it, or write the keys to it
        if it does not exist yet.

        Raises:
            ConfigError: the new file exists but cannot be read.
            OSError: the new file cannot be written.
        """
        if path == self._path:
            self.load()
            return
        self._path = path
        if path is not None and path.exists():
            self.load()
        else:
            self._save()

    def create(self, room: str) -> str:
        """Give ``room`` a new random key, replacing (revoking) any previous one.

        Args:
            room: the stream name the key publishes to.

        Returns:
            The new key.

        Raises:
            ValueError: ``room`` is empty.
            OSError: the keys file cannot be written.
        """
        if not room:
            raise ValueError("a room name cannot be empty")
        key = secrets.token_urlsafe(24)
        old = self._keys.get(room)
        if old is not None:
            self._rooms.pop(old, None)
        self._keys[room] = key
        self._rooms[key] = room
        self._save()
        logger.info("channel key created for room %s", room)
        return key

    def revoke(self, room: str) -> bool:
        """Forget the room's key; a publisher already live keeps streaming.

        Returns:
            False if the room had no key.

        Raises:
            OSError: the keys file cannot be written.
        """
        key = self._keys.pop(room, None)
        if key is None:
            return False
        self._rooms.pop(key, None)
        self._save()
        logger.info("channel key revoked for room %s", room)
        return True

    def list(self) -> dict[str, str]:
        """A copy of room → key."""
        return dict(self._keys)

    def room_for_key(self, key: str) -> str | None:
        """The room ``key`` publishes to, or None if it is not a current key."""
        return self._rooms.get(key)

    def _save(self) -> None:
        path = self._path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        # Created 0600 from the start: the keys are publishing credentials.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._keys, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)


# -- keys files ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _KeysFile:
    stamp: tuple[int, int]  # (mtime_ns, size) when read
    any_name: tuple[str, ...]
    by_name: Mapping[str, tuple[str, ...]]


def _read_keys_file(path: Path) -> _KeysFile:
    """Parse a keys file: ``KEY`` (any stream name) or ``NAME KEY`` per line, ``#`` comments.

    Raises:
        OSError: the file cannot be read.
    """
    stat = path.stat()
    any_name: list[str] = []
    by_name: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 1:
            any_name.append(fields[0])
        elif len(fields) == 2:
            by_name.setdefault(fields[0], []).append(fields[1])
        # Other lines are ignored (and not logged: they may hold keys).
    return _KeysFile(
        stamp=(stat.st_mtime_ns, stat.st_size),
        any_name=tuple(any_name),
        by_name={name: tuple(keys) for name, keys in by_name.items()},
    )


# -- policies --------------------------------------------------------------------------------


class _Policy:
    """Base: reads the service's current rules at every check, so a reload applies at once."""

    def __init__(self, service: AuthService) -> None:
        self._service = service

    def _rule(self, request: Request) -> AuthRule | None:
        return self._service.rules.rule(request.app, request.action)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class IPPolicy(_Policy):
    """Client address allow/deny lists: ``[auth]`` at connect, per rule at publish/play.

    A ``deny`` match refuses; a non-empty ``allow`` list refuses every address outside it.
    """

    async def check(self, request: Request) -> Decision:
        """Decide from ``request.remote_host`` (see the class docstring)."""
        if request.action == "connect":
            rules = self._service.rules
            allow, deny = rules.connect_allow, rules.connect_deny
        else:
            rule = self._rule(request)
            if rule is None:
                return ALLOW
            allow, deny = self._service.networks(rule)
        if not allow and not deny:
            return ALLOW
        try:
            address = ipaddress.ip_address(request.remote_host.partition("%")[0])
        except ValueError:
            return Decision(allowed=False, reason="client address unknown")
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
            address = address.ipv4_mapped
        if any(address in network for network in deny):
            return Decision(allowed=False, reason="client address not allowed")
        if allow and not any(address in network for network in allow):
            return Decision(allowed=False, reason="client address not allowed")
        return ALLOW


class ChannelKeyPolicy(_Policy):
    """Publish with ``channel_keys = true``: the stream name must be a room's channel key;
    the stream goes live under the room's name (``Decision.name``)."""

    async def check(self, request: Request) -> Decision:
        """Map the key to its room, or deny."""
        if request.action != "publish":
            return ALLOW
        rule = self._rule(request)
        if rule is None or not rule.channel_keys:
            return ALLOW
        room = self._service.channel_keys.room_for_key(request.name)
        if room is None:
            return Decision(allowed=False, reason="unknown channel key", name=REDACTED_KEY)
        return Decision(allowed=True, name=room)


class StaticKeyPolicy(_Policy):
    """``?key=`` must match the rule's ``keys``, ``stream_keys[name]`` or ``keys_file``."""

    async def check(self, request: Request) -> Decision:
        """Compare the key of the query string with the configured ones (constant time)."""
        rule = self._rule(request)
        if rule is None or not (rule.keys or rule.stream_keys or rule.keys_file):
            return ALLOW
        query = _query(request)
        if query is None:
            return Decision(allowed=False, reason="malformed query string")
        given = query.get(rule.key_param)
        if not given:
            return Decision(allowed=False, reason="missing stream key")
        expected = [key.get_secret_value() for key in rule.keys]
        own = rule.stream_keys.get(request.name)
        if own is not None:
            expected.append(own.get_secret_value())
        if rule.keys_file is not None:
            keys_file = self._service.keys_file(rule.keys_file)
            if keys_file is not None:
                expected += keys_file.any_name
                expected += keys_file.by_name.get(request.name, ())
        # Compare against every candidate, so the time taken does not say which matched.
        matched = False
        for key in expected:
            matched |= _same_secret(given, key)
        if not matched:
            return Decision(allowed=False, reason="invalid stream key")
        return ALLOW


class TokenPolicy(_Policy):
    """``?expires=<unix s>&token=<hex>``: the token must be :func:`sign_token` of one of the
    rule's ``token_secrets`` for this app and stream name, and not be expired."""

    async def check(self, request: Request) -> Decision:
        """Verify the signed token of the query string."""
        rule = self._rule(request)
        if rule is None or not rule.token_secrets:
            return ALLOW
        query = _query(request)
        if query is None:
            return Decision(allowed=False, reason="malformed query string")
        token = query.get("token", "").lower()
        expires_text = query.get("expires", "")
        if not token or not expires_text:
            return Decision(allowed=False, reason="missing token")
        try:
            expires = int(expires_text)
        except ValueError:
            return Decision(allowed=False, reason="invalid token")
        matched = False
        for secret in rule.token_secrets:
            expected = sign_token(secret.get_secret_value(), request.app, request.name, expires)
            matched |= _same_secret(token, expected)
        if not matched:
            return Decision(allowed=False, reason="invalid token")
        if expires < time.time():
            return Decision(allowed=False, reason="token expired")
        return ALLOW


class HTTPCallbackPolicy(_Policy):
    """POST the request to the rule's ``callback``; a 2xx answer allows.

    The JSON body is ``{"action", "app", "name", "query", "args", "remote_addr",
    "session_id", "tc_url"}`` (``args`` is the parsed query string). Any other status
    (redirects are not followed), a connection error or no answer within
    ``callback_timeout_s`` denies.
    """

    async def check(self, request: Request) -> Decision:
        """Ask the callback (see the class docstring)."""
        rule = self._rule(request)
        if rule is None or rule.callback is None:
            return ALLOW
        url = rule.callback
        body = {
            "action": request.action,
            "app": request.app,
            "name": request.name,
            "query": request.query,
            "args": _query(request) or {},
            "remote_addr": request.remote_host,
            "session_id": request.session_id,
            "tc_url": request.tc_url,
        }
        timeout = aiohttp.ClientTimeout(total=rule.callback_timeout_s)
        try:
            # A redirect is not a yes (nginx-rtmp would rename the stream with it).
            async with self._service.http().post(
                url, json=body, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
        except TimeoutError:
            logger.warning("auth callback %s timed out", _safe_url(url))
            return Decision(allowed=False, reason="authorization callback timed out")
        except aiohttp.ClientError as exc:
            logger.warning("auth callback %s failed: %s", _safe_url(url), type(exc).__name__)
            return Decision(allowed=False, reason="authorization callback failed")
        if 200 <= status < 300:
            return ALLOW
        return Decision(allowed=False, reason=f"denied by the authorization callback ({status})")


# -- the component ---------------------------------------------------------------------------


class AuthService:
    """The access-control component: installs the policies, owns the channel keys.

    Created with the server (``server.channel_keys`` exists from then on); :meth:`start`
    reads the channel keys file and installs the policies the configuration needs at the
    front of ``server.policies``; :meth:`reload` swaps the rules in place.

    Args:
        server: the server to protect.
    """

    def __init__(self, server: RTMPServer) -> None:
        self.server = server
        self.rules = _Rules.from_config(server.config.auth)
        self.channel_keys = ChannelKeyStore(server.config.auth.channel_keys_file)
        setattr(server, "channel_keys", self.channel_keys)  # noqa: B010
        self._policies: dict[str, AccessPolicy] = {
            "ip": IPPolicy(self),
            "channel_keys": ChannelKeyPolicy(self),
            "keys": StaticKeyPolicy(self),
            "tokens": TokenPolicy(self),
            "callback": HTTPCallbackPolicy(self),
        }
        self._installed: list[AccessPolicy] = []
        self._networks: dict[int, tuple[tuple[IPNetwork, ...], tuple[IPNetwork, ...]]] = {}
        self._keys_files: dict[Path, tuple[float, _KeysFile | None]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._running = False

    # -- Component ------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the channel keys file and install the policies.

        Raises:
            ConfigError: the channel keys file exists but cannot be read.
        """
        self.channel_keys.load()
        self._running = True
        self._install()

    async def stop(self) -> None:
        """Remove the policies and close the HTTP client."""
        self._running = False
        self._install()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def reload(self, config: ServerConfig) -> None:
        """Use the ``[auth]`` rules of a reloaded configuration for the next requests."""
        self.rules = _Rules.from_config(config.auth)
        self._networks.clear()
        self._keys_files.clear()
        try:
            self.channel_keys.set_path(config.auth.channel_keys_file)
        except (ConfigError, OSError) as exc:
            logger.error("channel keys not reloaded: %s", exc)
        self._install()
        logger.info("auth rules reloaded (%s)", ", ".join(self.methods) or "open")

    # -- helpers for the policies -----------------------------------------------------------

    @property
    def methods(self) -> list[str]:
        """The methods the current rules use, in checking order."""
        rules = self.rules
        all_rules = rules.all_rules()
        used = {
            "ip": bool(rules.connect_allow or rules.connect_deny)
            or any(r.allow or r.deny for r in all_rules),
            "channel_keys": any(r.channel_keys for r in all_rules),
            "keys": any(r.keys or r.stream_keys or r.keys_file for r in all_rules),
            "tokens": any(r.token_secrets for r in all_rules),
            "callback": any(r.callback for r in all_rules),
        }
        return [name for name in self._policies if used[name]]

    def networks(self, rule: AuthRule) -> tuple[tuple[IPNetwork, ...], tuple[IPNetwork, ...]]:
        """The rule's (allow, deny) lists, parsed once per configuration."""
        parsed = self._networks.get(id(rule))
        if parsed is None:
            parsed = self._networks[id(rule)] = (_networks(rule.allow), _networks(rule.deny))
        return parsed

    def keys_file(self, path: Path) -> _KeysFile | None:
        """The keys file, re-read when it changed (checked at most once a second).

        An unreadable file is logged and gives no keys (so it denies).
        """
        now = time.monotonic()
        cached = self._keys_files.get(path)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        previous = cached[1] if cached is not None else None
        try:
            stat = path.stat()
            if previous is not None and previous.stamp == (stat.st_mtime_ns, stat.st_size):
                current: _KeysFile | None = previous
            else:
                current = _read_keys_file(path)
        except OSError as exc:
            logger.error("cannot read keys file %s: %s", path, exc.strerror)
            current = None
        self._keys_files[path] = (now, current)
        return current

    def http(self) -> aiohttp.ClientSession:
        """The HTTP client of the callbacks (created on first use)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    def _install(self) -> None:
        """Put the needed policies, in order, at the front of ``server.policies``."""
        policies = self.server.policies
        for policy in self._installed:
            if policy in policies:
                policies.remove(policy)
        self._installed = [self._policies[name] for name in self.methods] if self._running else []
        policies[0:0] = self._installed

    def __repr__(self) -> str:
        return f"AuthService({', '.join(self.methods) or 'open'})"
