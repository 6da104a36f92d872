"""The HTTP side of HLS: aiohttp handlers for playlists, segments and parts.

Routes (added by :func:`add_routes`, served by the server's aiohttp application)::

    GET /{app}/{name}/index.m3u8         multivariant playlist (LL-HLS, fMP4)
    GET /{app}/{name}/index.m3u8?format=ts   the same over MPEG-TS (classic HLS)
    GET /{app}/{name}.m3u8               alias of index.m3u8 (URIs prefixed with {name}/)
    GET /{app}/{name}/v0.m3u8            media playlists, segments, parts, init segments
        ...                              (names: :mod:`.output`)

Delivery directives (RFC 8216bis §6.2.5): ``_HLS_msn=M`` holds a media playlist request
until segment M is complete, ``_HLS_part=P`` until part P of segment M exists ("or
later"), for at most three Target Durations (then 503); a request too far ahead (M past
the last segment + 2, or P past the Advance Part Limit) gets 400 at once.
``_HLS_skip=YES`` (or ``v2``) asks for a delta update. A part that does not exist yet
(the ``EXT-X-PRELOAD-HINT``) is held the same way until it does.

Every response has ``Access-Control-Allow-Origin`` (``[hls] cors_origin``); playlists are
``no-cache`` (blocking responses, which name a future state, may be cached briefly);
segments, parts and init segments are immutable (their names carry the output's token).
The query string of the request, less the delivery directives and ``format``, is added to
every URI a playlist lists, so a ``?token=`` reaches every segment request.
"""

from __future__ import annotations

import asyncio
import collections
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from aiortmp.server.access import ALLOW, Request

from ..demand import ask_for_stream, play_denied
from .output import FMP4, TS, HLSOutput, Variant

if TYPE_CHECKING:
    from .service import HLSService

__all__ = ["PLAYLIST_TYPE", "HLSHandlers", "add_routes", "carried_query"]

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: RFC 8216bis §4: "application/vnd.apple.mpegurl".
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
_SEGMENT_TYPES = {"m4s": "video/iso.segment", "ts": "video/mp2t", "mp4": "video/mp4"}
_IMMUTABLE = "public, max-age=86400, immutable"
_NO_CACHE = "no-cache"

_PLAYLIST = re.compile(r"v(\d{1,4})(-ts)?\.m3u8")
_INIT = re.compile(r"v(\d{1,4})-([0-9a-f]{8})-init(\d{1,6})\.mp4")
_MEDIA = re.compile(r"v(\d{1,4})-([0-9a-f]{8})-(\d{1,18})(?:\.(\d{1,6}))?\.(m4s|ts)")
_DIRECTIVES = ("_HLS_", "format=")


def carried_query(query_string: str) -> str:
    """The query string a playlist carries to its URIs: the request's, less ``_HLS_*``
    directives and ``format``; ``"?..."`` or ``""``."""
    kept = [p for p in query_string.split("&") if p and not p.startswith(_DIRECTIVES)]
    return "?" + "&".join(kept) if kept else ""


def _client(request: web.Request) -> tuple[str, str]:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host = str(peer[0]) if isinstance(peer, tuple) and peer else (request.remote or "")
    return host, f"{host}|{request.headers.get('User-Agent', '')}"


def _int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer")
    return int(value)


class HLSHandlers:
    """The request handlers, bound to an :class:`~.service.HLSService`.

    Args:
        service: the HLS service.
        stats: the server's counters (``auth_denials``).
    """

    def __init__(self, service: HLSService, stats: collections.Counter[str]) -> None:
        self.service = service
        self.stats = stats

    # -- common ------------------------------------------------------------------------

    def cors(self, handler: _Handler) -> _Handler:
        """``handler``, with ``Access-Control-Allow-Origin`` on its errors too (a player on
        another origin can then tell a 404 or a 503 from a network failure)."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except web.HTTPException as exc:
                origin = self.service.config.cors_origin
                if origin:
                    exc.headers["Access-Control-Allow-Origin"] = origin
                raise

        return wrapped

    def _headers(self, content_type: str, cache: str) -> dict[str, str]:
        headers = {"Content-Type": content_type, "Cache-Control": cache}
        origin = self.service.config.cors_origin
        if origin:
            headers["Access-Control-Allow-Origin"] = origin
        return headers

    async def _output(self, request: web.Request, fmt: str) -> tuple[HLSOutput, str]:
        """Authorize the play, find (or start) the output; count the viewer.

        Returns:
            The output and the query string its playlists carry.
        """
        service = self.service
        app = request.match_info["app"]
        name = request.match_info["name"]
        host, client = _client(request)
        carried = carried_query(request.query_string)
        loop_time = asyncio.get_running_loop().time()
        # Without any policy every play is allowed; with some, a client's decision is
        # reused for a while (the hot path of a polling player: a dict lookup).
        decision = ALLOW
        if service.access:
            cached = service.cached_decision(app, name, carried[1:], host, loop_time)
            if cached is not None:
                decision = cached
            else:
                decision = await service.authorize(
                    Request(
                        action="play",
                        app=app,
                        name=name,
                        query=carried[1:],
                        remote_host=host,
                        session_id=0,
                        tc_url=str(request.url),
                    ),
                    loop_time,
                )
        if not decision.allowed:
            play_denied(
                service.bus,
                self.stats,
                decision,
                app=app,
                name=name,
                host=host,
                session_id=0,
                protocol="hls",
            )
            raise web.HTTPForbidden(text=decision.reason or "playing not allowed")
        name = decision.name or name
        output = service.output(app, name)
        if output is None:
            # Not live here: a pull may bring it (a rule, a worker, the cluster).
            stream = await ask_for_stream(
                service.registry,
                service.bus,
                app,
                name,
                remote=host,
                protocol="hls",
                timeout_s=service.config.start_timeout_s,
            )
            output = service.output(app, name) if stream is not None else None
            if output is None:
                raise web.HTTPNotFound(text=f"{app}/{name} is not live")
        output.touch(fmt, loop_time)
        service.touch((app, name), client, loop_time)
        return output, carried

    async def _wait_ready(self, output: HLSOutput, fmt: str) -> None:
        if not await output.wait(lambda: output.ready(fmt), self.service.config.start_timeout_s):
            raise web.HTTPServiceUnavailable(
                text="the stream has no segment yet", headers={"Retry-After": "1"}
            )

    # -- multivariant ------------------------------------------------------------------

    async def multivariant(self, request: web.Request) -> web.Response:
        """``GET /{app}/{name}/index.m3u8`` (and ``?format=ts``)."""
        return await self._multivariant(request, prefix="")

    async def alias(self, request: web.Request) -> web.Response:
        """``GET /{app}/{name}.m3u8``: the multivariant playlist, URIs under ``{name}/``."""
        return await self._multivariant(request, prefix=f"{request.match_info['name']}/")

    async def _multivariant(self, request: web.Request, *, prefix: str) -> web.Response:
        fmt = TS if request.query.get("format") == "ts" else FMP4
        output, carried = await self._output(request, fmt)
        await self._wait_ready(output, fmt)
        text = output.multivariant(fmt, query=carried, prefix=prefix)
        if "#EXT-X-STREAM-INF" not in text:
            raise web.HTTPNotFound(text=f"no track of this stream can be carried in {fmt}")
        return self._sent(output, text.encode(), PLAYLIST_TYPE, _NO_CACHE)

    def _sent(
        self, output: HLSOutput, body: bytes | memoryview, content_type: str, cache: str
    ) -> web.Response:
        """The response, its body counted as sent for the output's stream."""
        self.service.sent(output.stream.key, len(body))
        return web.Response(body=body, headers=self._headers(content_type, cache))

    # -- media playlists and media --------------------------------------------------------

    async def resource(self, request: web.Request) -> web.StreamResponse:
        """``GET /{app}/{name}/{file}``: a media playlist, a segment, a part, an init."""
        file = request.match_info["file"]
        if file == "index.m3u8":
            return await self.multivariant(request)
        match = _PLAYLIST.fullmatch(file)
        if match is not None:
            fmt = TS if match.group(2) else FMP4
            output, carried = await self._output(request, fmt)
            return await self._media_playlist(request, output, int(match.group(1)), fmt, carried)
        match = _MEDIA.fullmatch(file)
        if match is not None:
            fmt = TS if match.group(5) == "ts" else FMP4
            output, _ = await self._output(request, fmt)
            return await self._media(
                output,
                int(match.group(1)),
                match.group(2),
                fmt,
                int(match.group(3)),
                None if match.group(4) is None else int(match.group(4)),
            )
        match = _INIT.fullmatch(file)
        if match is not None:
            output, _ = await self._output(request, FMP4)
            variant = output.variant(int(match.group(1)))
            data = variant.fmp4.inits.get(file) if variant is not None else None
            if data is None or match.group(2) != output.token:
                raise web.HTTPNotFound(text="no such initialization segment")
            return self._sent(output, data, "video/mp4", _IMMUTABLE)
        raise web.HTTPNotFound(text="no such HLS resource")

    def _variant(self, output: HLSOutput, index: int, fmt: str) -> Variant:
        variant = output.variant(index)
        if variant is None or not variant.has(fmt):
            raise web.HTTPNotFound(text="no such variant")
        return variant

    async def _media_playlist(
        self, request: web.Request, output: HLSOutput, index: int, fmt: str, carried: str
    ) -> web.Response:
        msn = _int(request, "_HLS_msn")
        part = _int(request, "_HLS_part")
        if part is not None and msn is None:
            raise web.HTTPBadRequest(text="_HLS_part requires _HLS_msn")
        skip = request.query.get("_HLS_skip", "").upper() in ("YES", "V2")
        await self._wait_ready(output, fmt)
        variant = self._variant(output, index, fmt)
        playlist = variant.playlists[fmt]
        cache = _NO_CACHE
        if msn is not None and not playlist.ended:
            growing, parts = playlist.next_part
            # §6.2.5.2: "If the _HLS_msn is greater than the Media Sequence Number of the
            # last Media Segment in the current Playlist plus two, or if the _HLS_part
            # exceeds the last Partial Segment in the current Playlist by the Advance Part
            # Limit, then the server SHOULD immediately return Bad Request".
            advance_limit = max(3, math.ceil(3 / playlist.part_target_s))
            if msn > growing + 2 or (
                part is not None and msn == growing and part > parts + advance_limit
            ):
                raise web.HTTPBadRequest(text="_HLS_msn/_HLS_part too far in the future")
            if part is not None:
                ready = await output.wait(
                    lambda: playlist.has_part(msn, part), 3 * playlist.target_duration_s
                )
            else:
                ready = await output.wait(
                    lambda: playlist.has_segment(msn), 3 * playlist.target_duration_s
                )
            if not ready and not playlist.ended:
                raise web.HTTPServiceUnavailable(
                    text="the requested segment or part did not come in time",
                    headers={"Cache-Control": "no-store"},
                )
            # The response names a state at least as new as asked: cacheable a little.
            cache = f"public, max-age={playlist.target_duration_s}"
        if playlist.ended:
            cache = _NO_CACHE
        body = output.media_playlist(variant, fmt, query=carried, skip=skip)
        return self._sent(output, body, PLAYLIST_TYPE, cache)

    async def _media(
        self,
        output: HLSOutput,
        index: int,
        token: str,
        fmt: str,
        msn: int,
        part: int | None,
    ) -> web.Response:
        if token != output.token:
            raise web.HTTPNotFound(text="no such segment (the stream was restarted)")
        variant = self._variant(output, index, fmt)
        playlist = variant.playlists[fmt]
        content_type = _SEGMENT_TYPES[playlist.extension]
        timeout_s = 3 * playlist.target_duration_s
        if part is None:
            segment = playlist.segment(msn)
            if segment is None or not segment.complete:
                if msn < playlist.media_sequence or msn > playlist.next_part[0] + 1:
                    raise web.HTTPNotFound(text="no such segment")
                await output.wait(lambda: playlist.has_segment(msn), timeout_s)
                segment = playlist.segment(msn)
                if segment is None or not segment.complete:
                    raise web.HTTPNotFound(text="no such segment")
            return self._sent(output, segment.data, content_type, _IMMUTABLE)
        if fmt != FMP4:
            raise web.HTTPNotFound(text="MPEG-TS playlists have no parts")
        found = playlist.part(msn, part)
        if found is None:
            growing, parts = playlist.next_part
            advance_limit = max(3, math.ceil(3 / playlist.part_target_s))
            ahead = (msn == growing and parts <= part <= parts + advance_limit) or (
                msn == growing + 1 and part <= advance_limit
            )
            if not ahead or playlist.ended:
                raise web.HTTPNotFound(text="no such part")
            # A preload hint: hold the request until the part exists (§6.2.6).
            await output.wait(lambda: playlist.has_part(msn, part), timeout_s)
            found = playlist.part(msn, part)
            if found is None:
                raise web.HTTPNotFound(text="no such part")
        return self._sent(output, found.data, content_type, _IMMUTABLE)


def add_routes(app: web.Application, handlers: HLSHandlers) -> list[web.AbstractRoute]:
    """Add the HLS routes to ``app``; returns them (the caller marks them public).

    Add them after the dashboard's ``/static`` route: ``/{app}/{name}/{file}`` would
    otherwise match ``/static/vendor/x.js``.
    """
    router = app.router
    return [
        router.add_get("/{app}/{name}.m3u8", handlers.cors(handlers.alias)),
        router.add_get("/{app}/{name}/{file}", handlers.cors(handlers.resource)),
    ]
