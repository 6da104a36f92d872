"""The HLS output of one stream: a queued output that keeps its segments in memory.

:class:`HLSOutput` is a :class:`~aiortmp.outputs.queued.QueuedOutput`: the stream hands it
packets, its own task turns their units into segments and parts (:mod:`.segmenter`), off
the publisher's read. It holds, per *variant* (one per video track) and per *format*
(``fmp4`` LL-HLS, always; ``ts`` classic HLS, from the first request for it), a
:class:`~.playlist.MediaPlaylist`, and lets HTTP requests wait for what does not exist yet
(:meth:`HLSOutput.wait`: blocking playlist reload and preload hints, RFC 8216bis §6.2.5.2).

Resource names carry a random token per output, so that a republished stream (a new
output, Media Sequence Numbers from 0 again) never reuses the URI of a segment a CDN may
hold as immutable::

    v0.m3u8                   fMP4 media playlist of variant 0 (LL-HLS)
    v0-ts.m3u8                MPEG-TS media playlist of variant 0
    v0-<token>-init0.mp4      initialization segment (a configuration change adds init1...)
    v0-<token>-12.m4s         segment 12;  v0-<token>-12.3.m4s: its part 3
    v0-<token>-12.ts          MPEG-TS segment 12

Hot path: :meth:`HLSOutput.consume` (per frame: one segmenter call per variant and
format); requests are answered from rendered playlists cached per playlist version.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiortmp.hub.packet import Packet
from aiortmp.hub.stream import Stream
from aiortmp.media.errors import CodecHeaderError
from aiortmp.media.samples import Frame, MediaType, TrackConfig
from aiortmp.protocol.errors import LocalProtocolError

from ..queued import QueuedOutput
from .playlist import MediaPlaylist, RenditionReport, VariantStream, render_multivariant
from .segmenter import (
    FMP4Segmenter,
    TrackCollector,
    TSSegmenter,
    VariantTracks,
    config_changed,
    describe_tracks,
)

__all__ = ["FMP4", "FORMATS", "HLSOutput", "HLSSettings", "TS", "Variant"]

logger = logging.getLogger("aiortmp.hls")

#: LL-HLS over fragmented MP4 (CMAF): the default format.
FMP4 = "fmp4"
#: Classic HLS over MPEG-TS (``?format=ts``).
TS = "ts"
FORMATS = (FMP4, TS)

#: Re-anchor the wall clock of the media timeline past this drift (publisher stalls).
_MAX_CLOCK_DRIFT_S = 1.0
#: Rendered playlists kept per output version (distinct query strings: tokens).
_RENDER_CACHE_SIZE = 256


@dataclass(frozen=True, kw_only=True, slots=True)
class HLSSettings:
    """How an output cuts and keeps segments (from ``[hls]``).

    Attributes:
        segment_target_ms: segment duration to aim for (cut at keyframes), ms.
        part_target_ms: LL-HLS part duration to aim for, ms.
        window_segments: complete segments kept per media playlist.
        max_bytes: bytes a stream's segments may hold per format (shared by its variants).
        queue_bytes: the output's queue limit (it stops past it).
        track_wait_ms: media to wait for an audio track after the first keyframe, ms.
    """

    segment_target_ms: int = 1000
    part_target_ms: int = 200
    window_segments: int = 12
    max_bytes: int = 64 * 1024 * 1024
    queue_bytes: int = 16 * 1024 * 1024
    track_wait_ms: int = 1000


class Variant:
    """One variant stream: a video track (or audio only) with the stream's audio track.

    Args:
        index: its position in the multivariant playlist (``v{index}``).
        tracks: its tracks.
        token: the output's resource token.
        settings: the output's settings.
        max_bytes: bytes its playlists may hold each.

    Attributes:
        fmp4: its LL-HLS segmenter.
        ts: its MPEG-TS segmenter once TS was asked for, else None.
        playlists: its media playlists by format.

    Raises:
        CodecHeaderError: a configuration record is malformed.
        LocalProtocolError: fMP4 cannot carry one of the codecs.
    """

    def __init__(
        self,
        index: int,
        tracks: VariantTracks,
        *,
        token: str,
        settings: HLSSettings,
        max_bytes: int,
    ) -> None:
        self.index = index
        self.name = f"v{index}"
        self.tracks = tracks
        self.settings = settings
        self.max_bytes = max_bytes
        self.prefix = f"{self.name}-{token}-"
        playlist = MediaPlaylist(
            name=self.prefix,
            extension="m4s",
            low_latency=True,
            segment_target_s=settings.segment_target_ms / 1000,
            part_target_s=settings.part_target_ms / 1000,
            window_segments=settings.window_segments,
            max_bytes=max_bytes,
        )
        self.fmp4 = FMP4Segmenter(
            tracks,
            playlist,
            init_prefix=f"{self.prefix}init",
            segment_target_ms=settings.segment_target_ms,
            part_target_ms=settings.part_target_ms,
        )
        self.ts: TSSegmenter | None = None
        self.playlists: dict[str, MediaPlaylist] = {FMP4: playlist}

    def playlist_uri(self, fmt: str) -> str:
        """The media playlist's URI relative to the multivariant playlist."""
        return f"{self.name}.m3u8" if fmt == FMP4 else f"{self.name}-ts.m3u8"

    def enable_ts(self) -> None:
        """Start its MPEG-TS form (from its next keyframe)."""
        if self.ts is not None:
            return
        playlist = MediaPlaylist(
            name=self.prefix,
            extension="ts",
            low_latency=False,
            segment_target_s=self.settings.segment_target_ms / 1000,
            part_target_s=self.settings.part_target_ms / 1000,
            window_segments=self.settings.window_segments,
            max_bytes=self.max_bytes,
        )
        self.ts = TSSegmenter(
            self.tracks, playlist, segment_target_ms=self.settings.segment_target_ms
        )
        self.playlists[TS] = playlist

    def has(self, fmt: str) -> bool:
        """Whether the variant exists in ``fmt`` (MPEG-TS: its codecs can be carried)."""
        if fmt == FMP4:
            return True
        return self.ts is not None and self.ts.carried

    def add(self, frame: Frame, wall_s: float, *, formats: tuple[str, ...] = FORMATS) -> bool:
        """Give a frame to the segmenters of ``formats``; True if a playlist changed."""
        changed = False
        if FMP4 in formats:
            changed = self.fmp4.add(frame, wall_s)
        if self.ts is not None and TS in formats:
            changed = self.ts.add(frame, wall_s) or changed
        return changed

    def update_track(self, config: TrackConfig) -> None:
        """A track of this variant got a new configuration.

        Raises:
            CodecHeaderError: the new record is malformed.
        """
        video = config if config.media is MediaType.VIDEO else self.tracks.video
        audio = config if config.media is MediaType.AUDIO else self.tracks.audio
        self.fmp4.update_track(config)
        self.tracks = VariantTracks(video=video, audio=audio)
        if self.ts is not None:
            self.ts.update_track(config)

    def finish(self) -> None:
        """The stream ended: complete the last segments, ``EXT-X-ENDLIST``."""
        self.fmp4.finish()
        if self.ts is not None:
            self.ts.finish()

    def stream_info(self, fmt: str, query: str = "") -> VariantStream:
        """Its ``EXT-X-STREAM-INF`` in ``fmt``."""
        playlist = self.playlists[fmt]
        duration_s = sum(s.duration_s for s in playlist.segments if s.complete)
        size = sum(len(s.data) for s in playlist.segments if s.complete)
        average = int(size * 8 / duration_s) if duration_s > 0 else None
        codecs = self.fmp4.codecs if fmt == FMP4 or self.ts is None else self.ts.codecs
        return VariantStream(
            uri=self.playlist_uri(fmt),
            bandwidth_bps=max(playlist.peak_bps, average or 0),
            average_bandwidth_bps=average,
            codecs=codecs,
            resolution=self.fmp4.resolution if self.tracks.video is not None else None,
            frame_rate=self.fmp4.frame_rate,
        )


class HLSOutput(QueuedOutput):
    """The HLS output of a stream: variants, their playlists, waiting requests.

    Args:
        stream: the stream.
        settings: how to cut and keep segments.
        clock: the wall clock (Unix seconds), for ``EXT-X-PROGRAM-DATE-TIME``.
        on_overflow: called when the output fell behind and stopped.
        on_change: called (on the event loop) after each batch that changed a playlist,
            and once when the output finished (the directory writer).

    Attributes:
        token: the random part of its resource names.
        variants: the variant streams, once the tracks are known.
        collector: learns the tracks.
        version: incremented whenever a playlist changes.
        finished: the last segments are complete (``EXT-X-ENDLIST``).
        last_request: event loop time of the last request (the service's idle timer).
        formats_requested: event loop time of the last request per format.
        started_at: event loop time it started.
        demand: True: HLS viewers are behind it (an on-demand pull of the stream stays
            while it runs; see ``Stream.demand``).
    """

    demand = True

    def __init__(
        self,
        stream: Stream,
        settings: HLSSettings,
        *,
        clock: Callable[[], float] = time.time,
        on_overflow: Callable[[QueuedOutput], None] | None = None,
        on_change: Callable[[HLSOutput], None] | None = None,
    ) -> None:
        super().__init__(
            stream,
            max_bytes=settings.queue_bytes,
            label=f"hls {stream.app}/{stream.name}",
            on_overflow=on_overflow,
        )
        self.settings = settings
        self.clock = clock
        self.on_change = on_change
        self.token = secrets.token_hex(4)
        self.collector = TrackCollector(wait_ms=settings.track_wait_ms)
        self.variants: list[Variant] = []
        self.version = 0
        self.finished = False
        loop_time = asyncio.get_running_loop().time()
        self.started_at = loop_time
        self.last_request = loop_time
        self.formats_requested: dict[str, float] = {FMP4: loop_time}
        self._configs: dict[tuple[MediaType, int], TrackConfig] = {}
        self._audio_key: tuple[MediaType, int] | None = None
        self._changed = asyncio.Event()
        self._anchor: tuple[float, int] | None = None  # (wall s, dts ms)
        self._ready: set[str] = set()
        self._ts_wanted = False
        self._ts_replay = False
        self._render_cache: dict[tuple[int, str, str, bool], bytes] = {}
        self._render_version = -1

    # -- requests (event loop) ---------------------------------------------------------

    def touch(self, fmt: str, now: float) -> None:
        """A request for ``fmt`` arrived at event loop time ``now``; TS starts here."""
        self.last_request = now
        self.formats_requested[fmt] = now
        if fmt == TS and not self._ts_wanted:
            self._ts_wanted = True
            # Variants that run already get the current GOP at the next batch.
            self._ts_replay = bool(self.variants)
            for variant in self.variants:
                variant.enable_ts()

    def ready(self, fmt: str) -> bool:
        """Every variant of ``fmt`` has a complete segment (or the output finished)."""
        if self.finished or fmt in self._ready:
            return True  # once ready, always: windows never lose their last segment
        variants = [v for v in self.variants if fmt == FMP4 or v.ts is not None]
        if not variants:
            return False
        if fmt == TS and all(v.ts is not None and not v.ts.carried for v in variants):
            return True  # known: nothing to serve (the handler answers 404)
        ready = all(
            v.playlists[fmt].complete_count > 0 or v.playlists[fmt].ended
            for v in variants
            if v.has(fmt)
        )
        if ready:
            self._ready.add(fmt)
        return ready

    def variant(self, index: int) -> Variant | None:
        """Variant ``index``, or None."""
        if 0 <= index < len(self.variants):
            return self.variants[index]
        return None

    async def wait(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds, the output finishes, or ``timeout_s`` passed.

        Returns:
            ``predicate()`` at the end.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate():
            remaining = deadline - loop.time()
            if self.finished or remaining <= 0:
                return predicate()
            try:
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
            except TimeoutError:
                return predicate()
        return True

    def _notify(self) -> None:
        self.version += 1
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        if self.on_change is not None:
            self.on_change(self)

    def multivariant(self, fmt: str, *, query: str = "", prefix: str = "") -> str:
        """The multivariant playlist of ``fmt``.

        Args:
            fmt: :data:`FMP4` or :data:`TS`.
            query: appended to every URI.
            prefix: prepended to every URI (``"cam/"`` for the ``/{app}/{name}.m3u8``
                alias, whose base is the application's directory).
        """
        streams = []
        for variant in self.variants:
            if not variant.has(fmt):
                continue
            info = variant.stream_info(fmt)
            streams.append(
                VariantStream(
                    uri=prefix + info.uri,
                    bandwidth_bps=info.bandwidth_bps,
                    average_bandwidth_bps=info.average_bandwidth_bps,
                    codecs=info.codecs,
                    resolution=info.resolution,
                    frame_rate=info.frame_rate,
                )
            )
        return render_multivariant(streams, query=query)

    def media_playlist(self, variant: Variant, fmt: str, *, query: str, skip: bool) -> bytes:
        """A variant's media playlist, rendered once per output version and request form."""
        if self._render_version != self.version:
            self._render_cache.clear()
            self._render_version = self.version
        key = (variant.index, fmt, query, skip)
        cached = self._render_cache.get(key)
        if cached is not None:
            return cached
        reports = []
        if fmt == FMP4:
            reports = [
                other.playlists[FMP4].report(other.playlist_uri(FMP4))
                for other in self.variants
                if other is not variant
            ]
        text = variant.playlists[fmt].render(query=query, skip=skip, reports=reports)
        data = text.encode()
        if len(self._render_cache) >= _RENDER_CACHE_SIZE:
            self._render_cache.clear()
        self._render_cache[key] = data
        return data

    def reports(self, variant: Variant) -> list[RenditionReport]:
        """The rendition reports of the other fMP4 variants."""
        return [
            other.playlists[FMP4].report(other.playlist_uri(FMP4))
            for other in self.variants
            if other is not variant
        ]

    # -- the task ----------------------------------------------------------------------

    def _wall(self, newest_ms: int) -> None:
        """Map the media timeline to the wall clock: the newest packet is "now".

        The mapping is kept while it holds; when the media fell behind the wall clock by
        more than a second (the publisher stalled, the timeline closed a gap) it is moved
        forward. Never backward: media that comes faster than real time (a catch-up burst)
        only runs ahead for a while, and program date-times never decrease.
        """
        now = self.clock()
        anchor = self._anchor
        if anchor is None or anchor[0] + (newest_ms - anchor[1]) / 1000 < now - _MAX_CLOCK_DRIFT_S:
            self._anchor = (now, newest_ms)

    async def consume(self, packets: list[Packet]) -> None:
        """Cut the packets' frames into segments and parts; wake waiting requests."""
        if not packets:
            return
        self._wall(max(p.timestamp_ms for p in packets))
        changed = False
        if self._ts_replay:
            self._ts_replay = False
            changed = self._replay_for_ts(packets[0])
        for packet in packets:
            for unit in packet.units:
                if isinstance(unit, TrackConfig):
                    changed = self._configure(unit) or changed
                elif self.variants:
                    changed = self._frame(unit) or changed
                elif self.collector.add(unit):
                    changed = self._start_variants() or changed
        if changed:
            self._notify()

    def _frame(self, frame: Frame, formats: tuple[str, ...] = FORMATS) -> bool:
        anchor = self._anchor
        assert anchor is not None
        wall_s = anchor[0] + (frame.dts_ms - anchor[1]) / 1000
        changed = False
        for variant in self.variants:
            changed = variant.add(frame, wall_s, formats=formats) or changed
        return changed

    def _replay_for_ts(self, first: Packet) -> bool:
        """Give the MPEG-TS segmenters the current GOP up to ``first`` (the startup cache
        holds it), so that a TS viewer does not wait for the next keyframe."""
        replay = self.stream.cache.replay(gop=True)
        position = next((i for i, packet in enumerate(replay) if packet is first), None)
        if position is None:
            return False
        changed = False
        for packet in replay[:position]:
            for unit in packet.units:
                if isinstance(unit, Frame):
                    changed = self._frame(unit, formats=(TS,)) or changed
        return changed

    def _start_variants(self) -> bool:
        collector = self.collector
        variants = collector.variants()
        count = max(len(variants), 1)
        for tracks in variants:
            self._add_variant(tracks, self.settings.max_bytes // count)
        for config in [*collector.video.values(), *collector.audio.values()]:
            self._configs[(config.media, config.track_id)] = config
        if collector.audio:
            self._audio_key = (MediaType.AUDIO, min(collector.audio))
        held, collector.held = collector.held, []
        changed = False
        for frame in held:
            changed = self._frame(frame) or changed
        if not self.variants:
            logger.warning("%s: no track HLS can carry", self.label)
        return changed

    def _add_variant(self, tracks: VariantTracks, max_bytes: int) -> None:
        try:
            variant = Variant(
                len(self.variants),
                tracks,
                token=self.token,
                settings=self.settings,
                max_bytes=max_bytes,
            )
        except (CodecHeaderError, LocalProtocolError) as exc:
            logger.warning("%s: %s left out: %s", self.label, describe_tracks(tracks.configs), exc)
            return
        if self._ts_wanted:
            variant.enable_ts()
        self.variants.append(variant)
        logger.info("%s: variant %s: %s", self.label, variant.name, describe_tracks(tracks.configs))

    def _configure(self, config: TrackConfig) -> bool:
        if not self.variants:
            self.collector.add(config)
            return False
        key = (config.media, config.track_id)
        old = self._configs.get(key)
        if old is None:
            if config.media is MediaType.VIDEO and config.record:
                # A video track that appeared later: one more variant.
                audio = self._configs.get(self._audio_key) if self._audio_key else None
                self._configs[key] = config
                self._add_variant(
                    VariantTracks(video=config, audio=audio),
                    self.settings.max_bytes // (len(self.variants) + 1),
                )
            return False
        if not config_changed(old, config):
            return False
        self._configs[key] = config
        changed = False
        for variant in self.variants:
            if config.media is MediaType.VIDEO:
                mine = variant.tracks.video
            else:
                mine = variant.tracks.audio
            if mine is None or (mine.media, mine.track_id) != key:
                continue
            try:
                variant.update_track(config)
                changed = True
            except CodecHeaderError as exc:
                logger.warning(
                    "%s: new %s configuration refused: %s", self.label, config.codec, exc
                )
        return changed

    async def finish(self) -> None:
        """Complete the last segments; playlists end with ``EXT-X-ENDLIST``."""
        try:
            for variant in self.variants:
                variant.finish()
        except Exception:  # finish must not raise: a muxer bug only ends the output early
            logger.exception("%s: finishing failed", self.label)
        self.finished = True
        self._notify()
