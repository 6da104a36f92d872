"""The relay component: push destinations and pulls, for the config and the HTTP API.

Pushes are queued outputs (:mod:`aiortmp.outputs.push`), pulls are sources
(:mod:`aiortmp.sources.pull`); this component starts, stops and reloads both, and is what
the HTTP API calls (``add_push``, ``remove_push``, ``status``, ``pull_status``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortmp.client import parse_url
from aiortmp.errors import ClientError
from aiortmp.hub.bus import EventBus
from aiortmp.hub.registry import Registry
from aiortmp.outputs.push import PushService
from aiortmp.sources.pull import PullService

from .access import AccessControl

if TYPE_CHECKING:
    from .config import RelayConfig, ServerConfig

__all__ = ["RelayService"]


class RelayService:
    """Push destinations and pulls (see :mod:`aiortmp.outputs.push`,
    :mod:`aiortmp.sources.pull`).

    Args:
        registry: the streams.
        bus: server events.
        access: where the pull's yield-to-a-local-publisher policy goes.
        config: the ``[relay]`` settings.
        session_ids: a source of server-wide session ids (pulls are sessions).

    Attributes:
        pushes: the :class:`PushService`.
        pulls: the :class:`PullService`.
    """

    def __init__(
        self,
        registry: Registry,
        bus: EventBus,
        access: AccessControl,
        config: RelayConfig,
        session_ids: Callable[[], int],
    ) -> None:
        self.pushes = PushService(registry, bus, config)
        self.pulls = PullService(registry, bus, access, config, session_ids)

    async def start(self) -> None:
        """Start static pulls and the pushes of live streams."""
        await self.pulls.start()
        await self.pushes.start()

    async def stop(self) -> None:
        """Stop every push and pull (upstream connections are closed)."""
        await self.pushes.stop()
        await self.pulls.stop()

    def reload(self, config: ServerConfig) -> None:
        """Apply new ``[[relay.*]]`` tables: changed destinations and rules are replaced;
        run-time destinations stay."""
        self.pushes.reload(config.relay)
        self.pulls.reload(config.relay)

    # -- the HTTP API ---------------------------------------------------------------------

    def add_push(self, app: str, url: str, stream: str | None = None) -> str:
        """Push every stream of ``app`` (or only ``stream``) to ``url/<stream>`` from now on.

        Streams already live start pushing at once.

        Args:
            app: the local application.
            url: the upstream application URL, ``rtmp[s]://host[:port]/app[?query]``.
            stream: only this stream name (default: every stream of ``app``).

        Returns:
            The destination id.

        Raises:
            ValueError: ``url`` is not an RTMP application URL, or ``app`` is empty (the
                HTTP API answers 400 with the message).
        """
        if not app:
            raise ValueError("the application name is empty")
        try:
            parse_url(url)
        except ClientError as exc:
            raise ValueError(str(exc)) from None
        destination = self.pushes.add(app, url, stream, from_config=False)
        self.pushes.attach_live(destination)
        return destination.id

    def remove_push(self, id: str) -> bool:
        """Stop and forget destination ``id``; False if there is none."""
        return self.pushes.remove(id)

    def status(self) -> list[dict[str, Any]]:
        """One dict per push destination: ``id``, ``app``, ``stream`` (the filter, or
        None), ``url``, ``state``, ``connected_since`` (Unix seconds or None),
        ``reconnects``, ``bytes_sent``, ``dropped``, ``last_error``, plus ``origin``
        (``config``/``api``) and ``streams`` (the same per pushed stream)."""
        return [d.status() for d in self.pushes.destinations.values()]

    def pull_status(self) -> list[dict[str, Any]]:
        """One dict per running pull (see :meth:`Puller.status`)."""
        return self.pulls.status()
