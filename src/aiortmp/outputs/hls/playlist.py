"""HLS playlists: a media playlist's window of segments and parts, and the text of both kinds.

Sans-I/O: no asyncio, no clock (wall times come in as arguments). A segmenter
(:mod:`.segmenter`) appends to a :class:`MediaPlaylist`; the HTTP handlers ask it what
exists and render it; :func:`render_multivariant` lists the variants.

What a rendered media playlist holds (RFC 8216bis, draft 16+):

- ``EXT-X-TARGETDURATION`` (§4.4.3.1): the longest segment duration seen, rounded to the
  nearest integer ("The EXTINF duration of each Media Segment in a Playlist file, when
  rounded to the nearest integer, MUST be less than or equal to the Target Duration"); it
  never decreases, as it "MUST NOT change".
- Low-latency playlists (§4.4.3.7-§4.4.3.8, §4.4.4.9, §4.4.5.3): ``EXT-X-SERVER-CONTROL``
  with ``CAN-BLOCK-RELOAD=YES``, ``CAN-SKIP-UNTIL`` (six Target Durations: "The Skip
  Boundary MUST be at least six times the Target Duration") and ``PART-HOLD-BACK`` (three
  Part Target Durations: it "MUST be at least twice the Part Target Duration" and SHOULD be
  three times); ``EXT-X-PART-INF``; ``EXT-X-PART`` lines for the segments of the last three
  Target Durations ("Partial Segments ... older than three Target Durations" may be
  removed, §6.2.2); ``EXT-X-PRELOAD-HINT`` for the next part; ``EXT-X-RENDITION-REPORT``
  for the other variants (§4.4.5.4).
- Delta updates (§4.4.5.2, §6.2.5.1): ``EXT-X-SKIP:SKIPPED-SEGMENTS=n`` replaces the
  segments before the Skip Boundary.
- ``EXT-X-PROGRAM-DATE-TIME`` (§4.4.4.6) on every segment, ``EXT-X-MAP`` (§4.4.4.5) before
  the first one listed and wherever the initialization section changes, with
  ``EXT-X-DISCONTINUITY`` (and ``EXT-X-DISCONTINUITY-SEQUENCE`` once one left the window).

Memory: a complete segment's parts are views into the segment's bytes (one copy); the
window keeps at most ``window_segments`` complete segments and ``max_bytes``, but never less
than three Target Durations (§6.2.2: the server "MUST NOT remove a Media Segment from a
Playlist file ... if that would produce a Playlist whose duration is less than three times
the Target Duration").
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MediaPlaylist",
    "Part",
    "RenditionReport",
    "Segment",
    "VariantStream",
    "format_date_time",
    "render_multivariant",
]

#: Skip Boundary, in Target Durations (§4.4.3.8: "at least six times").
SKIP_TARGET_DURATIONS = 6
#: PART-HOLD-BACK, in Part Target Durations (§4.4.3.8: "at least twice", "three" advised).
PART_HOLD_BACK_PARTS = 3
#: Parts are listed for the segments within this many Target Durations of the end.
PART_WINDOW_TARGET_DURATIONS = 3


def format_date_time(unix_s: float) -> str:
    """An ISO 8601 date-time with milliseconds and ``Z`` (RFC 8216bis §4.4.4.6)."""
    when = dt.datetime.fromtimestamp(unix_s, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(slots=True)
class Part:
    """A Partial Segment (LL-HLS part, a CMAF chunk).

    Attributes:
        msn: the Media Sequence Number of its parent segment.
        index: its Part Index in the parent (from 0).
        duration_s: its duration, seconds.
        independent: it starts with a sync sample of every video track (``INDEPENDENT=YES``).
        data: its bytes (a view into the segment's bytes once the segment is complete).
    """

    msn: int
    index: int
    duration_s: float
    independent: bool
    data: bytes | memoryview


@dataclass(slots=True)
class Segment:
    """A Media Segment, complete or still growing (the last one).

    Attributes:
        msn: its Media Sequence Number.
        program_date_time_s: the wall clock at its first sample, Unix seconds.
        init_uri: the URI of its Media Initialization Section (``EXT-X-MAP``), or None
            (MPEG-TS).
        discontinuity: an ``EXT-X-DISCONTINUITY`` comes before it.
        parts: its parts (LL-HLS), in order.
        duration_s: its duration once complete (while growing: the parts so far).
        data: its bytes once complete.
        complete: no part will be added.
    """

    msn: int
    program_date_time_s: float
    init_uri: str | None
    discontinuity: bool = False
    parts: list[Part] = field(default_factory=list)
    duration_s: float = 0.0
    data: bytes = b""
    complete: bool = False

    @property
    def size_bytes(self) -> int:
        """Bytes held for it."""
        if self.complete:
            return len(self.data)
        return sum(len(part.data) for part in self.parts)


@dataclass(frozen=True, kw_only=True, slots=True)
class RenditionReport:
    """``EXT-X-RENDITION-REPORT`` (§4.4.5.4) about another variant's media playlist.

    Attributes:
        uri: its URI relative to this playlist.
        last_msn: its last segment's Media Sequence Number (a growing one counts).
        last_part: the Part Index of its last part of that segment, or None.
    """

    uri: str
    last_msn: int
    last_part: int | None


class MediaPlaylist:
    """The window of one media playlist: segments, parts, and what the server says of them.

    Args:
        name: the resource prefix of its segments (``"v0-3fa2c1d0-"`` gives
            ``v0-3fa2c1d0-12.m4s`` and part ``v0-3fa2c1d0-12.3.m4s``).
        extension: the segment file extension (``"m4s"``, ``"ts"``).
        low_latency: list parts and the LL-HLS tags (fMP4); False for classic playlists.
        segment_target_s: the configured segment duration, seconds (a floor for the
            Target Duration).
        part_target_s: the configured part duration, seconds (a floor for PART-TARGET).
        window_segments: how many complete segments are kept.
        max_bytes: how many bytes its segments may hold (the oldest go first).

    Attributes:
        segments: the window, oldest first; the last one may be growing.
        target_duration_s: the Target Duration (an integer number of seconds).
        part_target_s: the Part Target Duration: the configured one, or the longest part
            seen when a frame rate makes parts a little longer.
        discontinuity_sequence: ``EXT-X-DISCONTINUITY-SEQUENCE``.
        ended: the stream ended (``EXT-X-ENDLIST``).
        version: incremented on every change (render caches key on it).
        bytes_held: bytes held by the window.
        segments_made / bytes_made: counters since the start.
    """

    def __init__(
        self,
        *,
        name: str,
        extension: str,
        low_latency: bool,
        segment_target_s: float,
        part_target_s: float,
        window_segments: int,
        max_bytes: int,
    ) -> None:
        self.name = name
        self.extension = extension
        self.low_latency = low_latency
        self.segments: deque[Segment] = deque()
        self.target_duration_s = max(1, round(segment_target_s))
        self.part_target_s = part_target_s
        self.window_segments = max(window_segments, 1)
        self.max_bytes = max_bytes
        self.discontinuity_sequence = 0
        self.ended = False
        self.version = 0
        self.bytes_held = 0
        self.segments_made = 0
        self.bytes_made = 0
        self.peak_bps = 0
        self._next_msn = 0

    # -- URIs --------------------------------------------------------------------------

    def segment_uri(self, msn: int) -> str:
        """The relative URI of segment ``msn``."""
        return f"{self.name}{msn}.{self.extension}"

    def part_uri(self, msn: int, index: int) -> str:
        """The relative URI of part ``index`` of segment ``msn``."""
        return f"{self.name}{msn}.{index}.{self.extension}"

    # -- what exists ------------------------------------------------------------------

    @property
    def media_sequence(self) -> int:
        """The Media Sequence Number of the first segment in the window."""
        return self.segments[0].msn if self.segments else self._next_msn

    @property
    def complete_count(self) -> int:
        """Complete segments in the window."""
        count = len(self.segments)
        if count and not self.segments[-1].complete:
            count -= 1
        return count

    @property
    def last_complete_msn(self) -> int | None:
        """The Media Sequence Number of the newest complete segment, or None."""
        for segment in reversed(self.segments):
            if segment.complete:
                return segment.msn
        return None

    @property
    def last_part(self) -> tuple[int, int] | None:
        """``(msn, part index)`` of the newest part, or None."""
        for segment in reversed(self.segments):
            if segment.parts:
                return segment.msn, segment.parts[-1].index
        return None

    @property
    def next_part(self) -> tuple[int, int]:
        """``(msn, part index)`` of the part that comes next (the preload hint)."""
        if self.segments and not self.segments[-1].complete:
            segment = self.segments[-1]
            return segment.msn, len(segment.parts)
        return self._next_msn, 0

    def segment(self, msn: int) -> Segment | None:
        """Segment ``msn`` if it is in the window (complete or not)."""
        if not self.segments:
            return None
        position = msn - self.segments[0].msn
        if 0 <= position < len(self.segments):
            return self.segments[position]
        return None

    def part(self, msn: int, index: int) -> Part | None:
        """Part ``index`` of segment ``msn`` if it exists."""
        segment = self.segment(msn)
        if segment is None or not 0 <= index < len(segment.parts):
            return None
        return segment.parts[index]

    def has_part(self, msn: int, index: int) -> bool:
        """Whether the playlist holds part ``index`` of segment ``msn`` *or later*.

        §6.2.5.2: "If the Client requests a Part Index greater than that of the final
        Partial Segment of the Parent Segment, the Server MUST treat the request as one
        for Part Index 0 of the following Parent Segment."
        """
        last = self.last_part
        if last is None:
            return False
        last_msn, last_index = last
        if last_msn > msn:
            return True
        return last_msn == msn and last_index >= index

    def has_segment(self, msn: int) -> bool:
        """Whether segment ``msn`` (or a later one) is complete."""
        last = self.last_complete_msn
        return last is not None and last >= msn

    def report(self, uri: str) -> RenditionReport:
        """This playlist's state as another playlist reports it."""
        last = self.last_part
        if last is not None:
            return RenditionReport(uri=uri, last_msn=last[0], last_part=last[1])
        complete = self.last_complete_msn
        return RenditionReport(
            uri=uri, last_msn=complete if complete is not None else 0, last_part=None
        )

    # -- changes (the segmenter) ------------------------------------------------------

    def open_segment(
        self, *, program_date_time_s: float, init_uri: str | None, discontinuity: bool = False
    ) -> Segment:
        """Start the next segment (the previous one must be complete)."""
        if self.segments and not self.segments[-1].complete:
            raise ValueError("the previous segment is still open")
        segment = Segment(
            msn=self._next_msn,
            program_date_time_s=program_date_time_s,
            init_uri=init_uri,
            discontinuity=discontinuity,
        )
        self._next_msn += 1
        self.segments.append(segment)
        self.version += 1
        return segment

    @property
    def open(self) -> Segment | None:
        """The growing segment, or None."""
        if self.segments and not self.segments[-1].complete:
            return self.segments[-1]
        return None

    def add_part(self, data: bytes, *, duration_s: float, independent: bool) -> Part:
        """Append a part to the growing segment.

        Raises:
            ValueError: no segment is open.
        """
        segment = self.open
        if segment is None:
            raise ValueError("no open segment")
        part = Part(
            msn=segment.msn,
            index=len(segment.parts),
            duration_s=duration_s,
            independent=independent,
            data=data,
        )
        segment.parts.append(part)
        segment.duration_s += duration_s
        self.bytes_held += len(data)
        if self.low_latency and duration_s > self.part_target_s:
            # Frame durations that do not divide the target make parts a little longer;
            # PART-TARGET is "the maximum Partial Segment duration" (§4.4.3.7).
            self.part_target_s = math.ceil(duration_s * 1000) / 1000
        self.version += 1
        return part

    def close_segment(self, data: bytes | None = None, *, duration_s: float | None = None) -> None:
        """Complete the growing segment.

        Args:
            data: the whole segment (MPEG-TS); None joins its parts (fMP4), whose bytes
                then become views into the joined segment.
            duration_s: its duration (MPEG-TS); None: the sum of its parts.
        """
        segment = self.open
        if segment is None:
            return
        if data is None:
            joined = b"".join(part.data for part in segment.parts)
            view = memoryview(joined)
            offset = 0
            for part in segment.parts:
                size = len(part.data)
                part.data = view[offset : offset + size]
                offset += size
            segment.data = joined
        else:
            self.bytes_held -= segment.size_bytes
            segment.data = data
            self.bytes_held += len(data)
        if duration_s is not None:
            segment.duration_s = duration_s
        segment.complete = True
        self.segments_made += 1
        self.bytes_made += len(segment.data)
        if segment.duration_s > 0:
            self.peak_bps = max(self.peak_bps, int(len(segment.data) * 8 / segment.duration_s))
        self.target_duration_s = max(self.target_duration_s, round(segment.duration_s))
        self._trim()
        self.version += 1

    def end(self) -> None:
        """The stream ended: ``EXT-X-ENDLIST`` (drop an empty growing segment)."""
        segment = self.open
        if segment is not None and not segment.parts:
            self.segments.pop()
            self._next_msn -= 1
        self.ended = True
        self.version += 1

    def _trim(self) -> None:
        segments = self.segments
        floor_s = 3 * self.target_duration_s
        while len(segments) > 1 and segments[0].complete:
            too_many = self.complete_count > self.window_segments
            too_big = self.bytes_held > self.max_bytes
            if not (too_many or too_big):
                break
            remaining_s = sum(s.duration_s for s in segments) - segments[0].duration_s
            if not too_many and remaining_s < floor_s:
                break
            gone = segments.popleft()
            self.bytes_held -= len(gone.data)
            if gone.discontinuity:
                # §6.2.2: "If the server removes an EXT-X-DISCONTINUITY tag from the Media
                # Playlist, it MUST increment the value of the EXT-X-DISCONTINUITY-SEQUENCE
                # tag".
                self.discontinuity_sequence += 1

    # -- text -------------------------------------------------------------------------

    @property
    def can_skip_until_s(self) -> float:
        """``CAN-SKIP-UNTIL``: the Skip Boundary, seconds."""
        return float(SKIP_TARGET_DURATIONS * self.target_duration_s)

    def skippable(self) -> int:
        """How many leading segments a delta update skips (those that end more than the
        Skip Boundary before the end of the playlist)."""
        total = sum(s.duration_s for s in self.segments)
        boundary = total - self.can_skip_until_s
        count = 0
        elapsed = 0.0
        for segment in self.segments:
            elapsed += segment.duration_s
            if not segment.complete or elapsed > boundary:
                break
            count += 1
        return count

    def render(
        self,
        *,
        query: str = "",
        skip: bool = False,
        reports: Sequence[RenditionReport] = (),
        low_latency: bool | None = None,
    ) -> str:
        """The media playlist text.

        Args:
            query: appended to every URI (``"?token=..."``, or ``""``).
            skip: a delta update (``_HLS_skip=YES``), if anything is old enough to skip.
            reports: the other variants' rendition reports.
            low_latency: override :attr:`low_latency` (False: a classic playlist, e.g.
                for the directory output).

        Returns:
            The playlist (UTF-8 text, lines ending in ``\\n``).
        """
        ll = self.low_latency if low_latency is None else low_latency
        lines = ["#EXTM3U"]
        # Version 9: EXT-X-SKIP; 6: EXT-X-MAP in a playlist without I-frames; 3: decimal
        # EXTINF (§7).
        if ll:
            lines.append("#EXT-X-VERSION:9")
        elif any(s.init_uri for s in self.segments):
            lines.append("#EXT-X-VERSION:6")
        else:
            lines.append("#EXT-X-VERSION:3")
        target = self.target_duration_s
        lines.append(f"#EXT-X-TARGETDURATION:{target}")
        if ll:
            part_target = self.part_target_s
            hold_back = PART_HOLD_BACK_PARTS * part_target
            lines.append(
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
                f"CAN-SKIP-UNTIL={self.can_skip_until_s:.1f},PART-HOLD-BACK={hold_back:.3f}"
            )
            lines.append(f"#EXT-X-PART-INF:PART-TARGET={part_target:.3f}")
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}")
        if self.discontinuity_sequence:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuity_sequence}")
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        segments: Iterable[Segment] = self.segments
        skipped = self.skippable() if skip and ll else 0
        if skipped:
            lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
            segments = list(self.segments)[skipped:]
        # Parts are listed for the segments of the last three Target Durations.
        part_floor_s = sum(s.duration_s for s in self.segments) - (
            PART_WINDOW_TARGET_DURATIONS * target
        )
        elapsed = sum(s.duration_s for s in list(self.segments)[:skipped])
        current_map: str | None = None
        for segment in segments:
            if not segment.complete and not (ll and segment.parts):
                break  # the growing segment, with nothing to list yet
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if segment.init_uri is not None and segment.init_uri != current_map:
                current_map = segment.init_uri
                lines.append(f'#EXT-X-MAP:URI="{current_map}{query}"')
            lines.append(
                f"#EXT-X-PROGRAM-DATE-TIME:{format_date_time(segment.program_date_time_s)}"
            )
            end = elapsed + segment.duration_s
            if ll and (not segment.complete or end > part_floor_s):
                for part in segment.parts:
                    independent = ",INDEPENDENT=YES" if part.independent else ""
                    lines.append(
                        f"#EXT-X-PART:DURATION={part.duration_s:.5f},"
                        f'URI="{self.part_uri(part.msn, part.index)}{query}"{independent}'
                    )
            if segment.complete:
                lines.append(f"#EXTINF:{segment.duration_s:.5f},")
                lines.append(f"{self.segment_uri(segment.msn)}{query}")
            elapsed = end
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        elif ll:
            msn, index = self.next_part
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{self.part_uri(msn, index)}{query}"')
            for report in reports:
                last_part = "" if report.last_part is None else f",LAST-PART={report.last_part}"
                lines.append(
                    f'#EXT-X-RENDITION-REPORT:URI="{report.uri}{query}",'
                    f"LAST-MSN={report.last_msn}{last_part}"
                )
        lines.append("")
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True, slots=True)
class VariantStream:
    """One ``EXT-X-STREAM-INF`` of a multivariant playlist (§4.4.6.2).

    Attributes:
        uri: the media playlist URI (relative, without the query).
        bandwidth_bps: ``BANDWIDTH``: the peak segment bit rate, bits/s.
        average_bandwidth_bps: ``AVERAGE-BANDWIDTH``, or None.
        codecs: the RFC 6381 codec strings of its tracks.
        resolution: ``(width, height)`` in pixels, or None (audio only).
        frame_rate: frames per second, or None.
    """

    uri: str
    bandwidth_bps: int
    average_bandwidth_bps: int | None
    codecs: tuple[str, ...]
    resolution: tuple[int, int] | None
    frame_rate: float | None


def render_multivariant(variants: Sequence[VariantStream], *, query: str = "") -> str:
    """The multivariant playlist listing ``variants`` (RFC 8216bis §4.4.6).

    Args:
        variants: the variant streams, in the order listed.
        query: appended to every URI.

    Returns:
        The playlist text.
    """
    lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in variants:
        attributes = [f"BANDWIDTH={max(variant.bandwidth_bps, 1)}"]
        if variant.average_bandwidth_bps:
            attributes.append(f"AVERAGE-BANDWIDTH={variant.average_bandwidth_bps}")
        if variant.codecs:
            attributes.append(f'CODECS="{",".join(variant.codecs)}"')
        if variant.resolution is not None:
            attributes.append(f"RESOLUTION={variant.resolution[0]}x{variant.resolution[1]}")
        if variant.frame_rate:
            attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        lines.append(f"#EXT-X-STREAM-INF:{','.join(attributes)}")
        lines.append(f"{variant.uri}{query}")
    lines.append("")
    return "\n".join(lines)
