"""Recording: live streams to FLV or fragmented MP4 files, segmented and pruned.

Each publish of a stream (from any source) is written under
``DIR/<app>/<stream>-<UTC yyyymmdd-HHMMSS.mmm>.<flv|mp4>``: the name carries the UTC time
of the file's first frame, to the millisecond. What a file holds:

- ``record_format = "flv"`` (FLV v10.1 Annex E): ``onMetaData``, the configuration
  packets, then the stream from its cached GOP (or next keyframe); timestamps start at 0.
  At least once a second ``duration``/``filesize`` are patched and the file flushed.
- ``record_format = "mp4"``: fragmented MP4 (ISO/IEC 14496-12 §8.8, written by
  :class:`~aiortmp.media.fmp4.FMP4Muxer`): the init segment, then a fragment at every
  keyframe and at least every second of media, each flushed as it is written, so a
  ``kill -9`` loses at most one fragment (≤ 1 s) and leaves a file any player reads. On a
  clean close the ``mehd`` duration is written into the init segment (in place: its size
  does not change) and an ``mfra`` random access index is appended (§8.8.9). Players do not
  need either: FFmpeg/ffprobe read every ``moof`` of a seekable file, so a file cut short
  by a crash shows its true duration too.

Segmenting (both formats): with ``record_segment_s`` a new file starts at the first
keyframe after that long, with ``record_max_bytes`` at the first keyframe once the file is
that large (an audio-only stream cuts at any frame). A configuration change (new codec,
new resolution) starts a new file at the next keyframe as well. Every closed file is one
``record_done`` event: ``path``, ``format``, ``start`` (RFC 3339, UTC), ``start_ms``
(UNIX ms), ``duration_ms``, ``bytes``.

Retention (:class:`RecordingService`): ``record_delete_after`` and/or
``record_max_total_bytes`` (per application directory) delete the oldest files first, with
a log line each, and never a file still being written.

Files are written off the event loop (a small thread pool): a slow disk slows only its
recording. A write error (ENOSPC, EFBIG under ``ulimit -f``, EIO) stops that recording
with one log line and a ``record_failed`` event; the stream, its players and relays go on,
and the next publish (or an API start) records again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aiortmp.errors import CodecHeaderError, LocalProtocolError, MP4Error
from aiortmp.hub.bus import EventBus, EventKind, ServerEvent
from aiortmp.hub.packet import Packet, PacketKind, config_key
from aiortmp.hub.registry import Registry
from aiortmp.hub.stream import StartAt, Stream, StreamKey
from aiortmp.media import audio_config
from aiortmp.media.flv import FLVWriter
from aiortmp.media.fmp4 import FMP4Fragment, FMP4Muxer
from aiortmp.media.mfra import RandomAccessPoint, mfra_box, sync_points
from aiortmp.media.mp4read import MP4Index
from aiortmp.media.samples import CONFIGLESS_CODECS, Frame, MediaType, TrackConfig
from aiortmp.protocol.messages import MessageType

from .queued import QueuedOutput

if TYPE_CHECKING:
    from aiortmp.server.config import ServerConfig

__all__ = [
    "ActivePaths",
    "RecordSettings",
    "RecordedFile",
    "Recorder",
    "RecordingCatalog",
    "RecordingService",
    "Segment",
    "enforce_retention",
    "parse_recording_name",
    "recording_path",
]

logger = logging.getLogger("aiortmp.record")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: Flush (and patch an FLV header) at least this often (seconds): what a crash can lose.
CHECKPOINT_S = 1.0
#: An MP4 fragment is written at every keyframe and once this much media is queued (ms).
FRAGMENT_MS = 1000
#: Queue limit of a recording (payload bytes) before it is declared hopelessly behind.
QUEUE_BYTES = 64 * 1024 * 1024
#: How long a new MP4 file waits for the tracks of its stream (ms of media): a track whose
#: codec has no configuration record (AC-3, MP3) is only known by its first frame.
TRACK_WAIT_MS = 500
#: Media an MP4 recording buffers while no keyframe starts a file (ms); older is dropped.
MAX_WAIT_MS = 10_000
#: How often the retention rules run (seconds), besides after each closed file.
RETENTION_INTERVAL_S = 60.0

#: File writes of every recording; each recording has at most one write in flight.
_IO = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aiortmp-record")

_NAME = re.compile(
    r"(?P<name>.+)-(?P<date>\d{8})-(?P<time>\d{6})(?:\.(?P<ms>\d{3}))?(?:-(?P<n>\d+))?"
    r"\.(?P<ext>flv|mp4)"
)


def _safe(part: str) -> str:
    # Stream names come from the network: never let one escape the record directory.
    cleaned = _UNSAFE.sub("_", part).lstrip(".")
    return cleaned or "_"


def recording_path(
    directory: Path, app: str, name: str, when: dt.datetime, extension: str = "flv"
) -> Path:
    """``directory/<app>/<name>-<yyyymmdd-HHMMSS.mmm>.<extension>`` (UTC), names sanitized.

    A suffix ``-1``, ``-2``... is added if the file already exists.

    Args:
        directory: the record directory.
        app: the application (sanitized: letters, digits, ``._-``).
        name: the stream name (sanitized the same way).
        when: the time of the file's first frame.
        extension: ``flv`` or ``mp4``.

    Returns:
        A path that does not exist yet.
    """
    folder = directory / _safe(app)
    when = when.astimezone(dt.UTC)
    stem = f"{_safe(name)}-{when:%Y%m%d-%H%M%S}.{when.microsecond // 1000:03d}"
    path = folder / f"{stem}.{extension}"
    n = 0
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.{extension}"
    return path


def parse_recording_name(filename: str) -> tuple[str, dt.datetime, str] | None:
    """``(stream name, UTC start time, extension)`` of a recording's file name, or None
    for any other name (names without milliseconds, from older versions, are accepted)."""
    match = _NAME.fullmatch(filename)
    if match is None:
        return None
    try:
        start = dt.datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    start = start.replace(tzinfo=dt.UTC, microsecond=int(match["ms"] or 0) * 1000)
    return match["name"], start, match["ext"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordSettings:
    """How one application is recorded (the ``record_*`` keys, per-app overrides applied).

    Attributes:
        format: ``"flv"`` or ``"mp4"``.
        segment_s: start a new file at the first keyframe after this long (0: never).
        max_bytes: start a new file at the first keyframe past this size (0: never).
        delete_after_s: delete files older than this (None: never).
        max_total_bytes: delete the oldest files of the app above this total (0: never).
    """

    format: str = "flv"
    segment_s: float = 0.0
    max_bytes: int = 0
    delete_after_s: float | None = None
    max_total_bytes: int = 0

    @classmethod
    def for_app(
        cls, config: ServerConfig, app: str, *, recorded_only: bool = True
    ) -> RecordSettings | None:
        """The settings of ``app``: ``[apps.<app>]`` keys over the top-level ones.

        Args:
            config: the server configuration.
            app: the application.
            recorded_only: answer None for an app with ``record = false`` (False: its
                settings all the same, for retention and for recordings the API starts).

        Returns:
            The settings, or None.
        """
        override = config.apps.get(app)
        if recorded_only and override is not None and not override.record:
            return None

        def pick(key: str) -> Any:
            value = getattr(override, key, None) if override is not None else None
            return getattr(config, key) if value is None else value

        return cls(
            format=pick("record_format"),
            segment_s=float(pick("record_segment_s")),
            max_bytes=int(pick("record_max_bytes")),
            delete_after_s=pick("record_delete_after"),
            max_total_bytes=int(pick("record_max_total_bytes")),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Segment:
    """One closed recording file.

    Attributes:
        path: the file.
        format: ``"flv"`` or ``"mp4"``.
        start: UTC time of its first frame.
        duration_ms: its media duration, ms.
        size_bytes: its size.
    """

    path: Path
    format: str
    start: dt.datetime
    duration_ms: int
    size_bytes: int

    def details(self) -> dict[str, Any]:
        """The ``record_done`` event details."""
        return {
            "path": str(self.path),
            "format": self.format,
            "start": self.start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "start_ms": int(self.start.timestamp() * 1000),
            "duration_ms": self.duration_ms,
            "bytes": self.size_bytes,
        }


# --------------------------------------------------------------------- file writers
# Everything below runs in the I/O thread, one call at a time per recorder.


class _FLVFile:
    """One FLV file of a recording; timestamps rebased to its first keyframe."""

    def __init__(self, path: Path, base_ms: int, metadata: dict[str, object]) -> None:
        self.path = path
        self.base_ms = base_ms
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "wb", buffering=256 * 1024)  # noqa: SIM115
        try:
            self._writer = FLVWriter(self._file, has_audio=True, has_video=True)
            self._writer.write_metadata(metadata)
        except BaseException:
            self._file.close()
            raise
        self._last_checkpoint = time.monotonic()

    @property
    def size_bytes(self) -> int:
        return self._writer.size_bytes

    @property
    def duration_ms(self) -> int:
        return round(self._writer.duration_s * 1000)

    def write(self, packet: Packet) -> None:
        timestamp_ms = max(0, packet.timestamp_ms - self.base_ms)
        self._writer.write_tag(packet.type_id, timestamp_ms & 0xFFFFFFFF, packet.payload)

    def checkpoint(self) -> None:
        now = time.monotonic()
        if now - self._last_checkpoint >= CHECKPOINT_S:
            self._last_checkpoint = now
            self._writer.checkpoint()

    def close(self) -> bool:
        try:
            self._writer.close()
        finally:
            self._file.close()
        return True


class _MP4File:
    """One fragmented MP4 file of a recording (see the module docstring)."""

    def __init__(self, path: Path, tracks: list[TrackConfig], origin_ms: int) -> None:
        self.path = path
        self.origin_ms = origin_ms
        self.muxer = FMP4Muxer(tracks, origin_ms=origin_ms)
        self.track_count = len(tracks)
        self.tracks = tracks
        # Fragments are cut before each keyframe of the first video track.
        self.primary = next(
            ((t.media, t.track_id) for t in tracks if t.media is MediaType.VIDEO), None
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115
        self.size_bytes = 0
        self.end_ms = float(origin_ms)
        self._init_size = 0
        self._cut = False
        self._points: list[RandomAccessPoint] = []

    @property
    def duration_ms(self) -> int:
        return max(0, round(self.end_ms - self.origin_ms))

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self.size_bytes += len(data)

    def _fragment(self, fragment: FMP4Fragment | None) -> None:
        if fragment is None:
            return
        try:
            self._points.extend(sync_points(fragment.data, self.size_bytes))
        except MP4Error:  # cannot happen with our own muxer: the index is optional
            pass
        self._write(fragment.data)
        # Each fragment reaches the disk as a whole: what a crash can lose is the one
        # being made.
        self._file.flush()
        self.end_ms = max(self.end_ms, fragment.end_ms)

    def add(self, frame: Frame) -> None:
        try:
            self.muxer.add(frame)
        except CodecHeaderError as exc:
            logger.debug("%s: frame dropped: %s", self.path, exc)
            return
        if not self._init_size:
            if not self.muxer.ready:
                return
            init = self.muxer.init_segment()
            self._init_size = len(init)
            self._write(init)
            self._file.flush()
        if frame.keyframe and (frame.media, frame.track_id) == self.primary:
            # A fragment starts at each keyframe: a player can start there, and the
            # mfra index points at it.
            self._fragment(self.muxer.fragment(end_ms=frame.dts_ms))
        elif self.muxer.pending_duration_ms >= FRAGMENT_MS:
            self._fragment(self.muxer.fragment())

    def checkpoint(self) -> None:
        self._file.flush()

    def cut(self, frame: Frame) -> None:
        """End the file just before ``frame`` (the first of the next file)."""
        if not self._init_size:
            return
        try:
            self.muxer.add(frame)  # it gives the last samples before it their duration
        except CodecHeaderError:
            pass
        self._fragment(self.muxer.fragment(end_ms=frame.dts_ms))
        self._fragment(self.muxer.fragment(end_ms=frame.dts_ms, final=True))
        self._cut = True  # what is still queued (``frame`` on) belongs to the next file

    def close(self) -> bool:
        """Finish the file; False if it holds no media (it is removed)."""
        try:
            if not self._init_size:
                return False
            if not self._cut:
                self._fragment(self.muxer.fragment(final=True))
            # mehd (the init segment's only duration-dependent field) in place, then the
            # random access index at the very end.
            self._file.seek(0)
            init = self.muxer.init_segment(duration_ms=self.duration_ms)
            assert len(init) == self._init_size
            self._file.write(init)
            self._file.seek(0, os.SEEK_END)
            ids = list(range(1, self.track_count + 1))
            self._write(mfra_box(self._points, ids))
            return True
        finally:
            self._file.close()
            if not self._init_size:
                self.path.unlink(missing_ok=True)


def _same_config(old: TrackConfig, new: TrackConfig) -> bool:
    """Whether ``new`` can go on in the file ``old`` started (no new file needed)."""
    if old.codec != new.codec:
        return False
    if old.record == new.record:
        return True
    if old.codec == "fLaC":
        # FFmpeg sends the STREAMINFO again at the end with the totals filled in.
        try:
            a = audio_config.parse_flac_stream_info(old.record)
            b = audio_config.parse_flac_stream_info(new.record)
        except CodecHeaderError:
            return False
        return (a.sample_rate_hz, a.channels, a.bits_per_sample) == (
            b.sample_rate_hz,
            b.channels,
            b.bits_per_sample,
        )
    return False


# ------------------------------------------------------------------------- recorder


class Recorder(QueuedOutput):
    """Writes one publish of a stream to one or more files (segments).

    Args:
        stream: the live stream.
        directory: the record directory (files go to ``directory/<app>/``).
        settings: format and segmenting.
        on_segment: called on the event loop with each closed file.
        on_end: called once when the recording ended, with the recorder; ``error`` is
            set if it ended on an I/O error.
        active: the paths being written, shared by every recorder (retention skips them).

    Attributes:
        path: the file being written (the last one once ended), or None before the first.
        bytes_written: bytes in that file so far.
        total_bytes: bytes in every file of this recording.
        segments: the closed files.
        error: the I/O error that stopped the recording, or None.
    """

    def __init__(
        self,
        stream: Stream,
        directory: Path,
        settings: RecordSettings,
        *,
        on_segment: Callable[[Recorder, Segment], None],
        on_end: Callable[[Recorder], None],
        active: ActivePaths | None = None,
    ) -> None:
        super().__init__(
            stream,
            max_bytes=QUEUE_BYTES,
            label=f"recording {stream.app}/{stream.name}",
            on_overflow=lambda _: None,
        )
        self.directory = directory
        self.settings = settings
        self.bytes_written = 0
        self.total_bytes = 0
        self.segments: list[Segment] = []
        self.error: OSError | None = None
        self._on_segment = on_segment
        self._on_end = on_end
        self._active = active if active is not None else ActivePaths()
        self._mp4 = settings.format == "mp4"
        # The first file is named now (the API shows it at once), after the time of the
        # frame it will start with: the cached GOP's keyframe, else the next frame.
        now_s = time.time()
        gop = stream.cache.gop
        first_ms = gop[0].timestamp_ms if gop else stream.last_timestamp_ms
        planned = dt.datetime.fromtimestamp(
            now_s - max(0, stream.last_timestamp_ms - first_ms) / 1000, dt.UTC
        )
        # Names carry milliseconds: so do the times (exact ms arithmetic from here on).
        self._planned = planned.replace(microsecond=planned.microsecond // 1000 * 1000)
        self.path: Path | None = recording_path(
            directory, stream.app, stream.name, self._planned, "mp4" if self._mp4 else "flv"
        )
        # Wall clock of a media time: (the first file's start, its media time): every
        # file's name is the first one's plus the media time between them.
        self._anchor: tuple[dt.datetime, int] | None = None
        # -- I/O thread state
        self._file: _FLVFile | _MP4File | None = None
        self._start: dt.datetime | None = None
        self._metadata: dict[str, object] = {}
        self._config_packets: dict[tuple[int, int, tuple[int, ...]], Packet] = {}
        self._configs: dict[tuple[MediaType, int], TrackConfig] = {}
        self._has_video_config = False
        self._cut_requested = False
        self._waiting: list[Frame] = []  # MP4: frames before the first file starts
        self._closed: list[Segment] = []
        self._started = False

    # -- names and times --------------------------------------------------------------

    def _wall(self, media_ms: int) -> dt.datetime:
        assert self._anchor is not None
        start, ref_ms = self._anchor
        return start + dt.timedelta(milliseconds=media_ms - ref_ms)

    def _new_path(self, media_ms: int) -> Path:
        if self._anchor is None and self.path is not None:
            self._anchor = (self._planned, media_ms)
            self._start = self._planned
            path = self.path
        else:
            self._start = self._wall(media_ms)
            extension = "mp4" if self._mp4 else "flv"
            path = recording_path(
                self.directory, self.stream.app, self.stream.name, self._start, extension
            )
        self._active.add(path)
        self.path = path
        self.bytes_written = 0
        return path

    def _close_file(self) -> None:
        file = self._file
        if file is None:
            return
        self._file = None
        try:
            kept = file.close()
        finally:
            self._active.discard(file.path)
        if kept and self._start is not None:
            segment = Segment(
                path=file.path,
                format="mp4" if self._mp4 else "flv",
                start=self._start,
                duration_ms=file.duration_ms,
                size_bytes=file.size_bytes,
            )
            self.segments.append(segment)
            self._closed.append(segment)

    def _due(self, timestamp_ms: int) -> bool:
        """Whether a new file starts at this keyframe."""
        file = self._file
        if file is None:
            return False
        settings = self.settings
        start_ms = file.base_ms if isinstance(file, _FLVFile) else file.origin_ms
        return (
            self._cut_requested
            or (settings.segment_s > 0 and timestamp_ms - start_ms >= settings.segment_s * 1000)
            or (settings.max_bytes > 0 and file.size_bytes >= settings.max_bytes)
        )

    # -- FLV (I/O thread) -------------------------------------------------------------

    def _write_flv(self, packet: Packet) -> None:
        kind = packet.kind
        if kind is PacketKind.DATA:
            if packet.type_id != MessageType.DATA_AMF0:
                return  # AMF3 data has no FLV script tag
            if packet.payload[:13] == _ON_METADATA:
                # The next file starts with the newest metadata (read across threads: the
                # stream replaces its dict, never changes it).
                self._metadata = dict(self.stream.metadata or self._metadata)
            if isinstance(self._file, _FLVFile):
                self._file.write(packet)
            return
        if kind is PacketKind.VIDEO_CONFIG or kind is PacketKind.AUDIO_CONFIG:
            self._config_packets[config_key(packet.type_id, packet.payload)] = packet
            if kind is PacketKind.VIDEO_CONFIG:
                self._has_video_config = True
            if isinstance(self._file, _FLVFile):
                self._file.write(packet)
            return
        starts = kind is PacketKind.KEYFRAME or (
            kind is PacketKind.AUDIO and not self._has_video_config
        )
        if self._file is None:
            if not starts:
                return  # a file starts at a keyframe
            self._open_flv(packet)
        elif starts and self._due(packet.timestamp_ms):
            self._close_file()
            self._open_flv(packet)
        assert isinstance(self._file, _FLVFile)
        self._file.write(packet)

    def _open_flv(self, packet: Packet) -> None:
        self._cut_requested = False
        path = self._new_path(packet.timestamp_ms)
        file = _FLVFile(path, packet.timestamp_ms, self._metadata)
        self._file = file
        for config in self._config_packets.values():
            file.write(_at(config, packet.timestamp_ms))

    # -- MP4 (I/O thread) -------------------------------------------------------------

    def _write_mp4(self, packet: Packet) -> None:
        if packet.kind is PacketKind.DATA:
            return
        for unit in packet.units:
            if isinstance(unit, TrackConfig):
                self._config(unit)
            else:
                self._frame(unit)

    def _config(self, config: TrackConfig) -> None:
        if not config.record and config.codec not in CONFIGLESS_CODECS:
            return  # FFmpeg's empty av01 SequenceStart comes before the real one
        key = (config.media, config.track_id)
        old = self._configs.get(key)
        if old is None or not _same_config(old, config):
            self._configs[key] = config
            if self._file is not None:
                self._cut_requested = True  # a new file at the next keyframe

    def _frame(self, frame: Frame) -> None:
        key = (frame.media, frame.track_id)
        config = self._configs.get(key)
        if config is None:
            if frame.codec not in CONFIGLESS_CODECS:
                return  # no configuration for this track yet
            config = TrackConfig(
                media=frame.media, track_id=frame.track_id, codec=frame.codec, record=b""
            )
            self._configs[key] = config
            if self._file is not None:
                self._cut_requested = True
        elif config.codec != frame.codec:
            return
        file = self._file
        if file is None:
            self._wait(frame)
            return
        assert isinstance(file, _MP4File)
        primary = file.primary
        starts = (primary is None and frame.media is MediaType.AUDIO) or (
            frame.keyframe and key == (primary or self._video_key())
        )
        if starts and self._due(frame.dts_ms):
            file.cut(frame)
            self._close_file()
            self._open_mp4(frame.dts_ms)
            file = self._file
            if not isinstance(file, _MP4File):
                return
        file.add(frame)

    def _video_key(self) -> tuple[MediaType, int] | None:
        keys = [k for k in self._configs if k[0] is MediaType.VIDEO]
        return min(keys, key=lambda k: k[1]) if keys else None

    def _wait(self, frame: Frame) -> None:
        """Buffer frames until a file can start: at a keyframe of the first video track
        (at an audio frame without video), once the tracks had time to show up."""
        waiting = self._waiting
        waiting.append(frame)
        video = self._video_key()
        start = None
        for candidate in waiting:
            key = (candidate.media, candidate.track_id)
            if (video is None and candidate.media is MediaType.AUDIO) or (
                candidate.keyframe and key == video
            ):
                start = candidate
                break
        if start is None:
            if waiting[-1].dts_ms - waiting[0].dts_ms > MAX_WAIT_MS:
                del waiting[: len(waiting) // 2]
            return
        if frame.dts_ms - start.dts_ms < TRACK_WAIT_MS:
            return
        self._start_mp4(start.dts_ms)

    def _start_mp4(self, origin_ms: int) -> None:
        waiting, self._waiting = self._waiting, []
        self._open_mp4(origin_ms)
        file = self._file
        if not isinstance(file, _MP4File):
            return  # no track can be recorded
        for frame in waiting:
            if (frame.media, frame.track_id) in self._configs:
                file.add(frame)

    def _open_mp4(self, origin_ms: int) -> None:
        self._cut_requested = False
        # Tracks in a stable order: video first, then audio, by track id.
        tracks = sorted(
            self._configs.values(), key=lambda c: (c.media is MediaType.AUDIO, c.track_id)
        )
        usable = []
        for config in tracks:
            try:
                FMP4Muxer([config])
            except (CodecHeaderError, LocalProtocolError) as exc:
                logger.warning(
                    "%s/%s: track %s/%d not recorded: %s",
                    *self.stream.key,
                    config.media,
                    config.track_id,
                    exc,
                )
                continue
            usable.append(config)
        if not usable:
            return
        path = self._new_path(origin_ms)
        self._file = _MP4File(path, usable, origin_ms)

    # -- the I/O thread entry points --------------------------------------------------

    def _write(self, packets: list[Packet]) -> list[Segment]:
        write = self._write_mp4 if self._mp4 else self._write_flv
        for packet in packets:
            write(packet)
        file = self._file
        if file is not None:
            file.checkpoint()
            self.bytes_written = file.size_bytes
        closed, self._closed = self._closed, []
        return closed

    def _finish(self) -> list[Segment]:
        try:
            if self._file is None and self._waiting:
                # A short stream: start the file with what there is.
                video = self._video_key()
                first = next(
                    (
                        f
                        for f in self._waiting
                        if (video is None and f.media is MediaType.AUDIO)
                        or (f.keyframe and (f.media, f.track_id) == video)
                    ),
                    None,
                )
                if first is not None:
                    self._start_mp4(first.dts_ms)
            self._close_file()
        finally:
            self._waiting = []
        closed, self._closed = self._closed, []
        return closed

    # -- QueuedOutput -----------------------------------------------------------------

    async def consume(self, packets: list[Packet]) -> None:
        """Write packets in the I/O thread; an OSError ends the recording."""
        if self.error is not None:
            return
        if not self._started:
            self._started = True
            self._metadata = dict(self.stream.metadata or {})
            if packets and packets[0] is self.stream.cache.metadata and not self._mp4:
                # The file starts with the stream's onMetaData (duration and filesize
                # patched later); the packet that carried it is not written a second time.
                packets = packets[1:]
        try:
            closed = await asyncio.get_running_loop().run_in_executor(_IO, self._write, packets)
        except OSError as exc:
            self.error = exc
            logger.error("%s/%s: recording %s failed: %s", *self.stream.key, self.path, exc)
            self.stop()
            return
        self._report(closed)

    def _report(self, closed: list[Segment]) -> None:
        for segment in closed:
            self.total_bytes += segment.size_bytes
            logger.info(
                "%s/%s: recording closed: %s (%d bytes, %.1f s)",
                *self.stream.key,
                segment.path,
                segment.size_bytes,
                segment.duration_ms / 1000,
            )
            self._on_segment(self, segment)

    async def finish(self) -> None:
        """Close the last file (patching its duration), then report the end."""
        closed: list[Segment] = []
        try:
            closed = await asyncio.get_running_loop().run_in_executor(_IO, self._finish)
        except OSError as exc:
            if self.error is None:
                self.error = exc
                logger.error("%s/%s: closing %s failed: %s", *self.stream.key, self.path, exc)
        except Exception:  # never let a bug here keep the recorder registered
            logger.exception("%s/%s: closing %s failed", *self.stream.key, self.path)
        if self.error is None:
            self._report(closed)
        self._on_end(self)


_ON_METADATA = b"\x02\x00\x0aonMetaData"


def _at(packet: Packet, timestamp_ms: int) -> Packet:
    """A configuration packet restamped to a file's start (it is repeated in each file)."""
    return Packet(packet.type_id, timestamp_ms, packet.payload, packet.kind)


class ActivePaths:
    """The files being written (thread-safe): retention never deletes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()

    def add(self, path: Path) -> None:
        """A file is being written."""
        with self._lock:
            self._paths.add(path.resolve())

    def discard(self, path: Path) -> None:
        """A file was closed."""
        with self._lock:
            self._paths.discard(path.resolve())

    def __len__(self) -> int:
        with self._lock:
            return len(self._paths)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, Path):
            return False
        with self._lock:
            return path.resolve() in self._paths


# -------------------------------------------------------------------------- catalog


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedFile:
    """A recording file on disk, with the time span it covers.

    Attributes:
        app: the application folder it is in (the sanitized app name).
        name: the stream name (sanitized).
        path: the file.
        format: ``"flv"`` or ``"mp4"``.
        start: UTC time of its first frame (from its name).
        duration_ms: the media it holds, ms (so far, for a file being written).
        size_bytes: its size.
        active: it is being written.
    """

    app: str
    name: str
    path: Path
    format: str
    start: dt.datetime
    duration_ms: int
    size_bytes: int
    active: bool = False

    @property
    def end(self) -> dt.datetime:
        """UTC time of the end of its media."""
        return self.start + dt.timedelta(milliseconds=self.duration_ms)


def _flv_duration_ms(path: Path) -> int:
    """An FLV file's duration: its ``onMetaData`` ``duration`` (the recorder patches it
    every second), else the timestamp of its last tag (found from the end through
    ``PreviousTagSize``, FLV v10.1 E.3)."""
    with open(path, "rb") as file:
        header = file.read(9)
        if len(header) < 9 or header[:3] != b"FLV":
            return 0
        offset = int.from_bytes(header[5:9], "big") + 4
        file.seek(offset)
        tag = file.read(11)
        if len(tag) == 11 and tag[0] & 0x1F == 18:
            script = file.read(min(int.from_bytes(tag[1:4], "big"), 64 * 1024))
            # AMF0 (§2.10, §2.4): the key "duration" (u16 length + bytes), then a number.
            marker = script.find(b"\x00\x08duration\x00")
            if marker >= 0 and len(script) >= marker + 19:
                seconds: float = struct.unpack(">d", script[marker + 11 : marker + 19])[0]
                if seconds > 0 and math.isfinite(seconds):
                    return round(seconds * 1000)
        end = os.fstat(file.fileno()).st_size
        if end < offset + 15:
            return 0
        file.seek(end - 4)
        last = int.from_bytes(file.read(4), "big")
        if not 11 <= last <= end - offset - 4:
            return 0
        file.seek(end - 4 - last + 4)
        stamp = file.read(4)
        if len(stamp) < 4:
            return 0
        return int.from_bytes(stamp[:3], "big") | stamp[3] << 24


def _mp4_duration_ms(path: Path) -> int:
    """A (fragmented) MP4 file's duration: its longest track, from its sample tables and
    every ``moof`` (a file cut short counts its whole samples)."""
    with open(path, "rb") as file:
        index = MP4Index(file_size=os.fstat(file.fileno()).st_size)
        while not index.done:
            file.seek(index.position)
            data = file.read(max(index.read_size, 16))
            if not data:
                index.feed_eof()
            else:
                index.feed(data)
        return index.duration_ms


class RecordingCatalog:
    """The recordings under a record directory, with the spans they cover (blocking:
    call :meth:`list` off the event loop). Durations are cached per file while its size
    and modification time do not change.

    Args:
        record_dir: the record directory.
        active: the files being written (marked ``active``), if known.
    """

    def __init__(self, record_dir: Path, active: ActivePaths | None = None) -> None:
        self.record_dir = record_dir
        self.active = active
        self._lock = threading.Lock()
        self._durations: dict[Path, tuple[int, int, int]] = {}

    def _duration_ms(self, path: Path, extension: str, info: os.stat_result) -> int:
        key = (info.st_size, info.st_mtime_ns)
        with self._lock:
            cached = self._durations.get(path)
        if cached is not None and cached[:2] == key:
            return cached[2]
        try:
            if extension == "mp4":
                duration = _mp4_duration_ms(path)
            else:
                duration = _flv_duration_ms(path)
        except (OSError, MP4Error):
            duration = 0
        with self._lock:
            self._durations[path] = (*key, duration)
        return duration

    def list(self, app: str | None = None, name: str | None = None) -> list[RecordedFile]:
        """The recordings, by app, name and start time (blocking).

        Args:
            app: only this application (sanitized as folders are), or all.
            name: only this stream name, or all.

        Returns:
            The files; missing or unreadable directories give none.
        """
        out: list[RecordedFile] = []
        try:
            folders = sorted(
                e.name for e in os.scandir(self.record_dir) if e.is_dir(follow_symlinks=False)
            )
        except OSError:
            return out
        if app is not None:
            folders = [f for f in folders if f == _safe(app)]
        for folder in folders:
            for start, path, info in _recordings(self.record_dir / folder):
                parsed = parse_recording_name(path.name)
                assert parsed is not None
                stream_name, _, extension = parsed
                if name is not None and stream_name != _safe(name):
                    continue
                out.append(
                    RecordedFile(
                        app=folder,
                        name=stream_name,
                        path=path,
                        format=extension,
                        start=start,
                        duration_ms=self._duration_ms(path, extension, info),
                        size_bytes=info.st_size,
                        active=self.active is not None and path in self.active,
                    )
                )
        out.sort(key=lambda f: (f.app, f.name, f.start, f.path.name))
        with self._lock:  # forget files that are gone
            present = {f.path for f in out}
            if app is None and name is None:
                self._durations = {p: v for p, v in self._durations.items() if p in present}
        return out


# ------------------------------------------------------------------------ retention


def _recordings(folder: Path) -> Iterator[tuple[dt.datetime, Path, os.stat_result]]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        parsed = parse_recording_name(entry.name)
        if parsed is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        yield parsed[1], Path(entry.path), info


def enforce_retention(
    folder: Path, settings: RecordSettings, active: ActivePaths, now_s: float
) -> list[Path]:
    """Delete the recordings of one application folder that the rules say to (blocking).

    The oldest files go first (by the start time in their names); a file being written is
    never deleted, nor is any file that is not a recording (by its name).

    Args:
        folder: ``record_dir/<app>``.
        settings: the app's ``delete_after_s`` and ``max_total_bytes``.
        active: the files being written.
        now_s: UNIX time, seconds.

    Returns:
        The deleted files.
    """
    if settings.delete_after_s is None and not settings.max_total_bytes:
        return []
    files = sorted(_recordings(folder), key=lambda item: (item[0], item[1].name))
    deleted: list[Path] = []
    total = sum(info.st_size for _, _, info in files)
    for start, path, info in files:
        if path in active:
            continue
        reason = None
        if settings.delete_after_s is not None and now_s - info.st_mtime > settings.delete_after_s:
            reason = f"older than {settings.delete_after_s:g} s"
        elif settings.max_total_bytes and total > settings.max_total_bytes:
            reason = f"{total} bytes exceed {settings.max_total_bytes}"
        if reason is None:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("retention: cannot delete %s: %s", path, exc)
            continue
        total -= info.st_size
        deleted.append(path)
        logger.info("retention: deleted %s (started %s, %s)", path, start.isoformat(), reason)
    return deleted


# -------------------------------------------------------------------------- service


class RecordingService:
    """Records every stream that goes live (any source) when ``record_dir`` is set, and
    applies the retention rules; the API starts and stops recordings of live streams.

    Args:
        registry: the streams.
        bus: where ``record_done`` / ``record_failed`` go, and ``publish`` comes from.
        record_dir: the directory, or None (recording off; the API may still be asked).
        config: the server configuration (formats, segmenting, retention, per-app
            overrides); None records FLV without segments or retention.

    Attributes:
        recorders: the running recordings by stream key.
        active: the files being written.
    """

    def __init__(
        self,
        registry: Registry,
        bus: EventBus,
        record_dir: Path | None,
        *,
        config: ServerConfig | None = None,
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.record_dir = record_dir
        self.config = config
        self.recorders: dict[StreamKey, Recorder] = {}
        self.active = ActivePaths()
        self._unsubscribe: Callable[[], None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._pruning = False

    def settings_for(self, app: str) -> RecordSettings | None:
        """The settings of ``app`` (None: not recorded)."""
        if self.config is None:
            return RecordSettings()
        return RecordSettings.for_app(self.config, app)

    async def start(self) -> None:
        """Record streams from their next publish on; prune by the retention rules."""
        self._unsubscribe = self.bus.subscribe(self._on_event)
        self._retention = asyncio.get_running_loop().create_task(self._prune_forever())

    async def stop(self) -> None:
        """Close every recording (their files are finished)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._retention is not None:
            self._retention.cancel()
            self._retention = None
        tasks = []
        for recorder in list(self.recorders.values()):
            recorder.stop()
            if recorder.task is not None:
                tasks.append(recorder.task)
        if tasks:
            await asyncio.wait(tasks, timeout=10.0)

    def reload(self, config: ServerConfig) -> None:
        """New settings apply to the next publish (running recordings go on)."""
        self.record_dir = config.record_dir
        self.config = config
        self.prune()

    def _on_event(self, event: ServerEvent) -> None:
        if event.kind is EventKind.PUBLISH and self.record_dir is not None:
            stream = self.registry.get(event.app, event.name)
            if stream is not None and stream.is_live and self.settings_for(event.app):
                self.start_recording(stream)

    def start_recording(self, stream: Stream) -> Recorder | None:
        """Record ``stream`` (live) into ``record_dir``; the running recorder if it is
        already recorded; None without a record directory."""
        recorder = self.recorders.get(stream.key)
        if recorder is not None:
            return recorder
        if self.record_dir is None or stream.source is None:
            return None
        source = stream.source
        # The API may record an app whose settings say no: it gets that app's settings.
        settings = RecordSettings()
        if self.config is not None:
            found = RecordSettings.for_app(self.config, stream.app, recorded_only=False)
            assert found is not None
            settings = found

        def emit(kind: EventKind, details: dict[str, Any]) -> None:
            self.bus.emit(
                ServerEvent(
                    kind=kind,
                    session_id=source.session_id,
                    remote=source.remote,
                    app=stream.app,
                    name=stream.name,
                    details=details,
                )
            )

        def segment_done(recorder: Recorder, segment: Segment) -> None:
            emit(EventKind.RECORD_DONE, segment.details())
            self.prune()

        def ended(recorder: Recorder) -> None:
            if self.recorders.get(stream.key) is recorder:
                del self.recorders[stream.key]
            if recorder.error is not None:
                emit(
                    EventKind.RECORD_FAILED,
                    {
                        "path": str(recorder.path),
                        "bytes": recorder.bytes_written,
                        "error": str(recorder.error),
                    },
                )

        recorder = Recorder(
            stream,
            self.record_dir,
            settings,
            on_segment=segment_done,
            on_end=ended,
            active=self.active,
        )
        self.recorders[stream.key] = recorder
        logger.info(
            "%s/%s: recording (%s) to %s",
            stream.app,
            stream.name,
            settings.format,
            self.record_dir / _safe(stream.app),
        )
        recorder.start(StartAt.GOP)
        return recorder

    def stop_recording(self, stream: Stream) -> Recorder | None:
        """Stop recording ``stream``; the recorder (its file closes shortly), or None."""
        recorder = self.recorders.pop(stream.key, None)
        if recorder is not None:
            recorder.stop()
        return recorder

    # -- retention ----------------------------------------------------------------------

    def _folders(self) -> list[tuple[Path, RecordSettings]]:
        if self.record_dir is None or self.config is None:
            return []
        config = self.config
        # Folders are sanitized app names; map them back to the configured apps.
        known = {_safe(app): app for app in config.apps}
        try:
            entries = [e for e in os.scandir(self.record_dir) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return []
        out = []
        for entry in entries:
            app = known.get(entry.name, entry.name)
            settings = RecordSettings.for_app(config, app, recorded_only=False)
            if settings is not None:
                out.append((Path(entry.path), settings))
        return out

    def prune(self) -> None:
        """Apply the retention rules now (in the I/O threads; one pass at a time)."""
        if self._pruning or self.config is None or self.record_dir is None:
            return
        folders = self._folders()
        if not any(s.delete_after_s is not None or s.max_total_bytes for _, s in folders):
            return
        self._pruning = True

        def run() -> None:
            now = time.time()
            for folder, settings in folders:
                enforce_retention(folder, settings, self.active, now)

        def done(_: object) -> None:
            self._pruning = False

        try:
            future = asyncio.get_running_loop().run_in_executor(_IO, run)
        except RuntimeError:  # no running loop (a reload outside the server)
            self._pruning = False
            return
        future.add_done_callback(done)

    async def _prune_forever(self) -> None:
        while True:
            self.prune()
            await asyncio.sleep(RETENTION_INTERVAL_S)
