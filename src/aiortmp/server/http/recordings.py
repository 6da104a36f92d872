"""Recordings over HTTP, MediaMTX-style: a listing, whole files, and one MP4 from any time.

Routes::

    GET /api/recordings                          every recorded stream and the spans it covers
    GET /api/recordings/{app}/{name}             its files (start, end, size) and spans
    GET /recordings/{app}/{name}.mp4?start=<RFC 3339>[&duration=<s>]
                                                 one fragmented MP4, stitched across files
    GET /recordings/{app}/{name}/{file}          a whole file, with Range requests

The listing is a control route (``/api``: token or trusted clients). Playback is public
and follows the application's ``play`` rules, as HTTP-FLV does
(:mod:`aiortmp.outputs.http_flv`): the access policies see a ``play`` of ``app/name`` with
the request's query string (tokens, keys).

The stitched MP4 starts at the keyframe at or before ``start`` and lasts ``duration``
seconds (to the end of the recordings without it). Its frames are read from each file in
turn and muxed again (:class:`~aiortmp.media.fmp4.FMP4Muxer`: an init segment whose
``mehd`` holds the expected duration, then fragments), so a ``<video>`` tag plays it; the
files of one recording join exactly (their names carry their start to the millisecond), a
gap between recordings is closed up, and the output stops where the tracks change (a new
codec or resolution). The files are read off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from aiortmp.errors import CodecHeaderError, FLVError, LocalProtocolError, MP4Error
from aiortmp.media.fmp4 import FMP4Fragment, FMP4Muxer
from aiortmp.media.samples import Frame, MediaType, TrackConfig
from aiortmp.outputs.demand import authorize_play
from aiortmp.outputs.record import RecordedFile, RecordingCatalog, parse_recording_name
from aiortmp.sources.file import MediaFile, load_media_file

from .guard import Access, mark
from .keys import SERVICE_KEY

if TYPE_CHECKING:
    from . import HTTPService

__all__ = ["format_time", "parse_time", "setup_recordings", "spans"]

logger = logging.getLogger("aiortmp.http")

#: Files whose spans are this close (ms) are one span in listings, and join in playback.
JOIN_MS = 2000
#: Entries read from a file in one go while stitching.
_BATCH = 256
#: A stitched fragment is written at each keyframe and once this much media is queued.
_FRAGMENT_MS = 1000

CATALOGS: web.AppKey[dict[Path, RecordingCatalog]] = web.AppKey("aiortmp.http.catalogs")


def format_time(when: dt.datetime) -> str:
    """RFC 3339 UTC with milliseconds: ``2024-05-01T12:00:00.250Z``."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 date-time (``Z`` or an offset; without one, UTC).

    Raises:
        ValueError: not a date-time.
    """
    text = text.strip()
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    when = dt.datetime.fromisoformat(text)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def spans(files: Sequence[RecordedFile]) -> list[dict[str, Any]]:
    """The time spans a stream's files cover (files closer than 2 s are one span).

    Args:
        files: one stream's files, by start time.

    Returns:
        ``[{"start", "end", "duration_s"}]``, RFC 3339 times.
    """
    merged: list[list[dt.datetime]] = []
    for file in files:
        if merged and (file.start - merged[-1][1]).total_seconds() * 1000 <= JOIN_MS:
            merged[-1][1] = max(merged[-1][1], file.end)
        else:
            merged.append([file.start, file.end])
    return [
        {
            "start": format_time(start),
            "end": format_time(end),
            "duration_s": round((end - start).total_seconds(), 3),
        }
        for start, end in merged
    ]


def _catalog(request: web.Request) -> RecordingCatalog | None:
    server = request.app[SERVICE_KEY].server
    record_dir = server.config.record_dir
    if record_dir is None:
        return None
    catalogs = request.app[CATALOGS]
    catalog = catalogs.get(record_dir)
    if catalog is None:
        catalog = catalogs[record_dir] = RecordingCatalog(record_dir, server.recording.active)
    return catalog


async def _files(request: web.Request, app: str | None, name: str | None) -> list[RecordedFile]:
    catalog = _catalog(request)
    if catalog is None:
        return []
    return await asyncio.get_running_loop().run_in_executor(None, catalog.list, app, name)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(
        value, status=status, dumps=lambda v: json.dumps(v, separators=(",", ":"))
    )


def _file_view(file: RecordedFile) -> dict[str, Any]:
    return {
        "file": file.path.name,
        "format": file.format,
        "start": format_time(file.start),
        "end": format_time(file.end),
        "duration_s": file.duration_ms / 1000,
        "bytes": file.size_bytes,
        "recording": file.active,
        "url": f"/recordings/{file.app}/{file.name}/{file.path.name}",
    }


# -- listing (control) ---------------------------------------------------------------------


async def list_recordings(request: web.Request) -> web.Response:
    """``GET /api/recordings``: each recorded stream, its files and spans."""
    files = await _files(request, None, None)
    streams: dict[tuple[str, str], list[RecordedFile]] = {}
    for file in files:
        streams.setdefault((file.app, file.name), []).append(file)
    out = []
    for (app, name), group in streams.items():
        out.append(
            {
                "app": app,
                "name": name,
                "files": len(group),
                "bytes": sum(f.size_bytes for f in group),
                "start": format_time(group[0].start),
                "end": format_time(max(f.end for f in group)),
                "recording": any(f.active for f in group),
                "spans": spans(group),
            }
        )
    return _json({"recordings": out})


async def get_recordings(request: web.Request) -> web.Response:
    """``GET /api/recordings/{app}/{name}``: the stream's files and spans."""
    app, name = request.match_info["app"], request.match_info["name"]
    files = await _files(request, app, name)
    if not files:
        return _json({"error": f"no recordings of {app}/{name}"}, status=404)
    first = files[0]
    return _json(
        {
            "app": first.app,
            "name": first.name,
            "spans": spans(files),
            "files": [_file_view(f) for f in files],
            "play": f"/recordings/{first.app}/{first.name}.mp4?start={format_time(first.start)}",
        }
    )


# -- playback (public, play rules) -----------------------------------------------------------


async def _authorize(service: HTTPService, request: web.Request, app: str, name: str) -> str:
    """Run the ``play`` access policies; the name they decide on.

    Raises:
        web.HTTPForbidden: a policy denies the play.
    """
    from aiortmp.server.connection import next_session_id

    server = service.server
    peer = request.transport.get_extra_info("peername") if request.transport else None
    host = str(peer[0]) if isinstance(peer, tuple) and peer else (request.remote or "")
    session_id = next_session_id()
    decision = await authorize_play(
        server.access,
        server.bus,
        server.stats,
        app=app,
        name=name,
        query=request.query_string,
        host=host,
        session_id=session_id,
        protocol="recording",
        url=str(request.url),
    )
    if not decision.allowed:
        raise web.HTTPForbidden(text=decision.reason or "playing not allowed")
    return decision.name or name


async def get_file(service: HTTPService, request: web.Request) -> web.StreamResponse:
    """``GET /recordings/{app}/{name}/{file}``: one recording file; Range requests are
    answered (aiohttp's ``FileResponse``: 206 with ``Content-Range``)."""
    app, name = request.match_info["app"], request.match_info["name"]
    filename = request.match_info["file"]
    name = await _authorize(service, request, app, name)
    parsed = parse_recording_name(filename)
    if parsed is None or "/" in filename or filename.startswith("."):
        raise web.HTTPNotFound(text="no such recording")
    # Only a file the catalog lists: the name cannot reach outside the record directory.
    files = await _files(request, app, name)
    found = next((f for f in files if f.path.name == filename), None)
    if found is None:
        raise web.HTTPNotFound(text="no such recording")
    content_type = "video/mp4" if found.format == "mp4" else "video/x-flv"
    return web.FileResponse(
        found.path,
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-cache",
            "Access-Control-Allow-Origin": "*",
        },
    )


@dataclasses.dataclass
class _Part:
    """One file of a stitched output: where to start in it and its time shift."""

    media: MediaFile
    first: int  # entries index to start at
    offset_ms: int  # added to the file's timestamps


def _same_tracks(a: Sequence[TrackConfig], b: Sequence[TrackConfig]) -> bool:
    return [(c.media, c.track_id, c.codec, c.record) for c in a] == [
        (c.media, c.track_id, c.codec, c.record) for c in b
    ]


def _plan(
    files: Sequence[RecordedFile], start: dt.datetime, stop: dt.datetime | None
) -> tuple[list[TrackConfig], list[_Part], int, int]:
    """(tracks, parts, output duration in ms or 0, the output's end in its own ms) for
    the files covering ``start``..``stop`` (blocking: it indexes them)."""
    chosen = [f for f in files if f.end > start and (stop is None or f.start < stop)]
    if not chosen:
        return [], [], 0, 0
    parts: list[_Part] = []
    tracks: list[TrackConfig] = []
    zero: dt.datetime | None = None  # wall time of output time 0
    previous_end: dt.datetime | None = None
    out_end_ms = 0
    for file in chosen:
        try:
            media = load_media_file(file.path)
        except (OSError, FLVError, MP4Error) as exc:
            logger.warning("recording %s cannot be read: %s", file.path, exc)
            break
        configs = media.track_configs()
        if not configs or not media.entries:
            continue
        if zero is None:
            position = max(0.0, (start - file.start).total_seconds() * 1000)
            first = media.start_index(position)
            if first >= len(media.entries):
                continue
            first_ms = media.entries[first].timestamp_ms
            zero = file.start + dt.timedelta(milliseconds=first_ms)
            tracks = configs
            offset = -first_ms
        else:
            if not _same_tracks(tracks, configs):
                break  # a new codec or resolution: a player needs a new init segment
            first = 0
            assert previous_end is not None
            gap_ms = (file.start - previous_end).total_seconds() * 1000
            if gap_ms <= JOIN_MS:
                offset = round((file.start - zero).total_seconds() * 1000)
            else:
                offset = out_end_ms  # another recording: close the gap up
        parts.append(_Part(media=media, first=first, offset_ms=offset))
        previous_end = file.end
        out_end_ms = max(out_end_ms, offset + media.duration_ms)
    if zero is None:
        return [], [], 0, 0
    limit = out_end_ms
    if stop is not None:
        limit = min(limit, round((stop - zero).total_seconds() * 1000))
    return tracks, parts, max(0, limit), limit


async def get_stitched(service: HTTPService, request: web.Request) -> web.StreamResponse:
    """``GET /recordings/{app}/{name}.mp4?start=&duration=``: one fragmented MP4 from the
    keyframe at or before ``start`` (RFC 3339), ``duration`` seconds long (default: to
    the end of the recordings)."""
    app, name = request.match_info["app"], request.match_info["name"]
    name = await _authorize(service, request, app, name)
    try:
        start = parse_time(request.query.get("start", ""))
    except (ValueError, IndexError):
        raise web.HTTPBadRequest(text="start must be an RFC 3339 date-time") from None
    stop = None
    if "duration" in request.query:
        try:
            duration_s = float(request.query["duration"])
        except ValueError:
            raise web.HTTPBadRequest(text="duration must be a number of seconds") from None
        if not (duration_s > 0 and math.isfinite(duration_s)):
            raise web.HTTPBadRequest(text="duration must be a positive number of seconds")
        stop = start + dt.timedelta(seconds=duration_s)
    files = await _files(request, app, name)
    loop = asyncio.get_running_loop()
    tracks, parts, duration_ms, limit_ms = await loop.run_in_executor(
        None, _plan, files, start, stop
    )
    if not parts:
        raise web.HTTPNotFound(text=f"no recording of {app}/{name} at {format_time(start)}")
    try:
        muxer = FMP4Muxer(tracks, origin_ms=0)
    except (CodecHeaderError, LocalProtocolError) as exc:
        raise web.HTTPInternalServerError(text=f"cannot mux the recording: {exc}") from None
    response = web.StreamResponse(
        headers={
            "Content-Type": "video/mp4",
            "Cache-Control": "no-cache",
            "Access-Control-Allow-Origin": "*",
            "Content-Disposition": f'inline; filename="{name}-{start:%Y%m%d-%H%M%S}.mp4"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    writer = _StitchWriter(muxer, response, duration_ms)
    writer.primary = next(
        ((t.media, t.track_id) for t in tracks if t.media is MediaType.VIDEO), None
    )
    for part in parts:
        if not await writer.part(part, limit_ms):
            break
    await writer.finish()
    await response.write_eof()
    return response


class _StitchWriter:
    """Feeds a muxer from the files of a stitched output and writes what it makes."""

    def __init__(self, muxer: FMP4Muxer, response: web.StreamResponse, duration_ms: int) -> None:
        self.muxer = muxer
        self.response = response
        self.duration_ms = duration_ms
        self.init_written = False
        # Fragments are cut before each keyframe of the first video track.
        self.primary: tuple[MediaType, int] | None = None

    async def _write(self, fragment: FMP4Fragment | None) -> None:
        if fragment is not None:
            await self.response.write(fragment.data)

    async def part(self, part: _Part, limit_ms: int) -> bool:
        """Mux one file; False once the output's end was reached."""
        media = part.media
        loop = asyncio.get_running_loop()
        index = part.first
        while index < len(media.entries):
            end = min(index + _BATCH, len(media.entries))
            units = await loop.run_in_executor(None, media.read_units, index, end)
            index = end
            for unit in units:
                if not isinstance(unit, Frame):
                    continue
                frame = dataclasses.replace(unit, dts_ms=unit.dts_ms + part.offset_ms)
                if frame.dts_ms >= limit_ms:
                    return False
                if frame.dts_ms < 0:
                    continue
                await self._add(frame)
        return True

    async def _add(self, frame: Frame) -> None:
        muxer = self.muxer
        try:
            muxer.add(frame)
        except CodecHeaderError:
            return
        if not self.init_written:
            if not muxer.ready:
                return
            self.init_written = True
            await self.response.write(muxer.init_segment(duration_ms=self.duration_ms))
        if frame.keyframe and (frame.media, frame.track_id) == self.primary:
            await self._write(muxer.fragment(end_ms=frame.dts_ms))
        elif muxer.pending_duration_ms >= _FRAGMENT_MS:
            await self._write(muxer.fragment())

    async def finish(self) -> None:
        """Write the last samples."""
        if self.init_written:
            await self._write(self.muxer.fragment(final=True))


def setup_recordings(app: web.Application, service: HTTPService) -> None:
    """Add the recording routes to the HTTP application (playback marked public)."""
    app[CATALOGS] = {}
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{app}/{name}", get_recordings)
    stitched = app.router.add_get(
        "/recordings/{app}/{name}.mp4", functools.partial(get_stitched, service), allow_head=False
    )
    mark(app, stitched, Access.PUBLIC)
    files = app.router.add_get(
        "/recordings/{app}/{name}/{file}", functools.partial(get_file, service)
    )
    mark(app, files, Access.PUBLIC)
