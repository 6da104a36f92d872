"""The JSON control API (``/api/...``) and the livego-compatible ``/control/...`` endpoints.

Every answer is JSON. Errors are ``{"error": "..."}`` with a 4xx/5xx status. Who may call
these routes is decided before they run, by :func:`~aiortmp.server.http.guard.control_guard`:
``Authorization: Bearer <http.api_token>`` when a token is set, else loopback clients only;
never a request a browser marks as cross-site; changes by POST/PUT/DELETE with a JSON body.

Streams:
    ``GET /api/streams``, ``GET /api/streams/{app}/{name}``: codecs, resolution, frame
    rate, bitrates in/out, publisher, players, uptime, recording state.
    ``DELETE /api/streams/{app}/{name}``: disconnect the publisher.
    ``POST`` / ``DELETE /api/streams/{app}/{name}/record``: start / stop recording.
Sessions:
    ``GET /api/sessions``; ``DELETE /api/sessions/{id}``: close an RTMP connection or an
    HTTP-FLV / WebSocket-FLV viewer.
Channel keys (``server.channel_keys``):
    ``GET /api/keys``, ``POST /api/keys`` ``{"room": ...}``, ``DELETE /api/keys/{room}``;
    livego's ``GET /control/get?room=``, ``/control/reset?room=``, ``/control/delete?room=``
    answering ``{"status": 200, "data": ...}``.
Relays (``server.relay``):
    ``GET /api/relays``, ``POST /api/relays`` ``{"app", "url", "stream"?}``,
    ``DELETE /api/relays/{id}``.
Server:
    ``GET /api/server``: version, uptime, counters, addresses.
Cluster (``server.cluster``, docs/cluster.md):
    ``GET /api/cluster``: the streams of every node with their origin, and each node's
    load (connections, players, bitrates, heartbeat age); 404 outside a cluster.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from aiohttp import web

import aiortmp
from aiortmp.hub.stream import Output, Stream
from aiortmp.outputs.http_flv import FLVViewer

from .keys import SERVICE_KEY
from .sampler import player_bytes_sent

if TYPE_CHECKING:
    from . import HTTPService

__all__ = [
    "ChannelKeys",
    "ClusterStatus",
    "RelayControl",
    "session_views",
    "setup_api",
    "stream_view",
]

logger = logging.getLogger("aiortmp.http")


class ChannelKeys(Protocol):
    """``server.channel_keys``: livego-style per-room publishing keys."""

    def create(self, room: str) -> str:
        """Create (or replace) the room's key and return it."""
        ...

    def revoke(self, room: str) -> bool:
        """Revoke the room's key; False if it had none."""
        ...

    def list(self) -> dict[str, str]:
        """Room → key."""
        ...

    def room_for_key(self, key: str) -> str | None:
        """The room a key publishes to, or None."""
        ...


class RelayControl(Protocol):
    """``server.relay``: push relays managed at run time."""

    def add_push(self, app: str, url: str, stream: str | None = None) -> str:
        """Push ``app`` (or only ``stream``) to ``url``; return the relay id."""
        ...

    def remove_push(self, id: str) -> bool:
        """Remove a push relay; False if the id is unknown."""
        ...

    def status(self) -> list[dict[str, Any]]:
        """Every relay and its state."""
        ...


# -- helpers ------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_dumps)


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _json_safe(value: Any, depth: int = 0) -> Any:
    """AMF values (metadata) as JSON: numbers, strings, booleans, lists, objects."""
    if depth > 8:
        return None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    return str(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _service(request: web.Request) -> HTTPService:
    return request.app[SERVICE_KEY]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=_dumps({"error": "body must be a JSON object"}), content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=_dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    return data


# -- views --------------------------------------------------------------------------------


def _protocol_of(player: Output) -> str:
    host = getattr(player, "host", None)
    if isinstance(host, FLVViewer):
        return str(host.protocol)
    return "rtmp"


def stream_view(service: HTTPService, stream: Stream) -> dict[str, Any]:
    """Everything the API says about one stream.

    Codec details come from the parsed sequence headers (``stream.info``), with the
    publisher's ``onMetaData`` as the fallback for what they do not carry.
    """
    server = service.server
    info = stream.info
    metadata = stream.metadata or {}
    video: dict[str, Any] | None = None
    if info.video:
        v = info.video[min(info.video)]
        video = {
            "codec": v.codec,
            "profile": v.profile,
            "level": v.level,
            "width": v.width,
            "height": v.height,
            "fps": v.frame_rate,
        }
    elif _number(metadata.get("videocodecid")) is not None or "width" in metadata:
        codec = metadata.get("videocodecid")
        video = {
            "codec": str(codec) if codec is not None else None,
            "profile": None,
            "level": None,
            "width": None,
            "height": None,
            "fps": None,
        }
    if video is not None:
        width = _number(metadata.get("width"))
        height = _number(metadata.get("height"))
        if video["width"] is None and width:
            video["width"] = int(width)
        if video["height"] is None and height:
            video["height"] = int(height)
        if video["fps"] is None:
            fps = _number(metadata.get("framerate")) or _number(metadata.get("fps"))
            video["fps"] = fps or info.frame_rate_measured
        video["bitrate_bps"] = info.video_bitrate_bps
    audio: dict[str, Any] | None = None
    if info.audio:
        a = info.audio[min(info.audio)]
        audio = {
            "codec": a.codec,
            "profile": a.profile,
            "sample_rate": a.sample_rate,
            "channels": a.channels,
        }
    elif _number(metadata.get("audiocodecid")) is not None:
        audio = {
            "codec": str(metadata.get("audiocodecid")),
            "profile": None,
            "sample_rate": None,
            "channels": None,
        }
    if audio is not None:
        if audio["sample_rate"] is None:
            rate = _number(metadata.get("audiosamplerate"))
            audio["sample_rate"] = int(rate) if rate else None
        audio["bitrate_bps"] = info.audio_bitrate_bps

    source = stream.source
    publisher_view = None
    if source is not None:
        publisher_view = {
            "session_id": source.session_id,
            "remote": source.remote,
            "kind": source.kind,
        }
    players = stream.players
    by_protocol: dict[str, int] = {}
    for player in players:
        protocol = _protocol_of(player)
        by_protocol[protocol] = by_protocol.get(protocol, 0) + 1
    # HLS viewers are clients with a recent request (outputs/hls/service.py), not sessions.
    hls_viewers = service.hls.viewers(stream.key) if service.hls is not None else 0
    if hls_viewers:
        by_protocol["hls"] = hls_viewers
    recorder = server.recording.recorders.get(stream.key)
    uptime = service.sampler.uptime_s(stream)
    return {
        "app": stream.app,
        "name": stream.name,
        "live": stream.is_live,
        "publisher": publisher_view,
        "video": video,
        "audio": audio,
        "tracks": info.as_dict(),
        "bitrate_in_bps": stream.bitrate_bps,
        "bitrate_out_bps": service.sampler.bitrate_out_bps.get(stream.key, 0),
        "bytes_in": stream.bytes_in,
        "bytes_out": sum(player_bytes_sent(p) for p in players)
        + (service.hls.bytes_sent.get(stream.key, 0) if service.hls is not None else 0),
        "players": len(players) + hls_viewers,
        "players_by_protocol": by_protocol,
        "uptime_s": round(uptime, 3) if uptime is not None else None,
        "published_at": service.sampler.published_wall_s(stream),
        "recording": (
            {"path": str(recorder.path), "bytes": recorder.bytes_written}
            if recorder is not None
            else None
        ),
        "metadata": _json_safe(metadata),
    }


def session_views(service: HTTPService) -> list[dict[str, Any]]:
    """Every RTMP connection and HTTP-FLV / WebSocket-FLV viewer, by id."""
    views: list[dict[str, Any]] = []
    for conn in service.server.connections:
        views.append(
            {
                "id": conn.id,
                "protocol": "rtmp",
                "remote": conn.remote,
                "app": conn.app,
                "connected": conn.connected,
                "publishing": [
                    {"stream_id": sid, "name": p.stream.name}
                    for sid, p in sorted(conn.publishing.items())
                ],
                "playing": [
                    {
                        "stream_id": sid,
                        "name": p.stream.name,
                        "bytes_sent": p.player.bytes_sent,
                        "messages_dropped": p.player.messages_dropped,
                    }
                    for sid, p in sorted(conn.playing.items())
                ],
            }
        )
    for viewer in service.viewers.values():
        player = viewer.player
        views.append(
            {
                "id": viewer.id,
                "protocol": viewer.protocol,
                "remote": viewer.remote,
                "app": viewer.app,
                "connected": True,
                "publishing": [],
                "playing": [
                    {
                        "stream_id": 0,
                        "name": viewer.name,
                        "bytes_sent": player.bytes_sent if player else 0,
                        "messages_dropped": player.messages_dropped if player else 0,
                    }
                ],
                "started_at": viewer.started_at,
            }
        )
    views.sort(key=lambda v: int(v["id"]))
    return views


# -- handlers: server, streams, sessions ----------------------------------------------------


def _stream_or_404(request: web.Request) -> Stream:
    server = _service(request).server
    app, name = request.match_info["app"], request.match_info["name"]
    stream = server.registry.get(app, name)
    if stream is None:
        raise web.HTTPNotFound(
            text=_dumps({"error": f"no stream {app}/{name}"}), content_type="application/json"
        )
    return stream


async def get_server(request: web.Request) -> web.Response:
    """``GET /api/server``."""
    service = _service(request)
    server = service.server
    hls_viewers = service.hls.hls_viewers_total() if service.hls is not None else 0
    return _json(
        {
            "version": aiortmp.__version__,
            "uptime_s": round(time.monotonic() - service.started_monotonic, 3),
            "connections": len(server.connections),
            "streams": len(server.registry.live()),
            "players": sum(s.player_count for s in server.registry) + hls_viewers,
            "http_viewers": len(service.viewers),
            "hls_viewers": hls_viewers,
            "stats": dict(server.stats),
            "rtmp_addresses": [f"{h}:{p}" for h, p in server.addresses],
            "http_addresses": [f"{h}:{p}" for h, p in service.addresses],
            "recording_enabled": server.config.record_dir is not None,
            "hls_enabled": service.hls is not None,
        }
    )


async def list_streams(request: web.Request) -> web.Response:
    """``GET /api/streams``: live streams (``?all=1``: also streams only players wait on)."""
    service = _service(request)
    everything = request.query.get("all", "") in ("1", "true", "yes")
    streams = [s for s in service.server.registry if everything or s.is_live]
    streams.sort(key=lambda s: s.key)
    return _json({"streams": [stream_view(service, s) for s in streams]})


async def get_stream(request: web.Request) -> web.Response:
    """``GET /api/streams/{app}/{name}``."""
    return _json(stream_view(_service(request), _stream_or_404(request)))


async def kick_publisher(request: web.Request) -> web.Response:
    """``DELETE /api/streams/{app}/{name}``: disconnect the publisher (players stay)."""
    stream = _stream_or_404(request)
    source = stream.source
    if source is None:
        return _error(404, f"{stream.app}/{stream.name} has no publisher")
    logger.warning(
        "[%d %s] publisher of %s/%s kicked through the HTTP API",
        source.session_id,
        source.remote,
        stream.app,
        stream.name,
    )
    source.stop("kicked through the HTTP API")
    return _json({"kicked": source.session_id})


async def start_recording(request: web.Request) -> web.Response:
    """``POST /api/streams/{app}/{name}/record``."""
    service = _service(request)
    server = service.server
    stream = _stream_or_404(request)
    if not stream.is_live:
        return _error(409, f"{stream.app}/{stream.name} is not live")
    if server.config.record_dir is None:
        return _error(409, "recording is not configured (record_dir)")
    recorder = server.recording.start_recording(stream)
    if recorder is None:
        return _error(500, "cannot create the recording file (see the server log)")
    return _json({"recording": {"path": str(recorder.path), "bytes": recorder.bytes_written}})


async def stop_recording(request: web.Request) -> web.Response:
    """``DELETE /api/streams/{app}/{name}/record``."""
    server = _service(request).server
    stream = _stream_or_404(request)
    recorder = server.recording.stop_recording(stream)
    if recorder is None:
        return _error(404, f"{stream.app}/{stream.name} is not being recorded")
    return _json({"stopped": {"path": str(recorder.path), "bytes": recorder.bytes_written}})


async def list_sessions(request: web.Request) -> web.Response:
    """``GET /api/sessions``."""
    return _json({"sessions": session_views(_service(request))})


async def close_session(request: web.Request) -> web.Response:
    """``DELETE /api/sessions/{id}``."""
    service = _service(request)
    try:
        session_id = int(request.match_info["id"])
    except ValueError:
        return _error(400, "session id must be an integer")
    for conn in list(service.server.connections):
        if conn.id == session_id:
            conn.log(logging.WARNING, "closed through the HTTP API")
            conn.close()
            return _json({"closed": session_id})
    viewer = service.viewers.get(session_id)
    if viewer is not None:
        viewer.close()
        return _json({"closed": session_id})
    return _error(404, f"no session {session_id}")


# -- handlers: channel keys -----------------------------------------------------------------


def _channel_keys(request: web.Request) -> ChannelKeys:
    keys = getattr(_service(request).server, "channel_keys", None)
    if keys is None:
        raise web.HTTPServiceUnavailable(
            text=_dumps({"error": "channel keys are not available on this server"}),
            content_type="application/json",
        )
    return cast(ChannelKeys, keys)


async def list_keys(request: web.Request) -> web.Response:
    """``GET /api/keys``: ``{"keys": {room: key}}``."""
    return _json({"keys": dict(_channel_keys(request).list())})


async def create_key(request: web.Request) -> web.Response:
    """``POST /api/keys`` ``{"room": NAME}``: a new key for the room (replacing any)."""
    keys = _channel_keys(request)
    room = (await _body(request)).get("room")
    if not isinstance(room, str) or not room:
        return _error(400, '"room" must be a non-empty string')
    return _json({"room": room, "key": keys.create(room)}, 201)


async def revoke_key(request: web.Request) -> web.Response:
    """``DELETE /api/keys/{room}``."""
    room = request.match_info["room"]
    if not _channel_keys(request).revoke(room):
        return _error(404, f"room {room} has no key")
    return _json({"revoked": room})


def _livego(status: int, data: str) -> web.Response:
    # livego answers {"status": N, "data": ...} with the same HTTP status.
    return _json({"status": status, "data": data}, status)


def _room(request: web.Request) -> str | None:
    return request.query.get("room", "") or None


async def control_get(request: web.Request) -> web.Response:
    """livego ``GET /control/get?room=NAME``: the room's key, created if it has none."""
    room = _room(request)
    if room is None:
        return _livego(400, "url: /control/get?room=<ROOM_NAME>")
    keys = _channel_keys(request)
    key = keys.list().get(room)
    return _livego(200, key if key is not None else keys.create(room))


async def control_reset(request: web.Request) -> web.Response:
    """livego ``GET /control/reset?room=NAME``: a new key for the room."""
    room = _room(request)
    if room is None:
        return _livego(400, "url: /control/reset?room=<ROOM_NAME>")
    return _livego(200, _channel_keys(request).create(room))


async def control_delete(request: web.Request) -> web.Response:
    """livego ``GET /control/delete?room=NAME``."""
    room = _room(request)
    if room is None:
        return _livego(400, "url: /control/delete?room=<ROOM_NAME>")
    if _channel_keys(request).revoke(room):
        return _livego(200, "Ok")
    return _livego(404, "room not found")


# -- handlers: relays ---------------------------------------------------------------------


def _relay(request: web.Request) -> RelayControl:
    relay = getattr(_service(request).server, "relay", None)
    if relay is None:
        raise web.HTTPServiceUnavailable(
            text=_dumps({"error": "relays are not available on this server"}),
            content_type="application/json",
        )
    return cast(RelayControl, relay)


async def list_relays(request: web.Request) -> web.Response:
    """``GET /api/relays``: push destinations, and running pulls when the relay has them."""
    relay = _relay(request)
    body: dict[str, Any] = {"relays": _json_safe(relay.status())}
    pull_status = getattr(relay, "pull_status", None)
    if callable(pull_status):
        body["pulls"] = _json_safe(pull_status())
    return _json(body)


async def add_relay(request: web.Request) -> web.Response:
    """``POST /api/relays`` ``{"app": ..., "url": "rtmp://...", "stream": ...?}``."""
    relay = _relay(request)
    body = await _body(request)
    app, url, stream = body.get("app"), body.get("url"), body.get("stream")
    if not isinstance(app, str) or not app:
        return _error(400, '"app" must be a non-empty string')
    if not isinstance(url, str) or not url.startswith(("rtmp://", "rtmps://")):
        return _error(400, '"url" must be an rtmp:// or rtmps:// URL')
    if stream is not None and not isinstance(stream, str):
        return _error(400, '"stream" must be a string')
    try:
        relay_id = relay.add_push(app, url, stream)
    except ValueError as exc:
        return _error(400, str(exc))
    return _json({"id": relay_id}, 201)


async def remove_relay(request: web.Request) -> web.Response:
    """``DELETE /api/relays/{id}``."""
    relay_id = request.match_info["id"]
    if not _relay(request).remove_push(relay_id):
        return _error(404, f"no relay {relay_id}")
    return _json({"removed": relay_id})


# -- handlers: cluster --------------------------------------------------------------------


class ClusterStatus(Protocol):
    """``server.cluster``: the cluster directory."""

    async def status(self) -> dict[str, Any]:
        """Streams with their origin node, and the nodes' load."""
        ...


async def get_cluster(request: web.Request) -> web.Response:
    """``GET /api/cluster``: see :meth:`aiortmp.server.cluster.ClusterService.status`."""
    cluster = getattr(_service(request).server, "cluster", None)
    if cluster is None:
        return _error(404, "this server is not in a cluster ([cluster] redis is not set)")
    return _json(_json_safe(await cast(ClusterStatus, cluster).status()))


def setup_api(app: web.Application) -> None:
    """Add the ``/api`` and ``/control`` routes to ``app`` (all ``Access.CONTROL``)."""
    r = app.router
    r.add_get("/api/server", get_server)
    r.add_get("/api/streams", list_streams)
    r.add_get("/api/streams/{app}/{name}", get_stream)
    r.add_delete("/api/streams/{app}/{name}", kick_publisher)
    r.add_post("/api/streams/{app}/{name}/record", start_recording)
    r.add_delete("/api/streams/{app}/{name}/record", stop_recording)
    r.add_get("/api/sessions", list_sessions)
    r.add_delete("/api/sessions/{id}", close_session)
    r.add_get("/api/keys", list_keys)
    r.add_post("/api/keys", create_key)
    r.add_delete("/api/keys/{room}", revoke_key)
    # livego changes state on GET: safe only because the guard refuses every control request
    # a browser marks as cross-site (an <img src=".../control/reset"> on another page).
    r.add_get("/control/get", control_get)
    r.add_get("/control/reset", control_reset)
    r.add_get("/control/delete", control_delete)
    r.add_get("/api/relays", list_relays)
    r.add_post("/api/relays", add_relay)
    r.add_delete("/api/relays/{id}", remove_relay)
    r.add_get("/api/cluster", get_cluster)
