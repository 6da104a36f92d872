"""The HTTP surface of the server: control API, Prometheus metrics, HTTP-FLV, dashboard.

An aiohttp application on the server's own event loop, started as a component (see
:mod:`aiortmp.server.components`) when ``http.listen`` is not empty::

    GET  /                                 dashboard (live streams, preview with mpegts.js)
    GET  /metrics                          Prometheus text format
    GET  /{app}/{name}.flv                 HTTP-FLV (chunked), WebSocket-FLV on upgrade
    GET  /{app}/{name}/index.m3u8          HLS / LL-HLS (``/{app}/{name}.m3u8`` alias; see
                                           :mod:`aiortmp.outputs.hls.handlers`)
    GET  /api/server | /api/streams[/{app}/{name}] | /api/sessions | /api/keys | /api/relays
    GET  /api/cluster
    ...                                    (see :mod:`aiortmp.server.http.api`)
    GET  /api/recordings[/{app}/{name}]    recordings and the spans they cover
    GET  /recordings/{app}/{name}.mp4?start=&duration=   one MP4 across recordings
    GET  /recordings/{app}/{name}/{file}   a recording file (Range requests)
                                           (see :mod:`aiortmp.server.http.recordings`)

Playback and the dashboard's files are public; ``/api``, ``/control`` and ``/metrics`` are
control routes, closed by :func:`~aiortmp.server.http.guard.control_guard` to all but token
holders (or, without a token, loopback clients).

Event hooks (webhooks, exec hooks) are a separate component,
:class:`~aiortmp.server.http.hooks.HookService`, so they run with ``--no-http`` too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from aiortmp.outputs.hls import HLSHandlers, HLSService, add_routes
from aiortmp.outputs.http_flv import FLVViewer, handle_flv

from ..config import ServerConfig, parse_host_port
from .api import setup_api
from .guard import Access, control_guard, mark
from .hooks import HookService
from .keys import SERVICE_KEY
from .metrics import handle_metrics, make_registry
from .recordings import setup_recordings
from .sampler import StreamSampler

if TYPE_CHECKING:
    from ..app import RTMPServer

__all__ = ["HTTPService", "HookService", "STATIC_DIR"]

logger = logging.getLogger("aiortmp.http")

#: The dashboard's files (index.html, app.js, style.css, vendor/mpegts.js).
STATIC_DIR = Path(__file__).parent / "static"


class HTTPService:
    """The HTTP component: binds ``config.http.listen`` and serves the routes above.

    Args:
        server: the RTMP server it exposes.

    Attributes:
        viewers: session id → open HTTP-FLV / WebSocket-FLV viewer.
        hls: the HLS outputs (None with ``[hls] enabled = false``).
        sampler: publish times and outgoing bitrates of the streams.
        metrics_registry: the prometheus-client registry of this server.
        middlewares: aiohttp middlewares run after the control guard (a worker process
            adds the one that answers for every worker, see :mod:`..workers`).
    """

    def __init__(self, server: RTMPServer) -> None:
        self.server = server
        self.viewers: dict[int, FLVViewer] = {}
        self.hls: HLSService | None = None
        if server.config.hls.enabled:
            self.hls = HLSService(server.registry, server.bus, server.access, server.config.hls)
        self.sampler = StreamSampler(server, hls=self.hls)
        self.metrics_registry = make_registry(self)
        self.started_monotonic = time.monotonic()
        self.middlewares: list[Middleware] = []
        self._runner: web.AppRunner | None = None
        self._adopting: set[asyncio.Task[None]] = set()

    def build_app(self) -> web.Application:
        """The aiohttp application (routes depend on ``http.flv/metrics/dashboard``)."""
        config = self.server.config.http
        app = web.Application(middlewares=[control_guard, *self.middlewares])
        app[SERVICE_KEY] = self
        setup_api(app)
        setup_recordings(app, self)
        if config.metrics:
            app.router.add_get("/metrics", handle_metrics)
        if config.dashboard:
            if (STATIC_DIR / "index.html").is_file():
                # The page and its scripts hold no data; what they show comes from /api.
                mark(app, app.router.add_get("/", _dashboard), Access.PUBLIC)
                mark(app, app.router.add_static("/static", STATIC_DIR), Access.PUBLIC)
            else:  # an install without the package data
                logger.warning("dashboard files missing from %s: / is not served", STATIC_DIR)
        if config.flv:
            # No HEAD: the FLV body is written to the transport directly.
            # Public like RTMP play: the apps' play rules decide (outputs/http_flv.py).
            flv = app.router.add_get(
                "/{app}/{name}.flv", functools.partial(handle_flv, self), allow_head=False
            )
            mark(app, flv, Access.PUBLIC)
        if self.hls is not None:
            # After /static: /{app}/{name}/{file} would match the dashboard's files.
            # Public like HTTP-FLV: the apps' play rules decide, per request.
            for route in add_routes(app, HLSHandlers(self.hls, self.server.stats)):
                mark(app, route, Access.PUBLIC)
        return app

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) pairs (useful with port 0)."""
        if self._runner is None:
            return []
        out = []
        for address in self._runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                out.append((str(address[0]), int(address[1])))
        return out

    async def start(self) -> None:
        """Bind every ``http.listen`` address.

        Raises:
            OSError: an address cannot be bound.
        """
        self.started_monotonic = time.monotonic()
        # handler_cancellation: a viewer's handler is cancelled when its client goes away,
        # which is how HTTP-FLV viewers are detached.
        runner = web.AppRunner(
            self.build_app(), handler_cancellation=True, access_log=None, shutdown_timeout=3.0
        )
        await runner.setup()
        self._runner = runner
        sockets = self.server.listen_sockets or {}
        for item in self.server.config.http.listen:
            sock = sockets.get(("http", item))
            site: web.BaseSite
            if sock is not None:
                site = web.SockSite(runner, sock, backlog=1024)
            else:
                host, port = parse_host_port(item, 8080)
                site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
            await site.start()
        self.sampler.start()
        if self.hls is not None:
            await self.hls.start()
        for host, port in self.addresses:
            logger.info("listening for HTTP on %s:%d", host, port)

    def adopt(self, sock: socket.socket) -> None:
        """Serve an HTTP connection another process accepted on one of this server's
        addresses (see :meth:`RTMPServer.adopt <aiortmp.server.app.RTMPServer.adopt>`);
        the socket is owned from now on."""
        runner = self._runner
        if runner is None or runner.server is None:
            sock.close()
            return
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        factory = runner.server

        async def serve() -> None:
            try:
                await loop.connect_accepted_socket(factory, sock)
            except OSError as exc:
                logger.info("a handed-over HTTP connection failed: %s", exc)
                sock.close()

        task = loop.create_task(serve())
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def stop_accepting(self) -> None:
        """Close the listeners; open viewers go on (a draining worker)."""
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()

    async def stop(self) -> None:
        """End every viewer, close the listeners, stop sampling."""
        for viewer in list(self.viewers.values()):
            viewer.finish("server shutting down")
        if self.hls is not None:
            await self.hls.stop()  # playlists end: held requests are answered
        self.sampler.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def reload(self, config: ServerConfig) -> None:
        """``[hls]`` settings apply to HLS outputs started from now on; the token and
        player policy are read per request."""
        if self.hls is not None:
            self.hls.reload(config.hls)


async def _dashboard(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
