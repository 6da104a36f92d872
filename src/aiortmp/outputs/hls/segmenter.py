"""Cutting a stream's frames into HLS segments and parts. Sans-I/O.

A stream's access units (:attr:`~aiortmp.hub.packet.Packet.units`) go through three
objects, none of which touches asyncio, sockets or the clock:

- :class:`TrackCollector` learns which tracks the stream has before anything is cut: one
  *variant* per video track (an E-RTMP multitrack publish gives several), each muxed with
  the stream's first audio track. Publishers send every sequence header before the first
  frame (and the GOP cache replays them first), so this usually decides at the first
  keyframe; a stream without audio configuration waits up to ``wait_ms`` of media for one.
- :class:`FMP4Segmenter` (LL-HLS, CMAF): one :class:`~aiortmp.media.fmp4.FMP4Muxer` per
  variant; a segment starts at a keyframe of the variant's video track once the segment
  has lasted about ``segment_target_ms``, a part (one ``moof`` + ``mdat``) is cut every
  ``part_target_ms``, always just before a video frame, so parts tile the video timeline
  exactly. Audio-only variants cut on audio frames (all of them are sync samples).
- :class:`TSSegmenter` (classic HLS, MPEG-TS): one :class:`~aiortmp.media.mpegts.TSMuxer`
  per variant, segments only, each starting with PAT, PMT and a keyframe.

"About": a boundary is placed at the frame that brings the duration *nearest* to the target
(the cut happens before frame *f* when ``elapsed >= target - duration(f) / 2``), so 25 and
30 fps give 200 ms parts and 24 fps gives 208 ms ones (the playlist then says
``PART-TARGET=0.208``: a part "MUST" not exceed it, RFC 8216bis §4.4.4.9).

Timestamps are the stream core's normalized milliseconds (``Frame.dts_ms``), used as they
are; the wall clock of each frame (for ``EXT-X-PROGRAM-DATE-TIME``) is passed in.

Hot path: one :meth:`FMP4Segmenter.add` per frame per variant — a few comparisons and
:meth:`FMP4Muxer.add <aiortmp.media.fmp4.FMP4Muxer.add>`; a part costs one
:meth:`~aiortmp.media.fmp4.FMP4Muxer.fragment`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiortmp.media.codec_info import (
    AudioInfo,
    audio_info_from_config,
    video_info_from_config,
    video_info_from_keyframe,
)
from aiortmp.media.codecs import codec_string
from aiortmp.media.errors import CodecHeaderError, FrameError
from aiortmp.media.fmp4 import FMP4Muxer
from aiortmp.media.mpegts import TSMuxer
from aiortmp.media.samples import CONFIGLESS_CODECS, Frame, MediaType, TrackConfig
from aiortmp.protocol.errors import LocalProtocolError

from .playlist import MediaPlaylist

__all__ = [
    "FMP4Segmenter",
    "TSSegmenter",
    "TrackCollector",
    "VariantTracks",
    "config_changed",
    "describe_tracks",
]

logger = logging.getLogger("aiortmp.hls")

_TrackKey = tuple[MediaType, int]


def _key(unit: TrackConfig | Frame) -> _TrackKey:
    return (unit.media, unit.track_id)


def _audio_summary(config: TrackConfig) -> AudioInfo | None:
    try:
        return audio_info_from_config(config.codec, config.record)
    except CodecHeaderError:
        return None


def config_changed(old: TrackConfig, new: TrackConfig) -> bool:
    """Whether ``new`` needs a new initialization segment for a track configured by ``old``.

    Empty records never replace anything: FFmpeg sends an empty ``av01`` SequenceStart
    before the real one. Audio is compared by what a decoder is set up with (codec, rate,
    channels, sample size): FFmpeg sends a second FLAC SequenceStart at the end of a stream
    whose STREAMINFO carries the totals, which changes nothing for playback.

    Args:
        old: the configuration in use.
        new: the configuration just received for the same track.

    Returns:
        True when the track must be set up again (resolution, profile, codec changed).
    """
    if not new.record and new.codec not in CONFIGLESS_CODECS:
        return False
    if new.codec != old.codec:
        return True
    if new.media is MediaType.VIDEO:
        return bytes(new.record) != bytes(old.record)
    if new.codec in CONFIGLESS_CODECS:
        return False
    return _audio_summary(new) != _audio_summary(old) or (
        new.codec == "mp4a" and bytes(new.record) != bytes(old.record)
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class VariantTracks:
    """The tracks of one variant: a video track (None: audio only) and the audio track."""

    video: TrackConfig | None
    audio: TrackConfig | None

    @property
    def configs(self) -> list[TrackConfig]:
        """The configurations, video first."""
        return [c for c in (self.video, self.audio) if c is not None]


class TrackCollector:
    """Learns a stream's tracks from its first units, holding frames until it knows them.

    Args:
        wait_ms: how much media (ms, by timestamps) to wait for an audio configuration after
            the first video keyframe (or for a video one after the first audio frame).
        max_frames: frames held at most while waiting (a bound on memory).

    Attributes:
        video: video configurations by track id.
        audio: audio configurations by track id.
        held: frames received before :attr:`ready`, in order.
        ready: the variants can be built (:meth:`variants`).
    """

    def __init__(self, *, wait_ms: int = 1000, max_frames: int = 2000) -> None:
        self.wait_ms = wait_ms
        self.max_frames = max_frames
        self.video: dict[int, TrackConfig] = {}
        self.audio: dict[int, TrackConfig] = {}
        self.held: list[Frame] = []
        self.ready = False
        self._first_key_ms: int | None = None
        self._first_audio_ms: int | None = None

    def add(self, unit: TrackConfig | Frame) -> bool:
        """Take a unit; True once :attr:`ready`.

        A frame that makes the collector ready is held with the others; after that,
        nothing is held (the caller feeds the segmenters itself).
        """
        if self.ready:
            return True
        if isinstance(unit, TrackConfig):
            self._configure(unit)
            return False
        media = self.video if unit.media is MediaType.VIDEO else self.audio
        if unit.track_id not in media:
            if unit.codec not in CONFIGLESS_CODECS:
                return False  # no configuration yet: undecodable
            self.audio[unit.track_id] = TrackConfig(
                media=unit.media, track_id=unit.track_id, codec=unit.codec, record=b""
            )
        if unit.media is MediaType.VIDEO:
            if unit.keyframe and self._first_key_ms is None:
                self._first_key_ms = unit.dts_ms
        elif self._first_audio_ms is None:
            self._first_audio_ms = unit.dts_ms
        if self._first_key_ms is None and not self.video and self._first_audio_ms is None:
            return False
        self.held.append(unit)
        if len(self.held) > self.max_frames:
            del self.held[: len(self.held) - self.max_frames]
        if self.video:
            if self._first_key_ms is not None and (
                self.audio or unit.dts_ms - self._first_key_ms >= self.wait_ms
            ):
                self.ready = True
        elif self._first_audio_ms is not None and unit.dts_ms - self._first_audio_ms >= (
            self.wait_ms
        ):
            self.ready = True
        return self.ready

    def _configure(self, config: TrackConfig) -> None:
        media = self.video if config.media is MediaType.VIDEO else self.audio
        if not config.record and config.codec not in CONFIGLESS_CODECS:
            return  # FFmpeg's empty av01 SequenceStart
        old = media.get(config.track_id)
        if old is None or config_changed(old, config):
            media[config.track_id] = config

    def variants(self) -> list[VariantTracks]:
        """One variant per video track (by track id), each with the first audio track; a
        single audio-only variant when there is no video."""
        audio = self.audio[min(self.audio)] if self.audio else None
        if not self.video:
            return [VariantTracks(video=None, audio=audio)] if audio is not None else []
        return [VariantTracks(video=self.video[t], audio=audio) for t in sorted(self.video)]


class _Cutter:
    """Where segments and parts end, for one variant (shared by both formats)."""

    __slots__ = (
        "driver",
        "keys",
        "last_driver_ms",
        "last_frame_ms",
        "part_start_ms",
        "part_target_ms",
        "segment_start_ms",
        "segment_target_ms",
    )

    def __init__(
        self, tracks: VariantTracks, *, segment_target_ms: float, part_target_ms: float
    ) -> None:
        driver = tracks.video or tracks.audio
        assert driver is not None
        self.driver = _key(driver)
        self.keys = {_key(c) for c in tracks.configs}
        self.segment_target_ms = segment_target_ms
        self.part_target_ms = part_target_ms
        self.segment_start_ms: int | None = None
        self.part_start_ms = 0
        self.last_driver_ms = 0
        self.last_frame_ms = 40.0

    def frame_ms(self, frame: Frame) -> float:
        """The driving track's frame duration before ``frame`` (ms, at least 1)."""
        return max(frame.dts_ms - self.last_driver_ms, 1)

    @staticmethod
    def reached(elapsed_ms: float, target_ms: float, frame_ms: float) -> bool:
        """Cutting before this frame lands nearest to the target."""
        return elapsed_ms >= target_ms - frame_ms / 2


class FMP4Segmenter:
    """One variant's LL-HLS segments and parts, in fMP4 (CMAF) with an init segment.

    Args:
        tracks: the variant's tracks.
        playlist: the media playlist it appends to (``low_latency``).
        init_prefix: its initialization segments are ``{init_prefix}{n}.mp4``.
        segment_target_ms: segment duration to aim for (cut at the keyframe nearest it).
        part_target_ms: part duration to aim for.

    Attributes:
        inits: initialization segments by URI (a configuration change adds one).
        init_uri: the current one's URI, or None until the muxer is ready.
        codecs: RFC 6381 codec strings of the tracks (known once :attr:`init_uri` is).
        resolution: ``(width, height)`` of the video track, or None.
        frame_rate: measured frames per second of the video track, or None.
        frames_dropped: frames the muxer refused (malformed headers).

    Raises:
        CodecHeaderError: a configuration record is malformed.
        LocalProtocolError: a codec fMP4 cannot carry.
    """

    def __init__(
        self,
        tracks: VariantTracks,
        playlist: MediaPlaylist,
        *,
        init_prefix: str,
        segment_target_ms: float,
        part_target_ms: float,
    ) -> None:
        self.tracks = tracks
        self.playlist = playlist
        self.init_prefix = init_prefix
        self.inits: dict[str, bytes] = {}
        self.init_uri: str | None = None
        self.codecs: tuple[str, ...] = ()
        self.resolution: tuple[int, int] | None = None
        self.frames_dropped = 0
        self._cut = _Cutter(
            tracks, segment_target_ms=segment_target_ms, part_target_ms=part_target_ms
        )
        self._muxer = FMP4Muxer(tracks.configs)
        self._discontinuity = False
        self._duration_ms = 0.0
        self._video_frames = 0
        self._segment_frames = 0
        self._first_key: Frame | None = None  # the first keyframe, until the init exists
        self._first_wall_s = 0.0
        self._has_video = tracks.video is not None
        self._resolution_from_config()

    def _resolution_from_config(self) -> None:
        video = self.tracks.video
        if video is None:
            return
        try:
            info = video_info_from_config(video.codec, video.record)
        except CodecHeaderError:
            return
        if info.width and info.height:
            self.resolution = (info.width, info.height)

    @property
    def frame_rate(self) -> float | None:
        """Video frames per second over the segments made so far, or None."""
        if not self._has_video or self._duration_ms <= 0 or self._video_frames < 2:
            return None
        return round(self._video_frames * 1000 / self._duration_ms, 3)

    def _ensure_init(self, frame: Frame) -> bool:
        if self.init_uri is not None:
            return True
        if not self._muxer.ready:
            return False
        uri = f"{self.init_prefix}{len(self.inits)}.mp4"
        self.inits[uri] = self._muxer.init_segment()
        self.init_uri = uri
        self.codecs = tuple(self._muxer.codecs)
        if self.resolution is None and frame.media is MediaType.VIDEO:
            video = self.tracks.video
            assert video is not None
            try:
                info = video_info_from_keyframe(
                    video_info_from_config(video.codec, video.record), frame.data
                )
            except CodecHeaderError:
                info = None
            if info is not None and info.width and info.height:
                self.resolution = (info.width, info.height)
        return True

    def add(self, frame: Frame, wall_s: float) -> bool:
        """Mux one frame; cut a part or a segment before it when one is due.

        Args:
            frame: an access unit of the stream (frames of other tracks are ignored).
            wall_s: the wall clock of ``frame.dts_ms``, Unix seconds.

        Returns:
            True if the playlist changed (a part or a segment was added).
        """
        cut = self._cut
        key = (frame.media, frame.track_id)
        if key not in cut.keys:
            return False
        playlist = self.playlist
        is_driver = key == cut.driver
        if cut.segment_start_ms is None:
            # Nothing before the first keyframe of the driving track.
            if not (is_driver and frame.keyframe) or not self._mux(frame):
                return False
            cut.segment_start_ms = cut.part_start_ms = cut.last_driver_ms = frame.dts_ms
            self._first_key = frame
            self._first_wall_s = wall_s
            self._count(frame)
            return self._open_first()
        if self._first_key is not None:
            # The first segment waits for the tracks whose sample entry needs a frame
            # (MP3, AC-3, E-AC-3: no configuration record).
            self._mux(frame)
            if is_driver:
                cut.last_driver_ms = frame.dts_ms
                self._count(frame)
            return self._open_first()
        if not is_driver:
            self._mux(frame)
            return False
        frame_ms = cut.frame_ms(frame)
        changed = False
        if frame.keyframe and cut.reached(
            frame.dts_ms - cut.segment_start_ms, cut.segment_target_ms, frame_ms
        ):
            if self._mux(frame):
                self._write_part(frame.dts_ms)
                segment = playlist.open
                if segment is not None and segment.parts:
                    playlist.close_segment()
                    self._duration_ms += frame.dts_ms - cut.segment_start_ms
                    self._video_frames += self._segment_frames
                    self._segment_frames = 0
                    playlist.open_segment(program_date_time_s=wall_s, init_uri=self.init_uri)
                    cut.segment_start_ms = frame.dts_ms
                cut.part_start_ms = frame.dts_ms
                changed = True
        elif self._muxer.ready and cut.reached(
            frame.dts_ms - cut.part_start_ms, cut.part_target_ms, frame_ms
        ):
            if self._mux(frame) and self._write_part(frame.dts_ms):
                cut.part_start_ms = frame.dts_ms
                changed = True
        else:
            self._mux(frame)
        cut.last_driver_ms = frame.dts_ms
        cut.last_frame_ms = frame_ms
        self._count(frame)
        return changed

    def _open_first(self) -> bool:
        keyframe = self._first_key
        if keyframe is None or not self._ensure_init(keyframe):
            return False
        self.playlist.open_segment(
            program_date_time_s=self._first_wall_s,
            init_uri=self.init_uri,
            discontinuity=self._discontinuity,
        )
        self._discontinuity = False
        self._first_key = None
        return True

    def _count(self, frame: Frame) -> None:
        if frame.media is MediaType.VIDEO:
            self._segment_frames += 1

    def _mux(self, frame: Frame) -> bool:
        try:
            self._muxer.add(frame)
        except CodecHeaderError as exc:
            self.frames_dropped += 1
            logger.debug("hls %s: frame dropped: %s", self.playlist.name, exc)
            return False
        return True

    def _write_part(self, end_ms: int | None, *, final: bool = False) -> bool:
        cut = self._cut
        fragment = self._muxer.fragment(end_ms=end_ms, final=final)
        if fragment is None:
            return False
        if end_ms is None:
            # The last part of a stream: it ends with the driving track's last frame (an
            # audio sample may run a few ms longer; the segment's duration is the video's).
            end_ms_f = cut.last_driver_ms + cut.last_frame_ms
        else:
            end_ms_f = float(end_ms)
        duration_s = max(end_ms_f - cut.part_start_ms, 1.0) / 1000
        self.playlist.add_part(
            fragment.data, duration_s=duration_s, independent=fragment.independent
        )
        return True

    def update_track(self, config: TrackConfig) -> None:
        """A track got a new configuration: end the segment, set up a new muxer; the next
        segment starts at the next keyframe, after ``EXT-X-DISCONTINUITY`` and a new
        ``EXT-X-MAP`` (RFC 8216bis §4.4.4.3: "a change in encoding parameters").

        Raises:
            CodecHeaderError: the new record is malformed (the old configuration stays).
        """
        video = config if config.media is MediaType.VIDEO else self.tracks.video
        audio = config if config.media is MediaType.AUDIO else self.tracks.audio
        tracks = VariantTracks(video=video, audio=audio)
        muxer = FMP4Muxer(tracks.configs)
        self.finish(end=False)
        self.tracks = tracks
        self._muxer = muxer
        self.init_uri = None
        self.resolution = None
        self._resolution_from_config()
        self._discontinuity = True
        self._cut.segment_start_ms = None
        self._first_key = None

    def finish(self, *, end: bool = True) -> None:
        """Write what is queued as the last part, complete the segment; with ``end`` the
        playlist gets ``EXT-X-ENDLIST``."""
        cut = self._cut
        if self.playlist.open is not None and cut.segment_start_ms is not None:
            self._write_part(None, final=True)
            segment = self.playlist.open
            if segment is not None and segment.parts:
                self.playlist.close_segment()
        if end:
            self.playlist.end()


class TSSegmenter:
    """One variant's classic HLS segments in MPEG-TS (H.264/HEVC, AAC/MP3/AC-3/E-AC-3).

    Args:
        tracks: the variant's tracks (those MPEG-TS cannot carry are left out).
        playlist: the media playlist it appends to (not low-latency).
        segment_target_ms: segment duration to aim for.

    Attributes:
        codecs: the RFC 6381 codec strings of the carried tracks.
        carried: False when the variant's video track cannot be carried (AV1, VP9...),
            or nothing can: the variant has no MPEG-TS form.

    Raises:
        LocalProtocolError: an argument of the muxer is out of range.
    """

    def __init__(
        self, tracks: VariantTracks, playlist: MediaPlaylist, *, segment_target_ms: float
    ) -> None:
        self.playlist = playlist
        self._muxer = TSMuxer(tracks.configs)
        carried = {(t.config.media, t.config.track_id) for t in self._muxer.tracks}
        video = tracks.video if tracks.video and _key(tracks.video) in carried else None
        audio = tracks.audio if tracks.audio and _key(tracks.audio) in carried else None
        self.carried = (video is not None or tracks.video is None) and bool(carried)
        self.tracks = VariantTracks(video=video, audio=audio)
        codecs = []
        for config in self.tracks.configs:
            try:
                codecs.append(codec_string(config))
            except CodecHeaderError:
                pass
        self.codecs = tuple(codecs)
        self._cut = _Cutter(self.tracks, segment_target_ms=segment_target_ms, part_target_ms=0)
        self._buffer = bytearray()

    def add(self, frame: Frame, wall_s: float) -> bool:
        """Mux one frame; complete a segment before it when one is due.

        Returns:
            True if the playlist changed.
        """
        if not self.carried:
            return False
        cut = self._cut
        key = (frame.media, frame.track_id)
        if key not in cut.keys:
            return False
        is_driver = key == cut.driver
        changed = False
        if cut.segment_start_ms is None:
            if not (is_driver and frame.keyframe):
                return False
            self.playlist.open_segment(program_date_time_s=wall_s, init_uri=None)
            self._buffer = bytearray(self._muxer.segment_header())
            cut.segment_start_ms = cut.last_driver_ms = frame.dts_ms
            changed = True
        elif is_driver:
            if frame.keyframe and cut.reached(
                frame.dts_ms - cut.segment_start_ms, cut.segment_target_ms, cut.frame_ms(frame)
            ):
                self._buffer += self._muxer.flush()
                self.playlist.close_segment(
                    bytes(self._buffer), duration_s=(frame.dts_ms - cut.segment_start_ms) / 1000
                )
                self.playlist.open_segment(program_date_time_s=wall_s, init_uri=None)
                self._buffer = bytearray(self._muxer.segment_header())
                cut.segment_start_ms = frame.dts_ms
                changed = True
        try:
            self._buffer += self._muxer.add(frame)
        except FrameError as exc:
            logger.debug("hls %s: frame dropped: %s", self.playlist.name, exc)
        if is_driver:
            if frame.dts_ms > cut.last_driver_ms:
                cut.last_frame_ms = cut.frame_ms(frame)
            cut.last_driver_ms = frame.dts_ms
        return changed

    def update_track(self, config: TrackConfig) -> None:
        """A track got a new configuration (new parameter sets/ADTS headers from the next
        frame on; MPEG-TS carries them in band, so no new segment is needed)."""
        try:
            self._muxer.update_track(config)
        except LocalProtocolError as exc:  # pragma: no cover - defensive
            logger.warning("hls %s: %s", self.playlist.name, exc)

    def finish(self) -> None:
        """Complete the last segment and end the playlist (``EXT-X-ENDLIST``)."""
        cut = self._cut
        if self.playlist.open is not None and cut.segment_start_ms is not None:
            self._buffer += self._muxer.flush()
            duration_ms = max(cut.last_driver_ms - cut.segment_start_ms, 0) + cut.last_frame_ms
            self.playlist.close_segment(bytes(self._buffer), duration_s=duration_ms / 1000)
        self.playlist.end()


def describe_tracks(configs: Sequence[TrackConfig]) -> str:
    """``"avc1 track 0, mp4a track 0"`` for log lines."""
    return ", ".join(f"{c.codec} track {c.track_id}" for c in configs)
