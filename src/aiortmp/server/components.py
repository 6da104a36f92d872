"""Optional services started with the server (HTTP surface, relays, ...).

A component is an object with ``async start()``, ``async stop()`` and
``reload(config)``; :func:`build_components` decides from the configuration which ones
run. Each feature module adds its own entry here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .app import RTMPServer
    from .config import ServerConfig

__all__ = ["Component", "build_components"]


class Component(Protocol):
    """A service that lives as long as the server."""

    async def start(self) -> None:
        """Start (bind sockets, spawn tasks). Raise OSError if it cannot."""

    async def stop(self) -> None:
        """Stop and release everything; must not raise."""

    def reload(self, config: ServerConfig) -> None:
        """Apply a reloaded configuration (SIGHUP) without dropping streams."""


def build_components(server: RTMPServer) -> list[Component]:
    """The components the configuration asks for, in start order."""
    components: list[Component] = []
    # Hooks first: stopped last (reverse order), so they see the other components' events.
    from .http.hooks import HookService

    components.append(HookService(server))
    # Access control always runs: it sets ``server.channel_keys`` for the HTTP API and puts
    # only the policies ``[auth]`` asks for at the front of ``server.policies``.
    from .auth import AuthService

    components.append(AuthService(server))
    # Recording: stopped after the relays and the HTTP surface, before the hooks (which
    # still get its record_done events).
    components.append(server.recording)
    # Relays always run (cheap when idle): the HTTP API adds push destinations at run time
    # through ``server.relay``; created before the HTTP surface.
    from .connection import next_session_id
    from .relay import RelayService

    server.relay = RelayService(
        server.registry, server.bus, server.access, server.config.relay, next_session_id
    )
    cluster = server.config.cluster
    if cluster.redis:
        # After auth (its pull gate goes in front of auth's policies, its claim policy
        # after them) and before the relays (the claim policy must come before the pull's
        # yield-to-a-local-publisher policy, which the relays append when they start).
        from .cluster import ClusterService

        server.cluster = ClusterService(
            server.registry,
            server.bus,
            server.access,
            server.relay.pulls,
            cluster,
            addresses=lambda: server.addresses if server.config.listen else [],
            connections=lambda: len(server.connections),
        )
        components.append(server.cluster)
    components.append(server.relay)
    # Video on demand ([[vod]]): always present, so a reload can add applications.
    from .vod import VodService

    server.vod = VodService(server.config, server.bus)
    components.append(server.vod)
    if server.config.http.listen:
        from .http import HTTPService

        components.append(HTTPService(server))
    return components
