"""``GET /metrics``: the server's state in the Prometheus text format (prometheus-client).

Nothing is instrumented on the media path: a collector reads the server's counters
(``server.stats``, which hold ended sessions) plus the live streams and players at scrape
time, so a scrape costs one walk over the streams and the hot path costs nothing.

Metrics (all prefixed ``aiortmp_``):

- ``connections`` (gauge), ``http_viewers`` (gauge), ``streams`` (gauge),
  ``players{protocol}`` (gauge; ``hls``: distinct clients with a recent HLS request);
- ``connections_accepted_total``, ``bytes_received_total``, ``bytes_sent_total``,
  ``messages_dropped_total`` (slow players), ``players_dropped_total``,
  ``handshake_failures_total``, ``auth_denials_total``, ``protocol_errors_total``,
  ``idle_timeouts_total``, ``connections_refused_total``, ``webhook_events_dropped_total``,
  ``webhook_failures_total`` (counters) and any other ``server.stats`` counter;
- per stream ``{app, name}``: ``stream_bitrate_in_bps``, ``stream_bitrate_out_bps``,
  ``stream_players``, ``stream_bytes_received_total``, ``stream_uptime_seconds``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from .keys import SERVICE_KEY
from .sampler import player_bytes_sent, player_messages_dropped

if TYPE_CHECKING:
    from . import HTTPService

__all__ = ["ServerCollector", "handle_metrics"]

# server.stats keys with their help text; they are exported even while still zero.
_COUNTERS = {
    "connections_total": ("connections_accepted", "RTMP connections accepted"),
    "connections_refused": (
        "connections_refused",
        "RTMP connections refused by max_connections(_per_ip)",
    ),
    "handshake_failures": ("handshake_failures", "RTMP handshakes that failed or timed out"),
    "auth_denials": ("auth_denials", "connect/publish/play requests denied by a policy"),
    "protocol_errors": ("protocol_errors", "connections closed on a protocol error"),
    "idle_timeouts": ("idle_timeouts", "connections closed for sending nothing"),
    "players_dropped": ("players_dropped", "players disconnected by the slow-player policy"),
    "webhook_events_dropped": (
        "webhook_events_dropped",
        "webhook events dropped because the queue was full",
    ),
    "webhook_failures": ("webhook_failures", "webhook events not delivered after every retry"),
}
# Counters computed from stats plus live objects.
_COMBINED = frozenset({"bytes_in", "bytes_out", "messages_dropped"})


class ServerCollector:
    """A prometheus-client collector reading one server at scrape time.

    Args:
        service: the HTTP service (server, viewers, sampler).
    """

    def __init__(self, service: HTTPService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family (called by the registry at each scrape)."""
        service = self.service
        server = service.server
        stats = server.stats
        streams = list(server.registry)
        live = [s for s in streams if s.is_live]

        yield _gauge("connections", "open RTMP connections", len(server.connections))
        yield _gauge("http_viewers", "open HTTP-FLV/WebSocket-FLV viewers", len(service.viewers))
        yield _gauge("streams", "live (published) streams", len(live))

        players = GaugeMetricFamily(
            "aiortmp_players", "attached players by protocol", labels=["protocol"]
        )
        by_protocol = {"rtmp": 0, "http-flv": 0, "ws-flv": 0}
        bytes_out = stats["bytes_out"]
        dropped = stats["messages_dropped"]
        for stream in streams:
            for player in stream.players:
                protocol = _protocol(player)
                by_protocol[protocol] = by_protocol.get(protocol, 0) + 1
                bytes_out += player_bytes_sent(player)
                dropped += player_messages_dropped(player)
        hls_counts = service.hls.viewer_counts() if service.hls is not None else {}
        if service.hls is not None:
            bytes_out += service.hls.bytes_sent_total
        by_protocol["hls"] = sum(hls_counts.values())
        for protocol, count in sorted(by_protocol.items()):
            players.add_metric([protocol], count)
        yield players

        bytes_in = stats["bytes_in"] + sum(s.bytes_in for s in live)
        yield _counter("bytes_received", "media payload bytes received from publishers", bytes_in)
        yield _counter("bytes_sent", "bytes sent to players", bytes_out)
        yield _counter("messages_dropped", "messages dropped for slow players", dropped)
        for key, (name, help_text) in _COUNTERS.items():
            yield _counter(name, help_text, stats[key])
        for key, value in sorted(stats.items()):
            if key not in _COUNTERS and key not in _COMBINED:
                name = key[: -len("_total")] if key.endswith("_total") else key
                yield _counter(name, f"server counter {key}", value)

        labels = ["app", "name"]
        rate_in = GaugeMetricFamily(
            "aiortmp_stream_bitrate_in_bps", "publisher bitrate, bits/s", labels=labels
        )
        rate_out = GaugeMetricFamily(
            "aiortmp_stream_bitrate_out_bps", "bitrate sent to players, bits/s", labels=labels
        )
        stream_players = GaugeMetricFamily(
            "aiortmp_stream_players", "players of the stream", labels=labels
        )
        stream_bytes = CounterMetricFamily(
            "aiortmp_stream_bytes_received", "media bytes received for the stream", labels=labels
        )
        uptime = GaugeMetricFamily(
            "aiortmp_stream_uptime_seconds", "seconds since the stream was published", labels=labels
        )
        for stream in live:
            values = [stream.app, stream.name]
            rate_in.add_metric(values, stream.bitrate_bps)
            rate_out.add_metric(values, service.sampler.bitrate_out_bps.get(stream.key, 0))
            stream_players.add_metric(values, stream.player_count + hls_counts.get(stream.key, 0))
            stream_bytes.add_metric(values, stream.bytes_in)
            seconds = service.sampler.uptime_s(stream)
            if seconds is not None:
                uptime.add_metric(values, seconds)
        yield rate_in
        yield rate_out
        yield stream_players
        yield stream_bytes
        yield uptime


def _protocol(player: object) -> str:
    protocol = getattr(getattr(player, "host", None), "protocol", None)
    return protocol if isinstance(protocol, str) else "rtmp"


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"aiortmp_{name}", help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    # CounterMetricFamily appends the "_total" suffix itself.
    return CounterMetricFamily(f"aiortmp_{name}", help_text, value=value)


def make_registry(service: HTTPService) -> CollectorRegistry:
    """A registry of its own per service (several servers may run in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(service))
    return registry


async def handle_metrics(request: web.Request) -> web.Response:
    """``GET /metrics``."""
    service = request.app[SERVICE_KEY]
    body = generate_latest(service.metrics_registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
