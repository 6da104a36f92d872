"""The HTTP API and ``/metrics`` of a server with worker processes: the whole server from
any worker.

Each worker describes itself in a *snapshot* (:func:`local_snapshot`): its streams as
``/api/streams`` shows them, its sessions, its counters and its metric samples — with the
worker links taken out, so that nothing is counted twice: a link's player on the owner is
not a player, and a link's copy of a stream is not another stream (the owner reports its
bitrate in, bytes in and uptime). The worker that answers a request gathers every
worker's snapshot (through the supervisor) and merges them (:func:`merge_server`,
:func:`merge_streams`, :func:`merge_metrics`): players, bytes and bitrates out per stream
are summed over workers, the stream's description comes from its owner.

Changes go where the thing is: closing a session to the worker that has it (session ids
carry the worker number in their high bits), kicking a publisher or starting a recording
to the stream's owner; new channel keys and run-time relays are applied by every worker.
:func:`aggregating_middleware` does this routing in front of the handlers of
:mod:`.api`, which stay the one-process implementation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from aiortmp.hub.stream import Output, Stream, StreamKey

from .api import session_views, stream_view
from .sampler import player_bytes_sent, player_messages_dropped

if TYPE_CHECKING:
    from . import HTTPService

__all__ = [
    "LinkAccounting",
    "Workers",
    "aggregating_middleware",
    "local_snapshot",
    "merge_metrics",
    "merge_server",
    "merge_stream",
    "merge_streams",
]

logger = logging.getLogger("aiortmp.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Per-stream samples only the owner of a stream reports (a link copy has its own).
_OWNER_ONLY = frozenset(
    {
        "aiortmp_stream_bitrate_in_bps",
        "aiortmp_stream_bytes_received_total",
        "aiortmp_stream_uptime_seconds",
    }
)


class LinkAccounting(Protocol):
    """What a worker knows about its links (:class:`~aiortmp.server.worker.WorkerComponent`)."""

    def link_players(self, stream: Stream) -> list[Output]:
        """The players of ``stream`` that are links of other workers."""
        ...

    def link_bitrate_bps(self, key: StreamKey) -> int:
        """Bits per second sent to links of other workers for stream ``key``."""
        ...

    def is_copy(self, stream: Stream) -> bool:
        """True if ``stream`` is fed by a link (another worker owns it)."""
        ...


class Workers(Protocol):
    """How the answering worker reaches the others (through the supervisor)."""

    number: int

    async def gather(self) -> list[dict[str, Any]]:
        """Every worker's ``{"worker": {...}, "data": snapshot}`` (this one's included)."""
        ...

    async def call(self, to: int | str | None, action: str, **args: Any) -> list[dict[str, Any]]:
        """Run ``action`` on worker ``to`` (a number), on the owner of ``args``'s stream
        (``"owner"``), or on every other worker (None); their answers."""
        ...

    def owner(self, app: str, name: str) -> int | None:
        """The worker that owns ``app/name``, if any."""
        ...


# -- a worker's own view ------------------------------------------------------------------


def local_snapshot(service: HTTPService, links: LinkAccounting) -> dict[str, Any]:
    """This worker's part of the server, links taken out (see the module docstring).

    Args:
        service: the worker's HTTP service.
        links: what the worker knows of its links.

    Returns:
        ``{"server": {...}, "streams": [views], "sessions": [...], "metrics": [...]}``; each
        stream view has ``copy`` (fed by a link) besides the fields of ``/api/streams``.
    """
    server = service.server
    views: list[dict[str, Any]] = []
    link_count = 0
    link_bytes = 0
    link_dropped = 0
    copies: list[Stream] = []
    per_stream: dict[StreamKey, tuple[int, int]] = {}
    for stream in server.registry:
        view = stream_view(service, stream)
        linked = links.link_players(stream)
        copy = stream.is_live and links.is_copy(stream)
        if copy:
            copies.append(stream)
        if linked:
            sent = sum(player_bytes_sent(p) for p in linked)
            link_count += len(linked)
            link_bytes += sent
            link_dropped += sum(player_messages_dropped(p) for p in linked)
            view["players"] -= len(linked)
            by_protocol = view["players_by_protocol"]
            by_protocol["rtmp"] = by_protocol.get("rtmp", 0) - len(linked)
            if by_protocol["rtmp"] <= 0:
                del by_protocol["rtmp"]
            view["bytes_out"] -= sent
            rate = links.link_bitrate_bps(stream.key)
            view["bitrate_out_bps"] = max(0, view["bitrate_out_bps"] - rate)
            per_stream[stream.key] = (len(linked), rate)
        view["copy"] = copy
        views.append(view)
    players = sum(s.player_count for s in server.registry) - link_count
    summary = {
        "connections": len(server.connections),
        "streams": sum(1 for s in server.registry.live() if not links.is_copy(s)),
        "players": players,
        "http_viewers": len(service.viewers),
        "stats": dict(server.stats),
    }
    corrections: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("aiortmp_players", (("protocol", "rtmp"),)): -link_count,
        ("aiortmp_bytes_sent_total", ()): -link_bytes,
        ("aiortmp_messages_dropped_total", ()): -link_dropped,
        ("aiortmp_streams", ()): -len(copies),
        ("aiortmp_bytes_received_total", ()): -sum(s.bytes_in for s in copies),
    }
    copy_labels = {(("app", s.app), ("name", s.name)) for s in copies}
    for key, (count, rate) in per_stream.items():
        stream_labels = (("app", key[0]), ("name", key[1]))
        corrections[("aiortmp_stream_players", stream_labels)] = -count
        corrections[("aiortmp_stream_bitrate_out_bps", stream_labels)] = -rate
    metrics = []
    for family in service.metrics_registry.collect():
        samples = []
        for sample in family.samples:
            labels: tuple[tuple[str, str], ...] = tuple(sorted(sample.labels.items()))
            if sample.name in _OWNER_ONLY and labels in copy_labels:
                continue
            value = sample.value + corrections.get((sample.name, labels), 0)
            samples.append([sample.name, dict(labels), max(0.0, value)])
        metrics.append(
            {
                "name": family.name,
                "type": family.type,
                "doc": family.documentation,
                "samples": samples,
            }
        )
    return {
        "server": summary,
        "streams": views,
        "sessions": session_views(service),
        "metrics": metrics,
    }


# -- merging --------------------------------------------------------------------------------


def _sum_counts(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in dicts:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return total


def merge_server(local: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``GET /api/server`` for the whole server.

    Args:
        local: this worker's own ``/api/server`` answer (version, addresses...).
        items: every worker's ``{"worker": info, "data": snapshot}``.

    Returns:
        ``local`` with connections, streams, players, viewers and counters summed over the
        workers, and ``workers``: one entry per worker (number, pid, generation, slot,
        state and its own counts).
    """
    merged = dict(local)
    summaries = [item["data"]["server"] for item in items]
    for field in ("connections", "streams", "players", "http_viewers"):
        merged[field] = sum(int(s[field]) for s in summaries)
    merged["stats"] = _sum_counts(s["stats"] for s in summaries)
    merged["workers"] = sorted(
        (
            {
                **item["worker"],
                **{k: item["data"]["server"][k] for k in ("connections", "players", "streams")},
                "http_viewers": item["data"]["server"]["http_viewers"],
            }
            for item in items
        ),
        key=lambda w: int(w["number"]),
    )
    return merged


def merge_stream(views: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One stream as every worker sees it, merged: the owner's description (its publisher,
    codecs, bitrate in, recording), players and what they are sent summed.

    Args:
        views: the worker views of one ``(app, name)`` (each with ``copy`` and ``worker``).

    Returns:
        The ``/api/streams`` view of the stream for the whole server, with ``workers``:
        the players per worker.
    """
    base = (
        next((v for v in views if v["live"] and not v["copy"]), None)
        or next((v for v in views if v["live"]), None)
        or views[0]
    )
    merged = {k: v for k, v in base.items() if k not in ("copy", "worker")}
    merged["players"] = sum(int(v["players"]) for v in views)
    merged["players_by_protocol"] = _sum_counts(v["players_by_protocol"] for v in views)
    merged["bytes_out"] = sum(int(v["bytes_out"]) for v in views)
    merged["bitrate_out_bps"] = sum(int(v["bitrate_out_bps"]) for v in views)
    merged["workers"] = [
        {"number": v["worker"], "players": v["players"], "copy": v["copy"]} for v in views
    ]
    return merged


def merge_streams(items: Sequence[Mapping[str, Any]], *, everything: bool) -> list[dict[str, Any]]:
    """Every stream of the server (``everything``: also those only players wait on)."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        for view in item["data"]["streams"]:
            view = {**view, "worker": item["worker"]["number"]}
            by_key.setdefault((view["app"], view["name"]), []).append(view)
    merged = [merge_stream(views) for _, views in sorted(by_key.items())]
    return [v for v in merged if everything or v["live"]]


def merge_metrics(items: Sequence[Mapping[str, Any]]) -> bytes:
    """``/metrics`` for the whole server: every sample summed over the workers (the
    snapshots took the links out, so sums count each thing once).

    Returns:
        The Prometheus text exposition.
    """
    families: dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = {}
    for item in items:
        for family in item["data"]["metrics"]:
            _, _, samples = families.setdefault(family["name"], (family["type"], family["doc"], {}))
            for name, labels, value in family["samples"]:
                key = (name, tuple(sorted(labels.items())))
                samples[key] = samples.get(key, 0.0) + float(value)

    class _Merged:
        def collect(self) -> Iterator[Metric]:
            for name, (kind, doc, samples) in families.items():
                metric = Metric(name, doc, kind)
                for (sample_name, labels), value in samples.items():
                    metric.add_sample(sample_name, dict(labels), value)
                yield metric

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged())
    return generate_latest(registry)


# -- the middleware ---------------------------------------------------------------------------


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(
        value, status=status, dumps=lambda v: json.dumps(v, separators=(",", ":"))
    )


def _first(answers: Sequence[Mapping[str, Any]]) -> web.Response | None:
    """The first answer that found what it was asked about (status < 400), else the last."""
    found = [a for a in answers if int(a.get("status", 500)) < 400]
    answer = found[0] if found else (answers[-1] if answers else None)
    if answer is None:
        return None
    return _json(answer.get("body", {}), int(answer.get("status", 500)))


def _body_of(response: web.StreamResponse) -> dict[str, Any]:
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        return {}
    value = json.loads(body or b"{}")
    return value if isinstance(value, dict) else {}


def _merge_relays(local: dict[str, Any], answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``GET /api/relays``: destinations by id, counters summed, streams listed from every
    worker (each pushes the streams it owns); pulls and links listed from every worker."""
    relays = {r["id"]: dict(r) for r in local.get("relays", [])}
    pulls = list(local.get("pulls", []))
    for answer in answers:
        other = answer.get("body", {})
        for relay in other.get("relays", []):
            mine = relays.get(relay["id"])
            if mine is None:
                relays[relay["id"]] = dict(relay)
                continue
            for field in ("reconnects", "bytes_sent", "dropped"):
                mine[field] = int(mine.get(field, 0)) + int(relay.get(field, 0))
            mine["streams"] = list(mine.get("streams", [])) + list(relay.get("streams", []))
        pulls += other.get("pulls", [])
    merged = {**local, "relays": list(relays.values())}
    if "pulls" in local:
        merged["pulls"] = pulls
    return merged


def aggregating_middleware(workers: Workers) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware answering the API and ``/metrics`` for every worker.

    Runs after the control guard: only requests allowed to see one worker get here.
    Reads are answered from every worker's snapshot; changes go where their object is
    (module docstring); the rest is the handler's.

    Args:
        workers: how to reach the other workers.

    Returns:
        The middleware.
    """

    async def server_view(request: web.Request, handler: Handler) -> web.StreamResponse:
        local = await handler(request)
        if local.status != 200:
            return local
        return _json(merge_server(_body_of(local), await workers.gather()))

    async def streams(request: web.Request, handler: Handler) -> web.StreamResponse:
        everything = request.query.get("all", "") in ("1", "true", "yes")
        return _json({"streams": merge_streams(await workers.gather(), everything=everything)})

    async def one_stream(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = (request.match_info["app"], request.match_info["name"])
        merged = merge_streams(await workers.gather(), everything=True)
        found = [s for s in merged if (s["app"], s["name"]) == key]
        if not found:
            return _json({"error": f"no stream {key[0]}/{key[1]}"}, 404)
        return _json(found[0])

    async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
        items = await workers.gather()
        views = [s for item in items for s in item["data"]["sessions"]]
        views.sort(key=lambda s: int(s["id"]))
        return _json({"sessions": views})

    async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = web.Response(body=merge_metrics(await workers.gather()))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def relays(request: web.Request, handler: Handler) -> web.StreamResponse:
        local = await handler(request)
        if local.status != 200:
            return local
        return _json(_merge_relays(_body_of(local), await workers.call(None, "relays")))

    async def close_session(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            session_id = int(request.match_info["id"])
        except ValueError:
            return await handler(request)
        number = session_id >> 32  # the worker's number is in the high bits
        if number and number != workers.number:
            answer = _first(await workers.call(number, "close_session", id=session_id))
            return answer or _json({"error": f"no session {session_id}"}, 404)
        return await handler(request)

    async def at_owner(request: web.Request, handler: Handler) -> web.StreamResponse:
        app, name = request.match_info["app"], request.match_info["name"]
        owner = workers.owner(app, name)
        if owner is not None and owner != workers.number:
            route = request.match_info.route.resource
            record = route is not None and route.canonical.endswith("/record")
            action = f"record_{request.method}" if record else "kick"
            answer = _first(await workers.call(owner, action, app=app, name=name))
            if answer is not None:
                return answer
        return await handler(request)

    async def keys_changed(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if response.status < 400:
            await workers.call(None, "reload_keys")
        return response

    async def relay_added(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if response.status < 400:
            body = await request.json()  # read and checked by the handler already
            await workers.call(
                None, "relay_add", app=body["app"], url=body["url"], stream=body.get("stream")
            )
        return response

    async def relay_removed(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        await workers.call(None, "relay_remove", id=request.match_info["id"])
        return response

    Route = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
    routes: dict[tuple[str, str], Route] = {
        ("GET", "/api/server"): server_view,
        ("GET", "/api/streams"): streams,
        ("GET", "/api/streams/{app}/{name}"): one_stream,
        ("GET", "/api/sessions"): sessions,
        ("GET", "/metrics"): metrics,
        ("GET", "/api/relays"): relays,
        ("DELETE", "/api/sessions/{id}"): close_session,
        ("DELETE", "/api/streams/{app}/{name}"): at_owner,
        ("POST", "/api/streams/{app}/{name}/record"): at_owner,
        ("DELETE", "/api/streams/{app}/{name}/record"): at_owner,
        ("POST", "/api/keys"): keys_changed,
        ("DELETE", "/api/keys/{room}"): keys_changed,
        ("GET", "/control/get"): keys_changed,
        ("GET", "/control/reset"): keys_changed,
        ("GET", "/control/delete"): keys_changed,
        ("POST", "/api/relays"): relay_added,
        ("DELETE", "/api/relays/{id}"): relay_removed,
    }

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = routes.get((request.method, resource.canonical if resource is not None else ""))
        if route is None:
            return await handler(request)
        return await route(request, handler)

    return middleware
