"""HLS and Low-Latency HLS: a queued output per stream, served by the HTTP surface.

- :mod:`.playlist` — media playlist windows and the playlist text (RFC 8216bis); sans-I/O;
- :mod:`.segmenter` — tracks → variants, frames → segments and parts (fMP4 / MPEG-TS);
  sans-I/O;
- :mod:`.output` — :class:`HLSOutput`, the queued output of one stream, and the waits of
  blocking requests;
- :mod:`.service` — :class:`HLSService`: outputs started on request, stopped when idle,
  viewers, access decisions;
- :mod:`.handlers` — the aiohttp handlers;
- :mod:`.disk` — the optional directory output (classic HLS files for nginx or a CDN).
"""

from .handlers import HLSHandlers, add_routes
from .output import FMP4, TS, HLSOutput, HLSSettings, Variant
from .playlist import MediaPlaylist, VariantStream, render_multivariant
from .segmenter import FMP4Segmenter, TrackCollector, TSSegmenter, VariantTracks
from .service import HLSService

__all__ = [
    "FMP4",
    "TS",
    "FMP4Segmenter",
    "HLSHandlers",
    "HLSOutput",
    "HLSService",
    "HLSSettings",
    "MediaPlaylist",
    "TSSegmenter",
    "TrackCollector",
    "Variant",
    "VariantStream",
    "VariantTracks",
    "add_routes",
    "render_multivariant",
]
